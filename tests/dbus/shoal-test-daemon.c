/* shoal-test-daemon.c: a private bus and a real shoald for the D-Bus tests
 *
 * Starts the shoald binary of the build tree (from $SHOALD) on a private
 * bus (GTestDBus, or a dbus-daemon of our own that lets every user connect,
 * for the authorization test), with a state directory, a configuration and
 * fast simulated recipes in a temporary directory, and waits until it owns
 * its name. Everything is bounded in time and removed afterwards.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <sys/prctl.h>

#include "shoal-test-daemon.h"

#define FAST_RECIPE \
  "{\n" \
  "  \"name\": \"fast-sim\",\n" \
  "  \"description\": \"Fast simulated deployment for the D-Bus tests\",\n" \
  "  \"default\": true,\n" \
  "  \"image\": { \"name\": \"test-os\" },\n" \
  "  \"steps\": [\n" \
  "    { \"step\": \"sim\", \"id\": \"boot\", \"options\": { \"min-ms\": 5, \"max-ms\": 30, \"fail-rate\": 0.0, \"phase\": \"boot\" } },\n" \
  "    { \"step\": \"sim\", \"id\": \"agent\", \"options\": { \"min-ms\": 5, \"max-ms\": 30, \"fail-rate\": 0.0, \"phase\": \"agent\" } },\n" \
  "    { \"step\": \"sim-group\", \"id\": \"transfer\", \"options\": { \"min-ms\": 20, \"max-ms\": 60, \"fail-rate\": 0.0 } }\n" \
  "  ],\n" \
  "  \"group\": { \"min-devices\": 1, \"max-devices\": 50, \"max-wait\": 1, \"wait-for-all\": true }\n" \
  "}\n"

#define SLOW_RECIPE \
  "{\n" \
  "  \"name\": \"slow-sim\",\n" \
  "  \"description\": \"A first step that takes a minute, to be cancelled\",\n" \
  "  \"image\": { \"name\": \"test-os\" },\n" \
  "  \"steps\": [\n" \
  "    { \"step\": \"sim\", \"id\": \"boot\", \"options\": { \"min-ms\": 60000, \"max-ms\": 60000, \"fail-rate\": 0.0, \"phase\": \"boot\" } },\n" \
  "    { \"step\": \"sim-group\", \"id\": \"transfer\", \"options\": { \"min-ms\": 20, \"max-ms\": 60 } }\n" \
  "  ]\n" \
  "}\n"

#define MEDIUM_RECIPE \
  "{\n" \
  "  \"name\": \"medium-sim\",\n" \
  "  \"description\": \"Steps of a few hundred milliseconds, to be interrupted\",\n" \
  "  \"image\": { \"name\": \"test-os\" },\n" \
  "  \"steps\": [\n" \
  "    { \"step\": \"sim\", \"id\": \"boot\", \"options\": { \"min-ms\": 100, \"max-ms\": 400, \"phase\": \"boot\" } },\n" \
  "    { \"step\": \"sim\", \"id\": \"inventory\", \"options\": { \"min-ms\": 100, \"max-ms\": 400, \"phase\": \"inventory\" } },\n" \
  "    { \"step\": \"sim\", \"id\": \"agent\", \"options\": { \"min-ms\": 100, \"max-ms\": 400, \"phase\": \"agent\" } },\n" \
  "    { \"step\": \"sim-group\", \"id\": \"transfer\", \"options\": { \"min-ms\": 200, \"max-ms\": 400 } }\n" \
  "  ],\n" \
  "  \"group\": { \"min-devices\": 1, \"max-devices\": 100, \"max-wait\": 2, \"wait-for-all\": true }\n" \
  "}\n"

#define OPEN_BUS_CONFIG \
  "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n" \
  " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n" \
  "<busconfig>\n" \
  "  <type>session</type>\n" \
  "  <listen>unix:tmpdir=/tmp</listen>\n" \
  "  <auth>EXTERNAL</auth>\n" \
  "  <policy context=\"default\">\n" \
  "    <allow user=\"*\"/>\n" \
  "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n" \
  "    <allow eavesdrop=\"true\"/>\n" \
  "    <allow own=\"*\"/>\n" \
  "  </policy>\n" \
  "</busconfig>\n"

static void
rm_rf (const gchar *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/* in the child: die with the test, even if it aborts on a failed assertion */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static const gchar *
env_or_skip (const gchar *name)
{
  const gchar *value = g_getenv (name);

  if (value == NULL)
    g_error ("%s is not set: run the test through meson test", name);
  return value;
}

