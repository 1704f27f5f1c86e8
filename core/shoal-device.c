/* shoal-device.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-device.h"
#include "shoal-device-private.h"
#include "shoal-enum-private.h"
#include "shoal-enums.h"
#include "shoal-error.h"

/**
 * ShoalDevice:
 *
 * One machine managed by shoal: its identity (MAC addresses, SMBIOS
 * UUID), where it stands, its hardware inventory, the recipe it is
 * deployed with (and that recipe's git commit), its progress, and
 * metadata that steps share through documented keys.
 *
 * Every operation performed on a device is reported with
 * shoal_device_log(); the controller gives each entry a sequence number
 * and makes it durable in the store (the device keeps no journal in
 * memory).
 *
 * The agent running on the machine talks to steps through events
 * (shoal_device_post_event(), shoal_device_wait_event_async()) and
 * receives its next instruction through shoal_device_set_instruction().
 *
 * Documented metadata keys: `drivers` (space-separated kernel modules in
 * load order), `drivers.kernel` (kernel version), `agent.sha256`,
 * `agent.address` (the address its agent's last authenticated request came
 * from), `image.id` (manifest SHA-256), `image.sha256` (whole image),
 * `multicast.session` (multicast session the device was in), `pxe.*`
 * (plugins/pxe/README.md).
 *
 * Metadata belongs to one deployment: when the next one starts, the
 * controller clears every key except `pxe.client` and `pxe.arch`, which
 * describe the machine (kept_metadata_keys in shoal-controller.c).
 */
struct _ShoalDevice
{
  GObject           parent_instance;

  GMainContext     *context;
  GThread          *thread;         /* the thread that created the device */
  gchar            *id;
  GStrv             macs;
  gchar            *uuid;
  gchar            *token;
  ShoalDeviceState  state;
  ShoalBootAction   boot_action;
  gchar            *current_step;
  gdouble           progress;
  gchar            *recipe;
  gchar            *recipe_commit;
  gchar            *group;
  JsonNode         *inventory;
  GHashTable       *metadata;       /* (nullable) gchar* -> gchar* */
  GQueue            events;         /* PendingEvent*, oldest first */
  gsize             events_size;    /* serialized size of their payloads */
  GList            *waiters;        /* EventWaiter* */
  JsonNode         *instruction;
  guint64           instruction_serial;
};

enum {
  PROP_0,
  PROP_ID,
  PROP_MACS,
  PROP_UUID,
  PROP_STATE,
  PROP_BOOT_ACTION,
  PROP_CURRENT_STEP,
  PROP_PROGRESS,
  PROP_RECIPE,
  PROP_RECIPE_COMMIT,
  PROP_GROUP,
  PROP_INVENTORY,
  PROP_INSTRUCTION,
  N_PROPS
};

enum {
  SIGNAL_JOURNAL_ENTRY,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

typedef struct {
  ShoalDevice  *device;   /* unowned */
  gchar        *name;
  GTask        *task;
  GCancellable *cancellable;
  gulong        cancelled_id;
} EventWaiter;

G_DEFINE_FINAL_TYPE (ShoalDevice, shoal_device, G_TYPE_OBJECT)

static void
event_waiter_free (EventWaiter *waiter)
{
  if (waiter->cancelled_id != 0)
    g_cancellable_disconnect (waiter->cancellable, waiter->cancelled_id);
  g_clear_object (&waiter->cancellable);
  g_clear_object (&waiter->task);
  g_free (waiter->name);
  g_free (waiter);
}

static void
shoal_device_finalize (GObject *object)
{
  ShoalDevice *self = SHOAL_DEVICE (object);

  while (self->waiters != NULL)
    {
      EventWaiter *waiter = self->waiters->data;

      self->waiters = g_list_delete_link (self->waiters, self->waiters);
      g_task_return_new_error (waiter->task, SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                               _("device %s was removed"), self->id);
      event_waiter_free (waiter);
    }
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->id);
  g_strfreev (self->macs);
  g_free (self->uuid);
  g_free (self->token);
  g_free (self->current_step);
  g_free (self->recipe);
  g_free (self->recipe_commit);
  g_free (self->group);
  g_clear_pointer (&self->inventory, json_node_unref);
  g_clear_pointer (&self->metadata, g_hash_table_unref);
  shoal_device_clear_events (self);
  g_clear_pointer (&self->instruction, json_node_unref);

