/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "multicast" group step end to end: run by test-multicast-step.sh
 * inside the sender's namespace of a bench/multicast/topo.sh topology
 * (MCAST_NS_PREFIX); receivers are the shoal-mcast-recv tool in r1, r2.
 * Three devices: two receive (their Progress follows the chunks they
 * verify), the third never joins and is dropped. A device with a slow
 * disk, left to finish by unicast, is let go when it leaves the group or
 * unicast-timeout-s passes, and the step cancelled meanwhile ends at
 * once. The session sends one packet per message
 * ("gso": false); the tools' net tests and the agent's end-to-end test
 * send GSO super-packets. */
#include "config.h"

#include <shoal.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "shoal-multicast-journal.h"
#include "shoal-multicast-route.h"
#include "shoal-multicast-source.h"
#include "shoal-multicast-step.h"
#ifdef HAVE_IMAGE_STORE
#include "shoal-image-files.h"
#endif

G_DECLARE_FINAL_TYPE (TestModule, test_module, TEST, MODULE, GTypeModule)
struct _TestModule { GTypeModule parent_instance; };
G_DEFINE_TYPE (TestModule, test_module, G_TYPE_TYPE_MODULE)
static gboolean test_module_load (GTypeModule *module) { return TRUE; }
static void test_module_unload (GTypeModule *module) { }
static void test_module_class_init (TestModuleClass *klass)
{
  G_TYPE_MODULE_CLASS (klass)->load = test_module_load;
  G_TYPE_MODULE_CLASS (klass)->unload = test_module_unload;
}
static void test_module_init (TestModule *self) { }

typedef struct {
  GMainLoop *loop;
  gboolean ok;
  GError *error;
  GPtrArray *devices;
  gchar *src;
  gchar *dir;
  GPtrArray *children;
  GPtrArray *outputs;   /* each child's output file */
  GArray *progress[2];  /* each Progress the two receiving devices went through */
  gchar *iface_note;    /* the step's journal note on its interface */
  gboolean x_silent;    /* two-links: host x runs no receiver */
} Fixture;

static void
progress_cb (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  GArray *seen = user_data;
  gdouble p = shoal_device_get_progress (SHOAL_DEVICE (object));

  g_array_append_val (seen, p);
}

/* the step's progress for a device rose through the transfer, reported
 * while its chunks came (not only 1 at the end), and ended at 1 */
static void
check_progress (GArray *seen)
{
  gboolean partial = FALSE;

  g_assert_cmpuint (seen->len, >, 0);
  for (guint i = 0; i < seen->len; i++)
    {
      gdouble p = g_array_index (seen, gdouble, i);

      partial |= p > 0.0 && p < 1.0;
      if (i > 0)
        g_assert_cmpfloat (p, >=, g_array_index (seen, gdouble, i - 1));
    }
  g_assert_true (partial);
  g_assert_cmpfloat (g_array_index (seen, gdouble, seen->len - 1), ==, 1.0);
}

/* the step's note on the interface it chose */
static void
journal_cb (ShoalDevice *device, ShoalJournalEntry *entry, gchar **note)
{
  if (g_str_has_prefix (shoal_journal_entry_get_message (entry), "The session sends on "))
    {
      g_free (*note);
      *note = g_strdup (shoal_journal_entry_get_message (entry));
    }
}

/* the step's note on a completed device */
static void
received_cb (ShoalDevice *device, ShoalJournalEntry *entry, gchar **note)
{
  if (g_str_has_prefix (shoal_journal_entry_get_message (entry), "Received "))
    {
      g_free (*note);
      *note = g_strdup (shoal_journal_entry_get_message (entry));
    }
}

