/* test-device.c: device properties, events and instructions
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-test-util.h"

static void
test_device_properties (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("d1");
  const gchar *macs[] = { "52:54:00:AA:BB:CC", NULL };
  guint notified = 0;
  ShoalDeviceState state;

  g_signal_connect_swapped (device, "notify", G_CALLBACK (g_atomic_int_inc), &notified);
  shoal_device_set_macs (device, macs);
  g_assert_cmpstr (shoal_device_get_macs (device)[0], ==, "52:54:00:aa:bb:cc");
  g_assert_true (shoal_device_has_mac (device, "52:54:00:aa:bb:cc"));
  shoal_device_set_state (device, SHOAL_DEVICE_STATE_TRANSFER);
  shoal_device_set_state (device, SHOAL_DEVICE_STATE_TRANSFER);
  shoal_device_set_progress (device, 7.0);
  g_assert_cmpfloat (shoal_device_get_progress (device), ==, 1.0);
  g_assert_cmpuint (notified, ==, 3);
  g_assert_cmpstr (shoal_device_state_to_string (SHOAL_DEVICE_STATE_TRANSFER), ==, "transfer");
  g_assert_true (shoal_device_state_from_string ("installed", &state));
  g_assert_cmpint (state, ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_false (shoal_device_state_from_string ("bogus", &state));
  shoal_device_set_metadata (device, "drivers", "e1000 virtio_net");
  g_assert_cmpstr (shoal_device_get_metadata (device, "drivers"), ==, "e1000 virtio_net");
  shoal_device_set_metadata (device, "drivers", NULL);
  g_assert_null (shoal_device_get_metadata (device, "drivers"));
}

static void
event_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  JsonNode **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = shoal_device_wait_event_finish (SHOAL_DEVICE (source), result, &error);
  if (*out == NULL)
    *out = json_node_new (JSON_NODE_NULL);
}

static gboolean
is_set (gpointer data)
{
  return *(JsonNode **) data != NULL;
}

static void
test_device_events (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("d1");
  g_autoptr(JsonNode) payload = json_from_string ("{\"a\": 1}", NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) replaced = g_cancellable_new ();
  JsonNode *cancelled = NULL;
  JsonNode *got = NULL;

  /* posted before anyone waits: kept */
  shoal_device_post_event (device, "inventory", payload);
  shoal_device_wait_event_async (device, "inventory", NULL, event_cb, &got);
  g_assert_true (shoal_test_wait_until (is_set, &got, 1000));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (got), "a"), ==, 1);
  g_clear_pointer (&got, json_node_unref);

  /* waiting first */
  shoal_device_wait_event_async (device, "booted", NULL, event_cb, &got);
  g_main_context_iteration (NULL, FALSE);
  g_assert_null (got);
  shoal_device_post_event (device, "other", NULL);
  shoal_device_post_event (device, "booted", payload);
  g_assert_true (shoal_test_wait_until (is_set, &got, 1000));
  g_assert_true (JSON_NODE_HOLDS_OBJECT (got));
  g_clear_pointer (&got, json_node_unref);

  /* cleared events are gone */
  shoal_device_post_event (device, "stale", payload);
  shoal_device_clear_events (device);
  shoal_device_wait_event_async (device, "stale", cancellable, event_cb, &got);
  for (guint i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_null (got);

  /* cancelled */
  shoal_device_wait_event_async (device, "never", cancellable, event_cb, &got);
  g_cancellable_cancel (cancellable);
  g_assert_true (shoal_test_wait_until (is_set, &got, 1000));
  g_assert_true (JSON_NODE_HOLDS_NULL (got));
  g_clear_pointer (&got, json_node_unref);

  /* posted after a wait was cancelled, before the main loop ended it (a
   * deployment cancelled, the next one's agent reporting): kept for the
   * next wait, where the cancelled wait took it and lost it */
  shoal_device_wait_event_async (device, "image-written", replaced, event_cb, &cancelled);
  g_main_context_iteration (NULL, FALSE);
  g_cancellable_cancel (replaced);
  shoal_device_post_event (device, "image-written", payload);
  g_assert_true (shoal_test_wait_until (is_set, &cancelled, 1000));
  g_assert_true (JSON_NODE_HOLDS_NULL (cancelled));
  json_node_unref (cancelled);
  shoal_device_wait_event_async (device, "image-written", NULL, event_cb, &got);
  g_assert_true (shoal_test_wait_until (is_set, &got, 1000));
  g_assert_true (JSON_NODE_HOLDS_OBJECT (got));
  g_clear_pointer (&got, json_node_unref);
}

