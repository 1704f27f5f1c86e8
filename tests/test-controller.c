/* test-controller.c: the scheduler, the rendezvous and the store
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "shoal-controller-private.h"
#include "shoal-test-util.h"

#define FAST_RECIPE(name, group_max, fail) \
  "{\"name\": \"" name "\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 1, \"max-ms\": 20, \"phase\": \"boot\"}}," \
  " {\"step\": \"sim\", \"id\": \"inventory\", \"options\": {\"min-ms\": 1, \"max-ms\": 20, \"phase\": \"inventory\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 5, \"max-ms\": 10, \"fail-rate\": " fail "}}," \
  " {\"step\": \"sim\", \"id\": \"finish\", \"options\": {\"min-ms\": 1, \"max-ms\": 5, \"phase\": \"finish\"}}]," \
  " \"group\": {\"min-devices\": 1, \"max-devices\": " group_max ", \"max-wait\": 2, \"wait-for-all\": true}}"

typedef struct {
  gchar             *state_dir;
  ShoalPluginEngine *engine;
  ShoalController   *controller;
  GHashTable        *groups;      /* group id -> member count */
  guint              appended;
} Fixture;

static void
journal_appended_cb (ShoalController   *controller,
                     ShoalDevice       *device,
                     ShoalJournalEntry *entry,
                     Fixture           *fixture)
{
  fixture->appended++;
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->state_dir = shoal_test_mkdtemp ();
  fixture->engine = shoal_test_engine_new (FALSE);
  fixture->controller = shoal_controller_new (fixture->engine, fixture->state_dir);
  fixture->groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_assert_true (shoal_controller_open (fixture->controller, &error));
  g_assert_no_error (error);
  g_signal_connect (fixture->controller, "journal-appended", G_CALLBACK (journal_appended_cb), fixture);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  shoal_controller_close (fixture->controller);
  g_clear_object (&fixture->controller);
  g_clear_object (&fixture->engine);
  g_clear_pointer (&fixture->groups, g_hash_table_unref);
  shoal_test_rm_rf (fixture->state_dir);
  g_free (fixture->state_dir);
}

static void
add_recipe (Fixture     *fixture,
            const gchar *json)
{
  g_autoptr(ShoalRecipe) recipe = shoal_test_recipe_new (json);
  g_autoptr(GError) error = NULL;

  g_assert_true (shoal_controller_add_recipe (fixture->controller, recipe, &error));
  g_assert_no_error (error);
}

/* enrolls dev-@first.. (@n of them) and deploys them with @recipe */
static void
enroll_and_deploy_from (Fixture     *fixture,
                        guint        first,
                        guint        n,
                        const gchar *recipe)
{
  for (guint i = first; i < first + n; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);
      g_autofree gchar *mac = g_strdup_printf ("52:54:00:00:%02x:%02x", i / 256, i % 256);
      const gchar *macs[] = { mac, NULL };
      g_autoptr(GError) error = NULL;
      ShoalDevice *device;

      device = shoal_controller_enroll_device (fixture->controller, id, macs, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (shoal_controller_assign_recipe (fixture->controller, device, recipe, &error));
      g_assert_no_error (error);
      g_assert_true (shoal_controller_deploy (fixture->controller, device, &error));
      g_assert_no_error (error);
    }
}

static void
enroll_and_deploy (Fixture     *fixture,
                   guint        n,
                   const gchar *recipe)
{
  enroll_and_deploy_from (fixture, 0, n, recipe);
}

static gboolean
all_settled (gpointer data)
{
  Fixture *fixture = data;
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (fixture->controller);

  for (guint i = 0; i < devices->len; i++)
    if (shoal_device_state_is_active (shoal_device_get_state (g_ptr_array_index (devices, i))))
      return FALSE;
  /* what is visible is durable once the store has caught up */
  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  return TRUE;
}

static guint
count_state (Fixture          *fixture,
             ShoalDeviceState  state)
{
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (fixture->controller);
  guint count = 0;

  for (guint i = 0; i < devices->len; i++)
    if (shoal_device_get_state (g_ptr_array_index (devices, i)) == state)
      count++;
  return count;
}

typedef struct {
  ShoalDevice      *device;
  ShoalDeviceState  state;
} StateWait;

static gboolean
state_reached (gpointer data)
{
  StateWait *wait = data;

  return shoal_device_get_state (wait->device) == wait->state;
}

static void
wait_for_state (ShoalDevice      *device,
                ShoalDeviceState  state)
{
  StateWait wait = { device, state };

  g_assert_true (shoal_test_wait_until (state_reached, &wait, 10000));
}

static gboolean
never (gpointer data)
{
  return FALSE;
}

/* Runs the main loop for @ms milliseconds */
static void
spin (guint ms)
{
  shoal_test_wait_until (never, NULL, ms);
}

/* Sequence numbers 1..n without gaps or duplicates, every step finished once */
static void
assert_journal_complete (Fixture     *fixture,
                         ShoalDevice *device,
                         guint        n_steps)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) entries = shoal_controller_get_journal (fixture->controller, device, 0, &error);
  g_autoptr(GHashTable) finished = g_hash_table_new (g_str_hash, g_str_equal);

  g_assert_no_error (error);
  for (guint i = 0; i < entries->len; i++)
    {
      ShoalJournalEntry *entry = g_ptr_array_index (entries, i);

      g_assert_cmpuint (shoal_journal_entry_get_seq (entry), ==, i + 1);
      if (g_strcmp0 (shoal_journal_entry_get_operation (entry), "step-finished") == 0)
        {
          g_assert_false (g_hash_table_contains (finished, shoal_journal_entry_get_source (entry)));
          g_hash_table_add (finished, (gpointer) shoal_journal_entry_get_source (entry));
        }
    }
  g_assert_cmpuint (g_hash_table_size (finished), ==, n_steps);
}

static void
group_seen_cb (ShoalDevice *device,
               GParamSpec  *pspec,
               Fixture     *fixture)
{
  const gchar *group = shoal_device_get_group (device);

  if (group != NULL)
    g_hash_table_insert (fixture->groups, g_strdup (group),
                         GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (fixture->groups, group)) + 1));
}

static void
test_controller_fleet (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GPtrArray) devices = NULL;
  GHashTableIter iter;
  gpointer size;

  add_recipe (fixture, FAST_RECIPE ("fast", "10", "0"));
  enroll_and_deploy (fixture, 35, "fast");
  devices = shoal_controller_get_devices (fixture->controller);
  for (guint i = 0; i < devices->len; i++)
    g_signal_connect (g_ptr_array_index (devices, i), "notify::group", G_CALLBACK (group_seen_cb), fixture);

  g_assert_true (shoal_test_wait_until (all_settled, fixture, 30000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 35);
  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);

      g_assert_cmpint (shoal_device_get_boot_action (device), ==, SHOAL_BOOT_ACTION_LOCAL);
      g_assert_nonnull (shoal_device_get_group (device));
      assert_journal_complete (fixture, device, 4);
    }
  /* groups hold at most 10 and cover everyone: 35 = 10+10+10+5 at least 4 groups */
  g_assert_cmpuint (g_hash_table_size (fixture->groups), >=, 4);
  g_hash_table_iter_init (&iter, fixture->groups);
  while (g_hash_table_iter_next (&iter, NULL, &size))
    g_assert_cmpuint (GPOINTER_TO_UINT (size), <=, 10);
  g_assert_cmpuint (fixture->appended, >, 35 * 8);
}

static void
test_controller_group_drop (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(GPtrArray) devices = NULL;

  add_recipe (fixture, FAST_RECIPE ("lossy", "0", "1"));
  enroll_and_deploy (fixture, 6, "lossy");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 30000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_FAILED), ==, 6);
  devices = shoal_controller_get_devices (fixture->controller);
  for (guint i = 0; i < devices->len; i++)
    {
      g_autoptr(GPtrArray) entries =
        shoal_controller_get_journal (fixture->controller, g_ptr_array_index (devices, i), 0, NULL);
      ShoalJournalEntry *last = g_ptr_array_index (entries, entries->len - 1);

      g_assert_cmpstr (shoal_journal_entry_get_operation (last), ==, "step-failed");
      g_assert_cmpstr (shoal_journal_entry_get_source (last), ==, "multicast");
      g_assert_nonnull (strstr (shoal_journal_entry_get_message (last), "simulated receiver failure"));
    }
}

