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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/device/properties", test_device_properties);
  g_test_add_func ("/shoal/device/progress-from-thread", test_device_progress_from_thread);
  g_test_add_func ("/shoal/device/events", test_device_events);
  g_test_add_func ("/shoal/device/events-limits", test_device_events_limits);
  g_test_add_func ("/shoal/device/journal", test_device_journal);
  g_test_add_func ("/shoal/device/instruction", test_device_instruction);
  return g_test_run ();
}
