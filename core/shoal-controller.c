/* shoal-controller.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "shoal-controller-internal.h"
#include "shoal-enums.h"
#include "shoal-error.h"
#include "shoal-step-private.h"

/**
 * ShoalController:
 *
 * The record of every device the daemon manages (claim 7) and the driver
 * of their installations: it registers devices on first contact, assigns
 * recipes, and runs the pipelines of thousands of devices on one main
 * loop, without a thread per device. Per-device steps run for each device
 * whenever it gets there (asynchronously across devices); group steps run
 * once for each group a rendezvous forms (concurrently for its members).
 *
 * Every transition is written to the store and acknowledged (the next
 * step starts) only once it is durable. After a crash, shoal_controller_open()
 * and shoal_controller_start_services() resume every device at its last
 * completed step.
 */

enum {
  SIGNAL_DEVICE_ADDED,
  SIGNAL_DEVICE_REMOVED,
  SIGNAL_JOURNAL_APPENDED,
  SIGNAL_RECIPES_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* discovery's bounds (discovery_allowed()): a fleet larger than this is
 * enrolled by the operator; a minute's worth of first boots at once */
#define DISCOVER_MAX_DEFAULT  10000
#define DISCOVER_RATE_DEFAULT 1200

G_DEFINE_FINAL_TYPE (ShoalController, shoal_controller, G_TYPE_OBJECT)



/* --- records ------------------------------------------------------------ */

static void
device_record_free (DeviceRecord *rec)
{
  g_signal_handlers_disconnect_by_data (rec->device, rec);
  shoal_controller_leave_group (rec);
  g_clear_handle_id (&rec->timeout_id, g_source_remove);
  if (rec->cancellable != NULL)
    g_cancellable_cancel (rec->cancellable);
  g_clear_object (&rec->cancellable);
  g_clear_object (&rec->pipeline);
  g_clear_object (&rec->device);
  g_free (rec->inventory_json);
  g_free (rec->uuid_key);
  g_free (rec->recipe_digest);
  g_free (rec);
}

static void
slot_free (Slot *slot)
{
  g_queue_clear (&slot->waiting);
  g_queue_clear_full (&slot->pending, shoal_controller_pending_group_free);
  g_free (slot);
}

static void
shoal_controller_dispose (GObject *object)
{
  ShoalController *self = SHOAL_CONTROLLER (object);

  shoal_controller_close (self);
  shoal_controller_set_recipe_loader (self, NULL, NULL, NULL);
  g_clear_pointer (&self->to_resume, g_ptr_array_unref);
  g_clear_pointer (&self->by_mac, g_hash_table_unref);
  g_clear_pointer (&self->by_uuid, g_hash_table_unref);
  g_clear_pointer (&self->by_token, g_hash_table_unref);
  g_clear_pointer (&self->by_superseded, g_hash_table_unref);
  g_clear_pointer (&self->identity_noted, g_hash_table_unref);
  g_clear_pointer (&self->devices, g_hash_table_unref);
  g_clear_pointer (&self->slots, g_hash_table_unref);
  g_clear_pointer (&self->expected, g_hash_table_unref);
  g_clear_pointer (&self->pipelines, g_hash_table_unref);
  g_clear_pointer (&self->recipes, g_hash_table_unref);
  g_clear_pointer (&self->stored_recipes, g_hash_table_unref);
  g_clear_pointer (&self->group_serial, g_atomic_rc_box_release);
  g_clear_object (&self->context);
  g_clear_object (&self->http_server);
  G_OBJECT_CLASS (shoal_controller_parent_class)->dispose (object);
}

static void
shoal_controller_finalize (GObject *object)
{
  ShoalController *self = SHOAL_CONTROLLER (object);

  g_clear_object (&self->store);
  if (self->lock_fd >= 0)
    g_close (self->lock_fd, NULL);
  self->lock_fd = -1;
  g_clear_object (&self->engine);
  g_clear_pointer (&self->kv, g_hash_table_unref);
  g_clear_pointer (&self->config, g_key_file_unref);
  g_free (self->state_dir);
  g_free (self->data_dir);
  g_free (self->server_url);
  G_OBJECT_CLASS (shoal_controller_parent_class)->finalize (object);
}

static void
shoal_controller_class_init (ShoalControllerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = shoal_controller_dispose;
  object_class->finalize = shoal_controller_finalize;

  signals[SIGNAL_DEVICE_ADDED] =
    g_signal_new ("device-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, SHOAL_TYPE_DEVICE);
  signals[SIGNAL_DEVICE_REMOVED] =
    g_signal_new ("device-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, SHOAL_TYPE_DEVICE);
  /**
   * ShoalController::journal-appended:
   * @self: the controller
   * @device: the device
   * @entry: the entry, numbered and durable
   */
  signals[SIGNAL_JOURNAL_APPENDED] =
    g_signal_new ("journal-appended", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, SHOAL_TYPE_DEVICE,
                  SHOAL_TYPE_JOURNAL_ENTRY | G_SIGNAL_TYPE_STATIC_SCOPE);
  signals[SIGNAL_RECIPES_CHANGED] =
    g_signal_new ("recipes-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
shoal_controller_init (ShoalController *self)
{
  self->devices = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) device_record_free);
  self->by_mac = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->by_uuid = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_ptr_array_unref);
  self->by_token = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->by_superseded = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->identity_noted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->recipes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->pipelines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->expected = g_hash_table_new (NULL, NULL);
  self->slots = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) slot_free);
  self->kv = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->stored_recipes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->to_resume = g_ptr_array_new ();
  self->group_serial = g_atomic_rc_box_new0 (guint64);
  self->config = g_key_file_new ();
  self->auto_deploy = TRUE;
  self->discover_max = DISCOVER_MAX_DEFAULT;
  self->discover_rate = DISCOVER_RATE_DEFAULT;
  self->discover_tokens = DISCOVER_RATE_DEFAULT;
  self->discover_refilled_us = g_get_monotonic_time ();
  self->default_timeout = 3600;
  self->store = shoal_store_new ();
  self->lock_fd = -1;
}

/**
 * shoal_controller_new:
 * @engine: the plugin engine, with its plugins loaded
 * @state_dir: where the store and generated artifacts live
 *
 * Returns: (transfer full): a new controller
 */
ShoalController *
shoal_controller_new (ShoalPluginEngine *engine,
                      const gchar       *state_dir)
{
  ShoalController *self;

  g_return_val_if_fail (SHOAL_IS_PLUGIN_ENGINE (engine), NULL);
  g_return_val_if_fail (state_dir != NULL, NULL);

  self = g_object_new (SHOAL_TYPE_CONTROLLER, NULL);
  self->engine = g_object_ref (engine);
  self->state_dir = g_strdup (state_dir);
  self->data_dir = g_strdup (g_getenv ("SHOAL_UNINSTALLED") != NULL
                             ? SHOAL_SOURCE_DATADIR : SHOAL_PKGDATADIR);
  self->context = shoal_context_new (self);
  return self;
}

/* --- persistence -------------------------------------------------------- */

static gchar *
metadata_to_json (ShoalDevice *device)
{
  g_autoptr(GHashTable) metadata = shoal_device_get_metadata_all (device);
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonNode) root = NULL;
  GHashTableIter iter;
  gpointer key, value;

  if (g_hash_table_size (metadata) == 0)
    return NULL;
  builder = json_builder_new ();
  json_builder_begin_object (builder);
  g_hash_table_iter_init (&iter, metadata);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      json_builder_set_member_name (builder, key);
      json_builder_add_string_value (builder, value);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}

void
shoal_controller_persist (DeviceRecord *rec)
{
  ShoalDevice *device = rec->device;
  ShoalStoreDevice *row = g_new0 (ShoalStoreDevice, 1);

  row->id = g_strdup (shoal_device_get_id (device));
  row->macs = g_strjoinv (",", (gchar **) shoal_device_get_macs (device));
  row->uuid = g_strdup (shoal_device_get_uuid (device));
  row->token = g_strdup (shoal_device_get_token (device));
  row->state = shoal_device_get_state (device);
  row->boot_action = shoal_device_get_boot_action (device);
  row->recipe = g_strdup (shoal_device_get_recipe (device));
  row->recipe_commit = g_strdup (shoal_device_get_recipe_commit (device));
  row->group_id = g_strdup (shoal_device_get_group (device));
  row->current_step = g_strdup (shoal_device_get_current_step (device));
  row->step_index = (gint) rec->step_index;
  row->progress = shoal_device_get_progress (device);
  row->inventory = g_strdup (rec->inventory_json);
  row->metadata = metadata_to_json (device);
  row->run_no = rec->run_no;
  row->updated_us = g_get_real_time ();
  row->instruction_serial = shoal_device_get_instruction_serial (device);
  row->recipe_digest = g_strdup (rec->recipe_digest);
  shoal_store_put_device (rec->controller->store, row);
  rec->controller->transitions++;
}

static void
journal_entry_cb (ShoalDevice       *device,
                  ShoalJournalEntry *entry,
                  DeviceRecord      *rec)
{
  shoal_journal_entry_set_seq (entry, ++rec->journal_seq);
  shoal_store_append_journal (rec->controller->store, entry);
  if (shoal_journal_entry_get_result (entry) == SHOAL_JOURNAL_RESULT_FAILED)
    g_info ("%s: %s: %s: %s", shoal_device_get_id (device),
            shoal_journal_entry_get_source (entry),
            shoal_journal_entry_get_operation (entry),
            shoal_journal_entry_get_message (entry));
}

static void
committed_cb (GPtrArray *entries,
              gpointer   user_data)
{
  ShoalController *self = user_data;

  for (guint i = 0; i < entries->len; i++)
    {
      ShoalJournalEntry *entry = g_ptr_array_index (entries, i);
      DeviceRecord *rec = g_hash_table_lookup (self->devices,
                                               shoal_journal_entry_get_device_id (entry));

      if (rec != NULL)
        g_signal_emit (self, signals[SIGNAL_JOURNAL_APPENDED], 0, rec->device, entry);
    }
}

static void
inventory_changed_cb (ShoalDevice  *device,
                      GParamSpec   *pspec,
                      DeviceRecord *rec)
{
  JsonNode *inventory = shoal_device_get_inventory (device);

  g_clear_pointer (&rec->inventory_json, g_free);
  if (inventory != NULL)
    rec->inventory_json = json_to_string (inventory, FALSE);
  if (shoal_device_state_is_active (shoal_device_get_state (device)))
    rec->recheck_recipe = TRUE;
  shoal_controller_persist (rec);
}

/* An instruction's serial is queued for the store as it is handed out,
 * before an agent waiting on GET /agent/v1/next can see it (that handler
 * is connected later), so the row has it one commit later; see
 * restore_record() for that commit */
static void
instruction_changed_cb (ShoalDevice  *device,
                        GParamSpec   *pspec,
                        DeviceRecord *rec)
{
  shoal_controller_persist (rec);
}

/* --- device records ----------------------------------------------------- */

/* The UUID index (by_uuid): every device whose UUID is set, under that
 * UUID in lower case, so that a look-up costs the same with a fleet of
 * any size. Kept by add_record(), shoal_controller_remove_device() and
 * notify::uuid (whoever sets it: the controller, a plugin). A store
 * written before UUIDs were unique may give several devices one UUID:
 * each is listed, and lookup_record_by_uuid() counts them */
static void
unindex_uuid (DeviceRecord *rec)
{
  GPtrArray *recs;

  if (rec->uuid_key == NULL)
    return;
  recs = g_hash_table_lookup (rec->controller->by_uuid, rec->uuid_key);
  if (recs != NULL)
    {
      g_ptr_array_remove_fast (recs, rec);
      if (recs->len == 0)
        g_hash_table_remove (rec->controller->by_uuid, rec->uuid_key);
    }
  g_clear_pointer (&rec->uuid_key, g_free);
}

static void
index_uuid (DeviceRecord *rec)
{
  const gchar *uuid = shoal_device_get_uuid (rec->device);
  g_autofree gchar *key = uuid != NULL && *uuid != '\0' ? g_ascii_strdown (uuid, -1) : NULL;
  GPtrArray *recs;

  if (g_strcmp0 (key, rec->uuid_key) == 0)
    return;
  unindex_uuid (rec);
  if (key == NULL)
    return;
  recs = g_hash_table_lookup (rec->controller->by_uuid, key);
  if (recs == NULL)
    {
      recs = g_ptr_array_new ();
      g_hash_table_insert (rec->controller->by_uuid, g_strdup (key), recs);
    }
  g_ptr_array_add (recs, rec);
  rec->uuid_key = g_steal_pointer (&key);
}

static void
uuid_changed_cb (ShoalDevice  *device,
                 GParamSpec   *pspec,
                 DeviceRecord *rec)
{
  index_uuid (rec);
}

