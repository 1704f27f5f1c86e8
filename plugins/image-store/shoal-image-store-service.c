/* shoal-image-store-service.c: management of the image store over HTTP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For local tools (shoalctl, scripts) until the D-Bus Manager methods call
 * ShoalImageStore directly. Only loopback clients that present the admin
 * token are served: the token is in <store>/admin-token (mode 0600, made at
 * the first start), so only who can read the store may change it.
 *
 *   GET    /image-store/images              list: JSON array of image objects
 *   GET    /image-store/images/<id|name>    one image object
 *   POST   /image-store/images              import {"path": "...", "name": "...",
 *                                           "chunk-size": n} (name and chunk-size
 *                                           optional): 201 and the image object
 *   DELETE /image-store/images/<id|name>    remove: {"id": ..., "freed-bytes": n}
 *
 * An image object: {"id", "name", "size", "chunk-size", "chunks",
 * "zero-chunks", "data-bytes", "image-sha256", "imported"}.
 * Configuration: [image-store] path (default <state dir>/image-store).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "shoal-image-store.h"
#include "shoal-random-private.h"
#include "shoal-image-store-service.h"

#define ROUTE "/image-store"
/* an import's JSON: a path or URL, a name, a chunk size */
#define MAX_BODY (64 * 1024)
/* the methods that send one: an import */
static const gchar *const body_methods[] = { "POST", NULL };

struct _ShoalImageStoreService
{
  GObject          parent_instance;
  ShoalContext    *context;
  ShoalImageStore *store;
  gchar           *admin_token;
  GCancellable    *cancellable;     /* the start-up clean-up's, cancelled at stop */
};

static void shoal_image_store_service_iface_init (ShoalServiceInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalImageStoreService, shoal_image_store_service, G_TYPE_OBJECT,
                                G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_SERVICE,
                                                               shoal_image_store_service_iface_init))

/* --- replies ------------------------------------------------------------------ */

static void
reply_json (SoupServerMessage *msg,
            guint              status,
            JsonNode          *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  gsize len = 0;
  gchar *text;

  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, &len);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, len);
}

static void
reply_error (SoupServerMessage *msg,
             guint              status,
             const gchar       *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  node = json_builder_get_root (b);
  reply_json (msg, status, node);
}

static guint
status_for_error (const GError *error)
{
  if (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND))
    return SOUP_STATUS_NOT_FOUND;
  if (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT) ||
      g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA))
    return SOUP_STATUS_BAD_REQUEST;
  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

JsonNode *
shoal_image_info_to_json (const ShoalImageInfo *info)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, info->id);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, info->name);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) info->size);
  json_builder_set_member_name (b, "chunk-size");
  json_builder_add_int_value (b, info->chunk_size);
  json_builder_set_member_name (b, "chunks");
  json_builder_add_int_value (b, (gint64) info->n_chunks);
  json_builder_set_member_name (b, "zero-chunks");
  json_builder_add_int_value (b, (gint64) info->n_zero_chunks);
  json_builder_set_member_name (b, "data-bytes");
  json_builder_add_int_value (b, (gint64) info->data_bytes);
  json_builder_set_member_name (b, "image-sha256");
  json_builder_add_string_value (b, info->image_sha256);
  json_builder_set_member_name (b, "imported");
  json_builder_add_int_value (b, info->imported);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* --- the operations (the message is paused while they run) -------------------- */

typedef struct {
  ShoalImageStoreService *self;
  SoupServerMessage      *msg;
  guint                   ok_status;
} Pending;

static Pending *
pending_new (ShoalImageStoreService *self,
             SoupServerMessage      *msg)
{
  Pending *p = g_new0 (Pending, 1);

  p->self = g_object_ref (self);
  p->msg = g_object_ref (msg);
  p->ok_status = SOUP_STATUS_OK;
  soup_server_message_pause (msg);
  return p;
}

static void
pending_done (Pending *p)
{
  soup_server_message_unpause (p->msg);
  g_object_unref (p->msg);
  g_object_unref (p->self);
  g_free (p);
}

static void
list_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Pending *p = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) images = shoal_image_store_list_finish (SHOAL_IMAGE_STORE (source), result, &error);
  g_autoptr(JsonArray) array = json_array_new ();
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_ARRAY);

  if (images == NULL)
    reply_error (p->msg, status_for_error (error), error->message);
  else
    {
      for (guint i = 0; i < images->len; i++)
        json_array_add_element (array, shoal_image_info_to_json (g_ptr_array_index (images, i)));
      json_node_set_array (node, array);
      reply_json (p->msg, SOUP_STATUS_OK, node);
    }
  pending_done (p);
}

static void
inspect_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pending *p = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = shoal_image_store_inspect_finish (SHOAL_IMAGE_STORE (source), result, &error);
  g_autoptr(JsonNode) node = NULL;

  if (info == NULL)
    reply_error (p->msg, status_for_error (error), error->message);
  else
    {
      node = shoal_image_info_to_json (info);
      reply_json (p->msg, p->ok_status, node);
    }
  pending_done (p);
}