static void
test_controller_unknown_step (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autoptr(ShoalRecipe) recipe = shoal_test_recipe_new (
    "{\"name\": \"bad\", \"steps\": [{\"step\": \"no-such-step\", \"id\": \"x\"}]}");
  g_autoptr(GError) error = NULL;

  g_assert_false (shoal_controller_add_recipe (fixture->controller, recipe, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_UNKNOWN_STEP);
  g_assert_nonnull (strstr (error->message, "no-such-step"));
  g_assert_nonnull (strstr (error->message, "recipe bad"));
  g_assert_null (shoal_controller_lookup_recipe (fixture->controller, "bad"));
}

static void
test_controller_bad_options (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(ShoalRecipe) recipe = shoal_test_recipe_new (
    "{\"name\": \"bad\", \"steps\": [{\"step\": \"sim\", \"options\": {\"fail-rate\": 7}}]}");
  g_autoptr(GError) error = NULL;

  g_assert_false (shoal_controller_add_recipe (fixture->controller, recipe, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_nonnull (strstr (error->message, "fail-rate"));
}

static void
test_controller_bad_arguments (Fixture       *fixture,
                               gconstpointer  data)
{
  const gchar *bad_macs[] = { "not-a-mac", NULL };
  const gchar *macs[] = { "52:54:00:aa:bb:cc", NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;

  g_assert_null (shoal_controller_enroll_device (fixture->controller, "a/b", NULL, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (shoal_controller_enroll_device (fixture->controller, "x", bad_macs, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  device = shoal_controller_enroll_device (fixture->controller, "x", macs, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (shoal_controller_enroll_device (fixture->controller, "y", macs, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
  g_clear_error (&error);
  g_assert_false (shoal_controller_deploy (fixture->controller, device, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (shoal_controller_assign_recipe (fixture->controller, device, "nope", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_true (shoal_controller_lookup_device_by_mac (fixture->controller, "52:54:00:AA:BB:CC") == device);
}

static void
test_controller_cancel (Fixture       *fixture,
                        gconstpointer  data)
{
  ShoalDevice *device;
  g_autoptr(GError) error = NULL;

  add_recipe (fixture,
              "{\"name\": \"slow\", \"steps\": [{\"step\": \"sim\", \"options\": {\"min-ms\": 60000, \"max-ms\": 60000}}]}");
  enroll_and_deploy (fixture, 1, "slow");
  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  while (shoal_device_get_state (device) == SHOAL_DEVICE_STATE_QUEUED)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_BOOTING);
  g_assert_true (shoal_controller_cancel (fixture->controller, device, &error));
  g_assert_no_error (error);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_CANCELLED);
  g_assert_false (shoal_controller_cancel (fixture->controller, device, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  /* the cancelled step must not come back to life */
  for (guint i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_CANCELLED);
}

static void
test_controller_max_parallel (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autoptr(GPtrArray) devices = NULL;
  guint max_seen = 0;

  add_recipe (fixture,
              "{\"name\": \"limited\", \"steps\": [{\"step\": \"sim\", \"max-parallel\": 3,"
              " \"options\": {\"min-ms\": 20, \"max-ms\": 30}}]}");
  enroll_and_deploy (fixture, 12, "limited");
  devices = shoal_controller_get_devices (fixture->controller);
  while (!all_settled (fixture))
    {
      guint running = 0;

      /* running: in the step and not yet at its end (progress 1) */
      for (guint i = 0; i < devices->len; i++)
        {
          ShoalDevice *device = g_ptr_array_index (devices, i);

          if (shoal_device_get_state (device) == SHOAL_DEVICE_STATE_BOOTING &&
              shoal_device_get_progress (device) < 1.0)
            running++;
        }

      max_seen = MAX (max_seen, running);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_cmpuint (max_seen, ==, 3);
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 12);
}

static void
test_controller_device_seen (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;

  add_recipe (fixture, "{\"name\": \"default\", \"default\": true, \"steps\": [{\"step\": \"sim\","
                       " \"options\": {\"min-ms\": 1, \"max-ms\": 2}}]}");
  device = shoal_controller_device_seen (fixture->controller, "52:54:00:12:34:56", NULL, "dhcp", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_id (device), ==, "52-54-00-12-34-56");
  g_assert_cmpstr (shoal_device_get_recipe (device), ==, "default");
  g_assert_cmpint (shoal_controller_get_boot_action (fixture->controller, device), ==, SHOAL_BOOT_ACTION_DEPLOY);
  g_assert_true (shoal_controller_device_seen (fixture->controller, "52:54:00:12:34:56", NULL, "tftp", NULL) == device);
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpint (shoal_controller_get_boot_action (fixture->controller, device), ==, SHOAL_BOOT_ACTION_LOCAL);
}

/* Discovery is bounded: at most [controller] discover-rate machines a
 * minute, none while the daemon holds discover-max devices; a refused
 * machine is not enrolled and is counted, the known ones are still
 * seen, and the operator's enrolment is not limited. Before, any made-up
 * MAC address was enrolled (and deployed), as fast as it came */
static void
test_controller_discover_limits (Fixture       *fixture,
                                 gconstpointer  data)
{
  g_autoptr(GKeyFile) config = g_key_file_new ();
  const gchar *macs[] = { "52:54:00:00:50:05", NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *first;

  g_key_file_set_integer (config, "controller", "discover-rate", 3);
  g_key_file_set_integer (config, "controller", "discover-max", 0);
  g_key_file_set_boolean (config, "controller", "auto-deploy", FALSE);
  shoal_controller_set_config (fixture->controller, config);
  first = shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:00", NULL, "dhcp", &error);
  g_assert_no_error (error);
  g_assert_nonnull (shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:01", NULL, "dhcp", NULL));
  g_assert_nonnull (shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:02", NULL, "dhcp", NULL));
  /* the minute's three are used: refused, not enrolled, counted */
  g_assert_null (shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:03", NULL, "dhcp", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "discover-rate"));
  g_clear_error (&error);
  g_assert_null (shoal_controller_lookup_device_by_mac (fixture->controller, "52:54:00:00:50:03"));
  g_assert_null (shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:04", NULL, "http", NULL));
  g_assert_cmpuint (shoal_controller_get_discover_refused (fixture->controller), ==, 2);
  /* a known machine is still seen; the operator still enrols */
  g_assert_true (shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:00", NULL, "http", NULL) == first);
  g_assert_nonnull (shoal_controller_enroll_device (fixture->controller, "by-hand", macs, NULL, &error));
  g_assert_no_error (error);

  /* at most discover-max devices (four now): none more by discovery */
  g_key_file_set_integer (config, "controller", "discover-rate", 0);
  g_key_file_set_integer (config, "controller", "discover-max", 4);
  shoal_controller_set_config (fixture->controller, config);
  g_assert_null (shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:06", NULL, "dhcp", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "discover-max"));
  g_clear_error (&error);
  g_key_file_set_integer (config, "controller", "discover-max", 5);
  shoal_controller_set_config (fixture->controller, config);
  g_assert_nonnull (shoal_controller_device_seen (fixture->controller, "52:54:00:00:50:06", NULL, "dhcp", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (shoal_controller_get_discover_refused (fixture->controller), ==, 3);
}

static void
test_controller_reopen (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(ShoalController) again = NULL;
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;

  add_recipe (fixture, FAST_RECIPE ("fast", "0", "0"));
  enroll_and_deploy (fixture, 3, "fast");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  shoal_controller_close (fixture->controller);

  again = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_true (shoal_controller_open (again, &error));
  g_assert_no_error (error);
  device = shoal_controller_lookup_device (again, "dev-0001");
  g_assert_nonnull (device);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpstr (shoal_device_get_recipe (device), ==, "fast");
  g_assert_nonnull (shoal_controller_lookup_device_by_mac (again, "52:54:00:00:00:01"));
  g_assert_true (shoal_controller_lookup_device_by_token (again, shoal_device_get_token (device)) == device);
  shoal_controller_close (again);
}

/* A second controller (a second shoald) on a state directory in use is
 * refused before it opens the store, naming the directory and the PID of
 * the holder; once the first closes, the directory can be opened again */
static void
test_controller_state_dir_lock (Fixture       *fixture,
                                gconstpointer  data)
{
  g_autoptr(ShoalController) second = NULL;
  g_autoptr(ShoalController) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *pid = g_strdup_printf ("PID %ld", (long) getpid ());
  g_autofree gchar *lock = g_build_filename (fixture->state_dir, "lock", NULL);
  g_autofree gchar *contents = NULL;
  guint appended;

  add_recipe (fixture, FAST_RECIPE ("fast", "0", "0"));
  enroll_and_deploy (fixture, 3, "fast");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  appended = fixture->appended;

  second = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_false (shoal_controller_open (second, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, fixture->state_dir));
  g_assert_nonnull (strstr (error->message, pid));
  g_assert_null (shoal_controller_lookup_device (second, "dev-0001"));
  shoal_controller_close (second);
  g_clear_error (&error);
  /* the refused one released nothing: the first still holds the lock */
  g_assert_true (g_file_get_contents (lock, &contents, NULL, NULL));
  g_assert_cmpstr (g_strstrip (contents), ==, pid + strlen ("PID "));
  g_assert_cmpuint (fixture->appended, ==, appended);

  shoal_controller_close (fixture->controller);
  again = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_true (shoal_controller_open (again, &error));
  g_assert_no_error (error);
  g_assert_nonnull (shoal_controller_lookup_device (again, "dev-0001"));
  shoal_controller_close (again);
}

/* A stored recipe comes back after a restart until a recipe of its name
 * replaces it or it is removed */
static void
test_controller_stored_recipes (Fixture       *fixture,
                                gconstpointer  data)
{
  g_autoptr(ShoalController) again = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *names[] = { "kept", "replaced", "removed" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *json = g_strdup_printf ("{\"name\": \"%s\", \"steps\": [{\"step\": \"sim\"}]}",
                                                names[i]);
      g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_data (json, -1, "D-Bus", &error);

      g_assert_no_error (error);
      g_assert_true (shoal_controller_add_stored_recipe (fixture->controller, recipe, &error));
      g_assert_no_error (error);
    }
  add_recipe (fixture, FAST_RECIPE ("replaced", "0", "0"));
  g_assert_true (shoal_controller_remove_recipe (fixture->controller, "removed", &error));
  g_assert_no_error (error);
  shoal_controller_close (fixture->controller);

  again = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_true (shoal_controller_open (again, &error));
  g_assert_no_error (error);
  g_assert_null (shoal_controller_lookup_recipe (again, "kept"));
  /* a file of its name, read at start-up before the store, is replaced */
  {
    g_autoptr(ShoalRecipe) file = shoal_test_recipe_new (FAST_RECIPE ("kept", "0", "0"));

    g_assert_true (shoal_controller_add_recipe (again, file, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (shoal_controller_load_stored_recipes (again), ==, 1);
  g_assert_nonnull (shoal_controller_lookup_pipeline (again, "kept"));
  g_assert_cmpstr (shoal_recipe_get_source (shoal_controller_lookup_recipe (again, "kept")), ==, "D-Bus");
  g_assert_null (shoal_controller_lookup_recipe (again, "replaced"));
  g_assert_null (shoal_controller_lookup_recipe (again, "removed"));
  shoal_controller_close (again);
}

static void
test_controller_step_timeout (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autoptr(GPtrArray) entries = NULL;
  ShoalDevice *device;

  add_recipe (fixture, "{\"name\": \"stuck\", \"steps\": [{\"step\": \"sim\", \"timeout\": 1,"
                       " \"options\": {\"min-ms\": 600000, \"max-ms\": 600000}}]}");
  enroll_and_deploy (fixture, 1, "stuck");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_FAILED);
  entries = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  g_assert_nonnull (strstr (shoal_journal_entry_get_message (g_ptr_array_index (entries, entries->len - 1)),
                            "did not finish in time"));
}

/* A second group step forms its groups by the recipe's policy too */
static void
test_controller_second_group_step (Fixture       *fixture,
                                   gconstpointer  data)
{
  g_autoptr(GPtrArray) devices = NULL;
  g_autoptr(GHashTable) groups = g_hash_table_new (g_str_hash, g_str_equal);

  add_recipe (fixture,
              "{\"name\": \"two\", \"steps\": ["
              " {\"step\": \"sim\", \"options\": {\"min-ms\": 1, \"max-ms\": 30}},"
              " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 1, \"max-ms\": 5}},"
              " {\"step\": \"sim-group\", \"id\": \"verify\", \"options\": {\"min-ms\": 1, \"max-ms\": 5,"
              "  \"phase\": \"verify\"}}],"
              " \"group\": {\"min-devices\": 3, \"max-devices\": 3, \"max-wait\": 10}}");
  enroll_and_deploy (fixture, 6, "two");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 30000));
  devices = shoal_controller_get_devices (fixture->controller);
  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);

      g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
      g_assert_nonnull (strstr (shoal_device_get_group (device), "/verify/"));
      g_hash_table_add (groups, (gpointer) shoal_device_get_group (device));
    }
  /* groups of three, not one group per device */
  g_assert_cmpuint (g_hash_table_size (groups), ==, 2);
}

/* Claims 28-29: subsets matched to different recipes form separate groups */
static void
test_controller_two_recipes (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(GPtrArray) devices = NULL;
  g_autoptr(GError) error = NULL;

  add_recipe (fixture,
              "{\"name\": \"os-a\", \"match\": {\"macs\": [\"52:54:00:00:00:0*\"]}, \"steps\": ["
              " {\"step\": \"sim\", \"options\": {\"min-ms\": 1, \"max-ms\": 5}},"
              " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 1, \"max-ms\": 5}}],"
              " \"group\": {\"wait-for-all\": true, \"max-wait\": 5}}");
  add_recipe (fixture,
              "{\"name\": \"os-b\", \"default\": true, \"steps\": ["
              " {\"step\": \"sim\", \"options\": {\"min-ms\": 1, \"max-ms\": 5}},"
              " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 1, \"max-ms\": 5}}],"
              " \"group\": {\"wait-for-all\": true, \"max-wait\": 5}}");
  for (guint i = 0; i < 20; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);
      g_autofree gchar *mac = g_strdup_printf ("52:54:00:00:00:%02x", i);
      const gchar *macs[] = { mac, NULL };
      ShoalDevice *device = shoal_controller_enroll_device (fixture->controller, id, macs, NULL, &error);

      g_assert_true (shoal_controller_assign_recipe (fixture->controller, device, NULL, &error));
      g_assert_true (shoal_controller_deploy (fixture->controller, device, &error));
      g_assert_no_error (error);
    }
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 20000));
  devices = shoal_controller_get_devices (fixture->controller);
  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      const gchar *expected = i < 16 ? "os-a" : "os-b";   /* 52:54:00:00:00:00-0f */

      g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
      g_assert_cmpstr (shoal_device_get_recipe (device), ==, expected);
      g_assert_true (g_str_has_prefix (shoal_device_get_group (device), expected));
    }
  /* wait-for-all: each recipe's devices ended up in one group of their own */
  g_assert_cmpstr (shoal_device_get_group (g_ptr_array_index (devices, 0)), ==,
                   shoal_device_get_group (g_ptr_array_index (devices, 15)));
  g_assert_cmpstr (shoal_device_get_group (g_ptr_array_index (devices, 16)), ==,
                   shoal_device_get_group (g_ptr_array_index (devices, 19)));
}

/* One sim step, then a group step of @ms milliseconds (progress every
 * quarter of it) for groups of @size */
#define SLOW_GROUP_RECIPE(name, ms, size, extra) \
  "{\"name\": \"" name "\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 1, \"max-ms\": 5, \"phase\": \"boot\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": " ms ", \"max-ms\": " ms "}" extra "}]," \
  " \"group\": {\"min-devices\": " size ", \"max-devices\": " size ", \"max-wait\": 10}}"

/* A device cancelled and removed while its group step runs and enrolled
 * again under the same id starts counting its attempts where the old
 * record did: the old group's end must not count for the new record */
static void
test_controller_reenrolled (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;
  gint64 deployed;

  add_recipe (fixture, SLOW_GROUP_RECIPE ("slowgroup", "1000", "1", ""));
  enroll_and_deploy (fixture, 1, "slowgroup");
  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  wait_for_state (device, SHOAL_DEVICE_STATE_TRANSFER);
  spin (300);
  g_assert_true (shoal_controller_cancel (fixture->controller, device, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_remove_device (fixture->controller, "dev-0000", &error));
  g_assert_no_error (error);

  enroll_and_deploy (fixture, 1, "slowgroup");
  deployed = g_get_monotonic_time ();
  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  /* by the end of its own group step, not of the old one (0.7 s) */
  g_assert_cmpint (g_get_monotonic_time () - deployed, >=, 900 * G_TIME_SPAN_MILLISECOND);
  spin (500);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  assert_journal_complete (fixture, device, 2);
}

static void
progress_cb (ShoalDevice *device,
             GParamSpec  *pspec,
             guint       *count)
{
  (*count)++;
}

static void
assert_failed_by (Fixture     *fixture,
                  ShoalDevice *device,
                  const gchar *source,
                  const gchar *text)
{
  g_autoptr(GPtrArray) entries = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  ShoalJournalEntry *last = g_ptr_array_index (entries, entries->len - 1);

  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_FAILED);
  g_assert_cmpstr (shoal_journal_entry_get_operation (last), ==, "step-failed");
  g_assert_cmpstr (shoal_journal_entry_get_source (last), ==, source);
  g_assert_nonnull (strstr (shoal_journal_entry_get_message (last), text));
}

/* A group step's timeout fails its members and cancels the step */
static void
test_controller_group_timeout (Fixture       *fixture,
                               gconstpointer  data)
{
  ShoalDevice *devices[2];
  guint ticks = 0;
  gint64 formed;

  add_recipe (fixture, SLOW_GROUP_RECIPE ("slowgroup", "8000", "2", ", \"timeout\": 2"));
  enroll_and_deploy (fixture, 2, "slowgroup");
  devices[0] = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  devices[1] = shoal_controller_lookup_device (fixture->controller, "dev-0001");
  wait_for_state (devices[0], SHOAL_DEVICE_STATE_TRANSFER);
  wait_for_state (devices[1], SHOAL_DEVICE_STATE_TRANSFER);
  formed = g_get_monotonic_time ();
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 6000));
  g_assert_cmpint (g_get_monotonic_time () - formed, >=, 1 * G_TIME_SPAN_SECOND);
  g_assert_cmpint (g_get_monotonic_time () - formed, <, 4 * G_TIME_SPAN_SECOND);
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    {
      assert_failed_by (fixture, devices[i], "multicast", "did not finish in time");
      assert_failed_by (fixture, devices[i], "multicast", shoal_device_get_group (devices[i]));
      g_signal_connect (devices[i], "notify::progress", G_CALLBACK (progress_cb), &ticks);
    }
  /* the step was cancelled: it reports no progress (every 2 s) any more */
  spin (2500);
  g_assert_cmpuint (ticks, ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    g_signal_handlers_disconnect_by_data (devices[i], &ticks);
}

/* A member that is cancelled leaves the group, whose step goes on for the
 * others; once every member is cancelled or removed the step is cancelled */
static void
context_device_removed_cb (ShoalContext *context, ShoalDevice *device, gchar **id)
{
  g_free (*id);
  *id = g_strdup (shoal_device_get_id (device));
}

static void
test_controller_group_cancel (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  ShoalDevice *devices[3];
  g_autofree gchar *context_removed = NULL;
  gulong removed_id;
  ShoalDevice *removed;
  guint ticks = 0;

  add_recipe (fixture, SLOW_GROUP_RECIPE ("slowgroup", "4000", "3", ""));
  enroll_and_deploy (fixture, 3, "slowgroup");
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);

      devices[i] = shoal_controller_lookup_device (fixture->controller, id);
      wait_for_state (devices[i], SHOAL_DEVICE_STATE_TRANSFER);
    }
  g_signal_connect (devices[1], "notify::progress", G_CALLBACK (progress_cb), &ticks);

  g_assert_true (shoal_controller_cancel (fixture->controller, devices[0], &error));
  g_assert_no_error (error);
  spin (1500);   /* progress comes every second */
  g_assert_cmpuint (ticks, >, 0);
  g_assert_cmpint (shoal_device_get_state (devices[1]), ==, SHOAL_DEVICE_STATE_TRANSFER);

  removed = devices[2];
  g_object_add_weak_pointer (G_OBJECT (removed), (gpointer *) &removed);
  removed_id = g_signal_connect (shoal_controller_get_context (fixture->controller), "device-removed",
                                 G_CALLBACK (context_device_removed_cb), &context_removed);
  g_assert_true (shoal_controller_cancel (fixture->controller, devices[1], &error));
  g_assert_no_error (error);
  /* a device in the middle of its deployment is not removed */
  g_assert_false (shoal_controller_remove_device (fixture->controller, "dev-0002", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "shoalctl cancel dev-0002"));
  g_clear_error (&error);
  g_assert_cmpint (shoal_device_get_state (devices[2]), ==, SHOAL_DEVICE_STATE_TRANSFER);
  g_assert_null (context_removed);   /* the refused removal was not announced */
  g_assert_true (shoal_controller_cancel (fixture->controller, devices[2], &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_remove_device (fixture->controller, "dev-0002", &error));
  g_assert_no_error (error);
  /* plugins learn it through their context */
  g_assert_cmpstr (context_removed, ==, "dev-0002");
  g_clear_signal_handler (&removed_id, shoal_controller_get_context (fixture->controller));
  ticks = 0;
  spin (1500);
  g_assert_cmpuint (ticks, ==, 0);
  /* the step returned and let go of its group's devices */
  g_assert_null (removed);
  g_signal_handlers_disconnect_by_data (devices[1], &ticks);
  g_assert_cmpint (shoal_device_get_state (devices[0]), ==, SHOAL_DEVICE_STATE_CANCELLED);
  g_assert_cmpint (shoal_device_get_state (devices[1]), ==, SHOAL_DEVICE_STATE_CANCELLED);
}

static void
record_progress_cb (ShoalDevice *device,
                    GParamSpec  *pspec,
                    GArray      *values)
{
  gdouble value = shoal_device_get_progress (device);

  g_array_append_val (values, value);
}

/* the "sim-transfer" entries of @device's journal that say @text */
static guint
count_transfer_entries (Fixture     *fixture,
                        ShoalDevice *device,
                        const gchar *text)
{
  g_autoptr(GPtrArray) entries = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  guint count = 0;

  for (guint i = 0; i < entries->len; i++)
    {
      ShoalJournalEntry *entry = g_ptr_array_index (entries, i);

      count += g_strcmp0 (shoal_journal_entry_get_operation (entry), "sim-transfer") == 0 &&
               strstr (shoal_journal_entry_get_message (entry), text) != NULL;
    }
  return count;
}

/* A member cancelled in the middle of its group step and deployed again
 * is the new run's alone: the old group's step, which goes on for the
 * others, moves its progress no more and journals nothing to it (before,
 * its progress went up and down with two groups writing, and the new
 * run's journal got the old group's "2 members, 0 dropped"); the group's
 * entry counts it as dropped */
static void
test_controller_group_cancel_redeploy (Fixture       *fixture,
                                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) values = g_array_new (FALSE, FALSE, sizeof (gdouble));
  ShoalDevice *devices[2];
  gulong progress_id;

  add_recipe (fixture,
              "{\"name\": \"regroup\", \"steps\": ["
              " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 1, \"max-ms\": 5, \"phase\": \"boot\"}},"
              " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 2000, \"max-ms\": 2000}}],"
              " \"group\": {\"min-devices\": 2, \"max-devices\": 2, \"max-wait\": 1}}");
  enroll_and_deploy (fixture, 2, "regroup");
  devices[0] = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  devices[1] = shoal_controller_lookup_device (fixture->controller, "dev-0001");
  wait_for_state (devices[0], SHOAL_DEVICE_STATE_TRANSFER);
  wait_for_state (devices[1], SHOAL_DEVICE_STATE_TRANSFER);
  g_assert_cmpstr (shoal_device_get_group (devices[0]), ==, shoal_device_get_group (devices[1]));
  spin (300);
  g_assert_true (shoal_controller_cancel (fixture->controller, devices[0], &error));
  g_assert_no_error (error);
  progress_id = g_signal_connect (devices[0], "notify::progress", G_CALLBACK (record_progress_cb), values);
  g_assert_true (shoal_controller_deploy (fixture->controller, devices[0], &error));
  g_assert_no_error (error);
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  g_clear_signal_handler (&progress_id, devices[0]);

  g_assert_cmpint (shoal_device_get_state (devices[0]), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpint (shoal_device_get_state (devices[1]), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpuint (count_transfer_entries (fixture, devices[1], ": 2 members, 1 dropped"), ==, 1);
  g_assert_cmpuint (count_transfer_entries (fixture, devices[0], ": 2 members"), ==, 0);
  g_assert_cmpuint (count_transfer_entries (fixture, devices[0], ": 1 members, 0 dropped"), ==, 1);
  /* each step's progress only rises (from 0, where the controller sets
   * each step's start) */
  for (guint i = 1; i < values->len; i++)
    if (g_array_index (values, gdouble, i) != 0.0)
      g_assert_cmpfloat (g_array_index (values, gdouble, i), >=, g_array_index (values, gdouble, i - 1));
}

/* A boot of 200 ms, then a group step for groups of at least 2 */
#define READD_RECIPE(max_wait) \
  "{\"name\": \"readd\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 200, \"max-ms\": 200, \"phase\": \"boot\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 50, \"max-ms\": 50}}]," \
  " \"group\": {\"min-devices\": 2, \"max-wait\": " max_wait "}}"

static const gchar *
group_of (Fixture     *fixture,
          guint        i)
{
  g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);

  return shoal_device_get_group (shoal_controller_lookup_device (fixture->controller, id));
}

/* The message of @device's last entry @operation from @source */
static gchar *
last_message (Fixture     *fixture,
              ShoalDevice *device,
              const gchar *source,
              const gchar *operation)
{
  g_autoptr(GPtrArray) entries = NULL;
  const gchar *message = NULL;

  /* the journal read is the store's */
  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  entries = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  for (guint i = 0; i < entries->len; i++)
    {
      ShoalJournalEntry *entry = g_ptr_array_index (entries, i);

      if (g_strcmp0 (shoal_journal_entry_get_source (entry), source) == 0 &&
          g_strcmp0 (shoal_journal_entry_get_operation (entry), operation) == 0)
        message = shoal_journal_entry_get_message (entry);
    }
  return g_strdup (message);
}

/* The number of group id "<recipe>/<step>/<number>-<seconds>" */
static guint64
group_number (const gchar *group_id)
{
  const gchar *last;

  g_assert_nonnull (group_id);
  last = strrchr (group_id, '/');
  g_assert_nonnull (last);
  return g_ascii_strtoull (last + 1, NULL, 10);
}

/* Group ids are not given again after a restart, not even within the
 * same second: the number goes on from where the last run left it (the
 * seconds alone told the runs apart, when they differed) */
static void
test_controller_group_ids_restart (Fixture       *fixture,
                                   gconstpointer  data)
{
  g_autoptr(ShoalController) again = NULL;
  g_autoptr(ShoalRecipe) recipe = shoal_test_recipe_new (FAST_RECIPE ("fast", "1", "0"));
  g_autoptr(GError) error = NULL;
  g_autofree gchar *first = NULL;
  g_autofree gchar *second = NULL;
  const gchar *macs[] = { "52:54:00:00:01:00", NULL };
  ShoalDevice *device;

  g_assert_true (shoal_controller_add_recipe (fixture->controller, recipe, &error));
  g_assert_no_error (error);
  enroll_and_deploy (fixture, 2, "fast");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 2);
  /* groups of one: two groups */
  g_assert_cmpstr (group_of (fixture, 0), !=, group_of (fixture, 1));
  first = g_strdup (group_of (fixture, 0));
  second = g_strdup (group_of (fixture, 1));
  shoal_controller_close (fixture->controller);

  again = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_true (shoal_controller_open (again, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_add_recipe (again, recipe, &error));
  g_assert_no_error (error);
  device = shoal_controller_enroll_device (again, "dev-0100", macs, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (again, device, "fast", &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_deploy (again, device, &error));
  g_assert_no_error (error);
  wait_for_state (device, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpstr (shoal_device_get_group (device), !=, first);
  g_assert_cmpstr (shoal_device_get_group (device), !=, second);
  /* after the last run's numbers, whatever the clock says */
  g_assert_cmpuint (group_number (shoal_device_get_group (device)), >,
                    MAX (group_number (first), group_number (second)));
  g_assert_true (shoal_store_flush (shoal_controller_get_store (again), NULL));
  shoal_controller_close (again);
}

/* A recipe added again unchanged (as every sync of the recipe repository
 * does) keeps its rendezvous: a device waiting there meets the devices
 * deployed after. A recipe that changed leaves the devices deployed with
 * the old one to form their group among themselves, with an id of its
 * own */
static void
test_controller_recipe_readded (Fixture       *fixture,
                                gconstpointer  data)
{
  g_autofree gchar *started = NULL;

  add_recipe (fixture, READD_RECIPE ("30"));
  enroll_and_deploy_from (fixture, 0, 2, "readd");
  add_recipe (fixture, READD_RECIPE ("29"));
  enroll_and_deploy_from (fixture, 2, 2, "readd");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 5000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 4);
  g_assert_cmpstr (group_of (fixture, 0), ==, group_of (fixture, 1));
  g_assert_cmpstr (group_of (fixture, 2), ==, group_of (fixture, 3));
  g_assert_cmpstr (group_of (fixture, 0), !=, group_of (fixture, 2));

  enroll_and_deploy_from (fixture, 4, 1, "readd");
  add_recipe (fixture, READD_RECIPE ("29"));
  enroll_and_deploy_from (fixture, 5, 1, "readd");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 5000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 6);
  g_assert_cmpstr (group_of (fixture, 4), ==, group_of (fixture, 5));
  g_assert_cmpstr (group_of (fixture, 4), !=, group_of (fixture, 2));
  started = last_message (fixture, shoal_controller_lookup_device (fixture->controller, "dev-0005"),
                          "multicast", "step-started");
  g_assert_nonnull (strstr (started, "of 2 devices"));
}

static void
add_recipe_at (Fixture     *fixture,
               const gchar *json,
               const gchar *commit)
{
  g_autoptr(ShoalRecipe) recipe = shoal_test_recipe_new (json);
  g_autoptr(GError) error = NULL;

  shoal_recipe_set_commit (recipe, commit);
  g_assert_true (shoal_controller_add_recipe (fixture->controller, recipe, &error));
  g_assert_no_error (error);
}

#define COMMIT_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define COMMIT_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A recipe that comes again unchanged at another commit (a commit of the
 * repository that changed another file) keeps its rendezvous: the device
 * waiting there meets the device deployed after, in one group (they
 * went in two, the first after max-wait). Each records, and journals,
 * the commit of the recipe in service when it was deployed */
static void
test_controller_recipe_new_commit (Fixture       *fixture,
                                   gconstpointer  data)
{
  g_autofree gchar *deployed = NULL;
  ShoalDevice *first;
  ShoalDevice *second;

  add_recipe_at (fixture, READD_RECIPE ("3"), COMMIT_A);
  enroll_and_deploy_from (fixture, 0, 1, "readd");
  add_recipe_at (fixture, READD_RECIPE ("3"), COMMIT_B);
  g_assert_cmpstr (shoal_recipe_get_commit (shoal_controller_lookup_recipe (fixture->controller, "readd")),
                   ==, COMMIT_B);
  enroll_and_deploy_from (fixture, 1, 1, "readd");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 2);
  g_assert_cmpstr (group_of (fixture, 0), ==, group_of (fixture, 1));
  first = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  second = shoal_controller_lookup_device (fixture->controller, "dev-0001");
  g_assert_cmpstr (shoal_device_get_recipe_commit (first), ==, COMMIT_A);
  g_assert_cmpstr (shoal_device_get_recipe_commit (second), ==, COMMIT_B);
  deployed = last_message (fixture, second, "controller", "deploy");
  g_assert_nonnull (strstr (deployed, "at commit " COMMIT_B));
}

/* Version 1 of recipe "slow", whose inventory step takes long enough to
 * stop the controller in it, and version 3, of other steps */
#define SLOW_V1(inventory_ms) \
  "{\"name\": \"slow\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 1, \"max-ms\": 1, \"phase\": \"boot\"}}," \
  " {\"step\": \"sim\", \"id\": \"inventory\", \"options\": {\"min-ms\": " inventory_ms ", \"max-ms\": " inventory_ms ", \"phase\": \"inventory\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 5, \"max-ms\": 5}}]," \
  " \"group\": {\"min-devices\": 1, \"max-devices\": 0, \"max-wait\": 5, \"wait-for-all\": true}}"
#define SLOW_V3 \
  "{\"name\": \"slow\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"inventory\", \"options\": {\"min-ms\": 1, \"max-ms\": 1, \"phase\": \"inventory\"}}," \
  " {\"step\": \"sim\", \"id\": \"firmware-update\", \"options\": {\"min-ms\": 1, \"max-ms\": 1, \"phase\": \"inventory\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 5, \"max-ms\": 5}}]," \
  " \"group\": {\"min-devices\": 1, \"max-devices\": 0, \"max-wait\": 5, \"wait-for-all\": true}}"
#define COMMIT_C "cccccccccccccccccccccccccccccccccccccccc"

/* what the daemon's recipe repository would have in its clone: "slow" at
 * COMMIT_A (version 1), nothing at any other commit */
static ShoalRecipe *
load_slow_v1 (const gchar  *name,
              const gchar  *commit,
              gpointer      user_data,
              GError      **error)
{
  guint *calls = user_data;
  ShoalRecipe *recipe;

  (*calls)++;
  if (g_strcmp0 (name, "slow") != 0 || g_strcmp0 (commit, COMMIT_A) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, "no recipe %s in commit %s", name, commit);
      return NULL;
    }
  recipe = shoal_test_recipe_new (SLOW_V1 ("1"));
  shoal_recipe_set_commit (recipe, COMMIT_A);
  return recipe;
}

static gboolean
in_inventory (gpointer data)
{
  Fixture *fixture = data;
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (fixture->controller);

  for (guint i = 0; i < devices->len; i++)
    if (g_strcmp0 (shoal_device_get_current_step (g_ptr_array_index (devices, i)), "inventory") != 0)
      return FALSE;
  return TRUE;
}

/* Stops the controller once what it shows is durable, and opens a new one
 * on the same state directory, as a restart of shoald would */
static void
restart (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  shoal_controller_close (fixture->controller);
  g_clear_object (&fixture->controller);
  fixture->controller = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_true (shoal_controller_open (fixture->controller, &error));
  g_assert_no_error (error);
}

/* Resumes the deployments restart() interrupted, serving on @server */
static void
resume (Fixture    *fixture,
        SoupServer *server)
{
  g_autoptr(GError) error = NULL;
  GLogLevelFlags fatal;

  shoal_controller_set_http_server (fixture->controller, server, "http://127.0.0.1:9");
  /* what resumes the deployments also starts the plugins' services, some
   * of which need a network and say so */
  fatal = g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_assert_true (shoal_controller_start_services (fixture->controller, &error));
  g_log_set_always_fatal (fatal);
  g_assert_no_error (error);
}

/* An interrupted deployment resumes with its recipe at the commit it
 * recorded, where the recipe in service changed meanwhile: it resumed at
 * its old step number in the new version (here firmware-update, never
 * its inventory step) and journalled the new version's commit as the
 * one installed. The devices resumed at one commit share its rendezvous
 * (one group); one whose commit cannot be loaded fails and says why */
static void
test_controller_resume_at_commit (Fixture       *fixture,
                                  gconstpointer  data)
{
  g_autofree gchar *resumed = NULL;
  g_autofree gchar *complete = NULL;
  g_autofree gchar *failed = NULL;
  g_autofree gchar *finished = NULL;
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  guint *calls = g_new0 (guint, 1);
  ShoalDevice *device;

  add_recipe_at (fixture, SLOW_V1 ("60000"), COMMIT_A);
  enroll_and_deploy_from (fixture, 0, 2, "slow");
  add_recipe_at (fixture, SLOW_V1 ("60001"), COMMIT_C);
  enroll_and_deploy_from (fixture, 2, 1, "slow");
  g_assert_true (shoal_test_wait_until (in_inventory, fixture, 10000));
  restart (fixture);

  /* the repository moved on to version 3 while the daemon was down */
  add_recipe_at (fixture, SLOW_V3, COMMIT_B);
  shoal_controller_set_recipe_loader (fixture->controller, load_slow_v1, calls, g_free);
  resume (fixture, server);
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  /* loaded once for the two devices of COMMIT_A, once for COMMIT_C */
  g_assert_cmpuint (*calls, ==, 2);
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 2);
  g_assert_cmpstr (group_of (fixture, 0), ==, group_of (fixture, 1));

  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  resumed = last_message (fixture, device, "controller", "resume");
  g_test_message ("%s", resumed);
  g_assert_nonnull (strstr (resumed, "of recipe slow at commit " COMMIT_A " after a restart at step 2 of 3 (inventory)"));
  complete = last_message (fixture, device, "controller", "installed");
  g_assert_nonnull (complete);
  g_assert_nonnull (strstr (complete, "at commit " COMMIT_A));
  g_assert_null (last_message (fixture, device, "firmware-update", "step-started"));
  finished = last_message (fixture, device, "inventory", "step-finished");
  g_assert_nonnull (finished);
  g_assert_cmpstr (shoal_device_get_recipe_commit (device), ==, COMMIT_A);

  device = shoal_controller_lookup_device (fixture->controller, "dev-0002");
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_FAILED);
  failed = last_message (fixture, device, "controller", "step-failed");
  g_test_message ("%s", failed);
  g_assert_nonnull (failed);
  g_assert_nonnull (strstr (failed, "recipe slow at commit " COMMIT_C));
  g_assert_nonnull (strstr (failed, "cannot be loaded"));
}

/* Boots one at a time, 700 ms each, for groups of at least 3 that
 * max-wait (1 s) alone does not start */
#define MIN_RECIPE \
  "{\"name\": \"min\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"max-parallel\": 1," \
  "  \"options\": {\"min-ms\": 700, \"max-ms\": 700, \"phase\": \"boot\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 50, \"max-ms\": 50}}]," \
  " \"group\": {\"min-devices\": 3, \"max-wait\": 1}}"

/* min-devices is a floor: max-wait does not start a group with fewer;
 * they go with fewer only when no other device can still come (the
 * third was cancelled), and their journals say so */
static void
test_controller_min_devices (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  ShoalDevice *devices[3];

  add_recipe (fixture, MIN_RECIPE);
  enroll_and_deploy_from (fixture, 0, 3, "min");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 5000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 3);
  g_assert_cmpstr (group_of (fixture, 0), ==, group_of (fixture, 1));
  g_assert_cmpstr (group_of (fixture, 0), ==, group_of (fixture, 2));

  enroll_and_deploy_from (fixture, 3, 3, "min");
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i + 3);

      devices[i] = shoal_controller_lookup_device (fixture->controller, id);
    }
  wait_for_state (devices[1], SHOAL_DEVICE_STATE_WAITING);
  g_assert_cmpint (shoal_device_get_state (devices[0]), ==, SHOAL_DEVICE_STATE_WAITING);
  g_assert_true (shoal_controller_cancel (fixture->controller, devices[2], &error));
  g_assert_no_error (error);
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 3000));
  for (guint i = 0; i < 2; i++)
    {
      g_autofree gchar *warning = last_message (fixture, devices[i], "controller", "rendezvous");

      g_assert_cmpint (shoal_device_get_state (devices[i]), ==, SHOAL_DEVICE_STATE_INSTALLED);
      g_assert_nonnull (warning);
      g_assert_nonnull (strstr (warning, "fewer than min-devices 3: no other device can still come"));
    }
  g_assert_cmpstr (group_of (fixture, 3), ==, group_of (fixture, 4));
}

/* The agents of late devices, simulated: each one told to fetch the image
 * by the step unicast reports it written @delay_ms later */
typedef struct {
  guint delay_ms;
  guint fetching;       /* told to fetch, not yet reported written */
  guint most;
  guint written;
} LateAgents;

typedef struct {
  ShoalDevice *device;
  JsonNode    *payload;
  LateAgents  *agents;
} ImageWritten;

static void
image_written_free (gpointer data)
{
  ImageWritten *written = data;

  g_object_unref (written->device);
  json_node_unref (written->payload);
  g_free (written);
}

static gboolean
post_image_written (gpointer data)
{
  ImageWritten *written = data;

  written->agents->fetching--;
  written->agents->written++;
  shoal_device_post_event (written->device, "image-written", written->payload);
  return G_SOURCE_REMOVE;
}

static void
late_agent_instruction_cb (ShoalDevice *device,
                           GParamSpec  *pspec,
                           LateAgents  *agents)
{
  JsonNode *node = shoal_device_get_instruction (device);
  JsonObject *instruction = node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  g_autoptr(JsonBuilder) builder = NULL;
  ImageWritten *written;

  if (instruction == NULL ||
      g_strcmp0 (json_object_get_string_member_with_default (instruction, "action", NULL),
                 "unicast-receive") != 0)
    return;
  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "bytes");
  json_builder_add_int_value (builder, json_object_get_int_member (instruction, "size"));
  json_builder_set_member_name (builder, "image");
  json_builder_add_string_value (builder, json_object_get_string_member (instruction, "image"));
  json_builder_end_object (builder);
  written = g_new0 (ImageWritten, 1);
  written->device = g_object_ref (device);
  written->payload = json_builder_get_root (builder);
  written->agents = agents;
  agents->fetching++;
  agents->most = MAX (agents->most, agents->fetching);
  g_timeout_add_full (G_PRIORITY_DEFAULT, agents->delay_ms, post_image_written, written, image_written_free);
}

/* A recipe whose group step (@group_ms, @extra its further members)
 * starts as soon as one device is there, with late-fallback "unicast";
 * devices boot one at a time (@boot_ms each) and end with a finish step.
 * The unicast step imports a small image file of the state directory and
 * gives an address no agent fetches from: the agents are simulated */
static void
add_late_recipe (Fixture     *fixture,
                 guint        boot_ms,
                 guint        group_ms,
                 const gchar *extra)
{
  g_autofree gchar *image = g_build_filename (fixture->state_dir, "late-os.img", NULL);
  g_autofree gchar *bytes = g_malloc (200 * 1024);
  g_autofree gchar *json = NULL;
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr(GRand) rand = g_rand_new_with_seed (11);

  for (guint i = 0; i < 200 * 1024; i++)
    bytes[i] = (gchar) g_rand_int (rand);
  g_assert_true (g_file_set_contents (image, bytes, 200 * 1024, NULL));
  shoal_controller_set_http_server (fixture->controller, server, "http://127.0.0.1:9");
  json = g_strdup_printf ("{\"name\": \"late\", \"image\": {\"name\": \"late-os\", \"file\": \"%s\"}, \"steps\": ["
                          " {\"step\": \"sim\", \"id\": \"boot\", \"max-parallel\": 1,"
                          "  \"options\": {\"min-ms\": %u, \"max-ms\": %u, \"phase\": \"boot\"}},"
                          " {\"step\": \"sim-group\", \"id\": \"multicast\"%s,"
                          "  \"options\": {\"min-ms\": %u, \"max-ms\": %u}},"
                          " {\"step\": \"sim\", \"id\": \"finish\", \"options\": {\"min-ms\": 1, \"max-ms\": 5, \"phase\": \"finish\"}}],"
                          " \"group\": {\"min-devices\": 1, \"max-wait\": 1, \"late-fallback\": \"unicast\"}}",
                          image, boot_ms, boot_ms, extra, group_ms, group_ms);
  add_recipe (fixture, json);
}

static void
late_agents_connect (Fixture    *fixture,
                     LateAgents *agents)
{
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (fixture->controller);

  for (guint i = 0; i < devices->len; i++)
    g_signal_connect (g_ptr_array_index (devices, i), "notify::instruction",
                      G_CALLBACK (late_agent_instruction_cb), agents);
}

static void
late_agents_disconnect (Fixture    *fixture,
                        LateAgents *agents)
{
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (fixture->controller);

  for (guint i = 0; i < devices->len; i++)
    g_signal_handlers_disconnect_by_data (g_ptr_array_index (devices, i), agents);
}

/* A device reaching the group step while a group of it runs, with
 * late-fallback "unicast", runs the step unicast in its place: it does
 * not start a group of its own, fetches the image on its own and goes on
 * to the end of its pipeline */
static void
test_controller_late_unicast (Fixture       *fixture,
                              gconstpointer  data)
{
  LateAgents agents = { .delay_ms = 100 };
  g_autofree gchar *late = NULL;
  g_autofree gchar *started = NULL;
  g_autofree gchar *finished = NULL;
  g_autofree gchar *written = NULL;
  ShoalDevice *first, *second;

  add_late_recipe (fixture, 300, 1500, "");
  enroll_and_deploy (fixture, 2, "late");
  late_agents_connect (fixture, &agents);
  first = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  second = shoal_controller_lookup_device (fixture->controller, "dev-0001");
  wait_for_state (first, SHOAL_DEVICE_STATE_TRANSFER);
  wait_for_state (second, SHOAL_DEVICE_STATE_INSTALLED);
  /* installed by its own transfer, while the group's still ran */
  g_assert_cmpint (shoal_device_get_state (first), ==, SHOAL_DEVICE_STATE_TRANSFER);
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 5000));
  late_agents_disconnect (fixture, &agents);
  g_assert_cmpint (shoal_device_get_state (first), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpuint (agents.written, ==, 1);

  late = last_message (fixture, second, "controller", "late-fallback");
  started = last_message (fixture, second, "multicast", "step-started");
  finished = last_message (fixture, second, "multicast", "step-finished");
  written = last_message (fixture, second, "multicast", "unicast");
  g_assert_nonnull (late);
  g_assert_nonnull (strstr (late, "late-fallback unicast"));
  g_assert_nonnull (started);
  g_assert_nonnull (strstr (started, "(unicast) started"));
  g_assert_nonnull (finished);
  g_assert_nonnull (strstr (finished, "(unicast) finished"));
  g_assert_nonnull (written);
  g_assert_nonnull (strstr (written, "Image late-os"));
  g_assert_nonnull (strstr (written, "written"));
  g_assert_null (shoal_device_get_group (second));
  g_assert_nonnull (shoal_device_get_metadata (second, "image.id"));
  assert_journal_complete (fixture, second, 3);
  assert_journal_complete (fixture, first, 3);
}

/* The late devices that run the step unicast in place of a group step
 * are held to the group step's max-parallel (2): the others wait for a
 * free slot, and go once one frees */
static void
test_controller_late_unicast_max_parallel (Fixture       *fixture,
                                           gconstpointer  data)
{
  LateAgents agents = { .delay_ms = 800 };
  guint waited = 0;

  add_late_recipe (fixture, 100, 2000, ", \"max-parallel\": 2");
  enroll_and_deploy (fixture, 5, "late");
  late_agents_connect (fixture, &agents);
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  late_agents_disconnect (fixture, &agents);
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 5);
  g_assert_cmpuint (agents.written, ==, 4);
  g_assert_cmpuint (agents.most, ==, 2);
  g_assert_nonnull (group_of (fixture, 0));
  for (guint i = 1; i < 5; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);
      ShoalDevice *device = shoal_controller_lookup_device (fixture->controller, id);
      g_autofree gchar *message = last_message (fixture, device, "controller", "late-fallback");
      g_autofree gchar *finished = last_message (fixture, device, "multicast", "step-finished");

      g_assert_null (shoal_device_get_group (device));
      g_assert_nonnull (finished);
      g_assert_nonnull (strstr (finished, "(unicast) finished"));
      waited += message != NULL && strstr (message, "waits for a free slot") != NULL;
      assert_journal_complete (fixture, device, 3);
    }
  g_assert_cmpuint (waited, >=, 1);
}

typedef struct {
  guint running;        /* devices in their group step, by their journals */
  guint most;
} Concurrency;

static void
group_step_journal_cb (ShoalController   *controller,
                       ShoalDevice       *device,
                       ShoalJournalEntry *entry,
                       Concurrency       *concurrency)
{
  const gchar *operation = shoal_journal_entry_get_operation (entry);

  if (g_strcmp0 (shoal_journal_entry_get_source (entry), "multicast") != 0)
    return;
  if (g_strcmp0 (operation, "step-started") == 0)
    concurrency->running++;
  else if (g_strcmp0 (operation, "step-finished") == 0 || g_strcmp0 (operation, "step-failed") == 0)
    concurrency->running--;
  concurrency->most = MAX (concurrency->most, concurrency->running);
}

/* max-parallel of a group step counts groups: a group formed while as
 * many run waits, its members waiting, until one of them ends */
static void
test_controller_group_max_parallel (Fixture       *fixture,
                                    gconstpointer  data)
{
  Concurrency concurrency = { 0 };
  guint waited = 0;
  gint64 start = g_get_monotonic_time ();

  g_signal_connect (fixture->controller, "journal-appended", G_CALLBACK (group_step_journal_cb), &concurrency);
  add_recipe (fixture, SLOW_GROUP_RECIPE ("mp", "400", "1", ", \"max-parallel\": 1"));
  enroll_and_deploy (fixture, 3, "mp");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 5000));
  g_signal_handlers_disconnect_by_data (fixture->controller, &concurrency);
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 3);
  g_assert_cmpuint (concurrency.most, ==, 1);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 1200 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpstr (group_of (fixture, 0), !=, group_of (fixture, 1));
  g_assert_cmpstr (group_of (fixture, 1), !=, group_of (fixture, 2));
  /* the two groups formed after the first one waited */
  for (guint i = 0; i < 3; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);
      g_autofree gchar *message = last_message (fixture, shoal_controller_lookup_device (fixture->controller, id),
                                                "controller", "rendezvous");

      waited += message != NULL && strstr (message, "waits for a free slot") != NULL;
    }
  g_assert_cmpuint (waited, ==, 2);
}