/* Whether an event of @name is pending: a wait for it returns at once */
static gboolean
event_pending (ShoalDevice *device,
               const gchar *name)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  JsonNode *got = NULL;
  gboolean pending;

  shoal_device_wait_event_async (device, name, cancellable, event_cb, &got);
  for (guint i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  pending = got != NULL;
  g_cancellable_cancel (cancellable);
  g_assert_true (shoal_test_wait_until (is_set, &got, 1000));
  json_node_unref (got);
  return pending;
}

/* Any name an agent posts was kept until a deployment started: 100 events
 * of 1 MB took 4 GB. At most 64 names and 1 MiB are kept, the oldest
 * dropped */
static void
test_device_events_limits (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("d1");
  g_autoptr(JsonNode) small = json_from_string ("{\"a\": 1}", NULL);
  g_autoptr(JsonNode) big = json_node_new (JSON_NODE_VALUE);
  g_autofree gchar *text = g_strnfill (600 * 1024, 'x');

  for (guint i = 0; i < 100; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("e%u", i);

      shoal_device_post_event (device, name, small);
    }
  g_assert_false (event_pending (device, "e35"));
  g_assert_true (event_pending (device, "e36"));
  g_assert_true (event_pending (device, "e99"));

  shoal_device_clear_events (device);
  json_node_set_string (big, text);
  shoal_device_post_event (device, "big0", big);
  shoal_device_post_event (device, "small", small);
  shoal_device_post_event (device, "big1", big);
  g_assert_false (event_pending (device, "big0"));
  g_assert_true (event_pending (device, "small"));
  g_assert_true (event_pending (device, "big1"));
  /* the newest is kept even alone over the limit */
  g_free (text);
  text = g_strnfill (2 * 1024 * 1024, 'y');
  json_node_set_string (big, text);
  shoal_device_post_event (device, "huge", big);
  g_assert_true (event_pending (device, "huge"));
}

static void
journal_cb (ShoalDevice       *device,
            ShoalJournalEntry *entry,
            GPtrArray         *entries)
{
  g_ptr_array_add (entries, shoal_journal_entry_ref (entry));
}

static gpointer
log_from_thread (gpointer data)
{
  shoal_device_log (data, "thread", "op", SHOAL_JOURNAL_RESULT_OK, "from %s", "a thread");
  return NULL;
}

static gboolean
has_two (gpointer data)
{
  return ((GPtrArray *) data)->len == 2;
}

static void
test_device_journal (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("d1");
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_journal_entry_unref);
  ShoalJournalEntry *entry;

  g_signal_connect (device, "journal-entry", G_CALLBACK (journal_cb), entries);
  shoal_device_log (device, "step", "op", SHOAL_JOURNAL_RESULT_WARNING, "n=%d", 5);
  g_assert_cmpuint (entries->len, ==, 1);
  entry = g_ptr_array_index (entries, 0);
  g_assert_cmpstr (shoal_journal_entry_get_message (entry), ==, "n=5");
  g_assert_cmpstr (shoal_journal_entry_get_device_id (entry), ==, "d1");
  g_assert_cmpint (shoal_journal_entry_get_result (entry), ==, SHOAL_JOURNAL_RESULT_WARNING);
  g_thread_join (g_thread_new ("log", log_from_thread, device));
  g_assert_true (shoal_test_wait_until (has_two, entries, 1000));
  g_assert_cmpstr (shoal_journal_entry_get_message (g_ptr_array_index (entries, 1)), ==, "from a thread");
}