static DeviceRecord *
add_record (ShoalController *self,
            ShoalDevice     *device)
{
  DeviceRecord *rec = g_new0 (DeviceRecord, 1);
  const gchar * const *macs = shoal_device_get_macs (device);

  rec->controller = self;
  rec->device = g_object_ref (device);
  g_hash_table_insert (self->devices, (gpointer) shoal_device_get_id (device), rec);
  for (guint i = 0; macs[i] != NULL; i++)
    g_hash_table_replace (self->by_mac, g_strdup (macs[i]), rec);
  shoal_controller_index_tokens (rec);
  index_uuid (rec);
  g_signal_connect (device, "notify::uuid", G_CALLBACK (uuid_changed_cb), rec);
  g_signal_connect (device, "journal-entry", G_CALLBACK (journal_entry_cb), rec);
  g_signal_connect (device, "notify::inventory", G_CALLBACK (inventory_changed_cb), rec);
  g_signal_connect (device, "notify::instruction", G_CALLBACK (instruction_changed_cb), rec);
  return rec;
}

DeviceRecord *
shoal_controller_lookup_record (ShoalController *self,
                                ShoalDevice     *device)
{
  if (device == NULL)
    return NULL;
  return g_hash_table_lookup (self->devices, shoal_device_get_id (device));
}

static gboolean
valid_device_id (const gchar  *id,
                 GError      **error)
{
  gsize len = id != NULL ? strlen (id) : 0;

  if (len == 0 || len > 64)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("device id must have 1 to 64 characters"));
      return FALSE;
    }
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isalnum (id[i]) && strchr ("._:-", id[i]) == NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                       _("device id “%s” has character “%c”: only letters, digits and . _ : - are allowed"),
                       id, id[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* SMBIOS UUIDs that cheap boards ship with instead of a unique one:
 * every such machine reports the same value, so it identifies nothing.
 * All zeros and all FF (the SMBIOS spec's "not present" and "not set"),
 * and AMI's template value ("To Be Filled By O.E.M." boards), in SMBIOS
 * byte order and in the byte-swapped order some PXE ROMs send */
static const gchar *const placeholder_uuids[] = {
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "03000200-0400-0500-0006-000700080009",
  "00020003-0004-0005-0006-000700080009",
};

/**
 * shoal_controller_uuid_is_placeholder:
 * @uuid: (nullable): an SMBIOS UUID
 *
 * Whether @uuid is a value that many machines share (all zeros, all FF,
 * a vendor's template): such a UUID is treated as absent, never as a
 * device's identity.
 *
 * Returns: %TRUE for a known placeholder
 */
gboolean
shoal_controller_uuid_is_placeholder (const gchar *uuid)
{
  if (uuid == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (placeholder_uuids); i++)
    if (g_ascii_strcasecmp (uuid, placeholder_uuids[i]) == 0)
      return TRUE;
  return FALSE;
}

/**
 * shoal_controller_uuid_is_valid:
 * @uuid: (nullable): a string that claims to be an SMBIOS UUID
 *
 * Whether @uuid has the form of a UUID: 32 hex digits (either case) in
 * groups of 8-4-4-4-12 separated by dashes, and nothing else. Whatever
 * comes from the network or a caller is checked with this before it is
 * recorded or journaled: a UUID is shown by shoalctl and written into
 * boot script URLs.
 *
 * Returns: %TRUE for a well-formed UUID
 */
gboolean
shoal_controller_uuid_is_valid (const gchar *uuid)
{
  if (uuid == NULL || strlen (uuid) != 36)
    return FALSE;
  for (guint i = 0; i < 36; i++)
    {
      gboolean dash = i == 8 || i == 13 || i == 18 || i == 23;

      if (dash ? uuid[i] != '-' : !g_ascii_isxdigit (uuid[i]))
        return FALSE;
    }
  return TRUE;
}

/* @uuid if it can identify a machine: NULL when absent, empty, malformed
 * or a placeholder */
static const gchar *
identity_uuid (const gchar *uuid)
{
  if (!shoal_controller_uuid_is_valid (uuid) || shoal_controller_uuid_is_placeholder (uuid))
    return NULL;
  return uuid;
}

/* The device whose UUID is @uuid (in any case), from the index; @n_found
 * tells how many have it (more than one only in a store written before
 * UUIDs were unique: then the one of them with the smallest id) */
static DeviceRecord *
lookup_record_by_uuid (ShoalController *self,
                       const gchar     *uuid,
                       guint           *n_found)
{
  g_autofree gchar *key = NULL;
  DeviceRecord *found = NULL;
  GPtrArray *recs;

  *n_found = 0;
  if (uuid == NULL || *uuid == '\0')
    return NULL;
  key = g_ascii_strdown (uuid, -1);
  recs = g_hash_table_lookup (self->by_uuid, key);
  for (guint i = 0; recs != NULL && i < recs->len; i++)
    {
      DeviceRecord *rec = g_ptr_array_index (recs, i);

      if (found == NULL ||
          g_strcmp0 (shoal_device_get_id (rec->device), shoal_device_get_id (found->device)) < 0)
        found = rec;
    }
  *n_found = recs != NULL ? recs->len : 0;
  return found;
}

static gboolean
valid_mac (const gchar *mac)
{
  guint octets[6];
  gchar rest;

  return mac != NULL && strlen (mac) == 17 &&
         sscanf (mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &octets[0], &octets[1], &octets[2],
                 &octets[3], &octets[4], &octets[5], &rest) == 6;
}

/**
 * shoal_controller_enroll_device:
 * @self: a controller
 * @id: a unique id (letters, digits, `._:-`)
 * @macs: (array zero-terminated=1) (nullable): its MAC addresses
 * @uuid: (nullable): its SMBIOS UUID
 * @error: return location for a #GError
 *
 * Registers a device. Durable once the next commit completes. A UUID is
 * a device's identity and is unique: one another device has fails with
 * %SHOAL_ERROR_EXISTS. A placeholder UUID (all zeros, all FF, a vendor's
 * template: shoal_controller_uuid_is_placeholder()) is not recorded. A
 * malformed one (shoal_controller_uuid_is_valid()) fails with
 * %SHOAL_ERROR_INVALID_ARGUMENT; a valid one is recorded in lower case.
 *
 * Returns: (transfer none): the device
 */
ShoalDevice *
shoal_controller_enroll_device (ShoalController     *self,
                                const gchar         *id,
                                const gchar * const *macs,
                                const gchar         *uuid,
                                GError             **error)
{
  g_autoptr(ShoalDevice) device = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *lower_uuid = NULL;
  const gchar *placeholder = NULL;
  DeviceRecord *rec;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  if (!valid_device_id (id, error))
    return NULL;
  if (g_hash_table_contains (self->devices, id))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS, _("device %s already exists"), id);
      return NULL;
    }
  for (guint i = 0; macs != NULL && macs[i] != NULL; i++)
    {
      g_autofree gchar *mac = g_ascii_strdown (macs[i], -1);
      DeviceRecord *other;

      if (!valid_mac (mac))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                       _("“%s” is not a MAC address (expected six hex pairs separated by colons)"),
                       macs[i]);
          return NULL;
        }
      other = g_hash_table_lookup (self->by_mac, mac);
      if (other != NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS, _("MAC %s already belongs to device %s"),
                       mac, shoal_device_get_id (other->device));
          return NULL;
        }
    }

  if (uuid != NULL && *uuid != '\0')
    {
      if (!shoal_controller_uuid_is_valid (uuid))
        {
          g_autofree gchar *shown = g_strescape (uuid, NULL);

          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                       _("“%s” is not an SMBIOS UUID (expected 8-4-4-4-12 hex digits separated by dashes)"),
                       shown);
          return NULL;
        }
      if (shoal_controller_uuid_is_placeholder (uuid))
        placeholder = uuid;
      else
        {
          guint n_found;
          DeviceRecord *other = lookup_record_by_uuid (self, uuid, &n_found);

          if (other != NULL)
            {
              g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS, _("UUID %s already belongs to device %s"),
                           uuid, shoal_device_get_id (other->device));
              return NULL;
            }
          lower_uuid = g_ascii_strdown (uuid, -1);
        }
    }

  device = shoal_device_new (id);
  shoal_device_set_macs (device, macs);
  shoal_device_set_uuid (device, lower_uuid);
  token = shoal_controller_new_token ();
  shoal_device_set_token (device, token);
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_LOCAL);
  rec = add_record (self, device);
  TRANSITION_BEGIN (self);
  shoal_device_log (device, "controller", "enroll", SHOAL_JOURNAL_RESULT_OK,
                    "device enrolled%s%s", lower_uuid != NULL ? ", uuid " : "",
                    lower_uuid != NULL ? lower_uuid : "");
  if (placeholder != NULL)
    shoal_device_log (device, "controller", "enroll", SHOAL_JOURNAL_RESULT_INFO,
                      "uuid %s not recorded: it is a placeholder that many boards report, "
                      "so the device is known by its MAC addresses only", placeholder);
  shoal_controller_persist (rec);
  TRANSITION_END (self);
  g_signal_emit (self, signals[SIGNAL_DEVICE_ADDED], 0, device);
  return device;
}

/* --- public: recipes ---------------------------------------------------- */

/* Whether a recipe's "match" has criteria of its own (a default recipe
 * matches every device; one without criteria, none by itself) */
static gboolean
recipe_has_criteria (ShoalRecipe *recipe)
{
  JsonObject *match = shoal_recipe_get_match (recipe);

  return match != NULL && (json_object_has_member (match, "macs") || json_object_has_member (match, "inventory"));
}

/* Why @rec cannot go on with @pipeline after the step it has just
 * finished (rec->step_index of rec->pipeline), or NULL when it can: the
 * steps it ran must be @pipeline's first steps too, the same steps under
 * the same ids, so that what they did (the boot, the inventory) stands
 * and the step number means the same in both */
static gchar *
steps_done_differ (DeviceRecord  *rec,
                   ShoalPipeline *pipeline)
{
  ShoalPipeline *ran = rec->pipeline;

  if (shoal_pipeline_get_n_steps (pipeline) <= rec->step_index)
    return g_strdup_printf ("it has %u steps, this deployment ran %u",
                            shoal_pipeline_get_n_steps (pipeline), rec->step_index + 1);
  for (guint i = 0; i <= rec->step_index; i++)
    {
      if (g_strcmp0 (shoal_pipeline_get_step_id (pipeline, i), shoal_pipeline_get_step_id (ran, i)) != 0 ||
          g_strcmp0 (shoal_pipeline_get_step_name (pipeline, i), shoal_pipeline_get_step_name (ran, i)) != 0)
        return g_strdup_printf ("its step %u is %s (%s) where this deployment ran %s (%s)", i + 1,
                                shoal_pipeline_get_step_id (pipeline, i), shoal_pipeline_get_step_name (pipeline, i),
                                shoal_pipeline_get_step_id (ran, i), shoal_pipeline_get_step_name (ran, i));
    }
  return NULL;
}

static void keep_recipe_version (DeviceRecord *rec,
                                 ShoalRecipe  *recipe);

/* @rec's run goes on with @recipe (in service, on @pipeline) from the
 * step after the one it has just finished, in the caller's transition:
 * the device's recipe and commit become @recipe's, and it counts at the
 * rendezvous of @pipeline instead of its first recipe's */
static void
switch_recipe (DeviceRecord  *rec,
               ShoalRecipe   *recipe,
               ShoalPipeline *pipeline)
{
  ShoalDevice *device = rec->device;
  g_autofree gchar *was = g_strdup (shoal_device_get_recipe (device));
  const gchar *commit = shoal_recipe_get_commit (recipe);
  guint next = rec->step_index + 1;

  shoal_controller_uncount (rec);
  g_set_object (&rec->pipeline, pipeline);
  if (shoal_pipeline_get_first_group_step (pipeline) >= (gint) next)
    {
      rec->counted = TRUE;
      shoal_controller_set_expected (rec->controller, pipeline, +1);
    }
  shoal_device_set_recipe (device, shoal_recipe_get_name (recipe));
  shoal_device_set_recipe_commit (device, commit);
  /* a restart resumes it on this recipe: the version it records is this
   * one's, kept when it has no commit, as at the start of a deployment */
  g_free (rec->recipe_digest);
  rec->recipe_digest = g_strdup (shoal_recipe_get_digest (recipe));
  if (commit == NULL)
    keep_recipe_version (rec, recipe);
  shoal_device_log (device, "controller", "recipe-switch", SHOAL_JOURNAL_RESULT_INFO,
                    "recipe %s was chosen by matching an earlier inventory; the new inventory matches "
                    "recipe %s (commit %s), which starts with the %s this deployment ran: "
                    "deployment %" G_GINT64_FORMAT " goes on with it at step %u of %u (%s)",
                    was, shoal_recipe_get_name (recipe), commit != NULL ? commit : "none",
                    next == 1 ? "step" : "steps", rec->run_no, next + 1, shoal_pipeline_get_n_steps (pipeline),
                    next < shoal_pipeline_get_n_steps (pipeline)
                      ? shoal_pipeline_get_step_id (pipeline, next) : "none left");
}

