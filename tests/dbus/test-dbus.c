/* test-dbus.c: the org.shoal.Shoal1 API of the real shoald on a private bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-test-daemon.h"

#define DEVICE_IFACE "org.shoal.Shoal1.Device"

/* devices prefix1..prefixN, their MACs numbered from @first */
static GVariant *
make_devices_from (const gchar *prefix, guint first, guint n)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  for (guint i = first; i < first + n; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("%s%u", prefix, i - first + 1);
      g_autofree gchar *mac = g_strdup_printf ("52:54:%02x:%02x:%02x:%02x",
                                               (i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
      const gchar *macs[] = { mac, NULL };

      g_variant_builder_add (&builder, "(s^ass)", id, macs, "");
    }
  return g_variant_builder_end (&builder);
}

static GVariant *
make_devices (const gchar *prefix, guint n)
{
  return make_devices_from (prefix, 1, n);
}

static gchar **
enroll (ShoalTestDaemon *td, const gchar *prefix, guint n)
{
  g_autoptr(GError) error = NULL;
  gchar **paths = NULL;

  shoal_dbus_manager_call_enroll_devices_sync (td->manager, make_devices (prefix, n),
                                               &paths, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (paths), ==, n);
  return paths;
}

static gchar **
ids_of (const gchar *prefix, guint n)
{
  gchar **ids = g_new0 (gchar *, n + 1);

  for (guint i = 0; i < n; i++)
    ids[i] = g_strdup_printf ("%s%u", prefix, i + 1);
  return ids;
}

static GVariant *
get_property (ShoalTestDaemon *td, const gchar *path, const gchar *iface, const gchar *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", path,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", iface, name), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static gchar *
get_string (ShoalTestDaemon *td, const gchar *path, const gchar *name)
{
  g_autoptr(GVariant) value = get_property (td, path, DEVICE_IFACE, name);

  return g_variant_dup_string (value, NULL);
}

/* the message of a remote error, without the "GDBus.Error:name: " prefix */
static void
assert_error (GError *error, gint code, const gchar *needle)
{
  g_assert_nonnull (error);
  g_dbus_error_strip_remote_error (error);
  g_test_message ("error: %s", error->message);
  g_assert_error (error, SHOAL_ERROR, code);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("“%s” does not name “%s”", error->message, needle);
}

static void
test_dbus_manager_properties (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GVariant) count = NULL;
  g_autoptr(GVariant) state = NULL;
  g_autoptr(GVariant) url = NULL;
  g_autoptr(GVariant) version = NULL;

  shoal_test_daemon_start (td, FALSE);
  version = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "Version");
  g_assert_cmpstr (g_variant_get_string (version, NULL), ==, PACKAGE_VERSION);
  state = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DaemonState");
  g_assert_cmpstr (g_variant_get_string (state, NULL), ==, "running");
  url = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "ServerUrl");
  g_assert_true (g_str_has_prefix (g_variant_get_string (url, NULL), "http://127.0.0.1:"));
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 0);
}

static void
test_dbus_enroll (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) again = NULL;
  g_autoptr(GVariant) devices = NULL;
  g_autoptr(GVariant) macs = NULL;
  g_autoptr(GVariant) count = NULL;
  g_autofree gchar *expected_path = NULL;
  g_autofree gchar *state = NULL;
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *escaped = g_dbus_escape_object_path ("rack1.node:7");
  g_autofree gchar *macs_text = NULL;
  const gchar *node_macs[] = { "52:54:00:AA:BB:0C", "52-54-00-aa-bb-0d", NULL };
  const gchar *no_macs[] = { NULL };
  GVariantBuilder builder;

  shoal_test_daemon_start (td, FALSE);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "rack1.node:7", node_macs,
                         "4c4c4544-0042-3010-8052-b2c04f333232");
  g_variant_builder_add (&builder, "(s^ass)", "bare", no_macs, "");
  devices = g_variant_ref_sink (g_variant_builder_end (&builder));
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, devices, &paths, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (paths), ==, 2);
  expected_path = g_strconcat ("/org/shoal/Shoal1/devices/", escaped, NULL);
  g_assert_cmpstr (paths[0], ==, expected_path);
  g_assert_cmpstr (paths[1], ==, "/org/shoal/Shoal1/devices/bare");

  /* the object carries the device, its MACs normalized */
  state = get_string (td, paths[0], "State");
  g_assert_cmpstr (state, ==, "discovered");
  uuid = get_string (td, paths[0], "Uuid");
  g_assert_cmpstr (uuid, ==, "4c4c4544-0042-3010-8052-b2c04f333232");
  macs = get_property (td, paths[0], DEVICE_IFACE, "Macs");
  macs_text = g_variant_print (macs, FALSE);
  g_assert_cmpstr (macs_text, ==, "['52:54:00:aa:bb:0c', '52:54:00:aa:bb:0d']");
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 2);

  /* enrolling it again names the entry; nothing of the batch is enrolled */
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, make_devices ("fresh-", 1), &again, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&again, g_strfreev);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "new-one", no_macs, "");
  g_variant_builder_add (&builder, "(s^ass)", "bare", no_macs, "");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder),
                                               &again, NULL, &error);
  assert_error (error, SHOAL_ERROR_EXISTS, "devices[1].id");
  g_clear_error (&error);
  g_clear_pointer (&count, g_variant_unref);
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 3);

  /* removing it takes its object away */
  shoal_dbus_manager_call_remove_device_sync (td->manager, "bare", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_remove_device_sync (td->manager, "bare", NULL, &error);
  assert_error (error, SHOAL_ERROR_NOT_FOUND, "bare");
  g_clear_error (&error);

  /* a restart on the same state directory exports the same devices */
  shoal_test_daemon_stop (td);
  shoal_test_daemon_start (td, FALSE);
  g_clear_pointer (&state, g_free);
  state = get_string (td, paths[0], "State");
  g_assert_cmpstr (state, ==, "discovered");
  g_clear_pointer (&count, g_variant_unref);
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 2);
}

/* A UUID is one device's: enrolling another device with it is refused,
 * naming the owner, and a batch with it twice enrolls nothing;
 * placeholder UUIDs (all zeros, all FF) are not recorded */
static void
test_dbus_enroll_uuid_unique (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) paths = NULL;
  g_autoptr(GVariant) count = NULL;
  g_autofree gchar *uuid = NULL;
  GVariantBuilder builder;

  shoal_test_daemon_start (td, FALSE);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "u1", (const gchar *[]) { "52:54:00:00:20:01", NULL },
                         "11111111-2222-3333-4444-55555555555a");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&paths, g_strfreev);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "u2", (const gchar *[]) { "52:54:00:00:20:02", NULL },
                         "11111111-2222-3333-4444-55555555555A");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  assert_error (error, SHOAL_ERROR_EXISTS,
                "devices[0].uuid: 11111111-2222-3333-4444-55555555555A already belongs to device “u1”");
  g_clear_error (&error);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "twin-1", (const gchar *[]) { NULL },
                         "99999999-2222-3333-4444-555555555555");
  g_variant_builder_add (&builder, "(s^ass)", "twin-2", (const gchar *[]) { NULL },
                         "99999999-2222-3333-4444-555555555555");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  assert_error (error, SHOAL_ERROR_EXISTS, "devices[1].uuid");
  g_clear_error (&error);
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 1);

  /* a placeholder identifies nothing: two boards with it are two devices */
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "cheap-1", (const gchar *[]) { NULL },
                         "00000000-0000-0000-0000-000000000000");
  g_variant_builder_add (&builder, "(s^ass)", "cheap-2", (const gchar *[]) { NULL },
                         "00000000-0000-0000-0000-000000000000");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  g_assert_no_error (error);
  uuid = get_string (td, paths[1], "Uuid");
  g_assert_cmpstr (uuid, ==, "");
}

/* 10,000 devices in one EnrollDevices call: a bound that a cost per
 * device growing with the fleet (a scan per entry) would break. The
 * AddressSanitizer build is about 50 times slower (55-68 s here), and is
 * held to a bound as far above it */
#ifdef __SANITIZE_ADDRESS__
#define ENROLL_BATCH_MAX_S 300.0
#else
#define ENROLL_BATCH_MAX_S 60.0
#endif

static void
test_dbus_enroll_batch (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GVariant) count = NULL;
  g_autoptr(GVariant) objects = NULL;
  g_auto(GStrv) paths = NULL;
  g_autoptr(GError) error = NULL;
  const guint n = 10000;
  gint64 start;
  gdouble seconds;

  shoal_test_daemon_start (td, FALSE);
  start = g_get_monotonic_time ();
  paths = enroll (td, "batch-", n);
  seconds = (g_get_monotonic_time () - start) / 1e6;
  g_test_message ("enrolled %u devices in one call in %.2f s", n, seconds);
  g_assert_cmpfloat (seconds, <, ENROLL_BATCH_MAX_S);
  g_assert_cmpstr (paths[n - 1], ==, "/org/shoal/Shoal1/devices/batch_2d10000");

  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, n);
  objects = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", "/org/shoal/Shoal1",
                                         "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                         NULL, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                                         G_DBUS_CALL_FLAGS_NONE, 120000, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (g_variant_get_child_value (objects, 0)), ==, n);
}

