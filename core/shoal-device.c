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
#include "shoal-json-private.h"

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
 * from), `agent.token-claimed` (the agent has used this deployment's token:
 * the next boot script gets a new one), `agent.superseded-token` (the
 * SHA-256 of the previous deployment's token, which an agent claimed: that
 * agent is told to reboot; see shoal-controller-token.c), `image.id` (manifest SHA-256), `image.sha256` (whole image),
 * `multicast.session` (multicast session the device was in), `pxe.*`
 * (plugins/pxe/README.md), `recipe.auto` ("true": the controller chose
 * the device's recipe by matching; see shoal_controller_assign_recipe()).
 *
 * Metadata belongs to one deployment: when the next one starts, the
 * controller clears every key except `pxe.client` and `pxe.arch`, which
 * describe the machine, `recipe.auto`, which describes its assignment,
 * and `agent.superseded-token`, which the controller keeps itself
 * (kept_metadata_keys in shoal-controller.c).
 *
 * A device lives on the main context of the thread that created it
 * (shoald's main loop): its fields change there, and its property
 * notifications and #ShoalDevice::journal-entry are emitted there only.
 * Every call a step makes of it is safe from any thread, such as the
 * worker thread where a blocking step runs (every Python step):
 *
 * - a change (shoal_device_set_metadata() and every other setter,
 *   shoal_device_post_event(), shoal_device_clear_events(), g_object_set())
 *   called from another thread is made on the device's context, after what
 *   that thread queued before, and the call returns once it is made there:
 *   the caller reads its own change back at once, with any getter. The
 *   journal (shoal_device_log()) and shoal_device_set_progress() are
 *   queued the same way without waiting; shoal_device_get_progress()
 *   from the thread that set it gives the progress it set all the same.
 *   Never make a change from a thread that the owner of the device's
 *   context waits for: it would wait for ever;
 * - the shoal_device_dup_*() getters, shoal_device_get_metadata_all(),
 *   g_object_get() and the getters of numbers and enums read under the
 *   device's lock and return copies. The shoal_device_get_*() getters that
 *   return a pointer into the device (`const` strings, the inventory, the
 *   instruction, the MAC addresses) are for the device's context only,
 *   where it stays valid until the next change; the bindings (Python) call
 *   the `dup` variant under the `get` name.
 */
struct _ShoalDevice
{
  GObject           parent_instance;

  GMainContext     *context;
  GThread          *thread;         /* the thread that created the device */
  gchar            *id;             /* set once, at construction */

  /* The fields below are changed on the device's context only, with the
   * lock held; a getter reads them with it held */
  GMutex            lock;
  GStrv             macs;
  gchar            *uuid;
  gchar            *token;
  ShoalDeviceState  state;
  ShoalBootAction   boot_action;
  gchar            *current_step;
  gdouble           progress;
  gdouble           progress_queued;  /* the last progress queued from another thread */
  guint             progress_pending; /* progress changes queued and not yet made */
  gchar            *recipe;
  gchar            *recipe_commit;
  gchar            *group;
  JsonNode         *inventory;      /* shares nothing with any other node */
  GHashTable       *metadata;       /* (nullable) gchar* -> gchar* */
  JsonNode         *instruction;    /* shares nothing with any other node */
  guint64           instruction_serial;
  guint64           handed_serial;  /* the serial of the last instruction set in this
                                     * process (0: none since the device was
                                     * restored from the store) */

  /* Used on the device's context only, unlocked */
  GQueue            events;         /* PendingEvent*, oldest first */
  gsize             events_size;    /* serialized size of their payloads */
  GList            *waiters;        /* EventWaiter* */
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

/* whether this thread may change @self and emit its signals now: its own
 * thread, or one that owns its main context */
static gboolean
in_device_context (ShoalDevice *self)
{
  return self->thread == g_thread_self () || g_main_context_is_owner (self->context);
}

typedef void (*DeviceFunc) (ShoalDevice *self,
                            gpointer     data);

typedef struct {
  ShoalDevice *device;
  DeviceFunc   func;
  gpointer     data;
  GMutex       lock;
  GCond        cond;
  gboolean     done;
} DeviceCall;     /* on the stack of the thread that waits for it */

static gboolean
device_call_cb (gpointer user_data)
{
  DeviceCall *call = user_data;

  call->func (call->device, call->data);
  g_mutex_lock (&call->lock);
  call->done = TRUE;
  g_cond_signal (&call->cond);
  g_mutex_unlock (&call->lock);
  return G_SOURCE_REMOVE;
}

/* Runs @func (@self, @data) where @self may be changed: at once when this
 * thread may, else on the device's context, after what this thread queued
 * there before (journal entries, progress), waiting until it ran. The
 * caller's arguments in @data stay its own: they live until it returns */
static void
run_in_device_context (ShoalDevice *self,
                       DeviceFunc   func,
                       gpointer     data)
{
  DeviceCall call = { self, func, data };

  if (in_device_context (self))
    {
      func (self, data);
      return;
    }
  g_mutex_init (&call.lock);
  g_cond_init (&call.cond);
  /* runs it here at once when no thread owns the context */
  g_main_context_invoke (self->context, device_call_cb, &call);
  g_mutex_lock (&call.lock);
  while (!call.done)
    g_cond_wait (&call.cond, &call.lock);
  g_mutex_unlock (&call.lock);
  g_mutex_clear (&call.lock);
  g_cond_clear (&call.cond);
}

/* Changes a field of @self, its lock held: returns whether it changed */
typedef gboolean (*FieldChange) (ShoalDevice *self,
                                 gpointer     data);

typedef struct {
  FieldChange  change;
  gpointer     data;
  GParamSpec  *pspec;     /* (nullable): notified when the field changed */
} Change;

static void
change_here (ShoalDevice *self,
             gpointer     data)
{
  Change *change = data;
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = change->change (self, change->data);
  g_mutex_unlock (&self->lock);
  if (changed && change->pspec != NULL)
    g_object_notify_by_pspec (G_OBJECT (self), change->pspec);
}

/* Changes a field of @self with @func (@self, @data) on its context,
 * notifying @pspec there if it changed */
static void
change_field (ShoalDevice *self,
              GParamSpec  *pspec,
              FieldChange  func,
              gpointer     data)
{
  Change change = { func, data, pspec };

  run_in_device_context (self, change_here, &change);
}

typedef struct {
  ShoalDevice  *device;
  guint         n_pspecs;
  GParamSpec  **pspecs;
} NotifyInvoke;

static gboolean
dispatch_properties_changed_cb (gpointer user_data)
{
  NotifyInvoke *invoke = user_data;

  G_OBJECT_CLASS (shoal_device_parent_class)->dispatch_properties_changed (G_OBJECT (invoke->device),
                                                                           invoke->n_pspecs,
                                                                           invoke->pspecs);
  for (guint i = 0; i < invoke->n_pspecs; i++)
    g_param_spec_unref (invoke->pspecs[i]);
  g_free (invoke->pspecs);
  g_object_unref (invoke->device);
  g_free (invoke);
  return G_SOURCE_REMOVE;
}

/* Property notifications go out on the device's context only: those that
 * another thread releases (g_object_set() there thaws the notifications
 * it froze, the device's own included) are sent there */
static void
shoal_device_dispatch_properties_changed (GObject     *object,
                                          guint        n_pspecs,
                                          GParamSpec **pspecs)
{
  ShoalDevice *self = SHOAL_DEVICE (object);
  NotifyInvoke *invoke;

  if (in_device_context (self))
    {
      G_OBJECT_CLASS (shoal_device_parent_class)->dispatch_properties_changed (object, n_pspecs, pspecs);
      return;
    }
  invoke = g_new0 (NotifyInvoke, 1);
  invoke->device = g_object_ref (self);
  invoke->n_pspecs = n_pspecs;
  invoke->pspecs = g_new0 (GParamSpec *, n_pspecs);
  for (guint i = 0; i < n_pspecs; i++)
    invoke->pspecs[i] = g_param_spec_ref (pspecs[i]);
  g_main_context_invoke (self->context, dispatch_properties_changed_cb, invoke);
}

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

static void clear_events_here (ShoalDevice *self, gpointer data);

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
  clear_events_here (self, NULL);
  g_clear_pointer (&self->instruction, json_node_unref);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (shoal_device_parent_class)->finalize (object);
}

static void
shoal_device_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  ShoalDevice *self = SHOAL_DEVICE (object);

  if (prop_id == PROP_PROGRESS)
    {
      g_value_set_double (value, shoal_device_get_progress (self));
      return;
    }
  /* copies, taken under the lock: safe from any thread */
  g_mutex_lock (&self->lock);
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
      g_value_take_boxed (value, shoal_json_node_deep_copy (self->inventory));
      break;
    case PROP_INSTRUCTION:
      g_value_take_boxed (value, shoal_json_node_deep_copy (self->instruction));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
  g_mutex_unlock (&self->lock);
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
  object_class->dispatch_properties_changed = shoal_device_dispatch_properties_changed;

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
  g_mutex_init (&self->lock);
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

/**
 * shoal_device_get_id:
 * @self: a device
 *
 * Returns: the device's identifier, which never changes: safe from any thread
 */
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
 * On the device's context only; from another thread, call
 * shoal_device_dup_macs().
 *
 * Returns: (transfer none) (array zero-terminated=1): the MAC addresses,
 *   lower case, valid until they change
 */
const gchar * const *
shoal_device_get_macs (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return (const gchar * const *) self->macs;
}

/**
 * shoal_device_dup_macs: (rename-to shoal_device_get_macs)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (array zero-terminated=1): a copy of the MAC
 *   addresses, lower case
 */
gchar **
shoal_device_dup_macs (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return g_strdupv (self->macs);
}

static gboolean
replace_macs (ShoalDevice *self,
              gpointer     data)
{
  GStrv *macs = data;

  if (g_strv_equal ((const gchar * const *) *macs, (const gchar * const *) self->macs))
    return FALSE;
  g_strfreev (self->macs);
  self->macs = g_steal_pointer (macs);
  return TRUE;
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
  change_field (self, properties[PROP_MACS], replace_macs, &lowered);
}

/**
 * shoal_device_has_mac:
 * @self: a device
 * @mac: (nullable): a MAC address, in any case
 *
 * Safe from any thread.
 *
 * Returns: whether @mac is one of the device's
 */
gboolean
shoal_device_has_mac (ShoalDevice *self,
                      const gchar *mac)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), FALSE);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  for (guint i = 0; mac != NULL && self->macs[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (self->macs[i], mac) == 0)
        return TRUE;
    }
  return FALSE;
}