static void
test_device_instruction (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("d1");
  g_autoptr(JsonNode) instruction = json_from_string ("{\"action\": \"reboot\"}", NULL);

  g_assert_cmpuint (shoal_device_get_instruction_serial (device), ==, 0);
  shoal_device_set_instruction (device, instruction);
  g_assert_cmpuint (shoal_device_get_instruction_serial (device), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (shoal_device_get_instruction (device)), "action"),
                   ==, "reboot");
}

typedef struct {
  GThread *main_thread;
  guint    notified;
  guint    off_thread;
  gdouble  last;
} ProgressSeen;

static void
on_progress (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  ProgressSeen *seen = user_data;

  seen->notified++;
  seen->off_thread += g_thread_self () != seen->main_thread;
  seen->last = shoal_device_get_progress (SHOAL_DEVICE (object));
}

static gpointer
set_progress_thread (gpointer data)
{
  for (guint i = 1; i <= 100; i++)
    shoal_device_set_progress (data, i / 100.0);
  return NULL;
}

static gboolean
progress_done (gpointer data)
{
  return ((ProgressSeen *) data)->last == 1.0;
}

/* A blocking step sets progress from its worker thread: the change is
 * made, and notified (to the D-Bus exporter), on the device's main
 * context, in order, never in the worker */
static void
test_device_progress_from_thread (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("p-1");
  ProgressSeen seen = { g_thread_self (), 0, 0, 0.0 };
  GThread *worker;

  g_signal_connect (device, "notify::progress", G_CALLBACK (on_progress), &seen);
  /* this thread owns the context, as shoald's main loop does */
  g_assert_true (g_main_context_acquire (NULL));
  worker = g_thread_new ("step", set_progress_thread, device);
  g_thread_join (worker);
  /* nothing happened in the worker: all of it waits for this context */
  g_assert_cmpuint (seen.notified, ==, 0);
  g_assert_true (shoal_test_wait_until (progress_done, &seen, 5000));
  g_assert_cmpuint (seen.off_thread, ==, 0);
  g_assert_cmpuint (seen.notified, ==, 100);
  g_assert_cmpfloat (shoal_device_get_progress (device), ==, 1.0);
  g_main_context_release (NULL);
}

typedef struct {
  ShoalDevice *device;
  GMainLoop   *loop;
  GThread     *main_thread;
  GHashTable  *notified_by;   /* property name -> count */
  guint        off_thread;    /* notifications emitted in another thread */
} ChangesSeen;

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  ChangesSeen *seen = user_data;
  const gchar *name = g_param_spec_get_name (pspec);

  seen->off_thread += g_thread_self () != seen->main_thread;
  g_hash_table_insert (seen->notified_by, (gpointer) name,
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (seen->notified_by, name)) + 1));
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* What a blocking step does from its worker thread: change the device
 * with every setter and g_object_set(), reading each change back at once */