/* After a new inventory came during @rec's run (at the end of the step
 * that brought it, in its transition): a recipe chosen by matching is
 * chosen again, and when another recipe matches now, the run goes on
 * with it if the steps it ran are that recipe's first steps too (the
 * usual case: a machine discovered without an inventory got the default
 * recipe, and its inventory step brings what an inventory-based recipe
 * matches); otherwise, or when no recipe matches any more, the run
 * fails, since the device is not what it was chosen for. A recipe
 * assigned by name whose match rules no longer hold gets a warning and
 * the run goes on. Returns FALSE when the run failed. */
gboolean
shoal_controller_recheck_recipe (DeviceRecord *rec)
{
  ShoalController *self = rec->controller;
  ShoalDevice *device = rec->device;
  ShoalRecipe *recipe = shoal_pipeline_get_recipe (rec->pipeline);
  const gchar *name = shoal_recipe_get_name (recipe);
  g_autoptr(GPtrArray) recipes = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *differ = NULL;
  const gchar *id = shoal_device_get_id (device);
  ShoalPipeline *pipeline;
  ShoalRecipe *now;

  rec->recheck_recipe = FALSE;
  if (g_strcmp0 (shoal_device_get_metadata (device, RECIPE_AUTO_KEY), "true") != 0)
    {
      if (recipe_has_criteria (recipe) && !shoal_recipe_matches (recipe, device))
        shoal_device_log (device, "controller", "recipe-check", SHOAL_JOURNAL_RESULT_WARNING,
                          "the new inventory does not match the rules of recipe %s, which was "
                          "assigned by name: the deployment goes on with it", name);
      return TRUE;
    }
  recipes = shoal_controller_get_recipes (self);
  now = shoal_recipe_select (recipes, device);
  if (now != NULL && g_strcmp0 (shoal_recipe_get_name (now), name) == 0)
    return TRUE;
  if (now == NULL)
    {
      g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "recipe %s was chosen by matching an earlier inventory, but no recipe matches "
                   "the new inventory: the deployment stops; assign a recipe and redeploy", name);
      shoal_controller_fail_device (rec, "controller", error);
      return FALSE;
    }
  pipeline = g_hash_table_lookup (self->pipelines, shoal_recipe_get_name (now));
  differ = pipeline != NULL ? steps_done_differ (rec, pipeline) : g_strdup ("it is not loaded");
  if (differ == NULL)
    {
      switch_recipe (rec, now, pipeline);
      return TRUE;
    }
  g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               "recipe %s was chosen by matching an earlier inventory, but the new inventory "
               "matches recipe %s, which cannot take the deployment over (%s): the deployment "
               "stops; redeploy (shoalctl assign --auto %s, then shoalctl deploy %s)",
               name, shoal_recipe_get_name (now), differ, id, id);
  shoal_controller_fail_device (rec, "controller", error);
  return FALSE;
}

/* Recipes added with shoal_controller_add_stored_recipe() (over D-Bus)
 * are kept in the store's key/value table, one key per recipe name, the
 * value {"source": ..., "recipe": {...}}. Once in service (added, or
 * loaded at start-up), a stored recipe's copy follows it: whatever
 * replaces or removes it (the repository's sync, another recipe of its
 * name) deletes the copy, so a restart brings back what was in service.
 * Recipes added at start-up before the stored ones are loaded (the
 * recipe directory's) do not touch the copies: those replace them. The
 * daemon's start-up fetch of the recipe repository, which comes after,
 * leaves the stored recipes alone (shoal_controller_is_stored_recipe()):
 * they were added after the fetch in service before the restart. */
#define KV_STORED_RECIPES "controller-recipes"

/* A recipe that comes again unchanged (its JSON), as every sync of the
 * recipe repository brings it, keeps its pipeline, whatever its commit:
 * the repository stamps each recipe with the commit it was read from, so
 * a commit that changes another recipe, or none, brings the same recipe
 * at a new commit, and the devices at its rendezvous still meet the
 * devices deployed after. The recipe in service (self->recipes) is the
 * new one, for its commit: a deployment records and journals the commit
 * of the recipe in service when it starts (start_run()), at which the
 * recipe is the pipeline's. The commit is what it is shown with, not
 * what identifies it. A recipe that changed gets a new pipeline; the
 * devices deployed with the old one keep it to the end and form groups
 * among themselves, named from the same counter as the new pipeline's */
static ShoalPipeline *
new_pipeline (ShoalController  *self,
              ShoalRecipe      *recipe,
              GError          **error)
{
  g_autoptr(ShoalPipeline) pipeline = shoal_pipeline_new (recipe, self->engine, error);

  if (pipeline == NULL)
    return NULL;
  shoal_pipeline_set_group_serial (pipeline, self->group_serial);
  g_signal_connect_object (pipeline, "group-formed", G_CALLBACK (shoal_controller_group_formed_cb), self, 0);
  g_signal_connect_object (pipeline, "count-coming", G_CALLBACK (shoal_controller_count_coming_cb), self, 0);
  shoal_pipeline_set_expected (pipeline, 0);
  g_hash_table_insert (self->expected, pipeline, GUINT_TO_POINTER (0));
  return g_steal_pointer (&pipeline);
}

static gboolean
put_recipe (ShoalController  *self,
            ShoalRecipe      *recipe,
            GError          **error)
{
  g_autoptr(ShoalPipeline) pipeline = NULL;
  ShoalPipeline *current = g_hash_table_lookup (self->pipelines, shoal_recipe_get_name (recipe));

  if (current != NULL &&
      json_node_equal (shoal_recipe_get_json (shoal_pipeline_get_recipe (current)),
                       shoal_recipe_get_json (recipe)))
    {
      g_hash_table_replace (self->recipes, g_strdup (shoal_recipe_get_name (recipe)),
                            g_object_ref (recipe));
      return TRUE;
    }
  pipeline = new_pipeline (self, recipe, error);
  if (pipeline == NULL)
    return FALSE;
  g_hash_table_replace (self->recipes, g_strdup (shoal_recipe_get_name (recipe)),
                        g_object_ref (recipe));
  g_hash_table_replace (self->pipelines, g_strdup (shoal_recipe_get_name (recipe)),
                        g_steal_pointer (&pipeline));
  return TRUE;
}

static void
forget_stored_recipe (ShoalController *self,
                      const gchar     *name)
{
  if (g_hash_table_remove (self->stored_recipes, name))
    shoal_controller_kv_set (self, KV_STORED_RECIPES, name, NULL);
}

/**
 * shoal_controller_add_recipe:
 * @self: a controller
 * @recipe: a recipe
 * @error: return location for a #GError
 *
 * Adds or replaces a recipe, for this run of the daemon (the caller reads
 * it again at the next start, from its file or repository). Replacing a
 * recipe added with shoal_controller_add_stored_recipe() deletes its
 * stored copy. Devices already running keep the pipeline they started
 * with. A recipe whose JSON is that of the recipe in service keeps its
 * pipeline, whatever its commit, and the devices waiting at its
 * rendezvous go on waiting for the ones deployed after (the devices
 * deployed from then on record the new commit); a changed recipe's devices
 * deployed before the change form groups among themselves, with ids of
 * their own.
 */
gboolean
shoal_controller_add_recipe (ShoalController  *self,
                             ShoalRecipe      *recipe,
                             GError          **error)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  g_return_val_if_fail (SHOAL_IS_RECIPE (recipe), FALSE);

  if (!put_recipe (self, recipe, error))
    return FALSE;
  forget_stored_recipe (self, shoal_recipe_get_name (recipe));
  g_signal_emit (self, signals[SIGNAL_RECIPES_CHANGED], 0);
  return TRUE;
}

static gchar *
stored_recipe_to_data (ShoalRecipe *recipe)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "source");
  json_builder_add_string_value (builder, shoal_recipe_get_source (recipe));
  json_builder_set_member_name (builder, "recipe");
  json_builder_add_value (builder, json_node_copy (shoal_recipe_get_json (recipe)));
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}

/**
 * shoal_controller_add_stored_recipe:
 * @self: a controller
 * @recipe: a recipe
 * @error: return location for a #GError
 *
 * Adds or replaces a recipe as shoal_controller_add_recipe() does, and
 * keeps it in the store (durable once the next commit completes), so that
 * shoal_controller_load_stored_recipes() adds it again after a restart,
 * until another recipe of its name replaces it or it is removed.
 */
gboolean
shoal_controller_add_stored_recipe (ShoalController  *self,
                                    ShoalRecipe      *recipe,
                                    GError          **error)
{
  g_autofree gchar *data = NULL;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  g_return_val_if_fail (SHOAL_IS_RECIPE (recipe), FALSE);

  if (!put_recipe (self, recipe, error))
    return FALSE;
  data = stored_recipe_to_data (recipe);
  shoal_controller_kv_set (self, KV_STORED_RECIPES, shoal_recipe_get_name (recipe), data);
  g_hash_table_add (self->stored_recipes, g_strdup (shoal_recipe_get_name (recipe)));
  g_signal_emit (self, signals[SIGNAL_RECIPES_CHANGED], 0);
  return TRUE;
}

static ShoalRecipe *
stored_recipe_from_data (const gchar  *name,
                         const gchar  *data,
                         GError      **error)
{
  g_autoptr(JsonNode) root = json_from_string (data, error);
  g_autoptr(ShoalRecipe) recipe = NULL;
  JsonObject *object;
  JsonNode *document;

  if (root == NULL)
    return NULL;
  object = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  document = object != NULL ? json_object_get_member (object, "recipe") : NULL;
  if (document == NULL)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, "no recipe member");
      return NULL;
    }
  recipe = shoal_recipe_new_from_json (document,
                                       json_object_get_string_member_with_default (object, "source", NULL),
                                       error);
  if (recipe == NULL)
    return NULL;
  if (g_strcmp0 (shoal_recipe_get_name (recipe), name) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, "stored as %s but named %s",
                   name, shoal_recipe_get_name (recipe));
      return NULL;
    }
  return g_steal_pointer (&recipe);
}

/* The recipes that deployments started with and that have no commit (from
 * a file, added over D-Bus), kept in the store's key/value table, one key
 * per digest (shoal_recipe_get_digest()), the value as a stored recipe's:
 * a deployment interrupted by a restart resumes with the recipe it
 * recorded (resume_pipeline()), as a recipe from the repository resumes at
 * its commit, whatever the recipe of that name became meanwhile. Written
 * with the transition that starts the deployment; a version no
 * deployment under way recorded is deleted when another version is
 * written and after the deployments resumed at start-up */
#define KV_RECIPE_VERSIONS "controller-recipe-versions"

static void
prune_recipe_versions (ShoalController *self)
{
  g_autoptr(GHashTable) stored = shoal_controller_kv_list (self, KV_RECIPE_VERSIONS);
  g_autoptr(GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->devices);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      DeviceRecord *rec = value;

      if (rec->recipe_digest != NULL && shoal_device_get_recipe_commit (rec->device) == NULL &&
          shoal_device_state_is_active (shoal_device_get_state (rec->device)))
        g_hash_table_add (used, rec->recipe_digest);
    }
  g_hash_table_iter_init (&iter, stored);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (used, key))
      shoal_controller_kv_set (self, KV_RECIPE_VERSIONS, key, NULL);
}

/* Keeps @recipe, which a deployment of @rec started with and which has no
 * commit, for its resumption; @rec is counted active already */
static void
keep_recipe_version (DeviceRecord *rec,
                     ShoalRecipe  *recipe)
{
  ShoalController *self = rec->controller;
  const gchar *digest = shoal_recipe_get_digest (recipe);
  g_autofree gchar *full = g_strdup_printf ("%s\x1f%s", KV_RECIPE_VERSIONS, digest);
  g_autofree gchar *data = NULL;

  /* kept already, as every deployment of it after the first finds it */
  if (g_hash_table_contains (self->kv, full))
    return;
  data = stored_recipe_to_data (recipe);
  shoal_controller_kv_set (self, KV_RECIPE_VERSIONS, digest, data);
  prune_recipe_versions (self);
}