static void
test_dbus_bad_arguments (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) steps = NULL;
  g_auto(GStrv) paths = NULL;
  g_autoptr(GVariant) reply = NULL;
  const gchar *bad_mac[] = { "52:54:00:00:99:01", "zz", NULL };
  const gchar *taken_mac[] = { "52:54:00:00:00:01", NULL };
  const gchar *no_macs[] = { NULL };
  const gchar *unknown[] = { "bad-1", "nope", NULL };
  const gchar *none[] = { NULL };
  GVariantBuilder builder;

  shoal_test_daemon_start (td, FALSE);
  g_strfreev (enroll (td, "bad-", 1));

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "ok-1", no_macs, "");
  g_variant_builder_add (&builder, "(s^ass)", "ok-2", bad_mac, "");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "devices[1].macs[1]");
  g_clear_error (&error);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "has space", no_macs, "");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "devices[0].id");
  g_clear_error (&error);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "uuid-1", no_macs, "not-a-uuid");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "devices[0].uuid");
  g_clear_error (&error);

  /* bad-1 has 52:54:00:00:00:01 (make_devices): a MAC belongs to one device */
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "copy", taken_mac, "");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  assert_error (error, SHOAL_ERROR_EXISTS, "devices[0].macs[0]: 52:54:00:00:00:01 already belongs to device “bad-1”");
  g_clear_error (&error);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&builder, "(s^ass)", "twin-1", (const gchar *[]) { "02:00:00:00:00:09", NULL }, "");
  g_variant_builder_add (&builder, "(s^ass)", "twin-2", (const gchar *[]) { "02:00:00:00:00:09", NULL }, "");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&builder), &paths, NULL, &error);
  assert_error (error, SHOAL_ERROR_EXISTS, "devices[1].macs[0]");
  g_clear_error (&error);

  shoal_dbus_manager_call_assign_recipe_sync (td->manager, none, "fast-sim", NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "ids");
  g_clear_error (&error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, unknown, "fast-sim", NULL, &error);
  assert_error (error, SHOAL_ERROR_NOT_FOUND, "ids[1]");
  g_clear_error (&error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, unknown, "no-such-recipe", NULL, &error);
  assert_error (error, SHOAL_ERROR_NOT_FOUND, NULL);
  g_clear_error (&error);
  shoal_dbus_manager_call_deploy_sync (td->manager, unknown, NULL, &error);
  assert_error (error, SHOAL_ERROR_NOT_FOUND, "ids[1]: no device “nope”");
  g_clear_error (&error);
  shoal_dbus_manager_call_remove_device_sync (td->manager, "", NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "id");
  g_clear_error (&error);

  /* a device with no recipe cannot deploy: the error names it */
  shoal_dbus_manager_call_deploy_sync (td->manager, (const gchar *[]) { "bad-1", NULL }, NULL, &error);
  g_assert_nonnull (error);
  g_dbus_error_strip_remote_error (error);
  g_test_message ("deploy without recipe: %s", error->message);
  g_assert_nonnull (strstr (error->message, "bad-1"));
  g_clear_error (&error);

  reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", "/org/shoal/Shoal1/devices/bad_2d1",
                                       DEVICE_IFACE, "SetBootAction", g_variant_new ("(s)", "sideways"),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "action");
  g_clear_error (&error);

  shoal_dbus_manager_call_add_recipe_sync (td->manager, "{ \"name\": ", NULL, &error);
  g_assert_nonnull (error);
  g_clear_error (&error);
  shoal_dbus_manager_call_add_recipe_sync (td->manager,
                                           "{ \"name\": \"x\", \"image\": { \"name\": \"i\" }, "
                                           "\"steps\": [ { \"step\": \"no-such-step\", \"id\": \"a\" } ] }",
                                           NULL, &error);
  g_assert_nonnull (error);
  g_dbus_error_strip_remote_error (error);
  g_test_message ("unknown step: %s", error->message);
  g_assert_nonnull (strstr (error->message, "no-such-step"));
  g_clear_error (&error);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, "{ \"name\": 42 }", NULL, &error);
  g_assert_nonnull (error);
  g_dbus_error_strip_remote_error (error);
  g_test_message ("bad recipe: %s", error->message);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_clear_error (&error);
  shoal_dbus_manager_call_sync_recipes_sync (td->manager, NULL, &error);
  assert_error (error, SHOAL_ERROR_NOT_SUPPORTED, "[recipes] url=");
  g_clear_error (&error);

  /* wrong signature: GDBus refuses it before shoald sees it */
  g_clear_pointer (&reply, g_variant_unref);
  reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", "/org/shoal/Shoal1",
                                       "org.shoal.Shoal1.Manager", "Deploy", g_variant_new ("(s)", "x"),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
  g_clear_error (&error);

  /* the daemon is still there and lost nothing */
  g_assert_true (shoal_test_daemon_is_running (td));
  shoal_dbus_manager_call_list_steps_sync (td->manager, &steps, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (steps), >=, 2);
}

typedef struct
{
  GHashTable *entries; /* path → GPtrArray of the signals' GVariant arguments */
  guint       n_signals;
} JournalSignals;

static void
on_journal_entry (GDBusConnection *connection, const gchar *sender, const gchar *path,
                  const gchar *iface, const gchar *signal, GVariant *params, gpointer user_data)
{
  JournalSignals *js = user_data;
  GPtrArray *entries = g_hash_table_lookup (js->entries, path);

  if (entries == NULL)
    {
      entries = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
      g_hash_table_insert (js->entries, g_strdup (path), entries);
    }
  g_ptr_array_add (entries, g_variant_ref (params));
  js->n_signals++;
}

typedef struct
{
  GDBusObjectManager *om;
  gchar             **paths;
  const gchar        *state;
} WaitState;

static gboolean
all_in_state (gpointer user_data)
{
  WaitState *ws = user_data;

  for (guint i = 0; ws->paths[i] != NULL; i++)
    {
      g_autoptr(GDBusInterface) iface = g_dbus_object_manager_get_interface (ws->om, ws->paths[i], DEVICE_IFACE);

      if (iface == NULL || g_strcmp0 (shoal_dbus_device_get_state (SHOAL_DBUS_DEVICE (iface)), ws->state) != 0)
        return FALSE;
    }
  return TRUE;
}

static GVariant *
get_journal (ShoalTestDaemon *td, const gchar *path, guint64 since)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", path, DEVICE_IFACE,
                                       "GetJournal", g_variant_new ("(t)", since),
                                       G_VARIANT_TYPE ("(a(txssss))"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, &error);
  g_assert_no_error (error);
  return g_variant_get_child_value (reply, 0);
}

static gboolean
signals_caught_up (gpointer user_data)
{
  gpointer *args = user_data;
  JournalSignals *js = args[0];

  return js->n_signals >= GPOINTER_TO_UINT (args[1]);
}

static void
check_journal (ShoalTestDaemon *td, JournalSignals *js, const gchar *path)
{
  g_autoptr(GVariant) entries = get_journal (td, path, 0);
  g_autoptr(GVariant) tail = NULL;
  GPtrArray *signals = g_hash_table_lookup (js->entries, path);
  guint n = g_variant_n_children (entries);
  guint64 seq, prev = 0, mid = 0;
  gint64 time_us;
  const gchar *source, *op, *result, *message;

  g_assert_cmpuint (n, >=, 5);
  for (guint i = 0; i < n; i++)
    {
      g_variant_get_child (entries, i, "(tx&s&s&s&s)", &seq, &time_us, &source, &op, &result, &message);
      g_assert_cmpuint (seq, >, prev);
      g_assert_cmpint (time_us, >, 0);
      prev = seq;
      if (i == n / 2)
        mid = seq;
    }
  g_assert_cmpstr (op, ==, "installed");
  g_assert_cmpstr (result, ==, "ok");

  /* every entry came as a JournalEntry signal too, once, with the very
   * fields GetJournal gives it */
  g_assert_nonnull (signals);
  g_assert_cmpuint (signals->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (entries, i);
      GVariant *signalled = g_ptr_array_index (signals, i);

      if (!g_variant_equal (entry, signalled))
        {
          g_autofree gchar *got = g_variant_print (signalled, TRUE);
          g_autofree gchar *want = g_variant_print (entry, TRUE);

          g_error ("JournalEntry signal %s, GetJournal %s", got, want);
        }
    }

  /* since_seq returns only what is newer */
  tail = get_journal (td, path, mid);
  g_assert_cmpuint (g_variant_n_children (tail), ==, n - n / 2 - 1);
}

/* SetBootAction is durable before it returns: a crash right after keeps it */
static void
test_dbus_boot_action_restart (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) entries = NULL;
  g_auto(GStrv) paths = NULL;
  g_autofree gchar *action = NULL;
  guint n_set = 0;

  shoal_test_daemon_start (td, FALSE);
  paths = enroll (td, "ba-", 1);
  action = get_string (td, paths[0], "BootAction");
  g_assert_cmpstr (action, ==, "local");
  reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", paths[0], DEVICE_IFACE,
                                       "SetBootAction", g_variant_new ("(s)", "ignore"), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);

  shoal_test_daemon_kill (td);
  shoal_test_daemon_start (td, FALSE);
  g_clear_pointer (&action, g_free);
  action = get_string (td, paths[0], "BootAction");
  g_assert_cmpstr (action, ==, "ignore");
  entries = get_journal (td, paths[0], 0);
  for (guint i = 0; i < g_variant_n_children (entries); i++)
    {
      const gchar *op, *message;

      g_variant_get_child (entries, i, "(tx&s&s&s&s)", NULL, NULL, NULL, &op, NULL, &message);
      if (g_strcmp0 (op, "set-boot-action") != 0)
        continue;
      g_test_message ("journal: %s", message);
      g_assert_true (g_str_has_prefix (message, "boot action set to ignore by "));
      n_set++;
    }
  g_assert_cmpuint (n_set, ==, 1);
}

static GError *
call_remove_mac (ShoalTestDaemon *td, const gchar *path, const gchar *mac)
{
  g_autoptr(GVariant) reply = NULL;
  GError *error = NULL;

  reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", path, DEVICE_IFACE,
                                       "RemoveMac", g_variant_new ("(s)", mac), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  return error;
}

/* the device's MAC addresses, joined with spaces */
static gchar *
get_macs (ShoalTestDaemon *td, const gchar *path)
{
  g_autoptr(GVariant) value = get_property (td, path, DEVICE_IFACE, "Macs");
  g_autofree const gchar **macs = g_variant_get_strv (value, NULL);

  return g_strjoinv (" ", (gchar **) macs);
}

