/* shoal-agent-api.c: the HTTP API agents on the devices talk to
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller-private.h"
#include "shoal-error.h"
#include "shoal-http.h"
#include "shoal-json-private.h"
#include "shoal-json-schema.h"

/*
 * Routes (every request carries the device's token, as
 * "Authorization: Bearer <token>" or "?token=<token>"):
 *
 *   POST /agent/v1/inventory   body: inventory JSON (inventory.schema.json)
 *   POST /agent/v1/event       body: {"event": "<name>", "data": {...},
 *                                     "serial": <instruction serial>}
 *   GET  /agent/v1/next?after=<serial>[&wait=<s>]
 *        long poll: {"serial": n, "instruction": {...}} once the device's
 *        instruction serial exceeds <serial>; 204 after <wait> seconds.
 *
 * Special events: "progress" {"fraction": 0..1}, "log" {"operation",
 * "result", "message"}. Any other event is handed to the step waiting for
 * it (shoal_device_wait_event_async()).
 *
 * "serial" (optional: agents before it send none, and their events are
 * taken as they come) is the serial of the instruction the agent carries
 * out. An event of an instruction the device has been given another one
 * since (a cancel's "wait", a new deployment's) is answered 202 with
 * {"status": "stale"} and dropped: it does not reach the journal's
 * progress, nor a step of the next deployment.
 *
 * The token of the device's previous deployment, when an agent claimed it
 * (an agent still running when the new deployment started: that of a
 * failed or cancelled deployment, waiting), is taken by GET
 * /agent/v1/next alone, answered {"serial": <after> + 1, "instruction":
 * {"action": "reboot", "reason": "superseded"}}: the agent reboots and
 * network-boots into the new deployment, where a 401 left it polling for
 * good. The answer holds nothing of the new deployment; every other
 * request with that token is refused (401), and so is a long poll whose
 * token was re-issued by a boot script meanwhile.
 */

#define MAX_BODY (1024 * 1024)
#define MAX_WAIT 120
#define MAX_DEPTH 64   /* json-glib's parser recurses once per level */

typedef struct {
  ShoalController   *controller;   /* unowned: lives as long as the server */
  gint64             refusal_logged;    /* monotonic time of the last message */
  guint              refusals_unlogged;
} AgentApi;

static void
respond_json (SoupServerMessage *msg,
              guint              status,
              JsonNode          *node)
{
  g_autofree gchar *text = json_to_string (node, FALSE);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    text, strlen (text));
}

/* {"@member": "@value"} as JSON text */
static gchar *
object_text (const gchar *member,
             const gchar *value)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, member);
  json_builder_add_string_value (builder, value);
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  return json_to_string (node, FALSE);
}

static gchar *
error_text (const gchar *reason)
{
  return object_text ("error", reason);
}

static void
respond_error (SoupServerMessage *msg,
               guint              status,
               const gchar       *reason)
{
  g_autofree gchar *text = error_text (reason);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    text, strlen (text));
  g_debug ("agent API: %u %s", status, reason);
}

static const gchar *
request_token (SoupServerMessage *msg,
               GHashTable        *query)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const gchar *auth = soup_message_headers_get_one (headers, "Authorization");

  if (auth != NULL && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0)
    return auth + 7;
  if (query != NULL)
    return g_hash_table_lookup (query, "token");
  return NULL;
}

/* Logs a refused request and returns the reason to answer 401 with.
 * Nothing goes to the journal of the device the request names: anyone can
 * name any device, and would rotate its history out. At most one message
 * per REFUSAL_LOG_SECONDS, counting those left out. */
#define REFUSAL_LOG_SECONDS 10

