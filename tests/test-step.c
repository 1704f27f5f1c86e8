/* test-step.c: the blocking runs of steps have a pool of their own,
 * bounded by [controller] blocking-steps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>

#include "shoal-error.h"
#include "shoal-step-context.h"
#include "shoal-step-private.h"
#include "shoal-step.h"

/* A step with only a blocking run, which waits until the test lets it go */
#define TEST_TYPE_BLOCKING_STEP (test_blocking_step_get_type ())
G_DECLARE_FINAL_TYPE (TestBlockingStep, test_blocking_step, TEST, BLOCKING_STEP, GObject)

struct _TestBlockingStep
{
  GObject  parent_instance;
  GMutex   lock;
  GCond    cond;
  guint    running;
  guint    most_running;
  guint    runs;
  gboolean release;
};

static gboolean
blocking_run (ShoalStep *step, ShoalStepContext *context, GCancellable *cancellable, GError **error)
{
  TestBlockingStep *self = TEST_BLOCKING_STEP (step);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_mutex_lock (&self->lock);
  self->runs++;
  self->running++;
  self->most_running = MAX (self->most_running, self->running);
  g_cond_broadcast (&self->cond);
  while (!self->release && g_cond_wait_until (&self->cond, &self->lock, deadline))
    ;
  self->running--;
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static void
test_blocking_step_iface_init (ShoalStepInterface *iface)
{
  iface->run = blocking_run;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestBlockingStep, test_blocking_step, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (SHOAL_TYPE_STEP, test_blocking_step_iface_init))

static void
test_blocking_step_finalize (GObject *object)
{
  TestBlockingStep *self = TEST_BLOCKING_STEP (object);

  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (test_blocking_step_parent_class)->finalize (object);
}

static void
test_blocking_step_class_init (TestBlockingStepClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = test_blocking_step_finalize;
}

static void
test_blocking_step_init (TestBlockingStep *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
}

typedef struct {
  guint     done;
  guint     cancelled;
  guint     ok;
} Results;

static void
on_run_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Results *r = user_data;
  g_autoptr(GError) error = NULL;

  if (shoal_step_run_finish (SHOAL_STEP (source), result, &error))
    r->ok++;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    r->cancelled++;
  r->done++;
}

static void
on_thread_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *done = user_data;

  *done = g_task_propagate_boolean (G_TASK (result), NULL);
}

static void
quick_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_task_return_boolean (task, TRUE);
}

/* twelve blocking runs with room for two: two run at once, the others
 * wait their turn; GLib's task pool (10 threads) stays free for other
 * work meanwhile; one cancelled while it waits ends cancelled, unrun */