  G_OBJECT_CLASS (shoal_device_parent_class)->finalize (object);
}

static void
shoal_device_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  ShoalDevice *self = SHOAL_DEVICE (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_MACS:
      g_value_set_boxed (value, self->macs);
      break;
    case PROP_UUID:
      g_value_set_string (value, self->uuid);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_BOOT_ACTION:
      g_value_set_enum (value, self->boot_action);
      break;
    case PROP_CURRENT_STEP:
      g_value_set_string (value, self->current_step);
      break;
    case PROP_PROGRESS:
      g_value_set_double (value, self->progress);
      break;
    case PROP_RECIPE:
      g_value_set_string (value, self->recipe);
      break;
    case PROP_RECIPE_COMMIT:
      g_value_set_string (value, self->recipe_commit);
      break;
    case PROP_GROUP:
      g_value_set_string (value, self->group);
      break;
    case PROP_INVENTORY:
      g_value_set_boxed (value, self->inventory);
      break;
    case PROP_INSTRUCTION:
      g_value_set_boxed (value, self->instruction);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
shoal_device_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  ShoalDevice *self = SHOAL_DEVICE (object);

  switch (prop_id)
    {
    case PROP_ID:
      self->id = g_value_dup_string (value);
      break;
    case PROP_MACS:
      shoal_device_set_macs (self, g_value_get_boxed (value));
      break;
    case PROP_UUID:
      shoal_device_set_uuid (self, g_value_get_string (value));
      break;
    case PROP_STATE:
      shoal_device_set_state (self, g_value_get_enum (value));
      break;
    case PROP_BOOT_ACTION:
      shoal_device_set_boot_action (self, g_value_get_enum (value));
      break;
    case PROP_CURRENT_STEP:
      shoal_device_set_current_step (self, g_value_get_string (value));
      break;
    case PROP_PROGRESS:
      shoal_device_set_progress (self, g_value_get_double (value));
      break;
    case PROP_RECIPE:
      shoal_device_set_recipe (self, g_value_get_string (value));
      break;
    case PROP_RECIPE_COMMIT:
      shoal_device_set_recipe_commit (self, g_value_get_string (value));
      break;
    case PROP_GROUP:
      shoal_device_set_group (self, g_value_get_string (value));
      break;
    case PROP_INVENTORY:
      shoal_device_set_inventory (self, g_value_get_boxed (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
shoal_device_class_init (ShoalDeviceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = shoal_device_finalize;
  object_class->get_property = shoal_device_get_property;
  object_class->set_property = shoal_device_set_property;

  properties[PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_MACS] =
    g_param_spec_boxed ("macs", NULL, NULL, G_TYPE_STRV, rw);
  properties[PROP_UUID] =
    g_param_spec_string ("uuid", NULL, NULL, NULL, rw);
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, SHOAL_TYPE_DEVICE_STATE,
                       SHOAL_DEVICE_STATE_DISCOVERED, rw);
  properties[PROP_BOOT_ACTION] =
    g_param_spec_enum ("boot-action", NULL, NULL, SHOAL_TYPE_BOOT_ACTION,
                       SHOAL_BOOT_ACTION_LOCAL, rw);
  properties[PROP_CURRENT_STEP] =
    g_param_spec_string ("current-step", NULL, NULL, NULL, rw);
  properties[PROP_PROGRESS] =
    g_param_spec_double ("progress", NULL, NULL, 0.0, 1.0, 0.0, rw);
  properties[PROP_RECIPE] =
    g_param_spec_string ("recipe", NULL, NULL, NULL, rw);
  properties[PROP_RECIPE_COMMIT] =
    g_param_spec_string ("recipe-commit", NULL, NULL, NULL, rw);
  properties[PROP_GROUP] =
    g_param_spec_string ("group", NULL, NULL, NULL, rw);
  properties[PROP_INVENTORY] =
    g_param_spec_boxed ("inventory", NULL, NULL, JSON_TYPE_NODE, rw);
  properties[PROP_INSTRUCTION] =
    g_param_spec_boxed ("instruction", NULL, NULL, JSON_TYPE_NODE,
                        G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ShoalDevice::journal-entry:
   * @self: the device
   * @entry: the new entry, not yet numbered nor durable
   *
   * Emitted on the device's main context for every shoal_device_log().
   */
  signals[SIGNAL_JOURNAL_ENTRY] =
    g_signal_new ("journal-entry", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                  SHOAL_TYPE_JOURNAL_ENTRY | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
shoal_device_init (ShoalDevice *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->thread = g_thread_self ();
  self->macs = g_new0 (gchar *, 1);
  self->boot_action = SHOAL_BOOT_ACTION_LOCAL;
}

/**
 * shoal_device_new:
 * @id: a unique identifier
 *
 * Returns: (transfer full): a new device
 */
ShoalDevice *
shoal_device_new (const gchar *id)
{
  g_return_val_if_fail (id != NULL && *id != '\0', NULL);
  return g_object_new (SHOAL_TYPE_DEVICE, "id", id, NULL);
}

const gchar *
shoal_device_get_id (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  return self->id;
}

/**
 * shoal_device_get_macs:
 * @self: a device
 *
 * Returns: (transfer none) (array zero-terminated=1): the MAC addresses, lower case
 */
const gchar * const *
shoal_device_get_macs (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  return (const gchar * const *) self->macs;
}

/**
 * shoal_device_set_macs:
 * @self: a device
 * @macs: (array zero-terminated=1) (nullable): MAC addresses
 */
void
shoal_device_set_macs (ShoalDevice         *self,
                       const gchar * const *macs)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) lowered = NULL;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  for (guint i = 0; macs != NULL && macs[i] != NULL; i++)
    {
      g_autofree gchar *mac = g_ascii_strdown (macs[i], -1);
      g_strv_builder_add (builder, mac);
    }
  lowered = g_strv_builder_end (builder);
  if (g_strv_equal ((const gchar * const *) lowered, (const gchar * const *) self->macs))
    return;
  g_strfreev (self->macs);
  self->macs = g_steal_pointer (&lowered);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MACS]);
}

gboolean
shoal_device_has_mac (ShoalDevice *self,
                      const gchar *mac)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), FALSE);
  for (guint i = 0; mac != NULL && self->macs[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (self->macs[i], mac) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
replace_string (gchar       **field,
                const gchar  *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

#define DEFINE_STRING_PROPERTY(name, PROP)                                  \
  const gchar *                                                             \
  shoal_device_get_##name (ShoalDevice *self)                               \
  {                                                                         \
    g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);                    \
    return self->name;                                                      \
  }                                                                         \
  void                                                                      \
  shoal_device_set_##name (ShoalDevice *self, const gchar *value)           \
  {                                                                         \
    g_return_if_fail (SHOAL_IS_DEVICE (self));                              \
    if (replace_string (&self->name, value))                                \
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP]);         \
  }