/* which interface reaches an address (no namespace needed: loopback) */
static void
test_route_iface (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *lo = shoal_multicast_route_iface ("127.0.0.1", &error);

  g_assert_no_error (error);
  g_assert_cmpstr (lo, ==, "lo");
  g_assert_null (shoal_multicast_route_iface ("10.77.0.999", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (shoal_multicast_route_iface (NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
}

static void
run_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->ok = shoal_step_run_finish (SHOAL_STEP (object), result, &f->error);
  g_main_loop_quit (f->loop);
}

/* the receiver of device i, in namespace <prefix><host>, with the
 * receiver options extra (NULL: none) */
static void
spawn_receiver_in (Fixture *f, guint i, const gchar *host, const gchar * const *extra)
{
  ShoalDevice *device = g_ptr_array_index (f->devices, i);
  JsonNode *instr = shoal_device_get_instruction (device);
  JsonObject *o = json_node_get_object (instr);
  g_autofree gchar *ns = g_strconcat (g_getenv ("MCAST_NS_PREFIX"), host, NULL);
  g_autofree gchar *out = g_strdup_printf ("%s/out%u", f->dir, i);
  g_autofree gchar *chunk = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (o, "chunk-size"));
  const gchar *base[] = { "ip", "netns", "exec", ns, g_getenv ("MCAST_RECV"), "--join",
                          json_object_get_string_member (o, "join"), "--manifest-from", f->src,
                          "--chunk-size", chunk, "--output", out, "--iface", "eth0", NULL };
  g_autoptr(GStrvBuilder) argv = g_strv_builder_new ();
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  GSubprocess *p;

  g_strv_builder_addv (argv, base);
  if (extra != NULL)
    g_strv_builder_addv (argv, (const gchar **) extra);
  args = g_strv_builder_end (argv);
  p = g_subprocess_newv ((const gchar * const *) args, G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);

  g_assert_no_error (error);
  g_ptr_array_add (f->children, p);
  g_ptr_array_add (f->outputs, g_steal_pointer (&out));
}

/* the receiver of device i, in host r<i + 1> */
static void
spawn_receiver (Fixture *f, guint i)
{
  g_autofree gchar *host = g_strdup_printf ("r%u", i + 1);

  spawn_receiver_in (f, i, host, NULL);
}

static gboolean
start_receivers (gpointer user_data)
{
  Fixture *f = user_data;

  for (guint i = 0; i < 2; i++)
    spawn_receiver (f, i);
  return G_SOURCE_REMOVE;
}

/* the step's type lives in a type module, registered once per process */
static void
ensure_types (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      TestModule *module = g_object_new (test_module_get_type (), NULL); /* stays loaded */

      shoal_multicast_step_register_types (G_TYPE_MODULE (module));
      g_once_init_leave (&done, 1);
    }
}

static void
check_instruction (ShoalDevice *device, guint node)
{
  JsonNode *instr = shoal_device_get_instruction (device);
  JsonObject *o;

  g_assert_nonnull (instr);
  o = json_node_get_object (instr);
  g_assert_cmpstr (json_object_get_string_member (o, "action"), ==, "multicast-receive");
  g_assert_cmpstr (json_object_get_string_member (o, "group"), ==, "239.77.8.1");
  g_assert_cmpint (json_object_get_int_member (o, "port"), ==, 6300);
  g_assert_cmpint (json_object_get_int_member (o, "node"), ==, node);
  g_assert_cmpuint (strlen (json_object_get_string_member (o, "key")), ==, 32);
  g_assert_cmpuint (strlen (json_object_get_string_member (o, "image")), ==, 64);
  g_assert_nonnull (strstr (json_object_get_string_member (o, "join"), "manifest="));
}

/* a random image of len bytes in a new folder: f->src; its bytes */
static gchar *
fixture_image (Fixture *f, gsize len)
{
  gchar *data = g_malloc (len);

  f->dir = g_dir_make_tmp ("mcast-step-XXXXXX", NULL);
  f->src = g_build_filename (f->dir, "image", NULL);
  for (gsize i = 0; i < len; i++)
    data[i] = (gchar) g_random_int ();
  g_assert_true (g_file_set_contents (f->src, data, (gssize) len, NULL));
  return data;
}

/* runs the step on f->devices with options; the receivers start 300 ms
 * on (start); it must succeed. Returns its context */
static ShoalStepContext *
fixture_run (Fixture *f, ShoalStep *step, JsonNode *options, GSourceFunc start)
{
  ShoalStepContext *ctx = shoal_step_context_new (NULL, NULL, "multicast", json_node_get_object (options),
                                                  f->devices, "group-1");

  f->children = g_ptr_array_new_with_free_func (g_object_unref);
  f->outputs = g_ptr_array_new_with_free_func (g_free);
  f->loop = g_main_loop_new (NULL, FALSE);
  shoal_step_run_async (step, ctx, NULL, run_cb, f);
  g_timeout_add (300, start, f);
  g_main_loop_run (f->loop);
  g_assert_no_error (f->error);
  g_assert_true (f->ok);
  return ctx;
}

/* the image, its folder and the fixture go */
static void
fixture_free (Fixture *f)
{
  g_unlink (f->src);
  g_rmdir (f->dir);
  g_main_loop_unref (f->loop);
  g_ptr_array_unref (f->devices);
  g_ptr_array_unref (f->children);
  g_ptr_array_unref (f->outputs);
  g_free (f->src);
  g_free (f->dir);
}

/* every receiver started ended well with the image (data, len) as its
 * output; the folder and the fixture go */
static void
fixture_finish (Fixture *f, const gchar *data, gsize len)
{
  for (guint i = 0; i < f->children->len; i++)
    {
      const gchar *out = g_ptr_array_index (f->outputs, i);
      g_autofree gchar *got = NULL;
      gsize got_len = 0;

      g_assert_true (g_subprocess_wait_check (g_ptr_array_index (f->children, i), NULL, NULL));
      g_assert_true (g_file_get_contents (out, &got, &got_len, NULL));
      g_assert_cmpmem (got, got_len, data, len);
      g_unlink (out);
    }
  fixture_free (f);
}

static void
test_step_group (void)
{
  Fixture f = { 0 };
  g_autofree gchar *received = NULL;
  g_autoptr(ShoalStep) step = NULL;
  g_autoptr(ShoalStepContext) ctx = NULL;
  g_autoptr(JsonNode) options = NULL;
  g_autofree gchar *json = NULL;
  g_autofree gchar *data = NULL;

  if (g_getenv ("MCAST_NS_PREFIX") == NULL)
    {
      g_test_skip ("run through test-multicast-step.sh (needs root and namespaces)");
      return;
    }
  ensure_types ();
  step = g_object_new (SHOAL_TYPE_MULTICAST_STEP, NULL);
  g_assert_cmpint (shoal_step_get_scope (step), ==, SHOAL_STEP_SCOPE_GROUP);
  g_assert_cmpint (shoal_step_get_phase (step), ==, SHOAL_STEP_PHASE_TRANSFER);

  data = fixture_image (&f, 5 * 1048576 + 777);
  /* no interface: the step picks the one that reaches the agents and
   * journals it (here the group's route, topo.sh's, leads there too).
   * Windows of one chunk: a receiver verifies a window's chunks together,
   * and progress is to rise through this image of 6 chunks */
  json = g_strdup_printf ("{\"image-path\": \"%s\", \"group\": \"239.77.8.1\","
                          " \"port\": 6300, \"join-wait-ms\": 2000, \"node-timeout-ms\": 1500,"
                          " \"rate-mbit\": 40, \"gso\": false, \"window-mib\": 1}", f.src);
  options = json_from_string (json, NULL);
  f.devices = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree gchar *address = g_strdup_printf ("10.77.0.%u", 11 + i);

      g_ptr_array_add (f.devices, shoal_device_new (i == 0 ? "dev-a" : i == 1 ? "dev-b" : "dev-c"));
      shoal_device_set_metadata (g_ptr_array_index (f.devices, i), "agent.address", address);
    }
  g_signal_connect (g_ptr_array_index (f.devices, 1), "journal-entry", G_CALLBACK (journal_cb), &f.iface_note);
  g_signal_connect (g_ptr_array_index (f.devices, 0), "journal-entry", G_CALLBACK (received_cb), &received);
  for (guint i = 0; i < 2; i++)
    {
      f.progress[i] = g_array_new (FALSE, FALSE, sizeof (gdouble));
      g_signal_connect (g_ptr_array_index (f.devices, i), "notify::progress", G_CALLBACK (progress_cb), f.progress[i]);
    }
  ctx = fixture_run (&f, step, options, start_receivers);
  for (guint i = 0; i < 3; i++)
    check_instruction (g_ptr_array_index (f.devices, i), i + 1);
  g_assert_false (shoal_step_context_is_dropped (ctx, g_ptr_array_index (f.devices, 0), NULL));
  g_assert_false (shoal_step_context_is_dropped (ctx, g_ptr_array_index (f.devices, 1), NULL));
  g_assert_true (shoal_step_context_is_dropped (ctx, g_ptr_array_index (f.devices, 2), NULL));
  g_assert_cmpstr (shoal_device_get_metadata (g_ptr_array_index (f.devices, 0), "multicast.outcome"), ==, "complete");
  g_assert_cmpstr (f.iface_note, ==, "The session sends on eth0, the interface that reaches 10.77.0.12 "
                                     "(no interface configured)");
  /* its receiver said what its disk wrote */
  g_assert_nonnull (received);
  g_assert_nonnull (strstr (received, "its disk wrote "));
  g_signal_handlers_disconnect_by_data (g_ptr_array_index (f.devices, 0), &received);
  g_signal_handlers_disconnect_by_data (g_ptr_array_index (f.devices, 1), &f.iface_note);
  g_free (f.iface_note);
  for (guint i = 0; i < 2; i++)
    {
      check_progress (f.progress[i]);
      g_signal_handlers_disconnect_by_data (g_ptr_array_index (f.devices, i), f.progress[i]);
      g_array_unref (f.progress[i]);
    }
  fixture_finish (&f, data, 5 * 1048576 + 777);
}

