/* test-shoalctl.c: shoalctl against the real shoald on a private bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-test-daemon.h"

typedef struct
{
  ShoalTestDaemon *td;
  gchar           *out;
  gchar           *err;
  gint             status;
} Ctl;

/* runs shoalctl --address=<bus> ARGS...; keeps its output in @ctl */
static gint
ctl_run (Ctl *ctl, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const gchar *arg;
  va_list args;

  g_clear_pointer (&ctl->out, g_free);
  g_clear_pointer (&ctl->err, g_free);
  g_ptr_array_add (argv, g_strdup (g_getenv ("SHOALCTL")));
  g_ptr_array_add (argv, g_strconcat ("--address=", ctl->td->address, NULL));
  va_start (args, ctl);
  while ((arg = va_arg (args, const gchar *)) != NULL)
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);
  ctl->status = shoal_test_run ((const gchar * const *) argv->pdata, &ctl->out, &ctl->err, 120);
  g_test_message ("stdout:\n%sstderr:\n%s", ctl->out, ctl->err);
  return ctl->status;
}

static void
assert_has (const gchar *text, const gchar *needle)
{
  if (text == NULL || strstr (text, needle) == NULL)
    g_error ("“%s” not found in:\n%s", needle, text);
}

static void
ctl_clear (Ctl *ctl)
{
  g_free (ctl->out);
  g_free (ctl->err);
  shoal_test_daemon_free (ctl->td);
}