static const gchar *
log_refusal (AgentApi          *api,
             SoupServerMessage *msg,
             GHashTable        *query,
             const gchar       *path,
             const gchar       *token)
{
  gint64 now = g_get_monotonic_time ();
  const gchar *claimed;

  if (api->refusal_logged != 0 && now - api->refusal_logged < REFUSAL_LOG_SECONDS * G_USEC_PER_SEC)
    {
      api->refusals_unlogged++;
      return token == NULL ? "missing device token" : "unknown device token";
    }
  claimed = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                          "X-Shoal-Device");
  if (claimed == NULL && query != NULL)
    claimed = g_hash_table_lookup (query, "device");
  g_message ("agent API: request to %.64s%s from %s (claiming device %.64s) refused: %s token"
             " (%u refusals not logged since the last)",
             path, strlen (path) > 64 ? "…" : "", soup_server_message_get_remote_host (msg),
             claimed != NULL ? claimed : "none", token == NULL ? "no" : "wrong",
             api->refusals_unlogged);
  api->refusal_logged = now;
  api->refusals_unlogged = 0;
  return token == NULL ? "missing device token" : "unknown device token";
}

/* Returns the device, or NULL after answering 401 */
static ShoalDevice *
authenticate (AgentApi          *api,
              SoupServerMessage *msg,
              GHashTable        *query,
              const gchar       *path)
{
  const gchar *token = request_token (msg, query);
  ShoalDevice *device = shoal_controller_lookup_device_by_token (api->controller, token);

  if (device != NULL)
    {
      /* where the agent is reached (the multicast step picks its
       * interface by it) */
      const gchar *host = soup_server_message_get_remote_host (msg);

      if (host != NULL && g_strcmp0 (shoal_device_get_metadata (device, "agent.address"), host) != 0)
        shoal_device_set_metadata (device, "agent.address", host);
      /* the agent holds its token now (its loader's first request): a
       * boot script asked for after this gets a new one */
      shoal_controller_token_claimed (api->controller, device);
      return device;
    }
  respond_error (msg, SOUP_STATUS_UNAUTHORIZED, log_refusal (api, msg, query, path, token));
  return NULL;
}

/* --- refusing a request before its body --------------------------------- */

/* libsoup reads a request's whole body into memory before it calls the
 * handler, and answers only once it has read it: a limit checked in the
 * handler bounds nothing. A request that is refused anyway (too large, of
 * unknown size, without a valid token) is answered from got-headers
 * instead, on the connection taken from libsoup, which is then closed
 * without reading the body. */

static void
refuse_early (SoupServerMessage *msg,
              guint              status,
              const gchar       *reason)
{
  g_autofree gchar *body = error_text (reason);

  g_debug ("agent API: %u %s (before the body)", status, reason);
  shoal_http_refuse_early (msg, status, "application/json", body);
}

static void
got_headers_cb (SoupServerMessage *msg,
                AgentApi          *api)
{
  GUri *uri = soup_server_message_get_uri (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(GHashTable) query = NULL;
  const gchar *token;
  const gchar *reason;

  if (uri == NULL || !g_str_has_prefix (g_uri_get_path (uri), "/agent/v1/"))
    return;
  switch (soup_message_headers_get_encoding (headers))
    {
    case SOUP_ENCODING_NONE:
      return;
    case SOUP_ENCODING_CONTENT_LENGTH:
      if (soup_message_headers_get_content_length (headers) == 0)
        return;
      if (soup_message_headers_get_content_length (headers) > MAX_BODY)
        {
          refuse_early (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                        _("body exceeds the limit of 1048576 bytes"));
          return;
        }
      break;
    default:
      refuse_early (msg, SOUP_STATUS_LENGTH_REQUIRED, _("a body must have a Content-Length"));
      return;
    }
  if (g_uri_get_query (uri) != NULL)
    query = g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_NONE, NULL);
  token = request_token (msg, query);
  if (shoal_controller_lookup_device_by_token (api->controller, token) != NULL)
    return;
  reason = log_refusal (api, msg, query, g_uri_get_path (uri), token);
  refuse_early (msg, SOUP_STATUS_UNAUTHORIZED, reason);
}

static void
request_started_cb (SoupServer        *server,
                    SoupServerMessage *msg,
                    AgentApi          *api)
{
  g_signal_connect (msg, "got-headers", G_CALLBACK (got_headers_cb), api);
}