/* every journal entry of a device, "operation: message" */
static void
collect_cb (ShoalDevice *device, ShoalJournalEntry *entry, GPtrArray *lines)
{
  g_ptr_array_add (lines, g_strdup_printf ("%s: %s", shoal_journal_entry_get_operation (entry),
                                           shoal_journal_entry_get_message (entry)));
}

static gboolean
lines_have (GPtrArray *lines, const gchar *text)
{
  for (guint i = 0; i < lines->len; i++)
    if (strstr (g_ptr_array_index (lines, i), text) != NULL)
      return TRUE;
  return FALSE;
}

/* two receivers start; the agent of the third reports that it could not
 * join the group */
static gboolean
start_receivers_one_error (gpointer user_data)
{
  Fixture *f = user_data;
  g_autoptr(JsonNode) error = json_from_string ("{\"action\": \"multicast-receive\","
                                                " \"message\": \"cannot join 239.77.8.1:6300\"}", NULL);

  start_receivers (f);
  shoal_device_post_event (g_ptr_array_index (f->devices, 2), "error", error);
  return G_SOURCE_REMOVE;
}

/* A member whose agent reports an error during the session (its join
 * failed) is dropped at once with the agent's reason in its journal, and
 * the session does not wait for it (join-wait-ms 8 s) nor write to it
 * after (before: the session waited the join wait out, then journaled
 * "never joined", the agent's reason nowhere) */