static void
test_shoalctl_errors (void)
{
  Ctl ctl = { shoal_test_daemon_new () };

  shoal_test_daemon_start (ctl.td, FALSE);
  g_assert_cmpint (ctl_run (&ctl, "frobnicate", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: ");
  assert_has (ctl.err, "frobnicate");
  g_assert_cmpint (ctl_run (&ctl, "enroll", "bad", "--mac", "zz", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: devices[0].macs[0]: “zz” is not a MAC address");
  g_assert_cmpint (ctl_run (&ctl, "show", "nosuch", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: No device “nosuch”");
  /* log and boot-action say it as show does, not with the bus's words
   * ("Object does not exist at path ...") */
  g_assert_cmpint (ctl_run (&ctl, "log", "nope", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: No device “nope”");
  g_assert_cmpint (ctl_run (&ctl, "log", "nope", "--follow", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: No device “nope”");
  g_assert_cmpint (ctl_run (&ctl, "log", "nope", "--until-done", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: No device “nope”");
  g_assert_cmpint (ctl_run (&ctl, "boot-action", "nope", "local", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: No device “nope”");
  g_assert_cmpint (ctl_run (&ctl, "remove-mac", "nope", "52:54:00:12:34:56", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: No device “nope”");
  g_assert_cmpint (ctl_run (&ctl, "deploy", NULL), ==, 1);
  assert_has (ctl.err, "--all");
  g_assert_cmpint (ctl_run (&ctl, "recipe-sync", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: No recipe repository is configured");
  g_assert_cmpint (ctl_run (&ctl, "assign", "no-such-recipe", "x", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: ");
  ctl_clear (&ctl);
}

static void
test_shoalctl_no_daemon (void)
{
  g_autoptr(GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autofree gchar *address = NULL;
  /* watch waited for ever with no daemon, and watch --until-done
   * succeeded */
  const gchar *commands[][2] = { { "devices", NULL }, { "watch", NULL }, { "watch", "--until-done" } };

  g_test_dbus_up (bus);
  address = g_strconcat ("--address=", g_test_dbus_get_bus_address (bus), NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree gchar *out = NULL;
      g_autofree gchar *err = NULL;
      const gchar *argv[] = { g_getenv ("SHOALCTL"), address, commands[i][0], commands[i][1], NULL };

      g_assert_cmpint (shoal_test_run (argv, &out, &err, 10), ==, 1);
      assert_has (err, "shoalctl: shoald is not running on this bus");
    }
  g_test_dbus_down (bus);
}

static void
test_shoalctl_fleet (void)
{
  Ctl ctl = { shoal_test_daemon_new () };

  shoal_test_daemon_start (ctl.td, FALSE);
  g_assert_cmpint (ctl_run (&ctl, "steps", NULL), ==, 0);
  assert_has (ctl.out, "sim-group");
  assert_has (ctl.out, "transfer");
  g_assert_cmpint (ctl_run (&ctl, "plugins", NULL), ==, 0);
  assert_has (ctl.out, "shoal-sim");
  g_assert_cmpint (ctl_run (&ctl, "recipes", NULL), ==, 0);
  assert_has (ctl.out, "fast-sim");
  assert_has (ctl.out, "test-os");

  g_assert_cmpint (ctl_run (&ctl, "enroll", "--count", "5", "--prefix", "t-", NULL), ==, 0);
  assert_has (ctl.out, "Enrolled 5 devices");
  g_assert_cmpint (ctl_run (&ctl, "enroll", "one", "--mac", "52:54:00:12:34:56",
                            "--uuid", "4c4c4544-0042-3010-8052-b2c04f333232", NULL), ==, 0);
  assert_has (ctl.out, "Enrolled one");
  g_assert_cmpint (ctl_run (&ctl, "devices", NULL), ==, 0);
  assert_has (ctl.out, "ID");
  assert_has (ctl.out, "t-0005");
  assert_has (ctl.out, "discovered");
  assert_has (ctl.out, "6 devices");

  g_assert_cmpint (ctl_run (&ctl, "assign", "fast-sim", "--all", NULL), ==, 0);
  assert_has (ctl.out, "Assigned fast-sim to 6 devices");
  g_assert_cmpint (ctl_run (&ctl, "deploy", "--all", NULL), ==, 0);
  assert_has (ctl.out, "Deploying 6 devices");
  g_assert_cmpint (ctl_run (&ctl, "watch", "--until-done", NULL), ==, 0);
  assert_has (ctl.out, "6 devices: installed 6");
  /* every device is installed: it said "Deploying every device that has a
   * recipe" and started none */
  g_assert_cmpint (ctl_run (&ctl, "deploy", "--all", NULL), ==, 0);
  assert_has (ctl.out, "No device to deploy");
  g_assert_cmpint (ctl_run (&ctl, "deploy", "t-0001", "t-0001", NULL), ==, 1);
  assert_has (ctl.err, "named twice");

  g_assert_cmpint (ctl_run (&ctl, "show", "one", NULL), ==, 0);
  assert_has (ctl.out, "52:54:00:12:34:56");
  assert_has (ctl.out, "4c4c4544-0042-3010-8052-b2c04f333232");
  assert_has (ctl.out, "installed");
  assert_has (ctl.out, "fast-sim");
  assert_has (ctl.out, "100%");
  g_assert_cmpint (ctl_run (&ctl, "log", "one", NULL), ==, 0);
  assert_has (ctl.out, "enroll");
  assert_has (ctl.out, "installed");
  g_assert_cmpint (ctl_run (&ctl, "log", "one", "--follow", "--until-done", NULL), ==, 0);
  assert_has (ctl.out, "installed");
  g_assert_cmpint (ctl_run (&ctl, "stats", NULL), ==, 0);
  assert_has (ctl.out, "transitions");
  assert_has (ctl.out, "installed");

  /* a second deployment of one device, followed live */
  g_assert_cmpint (ctl_run (&ctl, "deploy", "t-0001", NULL), ==, 0);
  assert_has (ctl.out, "Deploying 1 device");
  g_assert_cmpint (ctl_run (&ctl, "log", "t-0001", "--follow", "--until-done", NULL), ==, 0);
  assert_has (ctl.out, "deployment 2");

  g_assert_cmpint (ctl_run (&ctl, "boot-action", "one", "ignore", NULL), ==, 0);
  g_assert_cmpint (ctl_run (&ctl, "show", "one", NULL), ==, 0);
  assert_has (ctl.out, "ignore");
  /* a NIC gone to another machine */
  g_assert_cmpint (ctl_run (&ctl, "enroll", "two", "--mac", "52:54:00:12:34:57", "--mac", "52:54:00:12:34:58", NULL), ==, 0);
  g_assert_cmpint (ctl_run (&ctl, "remove-mac", "two", "52:54:00:12:34:58", NULL), ==, 0);
  assert_has (ctl.out, "MAC 52:54:00:12:34:58 removed from two");
  g_assert_cmpint (ctl_run (&ctl, "show", "two", NULL), ==, 0);
  assert_has (ctl.out, "52:54:00:12:34:57");
  g_assert_null (strstr (ctl.out, "52:54:00:12:34:58"));
  g_assert_cmpint (ctl_run (&ctl, "log", "two", NULL), ==, 0);
  assert_has (ctl.out, "MAC 52:54:00:12:34:58 removed by");
  g_assert_cmpint (ctl_run (&ctl, "remove-mac", "two", "52:54:00:12:34:58", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: device two has no MAC 52:54:00:12:34:58");
  g_assert_cmpint (ctl_run (&ctl, "remove", "two", NULL), ==, 0);
  g_assert_cmpint (ctl_run (&ctl, "remove", "one", NULL), ==, 0);
  g_assert_cmpint (ctl_run (&ctl, "devices", NULL), ==, 0);
  assert_has (ctl.out, "5 devices");
  ctl_clear (&ctl);
}

static gchar *
git (const gchar *dir, const gchar *a1, const gchar *a2, const gchar *a3, const gchar *a4)
{
  const gchar *argv[] = { "git", "-C", dir, "-c", "user.name=shoal test",
                          "-c", "user.email=test@example.invalid", a1, a2, a3, a4, NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  if (shoal_test_run (argv, &out, &err, 60) != 0)
    g_error ("git %s failed: %s", a1, err);
  return g_strdup (g_strstrip (out));
}

static gchar *
commit_version (const gchar *repo, const gchar *description)
{
  g_autofree gchar *dir = g_build_filename (repo, "recipes", NULL);
  g_autofree gchar *path = g_build_filename (dir, "fast-sim.json", NULL);
  g_autoptr(GString) json = g_string_new (shoal_test_fast_recipe ());
  g_autoptr(GError) error = NULL;

  g_string_replace (json, "Fast simulated deployment for the D-Bus tests", description, 1);
  g_mkdir_with_parents (dir, 0700);
  g_file_set_contents (path, json->str, -1, &error);
  g_assert_no_error (error);
  g_free (git (repo, "add", "recipes/fast-sim.json", NULL, NULL));
  g_free (git (repo, "commit", "-q", "-m", description));
  return git (repo, "rev-parse", "HEAD", NULL, NULL);
}

static void
test_shoalctl_recipes (void)
{
  Ctl ctl = { NULL };
  g_autofree gchar *gitpath = g_find_program_in_path ("git");
  g_autofree gchar *repo = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *c1_short = NULL;
  g_autofree gchar *c2_short = NULL;

  if (gitpath == NULL)
    {
      g_test_skip ("needs git to make a recipe repository");
      return;
    }
  ctl.td = shoal_test_daemon_new ();
  repo = g_build_filename (ctl.td->tmpdir, "recipes.git", NULL);
  g_mkdir_with_parents (repo, 0700);
  g_free (git (repo, "init", "-q", "-b", "main"));
  c1 = commit_version (repo, "first version");
  c2 = commit_version (repo, "second version");
  c1_short = g_strndup (c1, 12);
  c2_short = g_strndup (c2, 12);
  shoal_test_daemon_set_recipe_repo (ctl.td, repo, "main");
  shoal_test_daemon_start (ctl.td, FALSE);

  g_assert_cmpint (ctl_run (&ctl, "recipe-sync", NULL), ==, 0);
  assert_has (ctl.out, "Recipes synchronized");
  assert_has (ctl.out, c2_short);
  g_assert_cmpint (ctl_run (&ctl, "recipe-diff", "fast-sim", c1, c2, NULL), ==, 0);
  assert_has (ctl.out, "+  \"description\": \"second version\"");
  g_assert_cmpint (ctl_run (&ctl, "recipe-pin", c1, NULL), ==, 0);
  assert_has (ctl.out, "Recipes pinned to");
  assert_has (ctl.out, c1_short);
  g_assert_cmpint (ctl_run (&ctl, "recipe-pin", "no-such-tag", NULL), ==, 1);
  assert_has (ctl.err, "shoalctl: ");
  assert_has (ctl.err, "no-such-tag");
  g_assert_cmpint (ctl_run (&ctl, "recipes", NULL), ==, 0);
  assert_has (ctl.out, c1_short);
  ctl_clear (&ctl);
}

static guint
count_lines_with (const gchar *text, const gchar *needle)
{
  guint n = 0;

  for (const gchar *p = strstr (text, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* GetJournal answers 1000 entries at a time: shoalctl log pages */
static void
test_shoalctl_log_pages (void)
{
  Ctl ctl = { shoal_test_daemon_new () };

  shoal_test_daemon_start (ctl.td, FALSE);
  g_assert_cmpint (ctl_run (&ctl, "enroll", "one", NULL), ==, 0);
  for (guint i = 0; i < 1500; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = NULL;

      reply = g_dbus_connection_call_sync (ctl.td->connection, "org.shoal.Shoal1",
                                           "/org/shoal/Shoal1/devices/one",
                                           "org.shoal.Shoal1.Device", "SetBootAction",
                                           g_variant_new ("(s)", i % 2 ? "local" : "ignore"),
                                           NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
      g_assert_no_error (error);
    }
  g_assert_cmpint (ctl_run (&ctl, "log", "one", NULL), ==, 0);
  g_assert_cmpuint (count_lines_with (ctl.out, "set-boot-action"), ==, 1500);
  assert_has (ctl.out, "enroll");
  ctl_clear (&ctl);
}

/* what the audit put in a device's UUID through /boot/ipxe?uuid=: it
 * sets the terminal's title, clears the screen and starts a line of its
 * own */
#define EVIL "\033]0;pwned\a\033[2J\033[31mFAKE-UUID-LINE\nxx"

/* @text shows no control character but line feeds (one a line printed) */
static void
assert_no_controls (const gchar *text)
{
  for (const gchar *p = text; p != NULL && *p != '\0'; p++)
    if (((guchar) *p < 0x20 && *p != '\n') || *p == 0x7f)
      g_error ("control character 0x%02x at offset %" G_GSIZE_FORMAT " of:\n%s",
               (guchar) *p, (gsize) (p - text), text);
}

static gboolean
fake_get_journal (ShoalDBusDevice *device, GDBusMethodInvocation *invocation, guint64 since, gpointer data)
{
  GVariantBuilder entries;

  g_variant_builder_init (&entries, G_VARIANT_TYPE ("a(txssss)"));
  if (since == 0)
    g_variant_builder_add (&entries, "(txssss)", (guint64) 1, g_get_real_time (), "agent\r",
                           "disk\033[1A", "ok\a", "wiped sda " EVIL " \u202e élan");
  shoal_dbus_device_complete_get_journal (device, invocation, g_variant_builder_end (&entries));
  return TRUE;
}

static gboolean
fake_list_steps (ShoalDBusManager *manager, GDBusMethodInvocation *invocation, gpointer data)
{
  GVariantBuilder steps;

  g_variant_builder_init (&steps, G_VARIANT_TYPE ("a(sssss)"));
  g_variant_builder_add (&steps, "(sssss)", "sim", "shoal-sim", "device", "boot", "step " EVIL);
  shoal_dbus_manager_complete_list_steps (manager, invocation, g_variant_builder_end (&steps));
  return TRUE;
}

static gboolean
fake_list_plugins (ShoalDBusManager *manager, GDBusMethodInvocation *invocation, gpointer data)
{
  g_dbus_method_invocation_return_error_literal (invocation, G_IO_ERROR, G_IO_ERROR_FAILED,
                                                 "no plugins for " EVIL);
  return TRUE;
}

static void
on_name_acquired (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *) data;
}

/* Whatever the daemon sends (a UUID, an agent's journal entry, a step's
 * description, an error) reaches the terminal with its control characters
 * escaped: shoalctl against a fake org.shoal.Shoal1 whose strings carry
 * escape sequences, which shoalctl printed raw (show, log, tables,
 * errors) */
static void
test_shoalctl_escapes (void)
{
  g_autoptr(GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GDBusObjectManagerServer) server = NULL;
  g_autoptr(ShoalDBusObjectSkeleton) object = NULL;
  g_autoptr(ShoalDBusDevice) device = NULL;
  g_autoptr(ShoalDBusManager) manager = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *macs[] = { "02:00:00:aa:bb:cc", NULL };
  ShoalTestDaemon fake = { 0 };
  Ctl ctl = { &fake };
  gboolean owned = FALSE;
  guint owner_id;

  g_test_dbus_up (bus);
  fake.address = (gchar *) g_test_dbus_get_bus_address (bus);
  connection = g_dbus_connection_new_for_address_sync (fake.address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  g_assert_no_error (error);
  manager = shoal_dbus_manager_skeleton_new ();
  g_signal_connect (manager, "handle-list-steps", G_CALLBACK (fake_list_steps), NULL);
  g_signal_connect (manager, "handle-list-plugins", G_CALLBACK (fake_list_plugins), NULL);
  g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (manager), connection, "/org/shoal/Shoal1", &error);
  g_assert_no_error (error);
  device = shoal_dbus_device_skeleton_new ();
  shoal_dbus_device_set_id (device, "02-00-00-aa-bb-cc");
  shoal_dbus_device_set_macs (device, macs);
  shoal_dbus_device_set_uuid (device, EVIL);
  shoal_dbus_device_set_state (device, "booting");
  shoal_dbus_device_set_current_step (device, "boot\033[2K");
  shoal_dbus_device_set_recipe (device, "r\xc2\x9b" "31m");
  shoal_dbus_device_set_inventory (device, "{\"dmi\": {\"sys_vendor\": \"" "\\u001b[5m" "\", "
                                   "\"product_name\": \"x\"}, \"other\\u0007\": 1}");
  g_signal_connect (device, "handle-get-journal", G_CALLBACK (fake_get_journal), NULL);
  object = shoal_dbus_object_skeleton_new ("/org/shoal/Shoal1/devices/02_2d00_2d00_2daa_2dbb_2dcc");
  shoal_dbus_object_skeleton_set_device (object, device);
  server = g_dbus_object_manager_server_new ("/org/shoal/Shoal1");
  g_dbus_object_manager_server_export (server, G_DBUS_OBJECT_SKELETON (object));
  g_dbus_object_manager_server_set_connection (server, connection);
  owner_id = g_bus_own_name_on_connection (connection, "org.shoal.Shoal1", G_BUS_NAME_OWNER_FLAGS_NONE,
                                           on_name_acquired, NULL, &owned, NULL);
  g_assert_true (shoal_test_wait_for (is_true, &owned, 10000));

  g_assert_cmpint (ctl_run (&ctl, "show", "02-00-00-aa-bb-cc", NULL), ==, 0);
  assert_no_controls (ctl.out);
  assert_has (ctl.out, "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mFAKE-UUID-LINE\\x0axx");
  assert_has (ctl.out, "boot\\x1b[2K");
  assert_has (ctl.out, "r\\u009b31m");
  assert_has (ctl.out, "\\x1b[5m x");
  assert_has (ctl.out, "other\\x07");
  g_assert_cmpint (ctl_run (&ctl, "log", "02-00-00-aa-bb-cc", NULL), ==, 0);
  assert_no_controls (ctl.out);
  /* one entry, one line; valid UTF-8 kept, a right-to-left override not */
  g_assert_cmpuint (count_lines_with (ctl.out, "\n"), ==, 1);
  assert_has (ctl.out, "ok\\x07");
  assert_has (ctl.out, "agent\\x0d");
  assert_has (ctl.out, "disk\\x1b[1A");
  assert_has (ctl.out, "FAKE-UUID-LINE\\x0axx \\u202e élan");
  g_assert_cmpint (ctl_run (&ctl, "devices", NULL), ==, 0);
  assert_no_controls (ctl.out);
  assert_has (ctl.out, "boot\\x1b[2K");
  g_assert_cmpint (ctl_run (&ctl, "steps", NULL), ==, 0);
  assert_no_controls (ctl.out);
  assert_has (ctl.out, "step \\x1b]0;pwned");
  g_assert_cmpint (ctl_run (&ctl, "plugins", NULL), ==, 1);
  assert_no_controls (ctl.err);
  /* an error may have several lines: each but the first indented */
  assert_has (ctl.err, "shoalctl: no plugins for \\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mFAKE-UUID-LINE\n  xx\n");

  g_free (ctl.out);
  g_free (ctl.err);
  g_bus_unown_name (owner_id);
  g_dbus_object_manager_server_set_connection (server, NULL);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (manager));
  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_test_dbus_down (bus);
}

/* The real shoald refuses such a UUID (InvalidArgument) and shoalctl
 * shows the refusal, which quotes it, escaped */
static void
test_shoalctl_bad_uuid (void)
{
  Ctl ctl = { shoal_test_daemon_new () };

  shoal_test_daemon_start (ctl.td, FALSE);
  g_assert_cmpint (ctl_run (&ctl, "enroll", "02-00-00-aa-bb-cc", "--mac", "02:00:00:aa:bb:cc",
                            "--uuid", EVIL, NULL), ==, 1);
  assert_no_controls (ctl.err);
  assert_has (ctl.err, "is not a UUID");
  assert_has (ctl.err, "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mFAKE-UUID-LINE\n  xx");
  g_assert_cmpint (ctl_run (&ctl, "show", "02-00-00-aa-bb-cc", NULL), ==, 1);
  ctl_clear (&ctl);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shoal/shoalctl/errors", test_shoalctl_errors);
  g_test_add_func ("/shoal/shoalctl/no-daemon", test_shoalctl_no_daemon);
  g_test_add_func ("/shoal/shoalctl/fleet", test_shoalctl_fleet);
  g_test_add_func ("/shoal/shoalctl/recipes", test_shoalctl_recipes);
  g_test_add_func ("/shoal/shoalctl/log-pages", test_shoalctl_log_pages);
  g_test_add_func ("/shoal/shoalctl/escapes", test_shoalctl_escapes);
  g_test_add_func ("/shoal/shoalctl/bad-uuid", test_shoalctl_bad_uuid);
  return g_test_run ();
}