typedef struct {
  gchar       **field;
  const gchar  *value;
} StringChange;

static gboolean
replace_string (ShoalDevice *self,
                gpointer     data)
{
  StringChange *change = data;

  if (g_strcmp0 (*change->field, change->value) == 0)
    return FALSE;
  g_free (*change->field);
  *change->field = g_strdup (change->value);
  return TRUE;
}

static const gchar *
get_string (ShoalDevice  *self,
            gchar       **field)
{
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return *field;
}

static gchar *
dup_string (ShoalDevice  *self,
            gchar       **field)
{
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return g_strdup (*field);
}

/* get_NAME() for the device's context, dup_NAME() for any thread */
#define DEFINE_STRING_PROPERTY(name, PROP)                                  \
  const gchar *                                                             \
  shoal_device_get_##name (ShoalDevice *self)                               \
  {                                                                         \
    g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);                    \
    return get_string (self, &self->name);                                  \
  }                                                                         \
  gchar *                                                                   \
  shoal_device_dup_##name (ShoalDevice *self)                               \
  {                                                                         \
    g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);                    \
    return dup_string (self, &self->name);                                  \
  }                                                                         \
  void                                                                      \
  shoal_device_set_##name (ShoalDevice *self, const gchar *value)           \
  {                                                                         \
    StringChange change;                                                    \
                                                                            \
    g_return_if_fail (SHOAL_IS_DEVICE (self));                              \
    change = (StringChange) { &self->name, value };                         \
    change_field (self, properties[PROP], replace_string, &change);         \
  }

