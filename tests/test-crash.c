/* test-crash.c: kill -9 of shoald in the middle of a fleet deployment
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real shoald on a private bus deploys 300 simulated devices; it is
 * killed with SIGKILL while devices are spread over every step, then
 * started again on the same state directory. Every device must finish,
 * and every device's journal must be numbered 1..n without a gap, with
 * each step finished exactly once.
 */
#include "config.h"

#include <signal.h>

#include "shoal-store-private.h"
#include "shoal-test-util.h"

#define N_DEVICES 300
static const gchar *step_ids[] = { "boot", "inventory", "drivers", "agent", "multicast", "finish" };

typedef struct {
  GTestDBus   *bus;
  const gchar *address;
  gchar       *state_dir;
  gchar       *config;
} Fixture;

static GSubprocess *
start_shoald (Fixture *fixture)
{
  g_autofree gchar *shoald = g_build_filename (g_getenv ("SHOAL_BUILD_ROOT"), "core", "daemon", "shoald", NULL);
  g_autofree gchar *plugins = g_build_filename (g_getenv ("SHOAL_BUILD_ROOT"), "plugins", NULL);
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error, shoald,
                           "--address", fixture->address, "--state-dir", fixture->state_dir,
                           "--config", fixture->config, "--plugin-dir", plugins, NULL);
  g_assert_no_error (error);
  return proc;
}

static GVariant *
get_stats (Fixture *fixture)
{
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *stats = NULL;

  connection = g_dbus_connection_new_for_address_sync (fixture->address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, NULL);
  if (connection == NULL)
    return NULL;
  reply = g_dbus_connection_call_sync (connection, "org.shoal.Shoal1", "/org/shoal/Shoal1",
                                       "org.shoal.Shoal1.Manager", "GetStats", NULL,
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                       5000, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(@a{sv})", &stats);
  return stats;
}

static guint
count_in_state (GVariant    *stats,
                const gchar *state)
{
  g_autoptr(GVariant) states = g_variant_lookup_value (stats, "states", G_VARIANT_TYPE ("a{su}"));
  guint count = 0;

  if (states != NULL)
    g_variant_lookup (states, state, "u", &count);
  return count;
}

/* Waits (bounded) until at least @min devices are installed */
static guint
wait_installed (Fixture *fixture,
                guint    min,
                guint    timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  guint installed = 0;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr(GVariant) stats = get_stats (fixture);

      installed = stats != NULL ? count_in_state (stats, "installed") : 0;
      if (installed >= min)
        break;
      g_usleep (50 * 1000);
    }
  return installed;
}

static void
shoalctl (Fixture     *fixture,
          const gchar *first,
          ...)
{
  g_autofree gchar *ctl = g_build_filename (g_getenv ("SHOAL_BUILD_ROOT"), "core", "ctl", "shoalctl", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree gchar *err = NULL;
  gint status = 0;
  va_list args;

  g_ptr_array_add (argv, ctl);
  g_ptr_array_add (argv, (gpointer) "--address");
  g_ptr_array_add (argv, (gpointer) fixture->address);
  va_start (args, first);
  for (const gchar *arg = first; arg != NULL; arg = va_arg (args, const gchar *))
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (gchar **) argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                NULL, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("shoalctl %s failed: %s", first, err);
}

static void
wait_for_name (Fixture *fixture)
{
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr(GVariant) stats = get_stats (fixture);

      if (stats != NULL)
        return;
      g_usleep (50 * 1000);
    }
  g_error ("shoald did not come up");
}