/* The recipe kept for a deployment that recorded @digest */
static ShoalRecipe *
load_recipe_version (ShoalController  *self,
                     const gchar      *name,
                     const gchar      *digest,
                     GError          **error)
{
  g_autofree gchar *data = shoal_controller_kv_get (self, KV_RECIPE_VERSIONS, digest);
  g_autoptr(ShoalRecipe) recipe = NULL;

  if (data == NULL)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("the store does not hold it"));
      return NULL;
    }
  recipe = stored_recipe_from_data (name, data, error);
  if (recipe == NULL)
    return NULL;
  if (g_strcmp0 (shoal_recipe_get_digest (recipe), digest) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("the store holds a recipe of another digest (sha256 %s) under it"),
                   shoal_recipe_get_digest (recipe));
      return NULL;
    }
  return g_steal_pointer (&recipe);
}

/* How a deployment's journal names the version of its recipe: its
 * commit, and for a recipe without one its digest */
gchar *
shoal_controller_describe_version (DeviceRecord *rec)
{
  const gchar *commit = shoal_device_get_recipe_commit (rec->device);

  if (commit != NULL || rec->recipe_digest == NULL)
    return g_strdup_printf ("at commit %s", commit != NULL ? commit : "none");
  return g_strdup_printf ("at commit none (sha256 %s)", rec->recipe_digest);
}

static gint
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/**
 * shoal_controller_load_stored_recipes:
 * @self: a controller, opened
 *
 * Adds the recipes of shoal_controller_add_stored_recipe() kept in the
 * store, replacing those of the same name already added (the daemon calls
 * it after reading its recipe directory: a stored recipe was added after
 * the directory was read, and was in service). A stored recipe that no
 * longer loads (a plugin gone) is reported in the log and kept in the
 * store for the next start.
 *
 * Returns: how many recipes were added
 */
guint
shoal_controller_load_stored_recipes (ShoalController *self)
{
  g_autoptr(GHashTable) stored = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;
  guint n_loaded = 0;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), 0);

  stored = shoal_controller_kv_list (self, KV_STORED_RECIPES);
  g_hash_table_iter_init (&iter, stored);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, key);
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      const gchar *name = g_ptr_array_index (names, i);
      g_autoptr(ShoalRecipe) recipe = NULL;
      g_autoptr(GError) error = NULL;

      recipe = stored_recipe_from_data (name, g_hash_table_lookup (stored, name), &error);
      if (recipe == NULL || !put_recipe (self, recipe, &error))
        {
          g_warning ("cannot load stored recipe %s: %s", name, error->message);
          continue;
        }
      g_hash_table_add (self->stored_recipes, g_strdup (name));
      n_loaded++;
    }
  if (n_loaded > 0)
    g_signal_emit (self, signals[SIGNAL_RECIPES_CHANGED], 0);
  g_info ("loaded %u recipes from the store", n_loaded);
  return n_loaded;
}

/**
 * shoal_controller_is_stored_recipe:
 * @self: a controller
 * @name: a recipe name
 *
 * Returns: whether the recipe of that name in service is one of
 *   shoal_controller_add_stored_recipe(), kept in the store
 */
gboolean
shoal_controller_is_stored_recipe (ShoalController *self,
                                   const gchar     *name)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  return name != NULL && g_hash_table_contains (self->stored_recipes, name);
}

gboolean
shoal_controller_remove_recipe (ShoalController  *self,
                                const gchar      *name,
                                GError          **error)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  if (name == NULL || !g_hash_table_remove (self->recipes, name))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("no recipe named %s"), name);
      return FALSE;
    }
  g_hash_table_remove (self->pipelines, name);
  forget_stored_recipe (self, name);
  g_signal_emit (self, signals[SIGNAL_RECIPES_CHANGED], 0);
  return TRUE;
}

/**
 * shoal_controller_lookup_recipe:
 * @self: a controller
 * @name: a recipe name
 *
 * Returns: (transfer none) (nullable): the recipe
 */
ShoalRecipe *
shoal_controller_lookup_recipe (ShoalController *self,
                                const gchar     *name)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  return name != NULL ? g_hash_table_lookup (self->recipes, name) : NULL;
}

/**
 * shoal_controller_lookup_pipeline:
 * @self: a controller
 * @recipe: a recipe name
 *
 * Returns: (transfer none) (nullable): the pipeline of @recipe
 */
ShoalPipeline *
shoal_controller_lookup_pipeline (ShoalController *self,
                                  const gchar     *recipe)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  return recipe != NULL ? g_hash_table_lookup (self->pipelines, recipe) : NULL;
}

static gint
compare_recipes (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (shoal_recipe_get_name (*(ShoalRecipe **) a),
                    shoal_recipe_get_name (*(ShoalRecipe **) b));
}

/**
 * shoal_controller_get_recipes:
 * @self: a controller
 *
 * Returns: (transfer container) (element-type ShoalRecipe): the recipes, by name
 */
GPtrArray *
shoal_controller_get_recipes (ShoalController *self)
{
  GPtrArray *recipes = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), recipes);
  g_hash_table_iter_init (&iter, self->recipes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (recipes, g_object_ref (value));
  g_ptr_array_sort (recipes, compare_recipes);
  return recipes;
}

/* --- public: devices ---------------------------------------------------- */

/**
 * shoal_controller_lookup_device:
 * @self: a controller
 * @id: a device id
 *
 * Returns: (transfer none) (nullable): the device
 */
ShoalDevice *
shoal_controller_lookup_device (ShoalController *self,
                                const gchar     *id)
{
  DeviceRecord *rec;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  rec = id != NULL ? g_hash_table_lookup (self->devices, id) : NULL;
  return rec != NULL ? rec->device : NULL;
}

/**
 * shoal_controller_lookup_device_by_mac:
 * @self: a controller
 * @mac: a MAC address
 *
 * Returns: (transfer none) (nullable): the device
 */
ShoalDevice *
shoal_controller_lookup_device_by_mac (ShoalController *self,
                                       const gchar     *mac)
{
  g_autofree gchar *lower = NULL;
  DeviceRecord *rec;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  if (mac == NULL)
    return NULL;
  lower = g_ascii_strdown (mac, -1);
  rec = g_hash_table_lookup (self->by_mac, lower);
  return rec != NULL ? rec->device : NULL;
}

/**
 * shoal_controller_lookup_device_by_token:
 * @self: a controller
 * @token: a device token
 *
 * Returns: (transfer none) (nullable): the device
 */
ShoalDevice *
shoal_controller_lookup_device_by_token (ShoalController *self,
                                         const gchar     *token)
{
  DeviceRecord *rec;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  rec = token != NULL ? g_hash_table_lookup (self->by_token, token) : NULL;
  return rec != NULL ? rec->device : NULL;
}

/* The device whose UUID @uuid is; NULL for a placeholder, and when more
 * than one device has it (a store written before UUIDs were unique):
 * then it names none of them */
ShoalDevice *
shoal_controller_lookup_device_by_uuid (ShoalController *self,
                                        const gchar     *uuid)
{
  DeviceRecord *rec;
  guint n_found;

  if (uuid == NULL || shoal_controller_uuid_is_placeholder (uuid))
    return NULL;
  rec = lookup_record_by_uuid (self, uuid, &n_found);
  return rec != NULL && n_found == 1 ? rec->device : NULL;
}

static gint
compare_devices (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (shoal_device_get_id (*(ShoalDevice **) a),
                    shoal_device_get_id (*(ShoalDevice **) b));
}

/**
 * shoal_controller_get_devices:
 * @self: a controller
 *
 * Returns: (transfer container) (element-type ShoalDevice): every device, by id
 */
GPtrArray *
shoal_controller_get_devices (ShoalController *self)
{
  GPtrArray *devices = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), devices);
  g_hash_table_iter_init (&iter, self->devices);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (devices, g_object_ref (((DeviceRecord *) value)->device));
  g_ptr_array_sort (devices, compare_devices);
  return devices;
}

/**
 * shoal_controller_get_run_recipe:
 * @self: a controller
 * @device: a device
 *
 * The recipe the device's current or last deployment runs: the one it
 * started with, which a change of the recipe since (a sync, AddRecipe)
 * does not replace for it.
 *
 * Returns: (transfer none) (nullable): that recipe; %NULL when the device
 *   never deployed since the daemon started
 */
ShoalRecipe *
shoal_controller_get_run_recipe (ShoalController *self,
                                 ShoalDevice     *device)
{
  DeviceRecord *rec;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  rec = shoal_controller_lookup_record (self, device);
  return rec != NULL && rec->pipeline != NULL ? shoal_pipeline_get_recipe (rec->pipeline) : NULL;
}

/**
 * shoal_controller_assign_recipe:
 * @self: a controller
 * @device: a device
 * @recipe: (nullable): a recipe name, or %NULL to select one by matching
 * @error: return location for a #GError
 *
 * A recipe selected by matching is marked so (metadata `recipe.auto`,
 * "true"): when a new inventory arrives during its deployment, the
 * selection is made again, and if another recipe matches now the
 * deployment goes on with it when it starts with the steps the
 * deployment ran, and fails otherwise (shoal_controller_recheck_recipe()).
 * A recipe named here is only checked: its match rules failing on the new
 * inventory are journaled as a warning.
 */
gboolean
shoal_controller_assign_recipe (ShoalController  *self,
                                ShoalDevice      *device,
                                const gchar      *recipe,
                                GError          **error)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);
  ShoalRecipe *chosen;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  if (rec == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("unknown device"));
      return FALSE;
    }
  if (shoal_device_state_is_active (shoal_device_get_state (device)))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                   _("device %s is being deployed; cancel it first"), shoal_device_get_id (device));
      return FALSE;
    }
  if (recipe == NULL || *recipe == '\0')
    {
      g_autoptr(GPtrArray) recipes = shoal_controller_get_recipes (self);

      chosen = shoal_recipe_select (recipes, device);
      if (chosen == NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                       _("no recipe matches device %s"), shoal_device_get_id (device));
          return FALSE;
        }
    }
  else if ((chosen = g_hash_table_lookup (self->recipes, recipe)) == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("no recipe named “%s”"), recipe);
      return FALSE;
    }
  TRANSITION_BEGIN (self);
  shoal_device_set_recipe (device, shoal_recipe_get_name (chosen));
  /* how it was chosen: an inventory that comes during a run re-checks it
   * (shoal_controller_recheck_recipe()) */
  shoal_device_set_metadata (device, RECIPE_AUTO_KEY, recipe == NULL || *recipe == '\0' ? "true" : NULL);
  if (shoal_device_get_state (device) == SHOAL_DEVICE_STATE_DISCOVERED)
    shoal_device_set_state (device, SHOAL_DEVICE_STATE_ASSIGNED);
  shoal_device_log (device, "controller", "assign", SHOAL_JOURNAL_RESULT_OK,
                    "recipe %s assigned%s (commit %s)", shoal_recipe_get_name (chosen),
                    recipe == NULL || *recipe == '\0' ? " by matching" : "",
                    shoal_recipe_get_commit (chosen) != NULL ? shoal_recipe_get_commit (chosen) : "none");
  shoal_controller_persist (rec);
  TRANSITION_END (self);
  return TRUE;
}

/* Device metadata belongs to a deployment: start_run() clears every key
 * but these, which describe the machine rather than what a deployment
 * did (how its firmware asks to network-boot, rewritten at every DHCP
 * request; no step reads them), or its assignment (whether its recipe
 * was chosen by matching, set at every assignment). The previous deployment's driver
 * selection, agent (whose service would serve it at once), image,
 * multicast session and addresses, and any key a plugin sets, are gone
 * when the next deployment starts, as on a device deployed for the first
 * time. The inventory is not metadata: it is kept (recipes are matched
 * against it) until the agent reports it again */
static const gchar *const kept_metadata_keys[] = {
  "pxe.client", "pxe.arch", RECIPE_AUTO_KEY, SHOAL_CONTROLLER_SUPERSEDED_KEY,
};

static void
clear_run_metadata (ShoalDevice *device)
{
  g_autoptr(GHashTable) metadata = shoal_device_get_metadata_all (device);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, metadata);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_strv_contains ((const gchar * const *) kept_metadata_keys, key))
      shoal_device_set_metadata (device, key, NULL);
}

/* @recipe is the recipe in service, whose JSON is that of @pipeline's
 * (put_recipe()) but whose commit may be newer: the one recorded. The
 * digest recorded is that of @pipeline's recipe, which the steps run */