/* RemoveMac takes a MAC off a device (a NIC moved to another machine):
 * journaled, durable before it returns, the MAC free for another device;
 * a bad MAC, one the device does not have, a device being deployed are
 * refused with named errors; the last MAC may go, as a device may be
 * enrolled without one */
static void
test_dbus_remove_mac (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) entries = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) more = NULL;
  g_autofree gchar *macs = NULL;
  const gchar *busy[] = { "rm-2", NULL };
  guint n_removed = 0;

  shoal_test_daemon_start (td, FALSE);
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_new_parsed (
      "[('rm-1', ['52:54:00:aa:00:01', '52:54:00:aa:00:02'], 'aaaaaaaa-0000-4000-8000-00000000000a'),"
      " ('rm-2', ['52:54:00:aa:00:03'], '')]"), &paths, NULL, &error);
  g_assert_no_error (error);

  /* as EnrollDevices takes MACs: dashes, either case */
  error = call_remove_mac (td, paths[0], "52-54-00-AA-00-02");
  g_assert_no_error (error);
  macs = get_macs (td, paths[0]);
  g_assert_cmpstr (macs, ==, "52:54:00:aa:00:01");
  entries = get_journal (td, paths[0], 0);
  for (guint i = 0; i < g_variant_n_children (entries); i++)
    {
      const gchar *source, *op, *result, *message;

      g_variant_get_child (entries, i, "(tx&s&s&s&s)", NULL, NULL, &source, &op, &result, &message);
      if (g_strcmp0 (op, "identity") != 0)
        continue;
      g_test_message ("journal: %s", message);
      g_assert_cmpstr (source, ==, "dbus");
      g_assert_cmpstr (result, ==, "ok");
      g_assert_true (g_str_has_prefix (message, "MAC 52:54:00:aa:00:02 removed by :"));
      g_assert_nonnull (strstr (message, "MACs left: 52:54:00:aa:00:01"));
      n_removed++;
    }
  g_assert_cmpuint (n_removed, ==, 1);

  error = call_remove_mac (td, paths[0], "zz");
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "mac: “zz” is not a MAC address");
  g_clear_error (&error);
  error = call_remove_mac (td, paths[0], "52:54:00:aa:00:02");
  assert_error (error, SHOAL_ERROR_NOT_FOUND, "device rm-1 has no MAC 52:54:00:aa:00:02");
  g_clear_error (&error);
  error = call_remove_mac (td, paths[0], "52:54:00:aa:00:03");
  assert_error (error, SHOAL_ERROR_NOT_FOUND, "(device rm-2 has it)");
  g_clear_error (&error);

  /* the MAC is free: another device may have it */
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_new_parsed (
      "[('rm-3', ['52:54:00:aa:00:02'], '')]"), &more, NULL, &error);
  g_assert_no_error (error);

  /* a device being deployed may be booting from that NIC */
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, busy, "slow-sim", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, busy, NULL, &error);
  g_assert_no_error (error);
  error = call_remove_mac (td, paths[1], "52:54:00:aa:00:03");
  assert_error (error, SHOAL_ERROR_BUSY, "shoalctl cancel rm-2");
  g_clear_error (&error);
  shoal_dbus_manager_call_cancel_sync (td->manager, busy, NULL, &error);
  g_assert_no_error (error);
  error = call_remove_mac (td, paths[1], "52:54:00:aa:00:03");
  g_assert_no_error (error);

  /* durable before it returned; the last MAC may go too */
  shoal_test_daemon_kill (td);
  shoal_test_daemon_start (td, FALSE);
  g_clear_pointer (&macs, g_free);
  macs = get_macs (td, paths[0]);
  g_assert_cmpstr (macs, ==, "52:54:00:aa:00:01");
  g_clear_pointer (&macs, g_free);
  macs = get_macs (td, paths[1]);
  g_assert_cmpstr (macs, ==, "");
  error = call_remove_mac (td, paths[0], "52:54:00:aa:00:01");
  g_assert_no_error (error);
  g_clear_pointer (&macs, g_free);
  macs = get_macs (td, paths[0]);
  g_assert_cmpstr (macs, ==, "");
}

typedef struct {
  ShoalTestDaemon *td;
  WaitState       *ws;
  guint            checked;
} DurableSeen;

/* every device whose State reads installed has the journal entry that
 * says so; TRUE once all are installed */
static gboolean
installed_is_durable (gpointer user_data)
{
  DurableSeen *seen = user_data;
  guint installed = 0;

  for (guint i = 0; seen->ws->paths[i] != NULL; i++)
    {
      g_autoptr(GDBusInterface) iface = g_dbus_object_manager_get_interface (seen->ws->om, seen->ws->paths[i],
                                                                              DEVICE_IFACE);
      g_autoptr(GVariant) entries = NULL;
      const gchar *op = NULL;

      if (iface == NULL || g_strcmp0 (shoal_dbus_device_get_state (SHOAL_DBUS_DEVICE (iface)), "installed") != 0)
        continue;
      installed++;
      entries = get_journal (seen->td, seen->ws->paths[i], 0);
      g_variant_get_child (entries, g_variant_n_children (entries) - 1, "(tx&s&s&s&s)",
                           NULL, NULL, NULL, &op, NULL, NULL);
      g_assert_cmpstr (op, ==, "installed");
      seen->checked++;
    }
  return installed == g_strv_length (seen->ws->paths);
}

/* With a disk that takes 300 ms a commit, longer than the 100 ms between
 * property flushes, a device's State reads "installed" before its journal
 * entry "installed" is durable; GetJournal answers once what was written
 * before the call is, so a client that asks at once finds the entry */
static void
test_dbus_properties_durable (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GDBusObjectManager) om = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) ids = ids_of ("p-", 3);
  WaitState ws = { 0 };
  DurableSeen seen = { td, &ws, 0 };
  const gchar *none[] = { NULL };

  g_setenv ("SHOAL_STORE_COMMIT_DELAY_MS", "300", TRUE);
  shoal_test_daemon_start (td, FALSE);
  g_unsetenv ("SHOAL_STORE_COMMIT_DELAY_MS");
  paths = enroll (td, "p-", 3);
  om = shoal_dbus_object_manager_client_new_sync (td->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                  "org.shoal.Shoal1", "/org/shoal/Shoal1", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, none, NULL, &error);
  g_assert_no_error (error);
  ws.om = om;
  ws.paths = paths;
  if (!shoal_test_wait_for (installed_is_durable, &seen, 60000))
    g_error ("the devices did not reach “installed” within 60 s");
  g_assert_cmpuint (seen.checked, >=, 3);
}

/* the message of the last "assign" entry of @path's journal */
static gchar *
last_assign (ShoalTestDaemon *td, const gchar *path)
{
  g_autoptr(GVariant) entries = get_journal (td, path, 0);
  gchar *found = NULL;

  for (gsize i = 0; i < g_variant_n_children (entries); i++)
    {
      const gchar *op, *message;

      g_variant_get_child (entries, i, "(tx&s&s&s&s)", NULL, NULL, NULL, &op, NULL, &message);
      if (g_str_equal (op, "assign"))
        {
          g_free (found);
          found = g_strdup (message);
        }
    }
  g_assert_nonnull (found);
  return found;
}

/* AssignRecipe with "" records that the recipe was chosen by matching,
 * which a new inventory during the deployment re-checks; a recipe given
 * by name is not (AssignRecipe chose the recipe, then assigned it by its
 * name, so every assignment looked manual) */
static void
test_dbus_assign_auto (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) paths = NULL;
  g_autofree gchar *auto_msg = NULL, *named_msg = NULL;

  shoal_test_daemon_start (td, FALSE);
  paths = enroll (td, "a-", 2);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar *[]) { "a-1", NULL }, "", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar *[]) { "a-2", NULL }, "fast-sim",
                                              NULL, &error);
  g_assert_no_error (error);
  auto_msg = last_assign (td, paths[0]);
  named_msg = last_assign (td, paths[1]);
  g_assert_nonnull (strstr (auto_msg, "assigned by matching"));
  g_assert_null (strstr (named_msg, "by matching"));
}

static void
test_dbus_deploy (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GDBusObjectManager) om = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) signalled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                           (GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GVariant) stats = NULL;
  g_autoptr(GVariant) states = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) ids = ids_of ("d-", 8);
  JournalSignals js = { signalled, 0 };
  WaitState ws = { 0 };
  const gchar *none[] = { NULL };
  guint sub, total = 0, installed = 0;
  guint64 flushes = 0;
  gpointer args[2];

  shoal_test_daemon_start (td, FALSE);
  sub = g_dbus_connection_signal_subscribe (td->connection, "org.shoal.Shoal1", DEVICE_IFACE,
                                            "JournalEntry", NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                            on_journal_entry, &js, NULL);
  paths = enroll (td, "d-", 8);
  om = shoal_dbus_object_manager_client_new_sync (td->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                  "org.shoal.Shoal1", "/org/shoal/Shoal1", NULL, &error);
  g_assert_no_error (error);

  /* "" picks the recipe by matching: fast-sim is the default */
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "", NULL, &error);
  g_assert_no_error (error);
  ws.om = om;
  ws.paths = paths;
  ws.state = "assigned";
  g_assert_true (shoal_test_wait_for (all_in_state, &ws, 5000));

  shoal_dbus_manager_call_deploy_sync (td->manager, none, NULL, &error);
  g_assert_no_error (error);
  ws.state = "installed";
  if (!shoal_test_wait_for (all_in_state, &ws, 60000))
    g_error ("the fleet did not reach “installed” within 60 s");

  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autoptr(GVariant) entries = get_journal (td, paths[i], 0);
      g_autoptr(GDBusInterface) iface = g_dbus_object_manager_get_interface (om, paths[i], DEVICE_IFACE);

      total += g_variant_n_children (entries);
      g_assert_cmpstr (shoal_dbus_device_get_recipe (SHOAL_DBUS_DEVICE (iface)), ==, "fast-sim");
      g_assert_cmpfloat (shoal_dbus_device_get_progress (SHOAL_DBUS_DEVICE (iface)), ==, 1.0);
    }
  args[0] = &js;
  args[1] = GUINT_TO_POINTER (total);
  g_assert_true (shoal_test_wait_for (signals_caught_up, args, 10000));
  for (guint i = 0; paths[i] != NULL; i++)
    check_journal (td, &js, paths[i]);
  g_dbus_connection_signal_unsubscribe (td->connection, sub);

  shoal_dbus_manager_call_get_stats_sync (td->manager, &stats, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (stats, "property-flushes", "t", &flushes));
  g_assert_cmpuint (flushes, >, 0);
  states = g_variant_lookup_value (stats, "states", G_VARIANT_TYPE ("a{su}"));
  g_assert_nonnull (states);
  g_assert_true (g_variant_lookup (states, "installed", "u", &installed));
  g_assert_cmpuint (installed, ==, 8);
  g_test_message ("%u journal entries, %" G_GUINT64_FORMAT " property flushes", total, flushes);
}