/**
 * shoal_device_get_uuid:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_uuid().
 *
 * Returns: (nullable): the SMBIOS UUID, valid until it changes
 */
/**
 * shoal_device_dup_uuid: (rename-to shoal_device_get_uuid)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of the SMBIOS UUID
 */
DEFINE_STRING_PROPERTY (uuid, PROP_UUID)

/**
 * shoal_device_get_token:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_token().
 *
 * Returns: (nullable): the secret every request of the device's agent
 *   carries, valid until it changes
 */
/**
 * shoal_device_dup_token: (rename-to shoal_device_get_token)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of the secret every request
 *   of the device's agent carries
 */
DEFINE_STRING_PROPERTY (token, PROP_0)

/**
 * shoal_device_get_current_step:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_current_step().
 *
 * Returns: (nullable): the id of the step the device is at, valid until it
 *   changes
 */
/**
 * shoal_device_dup_current_step: (rename-to shoal_device_get_current_step)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of the id of the step the
 *   device is at
 */
DEFINE_STRING_PROPERTY (current_step, PROP_CURRENT_STEP)

/**
 * shoal_device_get_recipe:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_recipe().
 *
 * Returns: (nullable): the name of the recipe the device is deployed with,
 *   valid until it changes
 */
/**
 * shoal_device_dup_recipe: (rename-to shoal_device_get_recipe)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of the name of the recipe
 *   the device is deployed with
 */