DEFINE_STRING_PROPERTY (uuid, PROP_UUID)
DEFINE_STRING_PROPERTY (current_step, PROP_CURRENT_STEP)
DEFINE_STRING_PROPERTY (recipe, PROP_RECIPE)
DEFINE_STRING_PROPERTY (recipe_commit, PROP_RECIPE_COMMIT)
DEFINE_STRING_PROPERTY (group, PROP_GROUP)

/**
 * shoal_device_get_token:
 * @self: a device
 *
 * Returns: (nullable): the secret every request of the device's agent carries
 */
const gchar *
shoal_device_get_token (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  return self->token;
}

void
shoal_device_set_token (ShoalDevice *self,
                        const gchar *token)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  replace_string (&self->token, token);
}

ShoalDeviceState
shoal_device_get_state (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), SHOAL_DEVICE_STATE_DISCOVERED);
  return self->state;
}

void
shoal_device_set_state (ShoalDevice      *self,
                        ShoalDeviceState  state)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

ShoalBootAction
shoal_device_get_boot_action (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), SHOAL_BOOT_ACTION_LOCAL);
  return self->boot_action;
}

void
shoal_device_set_boot_action (ShoalDevice     *self,
                              ShoalBootAction  action)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  if (self->boot_action == action)
    return;
  self->boot_action = action;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BOOT_ACTION]);
}

gdouble
shoal_device_get_progress (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), 0.0);
  return self->progress;
}