static void
test_step_agent_error (void)
{
  Fixture f = { 0 };
  g_autoptr(ShoalStep) step = NULL;
  g_autoptr(ShoalStepContext) ctx = NULL;
  g_autoptr(JsonNode) options = NULL;
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *json = NULL;
  g_autofree gchar *data = NULL;
  const GError *why = NULL;
  gint64 start;

  if (g_getenv ("MCAST_NS_PREFIX") == NULL)
    {
      g_test_skip ("run through test-multicast-step.sh (needs root and namespaces)");
      return;
    }
  ensure_types ();
  step = g_object_new (SHOAL_TYPE_MULTICAST_STEP, NULL);
  data = fixture_image (&f, 3 * 1048576 + 55);
  json = g_strdup_printf ("{\"image-path\": \"%s\", \"group\": \"239.77.8.1\", \"interface\": \"eth0\","
                          " \"port\": 6300, \"join-wait-ms\": 8000, \"node-timeout-ms\": 1500,"
                          " \"rate-mbit\": 80, \"gso\": false}", f.src);
  options = json_from_string (json, NULL);
  f.devices = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < 3; i++)
    g_ptr_array_add (f.devices, shoal_device_new (i == 0 ? "dev-a" : i == 1 ? "dev-b" : "dev-c"));
  g_signal_connect (g_ptr_array_index (f.devices, 2), "journal-entry", G_CALLBACK (collect_cb), lines);
  start = g_get_monotonic_time ();
  ctx = fixture_run (&f, step, options, start_receivers_one_error);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 6 * G_TIME_SPAN_SECOND);
  g_assert_false (shoal_step_context_is_dropped (ctx, g_ptr_array_index (f.devices, 0), NULL));
  g_assert_false (shoal_step_context_is_dropped (ctx, g_ptr_array_index (f.devices, 1), NULL));
  g_assert_true (shoal_step_context_is_dropped (ctx, g_ptr_array_index (f.devices, 2), &why));
  g_assert_nonnull (strstr (why->message, "cannot join 239.77.8.1:6300"));
  g_assert_true (lines_have (lines, "multicast-receive: Its agent failed to receive multicast session"));
  g_assert_false (lines_have (lines, "multicast-session"));
  g_assert_false (lines_have (lines, "never joined"));
  g_assert_null (shoal_device_get_metadata (g_ptr_array_index (f.devices, 2), "multicast.outcome"));
  g_assert_cmpstr (shoal_device_get_metadata (g_ptr_array_index (f.devices, 0), "multicast.outcome"), ==, "complete");
  g_signal_handlers_disconnect_by_data (g_ptr_array_index (f.devices, 2), lines);
  fixture_finish (&f, data, 3 * 1048576 + 55);
}

static gboolean
start_receivers_two_links (gpointer user_data)
{
  Fixture *f = user_data;

  spawn_receiver_in (f, 0, "r1", NULL);
  if (!f->x_silent)
    spawn_receiver_in (f, 1, "x", NULL);
  spawn_receiver_in (f, 2, "r2", NULL);
  return G_SOURCE_REMOVE;
}

/* No interface configured and the group behind two of them (dev-a and
 * dev-c on eth0's bridge, dev-x on eth1's link): a session on each, both
 * journaled, and every device complete. With x_silent, dev-x never joins:
 * its session fails and drops it, the other's devices complete and the
 * step succeeds */