DEFINE_STRING_PROPERTY (recipe, PROP_RECIPE)

/**
 * shoal_device_get_recipe_commit:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_recipe_commit().
 *
 * Returns: (nullable): the git commit of the recipe, valid until it changes
 */
/**
 * shoal_device_dup_recipe_commit: (rename-to shoal_device_get_recipe_commit)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of the git commit of the
 *   recipe
 */
DEFINE_STRING_PROPERTY (recipe_commit, PROP_RECIPE_COMMIT)

/**
 * shoal_device_get_group:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_group().
 *
 * Returns: (nullable): the id of the device's group, valid until it changes
 */
/**
 * shoal_device_dup_group: (rename-to shoal_device_get_group)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of the id of the device's
 *   group
 */
DEFINE_STRING_PROPERTY (group, PROP_GROUP)

typedef struct {
  gint *field;
  gint  value;
} EnumChange;

static gboolean
replace_enum (ShoalDevice *self,
              gpointer     data)
{
  EnumChange *change = data;

  if (*change->field == change->value)
    return FALSE;
  *change->field = change->value;
  return TRUE;
}

/**
 * shoal_device_get_state:
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: where the device stands
 */
ShoalDeviceState
shoal_device_get_state (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), SHOAL_DEVICE_STATE_DISCOVERED);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return self->state;
}

void
shoal_device_set_state (ShoalDevice      *self,
                        ShoalDeviceState  state)
{
  EnumChange change;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  change = (EnumChange) { (gint *) &self->state, state };
  change_field (self, properties[PROP_STATE], replace_enum, &change);
}

/**
 * shoal_device_get_boot_action:
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: what the network boot service tells the device to do
 */
ShoalBootAction
shoal_device_get_boot_action (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), SHOAL_BOOT_ACTION_LOCAL);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return self->boot_action;
}

void
shoal_device_set_boot_action (ShoalDevice     *self,
                              ShoalBootAction  action)
{
  EnumChange change;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  change = (EnumChange) { (gint *) &self->boot_action, action };
  change_field (self, properties[PROP_BOOT_ACTION], replace_enum, &change);
}

/**
 * shoal_device_get_progress:
 * @self: a device
 *
 * Safe from any thread. On the device's context, the progress as last
 * notified; from another thread, the progress the changes queued there
 * will leave (so a step's worker reads back what it set at once).
 *
 * Returns: the current step's progress, 0 to 1
 */
gdouble
shoal_device_get_progress (ShoalDevice *self)
{
  gboolean here;

  g_return_val_if_fail (SHOAL_IS_DEVICE (self), 0.0);
  here = in_device_context (self);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return !here && self->progress_pending > 0 ? self->progress_queued : self->progress;
}

