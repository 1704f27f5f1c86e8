/* test-pxe-e2e.c: a QEMU VM (TCG, BIOS, iPXE ROM from ipxe-qemu, e1000)
 * network-boots from the shoal-pxe plugin running in a real controller,
 * in a network namespace: DHCP (authoritative), the HTTP iPXE script,
 * kernel and initrd over HTTP, and the kernel runs an /init that prints
 * a marker on the serial console.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "pxe-netns.h"
#include "shoal.h"

#define VM_TIMEOUT 150
#define VM_MAC "52:54:00:e2:e0:01"
#define MARKER "SHOAL-PXE-E2E: the kernel ran"

static const gchar *recipe_json =
  "{ \"name\": \"pxe-e2e\", \"default\": true, \"steps\": [\"pxe-boot\"],"
  "  \"boot\": { \"kernel\": \"vmlinuz\", \"initrd\": \"initrd.gz\","
  "              \"cmdline\": \"console=ttyS0 panic=5\" } }";

typedef struct {
  PxeNetns          *ns;
  gchar             *dir;
  ShoalPluginEngine *engine;
  ShoalController   *controller;
  SoupServer        *server;
  GSubprocess       *radvd;
  GSubprocess       *dnsmasq;
  gboolean           proxy;
  gboolean           uefi;
} Fixture;

#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

static gchar *
missing_tool (void)
{
  const gchar *tools[] = { "qemu-system-x86_64", "busybox", "cpio", "gzip", "apt-get", "dpkg-deb", NULL };
  g_autofree gchar *reason = NULL;

  if (!pxe_netns_available (&reason))
    return g_steal_pointer (&reason);
  for (guint i = 0; tools[i] != NULL; i++)
    if (!pxe_netns_have_program (tools[i]))
      return g_strdup_printf ("%s is not installed", tools[i]);
  if (!g_file_test ("/usr/lib/ipxe/qemu/efi-e1000.rom", G_FILE_TEST_EXISTS) &&
      !g_file_test ("/usr/share/qemu/efi-e1000.rom", G_FILE_TEST_EXISTS))
    return g_strdup ("the ipxe-qemu ROMs are not installed");
  return NULL;
}

static gboolean
prepare_files (Fixture *f, GError **error)
{
  g_autofree gchar *script = g_test_build_filename (G_TEST_DIST, "pxe-e2e-setup.sh", NULL);
  g_autofree gchar *boot = g_build_filename (f->dir, "boot", NULL);
  const gchar *argv[] = { script, boot, NULL };
  g_autoptr(GSubprocess) proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE, error);

  return proc != NULL && g_subprocess_wait_check (proc, NULL, error);
}

/* router advertisements, so iPXE's IPv6 autoconfiguration ends at once
 * (see pxe-clients.md, pitfall 1) */
static void
start_radvd (Fixture *f)
{
  const gchar *argv[] = { "dnsmasq", "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null",
                          "--port=0", "--interface=br0", "--bind-interfaces", "--enable-ra",
                          "--dhcp-range=::,constructor:br0,ra-only", "--pid-file=", NULL };

  if (!pxe_netns_have_program ("dnsmasq"))
    return;
  f->radvd = pxe_netns_spawn (f->ns->server_ns, argv, NULL);
}

/* ProxyDHCP: a real dnsmasq in a namespace of its own on the bridge is
 * the existing DHCP server (addresses and router advertisements) */
static void
start_dnsmasq (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  const gchar *ns = g_ptr_array_index (f->ns->client_ns, 0);
  const gchar *argv[] = { "dnsmasq", "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null",
                          "--port=0", "--interface=eth0", "--bind-interfaces", "--no-ping",
                          "--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,1h",
                          "--enable-ra", "--dhcp-range=::,constructor:eth0,ra-only",
                          "--dhcp-leasefile=/dev/null", "--pid-file=", NULL };

  g_assert_true (pxe_netns_sh (ns, "ip addr add 10.77.0.2/24 dev eth0; "
                                   "ip -6 addr add fd77::2/64 dev eth0 nodad", &error));
  g_assert_no_error (error);
  f->dnsmasq = pxe_netns_spawn (ns, argv, &error);
  g_assert_no_error (error);
}