static gpointer
change_everything_thread (gpointer data)
{
  ChangesSeen *seen = data;
  ShoalDevice *device = seen->device;
  const gchar *macs[] = { "52:54:00:AA:BB:CC", NULL };
  g_autoptr(JsonNode) inventory = json_from_string ("{\"disks\": [{\"name\": \"sda\"}]}", NULL);
  g_autoptr(JsonNode) instruction = json_from_string ("{\"action\": \"reboot\"}", NULL);
  g_autoptr(GHashTable) metadata = NULL;
  g_auto(GStrv) macs_read = NULL;
  g_autofree gchar *uuid = NULL, *step = NULL, *recipe = NULL, *commit = NULL, *group = NULL;
  g_autoptr(JsonNode) inventory_read = NULL;
  g_autoptr(JsonNode) instruction_read = NULL;
  ShoalDeviceState state;
  ShoalBootAction action;

  shoal_device_set_macs (device, macs);
  shoal_device_set_uuid (device, "4c4c4544-0000");
  shoal_device_set_token (device, "secret");
  shoal_device_set_state (device, SHOAL_DEVICE_STATE_TRANSFER);
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_DEPLOY);
  shoal_device_set_current_step (device, "multicast");
  shoal_device_set_recipe (device, "debian");
  shoal_device_set_recipe_commit (device, "0123abcd");
  shoal_device_set_group (device, "debian/multicast/1");
  shoal_device_set_inventory (device, inventory);
  shoal_device_set_metadata (device, "drivers", "e1000 virtio_net");
  shoal_device_set_instruction (device, instruction);
  shoal_device_set_progress (device, 0.25);
  /* read your writes: every change is made when its call returns */
  g_object_get (device, "macs", &macs_read, "uuid", &uuid, "state", &state, "boot-action", &action,
                "current-step", &step, "recipe", &recipe, "recipe-commit", &commit, "group", &group,
                "inventory", &inventory_read, "instruction", &instruction_read, NULL);
  g_assert_cmpstrv (macs_read, ((const gchar *[]) { "52:54:00:aa:bb:cc", NULL }));
  g_assert_true (shoal_device_has_mac (device, "52:54:00:aa:bb:cc"));
  g_assert_cmpstr (uuid, ==, "4c4c4544-0000");
  g_assert_cmpint (state, ==, SHOAL_DEVICE_STATE_TRANSFER);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_TRANSFER);
  g_assert_cmpint (action, ==, SHOAL_BOOT_ACTION_DEPLOY);
  g_assert_cmpint (shoal_device_get_boot_action (device), ==, SHOAL_BOOT_ACTION_DEPLOY);
  g_assert_cmpstr (step, ==, "multicast");
  g_assert_cmpstr (recipe, ==, "debian");
  g_assert_cmpstr (commit, ==, "0123abcd");
  g_assert_cmpstr (group, ==, "debian/multicast/1");
  g_assert_true (json_node_equal (inventory_read, inventory));
  g_assert_true (json_node_equal (instruction_read, instruction));
  g_assert_cmpuint (shoal_device_get_instruction_serial (device), ==, 1);
  g_assert_cmpfloat (shoal_device_get_progress (device), ==, 0.25);
  metadata = shoal_device_get_metadata_all (device);
  g_assert_cmpstr (g_hash_table_lookup (metadata, "drivers"), ==, "e1000 virtio_net");
  /* g_object_set() here holds back the notifications it froze */
  g_object_set (device, "recipe", "fedora", "state", SHOAL_DEVICE_STATE_VERIFY, NULL);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_VERIFY);
  g_main_context_invoke (NULL, quit_loop, seen->loop);
  return NULL;
}

/* Every change a step's worker thread makes is made, and notified (to
 * the D-Bus exporter, the controller), on the device's main context,
 * never in the worker; the worker reads back what it changed at once */
static void
test_device_changes_from_thread (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("c-1");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GHashTable) notified_by = g_hash_table_new (g_str_hash, g_str_equal);
  ChangesSeen seen = { device, loop, g_thread_self (), notified_by, 0 };
  const gchar *props[] = { "macs", "uuid", "current-step", "recipe-commit", "group", "inventory",
                           "instruction", "progress", "boot-action" };
  GThread *worker;

  g_signal_connect (device, "notify", G_CALLBACK (count_notify), &seen);
  /* this thread owns the context, as shoald's main loop does, from before
   * the worker starts */
  g_assert_true (g_main_context_acquire (NULL));
  worker = g_thread_new ("step", change_everything_thread, &seen);
  g_main_loop_run (loop);
  g_thread_join (worker);
  /* a notification released last by the worker's g_object_set() */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (seen.off_thread, ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (props); i++)
    g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (notified_by, props[i])), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (notified_by, "state")), ==, 2);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (notified_by, "recipe")), ==, 2);
  g_assert_cmpstr (shoal_device_get_recipe (device), ==, "fedora");
  g_assert_cmpstr (shoal_device_get_token (device), ==, "secret");
  g_main_context_release (NULL);
}