static JsonNode *
read_json_body (SoupServerMessage  *msg,
                GError            **error)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  gsize size;
  const gchar *data;

  if (body->length > MAX_BODY)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("body of %lld bytes exceeds the limit of %d bytes"),
                   (long long) body->length, MAX_BODY);
      return NULL;
    }
  bytes = soup_message_body_flatten (body);
  data = g_bytes_get_data (bytes, &size);
  if (size == 0)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, _("empty body"));
      return NULL;
    }
  if (!g_utf8_validate (data, (gssize) size, NULL))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, _("body is not UTF-8"));
      return NULL;
    }
  if (!shoal_json_check_depth (data, size, MAX_DEPTH))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("JSON nested too deeply (more than %d levels)"), MAX_DEPTH);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, (gssize) size, error))
    {
      g_prefix_error (error, _("malformed JSON: "));
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                           _("body must be a JSON object"));
      return NULL;
    }
  return json_node_ref (json_parser_get_root (parser));
}

static gboolean
require_method (SoupServerMessage *msg,
                const gchar       *method)
{
  if (g_strcmp0 (soup_server_message_get_method (msg), method) == 0)
    return TRUE;
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", method);
  respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, _("method not allowed"));
  return FALSE;
}

/* 202 {"status": @status} */
static void
respond_status (SoupServerMessage *msg,
                const gchar       *status)
{
  g_autofree gchar *text = object_text ("status", status);

  soup_server_message_set_status (msg, SOUP_STATUS_ACCEPTED, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    text, strlen (text));
}

static void
respond_accepted (SoupServerMessage *msg)
{
  respond_status (msg, "accepted");
}

static void
inventory_cb (SoupServer        *server,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  AgentApi *api = user_data;
  ShoalDevice *device;
  g_autoptr(JsonNode) inventory = NULL;
  g_autoptr(ShoalJsonSchema) schema = NULL;
  g_autoptr(GError) error = NULL;

  if (!require_method (msg, "POST") || (device = authenticate (api, msg, query, path)) == NULL)
    return;
  inventory = read_json_body (msg, &error);
  schema = inventory != NULL ? shoal_json_schema_new_for_name ("inventory", NULL) : NULL;
  if (inventory != NULL && schema != NULL &&
      !shoal_json_schema_validate (schema, inventory, &error))
    g_clear_pointer (&inventory, json_node_unref);
  if (inventory == NULL)
    {
      shoal_device_log (device, "agent-api", "inventory", SHOAL_JOURNAL_RESULT_FAILED,
                        "inventory refused: %s", error->message);
      respond_error (msg, error->code == SHOAL_ERROR_INVALID_DATA &&
                     g_str_has_prefix (error->message, _("body of"))
                     ? SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE : SOUP_STATUS_UNPROCESSABLE_ENTITY,
                     error->message);
      return;
    }
  shoal_device_log (device, "agent-api", "inventory", SHOAL_JOURNAL_RESULT_OK,
                    "inventory received (%" G_GINT64_FORMAT " bytes)",
                    soup_server_message_get_request_body (msg)->length);
  shoal_device_post_event (device, "inventory", inventory);
  respond_accepted (msg);
}

static gboolean
valid_event_name (const gchar *name)
{
  gsize len = name != NULL ? strlen (name) : 0;

  if (len == 0 || len > 64)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && strchr ("._-", name[i]) == NULL)
      return FALSE;
  return TRUE;
}

/* The string member @name of @object: @def when it is absent or null,
 * NULL when it is not a string */
static const gchar *
string_member (JsonObject  *object,
               const gchar *name,
               const gchar *def)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return def;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
handle_progress (ShoalDevice *device,
                 JsonObject  *data)
{
  JsonNode *node = data != NULL ? json_object_get_member (data, "fraction") : NULL;
  gdouble before = shoal_device_get_progress (device);
  gdouble fraction;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) ||
      (json_node_get_value_type (node) != G_TYPE_DOUBLE && json_node_get_value_type (node) != G_TYPE_INT64))
    return FALSE;
  fraction = json_node_get_double (node);
  if (fraction < 0.0 || fraction > 1.0)
    return TRUE;
  shoal_device_set_progress (device, fraction);
  if ((gint) (fraction * 10) != (gint) (before * 10))
    shoal_device_log (device, "agent", "progress", SHOAL_JOURNAL_RESULT_INFO,
                      "%s %.0f %%", shoal_device_get_current_step (device) != NULL
                        ? shoal_device_get_current_step (device) : "", fraction * 100);
  return TRUE;
}