static void
test_dbus_cancel (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GDBusObjectManager) om = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) entries = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) ids = ids_of ("c-", 3);
  const gchar *first_two[] = { "c-1", "c-2", NULL };
  WaitState ws = { 0 };
  gboolean found = FALSE;

  shoal_test_daemon_start (td, FALSE);
  paths = enroll (td, "c-", 3);
  om = shoal_dbus_object_manager_client_new_sync (td->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                  "org.shoal.Shoal1", "/org/shoal/Shoal1", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "slow-sim", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, (const gchar * const *) ids, NULL, &error);
  g_assert_no_error (error);
  ws.om = om;
  ws.paths = paths;
  ws.state = "booting";
  g_assert_true (shoal_test_wait_for (all_in_state, &ws, 10000));

  /* a device being deployed is not removed: it is cancelled first (it was
   * removed, its deployment cancelled behind the operator's back) */
  shoal_dbus_manager_call_remove_device_sync (td->manager, ids[0], NULL, &error);
  assert_error (error, SHOAL_ERROR_BUSY, "shoalctl cancel c-1");
  g_clear_error (&error);

  /* two through the manager, one through its own object */
  shoal_dbus_manager_call_cancel_sync (td->manager, first_two, NULL, &error);
  g_assert_no_error (error);
  reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", paths[2], DEVICE_IFACE,
                                       "Cancel", NULL, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  ws.state = "cancelled";
  g_assert_true (shoal_test_wait_for (all_in_state, &ws, 10000));

  entries = get_journal (td, paths[0], 0);
  for (guint i = 0; i < g_variant_n_children (entries); i++)
    {
      const gchar *op, *message;

      g_variant_get_child (entries, i, "(tx&s&s&s&s)", NULL, NULL, NULL, &op, NULL, &message);
      g_test_message ("journal: %s %s", op, message);
      found |= strstr (op, "cancel") != NULL;
    }
  g_assert_true (found);

  /* once cancelled it can be removed */
  shoal_dbus_manager_call_remove_device_sync (td->manager, ids[0], NULL, &error);
  g_assert_no_error (error);
}

/* AssignRecipe checks every device before it changes one: a busy device
 * among them changed the ones named before it (in memory and in the
 * store) although the call failed; a device named twice in Deploy was
 * started by its first mention, then reported as failing by its second */
static void
test_dbus_batch_checked_first (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GDBusObjectManager) om = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) paths = NULL;
  g_autoptr(GVariant) entries = NULL;
  g_autofree gchar *recipe = NULL;
  g_autofree gchar *state = NULL;
  const gchar *both[] = { "b-1", "b-2", NULL };
  const gchar *second[] = { "b-2", NULL };
  const gchar *first[] = { "b-1", NULL };
  const gchar *twice[] = { "b-1", "b-1", NULL };
  gchar *busy_paths[2] = { NULL, NULL };
  WaitState ws = { 0 };

  shoal_test_daemon_start (td, FALSE);
  paths = enroll (td, "b-", 2);
  om = shoal_dbus_object_manager_client_new_sync (td->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                  "org.shoal.Shoal1", "/org/shoal/Shoal1", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, second, "slow-sim", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, second, NULL, &error);
  g_assert_no_error (error);
  busy_paths[0] = paths[1];
  ws.om = om;
  ws.paths = busy_paths;
  ws.state = "booting";
  g_assert_true (shoal_test_wait_for (all_in_state, &ws, 10000));

  shoal_dbus_manager_call_assign_recipe_sync (td->manager, both, "fast-sim", NULL, &error);
  assert_error (error, SHOAL_ERROR_BUSY, "ids[1]: device b-2 is being deployed");
  g_clear_error (&error);
  /* the journal, read from the daemon's records, not a property that
   * may not be flushed yet */
  entries = get_journal (td, paths[0], 0);
  for (guint i = 0; i < g_variant_n_children (entries); i++)
    {
      const gchar *op;

      g_variant_get_child (entries, i, "(tx&s&s&s&s)", NULL, NULL, NULL, &op, NULL, NULL);
      g_assert_cmpstr (op, !=, "assign");
    }
  recipe = get_string (td, paths[0], "Recipe");
  g_assert_cmpstr (recipe, ==, "");

  /* named twice: refused, nothing started */
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, first, "slow-sim", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, twice, NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "ids[1]: device “b-1” is named twice");
  g_clear_error (&error);
  state = get_string (td, paths[0], "State");
  g_assert_cmpstr (state, ==, "assigned");
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, twice, "fast-sim", NULL, &error);
  assert_error (error, SHOAL_ERROR_INVALID_ARGUMENT, "ids[1]: device “b-1” is named twice");
  g_clear_error (&error);

  shoal_dbus_manager_call_cancel_sync (td->manager, second, NULL, &error);
  g_assert_no_error (error);
}

/* the (source, description) ListRecipes gives for @name; FALSE if not listed */
static gboolean
listed_recipe (ShoalTestDaemon *td, const gchar *name, gchar **source_out, gchar **description_out)
{
  g_autoptr(GVariant) recipes = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *listed, *commit, *image, *source, *description;
  GVariantIter iter;

  shoal_dbus_manager_call_list_recipes_sync (td->manager, &recipes, NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, recipes);
  while (g_variant_iter_next (&iter, "(&s&s&s&s&s)", &listed, &commit, &image, &source, &description))
    {
      if (g_strcmp0 (listed, name) != 0)
        continue;
      if (source_out != NULL)
        *source_out = g_strdup (source);
      if (description_out != NULL)
        *description_out = g_strdup (description);
      return TRUE;
    }
  return FALSE;
}

/* AddRecipe of the fast recipe named @name (not the default unless it is
 * fast-sim), described @description if not NULL */
static void
add_fast_recipe (ShoalTestDaemon *td, const gchar *name, const gchar *description)
{
  g_autoptr(GString) json = g_string_new (shoal_test_fast_recipe ());
  g_autofree gchar *quoted = g_strdup_printf ("\"%s\"", name);
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (name, "fast-sim") != 0)
    {
      g_string_replace (json, "\"fast-sim\"", quoted, 1);
      g_string_replace (json, "\"default\": true", "\"default\": false", 1);
    }
  if (description != NULL)
    g_string_replace (json, "Fast simulated deployment for the D-Bus tests", description, 1);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, json->str, NULL, &error);
  g_assert_no_error (error);
}

/* deploys the devices @ids (at @paths) and waits until all are installed */
static void
deploy_until_installed (ShoalTestDaemon *td, GStrv ids, GStrv paths)
{
  g_autoptr(GDBusObjectManager) om = NULL;
  g_autoptr(GError) error = NULL;
  WaitState ws = { 0 };

  om = shoal_dbus_object_manager_client_new_sync (td->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                  "org.shoal.Shoal1", "/org/shoal/Shoal1", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, (const gchar * const *) ids, NULL, &error);
  g_assert_no_error (error);
  ws.om = om;
  ws.paths = paths;
  ws.state = "installed";
  if (!shoal_test_wait_for (all_in_state, &ws, 30000))
    g_error ("the devices of the added recipe did not reach “installed” within 30 s");
}

/* AddRecipe is durable before it returns: after a crash the recipe is in
 * service again, over a file of its name, and its devices deploy */
static void
test_dbus_added_recipe_restart (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autofree gchar *source = NULL;
  g_autofree gchar *description = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) ids = ids_of ("ar-", 2);

  shoal_test_daemon_start (td, FALSE);
  add_fast_recipe (td, "added-sim", NULL);
  add_fast_recipe (td, "fast-sim", "replaced over D-Bus");
  paths = enroll (td, "ar-", 2);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "added-sim",
                                              NULL, &error);
  g_assert_no_error (error);

  shoal_test_daemon_kill (td);
  shoal_test_daemon_start (td, FALSE);
  g_assert_true (listed_recipe (td, "added-sim", &source, NULL));
  g_assert_cmpstr (source, ==, "D-Bus");
  g_assert_true (listed_recipe (td, "fast-sim", NULL, &description));
  g_assert_cmpstr (description, ==, "replaced over D-Bus");
  g_assert_true (listed_recipe (td, "slow-sim", NULL, NULL));
  deploy_until_installed (td, ids, paths);
}