typedef struct {
  ShoalDevice *device;
  GMainLoop   *loop;
  GThread     *main_thread;
  gint         returned;      /* atomic: the worker's call returned */
  guint        entries;
  guint        out_of_order;  /* entries delivered with metadata of a later call */
  guint        off_thread;
} MetadataRun;

static gpointer
set_metadata_once_thread (gpointer data)
{
  MetadataRun *run = data;

  shoal_device_set_metadata (run->device, "k", "first");
  g_atomic_int_set (&run->returned, TRUE);
  return NULL;
}

static gboolean
has_returned (gpointer data)
{
  return g_atomic_int_get (&((MetadataRun *) data)->returned);
}

static gboolean
has_metadata (gpointer data)
{
  return shoal_device_get_metadata (data, "k") != NULL;
}

#define METADATA_CHANGES 1000

static gpointer
set_metadata_many_thread (gpointer data)
{
  MetadataRun *run = data;

  for (guint i = 0; i < METADATA_CHANGES; i++)
    {
      g_autofree gchar *value = g_strdup_printf ("%u", i);
      g_autoptr(GHashTable) metadata = NULL;

      shoal_device_log (run->device, "step", "set", SHOAL_JOURNAL_RESULT_OK, "%u", i);
      shoal_device_set_metadata (run->device, "k", value);
      /* the table grows and shrinks under the main thread's reads */
      shoal_device_set_metadata (run->device, value, i % 2 == 0 ? value : NULL);
      metadata = shoal_device_get_metadata_all (run->device);
      g_assert_cmpstr (g_hash_table_lookup (metadata, "k"), ==, value);
    }
  g_main_context_invoke (NULL, quit_loop, run->loop);
  return NULL;
}

/* entry i is logged just before metadata "k" is set to i: it is
 * delivered with "k" at i - 1, the journal and the changes in order */
static void
check_metadata_order (ShoalDevice       *device,
                      ShoalJournalEntry *entry,
                      MetadataRun       *run)
{
  guint64 i = g_ascii_strtoull (shoal_journal_entry_get_message (entry), NULL, 10);
  const gchar *value = shoal_device_get_metadata (device, "k");

  run->off_thread += g_thread_self () != run->main_thread;
  if (i == 0 ? value != NULL : value == NULL || g_ascii_strtoull (value, NULL, 10) != i - 1)
    run->out_of_order++;
  run->entries++;
}

/* the main thread reads the metadata meanwhile, as the store writer does */
static gboolean
read_metadata_idle (gpointer data)
{
  MetadataRun *run = data;
  g_autoptr(GHashTable) metadata = shoal_device_get_metadata_all (run->device);
  const gchar *value = shoal_device_get_metadata (run->device, "k");

  g_assert_cmpstr (g_hash_table_lookup (metadata, "k"), ==, value);
  return G_SOURCE_CONTINUE;
}

/* Plugins share data through metadata, which a Python step sets from its
 * worker thread: the change is made on the device's context, where the
 * store writer and the other steps read it, the call returning once it is
 * made there, in order with the step's journal entries */