static void
run_two_links (gboolean x_silent)
{
  Fixture f = { .x_silent = x_silent };
  g_autoptr(ShoalStep) step = NULL;
  g_autoptr(ShoalStepContext) ctx = NULL;
  g_autoptr(JsonNode) options = NULL;
  g_autofree gchar *json = NULL;
  g_autofree gchar *data = NULL;
  const gchar *addresses[3] = { "10.77.0.11", "10.78.0.13", "10.77.0.12" };
  const gchar *ids[3] = { "dev-a", "dev-x", "dev-c" };
  JsonObject *o[3];

  if (g_getenv ("MCAST_NS_PREFIX") == NULL)
    {
      g_test_skip ("run through test-multicast-step.sh (needs root and namespaces)");
      return;
    }
  ensure_types ();
  step = g_object_new (SHOAL_TYPE_MULTICAST_STEP, NULL);
  data = fixture_image (&f, 3 * 1048576 + 333);
  json = g_strdup_printf ("{\"image-path\": \"%s\", \"port\": 6300, \"join-wait-ms\": 3000,"
                          " \"node-timeout-ms\": 1500, \"rate-mbit\": 40, \"gso\": false}", f.src);
  options = json_from_string (json, NULL);
  f.devices = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < 3; i++)
    {
      g_ptr_array_add (f.devices, shoal_device_new (ids[i]));
      shoal_device_set_metadata (g_ptr_array_index (f.devices, i), "agent.address", addresses[i]);
    }
  g_signal_connect (g_ptr_array_index (f.devices, 1), "journal-entry", G_CALLBACK (journal_cb), &f.iface_note);
  ctx = fixture_run (&f, step, options, start_receivers_two_links);
  for (guint i = 0; i < 3; i++)
    {
      ShoalDevice *device = g_ptr_array_index (f.devices, i);

      o[i] = json_node_get_object (shoal_device_get_instruction (device));
      if (i == 1 && x_silent)
        {
          g_assert_true (shoal_step_context_is_dropped (ctx, device, NULL));
          continue;
        }
      g_assert_false (shoal_step_context_is_dropped (ctx, device, NULL));
      g_assert_cmpstr (shoal_device_get_metadata (device, "multicast.outcome"), ==, "complete");
    }
  /* dev-a and dev-c are nodes 1 and 2 of one session; dev-x node 1 of another */
  g_assert_cmpint (json_object_get_int_member (o[0], "session"), ==, json_object_get_int_member (o[2], "session"));
  g_assert_cmpint (json_object_get_int_member (o[0], "session"), !=, json_object_get_int_member (o[1], "session"));
  g_assert_cmpint (json_object_get_int_member (o[0], "node"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (o[2], "node"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (o[1], "node"), ==, 1);
  g_assert_cmpstr (f.iface_note, ==, "The session sends on eth1, the interface that reaches 10.78.0.13 (no interface "
                                     "configured; the group is behind 2 interfaces, with a session on each)");
  g_signal_handlers_disconnect_by_data (g_ptr_array_index (f.devices, 1), &f.iface_note);
  g_free (f.iface_note);
  fixture_finish (&f, data, 3 * 1048576 + 333);
}

static void
test_step_two_links (void)
{
  run_two_links (FALSE);
}

static void
test_step_two_links_one_silent (void)
{
  run_two_links (TRUE);
}

/* --- a device left to finish by unicast ----------------------------------- */

typedef enum {
  EVICT_DROP,     /* dev-a leaves the group once the session ended */
  EVICT_TIMEOUT,  /* unicast-timeout-s passes */
  EVICT_CANCEL,   /* the step is cancelled once dev-a was evicted */
} EvictMode;

typedef struct {
  Fixture          *f;
  EvictMode         mode;
  ShoalStep        *step;
  ShoalStepContext *ctx;
  GCancellable     *cancel;
  gboolean          evicted;   /* dev-a journaled that it finishes by unicast */
  gboolean          done;      /* the step returned */
  gint64            acted_at;  /* when dev-a was dropped, or the step cancelled */
  gint64            done_at;
  guint             failures;  /* FAILED entries in dev-a's journal */
  gchar            *failure;   /* the last one */
} Evict;

static gboolean
evict_drop (gpointer user_data)
{
  Evict *e = user_data;
  g_autoptr(GError) error = g_error_new (SHOAL_ERROR, SHOAL_ERROR_CANCELLED, "device dev-a left group group-1");

  /* what shoal_controller_leave_group () does for a member cancelled */
  shoal_step_context_drop_device (e->ctx, g_ptr_array_index (e->f->devices, 0), error);
  e->acted_at = g_get_monotonic_time ();
  return G_SOURCE_REMOVE;
}

static gboolean
evict_cancel (gpointer user_data)
{
  Evict *e = user_data;

  g_cancellable_cancel (e->cancel);
  e->acted_at = g_get_monotonic_time ();
  return G_SOURCE_REMOVE;
}

static void
evict_journal_cb (ShoalDevice *device, ShoalJournalEntry *entry, Evict *e)
{
  const gchar *op = shoal_journal_entry_get_operation (entry);
  const gchar *msg = shoal_journal_entry_get_message (entry);

  if (g_str_equal (op, "multicast-receive") && strstr (msg, "finishing by unicast") != NULL)
    {
      e->evicted = TRUE;
      /* dev-b still receiving */
      if (e->mode == EVICT_CANCEL)
        g_timeout_add (200, evict_cancel, e);
    }
  if (shoal_journal_entry_get_result (entry) == SHOAL_JOURNAL_RESULT_FAILED)
    {
      e->failures++;
      g_free (e->failure);
      e->failure = g_strdup (msg);
    }
  /* the session is over: dev-a is held for its unicast repair */
  if (g_str_equal (op, "multicast-session") && e->mode == EVICT_DROP)
    g_timeout_add (200, evict_drop, e);
}

static void
evict_run_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  Evict *e = user_data;

  e->done = TRUE;
  e->done_at = g_get_monotonic_time ();
  run_cb (object, result, e->f);
}