static void
start_run (DeviceRecord  *rec,
           ShoalRecipe   *recipe,
           ShoalPipeline *pipeline)
{
  ShoalDevice *device = rec->device;
  g_autofree gchar *version = NULL;

  TRANSITION_BEGIN (rec->controller);
  g_set_object (&rec->pipeline, pipeline);
  g_clear_object (&rec->cancellable);
  rec->cancellable = g_cancellable_new ();
  rec->run_no++;
  rec->step_index = 0;
  rec->recheck_recipe = FALSE;
  /* a new token, before the instruction is cleared: a long poll of the
   * previous deployment's agent is then answered for the token it holds
   * (shoal-agent-api.c), never with this deployment's instructions */
  shoal_controller_token_new_deployment (rec);
  shoal_controller_next_attempt (rec);
  shoal_device_set_recipe_commit (device, shoal_recipe_get_commit (recipe));
  g_free (rec->recipe_digest);
  rec->recipe_digest = g_strdup (shoal_recipe_get_digest (shoal_pipeline_get_recipe (pipeline)));
  shoal_device_set_group (device, NULL);
  shoal_device_set_current_step (device, NULL);
  shoal_device_set_progress (device, 0.0);
  shoal_device_set_instruction (device, NULL);
  shoal_device_clear_events (device);
  /* the agent service answers 503 until this deployment's agent step has
   * generated its own */
  clear_run_metadata (device);
  shoal_device_set_state (device, SHOAL_DEVICE_STATE_QUEUED);
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_DEPLOY);
  if (shoal_recipe_get_commit (recipe) == NULL)
    keep_recipe_version (rec, shoal_pipeline_get_recipe (pipeline));
  version = shoal_controller_describe_version (rec);
  shoal_device_log (device, "controller", "deploy", SHOAL_JOURNAL_RESULT_INFO,
                    "deployment %" G_GINT64_FORMAT " of recipe %s %s, %u steps",
                    rec->run_no, shoal_recipe_get_name (recipe), version,
                    shoal_pipeline_get_n_steps (pipeline));
  if (shoal_pipeline_get_first_group_step (pipeline) >= 0)
    {
      rec->counted = TRUE;
      shoal_controller_set_expected (rec->controller, pipeline, +1);
    }
  shoal_controller_persist (rec);
  TRANSITION_END (rec->controller);
  shoal_controller_commit_then_advance (rec);
}

/**
 * shoal_controller_deploy:
 * @self: a controller
 * @device: a device with a recipe
 * @error: return location for a #GError
 *
 * Starts the installation of @device with its recipe.
 */
gboolean
shoal_controller_deploy (ShoalController  *self,
                         ShoalDevice      *device,
                         GError          **error)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);
  ShoalPipeline *pipeline;
  ShoalRecipe *recipe;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  if (rec == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("unknown device"));
      return FALSE;
    }
  if (shoal_device_state_is_active (shoal_device_get_state (device)))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY, _("device %s is already being deployed"),
                   shoal_device_get_id (device));
      return FALSE;
    }
  if (shoal_device_get_recipe (device) == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("device %s has no recipe; assign one first"), shoal_device_get_id (device));
      return FALSE;
    }
  pipeline = g_hash_table_lookup (self->pipelines, shoal_device_get_recipe (device));
  recipe = g_hash_table_lookup (self->recipes, shoal_device_get_recipe (device));
  if (pipeline == NULL || recipe == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("recipe %s of device %s is not loaded"),
                   shoal_device_get_recipe (device), shoal_device_get_id (device));
      return FALSE;
    }
  start_run (rec, recipe, pipeline);
  return TRUE;
}

/**
 * shoal_controller_cancel:
 * @self: a controller
 * @device: a device being deployed
 * @error: return location for a #GError
 */
gboolean
shoal_controller_cancel (ShoalController  *self,
                         ShoalDevice      *device,
                         GError          **error)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  if (rec == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("unknown device"));
      return FALSE;
    }
  if (!shoal_device_state_is_active (shoal_device_get_state (device)))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY, _("device %s is not being deployed"),
                   shoal_device_get_id (device));
      return FALSE;
    }
  shoal_controller_next_attempt (rec);
  g_clear_handle_id (&rec->timeout_id, g_source_remove);
  g_cancellable_cancel (rec->cancellable);
  if (rec->waiting)
    shoal_pipeline_rendezvous_leave (rec->pipeline, rec->step_index, device);
  rec->waiting = FALSE;
  if (rec->queued)
    {
      g_queue_remove (&shoal_controller_get_slot (self, rec->pipeline, rec->step_index)->waiting, rec);
      rec->queued = FALSE;
      rec->fallback = FALSE;
    }
  shoal_controller_uncount (rec);
  TRANSITION_BEGIN (self);
  shoal_controller_stop_agent (device, "cancelled");
  shoal_device_set_state (device, SHOAL_DEVICE_STATE_CANCELLED);
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_LOCAL);
  shoal_device_log (device, "controller", "cancel", SHOAL_JOURNAL_RESULT_WARNING,
                    "deployment cancelled at step %s",
                    shoal_device_get_current_step (device) != NULL
                      ? shoal_device_get_current_step (device) : "(none)");
  shoal_controller_persist (rec);
  TRANSITION_END (self);
  shoal_store_flush_async (self->store, NULL, NULL, NULL);
  return TRUE;
}

/**
 * shoal_controller_set_boot_action:
 * @self: a controller
 * @device: a device
 * @action: how the network boot service is to boot it from now on
 * @source: what asked for it, for the journal ("dbus")
 * @requester: (nullable): who asked for it, for the journal
 * @error: return location for a #GError
 *
 * Sets @device's boot action as an operator asks (a deployment sets its
 * own), journals it and records it in the store, in one transition:
 * durable once the next commit completes. Setting the action the device
 * already has changes nothing and journals nothing.
 */
gboolean
shoal_controller_set_boot_action (ShoalController  *self,
                                  ShoalDevice      *device,
                                  ShoalBootAction   action,
                                  const gchar      *source,
                                  const gchar      *requester,
                                  GError          **error)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  g_return_val_if_fail (source != NULL, FALSE);
  if (rec == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("unknown device"));
      return FALSE;
    }
  if (shoal_device_get_boot_action (device) == action)
    return TRUE;
  TRANSITION_BEGIN (self);
  shoal_device_set_boot_action (device, action);
  shoal_device_log (device, source, "set-boot-action", SHOAL_JOURNAL_RESULT_OK,
                    "boot action set to %s%s%s", shoal_boot_action_to_string (action),
                    requester != NULL ? " by " : "", requester != NULL ? requester : "");
  shoal_controller_persist (rec);
  TRANSITION_END (self);
  return TRUE;
}

/**
 * shoal_controller_remove_mac:
 * @self: a controller
 * @device: a device
 * @mac: one of its MAC addresses (six hex pairs separated by colons, in
 *   either case)
 * @source: what asked for it, for the journal ("dbus")
 * @requester: (nullable): who asked for it, for the journal
 * @error: return location for a #GError
 *
 * Takes @mac off @device, as an operator does when a NIC the device
 * collected (it booted from it) went into another machine: from then on
 * a machine that boots from @mac is not this device (with a UUID it is
 * the UUID's device, which records the MAC; without one, a new device).
 * Journaled on @device and recorded in the store in one transition,
 * durable once the next commit completes. A device may be left without
 * MAC addresses, as it may be enrolled without them. Fails with
 * %SHOAL_ERROR_INVALID_ARGUMENT for something that is not a MAC address,
 * %SHOAL_ERROR_NOT_FOUND when @device does not have @mac, and
 * %SHOAL_ERROR_BUSY while @device runs a deployment (which may be booting
 * from that NIC): cancel it first.
 *
 * Returns: %TRUE if @mac was removed
 */
gboolean
shoal_controller_remove_mac (ShoalController  *self,
                             ShoalDevice      *device,
                             const gchar      *mac,
                             const gchar      *source,
                             const gchar      *requester,
                             GError          **error)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);
  g_autofree gchar *lower = NULL;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) macs = NULL;
  g_autofree gchar *left = NULL;
  const gchar *id;
  DeviceRecord *owner;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  g_return_val_if_fail (source != NULL, FALSE);
  if (rec == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("unknown device"));
      return FALSE;
    }
  id = shoal_device_get_id (device);
  lower = mac != NULL ? g_ascii_strdown (mac, -1) : NULL;
  if (!valid_mac (lower))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not a MAC address (expected six hex pairs separated by colons)"),
                   mac != NULL ? mac : "");
      return FALSE;
    }
  if (!shoal_device_has_mac (device, lower))
    {
      owner = g_hash_table_lookup (self->by_mac, lower);
      if (owner != NULL)
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("device %s has no MAC %s (device %s has it)"),
                     id, lower, shoal_device_get_id (owner->device));
      else
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("device %s has no MAC %s"), id, lower);
      return FALSE;
    }
  if (shoal_device_state_is_active (shoal_device_get_state (device)))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                   _("device %s is being deployed (%s): cancel it first with shoalctl cancel %s"),
                   id, shoal_device_state_to_string (shoal_device_get_state (device)), id);
      return FALSE;
    }
  for (const gchar * const *have = shoal_device_get_macs (device); *have != NULL; have++)
    if (g_strcmp0 (*have, lower) != 0)
      g_strv_builder_add (builder, *have);
  macs = g_strv_builder_end (builder);
  left = g_strjoinv (", ", macs);
  TRANSITION_BEGIN (self);
  shoal_device_set_macs (device, (const gchar * const *) macs);
  if (g_hash_table_lookup (self->by_mac, lower) == rec)
    g_hash_table_remove (self->by_mac, lower);
  shoal_device_log (device, source, "identity", SHOAL_JOURNAL_RESULT_OK,
                    "MAC %s removed%s%s: a machine booting from it is no longer this device; MACs left: %s",
                    lower, requester != NULL ? " by " : "", requester != NULL ? requester : "",
                    *left != '\0' ? left : "none");
  shoal_controller_persist (rec);
  TRANSITION_END (self);
  return TRUE;
}

/**
 * shoal_controller_remove_device:
 * @self: a controller
 * @id: a device id
 * @error: return location for a #GError
 *
 * Forgets a device, its journal and its record in the store. A device
 * whose deployment is running (any state from queued to finishing) is
 * refused with %SHOAL_ERROR_BUSY: it must be cancelled first, so that a
 * deployment is never dropped behind its operator's back. Devices that
 * are idle, installed, failed or cancelled can be removed.
 *
 * Returns: %TRUE if the device was removed
 */
gboolean
shoal_controller_remove_device (ShoalController  *self,
                                const gchar      *id,
                                GError          **error)
{
  DeviceRecord *rec;
  g_autoptr(ShoalDevice) device = NULL;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  rec = id != NULL ? g_hash_table_lookup (self->devices, id) : NULL;
  if (rec == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("no device %s"), id);
      return FALSE;
    }
  if (shoal_device_state_is_active (shoal_device_get_state (rec->device)))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                   _("device %s is being deployed (%s): cancel it first with shoalctl cancel %s"),
                   id, shoal_device_state_to_string (shoal_device_get_state (rec->device)), id);
      return FALSE;
    }
  device = g_object_ref (rec->device);
  for (const gchar * const *mac = shoal_device_get_macs (device); *mac != NULL; mac++)
    g_hash_table_remove (self->by_mac, *mac);
  shoal_controller_unindex_tokens (rec);
  unindex_uuid (rec);
  g_ptr_array_remove (self->to_resume, rec);
  g_hash_table_remove (self->devices, id);
  shoal_store_delete_device (self->store, shoal_device_get_id (device));
  shoal_store_flush_async (self->store, NULL, NULL, NULL);
  g_signal_emit (self, signals[SIGNAL_DEVICE_REMOVED], 0, device);
  shoal_context_emit_device_removed (self->context, device);
  return TRUE;
}

/**
 * shoal_controller_get_journal:
 * @self: a controller
 * @device: a device
 * @since_seq: return entries after this sequence number
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type ShoalJournalEntry): the durable entries
 */
GPtrArray *
shoal_controller_get_journal (ShoalController  *self,
                              ShoalDevice      *device,
                              guint64           since_seq,
                              GError          **error)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  g_return_val_if_fail (SHOAL_IS_DEVICE (device), NULL);
  return shoal_store_get_journal (self->store, shoal_device_get_id (device), since_seq, 0, error);
}

guint64
shoal_controller_get_transitions (ShoalController *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), 0);
  return self->transitions;
}

static void
commit_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!shoal_store_flush_finish (SHOAL_STORE (source), result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * shoal_controller_commit_async:
 * @self: a controller
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once everything so far is durable
 * @user_data: (closure callback): data for @callback
 *
 * Fails at once if the store cannot write now; the changes are kept in
 * memory and the store tries them again until they are written.
 */
void
shoal_controller_commit_async (ShoalController     *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, shoal_controller_commit_async);
  /* an answer now: a write that fails is kept and tried again */
  shoal_store_flush_full_async (self->store, SHOAL_STORE_FLUSH_FAIL_FAST, cancellable,
                                commit_cb, task);
}