static void
import_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Pending *p = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id = shoal_image_store_import_finish (SHOAL_IMAGE_STORE (source), result, NULL, &error);

  if (id == NULL)
    {
      reply_error (p->msg, status_for_error (error), error->message);
      pending_done (p);
      return;
    }
  g_info ("Imported image %s", id);
  /* answer with the image object */
  p->ok_status = SOUP_STATUS_CREATED;
  shoal_image_store_inspect_async (SHOAL_IMAGE_STORE (source), id, NULL, inspect_done, p);
}

static void
remove_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Pending *p = user_data;
  g_autoptr(GError) error = NULL;
  guint64 freed = 0;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  if (!shoal_image_store_remove_finish (SHOAL_IMAGE_STORE (source), result, &freed, &error))
    reply_error (p->msg, status_for_error (error), error->message);
  else
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "freed-bytes");
      json_builder_add_int_value (b, (gint64) freed);
      json_builder_end_object (b);
      node = json_builder_get_root (b);
      reply_json (p->msg, SOUP_STATUS_OK, node);
    }
  pending_done (p);
}

static void
start_import (ShoalImageStoreService *self,
              SoupServerMessage      *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) data = soup_message_body_flatten (body);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonNode *root;
  JsonObject *object;
  const gchar *path;

  if (!json_parser_load_from_data (parser, g_bytes_get_data (data, NULL), (gssize) g_bytes_get_size (data), &error) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, _("The body must be a JSON object"));
      return;
    }
  object = json_node_get_object (root);
  path = json_object_get_string_member_with_default (object, "path", NULL);
  if (path == NULL || (!g_path_is_absolute (path) && !shoal_image_files_is_uri (path)))
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, _("“path” must be an absolute path on the server, or an http or https URL"));
      return;
    }
  shoal_image_store_import_async (self->store, path,
                                  json_object_get_string_member_with_default (object, "name", NULL),
                                  (guint32) json_object_get_int_member_with_default (object, "chunk-size", 0),
                                  NULL, import_done, pending_new (self, msg));
}

/* --- routing ------------------------------------------------------------------- */

static gboolean
authorized (ShoalImageStoreService *self,
            SoupServerMessage      *msg)
{
  GInetAddress *addr = NULL;
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  const gchar *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");

  if (G_IS_INET_SOCKET_ADDRESS (remote))
    addr = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  if (addr == NULL || !g_inet_address_get_is_loopback (addr))
    {
      reply_error (msg, SOUP_STATUS_FORBIDDEN, _("The image store is managed from the server itself"));
      return FALSE;
    }
  if (auth == NULL || g_ascii_strncasecmp (auth, "Bearer ", 7) != 0 ||
      g_strcmp0 (auth + 7, self->admin_token) != 0)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "WWW-Authenticate", "Bearer realm=\"shoal-image-store\"");
      reply_error (msg, SOUP_STATUS_UNAUTHORIZED, _("The admin token (in the store's admin-token file) is required"));
      return FALSE;
    }
  return TRUE;
}

static void
handle (SoupServer        *server,
        SoupServerMessage *msg,
        const char        *path,
        GHashTable        *query,
        gpointer           user_data)
{
  ShoalImageStoreService *self = user_data;
  const gchar *method = soup_server_message_get_method (msg);
  const gchar *rest;

  if (!authorized (self, msg))
    return;
  if (g_strcmp0 (path, ROUTE "/images") == 0 || g_strcmp0 (path, ROUTE "/images/") == 0)
    {
      if (method == SOUP_METHOD_GET)
        shoal_image_store_list_async (self->store, NULL, list_done, pending_new (self, msg));
      else if (method == SOUP_METHOD_POST)
        start_import (self, msg);
      else
        reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, _("Use GET or POST"));
      return;
    }
  rest = g_str_has_prefix (path, ROUTE "/images/") ? path + strlen (ROUTE "/images/") : NULL;
  if (rest == NULL || *rest == '\0' || strchr (rest, '/') != NULL)
    reply_error (msg, SOUP_STATUS_NOT_FOUND, _("No such resource"));
  else if (method == SOUP_METHOD_GET)
    shoal_image_store_inspect_async (self->store, rest, NULL, inspect_done, pending_new (self, msg));
  else if (method == SOUP_METHOD_DELETE)
    shoal_image_store_remove_async (self->store, rest, NULL, remove_done, pending_new (self, msg));
  else
    reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, _("Use GET or DELETE"));
}

/* --- the service ----------------------------------------------------------------- */