static gboolean
evict_deadline (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

/* dev-a's receiver has a slow disk (the group leaves it to unicast, and
 * no agent of it ever reports its image written), dev-b's a fast one */
static gboolean
start_evict_receivers (gpointer user_data)
{
  static const gchar * const slow[] = { "--verify-thread", "--window", "2", "--write-delay-us", "200000",
                                        "--rcvbuf", "2097152", NULL };
  Fixture *f = user_data;

  spawn_receiver_in (f, 0, "r1", slow);
  spawn_receiver_in (f, 1, "r2", NULL);
  return G_SOURCE_REMOVE;
}

/* runs the step on dev-a (slow disk) and dev-b, with the options extra,
 * until it returns or 25 s pass; its receivers are stopped after. FALSE:
 * skipped (no namespaces) */
static gboolean
evict_run (Evict *e, const gchar *extra)
{
  Fixture *f = e->f;
  g_autoptr(JsonNode) options = NULL;
  g_autofree gchar *json = NULL;
  guint deadline;

  if (g_getenv ("MCAST_NS_PREFIX") == NULL)
    {
      g_test_skip ("run through test-multicast-step.sh (needs root and namespaces)");
      return FALSE;
    }
  ensure_types ();
  e->step = g_object_new (SHOAL_TYPE_MULTICAST_STEP, NULL);
  g_free (fixture_image (f, 48 * 1048576));
  json = g_strdup_printf ("{\"image-path\": \"%s\", \"interface\": \"eth0\", \"port\": 6310,"
                          " \"join-wait-ms\": 3000, \"node-timeout-ms\": 1500, \"rate-mbit\": 100,"
                          " \"gso\": false%s}", f->src, extra);
  options = json_from_string (json, NULL);
  f->devices = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (f->devices, shoal_device_new ("dev-a"));
  g_ptr_array_add (f->devices, shoal_device_new ("dev-b"));
  g_signal_connect (g_ptr_array_index (f->devices, 0), "journal-entry", G_CALLBACK (evict_journal_cb), e);
  e->ctx = shoal_step_context_new (NULL, NULL, "multicast", json_node_get_object (options), f->devices, "group-1");
  f->children = g_ptr_array_new_with_free_func (g_object_unref);
  f->outputs = g_ptr_array_new_with_free_func (g_free);
  f->loop = g_main_loop_new (NULL, FALSE);
  e->cancel = g_cancellable_new ();
  shoal_step_run_async (e->step, e->ctx, e->cancel, evict_run_cb, e);
  g_timeout_add (300, start_evict_receivers, f);
  deadline = g_timeout_add_seconds (25, evict_deadline, f->loop);
  g_main_loop_run (f->loop);
  if (e->done)
    g_source_remove (deadline);
  for (guint i = 0; i < f->children->len; i++)
    {
      g_subprocess_force_exit (g_ptr_array_index (f->children, i));
      g_subprocess_wait (g_ptr_array_index (f->children, i), NULL, NULL);
      g_unlink (g_ptr_array_index (f->outputs, i));
    }
  /* the 48 MiB image goes before the test's checks, which may fail */
  g_unlink (f->src);
  g_signal_handlers_disconnect_by_data (g_ptr_array_index (f->devices, 0), e);
  return TRUE;
}

static void
evict_free (Evict *e)
{
  g_clear_error (&e->f->error);
  fixture_free (e->f);
  g_object_unref (e->ctx);
  g_clear_object (&e->step);
  g_object_unref (e->cancel);
  g_free (e->failure);
}

/* dev-a was left to finish by unicast, and the step returned within 3 s
 * of what the test did then (drop, cancel) */
static void
evict_check_prompt (Evict *e)
{
  g_assert_true (e->evicted);
  g_assert_cmpint (e->acted_at, >, 0);
  g_assert_true (e->done);
  g_assert_cmpint (e->done_at - e->acted_at, <, 3 * G_USEC_PER_SEC);
}

/* dev-a, left to finish by unicast, leaves the group (the controller
 * drops it: cancelled, removed, restarted) while the step waits for it:
 * the step waits no longer and succeeds for dev-b, and dev-a's journal
 * has no failure of the step's own besides the drop */
static void
test_step_drop_during_unicast (void)
{
  Fixture f = { 0 };
  Evict e = { .f = &f, .mode = EVICT_DROP };
  const GError *why = NULL;

  if (!evict_run (&e, ""))
    return;
  evict_check_prompt (&e);
  g_assert_no_error (f.error);
  g_assert_true (f.ok);
  g_assert_true (shoal_step_context_is_dropped (e.ctx, g_ptr_array_index (f.devices, 0), &why));
  g_assert_error (why, SHOAL_ERROR, SHOAL_ERROR_CANCELLED);
  g_assert_false (shoal_step_context_is_dropped (e.ctx, g_ptr_array_index (f.devices, 1), NULL));
  g_assert_cmpuint (e.failures, ==, 0);
  evict_free (&e);
}

/* dev-a, left to finish by unicast, never reports its image written:
 * after unicast-timeout-s it fails, journaled so, and the step succeeds
 * for dev-b */
static void
test_step_unicast_timeout (void)
{
  Fixture f = { 0 };
  Evict e = { .f = &f, .mode = EVICT_TIMEOUT };

  if (!evict_run (&e, ", \"unicast-timeout-s\": 1"))
    return;
  g_assert_true (e.evicted);
  g_assert_true (e.done);
  g_assert_no_error (f.error);
  g_assert_true (f.ok);
  g_assert_true (shoal_step_context_is_dropped (e.ctx, g_ptr_array_index (f.devices, 0), NULL));
  g_assert_false (shoal_step_context_is_dropped (e.ctx, g_ptr_array_index (f.devices, 1), NULL));
  g_assert_cmpuint (e.failures, ==, 1);
  g_assert_nonnull (strstr (e.failure, "within 1 s (unicast-timeout-s)"));
  evict_free (&e);
}

static gboolean
evict_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* the step, cancelled once dev-a was left to finish by unicast (dev-b
 * still receiving), ends cancelled at once, and lets go of its session
 * (its task, holding the step, is freed) */
static void
test_step_cancel_after_eviction (void)
{
  Fixture f = { 0 };
  Evict e = { .f = &f, .mode = EVICT_CANCEL };
  ShoalStep *step;
  gint64 deadline;
  guint tick;

  if (!evict_run (&e, ""))
    return;
  evict_check_prompt (&e);
  g_assert_false (f.ok);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  step = e.step;
  g_object_add_weak_pointer (G_OBJECT (step), (gpointer *) &step);
  g_clear_object (&e.step);
  tick = g_timeout_add (20, evict_tick, NULL);  /* each iteration below waits 20 ms at most */
  deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  while (step != NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick);
  if (step != NULL)
    g_object_remove_weak_pointer (G_OBJECT (step), (gpointer *) &step);
  g_assert_null (step);
  evict_free (&e);
}

/* options that make no sense, or that the sender's types cannot hold
 * (they were cut to them), end the step before any socket is opened, with
 * an error naming the option, and a recipe that has them is refused when
 * it loads (validate_options); options at the ends of their ranges are
 * taken */
static void
test_step_bad_options (void)
{
  static const struct { const gchar *json; const gchar *needle; } cases[] = {
    { "{\"image-path\": \"/nonexistent\", \"read-ahead\": 65}", "read-ahead" },
    { "{\"image-path\": \"/nonexistent\", \"read-ahead\": -1}", "read-ahead" },
    { "{\"image-path\": \"/nonexistent\", \"interleave\": 0}", "interleave" },
    { "{\"image-path\": \"/nonexistent\", \"interleave\": 5}", "interleave" },
    { "{\"image-path\": \"/nonexistent\", \"slow-policy\": \"sometimes\"}", "slow-policy" },
    { "{\"image-path\": \"/nonexistent\", \"rate-mbit\": 0}", "rate-mbit" },
    { "{\"image-path\": \"/nonexistent\", \"rate-mbit\": 500, \"start-rate-mbit\": 600}", "start-rate-mbit" },
    { "{\"image-path\": \"/nonexistent\", \"start-rate-mbit\": 0}", "start-rate-mbit" },
    { "{\"image-path\": \"/nonexistent\", \"rate-mbit\": 500, \"min-rate-mbit\": 600}", "min-rate-mbit" },
    { "{\"image-path\": \"/nonexistent\", \"min-rate-mbit\": -1}", "min-rate-mbit" },
    { "{\"image-path\": \"/nonexistent\", \"slow-disk-percent\": 101}", "slow-disk-percent" },
    { "{\"image-path\": \"/nonexistent\", \"slow-disk-percent\": -5}", "slow-disk-percent" },
    { "{\"image-path\": \"/nonexistent\", \"gso\": \"yes\"}", "gso" },
    { "{\"image-path\": \"/nonexistent\", \"unicast-timeout-s\": -1}", "unicast-timeout-s" },
    { "{\"image-path\": \"/nonexistent\", \"unicast-timeout-s\": 604801}", "unicast-timeout-s" },
    { "{\"image-path\": \"/nonexistent\", \"port\": 70000}", "port must be between 1 and 65535, not 70000" },
    { "{\"image-path\": \"/nonexistent\", \"port\": 0}", "port" },
    { "{\"image-path\": \"/nonexistent\", \"mtu\": 65536}", "mtu must be between 576 and 65535, not 65536" },
    { "{\"image-path\": \"/nonexistent\", \"mtu\": 575}", "mtu" },
    { "{\"image-path\": \"/nonexistent\", \"fec-k\": 300}", "fec-k must be between 2 and 200, not 300" },
    { "{\"image-path\": \"/nonexistent\", \"fec-k\": 1}", "fec-k" },
    { "{\"image-path\": \"/nonexistent\", \"window-mib\": 1025}", "window-mib must be between -1 and 1024, not 1025" },
    { "{\"image-path\": \"/nonexistent\", \"window-mib\": -2}", "window-mib" },
    { "{\"image-path\": \"/nonexistent\", \"chunk-size\": 4294967297}", "chunk-size" },
    { "{\"image-path\": \"/nonexistent\", \"chunk-size\": 0}", "chunk-size" },
    { "{\"image-path\": \"/nonexistent\", \"max-loss-permille\": -1}", "max-loss-permille" },
    { "{\"image-path\": \"/nonexistent\", \"max-loss-permille\": 1001}", "max-loss-permille" },
    { "{\"image-path\": \"/nonexistent\", \"proactive-permille\": -1}", "proactive-permille" },
    { "{\"image-path\": \"/nonexistent\", \"join-wait-ms\": -1}", "join-wait-ms" },
    { "{\"image-path\": \"/nonexistent\", \"join-wait-ms\": 4294967296}", "join-wait-ms" },
    { "{\"image-path\": \"/nonexistent\", \"node-timeout-ms\": -1}", "node-timeout-ms" },
    { "{\"image-path\": \"/nonexistent\", \"node-timeout-ms\": 86400001}", "node-timeout-ms" },
  };
  static const gchar *good = "{\"port\": 65535, \"mtu\": 576, \"fec-k\": 2, \"max-loss-permille\": 1000,"
                             " \"proactive-permille\": 0, \"join-wait-ms\": 0, \"node-timeout-ms\": 86400000,"
                             " \"unicast-timeout-s\": 0, \"chunk-size\": 1, \"rate-mbit\": 1000000}";
  g_autoptr(ShoalStep) checker = NULL;
  g_autoptr(JsonNode) edges = json_from_string (good, NULL);
  g_autoptr(GError) error = NULL;

  ensure_types ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Fixture f = { 0 };
      g_autoptr(ShoalStep) step = g_object_new (SHOAL_TYPE_MULTICAST_STEP, NULL);
      g_autoptr(JsonNode) options = json_from_string (cases[i].json, NULL);
      g_autoptr(ShoalStepContext) ctx = NULL;

      f.devices = g_ptr_array_new_with_free_func (g_object_unref);
      g_ptr_array_add (f.devices, shoal_device_new ("dev-a"));
      ctx = shoal_step_context_new (NULL, NULL, "multicast", json_node_get_object (options), f.devices, "group-1");
      f.loop = g_main_loop_new (NULL, FALSE);
      shoal_step_run_async (step, ctx, NULL, run_cb, &f);
      g_main_loop_run (f.loop);
      g_assert_false (f.ok);
      g_assert_error (f.error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
      g_assert_nonnull (strstr (f.error->message, cases[i].needle));
      g_assert_false (shoal_step_validate_options (step, json_node_get_object (options), &error));
      g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
      g_assert_cmpstr (error->message, ==, f.error->message);
      g_clear_error (&error);
      g_clear_error (&f.error);
      g_main_loop_unref (f.loop);
      g_ptr_array_unref (f.devices);
    }
  checker = g_object_new (SHOAL_TYPE_MULTICAST_STEP, NULL);
  g_assert_true (shoal_step_validate_options (checker, json_node_get_object (edges), &error));
  g_assert_no_error (error);
}

/* the journal says why a receiver was left to unicast, with the figures
 * and the option that decided it */
static void
test_eviction_message (void)
{
  static const struct { int cause; int reason; const gchar *needles[3]; } cases[] = {
    { SMC_EVICT_LOSS, SMC_REASON_NONE, { "Lost 31.2%", "25.0%", "max-loss-permille" } },
    { SMC_EVICT_FLOOR, SMC_REASON_NONE, { "minimum rate of 400 Mbit/s", "min-rate-mbit", "after 7 chunks" } },
    { SMC_EVICT_BEHIND, SMC_REASON_NONE, { "more than 16 chunks behind", "after 7 chunks", "unicast" } },
    { SMC_EVICT_SELF, SMC_REASON_NONE, { "Left the multicast session after 7 chunks", "31.2%", "unicast" } },
    { SMC_EVICT_SLOW, SMC_REASON_NONE, { "disk wrote 4.6 MB/s", "under 50% of the 117.0 MB/s", "slow-disk-percent" } },
    /* its own reason comes first: an MTU problem shows as loss */
    { SMC_EVICT_LOSS, SMC_REASON_MTU, { "MTU of its network interface", "MTU 9000", "unicast" } },
    { SMC_EVICT_SELF, SMC_REASON_PATH_MTU, { "none of its full-size ones", "9000", "unicast" } },
  };
  smc_sender_config cfg;

  smc_sender_config_init (&cfg);
  cfg.mtu = 9000;
  cfg.max_loss_permille = 250;
  cfg.rate_min_bps = 400000000;
  cfg.max_behind_chunks = 16;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      smc_node_info n = { .node = 101, .outcome = SMC_NODE_EVICTED, .evict_cause = cases[i].cause };
      g_autofree gchar *msg = NULL;

      n.last.loss_permille = 312;
      n.last.chunks_done = 7;
      n.drain_Bps = 4.6e6;
      n.group_Bps = 117e6;
      n.last.reason = (uint8_t) cases[i].reason;
      msg = shoal_multicast_eviction_message (&cfg, &n);
      for (guint j = 0; j < G_N_ELEMENTS (cases[i].needles); j++)
        if (strstr (msg, cases[i].needles[j]) == NULL)
          g_error ("case %u: \"%s\" lacks \"%s\"", i, msg, cases[i].needles[j]);
    }
}

