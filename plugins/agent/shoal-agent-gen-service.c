/* shoal-agent-gen-service.c: serves GET /agent/v1/agent
 *
 * Answers the device named by its token ("Authorization: Bearer <token>")
 * with its generated agent: the cached base part followed by its own part
 * (device keys "agent.base" and "agent.device-part", written by the agent
 * step), as application/octet-stream. 401 without a known token, 503 with
 * Retry-After while the agent is not generated yet. When the whole answer
 * has been sent it posts the device event "agent-fetched"
 * ({"bytes": n, "sha256": "..."}) and journals it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-agent-gen.h"
#include "shoal-agent-gen-service.h"

#define AGENT_PATH "/agent/v1/agent"

struct _ShoalAgentGenService
{
  GObject       parent_instance;
  ShoalContext *context;
  gboolean      registered;
};

static void shoal_agent_gen_service_iface_init (ShoalServiceInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalAgentGenService, shoal_agent_gen_service, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_SERVICE, shoal_agent_gen_service_iface_init))

typedef struct {
  SoupServerMessage *msg;
  ShoalDevice       *device;
  gchar             *parts[2];
  gchar             *sha256;
  gchar             *size;
} FetchData;

static void
fetch_data_free (FetchData *data)
{
  g_clear_object (&data->msg);
  g_clear_object (&data->device);
  g_free (data->parts[0]);
  g_free (data->parts[1]);
  g_free (data->sha256);
  g_free (data->size);
  g_free (data);
}

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
  ShoalDevice *device;
  gchar       *sha256;
  gchar       *size;
} Served;

static void
served_free (gpointer user_data, GClosure *closure)
{
  Served *served = user_data;

  g_object_unref (served->device);
  g_free (served->sha256);
  g_free (served->size);
  g_free (served);
}

/* Posts "agent-fetched" with the agent that was sent, unless the device
 * has another one by now (regenerated or forgotten while it was sent) */
static void
finished_cb (SoupServerMessage *msg, gpointer user_data)
{
  Served *served = user_data;
  ShoalDevice *device = served->device;
  const gchar *size = served->size;
  const gchar *sha = served->sha256;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) payload = NULL;

  if (soup_server_message_get_status (msg) != SOUP_STATUS_OK)
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

static void
read_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  FetchData *data = task_data;
  g_autoptr(GByteArray) all = g_byte_array_new ();

  for (guint i = 0; i < G_N_ELEMENTS (data->parts); i++)
    {
      g_autofree gchar *contents = NULL;
      gsize len = 0;
      GError *error = NULL;

      if (!g_file_get_contents (data->parts[i], &contents, &len, &error))
        {
          g_task_return_error (task, error);
          return;
        }
      g_byte_array_append (all, (const guint8 *) contents, (guint) len);
    }
  g_task_return_pointer (task, g_byte_array_free_to_bytes (g_steal_pointer (&all)), (GDestroyNotify) g_bytes_unref);
}

static void
read_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FetchData *data = g_task_get_task_data (G_TASK (result));
  g_autoptr(GBytes) bytes = g_task_propagate_pointer (G_TASK (result), NULL);

  if (bytes == NULL)
    {
      shoal_device_log (data->device, "agent-gen", "agent-fetched", SHOAL_JOURNAL_RESULT_FAILED,
                        "cannot read the generated agent (%s)", data->parts[0]);
      respond_text (data->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "the generated agent cannot be read");
    }
  else
    {
      soup_server_message_set_status (data->msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_replace (soup_server_message_get_response_headers (data->msg), "X-Shoal-Agent-Sha256",
                                    data->sha256 != NULL ? data->sha256 : "");
      soup_server_message_set_response (data->msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                        g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      Served *served = g_new0 (Served, 1);

      served->device = g_object_ref (data->device);
      served->sha256 = g_strdup (data->sha256);
      served->size = g_strdup (data->size);
      g_signal_connect_data (data->msg, "finished", G_CALLBACK (finished_cb), served, served_free, 0);
    }
  soup_server_message_unpause (data->msg);
}

static void
agent_cb (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  ShoalAgentGenService *self = user_data;
  const gchar *token = request_token (msg, query);
  ShoalDevice *device = token != NULL ? shoal_context_lookup_device_by_token (self->context, token) : NULL;
  FetchData *data;
  g_autoptr(GTask) task = NULL;

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
  data = g_new0 (FetchData, 1);
  data->msg = g_object_ref (msg);
  data->device = g_object_ref (device);
  data->parts[0] = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_BASE));
  data->parts[1] = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_DEVICE));
  data->sha256 = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_SHA256));
  data->size = g_strdup (shoal_device_get_metadata (device, SHOAL_AGENT_KEY_SIZE));
  soup_server_message_pause (msg);
  task = g_task_new (self, NULL, read_done_cb, NULL);
  g_task_set_task_data (task, data, (GDestroyNotify) fetch_data_free);
  g_task_run_in_thread (task, read_thread);
}

static gboolean
shoal_agent_gen_service_start (ShoalService *service, ShoalContext *context, GError **error)
{
  ShoalAgentGenService *self = SHOAL_AGENT_GEN_SERVICE (service);

  g_set_object (&self->context, context);
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
}

void
shoal_agent_gen_service_register_types (GTypeModule *module)
{
  shoal_agent_gen_service_register_type (module);
}
