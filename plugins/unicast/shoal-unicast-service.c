/* shoal-unicast-service.c: serves the /images routes on shoald's HTTP server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Routes: see shoal-unicast-server.h. Every request carries a device token
 * (Authorization: Bearer, or ?token=); the device must be deploying
 * (shoal_device_state_is_active), and the image must be the one its
 * deployment sends (device metadata image.id, set by the unicast and
 * multicast steps): an agent still fetching the image of a cancelled
 * deployment is refused (403) once the device is deployed again, with
 * another image or before the next one is chosen. Refusals of a known device, manifest
 * fetches and raw image fetches go to the device's journal (source
 * "unicast"); chunk fetches do not (one per chunk would drown the journal).
 *
 * Configuration: [image-store] path (default <state dir>/image-store).
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-image-files.h"
#include "shoal-unicast-private.h"
#include "shoal-unicast-service.h"

#define IMAGES_PATH "/images"

struct _ShoalUnicastService
{
  GObject             parent_instance;
  ShoalContext       *context;
  ShoalUnicastServer *server;
};

static void shoal_unicast_service_iface_init (ShoalServiceInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalUnicastService, shoal_unicast_service, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_SERVICE, shoal_unicast_service_iface_init))

/**
 * shoal_unicast_store_root:
 *
 * Returns: (transfer full): the image store folder: [image-store] path, or
 *   <state dir>/image-store
 */
gchar *
shoal_unicast_store_root (ShoalContext *context)
{
  g_autofree gchar *fallback = shoal_image_files_default_root (shoal_context_get_state_dir (context));

  return shoal_context_get_config_string (context, "image-store", "path", fallback);
}

static const gchar *
request_name (ShoalUnicastRequest request)
{
  switch (request)
    {
    case SHOAL_UNICAST_REQUEST_MANIFEST:
      return "manifest";
    case SHOAL_UNICAST_REQUEST_CHUNK:
      return "chunk";
    case SHOAL_UNICAST_REQUEST_RAW:
      return "raw image";
    case SHOAL_UNICAST_REQUEST_OTHER:
    default:
      return "resource";
    }
}

static gchar *
peer_name (SoupServerMessage *msg)
{
  const gchar *host = soup_server_message_get_remote_host (msg);

  return g_strdup (host != NULL ? host : "?");
}

static guint
authorize (const gchar         *token,
           ShoalUnicastRequest  request,
           const gchar         *image_id,
           SoupServerMessage   *msg,
           gpointer             user_data)
{
  ShoalUnicastService *self = user_data;
  g_autofree gchar *peer = peer_name (msg);
  const gchar *range = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Range");
  ShoalDevice *device = token != NULL ? shoal_context_lookup_device_by_token (self->context, token) : NULL;
  ShoalDeviceState state;
  const gchar *current;

  if (device == NULL)
    {
      g_info ("Refused %s request from %s: %s", request_name (request), peer,
              token == NULL ? "no device token" : "unknown device token");
      return SOUP_STATUS_UNAUTHORIZED;
    }
  state = shoal_device_get_state (device);
  if (!shoal_device_state_is_active (state))
    {
      shoal_device_log (device, "unicast", "refused", SHOAL_JOURNAL_RESULT_FAILED,
                        _("Refused %s request from %s for image %s: the device is %s, not deploying"),
                        request_name (request), peer, image_id != NULL ? image_id : "?",
                        shoal_device_state_to_string (state));
      return SOUP_STATUS_FORBIDDEN;
    }
  current = shoal_device_get_metadata (device, "image.id");
  if (image_id != NULL && g_strcmp0 (image_id, current) != 0)
    {
      g_autofree gchar *why = NULL;

      if (current == NULL)
        why = g_strdup_printf (_("Image %s is not this device's: its deployment sends no image yet"), image_id);
      else
        why = g_strdup_printf (_("Image %s is not this device's: its deployment sends image %s"),
                               image_id, current);
      shoal_device_log (device, "unicast", "refused", SHOAL_JOURNAL_RESULT_FAILED,
                        _("Refused %s request from %s: %s"), request_name (request), peer, why);
      shoal_unicast_respond_error (msg, SOUP_STATUS_FORBIDDEN, why);
      return SOUP_STATUS_FORBIDDEN;
    }
  if (request == SHOAL_UNICAST_REQUEST_MANIFEST || request == SHOAL_UNICAST_REQUEST_RAW)
    shoal_device_log (device, "unicast", "fetch", SHOAL_JOURNAL_RESULT_INFO,
                      _("%s of image %s requested from %s%s%s"), request_name (request), image_id,
                      peer, range != NULL ? ", " : "", range != NULL ? range : "");
  return SOUP_STATUS_OK;
}

static gboolean
shoal_unicast_service_start (ShoalService  *service,
                             ShoalContext  *context,
                             GError       **error)
{
  ShoalUnicastService *self = SHOAL_UNICAST_SERVICE (service);
  g_autofree gchar *root = shoal_unicast_store_root (context);

  if (self->server != NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY, _("The unicast service is running already"));
      return FALSE;
    }
  if (!shoal_image_files_ensure (root, error))
    return FALSE;
  self->context = g_object_ref (context);
  self->server = shoal_unicast_server_new (root, authorize, self);
  if (!shoal_context_add_http_handler (context, IMAGES_PATH, shoal_unicast_server_handle,
                                       self->server, NULL, error))
    {
      g_prefix_error (error, _("Cannot serve images over HTTP: "));
      g_clear_pointer (&self->server, shoal_unicast_server_free);
      g_clear_object (&self->context);
      return FALSE;
    }
  g_info ("Serving images from %s on %s", root, IMAGES_PATH);
  return TRUE;
}

static void
shoal_unicast_service_stop (ShoalService *service)
{
  ShoalUnicastService *self = SHOAL_UNICAST_SERVICE (service);

  if (self->server == NULL)
    return;
  shoal_context_remove_http_handler (self->context, IMAGES_PATH);
  g_clear_pointer (&self->server, shoal_unicast_server_free);
  g_clear_object (&self->context);
}

static void
shoal_unicast_service_dispose (GObject *object)
{
  shoal_unicast_service_stop (SHOAL_SERVICE (object));
  G_OBJECT_CLASS (shoal_unicast_service_parent_class)->dispose (object);
}

static void
shoal_unicast_service_iface_init (ShoalServiceInterface *iface)
{
  iface->start = shoal_unicast_service_start;
  iface->stop = shoal_unicast_service_stop;
}

static void
shoal_unicast_service_class_init (ShoalUnicastServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = shoal_unicast_service_dispose;
}

static void
shoal_unicast_service_class_finalize (ShoalUnicastServiceClass *klass)
{
}

static void
shoal_unicast_service_init (ShoalUnicastService *self)
{
}

void
shoal_unicast_service_register_types (GTypeModule *module)
{
  shoal_unicast_service_register_type (module);
}