/* Pipelines wait while the store cannot write and go on once it can:
 * the file-size limit stops the WAL from growing, as a full disk would */
static void
test_controller_store_outage (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autofree gchar *wal = g_build_filename (fixture->state_dir, "shoal.db-wal", NULL);
  g_autoptr(GPtrArray) devices = NULL;
  struct rlimit old_limit, limit;
  struct stat st;

  add_recipe (fixture, FAST_RECIPE ("fast", "10", "0"));
  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  g_assert_cmpint (stat (wal, &st), ==, 0);
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &old_limit), ==, 0);
  limit = old_limit;
  limit.rlim_cur = (rlim_t) st.st_size;
  signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);

  g_test_expect_message ("Shoal", G_LOG_LEVEL_WARNING, "*writing failed*");
  enroll_and_deploy (fixture, 3, "fast");
  shoal_test_wait_until (never, NULL, 500);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 0);

  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old_limit), ==, 0);
  signal (SIGXFSZ, SIG_DFL);
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 30000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 3);
  devices = shoal_controller_get_devices (fixture->controller);
  for (guint i = 0; i < devices->len; i++)
    assert_journal_complete (fixture, g_ptr_array_index (devices, i), 4);
}

static gboolean
device_settled (gpointer data)
{
  return !shoal_device_state_is_active (shoal_device_get_state (data));
}