/**
 * shoal_test_wait_for:
 * @done: returns %TRUE once the awaited thing happened
 * @data: for @done
 * @timeout_ms: how long to wait at most
 *
 * Runs the default main context until @done says so or the time is up.
 *
 * Returns: whether @done said so
 */
gboolean
shoal_test_wait_for (gboolean (*done) (gpointer), gpointer data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (!done (data))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      /* wake up at least every 10 ms to look at the clock */
      g_timeout_add_once (10, (GSourceOnceFunc) g_main_context_wakeup, NULL);
      g_main_context_iteration (NULL, TRUE);
    }
  return TRUE;
}

typedef struct
{
  gboolean  finished;
  gchar    *out;
  gchar    *err;
} RunData;

static void
run_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  RunData *data = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &data->out, &data->err, NULL);
  data->finished = TRUE;
}

static gboolean
run_finished (gpointer user_data)
{
  return ((RunData *) user_data)->finished;
}

/**
 * shoal_test_run:
 * @argv: the command
 * @out: (out) (optional): its standard output
 * @err: (out) (optional): its standard error
 * @timeout_s: how long it may run; it is killed after that and the test fails
 *
 * Returns: its exit status, or -1 if it did not exit normally
 */
gint
shoal_test_run (const gchar * const *argv, gchar **out, gchar **err, guint timeout_s)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  RunData data = { 0 };

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, run_done_cb, &data);
  if (!shoal_test_wait_for (run_finished, &data, timeout_s * 1000))
    {
      g_subprocess_force_exit (proc);
      shoal_test_wait_for (run_finished, &data, 5000);
      g_test_fail_printf ("%s did not finish in %u s", argv[0], timeout_s);
    }
  g_test_message ("$ %s%s%s", argv[1] != NULL ? argv[1] : "", argv[1] != NULL && argv[2] != NULL ? " " : "",
                  argv[1] != NULL && argv[2] != NULL ? argv[2] : "");
  if (out != NULL)
    *out = g_steal_pointer (&data.out);
  if (err != NULL)
    *err = g_steal_pointer (&data.err);
  g_free (data.out);
  g_free (data.err);
  if (!g_subprocess_get_if_exited (proc))
    return -1;
  return g_subprocess_get_exit_status (proc);
}

/**
 * shoal_test_daemon_new:
 *
 * Returns: (transfer full): a test daemon, not started, with its
 *   temporary directory, configuration and recipes written
 */