static void
test_dbus_plugins (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) plugins = NULL;
  g_autoptr(GVariant) steps = NULL;
  const gchar *module, *name, *description, *load_error, *scope, *phase;
  gboolean loaded, sim_loaded = FALSE, broken_refused = FALSE, missing_refused = FALSE, python_loaded = FALSE;
  gboolean has_sim = FALSE, has_group = FALSE, has_broken = FALSE;
  GVariantIter iter;

  shoal_test_daemon_start (td, TRUE);
  shoal_dbus_manager_call_list_plugins_sync (td->manager, &plugins, NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, plugins);
  while (g_variant_iter_next (&iter, "(&s&s&sb&s)", &module, &name, &description, &loaded, &load_error))
    {
      g_test_message ("plugin %s loaded=%d error=%s", module, loaded, load_error);
      if (g_strcmp0 (module, "shoal-sim") == 0)
        sim_loaded = loaded && load_error[0] == '\0';
      /* without GI_TYPELIB_PATH (the test daemon is started without it) */
      if (g_strcmp0 (module, "shoal_python_example") == 0)
        python_loaded = loaded && load_error[0] == '\0';
      if (g_strcmp0 (module, "shoal-test-broken-symbol") == 0)
        broken_refused = !loaded && load_error[0] != '\0';
      if (g_strcmp0 (module, "shoal-test-missing-module") == 0)
        missing_refused = !loaded && load_error[0] != '\0';
    }
  g_assert_true (sim_loaded);
  g_assert_true (python_loaded);
  g_assert_true (broken_refused);
  g_assert_true (missing_refused);

  shoal_dbus_manager_call_list_steps_sync (td->manager, &steps, NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, steps);
  while (g_variant_iter_next (&iter, "(&s&s&s&s&s)", &name, &module, &scope, &phase, &description))
    {
      has_sim |= g_strcmp0 (name, "sim") == 0 && g_strcmp0 (scope, "device") == 0;
      has_group |= g_strcmp0 (name, "sim-group") == 0 && g_strcmp0 (scope, "group") == 0 &&
                   g_strcmp0 (module, "shoal-sim-group") == 0;
      has_broken |= g_strcmp0 (name, "test-broken") == 0;
    }
  g_assert_true (has_sim);
  g_assert_true (has_group);
  g_assert_false (has_broken);
}

static gint
run_as_nobody (ShoalTestDaemon *td, const gchar *path, const gchar *method, const gchar *arg, gchar **err)
{
  g_autofree gchar *address = g_strconcat ("--address=", td->address, NULL);
  const gchar *argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "gdbus", "call", address, "--dest", "org.shoal.Shoal1",
                          "--object-path", path, "--method", method, arg, NULL };

  return shoal_test_run (argv, NULL, err, 30);
}

static void
test_dbus_unauthorized (void)
{
  g_autoptr(ShoalTestDaemon) td = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) stats = NULL;
  g_autoptr(GVariant) count = NULL;
  g_autofree gchar *err = NULL;
  g_autofree gchar *setpriv = g_find_program_in_path ("setpriv");
  g_autofree gchar *gdbus = g_find_program_in_path ("gdbus");
  g_auto(GStrv) paths = NULL;
  guint64 denied = 0;

  if (getuid () != 0 || setpriv == NULL || gdbus == NULL)
    {
      g_test_skip ("needs root, setpriv and gdbus to call as another user");
      return;
    }
  td = shoal_test_daemon_new ();
  shoal_test_daemon_set_open_bus (td);
  shoal_test_daemon_start (td, FALSE);
  paths = enroll (td, "mine-", 1);

  /* another user may read... */
  g_assert_cmpint (run_as_nobody (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager.ListSteps",
                                  NULL, &err), ==, 0);
  g_clear_pointer (&err, g_free);
  /* ...but change nothing, on the manager or on a device */
  g_assert_cmpint (run_as_nobody (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager.EnrollDevices",
                                  "[('intruder', @as [], '')]", &err), !=, 0);
  g_test_message ("as nobody: %s", err);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.PermissionDenied"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_as_nobody (td, paths[0], "org.shoal.Shoal1.Device.Deploy", NULL, &err), !=, 0);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.PermissionDenied"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_as_nobody (td, paths[0], "org.shoal.Shoal1.Device.RemoveMac", "'52:54:00:00:00:01'", &err), !=, 0);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.PermissionDenied"));

  shoal_dbus_manager_call_get_stats_sync (td->manager, &stats, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (stats, "denied-calls", "t", &denied));
  g_assert_cmpuint (denied, ==, 3);
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 1);
}

typedef struct
{
  ShoalTestDaemon *td;
  gchar          **paths;
  const gchar     *state;
  guint            at_least;
} WaitCount;

/* at least @at_least devices in @state, asked over the bus (no cache) */
static gboolean
count_in_state (gpointer user_data)
{
  WaitCount *wc = user_data;
  guint n = 0;

  for (guint i = 0; wc->paths[i] != NULL; i++)
    {
      g_autofree gchar *state = get_string (wc->td, wc->paths[i], "State");

      n += g_strcmp0 (state, wc->state) == 0 ? 1 : 0;
    }
  return n >= wc->at_least;
}

static gboolean
any_step_finished (gpointer user_data)
{
  WaitCount *wc = user_data;
  g_autoptr(GVariant) stats = NULL;
  guint64 transitions = 0;

  shoal_dbus_manager_call_get_stats_sync (wc->td->manager, &stats, NULL, NULL);
  if (stats != NULL)
    g_variant_lookup (stats, "transitions", "t", &transitions);
  /* enroll + assign + a few steps of a few devices */
  return transitions >= 3 * g_strv_length (wc->paths) + 10;
}

/* enrolls @n devices, deploys medium-sim on them and waits until a step
 * has finished; @wc is set up to wait on them */
static gchar **
deploy_medium_fleet (ShoalTestDaemon *td, const gchar *prefix, guint n, WaitCount *wc)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) ids = ids_of (prefix, n);
  gchar **paths = enroll (td, prefix, n);
  const gchar *none[] = { NULL };

  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "medium-sim", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, none, NULL, &error);
  g_assert_no_error (error);
  wc->td = td;
  wc->paths = paths;
  g_assert_true (shoal_test_wait_for (any_step_finished, wc, 20000));
  return paths;
}

static void
test_dbus_crash_resume (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_auto(GStrv) paths = NULL;
  WaitCount wc = { 0 };
  guint installed_before = 0;

  shoal_test_daemon_start (td, FALSE);
  paths = deploy_medium_fleet (td, "k-", 30, &wc);

  /* kill -9 in the middle of the run, then start again */
  shoal_test_daemon_kill (td);
  shoal_test_daemon_start (td, FALSE);
  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autofree gchar *state = get_string (td, paths[i], "State");

      installed_before += g_strcmp0 (state, "installed") == 0 ? 1 : 0;
    }
  g_test_message ("%u of 30 installed before the crash", installed_before);
  g_assert_cmpuint (installed_before, <, 30);

  wc.state = "installed";
  wc.at_least = 30;
  if (!shoal_test_wait_for (count_in_state, &wc, 60000))
    g_error ("the fleet did not finish after the restart");

  /* each journal: increasing, and every step finished once */
  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autoptr(GVariant) entries = get_journal (td, paths[i], 0);
      g_autoptr(GHashTable) finished = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      guint64 prev = 0;

      for (guint j = 0; j < g_variant_n_children (entries); j++)
        {
          const gchar *source, *op, *message;
          guint64 seq;

          g_variant_get_child (entries, j, "(tx&s&s&s&s)", &seq, NULL, &source, &op, NULL, &message);
          g_assert_cmpuint (seq, >, prev);
          prev = seq;
          if (g_strcmp0 (op, "step-finished") == 0 && !g_hash_table_add (finished, g_strdup (source)))
            g_error ("%s: step %s finished twice", paths[i], source);
        }
      g_assert_cmpuint (g_hash_table_size (finished), ==, 4);
    }
}

/* shoald started again while one runs a deployment: on the same bus it
 * stops before it opens the store or starts a service (it used to open
 * shoal.db, start HTTP and resume every deployment before finding the bus
 * name taken, and the running daemon lost journal entries to UNIQUE
 * constraint failures); on another bus, the lock of the state directory
 * stops it, naming the directory and the running daemon's PID. The first
 * daemon finishes its fleet undisturbed. */
/* runs shoald on @address and @state_dir with @td's configuration while
 * @td's runs; it must exit at once, with 1, and @expected on its standard
 * error, without having started its HTTP server */