typedef struct {
  ShoalDevice *device;
  gdouble      progress;
} ProgressInvoke;

static gboolean
replace_progress (ShoalDevice *self,
                  gpointer     data)
{
  gdouble *progress = data;

  if (self->progress == *progress)
    return FALSE;
  self->progress = *progress;
  return TRUE;
}

/* the progress another thread queued, no longer pending once made */
static gboolean
replace_queued_progress (ShoalDevice *self,
                         gpointer     data)
{
  self->progress_pending--;
  return replace_progress (self, data);
}

static gboolean
set_progress_cb (gpointer user_data)
{
  ProgressInvoke *invoke = user_data;
  Change change = { replace_queued_progress, &invoke->progress, properties[PROP_PROGRESS] };

  change_here (invoke->device, &change);
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
 * entries, where its property notifications go out. From another thread
 * it is queued there without waiting, as the journal is (a step may set
 * its progress often); shoal_device_get_progress() from that thread gives
 * the queued progress meanwhile.
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
      Change change = { replace_progress, &progress, properties[PROP_PROGRESS] };

      change_here (self, &change);
      return;
    }
  g_mutex_lock (&self->lock);
  self->progress_queued = progress;
  self->progress_pending++;
  g_mutex_unlock (&self->lock);
  invoke = g_new0 (ProgressInvoke, 1);
  invoke->device = g_object_ref (self);
  invoke->progress = progress;
  g_main_context_invoke (self->context, set_progress_cb, invoke);
}

typedef struct {
  JsonNode **field;
  JsonNode  *node;
} NodeChange;

/* The device keeps a copy sharing nothing with the caller's node, which
 * may live on in another thread: json-glib counts the references of what
 * nodes share without atomics. The inventory is left alone when given
 * back as it is; every instruction is a new one */
static gboolean
replace_node (ShoalDevice *self,
              gpointer     data)
{
  NodeChange *change = data;
  gboolean instruction = change->field == &self->instruction;

  if (!instruction && *change->field == change->node)
    return FALSE;
  g_clear_pointer (change->field, json_node_unref);
  *change->field = shoal_json_node_deep_copy (change->node);
  if (instruction)
    self->handed_serial = ++self->instruction_serial;
  return TRUE;
}

/* @field's node, copied whole under the lock */
static JsonNode *
dup_node (ShoalDevice  *self,
          JsonNode    **field)
{
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return shoal_json_node_deep_copy (*field);
}

/**
 * shoal_device_get_inventory:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_inventory(). Do not change it.
 *
 * Returns: (transfer none) (nullable): the hardware inventory, valid until
 *   it changes
 */
JsonNode *
shoal_device_get_inventory (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return self->inventory;
}

/**
 * shoal_device_dup_inventory: (rename-to shoal_device_get_inventory)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of the hardware inventory,
 *   sharing nothing with the device's
 */
JsonNode *
shoal_device_dup_inventory (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  return dup_node (self, &self->inventory);
}

/**
 * shoal_device_set_inventory:
 * @self: a device
 * @inventory: (nullable): the inventory, as validated against
 *   inventory.schema.json; the device keeps a copy
 *
 */
void
shoal_device_set_inventory (ShoalDevice *self,
                            JsonNode    *inventory)
{
  NodeChange change;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  change = (NodeChange) { &self->inventory, inventory };
  change_field (self, properties[PROP_INVENTORY], replace_node, &change);
}

/**
 * shoal_device_get_metadata:
 * @self: a device
 * @key: a documented key
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_metadata().
 *
 * Returns: (nullable): the value, valid until it changes
 */
const gchar *
shoal_device_get_metadata (ShoalDevice *self,
                           const gchar *key)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return self->metadata != NULL ? g_hash_table_lookup (self->metadata, key) : NULL;
}

/**
 * shoal_device_dup_metadata: (rename-to shoal_device_get_metadata)
 * @self: a device
 * @key: a documented key
 *
 * Safe from any thread; the thread that set @key reads its value back at
 * once (shoal_device_set_metadata()).
 *
 * Returns: (transfer full) (nullable): a copy of the value
 */