gboolean
shoal_controller_commit_finish (ShoalController  *self,
                                GAsyncResult     *result,
                                GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* --- open, resume, services --------------------------------------------- */

static void
restore_record (ShoalController   *self,
                ShoalStoreDevice  *row,
                GHashTable        *seqs)
{
  g_autoptr(ShoalDevice) device = shoal_device_new (row->id);
  g_auto(GStrv) macs = g_strsplit (row->macs != NULL ? row->macs : "", ",", -1);
  guint64 *seq = g_hash_table_lookup (seqs, row->id);
  DeviceRecord *rec;

  shoal_device_set_macs (device, (const gchar * const *) (macs[0] != NULL && *macs[0] != '\0'
                                                          ? macs : &macs[g_strv_length (macs)]));
  shoal_device_set_uuid (device, row->uuid);
  shoal_device_set_token (device, row->token);
  shoal_device_set_state (device, (ShoalDeviceState) row->state);
  shoal_device_set_boot_action (device, (ShoalBootAction) row->boot_action);
  shoal_device_set_recipe (device, row->recipe);
  shoal_device_set_recipe_commit (device, row->recipe_commit);
  shoal_device_set_group (device, row->group_id);
  shoal_device_set_current_step (device, row->current_step);
  shoal_device_set_progress (device, row->progress);
  if (row->inventory != NULL)
    {
      g_autoptr(JsonNode) inventory = json_from_string (row->inventory, NULL);

      if (inventory != NULL)
        shoal_device_set_inventory (device, inventory);
    }
  if (row->metadata != NULL)
    {
      g_autoptr(JsonNode) metadata = json_from_string (row->metadata, NULL);

      if (metadata != NULL && JSON_NODE_HOLDS_OBJECT (metadata))
        {
          JsonObject *object = json_node_get_object (metadata);
          g_autoptr(GList) members = json_object_get_members (object);

          for (GList *l = members; l != NULL; l = l->next)
            shoal_device_set_metadata (device, l->data,
                                       json_object_get_string_member_with_default (object, l->data, NULL));
        }
    }
  /* Agents compare serials (GET /agent/v1/next?after=N, and the serial
   * an agent's config was generated with): one that saw N before the
   * restart waits for a serial above N, so the serial goes on from the
   * stored one, never from 0. One more than stored: an instruction handed
   * out while its row was still being committed (instruction_changed_cb()
   * queues it as it is set) may have reached the agent without reaching
   * the disk; each step gives the agent one instruction and waits for its
   * answer, and the next step starts once the transition is durable, so
   * at most that one can be missing */
  shoal_device_restore_instruction_serial (device, row->instruction_serial + 1);
  rec = add_record (self, device);
  rec->step_index = (guint) MAX (row->step_index, 0);
  rec->run_no = row->run_no;
  rec->journal_seq = seq != NULL ? *seq : 0;
  rec->inventory_json = g_strdup (row->inventory);
  rec->recipe_digest = g_strdup (row->recipe_digest);
  if (shoal_device_state_is_active (shoal_device_get_state (device)))
    g_ptr_array_add (self->to_resume, rec);
}

/* The last group number handed out, so that group ids stay unique across
 * restarts: the number goes on where the last run left it, where it
 * started again at 1 and only the seconds told two runs' groups apart
 * (not at all when shoald restarted within the second). It is written
 * when a group forms (shoal_controller_group_formed_cb()), queued with
 * the transitions and not waited for: it is queued before anything that
 * names the group, so the store never holds a group id without the
 * number that made it */
#define KV_GROUP_SERIAL_NS  "controller"
#define KV_GROUP_SERIAL_KEY "group-serial"

static void
load_group_serial (ShoalController *self)
{
  g_autofree gchar *value = shoal_controller_kv_get (self, KV_GROUP_SERIAL_NS, KV_GROUP_SERIAL_KEY);
  g_autoptr(GError) error = NULL;
  guint64 serial = 0;

  if (value == NULL)
    return;
  if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64, &serial, &error))
    {
      g_warning ("store: the last group number “%s” is not a number, group ids start again at 1: %s",
                 value, error->message);
      return;
    }
  *self->group_serial = MAX (*self->group_serial, serial);
}

void
shoal_controller_save_group_serial (ShoalController *self)
{
  g_autofree gchar *value = g_strdup_printf ("%" G_GUINT64_FORMAT, *self->group_serial);

  shoal_controller_kv_set (self, KV_GROUP_SERIAL_NS, KV_GROUP_SERIAL_KEY, value);
}

static gboolean
load_store (ShoalController  *self,
            GError          **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GHashTable) seqs = NULL;
  g_autoptr(GHashTable) kv = NULL;

  rows = shoal_store_load_devices (self->store, error);
  if (rows == NULL)
    return FALSE;
  seqs = shoal_store_load_journal_seqs (self->store, error);
  if (seqs == NULL)
    return FALSE;
  kv = shoal_store_load_kv (self->store, error);
  if (kv == NULL)
    return FALSE;
  g_clear_pointer (&self->kv, g_hash_table_unref);
  self->kv = g_steal_pointer (&kv);
  load_group_serial (self);
  for (guint i = 0; i < rows->len; i++)
    restore_record (self, g_ptr_array_index (rows, i), seqs);
  g_info ("store: %u devices, %u to resume", rows->len, self->to_resume->len);
  return TRUE;
}

/* Takes the lock of the state directory: an exclusive flock() on
 * <state dir>/lock, held until shoal_controller_close() (or the process
 * ends: the kernel drops it after a crash). The file holds the PID of
 * its holder, for the error of the next one. */
static gboolean
lock_state_dir (ShoalController *self, GError **error)
{
  g_autofree gchar *path = g_build_filename (self->state_dir, "lock", NULL);
  g_autofree gchar *pid = NULL;
  int fd;

  if (self->lock_fd >= 0)
    return TRUE;
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE, _("opening the lock file %s: %s"),
                   path, g_strerror (errsv));
      return FALSE;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      int errsv = errno;
      gchar buf[32] = { 0 };
      ssize_t n;

      if (errsv != EWOULDBLOCK)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE, _("locking %s: %s"),
                       path, g_strerror (errsv));
          g_close (fd, NULL);
          return FALSE;
        }
      n = pread (fd, buf, sizeof buf - 1, 0);
      g_close (fd, NULL);
      if (n > 0)
        {
          buf[n] = '\0';
          g_strstrip (buf);
        }
      if (buf[0] != '\0' && strspn (buf, "0123456789") == strlen (buf))
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                     _("The state directory %s is in use by another shoald (PID %s)"),
                     self->state_dir, buf);
      else
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                     _("The state directory %s is in use by another shoald"), self->state_dir);
      return FALSE;
    }
  pid = g_strdup_printf ("%ld\n", (long) getpid ());
  if (ftruncate (fd, 0) != 0 || pwrite (fd, pid, strlen (pid), 0) != (ssize_t) strlen (pid))
    g_debug ("writing the PID to %s: %s", path, g_strerror (errno));
  self->lock_fd = fd;
  return TRUE;
}

static void
unlock_state_dir (ShoalController *self)
{
  if (self->lock_fd < 0)
    return;
  /* the file stays: unlinking it would let a third process lock a new
   * file while a second still waits on the old one */
  if (ftruncate (self->lock_fd, 0) != 0)
    g_debug ("emptying the lock file: %s", g_strerror (errno));
  g_close (self->lock_fd, NULL);
  self->lock_fd = -1;
}

/**
 * shoal_controller_open:
 * @self: a controller
 * @error: return location for a #GError
 *
 * Takes the lock of the state directory (another controller, in this
 * process or another, that holds it makes this fail with
 * %SHOAL_ERROR_BUSY, naming the directory and the holder's PID), then
 * opens the store in it and loads every device. Devices whose deployment
 * was interrupted resume when shoal_controller_start_services() runs,
 * once the recipes are added. shoal_controller_close() releases the lock.
 */
gboolean
shoal_controller_open (ShoalController  *self,
                       GError          **error)
{
  g_autofree gchar *path = NULL;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  if (g_mkdir_with_parents (self->state_dir, 0700) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE, _("creating state directory %s: %s"),
                   self->state_dir, g_strerror (errno));
      return FALSE;
    }
  if (!lock_state_dir (self, error))
    return FALSE;
  path = g_build_filename (self->state_dir, "shoal.db", NULL);
  if (!shoal_store_open (self->store, path, error))
    {
      unlock_state_dir (self);
      return FALSE;
    }
  shoal_store_set_committed_func (self->store, committed_cb, self);
  return load_store (self, error);
}

/**
 * shoal_controller_convert_store: (skip)
 * @self: a controller, not open
 * @converted: (out): whether the store was converted; %FALSE when it used
 *   incremental auto-vacuum already
 * @error: return location for a #GError
 *
 * Takes the lock of the state directory (%SHOAL_ERROR_BUSY while a shoald
 * uses it), converts the store in it to incremental auto-vacuum
 * (shoal_store_convert_file(): one VACUUM of the whole file) and releases
 * the lock: shoald --convert-store.
 *
 * Returns: %TRUE when the store uses incremental auto-vacuum
 */
gboolean
shoal_controller_convert_store (ShoalController  *self,
                                gboolean         *converted,
                                GError          **error)
{
  g_autofree gchar *path = NULL;
  gboolean ok;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  g_return_val_if_fail (self->lock_fd < 0, FALSE);
  *converted = FALSE;
  if (!lock_state_dir (self, error))
    return FALSE;
  path = g_build_filename (self->state_dir, "shoal.db", NULL);
  ok = shoal_store_convert_file (path, converted, error);
  unlock_state_dir (self);
  return ok;
}

/**
 * shoal_controller_close:
 * @self: a controller
 *
 * Stops every service and makes everything durable.
 */
void
shoal_controller_close (ShoalController *self)
{
  g_return_if_fail (SHOAL_IS_CONTROLLER (self));
  if (self->services_started)
    {
      GPtrArray *services = shoal_plugin_engine_get_services (self->engine);

      for (guint i = 0; services != NULL && i < services->len; i++)
        shoal_service_stop (g_ptr_array_index (services, i));
      self->services_started = FALSE;
    }
  if (self->store != NULL)
    {
      shoal_store_close (self->store);
      /* the last batch's entries may still be on their way to this
       * main context: nobody is left to announce them */
      shoal_store_set_committed_func (self->store, NULL, NULL);
    }
  unlock_state_dir (self);
}

/**
 * shoal_controller_set_recipe_loader:
 * @self: a controller
 * @loader: (nullable): how to load a recipe at a recorded commit
 * @user_data: for @loader
 * @notify: (nullable): frees @user_data
 *
 * How shoal_controller_start_services() loads the recipe of an
 * interrupted deployment at the commit it recorded, when the recipe in
 * service is at another commit or is not loaded.
 */
void
shoal_controller_set_recipe_loader (ShoalController            *self,
                                    ShoalControllerRecipeLoader loader,
                                    gpointer                    user_data,
                                    GDestroyNotify              notify)
{
  g_return_if_fail (SHOAL_IS_CONTROLLER (self));

  if (self->recipe_loader_notify != NULL)
    self->recipe_loader_notify (self->recipe_loader_data);
  self->recipe_loader = loader;
  self->recipe_loader_data = user_data;
  self->recipe_loader_notify = notify;
}

/* The recipe @rec's deployment started with, as it recorded it: at its
 * commit from the loader (the recipe repository's local clone), or, for
 * a recipe without a commit, from the store by its digest
 * (keep_recipe_version()). NULL with @error set, saying what cannot be
 * loaded, when it cannot be had */
static ShoalRecipe *
load_recorded_recipe (DeviceRecord  *rec,
                      const gchar   *name,
                      GError       **error)
{
  ShoalController *self = rec->controller;
  const gchar *commit = shoal_device_get_recipe_commit (rec->device);
  g_autofree gchar *run_no = g_strdup_printf ("%" G_GINT64_FORMAT, rec->run_no);
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autoptr(GError) local_error = NULL;

  if (commit == NULL)
    recipe = load_recipe_version (self, name, rec->recipe_digest, &local_error);
  else if (self->recipe_loader == NULL)
    g_set_error (&local_error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                 _("no recipe repository to read it from"));
  else
    recipe = self->recipe_loader (name, commit, self->recipe_loader_data, &local_error);
  if (recipe != NULL)
    return g_steal_pointer (&recipe);
  if (commit == NULL)
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                 _("cannot resume after restart: recipe %s as deployment %s started with it "
                   "(no commit, sha256 %s) cannot be loaded (%s); deploy the device again"),
                 name, run_no, rec->recipe_digest, local_error->message);
  else
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                 _("cannot resume after restart: recipe %s at commit %s, which deployment %s "
                   "started with, cannot be loaded (%s); deploy the device again"),
                 name, commit, run_no, local_error->message);
  return NULL;
}