/* The message the device's deployment failed with */
static gchar *
failure_of (Fixture     *fixture,
            ShoalDevice *device)
{
  g_autoptr(GPtrArray) entries = NULL;

  g_assert_true (shoal_test_wait_until (device_settled, device, 10000));
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_FAILED);
  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  entries = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  for (guint i = entries->len; i > 0; i--)
    {
      ShoalJournalEntry *entry = g_ptr_array_index (entries, i - 1);

      if (g_str_equal (shoal_journal_entry_get_operation (entry), "step-failed"))
        return g_strdup (shoal_journal_entry_get_message (entry));
    }
  g_assert_not_reached ();
}

/* A new deployment starts from no metadata but the machine's own: what
 * the steps of the previous one left (its agent, which the agent service
 * would serve at once, its driver selection, image, multicast session,
 * addresses, a plugin's key) is gone, and a recipe without the drivers
 * step fails at its agent step as it does for a device never deployed.
 * The driver selection of the first deployment built the second one's
 * agent before */
static void
test_controller_redeploy_forgets_run (Fixture       *fixture,
                                      gconstpointer  data)
{
  const gchar *cleared[] = { "agent.base", "agent.device-part", "agent.sha256", "agent.size",
                             "agent.address", "drivers", "drivers.kernel", "image.id",
                             "image.sha256", "multicast.session", "multicast.node",
                             "multicast.outcome", "pxe.ip", "pxe.kernel", "example.key" };
  const gchar *macs[] = { "52:54:00:00:02:00", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree gchar *fresh_failure = NULL;
  g_autofree gchar *again_failure = NULL;
  g_autofree gchar *expected = NULL;
  g_auto(GStrv) parts = NULL;
  ShoalDevice *device, *fresh;

  add_recipe (fixture, FAST_RECIPE ("fast", "10", "0"));
  add_recipe (fixture, "{\"name\": \"no-drivers\", \"steps\": [{\"step\": \"agent\", \"id\": \"agent\"}]}");
  enroll_and_deploy (fixture, 1, "fast");
  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  g_assert_true (shoal_test_wait_until (device_settled, device, 10000));
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  /* what the steps of a real first deployment leave */
  for (guint i = 0; i < G_N_ELEMENTS (cleared); i++)
    shoal_device_set_metadata (device, cleared[i], "old");
  shoal_device_set_metadata (device, "drivers", "e1000 virtio_net");
  shoal_device_set_metadata (device, "drivers.kernel", fixture->state_dir);
  shoal_device_set_metadata (device, "pxe.client", "ipxe");
  shoal_device_set_metadata (device, "pxe.arch", "7");

  g_assert_true (shoal_controller_assign_recipe (fixture->controller, device, "no-drivers", &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_deploy (fixture->controller, device, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (cleared); i++)
    g_assert_null (shoal_device_get_metadata (device, cleared[i]));
  g_assert_cmpstr (shoal_device_get_metadata (device, "pxe.client"), ==, "ipxe");
  g_assert_cmpstr (shoal_device_get_metadata (device, "pxe.arch"), ==, "7");
  again_failure = failure_of (fixture, device);

  fresh = shoal_controller_enroll_device (fixture->controller, "dev-fresh", macs, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (fixture->controller, fresh, "no-drivers", &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_deploy (fixture->controller, fresh, &error));
  g_assert_no_error (error);
  fresh_failure = failure_of (fixture, fresh);
  g_assert_nonnull (strstr (fresh_failure, "has no driver selection"));
  /* the same words, but for the device's name */
  parts = g_strsplit (fresh_failure, "dev-fresh", -1);
  expected = g_strjoinv ("dev-0000", parts);
  g_assert_cmpstr (again_failure, ==, expected);
}

/* the message of @device's last journal entry of @operation, or NULL */
static gchar *
last_entry (Fixture     *fixture,
            ShoalDevice *device,
            const gchar *operation)
{
  g_autoptr(GPtrArray) entries = NULL;

  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  entries = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  for (guint i = entries->len; i > 0; i--)
    {
      ShoalJournalEntry *entry = g_ptr_array_index (entries, i - 1);

      if (g_strcmp0 (shoal_journal_entry_get_operation (entry), operation) == 0)
        return g_strdup (shoal_journal_entry_get_message (entry));
    }
  return NULL;
}

#define UUID_1 "11111111-2222-3333-4444-555555555555"
#define UUID_2 "22222222-2222-3333-4444-555555555555"
#define UUID_3 "33333333-2222-3333-4444-555555555555"

/* A UUID is one device's: a second enrollment with it is refused, naming
 * the first; placeholder UUIDs of cheap boards identify nothing */
static void
test_controller_uuid_unique (Fixture       *fixture,
                             gconstpointer  data)
{
  const gchar *macs1[] = { "52:54:00:00:20:01", NULL };
  const gchar *macs2[] = { "52:54:00:00:20:02", NULL };
  const gchar *macs3[] = { "52:54:00:00:20:03", NULL };
  const gchar *macs4[] = { "52:54:00:00:20:04", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree gchar *note = NULL;
  ShoalDevice *u1, *p1, *p2;

  u1 = shoal_controller_enroll_device (fixture->controller, "u1", macs1, UUID_1, &error);
  g_assert_no_error (error);
  g_assert_null (shoal_controller_enroll_device (fixture->controller, "u2", macs2, UUID_1, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
  g_assert_nonnull (strstr (error->message, "device u1"));
  g_clear_error (&error);
  /* in another case it is the same UUID */
  g_assert_nonnull (shoal_controller_enroll_device (fixture->controller, "u3", macs2,
                                                    "AAAAAAAA-2222-3333-4444-555555555555", &error));
  g_assert_no_error (error);
  g_assert_null (shoal_controller_enroll_device (fixture->controller, "u4", macs3,
                                                 "aaaaaaaa-2222-3333-4444-555555555555", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
  g_assert_nonnull (strstr (error->message, "device u3"));
  g_clear_error (&error);
  g_assert_null (shoal_controller_lookup_device (fixture->controller, "u2"));
  g_assert_true (shoal_controller_lookup_device_by_uuid (fixture->controller, UUID_1) == u1);

  /* placeholders: never an identity, so never a conflict */
  p1 = shoal_controller_enroll_device (fixture->controller, "p1", macs3,
                                       "00000000-0000-0000-0000-000000000000", &error);
  g_assert_no_error (error);
  p2 = shoal_controller_enroll_device (fixture->controller, "p2", macs4,
                                       "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", &error);
  g_assert_no_error (error);
  g_assert_null (shoal_device_get_uuid (p1));
  g_assert_null (shoal_device_get_uuid (p2));
  note = last_entry (fixture, p1, "enroll");
  g_assert_nonnull (strstr (note, "placeholder"));
  g_assert_null (shoal_controller_lookup_device_by_uuid (fixture->controller,
                                                         "00000000-0000-0000-0000-000000000000"));
}

/* 36 bytes that are no UUID: what the audit sent as ?uuid= to draw on
 * shoalctl's terminal */
#define JUNK_UUID "\033]0;pwned\a\033[2J\033[31mFAKE-UUID-LINE\nxx"

/* A UUID is 8-4-4-4-12 hex digits with dashes: enrolling anything else
 * fails (InvalidArgument), a boot that brings anything else counts as
 * one without a UUID, and a valid one is kept in lower case */
static void
test_controller_uuid_malformed (Fixture       *fixture,
                                gconstpointer  data)
{
  const gchar *macs1[] = { "52:54:00:00:30:01", NULL };
  const gchar *macs2[] = { "52:54:00:00:30:02", NULL };
  const gchar *bad[] = { JUNK_UUID, "aaaaaaaa-2222-3333-4444-55555555555g", "aaaaaaaa22223333444455555555555555",
                         "{aaaaaaaa-2222-3333-4444-555555555555}", "aaaaaaaa-2222-3333-4444-555555555555 " };
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) journal = NULL;
  ShoalDevice *device;

  g_assert_cmpuint (strlen (JUNK_UUID), ==, 36);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_false (shoal_controller_uuid_is_valid (bad[i]));
      g_assert_null (shoal_controller_enroll_device (fixture->controller, "m1", macs1, bad[i], &error));
      g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
      g_assert_null (strchr (error->message, '\033'));
      g_clear_error (&error);
    }
  g_assert_null (shoal_controller_lookup_device (fixture->controller, "m1"));
  g_assert_true (shoal_controller_uuid_is_valid ("AAAAAAAA-2222-3333-4444-55555555555f"));
  device = shoal_controller_enroll_device (fixture->controller, "m1", macs1,
                                           "AAAAAAAA-2222-3333-4444-55555555555F", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_uuid (device), ==, "aaaaaaaa-2222-3333-4444-55555555555f");

  /* discovery: the junk is dropped, the machine known by its MAC */
  device = shoal_controller_device_seen (fixture->controller, macs2[0], JUNK_UUID, "http", &error);
  g_assert_no_error (error);
  g_assert_nonnull (device);
  g_assert_null (shoal_device_get_uuid (device));
  journal = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  for (guint i = 0; journal != NULL && i < journal->len; i++)
    g_assert_null (strchr (shoal_journal_entry_get_message (g_ptr_array_index (journal, i)), '\033'));
}

/* how many of @device's journal entries have operation @operation */
static guint
count_operation (Fixture     *fixture,
                 ShoalDevice *device,
                 const gchar *operation)
{
  g_autoptr(GPtrArray) journal = NULL;
  guint n = 0;

  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  journal = shoal_controller_get_journal (fixture->controller, device, 0, NULL);
  for (guint i = 0; journal != NULL && i < journal->len; i++)
    if (g_strcmp0 (shoal_journal_entry_get_operation (g_ptr_array_index (journal, i)), operation) == 0)
      n++;
  return n;
}

/* A booting machine's MAC and UUID must name the same device: when they
 * do not, it is deployed as neither, and both devices journal why; a
 * known UUID with a new MAC gets the MAC recorded, journaled */
static void
test_controller_seen_identity (Fixture       *fixture,
                               gconstpointer  data)
{
  const gchar *macs1[] = { "52:54:00:00:40:01", NULL };
  const gchar *macs2[] = { "52:54:00:00:40:02", NULL };
  const gchar *macs3[] = { "52:54:00:00:40:03", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree gchar *note1 = NULL, *note2 = NULL, *note3 = NULL, *note4 = NULL;
  ShoalDevice *k1, *k2, *k3, *seen;
  const gchar * const *macs;

  k1 = shoal_controller_enroll_device (fixture->controller, "k1", macs1, UUID_1, &error);
  g_assert_no_error (error);
  k2 = shoal_controller_enroll_device (fixture->controller, "k2", macs2, UUID_2, &error);
  g_assert_no_error (error);
  k3 = shoal_controller_enroll_device (fixture->controller, "k3", macs3, NULL, &error);
  g_assert_no_error (error);

  /* the MAC is k1's, the UUID k2's */
  g_assert_null (shoal_controller_device_seen (fixture->controller, "52:54:00:00:40:01", UUID_2, "http", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
  g_clear_error (&error);
  note1 = last_entry (fixture, k1, "identity");
  note2 = last_entry (fixture, k2, "identity");
  g_assert_nonnull (note1);
  g_assert_cmpstr (note1, ==, note2);
  g_assert_nonnull (strstr (note1, "device k1"));
  g_assert_nonnull (strstr (note1, "device k2"));
  /* the machine asks again (a DHCP retry, a boot): refused, and not
   * journaled again, so its retries do not push out the history */
  for (guint i = 0; i < 5; i++)
    {
      g_assert_null (shoal_controller_device_seen (fixture->controller, "52:54:00:00:40:01", UUID_2, "dhcp", &error));
      g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
      g_clear_error (&error);
    }
  g_assert_cmpuint (count_operation (fixture, k1, "identity"), ==, 1);
  g_assert_cmpuint (count_operation (fixture, k2, "identity"), ==, 1);

  /* machine 1 with a new NIC: the MAC is recorded on k1 */
  seen = shoal_controller_device_seen (fixture->controller, "52:54:00:00:40:0A", UUID_1, "dhcp", &error);
  g_assert_no_error (error);
  g_assert_true (seen == k1);
  macs = shoal_device_get_macs (k1);
  g_assert_true (g_strv_contains (macs, "52:54:00:00:40:01"));
  g_assert_true (g_strv_contains (macs, "52:54:00:00:40:0a"));
  g_assert_true (shoal_controller_lookup_device_by_mac (fixture->controller, "52:54:00:00:40:0a") == k1);
  note3 = last_entry (fixture, k1, "identity");
  g_assert_nonnull (strstr (note3, "new MAC 52:54:00:00:40:0a"));

  /* another machine carrying machine 1's old NIC is not k1 */
  g_assert_null (shoal_controller_device_seen (fixture->controller, "52:54:00:00:40:01", UUID_3, "http", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
  g_clear_error (&error);
  g_assert_null (shoal_controller_lookup_device_by_uuid (fixture->controller, UUID_3));
  g_clear_pointer (&note1, g_free);
  note1 = last_entry (fixture, k1, "identity");
  g_assert_nonnull (strstr (note1, UUID_3));
  g_assert_nonnull (strstr (note1, "whose UUID is " UUID_1));

  /* without a UUID, or with a placeholder, the MAC decides */
  g_assert_true (shoal_controller_device_seen (fixture->controller, "52:54:00:00:40:01", NULL, "dhcp", NULL) == k1);
  g_assert_true (shoal_controller_device_seen (fixture->controller, "52:54:00:00:40:01",
                                               "03000200-0400-0500-0006-000700080009", "dhcp", NULL) == k1);
  g_assert_cmpstr (shoal_device_get_uuid (k1), ==, UUID_1);

  /* a device enrolled without a UUID learns the one its MAC comes with */
  seen = shoal_controller_device_seen (fixture->controller, "52:54:00:00:40:03", UUID_3, "dhcp", &error);
  g_assert_no_error (error);
  g_assert_true (seen == k3);
  g_assert_cmpstr (shoal_device_get_uuid (k3), ==, UUID_3);
  note4 = last_entry (fixture, k3, "identity");
  g_assert_nonnull (strstr (note4, "uuid " UUID_3 " recorded"));
}

/* @controller's answer to a machine booting with @mac and @uuid: the
 * device, or NULL with the refusal's message in @message */
static ShoalDevice *
seen_or_refused (ShoalController  *controller,
                 const gchar      *mac,
                 const gchar      *uuid,
                 gchar           **message)
{
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_device_seen (controller, mac, uuid, "dhcp", &error);

  g_clear_pointer (message, g_free);
  if (device == NULL)
    {
      g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
      *message = g_strdup (error->message);
    }
  return device;
}

/* A NIC that a device collected (it booted from it) went into another
 * machine: the two machines' boots conflict until the operator takes the
 * MAC off the first device; then the other machine's device records it */
static void
test_controller_remove_mac (Fixture       *fixture,
                            gconstpointer  data)
{
  const gchar *macs1[] = { "52:54:00:00:55:01", "52:54:00:00:55:02", NULL };
  const gchar *macs2[] = { "52:54:00:00:55:03", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree gchar *refusal = NULL;
  g_autofree gchar *note = NULL;
  ShoalDevice *k1, *k2;

  k1 = shoal_controller_enroll_device (fixture->controller, "k1", macs1, UUID_1, &error);
  k2 = shoal_controller_enroll_device (fixture->controller, "k2", macs2, UUID_2, &error);
  g_assert_no_error (error);
  /* machine 2 boots from the NIC that was machine 1's */
  g_assert_null (seen_or_refused (fixture->controller, "52:54:00:00:55:02", UUID_2, &refusal));
  g_assert_nonnull (strstr (refusal, "the MAC belongs to device k1, the UUID to device k2"));

  g_assert_false (shoal_controller_remove_mac (fixture->controller, k1, "52:54:00:00:55:03", "test", NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_true (shoal_controller_remove_mac (fixture->controller, k1, "52:54:00:00:55:02", "test", "operator", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length ((gchar **) shoal_device_get_macs (k1)), ==, 1);
  g_assert_null (shoal_controller_lookup_device_by_mac (fixture->controller, "52:54:00:00:55:02"));
  note = last_entry (fixture, k1, "identity");
  g_assert_cmpstr (note, ==, "MAC 52:54:00:00:55:02 removed by operator: a machine booting from it is no "
                             "longer this device; MACs left: 52:54:00:00:55:01");

  /* now machine 2 is k2, which records the NIC; machine 1 is still k1 */
  g_assert_true (seen_or_refused (fixture->controller, "52:54:00:00:55:02", UUID_2, &refusal) == k2);
  g_assert_true (shoal_device_has_mac (k2, "52:54:00:00:55:02"));
  g_assert_true (shoal_controller_lookup_device_by_mac (fixture->controller, "52:54:00:00:55:02") == k2);
  g_assert_true (seen_or_refused (fixture->controller, "52:54:00:00:55:01", UUID_1, &refusal) == k1);
}

/* UUID look-ups follow every change of a device's UUID (whoever sets it),
 * its removal, and UUIDs that several devices have (a store written
 * before UUIDs were unique): such a UUID names none of them, as before
 * look-ups were indexed, until one is left */
static void
test_controller_uuid_index (Fixture       *fixture,
                            gconstpointer  data)
{
#define U_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define U_B "bbbbbbbb-0000-4000-8000-00000000000b"
#define U_C "cccccccc-0000-4000-8000-00000000000c"
  const gchar *macs_a[] = { "52:54:00:00:50:01", NULL };
  const gchar *macs_b[] = { "52:54:00:00:50:02", NULL };
  const gchar *macs_c[] = { "52:54:00:00:50:03", NULL };
  const gchar *macs_d[] = { "52:54:00:00:50:04", NULL };
  g_autoptr(ShoalController) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *refusal = NULL;
  ShoalController *controller = fixture->controller;
  ShoalDevice *a, *b, *c;

  a = shoal_controller_enroll_device (controller, "a", macs_a, U_A, &error);
  b = shoal_controller_enroll_device (controller, "b", macs_b, U_B, &error);
  c = shoal_controller_enroll_device (controller, "c", macs_c, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_lookup_device_by_uuid (controller, U_A) == a);
  g_assert_true (shoal_controller_lookup_device_by_uuid (controller, "AAAAAAAA-0000-4000-8000-00000000000A") == a);
  g_assert_true (shoal_controller_lookup_device_by_uuid (controller, U_B) == b);
  g_assert_null (shoal_controller_lookup_device_by_uuid (controller, U_C));

  /* a's UUID changes (as a plugin may set it): the old one names nobody */
  shoal_device_set_uuid (a, "CCCCCCCC-0000-4000-8000-00000000000C");
  g_assert_null (shoal_controller_lookup_device_by_uuid (controller, U_A));
  g_assert_true (shoal_controller_lookup_device_by_uuid (controller, U_C) == a);
  g_assert_true (seen_or_refused (controller, macs_a[0], U_C, &refusal) == a);
  g_assert_nonnull (shoal_controller_enroll_device (controller, "d", macs_d, U_A, &error));
  g_assert_no_error (error);

  /* c gets b's UUID, in upper case: two devices have it, it names neither */
  shoal_device_set_uuid (c, "BBBBBBBB-0000-4000-8000-00000000000B");
  g_assert_null (shoal_controller_lookup_device_by_uuid (controller, U_B));
  g_assert_null (seen_or_refused (controller, macs_b[0], U_B, &refusal));
  g_assert_nonnull (strstr (refusal, "2 devices have this UUID (one of them b)"));
  g_assert_null (shoal_controller_enroll_device (controller, "e", NULL, U_B, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS);
  g_assert_nonnull (strstr (error->message, "already belongs to device b"));
  g_clear_error (&error);
  /* c's UUID goes: b is the only one again */
  shoal_device_set_uuid (c, NULL);
  g_assert_true (shoal_controller_lookup_device_by_uuid (controller, U_B) == b);
  g_assert_true (seen_or_refused (controller, macs_b[0], U_B, &refusal) == b);

  /* a store that holds the UUID twice (c's row written with it, as before
   * UUIDs were unique); a's row gets its new UUID */
  shoal_device_set_uuid (c, "BBBBBBBB-0000-4000-8000-00000000000B");
  g_assert_true (shoal_controller_set_boot_action (controller, c, SHOAL_BOOT_ACTION_IGNORE, "test", NULL, &error));
  g_assert_true (shoal_controller_set_boot_action (controller, a, SHOAL_BOOT_ACTION_IGNORE, "test", NULL, &error));
  g_assert_no_error (error);
  shoal_controller_close (controller);
  again = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_true (shoal_controller_open (again, &error));
  g_assert_no_error (error);
  b = shoal_controller_lookup_device (again, "b");
  g_assert_nonnull (b);
  g_assert_null (shoal_controller_lookup_device_by_uuid (again, U_B));
  g_assert_null (seen_or_refused (again, macs_c[0], U_B, &refusal));
  g_assert_nonnull (strstr (refusal, "2 devices have this UUID (one of them b)"));
  g_assert_true (shoal_controller_lookup_device_by_uuid (again, U_C) == shoal_controller_lookup_device (again, "a"));
  /* a device removed no longer counts, and is no longer found */
  g_assert_true (shoal_controller_remove_device (again, "c", &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_lookup_device_by_uuid (again, U_B) == b);
  g_assert_true (shoal_controller_remove_device (again, "b", &error));
  g_assert_no_error (error);
  g_assert_null (shoal_controller_lookup_device_by_uuid (again, U_B));
  /* its UUID is free to enrol again */
  g_assert_nonnull (shoal_controller_enroll_device (again, "b2", macs_b, U_B, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_lookup_device_by_uuid (again, U_B) == shoal_controller_lookup_device (again, "b2"));
  shoal_controller_close (again);
#undef U_A
#undef U_B
#undef U_C
}

#define INV_RECIPE(name, extra) \
  "{\"name\": \"" name "\", " extra " \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"inventory\", \"options\": {\"min-ms\": 300, \"max-ms\": 300, \"phase\": \"inventory\"}}," \
  " {\"step\": \"sim\", \"id\": \"finish\", \"options\": {\"min-ms\": 1, \"max-ms\": 2, \"phase\": \"finish\"}}]}"
#define MEMORY(bytes) "{\"memory\": {\"total_bytes\": " bytes "}}"

static ShoalDevice *
enroll_with_memory (Fixture     *fixture,
                    const gchar *id,
                    const gchar *mac,
                    const gchar *memory)
{
  const gchar *macs[] = { mac, NULL };
  g_autoptr(JsonNode) inventory = json_from_string (memory, NULL);
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (fixture->controller, id, macs, NULL, &error);

  g_assert_no_error (error);
  shoal_device_set_inventory (device, inventory);
  return device;
}

/* deploys @device and, once its first step runs, gives it @memory as
 * the new inventory, as the inventory step does */
static void
deploy_new_inventory (Fixture     *fixture,
                      ShoalDevice *device,
                      const gchar *memory)
{
  g_autoptr(JsonNode) inventory = json_from_string (memory, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (shoal_controller_deploy (fixture->controller, device, &error));
  g_assert_no_error (error);
  while (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INVENTORY)
    g_main_context_iteration (NULL, TRUE);
  shoal_device_set_inventory (device, inventory);
}

/* A recipe chosen by matching an old inventory is chosen again when the
 * run brings a new one: another recipe matching now, with the same
 * steps, takes the run over; one assigned by name is only warned about */
static void
test_controller_inventory_recheck (Fixture       *fixture,
                                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *switched = NULL, *warning = NULL, *none = NULL, *installed = NULL;
  ShoalDevice *h1, *h2, *h3;

  add_recipe (fixture, INV_RECIPE ("inv-big", "\"priority\": 20, \"match\": {\"inventory\": ["
                                   "{\"path\": \"$.memory.total_bytes\", \"op\": \">=\", \"value\": 8589934592}]},"));
  add_recipe (fixture, INV_RECIPE ("inv-small", "\"default\": true,"));
  h1 = enroll_with_memory (fixture, "h1", "52:54:00:00:60:01", MEMORY ("17179869184"));
  h2 = enroll_with_memory (fixture, "h2", "52:54:00:00:60:02", MEMORY ("17179869184"));
  h3 = enroll_with_memory (fixture, "h3", "52:54:00:00:60:03", MEMORY ("17179869184"));
  g_assert_true (shoal_controller_assign_recipe (fixture->controller, h1, NULL, &error));
  g_assert_true (shoal_controller_assign_recipe (fixture->controller, h2, "inv-big", &error));
  g_assert_true (shoal_controller_assign_recipe (fixture->controller, h3, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_recipe (h1), ==, "inv-big");
  g_assert_cmpstr (shoal_device_get_metadata (h1, "recipe.auto"), ==, "true");
  g_assert_null (shoal_device_get_metadata (h2, "recipe.auto"));

  /* RAM swapped: 4 GiB now */
  deploy_new_inventory (fixture, h1, MEMORY ("4294967296"));
  deploy_new_inventory (fixture, h2, MEMORY ("4294967296"));
  /* the same inventory again: nothing to say */
  deploy_new_inventory (fixture, h3, MEMORY ("17179869184"));

  g_assert_true (shoal_test_wait_until (device_settled, h1, 10000));
  g_assert_cmpint (shoal_device_get_state (h1), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpstr (shoal_device_get_recipe (h1), ==, "inv-small");
  switched = last_entry (fixture, h1, "recipe-switch");
  g_test_message ("h1: %s", switched);
  g_assert_nonnull (strstr (switched, "recipe inv-big was chosen by matching an earlier inventory; "
                                      "the new inventory matches recipe inv-small"));
  installed = last_entry (fixture, h1, "installed");
  g_assert_nonnull (strstr (installed, "recipe inv-small"));
  g_assert_cmpstr (shoal_device_get_metadata (h1, "recipe.auto"), ==, "true");

  g_assert_true (shoal_test_wait_until (device_settled, h2, 10000));
  g_assert_cmpint (shoal_device_get_state (h2), ==, SHOAL_DEVICE_STATE_INSTALLED);
  warning = last_entry (fixture, h2, "recipe-check");
  g_assert_nonnull (warning);
  g_assert_nonnull (strstr (warning, "recipe inv-big, which was assigned by name"));

  g_assert_true (shoal_test_wait_until (device_settled, h3, 10000));
  g_assert_cmpint (shoal_device_get_state (h3), ==, SHOAL_DEVICE_STATE_INSTALLED);
  none = last_entry (fixture, h3, "recipe-check");
  g_assert_null (none);
  /* the mark outlives the run: the next one checks again */
  g_assert_cmpstr (shoal_device_get_metadata (h3, "recipe.auto"), ==, "true");
}

/* "plain", the default, for any machine; "big" for 8 GiB or more, with a
 * step of its own after the same inventory step, and a group step;
 * "other" for 64 GiB or more, whose first step is another one */
#define SWITCH_GROUP "\"group\": {\"min-devices\": 1, \"max-devices\": 10, \"max-wait\": 30, \"wait-for-all\": true}"
#define SWITCH_INVENTORY \
  " {\"step\": \"sim\", \"id\": \"inventory\", \"options\": {\"min-ms\": 200, \"max-ms\": 200, \"phase\": \"inventory\"}},"
#define SWITCH_GROUP_STEP " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 5, \"max-ms\": 10}},"
#define SWITCH_FINISH " {\"step\": \"sim\", \"id\": \"finish\", \"options\": {\"min-ms\": 1, \"max-ms\": 2, \"phase\": \"finish\"}}"
#define SWITCH_PLAIN \
  "{\"name\": \"plain\", \"default\": true, \"steps\": [" SWITCH_INVENTORY SWITCH_GROUP_STEP SWITCH_FINISH "], " \
  SWITCH_GROUP "}"
#define SWITCH_BIG \
  "{\"name\": \"big\", \"priority\": 20, \"match\": {\"inventory\": [" \
  "{\"path\": \"$.memory.total_bytes\", \"op\": \">=\", \"value\": 8589934592}]}, \"steps\": [" SWITCH_INVENTORY \
  " {\"step\": \"sim\", \"id\": \"agent-big\", \"options\": {\"min-ms\": 1500, \"max-ms\": 1500, \"phase\": \"agent\"}}," \
  SWITCH_GROUP_STEP SWITCH_FINISH "], " SWITCH_GROUP "}"
#define SWITCH_OTHER \
  "{\"name\": \"other\", \"priority\": 30, \"match\": {\"inventory\": [" \
  "{\"path\": \"$.memory.total_bytes\", \"op\": \">=\", \"value\": 68719476736}]}, \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 1, \"max-ms\": 2, \"phase\": \"boot\"}}," \
  SWITCH_INVENTORY SWITCH_FINISH "]}"

static void
add_switch_recipes (Fixture *fixture)
{
  add_recipe (fixture, SWITCH_PLAIN);
  add_recipe_at (fixture, SWITCH_BIG, COMMIT_B);
  add_recipe (fixture, SWITCH_OTHER);
}

/* enrols @id without an inventory, as discovery does, and assigns its
 * recipe by matching: "plain" */
static ShoalDevice *
enroll_discovered (Fixture     *fixture,
                   const gchar *id,
                   const gchar *mac)
{
  const gchar *macs[] = { mac, NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (fixture->controller, id, macs, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (fixture->controller, device, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_recipe (device), ==, "plain");
  return device;
}

static gboolean
in_step_agent_big (gpointer data)
{
  return g_strcmp0 (shoal_device_get_current_step (data), "agent-big") == 0;
}

/* A machine discovered without an inventory got the default recipe by
 * matching; when its inventory step brings one that an inventory-based
 * recipe matches, with the same first steps, the deployment goes on with
 * that recipe at the next step: journaled, its commit recorded, counted
 * at the new recipe's rendezvous and no longer at the old one's (where a
 * device waiting for every device expected would wait for it until
 * max-wait), in the store with the step (a restart resumes it in the
 * new recipe). A recipe whose first steps differ cannot take it over: the
 * deployment fails as before, saying why */
static void
test_controller_inventory_recipe_switch (Fixture       *fixture,
                                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autofree gchar *switched = NULL, *installed = NULL, *finished = NULL;
  g_autofree gchar *failure = NULL;
  g_autoptr(ShoalRecipe) big = shoal_test_recipe_new (SWITCH_BIG);
  guint n_rows = 0;
  ShoalDevice *d0, *d1, *d2, *d3;

  add_switch_recipes (fixture);
  /* d0 deploys "plain", named, with d1 expected at its rendezvous */
  d0 = enroll_with_memory (fixture, "d0", "52:54:00:00:70:00", MEMORY ("4294967296"));
  g_assert_true (shoal_controller_assign_recipe (fixture->controller, d0, "plain", &error));
  g_assert_no_error (error);
  d1 = enroll_discovered (fixture, "d1", "52:54:00:00:70:01");
  g_assert_true (shoal_controller_deploy (fixture->controller, d0, &error));
  g_assert_no_error (error);
  deploy_new_inventory (fixture, d1, MEMORY ("17179869184"));

  /* d0 does not wait 30 s for d1, which left "plain" */
  g_assert_true (shoal_test_wait_until (device_settled, d0, 10000));
  g_assert_cmpint (shoal_device_get_state (d0), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_true (shoal_test_wait_until (device_settled, d1, 10000));
  g_assert_cmpint (shoal_device_get_state (d1), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpstr (shoal_device_get_recipe (d1), ==, "big");
  g_assert_cmpstr (shoal_device_get_recipe_commit (d1), ==, COMMIT_B);
  g_assert_cmpstr (shoal_device_get_metadata (d1, "recipe.auto"), ==, "true");
  switched = last_entry (fixture, d1, "recipe-switch");
  g_test_message ("d1: %s", switched);
  g_assert_cmpstr (switched, ==, "recipe plain was chosen by matching an earlier inventory; the new inventory "
                                 "matches recipe big (commit " COMMIT_B "), which starts with the step this deployment "
                                 "ran: deployment 1 goes on with it at step 2 of 4 (agent-big)");
  finished = last_message (fixture, d1, "agent-big", "step-finished");
  g_assert_nonnull (finished);
  installed = last_entry (fixture, d1, "installed");
  g_assert_nonnull (strstr (installed, "recipe big at commit " COMMIT_B));
  g_assert_null (last_entry (fixture, d1, "step-failed"));

  /* the switch is in the store with the step it follows: a restart
   * resumes d2 at step 2 of "big" */
  d2 = enroll_discovered (fixture, "d2", "52:54:00:00:70:02");
  deploy_new_inventory (fixture, d2, MEMORY ("17179869184"));
  g_assert_true (shoal_test_wait_until (in_step_agent_big, d2, 10000));
  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  rows = shoal_store_load_devices (shoal_controller_get_store (fixture->controller), &error);
  g_assert_no_error (error);
  for (guint i = 0; i < rows->len; i++)
    {
      ShoalStoreDevice *row = g_ptr_array_index (rows, i);

      if (g_strcmp0 (row->id, "d2") != 0)
        continue;
      g_assert_cmpstr (row->recipe, ==, "big");
      g_assert_cmpstr (row->recipe_commit, ==, COMMIT_B);
      /* the digest a resumption checks is the new recipe's too */
      g_assert_cmpstr (row->recipe_digest, ==, shoal_recipe_get_digest (big));
      g_assert_cmpint (row->step_index, ==, 1);
      g_assert_cmpstr (row->current_step, ==, "agent-big");
      n_rows++;
    }
  g_assert_cmpuint (n_rows, ==, 1);
  g_assert_true (shoal_test_wait_until (device_settled, d2, 10000));
  g_assert_cmpint (shoal_device_get_state (d2), ==, SHOAL_DEVICE_STATE_INSTALLED);

  /* "other" matches 128 GiB but starts with another step */
  d3 = enroll_discovered (fixture, "d3", "52:54:00:00:70:03");
  deploy_new_inventory (fixture, d3, MEMORY ("137438953472"));
  failure = failure_of (fixture, d3);
  g_test_message ("d3: %s", failure);
  g_assert_cmpstr (failure, ==, "recipe plain was chosen by matching an earlier inventory, but the new "
                                "inventory matches recipe other, which cannot take the deployment over (its "
                                "step 1 is boot (sim) where this deployment ran inventory (sim)): the deployment "
                                "stops; redeploy (shoalctl assign --auto d3, then shoalctl deploy d3)");
  g_assert_cmpstr (shoal_device_get_recipe (d3), ==, "plain");
  g_assert_cmpint (shoal_controller_get_boot_action (fixture->controller, d3), ==, SHOAL_BOOT_ACTION_LOCAL);
}

/* Recipe "added" (over D-Bus): past its first group step, its devices
 * wait at the rendezvous of the second for a third device that does not
 * come, max-wait (3 s), with no step running; version 2 has a step
 * between the two */
#define ADDED_HEAD(name) \
  "{\"name\": \"" name "\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 1, \"max-ms\": 1, \"phase\": \"boot\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"early\", \"options\": {\"min-ms\": 1, \"max-ms\": 1}},"
#define ADDED_TAIL \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 5, \"max-ms\": 5}}]," \
  " \"group\": {\"min-devices\": 3, \"max-devices\": 0, \"max-wait\": 3}}"
#define ADDED_V1(name) ADDED_HEAD (name) ADDED_TAIL
#define ADDED_V2 ADDED_HEAD ("added") \
  " {\"step\": \"sim\", \"id\": \"firmware-update\", \"options\": {\"min-ms\": 1, \"max-ms\": 1, \"phase\": \"transfer\"}}," \
  ADDED_TAIL

static gboolean
at_multicast (gpointer data)
{
  return shoal_device_get_state (data) == SHOAL_DEVICE_STATE_WAITING &&
         g_strcmp0 (shoal_device_get_current_step (data), "multicast") == 0;
}

static ShoalRecipe *
add_stored_recipe (Fixture     *fixture,
                   const gchar *json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_data (json, -1, "D-Bus", &error);

  g_assert_no_error (error);
  g_assert_true (shoal_controller_add_stored_recipe (fixture->controller, recipe, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&recipe);
}

/* A deployment of a recipe without a commit (added over D-Bus, or from a
 * file) interrupted by a restart resumes with the recipe it started with
 * (kept in the store under its digest), where the recipe of that name
 * in service after the restart is another: it resumed with the new
 * recipe, at its old step number (firmware-update, which the recipe it
 * started with does not have). The devices resumed with one version
 * share its rendezvous: one group. Once they are done, the version kept
 * for them is deleted at the next start */
static void
test_controller_resume_recipe_changed (Fixture       *fixture,
                                       gconstpointer  data)
{
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr(ShoalRecipe) v1 = add_stored_recipe (fixture, ADDED_V1 ("added"));
  g_autoptr(ShoalRecipe) v2 = NULL;
  g_autofree gchar *deployed = NULL;
  g_autofree gchar *resumed = NULL;
  g_autofree gchar *complete = NULL;
  g_autofree gchar *expected = NULL;
  g_autoptr(GHashTable) versions = NULL;
  ShoalDevice *device;

  add_recipe (fixture, ADDED_V1 ("kept"));
  enroll_and_deploy_from (fixture, 0, 2, "added");
  enroll_and_deploy_from (fixture, 2, 1, "kept");
  for (guint i = 0; i < 3; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);

      g_assert_true (shoal_test_wait_until (at_multicast, shoal_controller_lookup_device (fixture->controller, id),
                                            10000));
    }
  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  deployed = last_message (fixture, device, "controller", "deploy");
  expected = g_strdup_printf ("at commit none (sha256 %s)", shoal_recipe_get_digest (v1));
  g_test_message ("%s", deployed);
  g_assert_nonnull (strstr (deployed, expected));
  /* the operator changes the recipe: the devices deploying go on with the
   * one they started with */
  v2 = add_stored_recipe (fixture, ADDED_V2);
  g_assert_cmpstr (shoal_recipe_get_digest (v1), !=, shoal_recipe_get_digest (v2));
  restart (fixture);

  /* the daemon's start-up: version 2 is the stored recipe in service */
  add_recipe (fixture, ADDED_V1 ("kept"));
  g_assert_cmpuint (shoal_controller_load_stored_recipes (fixture->controller), ==, 1);
  g_assert_cmpstr (shoal_recipe_get_digest (shoal_controller_lookup_recipe (fixture->controller, "added")),
                   ==, shoal_recipe_get_digest (v2));
  resume (fixture, server);
  /* deployed now, it meets dev-0002 at the rendezvous of "kept" */
  enroll_and_deploy_from (fixture, 3, 1, "kept");
  g_assert_true (shoal_test_wait_until (all_settled, fixture, 10000));
  g_assert_cmpuint (count_state (fixture, SHOAL_DEVICE_STATE_INSTALLED), ==, 4);
  g_assert_cmpstr (group_of (fixture, 0), ==, group_of (fixture, 1));
  g_assert_cmpstr (group_of (fixture, 0), !=, group_of (fixture, 2));
  for (guint i = 0; i < 2; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("dev-%04u", i);
      g_autofree gchar *started = NULL;

      device = shoal_controller_lookup_device (fixture->controller, id);
      started = last_message (fixture, device, "firmware-update", "step-started");
      g_assert_null (started);
    }
  device = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  resumed = last_message (fixture, device, "controller", "resume");
  g_test_message ("%s", resumed);
  g_assert_nonnull (strstr (resumed, expected));
  g_assert_nonnull (strstr (resumed, "after a restart at step 3 of 3 (multicast)"));
  complete = last_message (fixture, device, "controller", "installed");
  g_assert_nonnull (strstr (complete, expected));
  /* the recipe from a file that did not change: the one in service, whose
   * rendezvous the devices deployed after the restart share */
  device = shoal_controller_lookup_device (fixture->controller, "dev-0002");
  g_clear_pointer (&resumed, g_free);
  resumed = last_message (fixture, device, "controller", "resume");
  g_assert_nonnull (strstr (resumed, "after a restart at step 3 of 3 (multicast)"));
  g_assert_cmpstr (group_of (fixture, 2), ==, group_of (fixture, 3));
  /* the versions kept for them ("added" and "kept" as deployed) are gone
   * once nobody deploys with them */
  versions = shoal_controller_kv_list (fixture->controller, "controller-recipe-versions");
  g_assert_cmpuint (g_hash_table_size (versions), ==, 2);
  g_assert_true (g_hash_table_contains (versions, shoal_recipe_get_digest (v1)));
  g_clear_pointer (&versions, g_hash_table_unref);
  restart (fixture);
  resume (fixture, server);
  versions = shoal_controller_kv_list (fixture->controller, "controller-recipe-versions");
  g_assert_cmpuint (g_hash_table_size (versions), ==, 0);
}

static gboolean
in_inventory_step (gpointer data)
{
  return g_strcmp0 (shoal_device_get_current_step (data), "inventory") == 0;
}

/* A deployment whose recipe, without a commit, is not in the store any
 * more fails when it would resume, saying so, where it resumed with the
 * recipe of that name in service (which had been changed) */
static void
test_controller_resume_recipe_lost (Fixture       *fixture,
                                    gconstpointer  data)
{
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr(ShoalRecipe) v1 = shoal_test_recipe_new (SLOW_V1 ("60000"));
  g_autofree gchar *failed = NULL;
  g_autofree gchar *expected = NULL;
  ShoalDevice *lost;

  add_recipe (fixture, SLOW_V1 ("60000"));
  enroll_and_deploy_from (fixture, 0, 1, "slow");
  lost = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  g_assert_true (shoal_test_wait_until (in_inventory_step, lost, 10000));
  /* a store that lost it */
  shoal_controller_kv_set (fixture->controller, "controller-recipe-versions",
                           shoal_recipe_get_digest (v1), NULL);
  restart (fixture);

  /* the recipe directory's "slow" changed while the daemon was down */
  add_recipe (fixture, SLOW_V3);
  resume (fixture, server);
  lost = shoal_controller_lookup_device (fixture->controller, "dev-0000");
  failed = failure_of (fixture, lost);
  g_test_message ("%s", failed);
  expected = g_strdup_printf ("recipe slow as deployment 1 started with it (no commit, sha256 %s) "
                              "cannot be loaded (the store does not hold it)",
                              shoal_recipe_get_digest (v1));
  g_assert_nonnull (strstr (failed, expected));
  g_assert_null (last_message (fixture, lost, "firmware-update", "step-started"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/shoal/controller/fleet", test_controller_fleet);
  ADD ("/shoal/controller/group-drop", test_controller_group_drop);
  ADD ("/shoal/controller/unknown-step", test_controller_unknown_step);
  ADD ("/shoal/controller/bad-options", test_controller_bad_options);
  ADD ("/shoal/controller/bad-arguments", test_controller_bad_arguments);
  ADD ("/shoal/controller/cancel", test_controller_cancel);
  ADD ("/shoal/controller/max-parallel", test_controller_max_parallel);
  ADD ("/shoal/controller/device-seen", test_controller_device_seen);
  ADD ("/shoal/controller/discover-limits", test_controller_discover_limits);
  ADD ("/shoal/controller/uuid-unique", test_controller_uuid_unique);
  ADD ("/shoal/controller/seen-identity", test_controller_seen_identity);
  ADD ("/shoal/controller/uuid-malformed", test_controller_uuid_malformed);
  ADD ("/shoal/controller/uuid-index", test_controller_uuid_index);
  ADD ("/shoal/controller/remove-mac", test_controller_remove_mac);
  ADD ("/shoal/controller/reopen", test_controller_reopen);
  ADD ("/shoal/controller/stored-recipes", test_controller_stored_recipes);
  ADD ("/shoal/controller/state-dir-lock", test_controller_state_dir_lock);
  ADD ("/shoal/controller/group-ids-restart", test_controller_group_ids_restart);
  ADD ("/shoal/controller/two-recipes", test_controller_two_recipes);
  ADD ("/shoal/controller/step-timeout", test_controller_step_timeout);
  ADD ("/shoal/controller/second-group-step", test_controller_second_group_step);
  ADD ("/shoal/controller/reenrolled", test_controller_reenrolled);
  ADD ("/shoal/controller/group-timeout", test_controller_group_timeout);
  ADD ("/shoal/controller/group-cancel", test_controller_group_cancel);
  ADD ("/shoal/controller/group-cancel-redeploy", test_controller_group_cancel_redeploy);
  ADD ("/shoal/controller/recipe-readded", test_controller_recipe_readded);
  ADD ("/shoal/controller/recipe-new-commit", test_controller_recipe_new_commit);
  ADD ("/shoal/controller/resume-at-commit", test_controller_resume_at_commit);
  ADD ("/shoal/controller/resume-recipe-changed", test_controller_resume_recipe_changed);
  ADD ("/shoal/controller/resume-recipe-lost", test_controller_resume_recipe_lost);
  ADD ("/shoal/controller/min-devices", test_controller_min_devices);
  ADD ("/shoal/controller/late-unicast", test_controller_late_unicast);
  ADD ("/shoal/controller/late-unicast-max-parallel", test_controller_late_unicast_max_parallel);
  ADD ("/shoal/controller/group-max-parallel", test_controller_group_max_parallel);
  ADD ("/shoal/controller/store-outage", test_controller_store_outage);
  ADD ("/shoal/controller/redeploy-forgets-run", test_controller_redeploy_forgets_run);
  ADD ("/shoal/controller/inventory-recheck", test_controller_inventory_recheck);
  ADD ("/shoal/controller/inventory-recipe-switch", test_controller_inventory_recipe_switch);
#undef ADD
  return g_test_run ();
}