static void
assert_journals (Fixture *fixture)
{
  g_autofree gchar *path = g_build_filename (fixture->state_dir, "shoal.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  guint resumed = 0;

  g_assert_true (shoal_store_open (store, path, &error));
  rows = shoal_store_load_devices (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, N_DEVICES);
  for (guint i = 0; i < rows->len; i++)
    {
      ShoalStoreDevice *row = g_ptr_array_index (rows, i);
      g_autoptr(GPtrArray) entries = shoal_store_get_journal (store, row->id, 0, 0, &error);
      guint finished[G_N_ELEMENTS (step_ids)] = { 0 };

      g_assert_no_error (error);
      g_assert_cmpint (row->state, ==, SHOAL_DEVICE_STATE_INSTALLED);
      for (guint e = 0; e < entries->len; e++)
        {
          ShoalJournalEntry *entry = g_ptr_array_index (entries, e);

          /* numbered 1..n: no gap, no duplicate */
          g_assert_cmpuint (shoal_journal_entry_get_seq (entry), ==, e + 1);
          if (g_strcmp0 (shoal_journal_entry_get_operation (entry), "resume") == 0)
            resumed++;
          if (g_strcmp0 (shoal_journal_entry_get_operation (entry), "step-finished") != 0)
            continue;
          for (guint s = 0; s < G_N_ELEMENTS (step_ids); s++)
            if (g_strcmp0 (shoal_journal_entry_get_source (entry), step_ids[s]) == 0)
              finished[s]++;
        }
      for (guint s = 0; s < G_N_ELEMENTS (step_ids); s++)
        g_assert_cmpuint (finished[s], ==, 1);
    }
  /* the kill landed mid-run: some devices were resumed */
  g_assert_cmpuint (resumed, >, 0);
  shoal_store_close (store);
}

static void
test_crash_kill9 (void)
{
  Fixture fixture = { 0 };
  g_autoptr(GSubprocess) first = NULL;
  g_autoptr(GSubprocess) second = NULL;
  g_autofree gchar *recipes = g_test_build_filename (G_TEST_DIST, "data", "crash", NULL);
  g_autofree gchar *config_text = NULL;
  guint installed;

  if (!g_file_test (DBUS_DAEMON, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("dbus-daemon is not installed");
      return;
    }
  fixture.bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture.bus);
  fixture.address = g_test_dbus_get_bus_address (fixture.bus);
  fixture.state_dir = shoal_test_mkdtemp ();
  fixture.config = g_build_filename (fixture.state_dir, "shoald.conf", NULL);
  config_text = g_strdup_printf ("[daemon]\nhttp-port=0\nhttp-address=127.0.0.1\n"
                                 "[recipes]\ndir=%s\n[controller]\nauto-deploy=false\n", recipes);
  g_assert_true (g_file_set_contents (fixture.config, config_text, -1, NULL));

  first = start_shoald (&fixture);
  wait_for_name (&fixture);
  shoalctl (&fixture, "enroll", "--count", G_STRINGIFY (N_DEVICES), "--prefix", "c-", NULL);
  shoalctl (&fixture, "assign", "crash", "--all", NULL);
  shoalctl (&fixture, "deploy", "--all", NULL);

  /* kill -9 once some devices are done and the rest are spread out */
  installed = wait_installed (&fixture, 40, 60);
  g_assert_cmpuint (installed, >=, 40);
  g_assert_cmpuint (installed, <, N_DEVICES);
  g_subprocess_send_signal (first, SIGKILL);
  g_assert_true (g_subprocess_wait (first, NULL, NULL));
  g_test_message ("killed shoald with %u of %u installed", installed, N_DEVICES);

  second = start_shoald (&fixture);
  wait_for_name (&fixture);
  installed = wait_installed (&fixture, N_DEVICES, 120);
  g_assert_cmpuint (installed, ==, N_DEVICES);
  g_subprocess_send_signal (second, SIGTERM);
  g_assert_true (g_subprocess_wait (second, NULL, NULL));

  assert_journals (&fixture);
  g_test_dbus_down (fixture.bus);
  g_clear_object (&fixture.bus);
  shoal_test_rm_rf (fixture.state_dir);
  g_free (fixture.state_dir);
  g_free (fixture.config);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/crash/kill-9", test_crash_kill9);
  return g_test_run ();
}