/* whether this thread may change @self and emit its signals now: its own
 * thread, or one that owns its main context */
static gboolean
in_device_context (ShoalDevice *self)
{
  return self->thread == g_thread_self () || g_main_context_is_owner (self->context);
}

typedef struct {
  ShoalDevice *device;
  gdouble      progress;
} ProgressInvoke;

static void
set_progress_here (ShoalDevice *self,
                   gdouble      progress)
{
  if (self->progress == progress)
    return;
  self->progress = progress;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROGRESS]);
}

static gboolean
set_progress_cb (gpointer user_data)
{
  ProgressInvoke *invoke = user_data;

  set_progress_here (invoke->device, invoke->progress);
  g_object_unref (invoke->device);
  g_free (invoke);
  return G_SOURCE_REMOVE;
}

/**
 * shoal_device_set_progress:
 * @self: a device
 * @progress: the current step's progress, 0 to 1
 *
 * Safe to call from any thread (a blocking step's worker): the change
 * is made on the device's main context, in call order with its journal
 * entries, where its property notifications go out.
 */
void
shoal_device_set_progress (ShoalDevice *self,
                           gdouble      progress)
{
  ProgressInvoke *invoke;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  progress = CLAMP (progress, 0.0, 1.0);
  if (in_device_context (self))
    {
      set_progress_here (self, progress);
      return;
    }
  invoke = g_new0 (ProgressInvoke, 1);
  invoke->device = g_object_ref (self);
  invoke->progress = progress;
  g_main_context_invoke (self->context, set_progress_cb, invoke);
}

/**
 * shoal_device_get_inventory:
 * @self: a device
 *
 * Returns: (transfer none) (nullable): the hardware inventory
 */
JsonNode *
shoal_device_get_inventory (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  return self->inventory;
}

/**
 * shoal_device_set_inventory:
 * @self: a device
 * @inventory: (nullable): the inventory, as validated against inventory.schema.json
 */
void
shoal_device_set_inventory (ShoalDevice *self,
                            JsonNode    *inventory)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  if (self->inventory == inventory)
    return;
  g_clear_pointer (&self->inventory, json_node_unref);
  if (inventory != NULL)
    self->inventory = json_node_copy (inventory);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_INVENTORY]);
}

/**
 * shoal_device_get_metadata:
 * @self: a device
 * @key: a documented key
 *
 * Returns: (nullable): the value
 */
const gchar *
shoal_device_get_metadata (ShoalDevice *self,
                           const gchar *key)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  if (self->metadata == NULL)
    return NULL;
  return g_hash_table_lookup (self->metadata, key);
}

/**
 * shoal_device_set_metadata:
 * @self: a device
 * @key: a documented key
 * @value: (nullable): the value, or %NULL to remove it
 */
void
shoal_device_set_metadata (ShoalDevice *self,
                           const gchar *key,
                           const gchar *value)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_return_if_fail (key != NULL);
  if (self->metadata == NULL)
    self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (value == NULL)
    g_hash_table_remove (self->metadata, key);
  else
    g_hash_table_replace (self->metadata, g_strdup (key), g_strdup (value));
}

/**
 * shoal_device_get_metadata_all:
 * @self: a device
 *
 * Returns: (transfer container) (element-type utf8 utf8): a copy of every key and value
 */
GHashTable *
shoal_device_get_metadata_all (ShoalDevice *self)
{
  GHashTable *copy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GHashTableIter iter;
  gpointer key, value;

  g_return_val_if_fail (SHOAL_IS_DEVICE (self), copy);
  if (self->metadata == NULL)
    return copy;
  g_hash_table_iter_init (&iter, self->metadata);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (copy, g_strdup (key), g_strdup (value));
  return copy;
}

typedef struct {
  ShoalDevice       *device;
  ShoalJournalEntry *entry;
} LogInvoke;

static gboolean
emit_journal_entry_cb (gpointer user_data)
{
  LogInvoke *invoke = user_data;

  g_signal_emit (invoke->device, signals[SIGNAL_JOURNAL_ENTRY], 0, invoke->entry);
  g_object_unref (invoke->device);
  shoal_journal_entry_unref (invoke->entry);
  g_free (invoke);
  return G_SOURCE_REMOVE;
}