static void
test_device_metadata_from_thread (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("m-1");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  MetadataRun run = { device, loop, g_thread_self () };
  GThread *worker;
  gint64 deadline;
  guint idle;

  /* this thread owns the context and does not run it: the change waits */
  g_assert_true (g_main_context_acquire (NULL));
  worker = g_thread_new ("step", set_metadata_once_thread, &run);
  deadline = g_get_monotonic_time () + 200 * G_TIME_SPAN_MILLISECOND;
  while (!has_returned (&run) && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_false (has_returned (&run));
  g_assert_null (shoal_device_get_metadata (device, "k"));
  g_assert_true (shoal_test_wait_until (has_metadata, device, 5000));
  g_thread_join (worker);
  g_assert_true (has_returned (&run));
  g_assert_cmpstr (shoal_device_get_metadata (device, "k"), ==, "first");
  shoal_device_set_metadata (device, "k", NULL);

  g_signal_connect (device, "journal-entry", G_CALLBACK (check_metadata_order), &run);
  idle = g_idle_add (read_metadata_idle, &run);
  worker = g_thread_new ("step", set_metadata_many_thread, &run);
  g_main_loop_run (loop);
  g_thread_join (worker);
  g_source_remove (idle);
  g_assert_cmpuint (run.entries, ==, METADATA_CHANGES);
  g_assert_cmpuint (run.out_of_order, ==, 0);
  g_assert_cmpuint (run.off_thread, ==, 0);
  g_main_context_release (NULL);
}

/* The device keeps a copy of its own of the inventory and instruction it
 * is given, and g_object_get() gives copies of them, sharing nothing with
 * the device's, which the main thread reads, copies and frees meanwhile
 * (json-glib counts the references of the objects that nodes share
 * without atomics) */
static void
test_device_copies (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("d-1");
  g_autoptr(JsonNode) inventory =
    json_from_string ("{\"disks\": [{\"name\": \"sda\", \"size\": 8}], \"ok\": true, \"x\": 1.5, \"n\": null}", NULL);
  g_autoptr(JsonNode) instruction = json_from_string ("{\"action\": \"reboot\"}", NULL);
  g_autoptr(JsonNode) inventory_prop = NULL;
  g_autoptr(JsonNode) instruction_prop = NULL;
  JsonNode *kept;

  shoal_device_set_inventory (device, inventory);
  kept = shoal_device_get_inventory (device);
  g_assert_true (json_node_equal (kept, inventory));
  g_assert_true (json_node_get_object (kept) != json_node_get_object (inventory));
  g_object_get (device, "inventory", &inventory_prop, NULL);
  g_assert_true (json_node_equal (inventory_prop, kept));
  g_assert_true (json_node_get_object (inventory_prop) != json_node_get_object (kept));
  g_assert_true (json_object_get_array_member (json_node_get_object (inventory_prop), "disks") !=
                 json_object_get_array_member (json_node_get_object (kept), "disks"));

  shoal_device_set_instruction (device, instruction);
  kept = shoal_device_get_instruction (device);
  g_assert_true (json_node_get_object (kept) != json_node_get_object (instruction));
  g_object_get (device, "instruction", &instruction_prop, NULL);
  g_assert_true (json_node_equal (instruction_prop, instruction));
  g_assert_true (json_node_get_object (instruction_prop) != json_node_get_object (kept));
}

/* What the dup getters give, to a step's worker thread and to bindings,
 * are copies, sharing nothing with the device's own values, which the
 * main thread reads, replaces and frees meanwhile */
static void
test_device_dup (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("d-2");
  g_autoptr(JsonNode) inventory = json_from_string ("{\"disks\": [{\"name\": \"sda\", \"size\": 8}]}", NULL);
  g_autoptr(JsonNode) instruction = json_from_string ("{\"action\": \"reboot\"}", NULL);
  g_autoptr(JsonNode) inventory_copy = NULL;
  g_autoptr(JsonNode) instruction_copy = NULL;
  const gchar *macs[] = { "52:54:00:AA:BB:CC", NULL };
  g_auto(GStrv) macs_copy = NULL;
  g_autofree gchar *metadata = NULL, *uuid = NULL, *token = NULL, *step = NULL;
  g_autofree gchar *recipe = NULL, *commit = NULL, *group = NULL;

  g_assert_null (shoal_device_dup_inventory (device));
  g_assert_null (shoal_device_dup_instruction (device));
  g_assert_null (shoal_device_dup_uuid (device));

  shoal_device_set_inventory (device, inventory);
  inventory_copy = shoal_device_dup_inventory (device);
  g_assert_true (json_node_equal (inventory_copy, inventory));
  g_assert_true (json_node_get_object (inventory_copy) != json_node_get_object (shoal_device_get_inventory (device)));
  g_assert_true (json_object_get_array_member (json_node_get_object (inventory_copy), "disks") !=
                 json_object_get_array_member (json_node_get_object (shoal_device_get_inventory (device)), "disks"));

  shoal_device_set_instruction (device, instruction);
  instruction_copy = shoal_device_dup_instruction (device);
  g_assert_true (json_node_equal (instruction_copy, instruction));
  g_assert_true (json_node_get_object (instruction_copy) != json_node_get_object (shoal_device_get_instruction (device)));

  shoal_device_set_macs (device, macs);
  macs_copy = shoal_device_dup_macs (device);
  g_assert_cmpstrv (macs_copy, shoal_device_get_macs (device));
  g_assert_true ((gpointer) macs_copy != (gpointer) shoal_device_get_macs (device));

  shoal_device_set_metadata (device, "drivers", "e1000");
  metadata = shoal_device_dup_metadata (device, "drivers");
  g_assert_cmpstr (metadata, ==, "e1000");
  g_assert_true (metadata != shoal_device_get_metadata (device, "drivers"));
  g_assert_null (shoal_device_dup_metadata (device, "absent"));

  shoal_device_set_uuid (device, "u");
  shoal_device_set_token (device, "t");
  shoal_device_set_current_step (device, "s");
  shoal_device_set_recipe (device, "r");
  shoal_device_set_recipe_commit (device, "c");
  shoal_device_set_group (device, "g");
  uuid = shoal_device_dup_uuid (device);
  token = shoal_device_dup_token (device);
  step = shoal_device_dup_current_step (device);
  recipe = shoal_device_dup_recipe (device);
  commit = shoal_device_dup_recipe_commit (device);
  group = shoal_device_dup_group (device);
  g_assert_cmpstr (uuid, ==, "u");
  g_assert_true (uuid != shoal_device_get_uuid (device));
  g_assert_cmpstr (token, ==, "t");
  g_assert_true (token != shoal_device_get_token (device));
  g_assert_cmpstr (step, ==, "s");
  g_assert_true (step != shoal_device_get_current_step (device));
  g_assert_cmpstr (recipe, ==, "r");
  g_assert_true (recipe != shoal_device_get_recipe (device));
  g_assert_cmpstr (commit, ==, "c");
  g_assert_true (commit != shoal_device_get_recipe_commit (device));
  g_assert_cmpstr (group, ==, "g");
  g_assert_true (group != shoal_device_get_group (device));
}

typedef struct {
  ShoalDevice *device;
  GMainLoop   *loop;
  JsonNode    *payload;      /* the worker's */
  JsonNode    *next;         /* what the worker's own wait got */
} EventsRun;

static gpointer
events_thread (gpointer data)
{
  EventsRun *run = data;

  shoal_device_post_event (run->device, "image-written", run->payload);
  shoal_device_post_event (run->device, "stale", run->payload);
  shoal_device_clear_events (run->device);
  /* the callback comes on this thread's default context: the main one */
  shoal_device_wait_event_async (run->device, "next", NULL, event_cb, &run->next);
  g_main_context_invoke (NULL, quit_loop, run->loop);
  return NULL;
}

/* A step's worker posts events, clears them and waits for one: the
 * device's waiters and pending events change on its context only, and a
 * waiter gets a payload that shares nothing with the worker's */
static void
test_device_events_from_thread (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("e-1");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(JsonNode) payload = json_from_string ("{\"partition_table\": \"gpt\"}", NULL);
  EventsRun run = { device, loop, payload, NULL };
  JsonNode *got = NULL;
  GThread *worker;

  g_assert_true (g_main_context_acquire (NULL));
  shoal_device_wait_event_async (device, "image-written", NULL, event_cb, &got);
  worker = g_thread_new ("step", events_thread, &run);
  g_main_loop_run (loop);
  g_thread_join (worker);
  g_assert_true (shoal_test_wait_until (is_set, &got, 1000));
  g_assert_true (json_node_equal (got, payload));
  g_assert_true (json_node_get_object (got) != json_node_get_object (payload));
  g_clear_pointer (&got, json_node_unref);
  g_assert_false (event_pending (device, "stale"));

  shoal_device_post_event (device, "next", payload);
  g_assert_true (shoal_test_wait_until (is_set, &run.next, 1000));
  g_assert_true (json_node_equal (run.next, payload));
  g_clear_pointer (&run.next, json_node_unref);
  g_main_context_release (NULL);
}

typedef struct {
  ShoalDevice *device;
  JsonNode    *got;          /* the payload, or a null node on error */
  gboolean     cancelled;    /* the wait ended with G_IO_ERROR_CANCELLED */
  gboolean     done;
} CancelledWait;

static void
cancelled_wait_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  CancelledWait *w = user_data;
  g_autoptr(GError) error = NULL;

  w->got = shoal_device_wait_event_finish (SHOAL_DEVICE (source), result, &error);
  w->cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  w->done = TRUE;
}