static void
start_controller (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GKeyFile) config = g_key_file_new ();
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new_from_string (PXE_NETNS_SERVER_IP, 0);
  g_autoptr(GSList) uris = NULL;
  g_autofree gchar *state = g_build_filename (f->dir, "state", NULL);
  g_autofree gchar *boot = g_build_filename (f->dir, "boot", NULL);
  g_autofree gchar *base_url = NULL;

  f->engine = shoal_plugin_engine_new ();
  /* this plugin only: other plugins' services are not under test here */
  shoal_plugin_engine_add_search_path (f->engine, SHOAL_BUILD_PLUGINDIR "/pxe");
  shoal_plugin_engine_load_all (f->engine);
  f->controller = shoal_controller_new (f->engine, state);
  g_assert_true (shoal_controller_open (f->controller, &error));
  g_key_file_set_string (config, "pxe", "mode", f->proxy ? "proxy" : "authoritative");
  g_key_file_set_string (config, "pxe", "interface", "br0");
  g_key_file_set_string (config, "pxe", "range-start", "10.77.0.150");
  g_key_file_set_string (config, "pxe", "range-end", "10.77.0.160");
  g_key_file_set_string (config, "pxe", "boot-files", boot);
  shoal_controller_set_config (f->controller, config);
  f->server = soup_server_new (NULL, NULL);
  g_assert_true (soup_server_listen (f->server, addr, 0, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->server);
  base_url = g_strdup_printf ("http://" PXE_NETNS_SERVER_IP ":%d", g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  shoal_controller_set_http_server (f->controller, f->server, base_url);
  recipe = shoal_recipe_new_from_data (recipe_json, -1, "pxe-e2e.json", &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_add_recipe (f->controller, recipe, &error));
  g_assert_true (shoal_controller_start_services (f->controller, &error));
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *reason = missing_tool ();

  if (reason != NULL)
    return;
  f->dir = pxe_netns_tmpdir ("shoal-pxe-e2e");
  if (!prepare_files (f, &error))
    {
      g_test_message ("cannot prepare the kernel and initrd: %s", error->message);
      return;
    }
  f->proxy = g_strcmp0 (data, "proxy") == 0;
  f->uefi = g_strcmp0 (data, "uefi") == 0;
  if (f->proxy && !pxe_netns_have_program ("dnsmasq"))
    return;
  if (f->uefi && (!g_file_test (OVMF_CODE, G_FILE_TEST_EXISTS) || !g_file_test (OVMF_VARS, G_FILE_TEST_EXISTS)))
    return;
  f->ns = pxe_netns_new ("shoal-e2e", f->proxy ? 1 : 0, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (pxe_netns_sh (f->ns->server_ns,
                               "ip tuntap add dev tap0 mode tap; ip link set tap0 master br0 up; "
                               "ip -6 addr add fd77::1/64 dev br0 nodad", &error));
  g_assert_no_error (error);
  if (f->proxy)
    start_dnsmasq (f);
  else
    start_radvd (f);
  start_controller (f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->controller != NULL)
    shoal_controller_close (f->controller);
  g_clear_object (&f->controller);
  g_clear_object (&f->engine);
  if (f->server != NULL)
    soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  for (GSubprocess **p = (GSubprocess *[]) { f->radvd, f->dnsmasq }, **e = p + 2; p < e; p++)
    {
      if (*p == NULL)
        continue;
      g_subprocess_force_exit (*p);
      g_subprocess_wait (*p, NULL, NULL);
    }
  g_clear_object (&f->radvd);
  g_clear_object (&f->dnsmasq);
  g_clear_pointer (&f->ns, pxe_netns_free);
  if (f->dir != NULL)
    {
      g_autofree gchar *cmd = g_strdup_printf ("rm -rf %s", f->dir);
      (void) g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
    }
  g_free (f->dir);
}

static gboolean
journal_has (Fixture *f, ShoalDevice *device, const gchar *operation, const gchar *fragment)
{
  g_autoptr(GPtrArray) journal = shoal_controller_get_journal (f->controller, device, 0, NULL);

  for (guint i = 0; journal != NULL && i < journal->len; i++)
    {
      ShoalJournalEntry *e = g_ptr_array_index (journal, i);
      g_test_message ("journal: %s %s %s", shoal_journal_entry_get_source (e),
                      shoal_journal_entry_get_operation (e), shoal_journal_entry_get_message (e));
      if (g_strcmp0 (shoal_journal_entry_get_source (e), "pxe") == 0 &&
          g_strcmp0 (shoal_journal_entry_get_operation (e), operation) == 0 &&
          (fragment == NULL || strstr (shoal_journal_entry_get_message (e), fragment) != NULL))
        return TRUE;
    }
  return FALSE;
}

/* BIOS: SeaBIOS runs the iPXE ROM (-boot n); UEFI: OVMF runs the EFI
 * iPXE driver of the same ROM (bootindex on the NIC; see pxe-clients.md) */
static GSubprocess *
start_vm (Fixture *f, const gchar *serial, GError **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *vars = g_build_filename (f->dir, "OVMF_VARS.fd", NULL);
  const gchar *common[] = { "timeout", "-s", "KILL", G_STRINGIFY (VM_TIMEOUT), "qemu-system-x86_64",
                            "-machine", "pc,accel=tcg", "-m", "256", "-display", "none",
                            "-monitor", "none", "-no-reboot",
                            "-uuid", "5a1e0000-0000-4000-8000-00000000e2e0",
                            "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", NULL };

  for (guint i = 0; common[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (common[i]));
  g_ptr_array_add (argv, g_strdup ("-serial"));
  g_ptr_array_add (argv, g_strdup_printf ("file:%s", serial));
  g_ptr_array_add (argv, g_strdup ("-device"));
  if (f->uefi)
    {
      g_autofree gchar *copy = g_strdup_printf ("cp " OVMF_VARS " %s", vars);
      (void) g_spawn_command_line_sync (copy, NULL, NULL, NULL, NULL);
      g_ptr_array_add (argv, g_strdup ("e1000,netdev=n0,bootindex=1,mac=" VM_MAC));
      g_ptr_array_add (argv, g_strdup ("-drive"));
      g_ptr_array_add (argv, g_strdup ("if=pflash,format=raw,readonly=on,file=" OVMF_CODE));
      g_ptr_array_add (argv, g_strdup ("-drive"));
      g_ptr_array_add (argv, g_strdup_printf ("if=pflash,format=raw,file=%s", vars));
    }
  else
    {
      g_ptr_array_add (argv, g_strdup ("e1000,netdev=n0,mac=" VM_MAC));
      g_ptr_array_add (argv, g_strdup ("-boot"));
      g_ptr_array_add (argv, g_strdup ("n"));
    }
  g_ptr_array_add (argv, NULL);
  return pxe_netns_spawn (f->ns->server_ns, (const gchar * const *) argv->pdata, error);
}

static void
test_vm_boot (Fixture *f, gconstpointer data)
{
  g_autofree gchar *reason = missing_tool ();
  g_autofree gchar *serial = NULL;
  g_autofree gchar *log = NULL;
  g_autoptr(GSubprocess) vm = NULL;
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;
  gint64 start = g_get_monotonic_time ();

  if (reason != NULL || f->ns == NULL)
    {
      g_test_skip (reason != NULL ? reason : "no kernel (scripts/fetch-kernel.sh failed), dnsmasq or OVMF");
      return;
    }
  serial = g_build_filename (f->dir, "serial.log", NULL);
  vm = start_vm (f, serial, &error);
  g_assert_no_error (error);
  (void) pxe_netns_wait (vm, VM_TIMEOUT + 10, NULL, NULL);
  g_test_message ("VM ran %.1f s", (g_get_monotonic_time () - start) / 1e6);
  (void) g_file_get_contents (serial, &log, NULL, NULL);
  if (log == NULL || strstr (log, MARKER) == NULL)
    g_test_message ("serial log:\n%s", log != NULL ? log : "(none)");
  g_assert_nonnull (log);
  g_assert_nonnull (strstr (log, MARKER));
  g_assert_nonnull (strstr (log, "shoal.token="));
  device = shoal_controller_lookup_device_by_mac (f->controller, VM_MAC);
  g_assert_nonnull (device);
  /* authoritative: shoal's ACK gave the address; ProxyDHCP: shoal's offer
   * carried no address (dnsmasq gave it), only the script URL; iPXE takes
   * the file name from the ProxyDHCP offer without a port 4011 request
   * (that one is tested with a raw client in pxe-net-dhcp) */
  if (f->proxy)
    {
      g_assert_true (journal_has (f, device, "dhcp", "OFFER to " VM_MAC ": address none, boot file http"));
      g_assert_false (journal_has (f, device, "dhcp", "address 10."));
    }
  else
    {
      g_autofree gchar *lease = shoal_context_kv_get (shoal_controller_get_context (f->controller),
                                                      "pxe-leases", VM_MAC);
      g_assert_true (journal_has (f, device, "dhcp", "ACK to " VM_MAC ": address 10.77.0.15"));
      g_assert_nonnull (lease);   /* persisted */
    }
  if (f->uefi)
    g_assert_cmpstr (shoal_device_get_metadata (device, "pxe.arch"), ==, "7");
  g_assert_true (journal_has (f, device, "boot", NULL));
  for (guint i = 0; i < 100 && shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED; i++)
    pxe_netns_iterate_until ((gboolean[]) { FALSE }, 20);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/pxe/e2e/bios-authoritative", Fixture, "authoritative", fixture_setup, test_vm_boot,
              fixture_teardown);
  g_test_add ("/shoal/pxe/e2e/bios-proxydhcp", Fixture, "proxy", fixture_setup, test_vm_boot,
              fixture_teardown);
  g_test_add ("/shoal/pxe/e2e/uefi-authoritative", Fixture, "uefi", fixture_setup, test_vm_boot,
              fixture_teardown);
  return g_test_run ();
}