/* Journal entries are stored and shown whole: what an agent or a request
 * sends is cut to these many bytes, with an ellipsis */
#define MAX_JOURNAL_OPERATION 64
#define MAX_JOURNAL_MESSAGE 4096

static gchar *
truncate_text (const gchar *text,
               gsize        max)
{
  const gchar *ellipsis = "…";
  gsize cut;

  if (text == NULL || strlen (text) <= max)
    return g_strdup (text);
  cut = max - strlen (ellipsis);
  while (cut > 0 && (text[cut] & 0xc0) == 0x80)
    cut--;
  return g_strdup_printf ("%.*s%s", (gint) cut, text, ellipsis);
}

/**
 * shoal_device_log_literal:
 * @self: a device
 * @source: (nullable): who performed the operation (a step id, a plugin)
 * @operation: what was performed
 * @result: the outcome
 * @message: (nullable): details
 *
 * Appends an entry to the device's journal. Safe to call from any thread:
 * the entry is delivered on the device's main context, in call order.
 * @source and @operation are cut to 64 bytes and @message to 4096, with an
 * ellipsis.
 */
void
shoal_device_log_literal (ShoalDevice        *self,
                          const gchar        *source,
                          const gchar        *operation,
                          ShoalJournalResult  result,
                          const gchar        *message)
{
  g_autofree gchar *source_cut = NULL;
  g_autofree gchar *operation_cut = NULL;
  g_autofree gchar *message_cut = NULL;
  LogInvoke *invoke;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_return_if_fail (operation != NULL);

  source_cut = truncate_text (source, MAX_JOURNAL_OPERATION);
  operation_cut = truncate_text (operation, MAX_JOURNAL_OPERATION);
  message_cut = truncate_text (message, MAX_JOURNAL_MESSAGE);
  invoke = g_new0 (LogInvoke, 1);
  invoke->device = g_object_ref (self);
  invoke->entry = shoal_journal_entry_new (self->id, 0, source_cut, operation_cut, result, message_cut);
  if (in_device_context (self))
    emit_journal_entry_cb (invoke);
  else
    g_main_context_invoke (self->context, emit_journal_entry_cb, invoke);
}

/**
 * shoal_device_log:
 * @self: a device
 * @source: (nullable): who performed the operation
 * @operation: what was performed
 * @result: the outcome
 * @format: printf-style details
 * @...: arguments
 *
 * Appends an entry to the device's journal; see shoal_device_log_literal().
 */
void
shoal_device_log (ShoalDevice        *self,
                  const gchar        *source,
                  const gchar        *operation,
                  ShoalJournalResult  result,
                  const gchar        *format,
                  ...)
{
  g_autofree gchar *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  shoal_device_log_literal (self, source, operation, result, message);
}

/* Events nobody waits for are kept until a step asks, the latest of each
 * name; an agent may post any name, so at most MAX_PENDING_EVENTS names and
 * MAX_PENDING_SIZE bytes of JSON are kept, the oldest dropped first (the
 * newest event is kept even when it alone is larger). They are kept as
 * JSON text, parsed again when a step takes one: json-glib's tree of a
 * payload takes several times the memory of its text. */
#define MAX_PENDING_EVENTS 64
#define MAX_PENDING_SIZE (1024 * 1024)

typedef struct {
  gchar *name;
  gchar *text;    /* the payload, as JSON */
  gsize  size;
} PendingEvent;

static void
pending_event_free (PendingEvent *pending)
{
  g_free (pending->name);
  g_free (pending->text);
  g_free (pending);
}

/* Unlinks the pending event @name from the queue and returns it, or NULL */
static PendingEvent *
take_pending_event (ShoalDevice *self,
                    const gchar *name)
{
  for (GList *l = self->events.head; l != NULL; l = l->next)
    {
      PendingEvent *pending = l->data;

      if (g_strcmp0 (pending->name, name) != 0)
        continue;
      g_queue_delete_link (&self->events, l);
      self->events_size -= pending->size;
      return pending;
    }
  return NULL;
}

