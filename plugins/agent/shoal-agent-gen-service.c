/* shoal-agent-gen-service.c: serves GET /agent/v1/agent
 *
 * Answers the device named by its token ("Authorization: Bearer <token>")
 * with its generated agent: the cached base part followed by its own part
 * (device keys "agent.base" and "agent.device-part", written by the agent
 * step), as application/octet-stream. 401 without a known token, 503 with
 * Retry-After while the agent is not generated yet, 429 with Retry-After
 * when the device already has MAX_DOWNLOADS downloads under way. The
 * parts are read in chunks of 256 kB as the answer goes out (the body
 * does not accumulate), so a download holds one chunk in memory, not the
 * agent. When the whole answer
 * has been sent it posts the device event "agent-fetched"
 * ({"bytes": n, "sha256": "..."}) and journals it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "shoal-agent-gen.h"
#include "shoal-agent-gen-service.h"
#include "shoal-http.h"

#define AGENT_PATH "/agent/v1/agent"
/* a loader fetches once; a few retries may overlap a stalled download */
#define MAX_DOWNLOADS 4

struct _ShoalAgentGenService
{
  GObject       parent_instance;
  ShoalContext *context;
  gboolean      registered;
  gulong        removed_id;
  GHashTable   *downloads;    /* device id -> number under way */
};

static void shoal_agent_gen_service_iface_init (ShoalServiceInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalAgentGenService, shoal_agent_gen_service, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_SERVICE, shoal_agent_gen_service_iface_init))

static void
respond_text (SoupServerMessage *msg, guint status, const gchar *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, text, strlen (text));
}

static const gchar *
request_token (SoupServerMessage *msg, GHashTable *query)
{
  const gchar *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");

  if (auth != NULL && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0)
    return auth + 7;
  return query != NULL ? g_hash_table_lookup (query, "token") : NULL;
}

typedef struct {
  ShoalAgentGenService *service;
  ShoalDevice          *device;
  gchar                *sha256;
  gchar                *size;
  gchar                *paths[2];
  gint                  fds[2];
  goffset               lengths[2];
} Download;

static void
download_free (gpointer data)
{
  Download *d = data;

  for (guint i = 0; i < G_N_ELEMENTS (d->fds); i++)
    {
      if (d->fds[i] >= 0)
        g_close (d->fds[i], NULL);
      g_free (d->paths[i]);
    }
  if (d->service->downloads != NULL)
    {
      const gchar *id = shoal_device_get_id (d->device);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (d->service->downloads, id));

      if (n <= 1)
        g_hash_table_remove (d->service->downloads, id);
      else
        g_hash_table_insert (d->service->downloads, g_strdup (id), GUINT_TO_POINTER (n - 1));
    }
  g_object_unref (d->service);
  g_object_unref (d->device);
  g_free (d->sha256);
  g_free (d->size);
  g_free (d);
}

/* Posts "agent-fetched" with the agent that was sent, unless the device
 * has another one by now (regenerated or forgotten while it was sent) */
static void
sent_cb (SoupServerMessage *msg, gboolean complete, gpointer user_data)
{
  Download *d = user_data;
  ShoalDevice *device = d->device;
  const gchar *size = d->size;
  const gchar *sha = d->sha256;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) payload = NULL;

  if (soup_server_message_get_status (msg) != SOUP_STATUS_OK || !complete)
    return;
  if (g_strcmp0 (sha, shoal_device_get_metadata (device, SHOAL_AGENT_KEY_SHA256)) != 0)
    {
      g_debug ("%s: agent %s sent, but it is not the device's agent any more", shoal_device_get_id (device),
               sha != NULL ? sha : "?");
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "bytes");
  json_builder_add_int_value (b, g_ascii_strtoll (size != NULL ? size : "0", NULL, 10));
  json_builder_set_member_name (b, "sha256");
  json_builder_add_string_value (b, sha != NULL ? sha : "");
  json_builder_end_object (b);
  payload = json_builder_get_root (b);
  shoal_device_log (device, "agent-gen", "agent-fetched", SHOAL_JOURNAL_RESULT_OK,
                    "agent sent (%s bytes, sha256 %s)", size ? size : "?", sha ? sha : "?");
  shoal_device_post_event (device, "agent-fetched", payload);
}

/* Opens both parts; the open descriptors stay valid if a part is
 * replaced meanwhile */
static gboolean
download_open (Download *d, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (d->fds); i++)
    {
      struct stat st;

      d->fds[i] = open (d->paths[i], O_RDONLY | O_CLOEXEC);
      if (d->fds[i] < 0 || fstat (d->fds[i], &st) != 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "opening %s: %s", d->paths[i],
                       g_strerror (errno));
          return FALSE;
        }
      d->lengths[i] = st.st_size;
    }
  return TRUE;
}