static gboolean
handle_log (ShoalDevice *device,
            JsonObject  *data)
{
  const gchar *operation = string_member (data, "operation", "agent");
  const gchar *result = string_member (data, "result", "info");
  const gchar *message = string_member (data, "message", "");

  if (operation == NULL || result == NULL || message == NULL)
    return FALSE;
  shoal_device_log_literal (device, "agent", operation,
                            shoal_journal_result_from_string (result), message);
  return TRUE;
}

/* The member "serial" of an event: -1 when absent or null; FALSE when it
 * is not an unsigned integer */
static gboolean
event_serial (JsonObject *object,
              gint64     *serial)
{
  JsonNode *node = json_object_get_member (object, "serial");

  *serial = -1;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64 ||
      json_node_get_int (node) < 0)
    return FALSE;
  *serial = json_node_get_int (node);
  return TRUE;
}

/* An event of an instruction the device no longer has: a cancelled or
 * superseded instruction's agent still at work. Its progress goes to the
 * debug log only (there is one every few seconds); any other event to the
 * journal as a warning, since a step of this deployment does not take it */
static void
drop_stale_event (ShoalDevice *device,
                  const gchar *name,
                  guint64      serial)
{
  guint64 current = shoal_device_get_instruction_serial (device);

  g_debug ("agent API: %s: event %s of instruction %" G_GUINT64_FORMAT " dropped, the device's is %"
           G_GUINT64_FORMAT, shoal_device_get_id (device), name, serial, current);
  if (g_strcmp0 (name, "progress") == 0)
    return;
  shoal_device_log (device, "agent", name, SHOAL_JOURNAL_RESULT_WARNING,
                    "event %s of instruction %" G_GUINT64_FORMAT " ignored: the device has been given "
                    "instruction %" G_GUINT64_FORMAT " since", name, serial, current);
}

#define MAX_ERROR_TEXT 512  /* bytes of an error event's message in the journal */

/* @text of an agent's "error" event as the journal shows it: valid UTF-8,
 * control characters as spaces, at most MAX_ERROR_TEXT bytes (whole
 * characters, an ellipsis after) */