static void
test_blocking_pool (void)
{
  g_autoptr(TestBlockingStep) step = g_object_new (TEST_TYPE_BLOCKING_STEP, NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) context = shoal_step_context_new (NULL, NULL, "wait", NULL, devices, NULL);
  g_autoptr(GCancellable) waiting = g_cancellable_new ();
  Results r = { 0 };
  gboolean other_done = FALSE;
  g_autoptr(GTask) other = NULL;
  gint64 deadline;

  shoal_step_set_max_blocking (2);
  g_assert_cmpuint (shoal_step_get_max_blocking (), ==, 2);
  for (guint i = 0; i < 11; i++)
    shoal_step_run_async (SHOAL_STEP (step), context, NULL, on_run_done, &r);
  shoal_step_run_async (SHOAL_STEP (step), context, waiting, on_run_done, &r);

  /* two start, and no more */
  g_mutex_lock (&step->lock);
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (step->running < 2 && g_cond_wait_until (&step->cond, &step->lock, deadline))
    ;
  g_mutex_unlock (&step->lock);
  g_usleep (100 * 1000);
  g_mutex_lock (&step->lock);
  g_assert_cmpuint (step->running, ==, 2);
  g_mutex_unlock (&step->lock);

  /* GLib's pool answers at once */
  other = g_task_new (NULL, NULL, on_thread_done, &other_done);
  g_task_run_in_thread (other, quick_thread);
  deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  while (!other_done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  g_assert_true (other_done);

  /* the last is cancelled while it waits; then all are let go */
  g_cancellable_cancel (waiting);
  g_mutex_lock (&step->lock);
  step->release = TRUE;
  g_cond_broadcast (&step->cond);
  g_mutex_unlock (&step->lock);
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (r.done < 12 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (r.done, ==, 12);
  g_assert_cmpuint (r.ok, ==, 11);
  g_assert_cmpuint (r.cancelled, ==, 1);
  g_assert_cmpuint (step->runs, ==, 11);
  g_assert_cmpuint (step->most_running, ==, 2);
  shoal_step_set_max_blocking (32);
}

static void
dropped_cb (ShoalStepContext *context,
            ShoalDevice      *device,
            const GError     *error,
            GPtrArray        *seen)
{
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED);
  g_ptr_array_add (seen, device);
}

/* a member dropped is announced once, with why: a step holding it for
 * something still to come lets it go; a second drop keeps the first's
 * reason and is not announced */
static void
test_device_dropped (void)
{
  g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) seen = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) context = NULL;
  g_autoptr(GError) left = g_error_new_literal (SHOAL_ERROR, SHOAL_ERROR_CANCELLED, "left the group");
  g_autoptr(GError) failed = g_error_new_literal (SHOAL_ERROR, SHOAL_ERROR_FAILED, "failed");
  const GError *why = NULL;

  g_ptr_array_add (devices, shoal_device_new ("dev-a"));
  g_ptr_array_add (devices, shoal_device_new ("dev-b"));
  context = shoal_step_context_new (NULL, NULL, "group", NULL, devices, "group-1");
  g_signal_connect (context, "device-dropped", G_CALLBACK (dropped_cb), seen);
  shoal_step_context_drop_device (context, g_ptr_array_index (devices, 1), left);
  shoal_step_context_drop_device (context, g_ptr_array_index (devices, 1), failed);
  g_assert_cmpuint (seen->len, ==, 1);
  g_assert_true (g_ptr_array_index (seen, 0) == g_ptr_array_index (devices, 1));
  g_assert_true (shoal_step_context_is_dropped (context, g_ptr_array_index (devices, 1), &why));
  g_assert_error (why, SHOAL_ERROR, SHOAL_ERROR_CANCELLED);
  g_assert_false (shoal_step_context_is_dropped (context, g_ptr_array_index (devices, 0), NULL));
}

static void
count_entry_cb (ShoalDevice       *device,
                ShoalJournalEntry *entry,
                guint             *count)
{
  (*count)++;
}

/* a member dropped from the group is left alone by the context: the
 * entries and progress for every member pass it over, and those naming it
 * are not written (it may already be in another run: cancelled, then
 * deployed again) */
static void
test_dropped_untouched (void)
{
  g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(ShoalStepContext) context = NULL;
  g_autoptr(GError) left = g_error_new_literal (SHOAL_ERROR, SHOAL_ERROR_CANCELLED, "left the group");
  ShoalDevice *a, *b;
  guint entries_a = 0, entries_b = 0;

  g_ptr_array_add (devices, shoal_device_new ("dev-a"));
  g_ptr_array_add (devices, shoal_device_new ("dev-b"));
  a = g_ptr_array_index (devices, 0);
  b = g_ptr_array_index (devices, 1);
  g_signal_connect (a, "journal-entry", G_CALLBACK (count_entry_cb), &entries_a);
  g_signal_connect (b, "journal-entry", G_CALLBACK (count_entry_cb), &entries_b);
  context = shoal_step_context_new (NULL, NULL, "group", NULL, devices, "group-1");
  shoal_step_context_set_progress (context, NULL, 0.5);
  shoal_step_context_log (context, NULL, "transfer", SHOAL_JOURNAL_RESULT_INFO, "to %u members", devices->len);
  g_assert_cmpuint (entries_a, ==, 1);
  g_assert_cmpuint (entries_b, ==, 1);

  shoal_step_context_drop_device (context, b, left);
  shoal_step_context_set_progress (context, NULL, 0.75);
  shoal_step_context_log (context, NULL, "transfer", SHOAL_JOURNAL_RESULT_INFO, "done");
  shoal_step_context_log_literal (context, b, "transfer", SHOAL_JOURNAL_RESULT_OK, "written");
  shoal_step_context_set_progress (context, b, 1.0);
  g_assert_cmpuint (entries_a, ==, 2);
  g_assert_cmpfloat (shoal_device_get_progress (a), ==, 0.75);
  g_assert_cmpuint (entries_b, ==, 1);
  g_assert_cmpfloat (shoal_device_get_progress (b), ==, 0.5);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/step/blocking-pool", test_blocking_pool);
  g_test_add_func ("/shoal/step/device-dropped", test_device_dropped);
  g_test_add_func ("/shoal/step/dropped-untouched", test_dropped_untouched);
  return g_test_run ();
}