/**
 * shoal_image_store_service_load_admin_token:
 * @root: the image store's folder
 * @error: return location for a #GError
 *
 * Reads <root>/admin-token, or makes one (mode 0600): 32 bytes from the
 * kernel's generator (shoal_random_hex()), 64 hex digits. It was made of
 * g_random_int(), a Mersenne Twister whose outputs (its seed) a local
 * user could predict.
 *
 * Returns: (transfer full) (nullable): the token
 */
gchar *
shoal_image_store_service_load_admin_token (const gchar  *root,
                                            GError      **error)
{
  g_autofree gchar *path = g_build_filename (root, "admin-token", NULL);
  g_autofree gchar *token = NULL;
  g_autofree gchar *fresh = NULL;

  if (g_file_get_contents (path, &token, NULL, NULL) && strlen (g_strstrip (token)) >= 32)
    return g_steal_pointer (&token);
  fresh = shoal_random_hex (32, error);
  if (fresh == NULL)
    {
      g_prefix_error (error, _("Cannot make the image store's admin token: "));
      return NULL;
    }
  if (!g_file_set_contents_full (path, fresh, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    {
      g_prefix_error (error, _("Cannot write the image store's admin token: "));
      return NULL;
    }
  return g_steal_pointer (&fresh);
}

gchar *
shoal_image_store_service_root (ShoalContext *context)
{
  g_autofree gchar *fallback = shoal_image_files_default_root (shoal_context_get_state_dir (context));

  return shoal_context_get_config_string (context, "image-store", "path", fallback);
}

static void
gc_done (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  guint64 freed = 0;

  if (!shoal_image_store_gc_finish (SHOAL_IMAGE_STORE (source), result, &freed, &error))
    {
      /* the service stopped first (shoald stopping, a controller closed,
       * its store removed after): what the clean-up met matters no more */
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("Cannot clean the image store: %s", error->message);
    }
  else if (freed > 0)
    g_info ("Deleted %" G_GUINT64_FORMAT " bytes of chunks no image uses", freed);
}

static gboolean
shoal_image_store_service_start (ShoalService  *service,
                                 ShoalContext  *context,
                                 GError       **error)
{
  ShoalImageStoreService *self = SHOAL_IMAGE_STORE_SERVICE (service);
  g_autofree gchar *root = shoal_image_store_service_root (context);
  g_autoptr(ShoalImageStore) store = shoal_image_store_new (root, error);
  g_autofree gchar *token = NULL;
  g_autofree gchar *chunk_size = shoal_context_get_config_string (context, "image-store", "chunk-size", NULL);

  if (store == NULL)
    return FALSE;
  shoal_image_store_configure_chunk_size (store, chunk_size);
  token = shoal_image_store_service_load_admin_token (root, error);
  if (token == NULL)
    return FALSE;
  if (!shoal_context_add_http_handler (context, ROUTE, handle, self, NULL, error))
    {
      g_prefix_error (error, _("Cannot serve the image store over HTTP: "));
      return FALSE;
    }
  /* POST /image-store/images; a request of any other method with a body
   * is refused before the body is read (413) */
  shoal_context_allow_http_body_full (context, ROUTE, body_methods, MAX_BODY);
  self->context = g_object_ref (context);
  self->store = g_steal_pointer (&store);
  self->admin_token = g_steal_pointer (&token);
  g_info ("Image store at %s", root);
  /* chunks and downloads of imports a crash interrupted */
  self->cancellable = g_cancellable_new ();
  shoal_image_store_gc_async (self->store, self->cancellable, gc_done, NULL);
  return TRUE;
}

static void
shoal_image_store_service_stop (ShoalService *service)
{
  ShoalImageStoreService *self = SHOAL_IMAGE_STORE_SERVICE (service);

  if (self->context == NULL)
    return;
  shoal_context_remove_http_handler (self->context, ROUTE);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->context);
  g_clear_object (&self->store);
  g_clear_pointer (&self->admin_token, g_free);
}

/**
 * shoal_image_store_service_get_store:
 *
 * Returns: (transfer none) (nullable): the store, while the service runs
 */
ShoalImageStore *
shoal_image_store_service_get_store (ShoalImageStoreService *self)
{
  return self->store;
}

static void
shoal_image_store_service_dispose (GObject *object)
{
  shoal_image_store_service_stop (SHOAL_SERVICE (object));
  G_OBJECT_CLASS (shoal_image_store_service_parent_class)->dispose (object);
}

static void
shoal_image_store_service_iface_init (ShoalServiceInterface *iface)
{
  iface->start = shoal_image_store_service_start;
  iface->stop = shoal_image_store_service_stop;
}

static void
shoal_image_store_service_class_init (ShoalImageStoreServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = shoal_image_store_service_dispose;
}

static void
shoal_image_store_service_class_finalize (ShoalImageStoreServiceClass *klass)
{
}

static void
shoal_image_store_service_init (ShoalImageStoreService *self)
{
}

void
shoal_image_store_service_register_types (GTypeModule *module)
{
  shoal_image_store_service_register_type (module);
}