static gchar *
journal_text (const gchar *text)
{
  g_autofree gchar *valid = g_utf8_make_valid (text, -1);
  GString *out = g_string_new (NULL);

  for (const gchar *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (out->len + 6 > MAX_ERROR_TEXT)
        {
          g_string_append (out, "…");
          break;
        }
      if (g_unichar_iscntrl (c))
        g_string_append_c (out, ' ');
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

/* an agent's "error" event in its journal, with what failed and why (the
 * step waiting for it may fail the device, or not) */
static void
log_error_event (ShoalDevice *device,
                 JsonObject  *data)
{
  const gchar *action = string_member (data, "action", NULL);
  const gchar *message = string_member (data, "message", NULL);
  g_autofree gchar *action_text = action != NULL ? journal_text (action) : NULL;
  g_autofree gchar *message_text = message != NULL ? journal_text (message) : NULL;

  if (action_text != NULL && message_text != NULL)
    shoal_device_log (device, "agent", "error", SHOAL_JOURNAL_RESULT_WARNING,
                      "agent reported error: %s failed: %s", action_text, message_text);
  else if (message_text != NULL)
    shoal_device_log (device, "agent", "error", SHOAL_JOURNAL_RESULT_WARNING,
                      "agent reported error: %s", message_text);
  else
    shoal_device_log (device, "agent", "error", SHOAL_JOURNAL_RESULT_WARNING,
                      "agent reported error (no message)");
}

static void
event_cb (SoupServer        *server,
          SoupServerMessage *msg,
          const char        *path,
          GHashTable        *query,
          gpointer           user_data)
{
  AgentApi *api = user_data;
  ShoalDevice *device;
  g_autoptr(JsonNode) body = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *object;
  JsonObject *data_object;
  const gchar *name;
  JsonNode *data;
  gint64 serial;

  if (!require_method (msg, "POST") || (device = authenticate (api, msg, query, path)) == NULL)
    return;
  body = read_json_body (msg, &error);
  if (body == NULL)
    {
      respond_error (msg, SOUP_STATUS_BAD_REQUEST, error->message);
      return;
    }
  object = json_node_get_object (body);
  name = string_member (object, "event", NULL);
  if (!valid_event_name (name))
    {
      respond_error (msg, SOUP_STATUS_BAD_REQUEST,
                     _("member “event” must be a name of 1 to 64 letters, digits or ._-"));
      return;
    }
  if (!event_serial (object, &serial))
    {
      respond_error (msg, SOUP_STATUS_BAD_REQUEST, _("member “serial” must be an unsigned integer"));
      return;
    }
  if (serial >= 0 && shoal_device_event_serial_is_stale (device, (guint64) serial))
    {
      drop_stale_event (device, name, (guint64) serial);
      respond_status (msg, "stale");
      return;
    }
  data = json_object_get_member (object, "data");
  data_object = data != NULL && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL;
  if (g_strcmp0 (name, "progress") == 0)
    {
      if (!handle_progress (device, data_object))
        {
          respond_error (msg, SOUP_STATUS_BAD_REQUEST, _("member “fraction” must be a number"));
          return;
        }
    }
  else if (g_strcmp0 (name, "log") == 0)
    {
      if (!handle_log (device, data_object))
        {
          respond_error (msg, SOUP_STATUS_BAD_REQUEST,
                         _("members “operation”, “result” and “message” must be strings"));
          return;
        }
    }
  else
    {
      if (g_strcmp0 (name, "error") == 0)
        log_error_event (device, data_object);
      else
        shoal_device_log (device, "agent", name, SHOAL_JOURNAL_RESULT_INFO, "agent reported %s", name);
      shoal_device_post_event (device, name, data);
    }
  respond_accepted (msg);
}

/* --- long poll ---------------------------------------------------------- */

typedef struct {
  AgentApi          *api;
  SoupServerMessage *msg;
  ShoalDevice       *device;
  gchar             *token;     /* the one the request was taken with */
  guint64            after;
  gulong             notify_id;
  gulong             finished_id;
  guint              timeout_id;
} NextWait;

static void
next_wait_free (NextWait *wait)
{
  g_clear_signal_handler (&wait->notify_id, wait->device);
  g_clear_signal_handler (&wait->finished_id, wait->msg);
  g_clear_handle_id (&wait->timeout_id, g_source_remove);
  g_clear_object (&wait->device);
  g_clear_object (&wait->msg);
  g_free (wait->token);
  g_free (wait);
}

/* 200 {"serial": @serial, "instruction": @instruction} */
static void
respond_serial_instruction (SoupServerMessage *msg,
                            gint64             serial,
                            JsonNode          *instruction)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "serial");
  json_builder_add_int_value (builder, serial);
  json_builder_set_member_name (builder, "instruction");
  json_builder_add_value (builder, json_node_copy (instruction));
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  respond_json (msg, SOUP_STATUS_OK, node);
}

static void
respond_instruction (SoupServerMessage *msg,
                     ShoalDevice       *device)
{
  respond_serial_instruction (msg, (gint64) shoal_device_get_instruction_serial (device),
                              shoal_device_get_instruction (device));
}

/* The answer to the agent of the device's previous deployment (@token is
 * its superseded token): reboot, with a serial above the one it saw.
 * FALSE when @token is no device's superseded token */
static gboolean
respond_superseded (AgentApi          *api,
                    SoupServerMessage *msg,
                    const gchar       *token,
                    guint64            after)
{
  ShoalDevice *device = shoal_controller_lookup_device_by_superseded_token (api->controller, token);
  g_autoptr(JsonNode) reboot = NULL;

  if (device == NULL)
    return FALSE;
  reboot = json_from_string ("{\"action\": \"reboot\", \"reason\": \"superseded\"}", NULL);
  shoal_controller_superseded_agent_told (api->controller, device);
  respond_serial_instruction (msg, (gint64) MIN (after, (guint64) G_MAXINT64 - 1) + 1, reboot);
  return TRUE;
}

static gboolean
instruction_ready (ShoalDevice *device,
                   guint64      after)
{
  return shoal_device_get_instruction (device) != NULL &&
         shoal_device_get_instruction_serial (device) > after;
}

/* Answers a long poll whose token is no longer the device's (a new
 * deployment started, or a boot script re-issued the token) as a request
 * with that token is answered now, never with the device's instruction;
 * FALSE when the token is still the device's */