ShoalTestDaemon *
shoal_test_daemon_new (void)
{
  ShoalTestDaemon *td = g_new0 (ShoalTestDaemon, 1);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *recipes = NULL;
  g_autofree gchar *conf = NULL;
  g_autofree gchar *conf_path = NULL;
  g_autofree gchar *fast = NULL;
  g_autofree gchar *slow = NULL;
  g_autofree gchar *medium = NULL;

  td->tmpdir = g_dir_make_tmp ("shoal-test-dbus-XXXXXX", &error);
  g_assert_no_error (error);
  recipes = g_build_filename (td->tmpdir, "recipes", NULL);
  g_assert_cmpint (g_mkdir (recipes, 0700), ==, 0);
  fast = g_build_filename (recipes, "fast-sim.json", NULL);
  slow = g_build_filename (recipes, "slow-sim.json", NULL);
  g_file_set_contents (fast, FAST_RECIPE, -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (slow, SLOW_RECIPE, -1, &error);
  g_assert_no_error (error);
  medium = g_build_filename (recipes, "medium-sim.json", NULL);
  g_file_set_contents (medium, MEDIUM_RECIPE, -1, &error);
  g_assert_no_error (error);
  conf = g_strdup_printf ("[daemon]\nhttp-address=127.0.0.1\nhttp-port=0\n\n[recipes]\ndir=%s\n", recipes);
  conf_path = g_build_filename (td->tmpdir, "shoald.conf", NULL);
  g_file_set_contents (conf_path, conf, -1, &error);
  g_assert_no_error (error);
  td->log_path = g_build_filename (td->tmpdir, "shoald.log", NULL);
  return td;
}

/**
 * shoal_test_fast_recipe:
 *
 * Returns: the JSON of the "fast-sim" recipe the tests use
 */
const gchar *
shoal_test_fast_recipe (void)
{
  return FAST_RECIPE;
}

/**
 * shoal_test_medium_recipe:
 *
 * Returns: the JSON of the "medium-sim" recipe (steps of 100 to 400 ms)
 */
const gchar *
shoal_test_medium_recipe (void)
{
  return MEDIUM_RECIPE;
}

/**
 * shoal_test_daemon_set_recipe_repo:
 * @td: a test daemon, not started
 * @url: a git repository
 * @ref: the ref to follow
 *
 * Makes shoald take its recipes from @url instead of a directory.
 */
void
shoal_test_daemon_set_recipe_repo (ShoalTestDaemon *td, const gchar *url, const gchar *ref)
{
  g_autofree gchar *conf = g_strdup_printf ("[daemon]\nhttp-address=127.0.0.1\nhttp-port=0\n\n"
                                            "[recipes]\nurl=%s\nref=%s\n", url, ref);
  g_autofree gchar *conf_path = g_build_filename (td->tmpdir, "shoald.conf", NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (conf_path, conf, -1, &error);
  g_assert_no_error (error);
}

/**
 * shoal_test_daemon_set_conf:
 * @td: a test daemon, not started
 * @group: a group of shoald.conf
 * @key: a key in @group
 * @value: its value
 *
 * Sets one key of the test daemon's shoald.conf, keeping the others.
 */
void
shoal_test_daemon_set_conf (ShoalTestDaemon *td, const gchar *group, const gchar *key, const gchar *value)
{
  g_autofree gchar *conf_path = g_build_filename (td->tmpdir, "shoald.conf", NULL);
  g_autoptr(GKeyFile) conf = g_key_file_new ();
  g_autoptr(GError) error = NULL;

  g_key_file_load_from_file (conf, conf_path, G_KEY_FILE_KEEP_COMMENTS, &error);
  g_assert_no_error (error);
  g_key_file_set_string (conf, group, key, value);
  g_key_file_save_to_file (conf, conf_path, &error);
  g_assert_no_error (error);
}

/**
 * shoal_test_daemon_set_open_bus:
 * @td: a test daemon, not started
 *
 * Starts a dbus-daemon of our own that every user may connect to (a
 * GTestDBus bus admits only its own user), so that the test can call
 * shoald as another user.
 */
void
shoal_test_daemon_set_open_bus (ShoalTestDaemon *td)
{
  g_autofree gchar *conf_path = g_build_filename (td->tmpdir, "bus.conf", NULL);
  g_autofree gchar *config_arg = g_strconcat ("--config-file=", conf_path, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree gchar *line = NULL;

  g_file_set_contents (conf_path, OPEN_BUS_CONFIG, -1, &error);
  g_assert_no_error (error);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  td->bus_process = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", config_arg,
                                                 "--nofork", "--print-address=1", NULL);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (td->bus_process));
  line = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  td->address = g_strdup (g_strstrip (line));
}

static gboolean
shoal_test_daemon_has_name (gpointer user_data)
{
  ShoalTestDaemon *td = user_data;
  g_autoptr(GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  if (!shoal_test_daemon_is_running (td))
    return TRUE;
  reply = g_dbus_connection_call_sync (td->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", "org.shoal.Shoal1"),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, 1000, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

static gboolean
shoal_test_daemon_wait_has_name (ShoalTestDaemon *td)
{
  return shoal_test_wait_for (shoal_test_daemon_has_name, td, 30000);
}

static void
shoal_test_daemon_dump_log (ShoalTestDaemon *td)
{
  g_autofree gchar *log = NULL;

  if (g_file_get_contents (td->log_path, &log, NULL, NULL))
    g_printerr ("--- shoald log ---\n%s--- end ---\n", log);
}

/* the bus (GTestDBus unless shoal_test_daemon_set_open_bus() was called),
 * if not up yet */
static void
bus_up (ShoalTestDaemon *td)
{
  if (td->address != NULL)
    return;
  td->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (td->bus);
  td->address = g_strdup (g_test_dbus_get_bus_address (td->bus));
}

/* shoald's command line on td's bus, state and configuration */
static GPtrArray *
shoald_argv (ShoalTestDaemon *td, gboolean with_fixtures)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (argv, g_strdup (env_or_skip ("SHOALD")));
  g_ptr_array_add (argv, g_strconcat ("--address=", td->address, NULL));
  g_ptr_array_add (argv, g_strconcat ("--state-dir=", td->tmpdir, "/state", NULL));
  g_ptr_array_add (argv, g_strconcat ("--config=", td->tmpdir, "/shoald.conf", NULL));
  g_ptr_array_add (argv, g_strconcat ("--plugin-dir=", env_or_skip ("SHOAL_TEST_PLUGINDIR"), NULL));
  if (with_fixtures)
    g_ptr_array_add (argv, g_strconcat ("--plugin-dir=", env_or_skip ("SHOAL_TEST_FIXTURE_PLUGINDIR"), NULL));
  g_ptr_array_add (argv, g_strdup ("--verbose"));
  g_ptr_array_add (argv, NULL);
  return argv;
}

/**
 * shoal_test_daemon_run_to_exit:
 * @td: a test daemon, not started
 * @err: (out): shoald's standard error
 * @timeout_s: as shoal_test_run()
 *
 * Runs shoald as shoal_test_daemon_start() would, for a configuration it
 * must refuse: it is expected to exit on its own.
 *
 * Returns: its exit status, or -1 if it did not exit normally
 */
gint
shoal_test_daemon_run_to_exit (ShoalTestDaemon *td, gchar **err, guint timeout_s)
{
  g_autoptr(GPtrArray) argv = NULL;

  bus_up (td);
  argv = shoald_argv (td, FALSE);
  return shoal_test_run ((const gchar * const *) argv->pdata, NULL, err, timeout_s);
}

/**
 * shoal_test_daemon_start:
 * @td: a test daemon
 * @with_fixtures: also load the fixture plugins (some of which fail)
 *
 * Starts the bus (GTestDBus unless shoal_test_daemon_set_open_bus() was
 * called) if not started yet, and shoald, and waits until shoald owns
 * org.shoal.Shoal1. May be called again after shoal_test_daemon_stop():
 * shoald then restarts on the same state directory.
 */
void
shoal_test_daemon_start (ShoalTestDaemon *td, gboolean with_fixtures)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = NULL;

  bus_up (td);
  argv = shoald_argv (td, with_fixtures);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  /* shoald finds the Shoal-1.0 typelib for Python plugins itself */
  g_subprocess_launcher_unsetenv (launcher, "GI_TYPELIB_PATH");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* one file for both, appended to: two descriptors of their own wrote
   * over each other's lines */
  {
    int fd = g_open (td->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

    g_assert_cmpint (fd, >=, 0);
    g_subprocess_launcher_take_stdout_fd (launcher, fd);
    g_subprocess_launcher_take_stderr_fd (launcher, dup (fd));
  }
  td->daemon = g_subprocess_launcher_spawnv (launcher, (const gchar * const *) argv->pdata, &error);
  g_assert_no_error (error);

  if (td->connection == NULL)
    td->connection = g_dbus_connection_new_for_address_sync (td->address,
                                                             G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                             G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                             NULL, NULL, &error);
  g_assert_no_error (error);
  if (!shoal_test_daemon_wait_has_name (td) || !shoal_test_daemon_is_running (td))
    {
      shoal_test_daemon_dump_log (td);
      g_error ("shoald did not come up");
    }
  g_clear_object (&td->manager);
  td->manager = shoal_dbus_manager_proxy_new_sync (td->connection, G_DBUS_PROXY_FLAGS_NONE,
                                                   "org.shoal.Shoal1", "/org/shoal/Shoal1",
                                                   NULL, &error);
  g_assert_no_error (error);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (td->manager), 120000);
}

/**
 * shoal_test_daemon_is_running:
 * @td: a test daemon
 *
 * Returns: whether shoald has not exited
 */
gboolean
shoal_test_daemon_is_running (ShoalTestDaemon *td)
{
  return td->daemon != NULL && g_subprocess_get_identifier (td->daemon) != NULL;
}

static gboolean
shoal_test_daemon_exited (gpointer user_data)
{
  return !shoal_test_daemon_is_running (user_data);
}

/**
 * shoal_test_daemon_stop:
 * @td: a test daemon
 *
 * Stops shoald with SIGTERM and checks that it exits cleanly within 10 s.
 */
void
shoal_test_daemon_stop (ShoalTestDaemon *td)
{
  if (td->daemon == NULL)
    return;
  if (shoal_test_daemon_is_running (td))
    {
      g_subprocess_send_signal (td->daemon, SIGTERM);
      if (!shoal_test_wait_for (shoal_test_daemon_exited, td, 10000))
        {
          g_subprocess_force_exit (td->daemon);
          shoal_test_wait_for (shoal_test_daemon_exited, td, 5000);
          shoal_test_daemon_dump_log (td);
          g_test_fail_printf ("shoald did not stop on SIGTERM within 10 s");
        }
    }
  if (!g_subprocess_get_if_exited (td->daemon) || g_subprocess_get_exit_status (td->daemon) != 0)
    {
      shoal_test_daemon_dump_log (td);
      g_test_fail_printf ("shoald did not exit cleanly");
    }
  g_clear_object (&td->daemon);
}

/**
 * shoal_test_daemon_kill:
 * @td: a test daemon
 *
 * Kills shoald with SIGKILL, as a crash would, and waits until it is gone.
 */
void
shoal_test_daemon_kill (ShoalTestDaemon *td)
{
  if (td->daemon == NULL)
    return;
  g_subprocess_force_exit (td->daemon);
  g_assert_true (shoal_test_wait_for (shoal_test_daemon_exited, td, 10000));
  g_clear_object (&td->daemon);
}

/**
 * shoal_test_daemon_free:
 * @td: a test daemon
 *
 * Stops everything and removes the temporary directory.
 */
void
shoal_test_daemon_free (ShoalTestDaemon *td)
{
  shoal_test_daemon_stop (td);
  g_clear_object (&td->manager);
  if (td->connection != NULL)
    g_dbus_connection_close_sync (td->connection, NULL, NULL);
  g_clear_object (&td->connection);
  if (td->bus != NULL)
    g_test_dbus_down (td->bus);
  g_clear_object (&td->bus);
  if (td->bus_process != NULL)
    {
      g_subprocess_force_exit (td->bus_process);
      g_subprocess_wait (td->bus_process, NULL, NULL);
    }
  g_clear_object (&td->bus_process);
  rm_rf (td->tmpdir);
  g_free (td->tmpdir);
  g_free (td->log_path);
  g_free (td->address);
  g_free (td);
}