/* A session's source holds its image: it cannot be removed from the
 * store while it is sent */
static void
test_source_hold (void)
{
#ifdef HAVE_IMAGE_STORE
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-mcast-hold-XXXXXX", NULL);
  g_autofree gchar *root = g_build_filename (dir, "store", NULL);
  g_autofree gchar *file = g_build_filename (dir, "os.img", NULL);
  g_autofree gchar *data = g_strnfill (3 * 4096 + 10, 'x');
  g_autofree gchar *id = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) image = json_object_new ();
  ShoalMulticastSource *source;

  g_assert_true (g_file_set_contents (file, data, -1, NULL));
  id = shoal_image_files_import (root, file, "held-os", 4096, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  json_object_set_string_member (image, "name", "held-os");
  source = shoal_multicast_source_open_store (root, image, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_multicast_source_get_id (source), ==, id);
  g_assert_false (shoal_image_files_remove (root, id, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_clear_error (&error);
  shoal_multicast_source_free (source);
  g_assert_true (shoal_image_files_remove (root, id, NULL, &error));
  g_assert_no_error (error);
  {
    const gchar *rm[] = { "rm", "-rf", dir, NULL };

    g_assert_true (g_spawn_sync (NULL, (gchar **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL));
  }
#else
  g_test_skip ("built without the image store");
#endif
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/multicast/step/bad-options", test_step_bad_options);
  g_test_add_func ("/shoal/multicast/step/eviction-message", test_eviction_message);
  g_test_add_func ("/shoal/multicast/step/source-hold", test_source_hold);
  g_test_add_func ("/shoal/multicast/step/route-iface", test_route_iface);
  g_test_add_func ("/shoal/multicast/step/group", test_step_group);
  g_test_add_func ("/shoal/multicast/step/agent-error", test_step_agent_error);
  g_test_add_func ("/shoal/multicast/step/two-links", test_step_two_links);
  g_test_add_func ("/shoal/multicast/step/two-links-one-silent", test_step_two_links_one_silent);
  g_test_add_func ("/shoal/multicast/step/drop-during-unicast", test_step_drop_during_unicast);
  g_test_add_func ("/shoal/multicast/step/unicast-timeout", test_step_unicast_timeout);
  g_test_add_func ("/shoal/multicast/step/cancel-after-eviction", test_step_cancel_after_eviction);
  return g_test_run ();
}