gchar *
shoal_device_dup_metadata (ShoalDevice *self,
                           const gchar *key)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return self->metadata != NULL ? g_strdup (g_hash_table_lookup (self->metadata, key)) : NULL;
}

typedef struct {
  const gchar *key;
  const gchar *value;
} MetadataChange;

static gboolean
replace_metadata (ShoalDevice *self,
                  gpointer     data)
{
  MetadataChange *change = data;

  if (self->metadata == NULL)
    self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (change->value == NULL)
    return g_hash_table_remove (self->metadata, change->key);
  g_hash_table_replace (self->metadata, g_strdup (change->key), g_strdup (change->value));
  return TRUE;
}

/**
 * shoal_device_set_metadata:
 * @self: a device
 * @key: a documented key
 * @value: (nullable): the value, or %NULL to remove it
 *
 * Safe from any thread: from another thread, the change is made on the
 * device's context and this returns once it is made, so that
 * shoal_device_dup_metadata() there gives @value at once.
 */
void
shoal_device_set_metadata (ShoalDevice *self,
                           const gchar *key,
                           const gchar *value)
{
  MetadataChange change = { key, value };

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_return_if_fail (key != NULL);
  /* no property: steps and the store read metadata when they need it */
  change_field (self, NULL, replace_metadata, &change);
}

/**
 * shoal_device_get_metadata_all:
 * @self: a device
 *
 * Safe from any thread.
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
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
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

/* The step waiting for the event @name. A wait that was cancelled is
 * listed until its idle (waiter_cancelled_cb()) ends it, but no longer
 * waits: an event that comes meanwhile (the agent of the next deployment
 * reporting before its step asks) is another's, kept for it */
static EventWaiter *
find_waiter (ShoalDevice *self,
             const gchar *name)
{
  for (GList *l = self->waiters; l != NULL; l = l->next)
    {
      EventWaiter *waiter = l->data;

      if (g_strcmp0 (waiter->name, name) == 0 &&
          !g_cancellable_is_cancelled (waiter->cancellable))
        return waiter;
    }
  return NULL;
}

typedef struct {
  const gchar *name;
  JsonNode    *payload;
} PostedEvent;

static void
post_event_here (ShoalDevice *self,
                 gpointer     data)
{
  PostedEvent *event = data;
  EventWaiter *waiter = find_waiter (self, event->name);

  if (waiter != NULL)
    {
      self->waiters = g_list_remove (self->waiters, waiter);
      /* whole: the poster's node may live on in another thread */
      g_task_return_pointer (waiter->task,
                             event->payload != NULL ? shoal_json_node_deep_copy (event->payload)
                                                    : json_node_new (JSON_NODE_NULL),
                             (GDestroyNotify) json_node_unref);
      event_waiter_free (waiter);
      return;
    }
  keep_pending_event (self, event->name, event->payload);
}

/**
 * shoal_device_post_event:
 * @self: a device
 * @name: the event name, such as "inventory"
 * @payload: (nullable): its data
 *
 * Delivers an event from the device's agent to the step waiting for it,
 * or keeps it until a step asks (the latest event of a name wins). Safe
 * from any thread: from another thread, the event is delivered on the
 * device's context and this returns once it is.
 */