/* Whether the recipe of @pipeline is the version @rec recorded: at its
 * commit (@in_service, the recipe in service, shares the pipeline's
 * JSON), or of its digest for a recipe without one */
static gboolean
is_recorded_version (DeviceRecord  *rec,
                     ShoalPipeline *pipeline,
                     ShoalRecipe   *in_service)
{
  const gchar *commit = shoal_device_get_recipe_commit (rec->device);

  if (pipeline == NULL)
    return FALSE;
  if (commit != NULL)
    return in_service != NULL && g_strcmp0 (shoal_recipe_get_commit (in_service), commit) == 0;
  return g_strcmp0 (shoal_recipe_get_digest (shoal_pipeline_get_recipe (pipeline)), rec->recipe_digest) == 0;
}

/* The pipeline @rec resumes on: the recipe a deployment started with
 * runs to its end, whatever the recipe in service became meanwhile (a
 * step number means nothing in another version of it). A deployment
 * records the commit of its recipe (NULL for a recipe from a file or
 * added over D-Bus, which has none) and the digest of its JSON, and
 * keeps a recipe without a commit in the store (keep_recipe_version()):
 *   - the recipe in service is that version (at that commit, or of that
 *     digest), or has the same JSON (put_recipe()): its pipeline, whose
 *     rendezvous the devices deployed from now on share;
 *   - otherwise that version (load_recorded_recipe(): from the loader,
 *     the recipe repository's local clone, or from the store) on a
 *     pipeline of its own, shared by the devices resumed at that version
 *     (@resumed: "name\x1fcommit:C" or "name\x1fsha256:D" -> pipeline),
 *     so that they meet at its rendezvous; new deployments do not use it;
 *   - neither commit nor digest recorded (a deployment an older shoald
 *     started): the recipe in service of that name, as it did.
 * A deployment whose recipe cannot be had as recorded (gone from the
 * clone, no repository any more, not in the store) fails, saying so,
 * rather than running a step of another version of the recipe or
 * starting it again from the first step, which the operator can do
 * knowingly (Deploy). Returns NULL with @error set then. */
static ShoalPipeline *
resume_pipeline (DeviceRecord  *rec,
                 GHashTable    *resumed,
                 GPtrArray     *held,
                 GError       **error)
{
  ShoalController *self = rec->controller;
  ShoalDevice *device = rec->device;
  const gchar *name = shoal_device_get_recipe (device) != NULL ? shoal_device_get_recipe (device) : "";
  const gchar *commit = shoal_device_get_recipe_commit (device);
  ShoalPipeline *current = g_hash_table_lookup (self->pipelines, name);
  ShoalRecipe *in_service = g_hash_table_lookup (self->recipes, name);
  g_autofree gchar *key = NULL;
  g_autofree gchar *version = NULL;
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autoptr(ShoalPipeline) pipeline = NULL;
  ShoalPipeline *found;

  if (commit == NULL && rec->recipe_digest == NULL)
    {
      if (current == NULL)
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                     _("cannot resume after restart: recipe %s is not loaded"), name);
      return current;
    }
  if (is_recorded_version (rec, current, in_service))
    return current;

  key = commit != NULL ? g_strdup_printf ("%s\x1f" "commit:%s", name, commit)
                       : g_strdup_printf ("%s\x1f" "sha256:%s", name, rec->recipe_digest);
  found = g_hash_table_lookup (resumed, key);
  if (found != NULL)
    return found;
  recipe = load_recorded_recipe (rec, name, error);
  if (recipe == NULL)
    return NULL;
  version = shoal_controller_describe_version (rec);
  if (current != NULL &&
      json_node_equal (shoal_recipe_get_json (shoal_pipeline_get_recipe (current)),
                       shoal_recipe_get_json (recipe)))
    {
      shoal_device_log (device, "controller", "resume", SHOAL_JOURNAL_RESULT_INFO,
                        "recipe %s in service (commit %s) is as it was %s, "
                        "which the deployment started with: resuming with it",
                        name, shoal_recipe_get_commit (in_service) != NULL
                                ? shoal_recipe_get_commit (in_service) : "none", version);
      return current;
    }
  pipeline = new_pipeline (self, recipe, error);
  if (pipeline == NULL)
    {
      g_prefix_error (error, _("cannot resume after restart with recipe %s %s: "), name, version);
      return NULL;
    }
  shoal_pipeline_hold_rendezvous (pipeline);
  g_ptr_array_add (held, g_object_ref (pipeline));
  g_info ("resuming the deployments of recipe %s %s with that version of the recipe "
          "(%s in service)", name, version,
          in_service == NULL ? "none"
          : shoal_recipe_get_commit (in_service) != NULL ? shoal_recipe_get_commit (in_service)
          : shoal_recipe_get_digest (in_service));
  g_hash_table_insert (resumed, g_steal_pointer (&key), g_object_ref (pipeline));
  return pipeline;
}

/* Puts @rec back on the pipeline it ran (resume_pipeline()) and counts it
 * at the rendezvous; the caller then advances it. Returns FALSE when it
 * cannot resume (failed) */
static gboolean
resume_record (DeviceRecord *rec,
               GHashTable   *resumed,
               GPtrArray    *held)
{
  ShoalController *self = rec->controller;
  ShoalDevice *device = rec->device;
  ShoalPipeline *pipeline;
  ShoalRecipe *recipe;
  g_autofree gchar *version = NULL;
  g_autoptr(GError) error = NULL;

  pipeline = resume_pipeline (rec, resumed, held, &error);
  if (pipeline == NULL)
    {
      shoal_controller_fail_device (rec, "controller", error);
      return FALSE;
    }
  recipe = shoal_pipeline_get_recipe (pipeline);
  g_set_object (&rec->pipeline, pipeline);
  g_clear_object (&rec->cancellable);
  rec->cancellable = g_cancellable_new ();
  if (rec->step_index > shoal_pipeline_get_n_steps (pipeline))
    rec->step_index = shoal_pipeline_get_n_steps (pipeline);
  if (shoal_pipeline_get_first_group_step (pipeline) >= (gint) rec->step_index)
    {
      rec->counted = TRUE;
      shoal_controller_set_expected (self, pipeline, +1);
    }
  version = shoal_controller_describe_version (rec);
  shoal_device_log (device, "controller", "resume", SHOAL_JOURNAL_RESULT_INFO,
                    "resuming deployment %" G_GINT64_FORMAT " of recipe %s %s after a restart "
                    "at step %u of %u (%s)",
                    rec->run_no, shoal_recipe_get_name (recipe), version,
                    rec->step_index + 1, shoal_pipeline_get_n_steps (pipeline),
                    rec->step_index < shoal_pipeline_get_n_steps (pipeline)
                      ? shoal_pipeline_get_step_id (pipeline, rec->step_index) : "done");
  return TRUE;
}

/* Every device is counted before any goes on, and the rendezvous are
 * held until all are back: the devices that waited at a group step or
 * ran it together when the daemon stopped form one group again, where
 * the first one back saw itself as the only device expected and went
 * alone. The pipelines made for recipes at older commits are held as
 * they are made */
static void
resume_all (ShoalController *self)
{
  g_autoptr(GPtrArray) records = g_steal_pointer (&self->to_resume);
  g_autoptr(GPtrArray) resumed = g_ptr_array_new ();
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GHashTable) at_commits = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  GHashTableIter iter;
  gpointer pipeline;

  self->to_resume = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, self->pipelines);
  while (g_hash_table_iter_next (&iter, NULL, &pipeline))
    {
      shoal_pipeline_hold_rendezvous (pipeline);
      g_ptr_array_add (held, g_object_ref (pipeline));
    }
  for (guint i = 0; i < records->len; i++)
    {
      DeviceRecord *rec = g_ptr_array_index (records, i);

      if (resume_record (rec, at_commits, held))
        g_ptr_array_add (resumed, rec);
    }
  /* the versions kept for deployments that ended while shoald was down,
   * or that could not resume */
  prune_recipe_versions (self);
  for (guint i = 0; i < resumed->len; i++)
    shoal_controller_advance (g_ptr_array_index (resumed, i));
  for (guint i = 0; i < held->len; i++)
    shoal_pipeline_release_rendezvous (g_ptr_array_index (held, i));
}

/**
 * shoal_controller_start_services:
 * @self: a controller
 * @error: return location for a #GError
 *
 * Starts the services of every loaded plugin and resumes interrupted
 * deployments. A service that fails to start is reported and skipped.
 */
gboolean
shoal_controller_start_services (ShoalController  *self,
                                 GError          **error)
{
  GPtrArray *services;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), FALSE);
  services = shoal_plugin_engine_get_services (self->engine);
  if (!self->services_started)
    {
      for (guint i = 0; services != NULL && i < services->len; i++)
        {
          ShoalService *service = g_ptr_array_index (services, i);
          g_autoptr(GError) local_error = NULL;

          if (!shoal_service_start (service, self->context, &local_error))
            g_warning ("service %s did not start: %s", G_OBJECT_TYPE_NAME (service),
                       local_error->message);
        }
      self->services_started = TRUE;
    }
  resume_all (self);
  return TRUE;
}

/* --- for the context and the agent API ---------------------------------- */

/**
 * shoal_controller_set_http_server:
 * @self: a controller
 * @server: the daemon's HTTP server
 * @base_url: the URL agents reach it at
 *
 * Registers the agent API on @server; plugins add their routes through
 * their #ShoalContext.
 */
void
shoal_controller_set_http_server (ShoalController *self,
                                  SoupServer      *server,
                                  const gchar     *base_url)
{
  g_return_if_fail (SHOAL_IS_CONTROLLER (self));
  g_return_if_fail (SOUP_IS_SERVER (server));
  g_set_object (&self->http_server, server);
  g_free (self->server_url);
  self->server_url = g_strdup (base_url);
  shoal_agent_api_register (self, server);
}

/**
 * shoal_controller_set_config:
 * @self: a controller
 * @config: the daemon's configuration
 */
void
shoal_controller_set_config (ShoalController *self,
                             GKeyFile        *config)
{
  g_return_if_fail (SHOAL_IS_CONTROLLER (self));
  g_return_if_fail (config != NULL);
  g_clear_pointer (&self->config, g_key_file_unref);
  self->config = g_key_file_ref (config);
  if (g_key_file_has_key (config, "controller", "auto-deploy", NULL))
    self->auto_deploy = g_key_file_get_boolean (config, "controller", "auto-deploy", NULL);
  if (g_key_file_has_key (config, "controller", "discover-max", NULL))
    self->discover_max = (guint) CLAMP (g_key_file_get_int64 (config, "controller", "discover-max", NULL),
                                        0, G_MAXINT);
  if (g_key_file_has_key (config, "controller", "discover-rate", NULL))
    {
      self->discover_rate = (guint) CLAMP (g_key_file_get_int64 (config, "controller", "discover-rate", NULL),
                                           0, G_MAXINT);
      self->discover_tokens = self->discover_rate;
    }
  if (g_key_file_has_key (config, "controller", "step-timeout", NULL))
    self->default_timeout = (guint) CLAMP (g_key_file_get_int64 (config, "controller", "step-timeout", NULL),
                                           0, G_MAXINT);
  if (g_key_file_has_key (config, "controller", "blocking-steps", NULL))
    shoal_step_set_max_blocking ((guint) CLAMP (g_key_file_get_int64 (config, "controller", "blocking-steps", NULL),
                                                1, 4096));
}

void
shoal_controller_set_data_dir (ShoalController *self,
                               const gchar     *data_dir)
{
  g_return_if_fail (SHOAL_IS_CONTROLLER (self));
  g_free (self->data_dir);
  self->data_dir = g_strdup (data_dir);
}

/**
 * shoal_controller_get_context:
 * @self: a controller
 *
 * Returns: (transfer none): what the daemon offers plugins
 */
ShoalContext *
shoal_controller_get_context (ShoalController *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  return self->context;
}

/**
 * shoal_controller_get_engine:
 * @self: a controller
 *
 * Returns: (transfer none): the plugin engine
 */
ShoalPluginEngine *
shoal_controller_get_engine (ShoalController *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  return self->engine;
}

const gchar *
shoal_controller_get_server_url (ShoalController *self)
{
  return self->server_url;
}

const gchar *
shoal_controller_get_state_dir (ShoalController *self)
{
  return self->state_dir;
}

const gchar *
shoal_controller_get_data_dir (ShoalController *self)
{
  return self->data_dir;
}

GKeyFile *
shoal_controller_get_config (ShoalController *self)
{
  return self->config;
}

SoupServer *
shoal_controller_get_http_server (ShoalController *self)
{
  return self->http_server;
}

ShoalStore *
shoal_controller_get_store (ShoalController *self)
{
  return self->store;
}