static void
run_second_shoald (ShoalTestDaemon *td, const gchar *address, const gchar *state_dir, const gchar *expected)
{
  g_autofree gchar *address_arg = g_strconcat ("--address=", address, NULL);
  g_autofree gchar *state_arg = g_strconcat ("--state-dir=", state_dir, NULL);
  g_autofree gchar *conf_arg = g_strconcat ("--config=", td->tmpdir, "/shoald.conf", NULL);
  g_autofree gchar *plugins_arg = g_strconcat ("--plugin-dir=", g_getenv ("SHOAL_TEST_PLUGINDIR"), NULL);
  const gchar *argv[] = { g_getenv ("SHOALD"), address_arg, state_arg, conf_arg, plugins_arg, "--verbose", NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  g_assert_cmpint (shoal_test_run (argv, &out, &err, 30), ==, 1);
  g_test_message ("second shoald: %s%s", out, err);
  g_assert_nonnull (strstr (err, expected));
  g_assert_null (strstr (out, "HTTP server at"));
  g_assert_null (strstr (err, "HTTP server at"));
}

/* shoald started again while one runs a deployment: on the same bus it
 * stops before it opens the store or starts a service (it used to open
 * shoal.db, start HTTP and resume every deployment before finding the bus
 * name taken, and the running daemon lost journal entries to UNIQUE
 * constraint failures); on another bus, the lock of the state directory
 * stops it, naming the directory and the running daemon's PID. The first
 * daemon finishes its fleet undisturbed. */
static void
test_dbus_second_daemon (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(ShoalTestDaemon) other_bus = shoal_test_daemon_new ();
  g_auto(GStrv) paths = NULL;
  g_autofree gchar *state_dir = g_build_filename (td->tmpdir, "state", NULL);
  g_autofree gchar *other_state = g_build_filename (other_bus->tmpdir, "state", NULL);
  g_autofree gchar *other_db = g_build_filename (other_state, "shoal.db", NULL);
  g_autofree gchar *in_use = NULL;
  g_autofree gchar *log = NULL;
  const gchar *name_taken = "Could not own the bus name org.shoal.Shoal1: another shoald owns it";
  WaitCount wc = { 0 };

  shoal_test_daemon_start (td, FALSE);
  paths = deploy_medium_fleet (td, "s-", 10, &wc);

  /* the same bus: the same state directory, then another one */
  run_second_shoald (td, td->address, state_dir, name_taken);
  run_second_shoald (td, td->address, other_state, name_taken);
  g_assert_false (g_file_test (other_db, G_FILE_TEST_EXISTS));

  /* another bus, the same state directory */
  shoal_test_daemon_set_open_bus (other_bus);
  in_use = g_strdup_printf ("The state directory %s is in use by another shoald (PID %s)",
                            state_dir, g_subprocess_get_identifier (td->daemon));
  run_second_shoald (td, other_bus->address, state_dir, in_use);

  wc.state = "installed";
  wc.at_least = 10;
  if (!shoal_test_wait_for (count_in_state, &wc, 60000))
    g_error ("the fleet did not finish");
  g_assert_true (shoal_test_daemon_is_running (td));
  g_assert_true (g_file_get_contents (td->log_path, &log, NULL, NULL));
  g_assert_null (strstr (log, "UNIQUE constraint"));
}

/* A group step of 1.5 s for the whole fleet (wait-for-all), after a short
 * per-device step */
#define GROUP_RESUME_RECIPE \
  "{\"name\": \"group-resume\", \"steps\": [" \
  " {\"step\": \"sim\", \"id\": \"boot\", \"options\": {\"min-ms\": 10, \"max-ms\": 50, \"phase\": \"boot\"}}," \
  " {\"step\": \"sim-group\", \"id\": \"multicast\", \"options\": {\"min-ms\": 1500, \"max-ms\": 1500}}]," \
  " \"group\": {\"min-devices\": 1, \"max-devices\": 0, \"max-wait\": 30, \"wait-for-all\": true}}"

static gboolean
all_installed_or_failed (gpointer user_data)
{
  WaitCount *wc = user_data;

  for (guint i = 0; wc->paths[i] != NULL; i++)
    {
      g_autofree gchar *state = get_string (wc->td, wc->paths[i], "State");

      if (g_strcmp0 (state, "installed") != 0 && g_strcmp0 (state, "failed") != 0)
        return FALSE;
    }
  return TRUE;
}

/* Devices that ran a group step together when shoald was killed run it
 * together again after the restart: one group, not one group each */
static void
test_dbus_crash_group (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) ids = ids_of ("g-", 4);
  g_autofree gchar *before = NULL;
  g_autofree gchar *after = NULL;
  WaitCount wc = { 0 };

  shoal_test_daemon_start (td, FALSE);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, GROUP_RESUME_RECIPE, NULL, &error);
  g_assert_no_error (error);
  paths = enroll (td, "g-", 4);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "group-resume",
                                              NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, (const gchar * const *) ids, NULL, &error);
  g_assert_no_error (error);
  wc.td = td;
  wc.paths = paths;
  wc.state = "transfer";
  wc.at_least = 4;
  if (!shoal_test_wait_for (count_in_state, &wc, 10000))
    g_error ("the group did not start within 10 s");
  before = get_string (td, paths[0], "Group");
  for (guint i = 1; paths[i] != NULL; i++)
    {
      g_autofree gchar *group = get_string (td, paths[i], "Group");

      g_assert_cmpstr (group, ==, before);
    }

  shoal_test_daemon_kill (td);
  shoal_test_daemon_start (td, FALSE);
  if (!shoal_test_wait_for (all_installed_or_failed, &wc, 20000))
    g_error ("the group did not finish within 20 s of the restart");
  after = get_string (td, paths[0], "Group");
  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autoptr(GVariant) entries = get_journal (td, paths[i], 0);
      g_autofree gchar *state = get_string (td, paths[i], "State");
      g_autofree gchar *group = get_string (td, paths[i], "Group");
      const gchar *started = NULL;

      g_assert_cmpstr (state, ==, "installed");
      g_assert_cmpstr (group, ==, after);
      for (guint j = 0; j < g_variant_n_children (entries); j++)
        {
          const gchar *source, *op, *message;

          g_variant_get_child (entries, j, "(tx&s&s&s&s)", NULL, NULL, &source, &op, NULL, &message);
          if (g_strcmp0 (source, "multicast") == 0 && g_strcmp0 (op, "step-started") == 0)
            started = message;
        }
      /* the run after the restart */
      g_assert_nonnull (started);
      if (strstr (started, "of 4 devices") == NULL)
        g_error ("%s: %s", ids[i], started);
    }
}