/* Removes the pending event @name and returns its payload, or NULL */
static JsonNode *
steal_pending_event (ShoalDevice *self,
                     const gchar *name)
{
  PendingEvent *pending = take_pending_event (self, name);
  JsonNode *payload;

  if (pending == NULL)
    return NULL;
  /* it was written by json_to_string: it parses */
  payload = json_from_string (pending->text, NULL);
  pending_event_free (pending);
  return payload != NULL ? payload : json_node_new (JSON_NODE_NULL);
}

/* @payload: (nullable): kept as its JSON text */
static void
keep_pending_event (ShoalDevice *self,
                    const gchar *name,
                    JsonNode    *payload)
{
  PendingEvent *pending = take_pending_event (self, name);

  if (pending != NULL)
    pending_event_free (pending);
  pending = g_new0 (PendingEvent, 1);
  pending->name = g_strdup (name);
  pending->text = payload != NULL ? json_to_string (payload, FALSE) : g_strdup ("null");
  pending->size = strlen (pending->text);
  g_queue_push_tail (&self->events, pending);
  self->events_size += pending->size;
  while (self->events.length > 1 &&
         (self->events.length > MAX_PENDING_EVENTS || self->events_size > MAX_PENDING_SIZE))
    {
      PendingEvent *oldest = g_queue_pop_head (&self->events);

      self->events_size -= oldest->size;
      g_message ("%s: too many events nobody waits for, dropped “%s”", self->id, oldest->name);
      shoal_device_log (self, "device", "event", SHOAL_JOURNAL_RESULT_WARNING,
                        "event %s dropped: more than %d events or %d bytes wait for a step",
                        oldest->name, MAX_PENDING_EVENTS, MAX_PENDING_SIZE);
      pending_event_free (oldest);
    }
}

static EventWaiter *
find_waiter (ShoalDevice *self,
             const gchar *name)
{
  for (GList *l = self->waiters; l != NULL; l = l->next)
    {
      EventWaiter *waiter = l->data;

      if (g_strcmp0 (waiter->name, name) == 0)
        return waiter;
    }
  return NULL;
}

/**
 * shoal_device_post_event:
 * @self: a device
 * @name: the event name, such as "inventory"
 * @payload: (nullable): its data
 *
 * Delivers an event from the device's agent to the step waiting for it,
 * or keeps it until a step asks (the latest event of a name wins).
 */
void
shoal_device_post_event (ShoalDevice *self,
                         const gchar *name,
                         JsonNode    *payload)
{
  EventWaiter *waiter;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_return_if_fail (name != NULL);

  waiter = find_waiter (self, name);
  if (waiter != NULL)
    {
      self->waiters = g_list_remove (self->waiters, waiter);
      g_task_return_pointer (waiter->task,
                             payload != NULL ? json_node_copy (payload) : json_node_new (JSON_NODE_NULL),
                             (GDestroyNotify) json_node_unref);
      event_waiter_free (waiter);
      return;
    }
  keep_pending_event (self, name, payload);
}

static gboolean
waiter_cancel_idle_cb (gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalDevice *self = g_task_get_source_object (task);

  for (GList *l = self->waiters; l != NULL; l = l->next)
    {
      EventWaiter *waiter = l->data;

      if (waiter->task != task)
        continue;
      self->waiters = g_list_delete_link (self->waiters, l);
      g_task_return_new_error (waiter->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("waiting for event %s was cancelled"), waiter->name);
      event_waiter_free (waiter);
      break;
    }
  return G_SOURCE_REMOVE;
}

static void
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  GTask *task = user_data;
  ShoalDevice *self = g_task_get_source_object (task);
  g_autoptr(GSource) source = g_idle_source_new ();

  /* Never finish from inside the handler: disconnecting there deadlocks */
  g_source_set_callback (source, waiter_cancel_idle_cb, g_object_ref (task), NULL);
  g_source_attach (source, self->context);
}

/**
 * shoal_device_wait_event_async:
 * @self: a device
 * @name: the event name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the event arrives
 * @user_data: (closure callback): data for @callback
 *
 * Waits for the device's agent to post the event @name. An event posted
 * before anybody waited is delivered at once.
 */