gchar *
shoal_controller_kv_get (ShoalController *self,
                         const gchar     *ns,
                         const gchar     *key)
{
  g_autofree gchar *full = g_strdup_printf ("%s\x1f%s", ns, key);

  return g_strdup (g_hash_table_lookup (self->kv, full));
}

void
shoal_controller_kv_set (ShoalController *self,
                         const gchar     *ns,
                         const gchar     *key,
                         const gchar     *value)
{
  g_autofree gchar *full = g_strdup_printf ("%s\x1f%s", ns, key);

  if (value == NULL)
    g_hash_table_remove (self->kv, full);
  else
    g_hash_table_replace (self->kv, g_steal_pointer (&full), g_strdup (value));
  shoal_store_kv_set (self->store, ns, key, value);
}

GHashTable *
shoal_controller_kv_list (ShoalController *self,
                          const gchar     *ns)
{
  GHashTable *list = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autofree gchar *prefix = g_strdup_printf ("%s\x1f", ns);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->kv);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (g_str_has_prefix (key, prefix))
        g_hash_table_insert (list, g_strdup ((const gchar *) key + strlen (prefix)),
                             g_strdup (value));
    }
  return list;
}

static gchar *
id_for_mac (const gchar *mac)
{
  g_autofree gchar *lower = g_ascii_strdown (mac, -1);

  return g_strdelimit (g_steal_pointer (&lower), ":", '-');
}

/* A known UUID booted with a MAC no device has: the machine got a new
 * NIC (or boots from another port), which becomes one of its MACs */
static void
add_seen_mac (ShoalController *self,
              DeviceRecord    *rec,
              const gchar     *mac,
              const gchar     *uuid,
              const gchar     *source)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) macs = NULL;
  g_autofree gchar *lower = g_ascii_strdown (mac, -1);

  g_strv_builder_addv (builder, (const gchar **) shoal_device_get_macs (rec->device));
  g_strv_builder_add (builder, lower);
  macs = g_strv_builder_end (builder);
  TRANSITION_BEGIN (self);
  shoal_device_set_macs (rec->device, (const gchar * const *) macs);
  g_hash_table_replace (self->by_mac, g_strdup (lower), rec);
  shoal_device_log (rec->device, "controller", "identity", SHOAL_JOURNAL_RESULT_WARNING,
                    "new MAC %s recorded: the machine with this device's UUID %s booted from it (seen by %s)",
                    lower, uuid, source);
  shoal_controller_persist (rec);
  TRANSITION_END (self);
}

/* A device enrolled without a UUID (or whose firmware sent none before)
 * learns the one its MAC now comes with */
static void
add_seen_uuid (ShoalController *self,
               DeviceRecord    *rec,
               const gchar     *mac,
               const gchar     *uuid,
               const gchar     *source)
{
  g_autofree gchar *lower = g_ascii_strdown (uuid, -1);

  TRANSITION_BEGIN (self);
  shoal_device_set_uuid (rec->device, lower);
  shoal_device_log (rec->device, "controller", "identity", SHOAL_JOURNAL_RESULT_INFO,
                    "uuid %s recorded: first sent with MAC %s (seen by %s)", lower, mac, source);
  shoal_controller_persist (rec);
  TRANSITION_END (self);
}

/* A machine in an identity conflict asks again at every DHCP retry and
 * boot: the same conflict is journaled once per IDENTITY_NOTE_INTERVAL_US,
 * so that it does not push the devices' history out of their journals */
#define IDENTITY_NOTE_INTERVAL_US (10 * 60 * G_USEC_PER_SEC)
#define IDENTITY_NOTED_MAX        1024

/* whether @message was journaled less than IDENTITY_NOTE_INTERVAL_US ago;
 * if not, it is noted as journaled now */
static gboolean
identity_noted_recently (ShoalController *self,
                         const gchar     *message)
{
  gint64 now = g_get_monotonic_time ();
  gint64 *when = g_hash_table_lookup (self->identity_noted, message);

  if (when != NULL && now - *when < IDENTITY_NOTE_INTERVAL_US)
    return TRUE;
  if (g_hash_table_size (self->identity_noted) >= IDENTITY_NOTED_MAX)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, self->identity_noted);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (now - *(gint64 *) value >= IDENTITY_NOTE_INTERVAL_US)
          g_hash_table_iter_remove (&iter);
      if (g_hash_table_size (self->identity_noted) >= IDENTITY_NOTED_MAX)
        g_hash_table_remove_all (self->identity_noted);
    }
  g_hash_table_replace (self->identity_noted, g_strdup (message), g_memdup2 (&now, sizeof now));
  return FALSE;
}

/* Journals @message (taken) on the devices @a and @b concern, each once
 * (and not again for IDENTITY_NOTE_INTERVAL_US), and fails with it */
static void
refuse_identity (ShoalController *self,
                 DeviceRecord    *a,
                 DeviceRecord    *b,
                 const gchar     *source,
                 gchar           *message,
                 GError         **error)
{
  if (identity_noted_recently (self, message))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS, message);
      g_free (message);
      return;
    }
  TRANSITION_BEGIN (self);
  if (a != NULL)
    shoal_device_log (a->device, "controller", "identity", SHOAL_JOURNAL_RESULT_WARNING,
                      "%s (seen by %s)", message, source);
  if (b != NULL && b != a)
    shoal_device_log (b->device, "controller", "identity", SHOAL_JOURNAL_RESULT_WARNING,
                      "%s (seen by %s)", message, source);
  TRANSITION_END (self);
  g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS, message);
  g_free (message);
}

/* Discovery enrols machines nobody named: anyone who can send a DHCP
 * request or ask for a boot script with made-up MAC addresses could fill
 * the daemon with devices (and deployments, with auto-deploy) at will.
 * So it enrols none while the daemon holds [controller] discover-max
 * devices or more (DISCOVER_MAX_DEFAULT; 0: no limit), and at most
 * [controller] discover-rate a minute (DISCOVER_RATE_DEFAULT, the first
 * minute's worth at once; 0: no limit). A machine refused is not
 * enrolled (its next request tries again); the refusals are counted
 * (statistics "discover-refused") and logged at most once a minute.
 * Machines enrolled by the operator (EnrollDevices) are not limited. */
static gboolean
discovery_allowed (ShoalController  *self,
                   const gchar      *mac,
                   const gchar      *source,
                   GError          **error)
{
  gint64 now = g_get_monotonic_time ();
  const gchar *limit = NULL;

  if (self->discover_rate > 0)
    {
      gdouble refill = (gdouble) (now - self->discover_refilled_us) * self->discover_rate / (60.0 * G_USEC_PER_SEC);

      self->discover_tokens = MIN ((gdouble) self->discover_rate, self->discover_tokens + refill);
    }
  self->discover_refilled_us = now;
  if (self->discover_max > 0 && g_hash_table_size (self->devices) >= self->discover_max)
    limit = "discover-max";
  else if (self->discover_rate > 0 && self->discover_tokens < 1.0)
    limit = "discover-rate";
  if (limit == NULL)
    {
      if (self->discover_rate > 0)
        self->discover_tokens -= 1.0;
      return TRUE;
    }
  self->discover_refused++;
  if (self->discover_logged_us == 0 || now - self->discover_logged_us >= 60 * G_USEC_PER_SEC)
    {
      self->discover_logged_us = now;
      g_message ("discovery: %s (seen by %s) not enrolled, [controller] %s reached (%u devices, %u a minute); "
                 "%" G_GUINT64_FORMAT " refused so far", mac, source, limit, self->discover_max,
                 self->discover_rate, self->discover_refused);
    }
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
               _("machine %s not enrolled: discovery is over its limit ([controller] %s)"), mac, limit);
  return FALSE;
}

/**
 * shoal_controller_get_discover_refused:
 * @self: a controller
 *
 * Returns: how many machines discovery refused to enrol, over
 *   [controller] discover-max or discover-rate
 */
guint64
shoal_controller_get_discover_refused (ShoalController *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), 0);
  return self->discover_refused;
}

/**
 * shoal_controller_device_seen:
 * @self: a controller
 * @mac: the MAC address the device used
 * @uuid: (nullable): its SMBIOS UUID, if it sent one
 * @source: what saw it ("dhcp", "tftp", "http")
 * @error: return location for a #GError
 *
 * A device's first sign of life (claim 15): registers it if it is new,
 * assigns the recipe that matches it, and starts its deployment when
 * auto-deploy is on (the default).
 *
 * The MAC and the UUID must agree on which device booted. A UUID that
 * cannot identify a machine (absent, malformed, a placeholder: see
 * shoal_controller_uuid_is_placeholder()) is ignored and the MAC decides.
 * A known UUID with a MAC no device has gets that MAC added to its
 * device; a device without a UUID learns the one its MAC comes with; both
 * are journaled. When the MAC's device and the UUID's are different
 * devices, or the MAC's device has another UUID (its NIC moved to another
 * machine), the request is refused with %SHOAL_ERROR_EXISTS and the
 * device(s) concerned journal why: the machine is not deployed as either,
 * and the network boot service sends it to its local disk.
 *
 * Returns: (transfer none): the device
 */
ShoalDevice *
shoal_controller_device_seen (ShoalController  *self,
                              const gchar      *mac,
                              const gchar      *uuid,
                              const gchar      *source,
                              GError          **error)
{
  ShoalDevice *device = shoal_controller_lookup_device_by_mac (self, mac);
  DeviceRecord *by_mac = shoal_controller_lookup_record (self, device);
  DeviceRecord *by_uuid = NULL;
  const gchar *macs[] = { mac, NULL };
  g_autoptr(GError) local_error = NULL;
  guint n_found = 0;

  uuid = identity_uuid (uuid);
  if (uuid != NULL)
    by_uuid = lookup_record_by_uuid (self, uuid, &n_found);
  if (n_found > 1)
    {
      refuse_identity (self, by_mac, by_uuid, source,
                       g_strdup_printf ("machine with MAC %s and UUID %s not deployed: %u devices have this "
                                        "UUID (one of them %s); remove the wrong ones", mac, uuid, n_found,
                                        shoal_device_get_id (by_uuid->device)), error);
      return NULL;
    }
  if (by_mac != NULL && by_uuid != NULL && by_mac != by_uuid)
    {
      refuse_identity (self, by_mac, by_uuid, source,
                       g_strdup_printf ("machine with MAC %s and UUID %s not deployed: the MAC belongs to "
                                        "device %s, the UUID to device %s", mac, uuid,
                                        shoal_device_get_id (by_mac->device),
                                        shoal_device_get_id (by_uuid->device)), error);
      return NULL;
    }
  if (by_mac != NULL && by_uuid == NULL && uuid != NULL)
    {
      const gchar *known = identity_uuid (shoal_device_get_uuid (by_mac->device));

      if (known != NULL)
        {
          refuse_identity (self, by_mac, NULL, source,
                           g_strdup_printf ("machine with MAC %s and UUID %s not deployed: the MAC belongs "
                                            "to device %s, whose UUID is %s (a NIC moved to another "
                                            "machine?)", mac, uuid, shoal_device_get_id (by_mac->device),
                                            known), error);
          return NULL;
        }
      add_seen_uuid (self, by_mac, mac, uuid, source);
    }
  if (by_mac == NULL && by_uuid != NULL)
    {
      add_seen_mac (self, by_uuid, mac, uuid, source);
      device = by_uuid->device;
    }
  if (device != NULL)
    return device;
  if (!discovery_allowed (self, mac, source, error))
    return NULL;
  {
    g_autofree gchar *id = id_for_mac (mac != NULL ? mac : "");

    device = shoal_controller_enroll_device (self, id, macs, uuid, error);
  }
  if (device == NULL)
    return NULL;
  shoal_device_log (device, source, "discovered", SHOAL_JOURNAL_RESULT_INFO,
                    "first seen by %s as %s", source, mac);
  if (!shoal_controller_assign_recipe (self, device, NULL, &local_error))
    {
      shoal_device_log (device, "controller", "assign", SHOAL_JOURNAL_RESULT_WARNING,
                        "%s", local_error->message);
      return device;
    }
  if (self->auto_deploy && !shoal_controller_deploy (self, device, &local_error))
    shoal_device_log (device, "controller", "deploy", SHOAL_JOURNAL_RESULT_FAILED,
                      "%s", local_error->message);
  return device;
}

/**
 * shoal_controller_get_boot_action:
 * @self: a controller
 * @device: a device
 *
 * Returns: how the network boot service is to boot @device
 */
ShoalBootAction
shoal_controller_get_boot_action (ShoalController *self,
                                  ShoalDevice     *device)
{
  /* Deploy sets DEPLOY; installed, failed and cancelled set LOCAL; a finish
   * step may set LOCAL before it reboots the device into its new system;
   * an operator may set IGNORE. */
  return shoal_device_get_boot_action (device);
}