/* runs git in @dir; returns its stripped output */
static gchar *
git (const gchar *dir, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  const gchar *arg;
  va_list args;

  g_ptr_array_add (argv, (gpointer) "git");
  g_ptr_array_add (argv, (gpointer) "-C");
  g_ptr_array_add (argv, (gpointer) dir);
  va_start (args, dir);
  while ((arg = va_arg (args, const gchar *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  if (shoal_test_run ((const gchar * const *) argv->pdata, &out, &err, 60) != 0)
    g_error ("git failed: %s", err);
  return g_strdup (g_strstrip (out));
}

static void
commit_file (const gchar *repo, const gchar *name, const gchar *json, const gchar *message)
{
  g_autofree gchar *dir = g_build_filename (repo, "recipes", NULL);
  g_autofree gchar *file = g_strconcat (name, ".json", NULL);
  g_autofree gchar *path = g_build_filename (dir, file, NULL);
  g_autofree gchar *relative = g_build_filename ("recipes", file, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = NULL;

  g_mkdir_with_parents (dir, 0700);
  g_file_set_contents (path, json, -1, &error);
  g_assert_no_error (error);
  g_free (git (repo, "add", relative, NULL));
  out = git (repo, "-c", "user.name=shoal test", "-c", "user.email=test@example.invalid",
             "commit", "-q", "-m", message, NULL);
}

static void
commit_recipe (const gchar *repo, const gchar *description)
{
  g_autoptr(GString) json = g_string_new (shoal_test_fast_recipe ());

  g_string_replace (json, "Fast simulated deployment for the D-Bus tests", description, 1);
  commit_file (repo, "fast-sim", json->str, description);
}

/* the commit ListRecipes gives for fast-sim, or NULL */
static gchar *
listed_commit (ShoalTestDaemon *td)
{
  g_autoptr(GVariant) recipes = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *name, *commit, *image, *source, *description;
  GVariantIter iter;

  shoal_dbus_manager_call_list_recipes_sync (td->manager, &recipes, NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, recipes);
  while (g_variant_iter_next (&iter, "(&s&s&s&s&s)", &name, &commit, &image, &source, &description))
    {
      if (g_strcmp0 (name, "fast-sim") == 0)
        return g_strdup (commit);
    }
  return NULL;
}

typedef struct
{
  ShoalTestDaemon *td;
  const gchar     *commit;
} WaitCommit;

static gboolean
commit_listed (gpointer user_data)
{
  WaitCommit *wc = user_data;
  g_autofree gchar *commit = listed_commit (wc->td);

  return g_strcmp0 (commit, wc->commit) == 0;
}

/* a repository of fast-sim (described @description) and medium-sim in
 * @td's directory, which @td's shoald is to follow ("main"); its head
 * commit in @head. NULL, the test skipped, without git */
static gchar *
new_recipe_repo (ShoalTestDaemon *td, const gchar *description, gchar **head)
{
  g_autofree gchar *gitpath = g_find_program_in_path ("git");
  gchar *repo;

  if (gitpath == NULL)
    {
      g_test_skip ("needs git to make a recipe repository");
      return NULL;
    }
  repo = g_build_filename (td->tmpdir, "recipes.git", NULL);
  g_mkdir_with_parents (repo, 0700);
  g_free (git (repo, "init", "-q", "-b", "main", NULL));
  commit_recipe (repo, description);
  commit_file (repo, "medium-sim", shoal_test_medium_recipe (), "medium");
  *head = git (repo, "rev-parse", "HEAD", NULL);
  shoal_test_daemon_set_recipe_repo (td, repo, "main");
  return repo;
}

static void
test_dbus_recipe_repo (void)
{
  g_autoptr(ShoalTestDaemon) td = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *gitpath = g_find_program_in_path ("git");
  g_autofree gchar *repo = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *diff = NULL;
  g_autofree gchar *commit = NULL;
  WaitCommit wc;

  if (gitpath == NULL)
    {
      g_test_skip ("needs git to make a recipe repository");
      return;
    }
  td = shoal_test_daemon_new ();
  repo = g_build_filename (td->tmpdir, "recipes.git", NULL);
  g_mkdir_with_parents (repo, 0700);
  g_free (git (repo, "init", "-q", "-b", "main", NULL));
  commit_recipe (repo, "first version");
  c1 = git (repo, "rev-parse", "HEAD", NULL);
  commit_recipe (repo, "second version");
  c2 = git (repo, "rev-parse", "HEAD", NULL);
  shoal_test_daemon_set_recipe_repo (td, repo, "main");
  shoal_test_daemon_start (td, FALSE);

  /* the start-up sync serves the branch's head */
  wc.td = td;
  wc.commit = c2;
  g_assert_true (shoal_test_wait_for (commit_listed, &wc, 20000));
  shoal_dbus_manager_call_diff_recipe_sync (td->manager, "fast-sim", c1, c2, &diff, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("diff:\n%s", diff);
  g_assert_nonnull (strstr (diff, "-  \"description\": \"first version\""));
  g_assert_nonnull (strstr (diff, "+  \"description\": \"second version\""));

  /* pinning an older commit rolls back; a bad ref changes nothing */
  shoal_dbus_manager_call_set_recipe_ref_sync (td->manager, c1, NULL, &error);
  g_assert_no_error (error);
  commit = listed_commit (td);
  g_assert_cmpstr (commit, ==, c1);
  shoal_dbus_manager_call_set_recipe_ref_sync (td->manager, "no-such-branch", NULL, &error);
  g_assert_nonnull (error);
  g_dbus_error_strip_remote_error (error);
  g_test_message ("bad ref: %s", error->message);
  g_clear_error (&error);
  g_clear_pointer (&commit, g_free);
  commit = listed_commit (td);
  g_assert_cmpstr (commit, ==, c1);
  shoal_dbus_manager_call_sync_recipes_sync (td->manager, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&commit, g_free);
  commit = listed_commit (td);
  g_assert_cmpstr (commit, ==, c1);

  /* the pin outlives a restart */
  shoal_test_daemon_stop (td);
  shoal_test_daemon_start (td, FALSE);
  wc.commit = c1;
  g_assert_true (shoal_test_wait_for (commit_listed, &wc, 20000));
}

/* With a recipe repository, the recipes added over D-Bus are in service
 * again after a restart: the start-up fetch brings the repository's new
 * commit for its own recipes but leaves the added ones, over a repository
 * recipe of their name too (it dropped them all, and their stored copies) */
static void
test_dbus_recipe_repo_added_restart (void)
{
  g_autoptr(ShoalTestDaemon) td = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *repo = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *source = NULL;
  g_autofree gchar *description = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) ids = ids_of ("k", 2);
  WaitCommit wc;

  td = shoal_test_daemon_new ();
  repo = new_recipe_repo (td, "first version", &c1);
  if (repo == NULL)
    return;
  shoal_test_daemon_start (td, FALSE);
  wc.td = td;
  wc.commit = c1;
  g_assert_true (shoal_test_wait_for (commit_listed, &wc, 20000));

  add_fast_recipe (td, "slow", NULL);
  add_fast_recipe (td, "medium-sim", "medium over D-Bus");
  paths = enroll (td, "k", 2);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "slow",
                                              NULL, &error);
  g_assert_no_error (error);

  /* the repository moves on while shoald is down */
  shoal_test_daemon_kill (td);
  commit_recipe (repo, "second version");
  c2 = git (repo, "rev-parse", "HEAD", NULL);
  shoal_test_daemon_start (td, FALSE);
  wc.commit = c2;
  g_assert_true (shoal_test_wait_for (commit_listed, &wc, 20000));
  g_assert_true (listed_recipe (td, "fast-sim", NULL, &description));
  g_assert_cmpstr (description, ==, "second version");
  g_clear_pointer (&description, g_free);
  g_assert_true (listed_recipe (td, "slow", &source, NULL));
  g_assert_cmpstr (source, ==, "D-Bus");
  g_assert_true (listed_recipe (td, "medium-sim", NULL, &description));
  g_assert_cmpstr (description, ==, "medium over D-Bus");
  deploy_until_installed (td, ids, paths);

  /* a sync asked for replaces them with the repository's, as documented */
  shoal_dbus_manager_call_sync_recipes_sync (td->manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (listed_recipe (td, "slow", NULL, NULL));
  g_clear_pointer (&description, g_free);
  g_assert_true (listed_recipe (td, "medium-sim", NULL, &description));
  g_assert_cmpstr (description, ==, "Steps of a few hundred milliseconds, to be interrupted");

  /* and a restart after it does not bring them back */
  shoal_test_daemon_stop (td);
  shoal_test_daemon_start (td, FALSE);
  g_assert_true (shoal_test_wait_for (commit_listed, &wc, 20000));
  g_assert_false (listed_recipe (td, "slow", NULL, NULL));
}

/* a restart while the branch's head is invalid serves the last good
 * commit from the local clone (it served no recipe of the repository) */
static void
test_dbus_recipe_repo_last_good (void)
{
  g_autoptr(ShoalTestDaemon) td = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *repo = NULL;
  g_autofree gchar *head = NULL;
  g_autofree gchar *commit = NULL;
  WaitCommit wc;

  td = shoal_test_daemon_new ();
  repo = new_recipe_repo (td, "good", &head);
  if (repo == NULL)
    return;
  shoal_test_daemon_start (td, FALSE);
  wc.td = td;
  wc.commit = head;
  g_assert_true (shoal_test_wait_for (commit_listed, &wc, 20000));
  shoal_test_daemon_stop (td);

  commit_file (repo, "fast-sim", "{\"name\": \"fast-sim\", \"steps\": ", "broken");
  shoal_test_daemon_start (td, FALSE);
  /* a sync asked for fails as the start-up one did */
  shoal_dbus_manager_call_sync_recipes_sync (td->manager, NULL, &error);
  g_assert_nonnull (error);
  g_dbus_error_strip_remote_error (error);
  g_test_message ("sync: %s", error->message);
  g_assert_nonnull (strstr (error->message, "recipes/fast-sim.json@"));
  commit = listed_commit (td);
  g_assert_cmpstr (commit, ==, head);
  g_assert_true (listed_recipe (td, "medium-sim", NULL, NULL));
}

/* a restart while the repository is out of reach: the deployments resume
 * with the recipes of the local clone */
static void
test_dbus_recipe_repo_resume (void)
{
  g_autoptr(ShoalTestDaemon) td = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *repo = NULL;
  g_autofree gchar *gone = NULL;
  g_autofree gchar *head = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) ids = ids_of ("r-", 12);
  const gchar *none[] = { NULL };
  WaitCount wc = { 0 };
  WaitCommit wcm;

  td = shoal_test_daemon_new ();
  repo = new_recipe_repo (td, "fast", &head);
  if (repo == NULL)
    return;
  gone = g_build_filename (td->tmpdir, "recipes-moved.git", NULL);
  shoal_test_daemon_start (td, FALSE);
  wcm.td = td;
  wcm.commit = head;
  g_assert_true (shoal_test_wait_for (commit_listed, &wcm, 20000));

  paths = enroll (td, "r-", 12);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, (const gchar * const *) ids, "medium-sim", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, none, NULL, &error);
  g_assert_no_error (error);
  wc.td = td;
  wc.paths = paths;
  g_assert_true (shoal_test_wait_for (any_step_finished, &wc, 20000));

  shoal_test_daemon_kill (td);
  g_assert_cmpint (g_rename (repo, gone), ==, 0);
  g_test_message ("restarting without the repository");
  shoal_test_daemon_start (td, FALSE);
  g_test_message ("restarted");
  wc.state = "installed";
  wc.at_least = 12;
  if (!shoal_test_wait_for (count_in_state, &wc, 60000))
    g_error ("the fleet did not finish after a restart without its repository");
  g_test_message ("finished");
}

static void
set_daemon_fsize (ShoalTestDaemon *td, rlim_t limit)
{
  struct rlimit rl = { 0 };
  pid_t pid = (pid_t) g_ascii_strtoll (g_subprocess_get_identifier (td->daemon), NULL, 10);

  g_assert_cmpint (prlimit (pid, RLIMIT_FSIZE, NULL, &rl), ==, 0);
  rl.rlim_cur = MIN (limit, rl.rlim_max);
  g_assert_cmpint (prlimit (pid, RLIMIT_FSIZE, &rl, NULL), ==, 0);
}

typedef struct
{
  guint pending;
  guint failed;
} Pipelined;

static void
pipelined_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Pipelined *p = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    {
      g_test_message ("a pipelined call failed: %s", error->message);
      p->failed++;
    }
  p->pending--;
}

static void
pipeline (ShoalTestDaemon *td,
          Pipelined       *p,
          const gchar     *path,
          const gchar     *iface,
          const gchar     *method,
          GVariant        *args)
{
  g_dbus_connection_call (td->connection, "org.shoal.Shoal1", path, iface, method, args, NULL,
                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, pipelined_done, p);
  p->pending++;
}

static gboolean
pipelined_all_done (gpointer data)
{
  return ((Pipelined *) data)->pending == 0;
}

/* Calls a client sends back to back, without waiting for the answers, take
 * effect in the order it sent them. Each call's check ran in a worker
 * thread of its own (g-authorize-method), and the calls came back to the
 * main loop in whatever order those finished: of 41 alternating
 * SetBootAction calls the last one lost about one time in four, and an
 * EnrollDevices then RemoveDevice of the same id failed as often as not. */
static void
test_dbus_call_order (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GVariant) action = NULL;
  g_autoptr(GVariant) count = NULL;
  g_autoptr(GVariant) journal = NULL;
  g_auto(GStrv) paths = NULL;
  Pipelined p = { 0 };
  guint set_entries = 0;

  shoal_test_daemon_start (td, FALSE);
  paths = enroll (td, "order-", 1);
  for (guint round = 0; round < 5; round++)
    {
      /* ignore, local, ..., ignore (41 calls): each one changes it */
      for (guint i = 0; i < 41; i++)
        pipeline (td, &p, paths[0], DEVICE_IFACE, "SetBootAction",
                  g_variant_new ("(s)", i % 2 == 0 ? "ignore" : "local"));
      /* an id enrolled and removed at once, twenty times */
      for (guint i = 0; i < 20; i++)
        {
          pipeline (td, &p, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "EnrollDevices",
                    g_variant_new ("(@a(sass))", make_devices_from ("transient-", 1000 + i, 1)));
          pipeline (td, &p, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "RemoveDevice",
                    g_variant_new ("(s)", "transient-1"));
        }
      /* and the read that follows sees them all */
      g_assert_true (shoal_test_wait_for (pipelined_all_done, &p, 20000));
      g_assert_cmpuint (p.failed, ==, 0);
      g_clear_pointer (&action, g_variant_unref);
      action = get_property (td, paths[0], DEVICE_IFACE, "BootAction");
      g_assert_cmpstr (g_variant_get_string (action, NULL), ==, "ignore");
      /* back to local for the next round, in order too */
      pipeline (td, &p, paths[0], DEVICE_IFACE, "SetBootAction", g_variant_new ("(s)", "local"));
      g_assert_true (shoal_test_wait_for (pipelined_all_done, &p, 20000));
    }
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 1);
  journal = get_journal (td, paths[0], 0);
  for (gsize i = 0; i < g_variant_n_children (journal); i++)
    {
      const gchar *operation = NULL;

      g_variant_get_child (journal, i, "(tx&s&s&s&s)", NULL, NULL, NULL, &operation, NULL, NULL);
      set_entries += g_strcmp0 (operation, "set-boot-action") == 0;
    }
  g_assert_cmpuint (set_entries, ==, 5 * 42);
}