static gboolean
next_token_changed (NextWait *wait)
{
  if (g_strcmp0 (shoal_device_get_token (wait->device), wait->token) == 0)
    return FALSE;
  if (!respond_superseded (wait->api, wait->msg, wait->token, wait->after))
    respond_error (wait->msg, SOUP_STATUS_UNAUTHORIZED, "unknown device token");
  soup_server_message_unpause (wait->msg);
  next_wait_free (wait);
  return TRUE;
}

static void
next_instruction_cb (ShoalDevice *device,
                     GParamSpec  *pspec,
                     NextWait    *wait)
{
  if (next_token_changed (wait) || !instruction_ready (device, wait->after))
    return;
  respond_instruction (wait->msg, device);
  soup_server_message_unpause (wait->msg);
  next_wait_free (wait);
}

static gboolean
next_timeout_cb (gpointer user_data)
{
  NextWait *wait = user_data;

  wait->timeout_id = 0;
  if (next_token_changed (wait))
    return G_SOURCE_REMOVE;
  soup_server_message_set_status (wait->msg, SOUP_STATUS_NO_CONTENT, NULL);
  soup_server_message_unpause (wait->msg);
  next_wait_free (wait);
  return G_SOURCE_REMOVE;
}

static void
next_finished_cb (SoupServerMessage *msg,
                  NextWait          *wait)
{
  /* The client went away while waiting */
  next_wait_free (wait);
}

static void
next_cb (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  AgentApi *api = user_data;
  ShoalDevice *device;
  const gchar *after_str = query != NULL ? g_hash_table_lookup (query, "after") : NULL;
  const gchar *wait_str = query != NULL ? g_hash_table_lookup (query, "wait") : NULL;
  guint64 after = 0, wait_s = 30;
  gboolean valid;
  NextWait *wait;

  if (!require_method (msg, "GET"))
    return;
  valid = (after_str == NULL || g_ascii_string_to_unsigned (after_str, 10, 0, G_MAXUINT64, &after, NULL)) &&
          (wait_str == NULL || g_ascii_string_to_unsigned (wait_str, 10, 0, MAX_WAIT, &wait_s, NULL));
  /* the previous deployment's agent: told to reboot, and nothing else */
  if (shoal_controller_lookup_device_by_token (api->controller, request_token (msg, query)) == NULL &&
      respond_superseded (api, msg, request_token (msg, query), valid ? after : 0))
    return;
  if ((device = authenticate (api, msg, query, path)) == NULL)
    return;
  if (!valid)
    {
      respond_error (msg, SOUP_STATUS_BAD_REQUEST,
                     _("“after” must be an unsigned integer and “wait” at most 120"));
      return;
    }
  if (instruction_ready (device, after))
    {
      respond_instruction (msg, device);
      return;
    }
  if (wait_s == 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return;
    }
  wait = g_new0 (NextWait, 1);
  wait->api = api;
  wait->msg = g_object_ref (msg);
  wait->device = g_object_ref (device);
  wait->token = g_strdup (request_token (msg, query));
  wait->after = after;
  wait->notify_id = g_signal_connect (device, "notify::instruction",
                                      G_CALLBACK (next_instruction_cb), wait);
  wait->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (next_finished_cb), wait);
  wait->timeout_id = g_timeout_add_seconds ((guint) wait_s, next_timeout_cb, wait);
  soup_server_message_pause (msg);
}

void
shoal_agent_api_register (ShoalController *controller,
                          SoupServer      *server)
{
  AgentApi *api = g_new0 (AgentApi, 1);

  api->controller = controller;
  soup_server_add_handler (server, "/agent/v1/inventory", inventory_cb, api, g_free);
  soup_server_add_handler (server, "/agent/v1/event", event_cb, api, NULL);
  soup_server_add_handler (server, "/agent/v1/next", next_cb, api, NULL);
  g_signal_connect (server, "request-started", G_CALLBACK (request_started_cb), api);
  /* got_headers_cb bounds the bodies of every /agent/v1/ route */
  shoal_http_server_allow_body (server, "/agent/v1", SHOAL_HTTP_BODY_ROUTE_CHECKS);
}