static gpointer
cancelled_wait_thread (gpointer data)
{
  CancelledWait *w = data;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();

  /* queued on the device's context, which the main thread owns; cancelled
   * before that context runs it */
  shoal_device_wait_event_async (w->device, "image-written", cancellable, cancelled_wait_cb, w);
  g_cancellable_cancel (cancellable);
  return NULL;
}

static gboolean
wait_done (gpointer data)
{
  return ((CancelledWait *) data)->done;
}

/* A wait started from another thread and cancelled before the device's
 * context registered it takes no event: the one already pending stays
 * for the next wait (it went to the cancelled wait, and was lost) */
static void
test_device_events_cancelled_from_thread (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("e-2");
  g_autoptr(JsonNode) payload = json_from_string ("{\"partition_table\": \"mbr\"}", NULL);
  CancelledWait w = { device, NULL, FALSE, FALSE };

  g_assert_true (g_main_context_acquire (NULL));
  shoal_device_post_event (device, "image-written", payload);
  g_thread_join (g_thread_new ("step", cancelled_wait_thread, &w));
  g_assert_true (shoal_test_wait_until (wait_done, &w, 1000));
  g_assert_true (w.cancelled);
  g_assert_null (w.got);
  g_assert_true (event_pending (device, "image-written"));
  g_main_context_release (NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/device/properties", test_device_properties);
  g_test_add_func ("/shoal/device/progress-from-thread", test_device_progress_from_thread);
  g_test_add_func ("/shoal/device/changes-from-thread", test_device_changes_from_thread);
  g_test_add_func ("/shoal/device/metadata-from-thread", test_device_metadata_from_thread);
  g_test_add_func ("/shoal/device/copies", test_device_copies);
  g_test_add_func ("/shoal/device/dup", test_device_dup);
  g_test_add_func ("/shoal/device/events-from-thread", test_device_events_from_thread);
  g_test_add_func ("/shoal/device/events-cancelled-from-thread", test_device_events_cancelled_from_thread);
  g_test_add_func ("/shoal/device/events", test_device_events);
  g_test_add_func ("/shoal/device/events-limits", test_device_events_limits);
  g_test_add_func ("/shoal/device/journal", test_device_journal);
  g_test_add_func ("/shoal/device/instruction", test_device_instruction);
  return g_test_run ();
}