void
shoal_device_wait_event_async (ShoalDevice         *self,
                               const gchar         *name,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  EventWaiter *waiter;
  JsonNode *pending;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, shoal_device_wait_event_async);
  if (g_task_return_error_if_cancelled (task))
    return;

  pending = steal_pending_event (self, name);
  if (pending != NULL)
    {
      g_task_return_pointer (task, pending, (GDestroyNotify) json_node_unref);
      return;
    }

  waiter = g_new0 (EventWaiter, 1);
  waiter->device = self;
  waiter->name = g_strdup (name);
  waiter->task = g_object_ref (task);
  self->waiters = g_list_append (self->waiters, waiter);
  if (cancellable != NULL)
    {
      waiter->cancellable = g_object_ref (cancellable);
      waiter->cancelled_id = g_cancellable_connect (cancellable,
                                                    G_CALLBACK (waiter_cancelled_cb),
                                                    task, NULL);
    }
}

/**
 * shoal_device_wait_event_finish:
 * @self: a device
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the event's payload, or %NULL on error
 */
JsonNode *
shoal_device_wait_event_finish (ShoalDevice   *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_device_wait_event_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * shoal_device_clear_events:
 * @self: a device
 *
 * Forgets events nobody waited for, so that an event of an earlier
 * deployment cannot satisfy a step of the next one.
 */
void
shoal_device_clear_events (ShoalDevice *self)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_queue_clear_full (&self->events, (GDestroyNotify) pending_event_free);
  self->events_size = 0;
}

/**
 * shoal_device_get_instruction:
 * @self: a device
 *
 * Returns: (transfer none) (nullable): what the device's agent is to do next
 */
JsonNode *
shoal_device_get_instruction (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  return self->instruction;
}

/**
 * shoal_device_set_instruction:
 * @self: a device
 * @instruction: (nullable): a JSON object with at least "action"
 *
 * Gives the device's agent its next instruction; an agent waiting on
 * `GET /agent/v1/next` receives it at once.
 */
void
shoal_device_set_instruction (ShoalDevice *self,
                              JsonNode    *instruction)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_clear_pointer (&self->instruction, json_node_unref);
  if (instruction != NULL)
    self->instruction = json_node_copy (instruction);
  self->instruction_serial++;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_INSTRUCTION]);
}

guint64
shoal_device_get_instruction_serial (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), 0);
  return self->instruction_serial;
}

/* The controller, restoring a device from the store: the next instruction
 * gets a serial above @serial, so an agent that saw serials up to @serial
 * before shoald restarted takes it */
void
shoal_device_restore_instruction_serial (ShoalDevice *self,
                                         guint64      serial)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  self->instruction_serial = MAX (self->instruction_serial, serial);
}

const gchar *
shoal_device_state_to_string (ShoalDeviceState state)
{
  return shoal_enum_to_nick (SHOAL_TYPE_DEVICE_STATE, (gint) state);
}

/**
 * shoal_device_state_from_string:
 * @str: a state's name, as shoal_device_state_to_string() gives it
 * @state: (out) (optional): the state
 *
 * Returns: %TRUE if @str names a state
 */
gboolean
shoal_device_state_from_string (const gchar      *str,
                                ShoalDeviceState *state)
{
  gint value = 0;

  if (!shoal_enum_from_nick (SHOAL_TYPE_DEVICE_STATE, str, &value))
    return FALSE;
  if (state != NULL)
    *state = value;
  return TRUE;
}

/**
 * shoal_device_state_is_active:
 * @state: a state
 *
 * Returns: whether a deployment is running in @state
 */
gboolean
shoal_device_state_is_active (ShoalDeviceState state)
{
  return state >= SHOAL_DEVICE_STATE_QUEUED && state <= SHOAL_DEVICE_STATE_FINISHING;
}

const gchar *
shoal_boot_action_to_string (ShoalBootAction action)
{
  return shoal_enum_to_nick (SHOAL_TYPE_BOOT_ACTION, (gint) action);
}

/**
 * shoal_boot_action_from_string:
 * @str: a boot action's name, as shoal_boot_action_to_string() gives it
 * @action: (out) (optional): the boot action
 *
 * Returns: %TRUE if @str names a boot action
 */
gboolean
shoal_boot_action_from_string (const gchar     *str,
                               ShoalBootAction *action)
{
  gint value = 0;

  if (!shoal_enum_from_nick (SHOAL_TYPE_BOOT_ACTION, str, &value))
    return FALSE;
  if (action != NULL)
    *action = value;
  return TRUE;
}