static void
serve_agent (ShoalAgentGenService *self, SoupServerMessage *msg, ShoalDevice *device)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  const gchar *id = shoal_device_get_id (device);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->downloads, id));
  g_autoptr(GError) error = NULL;
  ShoalHttpPart parts[2];
  Download *d;

  if (n >= MAX_DOWNLOADS)
    {
      const gchar *text = "too many downloads of this device's agent";

      soup_message_headers_replace (headers, "Retry-After", "2");
      soup_server_message_set_status (msg, 429, "Too Many Requests");
      soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_STATIC, text, strlen (text));
      return;
    }
  g_hash_table_insert (self->downloads, g_strdup (id), GUINT_TO_POINTER (n + 1));
  d = g_new0 (Download, 1);
  d->service = g_object_ref (self);
  d->device = g_object_ref (device);
  d->fds[0] = d->fds[1] = -1;
  d->paths[0] = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_BASE));
  d->paths[1] = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_DEVICE));
  d->sha256 = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_SHA256));
  d->size = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_SIZE));
  if (!download_open (d, &error))
    {
      shoal_device_log (device, "agent-gen", "agent-fetched", SHOAL_JOURNAL_RESULT_FAILED,
                        "cannot read the generated agent (%s)", error->message);
      respond_text (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "the generated agent cannot be read");
      download_free (d);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (headers, "application/octet-stream", NULL);
  soup_message_headers_replace (headers, "X-Shoal-Agent-Sha256", d->sha256 != NULL ? d->sha256 : "");
  soup_message_headers_set_content_length (headers, d->lengths[0] + d->lengths[1]);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      parts[i] = (ShoalHttpPart) { .fd = d->fds[i], .offset = 0, .length = d->lengths[i], .name = d->paths[i] };
      d->fds[i] = -1;    /* the stream's now */
    }
  shoal_http_stream_parts (msg, parts, G_N_ELEMENTS (parts), sent_cb, d, download_free);
}

static void
agent_cb (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  ShoalAgentGenService *self = user_data;
  const gchar *token = request_token (msg, query);
  ShoalDevice *device = token != NULL ? shoal_context_lookup_device_by_token (self->context, token) : NULL;

  if (g_strcmp0 (soup_server_message_get_method (msg), "GET") != 0)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET");
      respond_text (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed");
      return;
    }
  if (device == NULL)
    {
      respond_text (msg, SOUP_STATUS_UNAUTHORIZED, token == NULL ? "missing device token" : "unknown device token");
      return;
    }
  if (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_BASE) == NULL
      || shoal_device_get_metadata (device, SHOAL_AGENT_KEY_DEVICE) == NULL)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", "2");
      respond_text (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "the agent of this device is not generated yet");
      return;
    }
  serve_agent (self, msg, device);
}

/* its part holds its token: it goes with the device */
static void
device_removed_cb (ShoalContext *context, ShoalDevice *device, gpointer user_data)
{
  shoal_agent_gen_remove_device_part (shoal_context_get_state_dir (context), shoal_device_get_id (device));
}

/* What a crash, removals while shoald was not running and changes of the
 * kernel tree, the modules or the agent binary left: parts no device's
 * agent.device-part names, cache entries no device's agent.base names (the newest one is
 * kept), temporary files (shoal_agent_gen_sweep). Runs before any
 * deployment resumes, so no agent is being built. */
static void
sweep (ShoalContext *context)
{
  g_autoptr(GPtrArray) devices = shoal_context_get_devices (context);
  g_autoptr(GHashTable) parts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) bases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      const gchar *part = shoal_device_get_metadata (device, SHOAL_AGENT_KEY_DEVICE);
      const gchar *base = shoal_device_get_metadata (device, SHOAL_AGENT_KEY_BASE);

      if (part != NULL)
        g_hash_table_add (parts, g_path_get_basename (part));
      if (base != NULL)
        g_hash_table_add (bases, g_path_get_basename (base));
    }
  shoal_agent_gen_sweep (shoal_context_get_state_dir (context), parts, bases);
}

static gboolean
shoal_agent_gen_service_start (ShoalService *service, ShoalContext *context, GError **error)
{
  ShoalAgentGenService *self = SHOAL_AGENT_GEN_SERVICE (service);

  g_set_object (&self->context, context);
  sweep (context);
  if (self->removed_id == 0)
    self->removed_id = g_signal_connect (context, "device-removed", G_CALLBACK (device_removed_cb), NULL);
  if (!shoal_context_add_http_handler (context, AGENT_PATH, agent_cb, self, NULL, error))
    {
      g_prefix_error (error, "agent generation service: ");
      return FALSE;
    }
  self->registered = TRUE;
  return TRUE;
}

static void
shoal_agent_gen_service_stop (ShoalService *service)
{
  ShoalAgentGenService *self = SHOAL_AGENT_GEN_SERVICE (service);

  if (self->registered && self->context != NULL)
    shoal_context_remove_http_handler (self->context, AGENT_PATH);
  self->registered = FALSE;
  if (self->context != NULL)
    g_clear_signal_handler (&self->removed_id, self->context);
}

static void
shoal_agent_gen_service_iface_init (ShoalServiceInterface *iface)
{
  iface->start = shoal_agent_gen_service_start;
  iface->stop = shoal_agent_gen_service_stop;
}

static void
shoal_agent_gen_service_dispose (GObject *object)
{
  ShoalAgentGenService *self = SHOAL_AGENT_GEN_SERVICE (object);

  shoal_agent_gen_service_stop (SHOAL_SERVICE (self));
  g_clear_object (&self->context);
  g_clear_pointer (&self->downloads, g_hash_table_unref);
  G_OBJECT_CLASS (shoal_agent_gen_service_parent_class)->dispose (object);
}

static void
shoal_agent_gen_service_class_init (ShoalAgentGenServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = shoal_agent_gen_service_dispose;
}

static void
shoal_agent_gen_service_class_finalize (ShoalAgentGenServiceClass *klass)
{
}

static void
shoal_agent_gen_service_init (ShoalAgentGenService *self)
{
  self->downloads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

void
shoal_agent_gen_service_register_types (GTypeModule *module)
{
  shoal_agent_gen_service_register_type (module);
}