void
shoal_device_post_event (ShoalDevice *self,
                         const gchar *name,
                         JsonNode    *payload)
{
  PostedEvent event = { name, payload };

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_return_if_fail (name != NULL);
  run_in_device_context (self, post_event_here, &event);
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

typedef struct {
  GTask *task;        /* its source object is the device */
  gchar *name;
} WaitInvoke;

/* Gives @task the pending event @name, or has it wait for one */
static void
add_waiter (ShoalDevice *self,
            GTask       *task,
            const gchar *name)
{
  GCancellable *cancellable = g_task_get_cancellable (task);
  EventWaiter *waiter;
  JsonNode *pending;

  /* cancelled on its way here from another thread: it takes no event
   * (a pending one stays for the next wait) */
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

static gboolean
add_waiter_cb (gpointer user_data)
{
  WaitInvoke *invoke = user_data;

  add_waiter (g_task_get_source_object (invoke->task), invoke->task, invoke->name);
  g_object_unref (invoke->task);
  g_free (invoke->name);
  g_free (invoke);
  return G_SOURCE_REMOVE;
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
 * before anybody waited is delivered at once. Once @cancellable is
 * cancelled the wait takes no event: one posted after is kept for the
 * next wait, although @callback may come later. Safe from any thread: the
 * wait starts on the device's context, after what this thread queued
 * there before; @callback is called on the thread-default main context
 * of the caller, as usual.
 */
void
shoal_device_wait_event_async (ShoalDevice         *self,
                               const gchar         *name,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  WaitInvoke *invoke;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, shoal_device_wait_event_async);
  if (g_task_return_error_if_cancelled (task))
    return;
  if (in_device_context (self))
    {
      add_waiter (self, task, name);
      return;
    }
  invoke = g_new0 (WaitInvoke, 1);
  invoke->task = g_steal_pointer (&task);
  invoke->name = g_strdup (name);
  g_main_context_invoke (self->context, add_waiter_cb, invoke);
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

static void
clear_events_here (ShoalDevice *self,
                   gpointer     data)
{
  g_queue_clear_full (&self->events, (GDestroyNotify) pending_event_free);
  self->events_size = 0;
}

/**
 * shoal_device_clear_events:
 * @self: a device
 *
 * Forgets events nobody waited for, so that an event of an earlier
 * deployment cannot satisfy a step of the next one. Safe from any thread:
 * from another thread, this returns once they are forgotten.
 */
void
shoal_device_clear_events (ShoalDevice *self)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  run_in_device_context (self, clear_events_here, NULL);
}

/**
 * shoal_device_get_instruction:
 * @self: a device
 *
 * On the device's context only; from another thread, call
 * shoal_device_dup_instruction(). Do not change it.
 *
 * Returns: (transfer none) (nullable): what the device's agent is to do
 *   next, valid until it changes
 */
JsonNode *
shoal_device_get_instruction (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return self->instruction;
}

/**
 * shoal_device_dup_instruction: (rename-to shoal_device_get_instruction)
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: (transfer full) (nullable): a copy of what the device's agent
 *   is to do next, sharing nothing with the device's
 */
JsonNode *
shoal_device_dup_instruction (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), NULL);
  return dup_node (self, &self->instruction);
}

/**
 * shoal_device_set_instruction:
 * @self: a device
 * @instruction: (nullable): a JSON object with at least "action"; the
 *   device keeps a copy
 *
 * Gives the device's agent its next instruction; an agent waiting on
 * `GET /agent/v1/next` receives it at once.
 */
void
shoal_device_set_instruction (ShoalDevice *self,
                              JsonNode    *instruction)
{
  NodeChange change;

  g_return_if_fail (SHOAL_IS_DEVICE (self));
  change = (NodeChange) { &self->instruction, instruction };
  change_field (self, properties[PROP_INSTRUCTION], replace_node, &change);
}

/**
 * shoal_device_get_instruction_serial:
 * @self: a device
 *
 * Safe from any thread.
 *
 * Returns: how many instructions the device was given
 */
guint64
shoal_device_get_instruction_serial (ShoalDevice *self)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), 0);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return self->instruction_serial;
}

/* The agent API: whether an event the agent posted while it carried out
 * instruction @serial belongs to an instruction replaced since (a later
 * one, or none: shoal_device_set_instruction() with %NULL at a new
 * deployment). Only instructions set in this process count: after a
 * restart, the instruction an agent still carries out may be the last one
 * stored, and its events are taken as before */
gboolean
shoal_device_event_serial_is_stale (ShoalDevice *self,
                                    guint64      serial)
{
  g_return_val_if_fail (SHOAL_IS_DEVICE (self), FALSE);
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  return serial < self->handed_serial;
}

/* The controller, restoring a device from the store: the next instruction
 * gets a serial above @serial, so an agent that saw serials up to @serial
 * before shoald restarted takes it */
void
shoal_device_restore_instruction_serial (ShoalDevice *self,
                                         guint64      serial)
{
  g_return_if_fail (SHOAL_IS_DEVICE (self));
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->lock);
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