static gboolean
store_ok (ShoalTestDaemon *td, guint64 *errors, gchar **last_error)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) stats = NULL;
  gboolean ok = FALSE;

  shoal_dbus_manager_call_get_stats_sync (td->manager, &stats, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (stats, "store-ok", "b", &ok));
  g_assert_true (g_variant_lookup (stats, "store-errors", "t", errors));
  g_assert_true (g_variant_lookup (stats, "store-last-error", "s", last_error));
  return ok;
}

/* A store that cannot write (the file-size limit, as a full disk) fails
 * the calls with a clear error, keeps their changes and takes them and
 * every later change once it can write again, without a restart */
static void
test_dbus_store_outage (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) count = NULL;
  g_autofree gchar *wal = NULL;
  g_autofree gchar *last_error = NULL;
  g_auto(GStrv) paths = NULL;
  g_auto(GStrv) again = NULL;
  guint64 errors = 0;
  GStatBuf st;

  /* the daemon inherits the ignored signal: a write past the limit fails
   * with EFBIG instead of killing it */
  signal (SIGXFSZ, SIG_IGN);
  shoal_test_daemon_start (td, FALSE);
  signal (SIGXFSZ, SIG_DFL);
  g_strfreev (enroll (td, "before-", 1));
  wal = g_build_filename (td->tmpdir, "state", "shoal.db-wal", NULL);
  g_assert_cmpint (g_stat (wal, &st), ==, 0);
  set_daemon_fsize (td, (rlim_t) st.st_size);

  shoal_dbus_manager_call_enroll_devices_sync (td->manager, make_devices_from ("during-", 100, 50),
                                               &paths, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE);
  g_test_message ("while the store fails: %s", error->message);
  g_assert_nonnull (strstr (error->message, "written once the store can write again"));
  g_assert_nonnull (strstr (error->message, "if shoald stops or restarts before then, the change is lost"));
  g_clear_error (&error);
  g_assert_false (store_ok (td, &errors, &last_error));
  g_assert_cmpuint (errors, >=, 1);
  g_assert_cmpstr (last_error, !=, "");
  g_clear_pointer (&last_error, g_free);

  set_daemon_fsize (td, RLIM_INFINITY);
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, make_devices_from ("after-", 200, 1),
                                               &again, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (store_ok (td, &errors, &last_error));

  /* everything is durable: a crash keeps all 52 */
  shoal_test_daemon_kill (td);
  shoal_test_daemon_start (td, FALSE);
  count = get_property (td, "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", "DeviceCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 52);
}

static guint64
entry_seq (GVariant *entries, gsize i)
{
  guint64 seq;

  g_variant_get_child (entries, i, "(txssss)", &seq, NULL, NULL, NULL, NULL, NULL);
  return seq;
}

/* A journal keeps its newest journal-keep entries, and GetJournal returns
 * them 1000 at a time */
static void
test_dbus_journal_pages (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  g_autoptr(GVariant) third = NULL;
  g_auto(GStrv) paths = NULL;

  shoal_test_daemon_set_conf (td, "daemon", "journal-keep", "1050");
  shoal_test_daemon_start (td, FALSE);
  paths = enroll (td, "j-", 1);
  /* 1 + 1100 entries */
  for (guint i = 0; i < 1100; i++)
    {
      g_autoptr(GVariant) reply = NULL;

      reply = g_dbus_connection_call_sync (td->connection, "org.shoal.Shoal1", paths[0], DEVICE_IFACE,
                                           "SetBootAction",
                                           g_variant_new ("(s)", i % 2 ? "local" : "ignore"),
                                           NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
      g_assert_no_error (error);
    }

  first = get_journal (td, paths[0], 0);
  g_assert_cmpuint (g_variant_n_children (first), ==, 1000);
  g_assert_cmpuint (entry_seq (first, 0), ==, 1101 - 1050 + 1);
  g_assert_cmpuint (entry_seq (first, 999), ==, 1051);
  second = get_journal (td, paths[0], 1051);
  g_assert_cmpuint (g_variant_n_children (second), ==, 50);
  g_assert_cmpuint (entry_seq (second, 49), ==, 1101);
  third = get_journal (td, paths[0], 1101);
  g_assert_cmpuint (g_variant_n_children (third), ==, 0);
}

/* every file and folder below @dir (not @dir itself): none open to group
 * or others */
static void
assert_private_tree (const gchar *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree gchar *path = g_build_filename (dir, name, NULL);
      GStatBuf st;

      g_assert_cmpint (g_lstat (path, &st), ==, 0);
      if (S_ISLNK (st.st_mode))
        continue;
      if ((st.st_mode & 077) != 0)
        g_error ("%s has mode %04o", path, (guint) (st.st_mode & 07777));
      if (S_ISDIR (st.st_mode))
        assert_private_tree (path);
    }
}

/* A state directory that exists with mode 0755: SQLite created shoal.db,
 * which holds the device tokens, 0644 (shoald ran with the umask it was
 * given, 022 here). shoald sets umask 077: shoal.db and everything else
 * it creates are its own alone, and it says the directory is open */
static void
test_dbus_state_dir_private (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autofree gchar *state = g_build_filename (td->tmpdir, "state", NULL);
  g_autofree gchar *db = g_build_filename (state, "shoal.db", NULL);
  g_autofree gchar *log = NULL;
  g_auto(GStrv) paths = NULL;
  g_autoptr(GError) error = NULL;
  mode_t old_mask = umask (022);
  GStatBuf st;

  g_assert_cmpint (g_mkdir (state, 0755), ==, 0);
  g_assert_cmpint (g_chmod (state, 0755), ==, 0);
  shoal_test_daemon_start (td, FALSE);
  umask (old_mask);
  /* something in the store: a device, its token */
  g_assert_true (shoal_dbus_manager_call_enroll_devices_sync (td->manager,
                                                              g_variant_new_parsed ("[('m1', ['52:54:00:00:70:01'], '')]"),
                                                              &paths, NULL, &error));
  g_assert_no_error (error);
  shoal_test_daemon_stop (td);
  g_assert_cmpint (g_stat (db, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  assert_private_tree (state);
  g_assert_true (g_file_get_contents (td->log_path, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "has mode 0755"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* map org.shoal.Shoal1.Error.* back to SHOAL_ERROR */
  (void) SHOAL_ERROR;

  g_test_add_func ("/shoal/dbus/manager-properties", test_dbus_manager_properties);
  g_test_add_func ("/shoal/dbus/enroll", test_dbus_enroll);
  g_test_add_func ("/shoal/dbus/enroll-batch", test_dbus_enroll_batch);
  g_test_add_func ("/shoal/dbus/enroll-uuid-unique", test_dbus_enroll_uuid_unique);
  g_test_add_func ("/shoal/dbus/boot-action-restart", test_dbus_boot_action_restart);
  g_test_add_func ("/shoal/dbus/remove-mac", test_dbus_remove_mac);
  g_test_add_func ("/shoal/dbus/bad-arguments", test_dbus_bad_arguments);
  g_test_add_func ("/shoal/dbus/call-order", test_dbus_call_order);
  g_test_add_func ("/shoal/dbus/deploy", test_dbus_deploy);
  g_test_add_func ("/shoal/dbus/assign-auto", test_dbus_assign_auto);
  g_test_add_func ("/shoal/dbus/properties-durable", test_dbus_properties_durable);
  g_test_add_func ("/shoal/dbus/cancel", test_dbus_cancel);
  g_test_add_func ("/shoal/dbus/batch-checked-first", test_dbus_batch_checked_first);
  g_test_add_func ("/shoal/dbus/added-recipe-restart", test_dbus_added_recipe_restart);
  g_test_add_func ("/shoal/dbus/crash-resume", test_dbus_crash_resume);
  g_test_add_func ("/shoal/dbus/crash-group", test_dbus_crash_group);
  g_test_add_func ("/shoal/dbus/second-daemon", test_dbus_second_daemon);
  g_test_add_func ("/shoal/dbus/plugins", test_dbus_plugins);
  g_test_add_func ("/shoal/dbus/recipe-repo", test_dbus_recipe_repo);
  g_test_add_func ("/shoal/dbus/recipe-repo-resume", test_dbus_recipe_repo_resume);
  g_test_add_func ("/shoal/dbus/recipe-repo-last-good", test_dbus_recipe_repo_last_good);
  g_test_add_func ("/shoal/dbus/recipe-repo-added-restart", test_dbus_recipe_repo_added_restart);
  g_test_add_func ("/shoal/dbus/unauthorized", test_dbus_unauthorized);
  g_test_add_func ("/shoal/dbus/store-outage", test_dbus_store_outage);
  g_test_add_func ("/shoal/dbus/journal-pages", test_dbus_journal_pages);
  g_test_add_func ("/shoal/dbus/state-dir-private", test_dbus_state_dir_private);
  return g_test_run ();
}
