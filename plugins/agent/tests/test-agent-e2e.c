/* test-agent-e2e.c: three QEMU virtual machines (TCG) with e1000,
 * virtio-net and rtl8139 NICs boot the agent loader against a controller
 * with the inventory, drivers and agent plugins, in a network namespace
 * this test creates and deletes. Their inventories differ accordingly, so
 * do their agents' module sets, and each reaches "agent running". Then
 * each agent is told to write an image over unicast HTTP (a manifest of
 * the image store's format and its chunks, served by this test), reports
 * "image-written", is told to power off, and its disk holds the image.
 *
 * Needs root, ip, qemu-system-x86_64, busybox-static (udhcpd and the
 * initramfs), cpio, gzip, depmod and the kernel cache of
 * scripts/fetch-kernel.sh; skips with the reason otherwise.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE
#include "config.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <shoal.h>

#include "shoal-manifest.h"

#define N_VMS        3   /* the three-NIC cases */
#define N_TAPS       4   /* vms[3]: a second e1000 machine for the group */
#define DHCPD_SLOT   N_TAPS
#define VM_TIMEOUT_S 240
#define TEST_TIMEOUT_S 300

typedef struct {
  const gchar *id;
  const gchar *nic;       /* QEMU -device */
  const gchar *mac;
  const gchar *uuid;
  const gchar *driver;    /* the module that must be picked */
  gboolean     ide_disk;  /* a second disk on the IDE controller */
} Vm;

static const Vm vms[N_TAPS] = {
  { "vm-e1000", "e1000", "52:54:00:5a:00:01", "5a5a0001-0000-4000-8000-000000000001", "e1000" },
  { "vm-virtio", "virtio-net-pci", "52:54:00:5a:00:02", "5a5a0002-0000-4000-8000-000000000002", "virtio_net" },
  { "vm-rtl8139", "rtl8139", "52:54:00:5a:00:03", "5a5a0003-0000-4000-8000-000000000003", "8139cp", TRUE },
  { "vm-e1000-b", "e1000", "52:54:00:5a:00:04", "5a5a0004-0000-4000-8000-000000000004", "e1000" },
};

#define IMAGE_CHUNK  65536
#define IMAGE_CHUNKS 40

typedef struct {
  gchar           *tmp;
  GBytes          *image;
  gchar           *manifest;
  gchar           *image_id;
  gchar           *netns;
  gchar           *subnet;      /* "10.N.M" */
  GPid             pids[N_TAPS + 1];
  gboolean         uefi;        /* OVMF firmware and an AHCI disk */
  gchar           *uefi_args[2];
  int              orig_netns;
  ShoalController *controller;
  SoupServer      *server;
} Fixture;

static gboolean
run (const gchar *cmdline, GError **error)
{
  g_autofree gchar *err = NULL;
  gint status = 0;

  g_test_message ("$ %s", cmdline);
  if (!g_spawn_command_line_sync (cmdline, NULL, &err, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, error))
    {
      g_prefix_error (error, "%s: %s", cmdline, err);
      return FALSE;
    }
  return TRUE;
}

/* A failed assertion aborts the test before its tear-down: the abort
 * handler still stops this test's processes and deletes its namespace */
static Fixture *current;

static void
abort_handler (int sig)
{
  pid_t pid = 0;

  for (guint i = 0; current != NULL && i < G_N_ELEMENTS (current->pids); i++)
    {
      if (current->pids[i] > 0)
        kill (current->pids[i], SIGTERM);
    }
  if (current != NULL && current->netns != NULL && (pid = fork ()) == 0)
    {
      execlp ("ip", "ip", "netns", "del", current->netns, (char *) NULL);
      _exit (127);
    }
  else if (current != NULL && current->netns != NULL && pid > 0)
    waitpid (pid, NULL, 0);
  if (current != NULL && current->tmp != NULL && g_getenv ("SHOAL_E2E_KEEP") == NULL && (pid = fork ()) == 0)
    {
      execlp ("rm", "rm", "-rf", current->tmp, (char *) NULL);
      _exit (127);
    }
  else if (current != NULL && current->tmp != NULL && pid > 0)
    waitpid (pid, NULL, 0);
  signal (sig, SIG_DFL);
  raise (sig);
}

/* On failure, the end of each VM's serial console goes to the test log */
static void
dump_serial_logs (Fixture *f)
{
  for (guint i = 0; f->tmp != NULL && i < N_TAPS; i++)
    {
      g_autofree gchar *path = g_strdup_printf ("%s/%s.log", f->tmp, vms[i].id);
      g_autofree gchar *text = NULL;
      gsize len = 0;

      if (!g_file_get_contents (path, &text, &len, NULL))
        continue;
      g_test_message ("--- serial console of %s (last 3000 bytes) ---\n%s", vms[i].id,
                      len > 3000 ? text + len - 3000 : text);
    }
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_autofree gchar *del = NULL;

  if (g_test_failed ())
    dump_serial_logs (f);
  current = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (f->pids); i++)
    {
      if (f->pids[i] > 0)
        {
          kill (f->pids[i], SIGTERM);
          waitpid (f->pids[i], NULL, 0);
          f->pids[i] = 0;
        }
    }
  if (f->server != NULL)
    soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  if (f->controller != NULL)
    shoal_controller_close (f->controller);
  g_clear_object (&f->controller);
  if (f->orig_netns >= 0)
    {
      setns (f->orig_netns, CLONE_NEWNET);
      close (f->orig_netns);
      f->orig_netns = -1;
    }
  if (f->netns != NULL)
    {
      del = g_strdup_printf ("ip netns del %s", f->netns);
      run (del, NULL);
    }
  if (f->tmp != NULL && g_getenv ("SHOAL_E2E_KEEP") == NULL)
    {
      g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", f->tmp);

      run (rm, NULL);
    }
  g_free (f->tmp);
  g_free (f->uefi_args[0]);
  g_free (f->uefi_args[1]);
  g_clear_pointer (&f->image, g_bytes_unref);
  g_free (f->manifest);
  g_free (f->image_id);
  g_free (f->netns);
  g_free (f->subnet);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  memset (f, 0, sizeof *f);
  f->orig_netns = -1;
  current = f;
  signal (SIGABRT, abort_handler);
  signal (SIGTRAP, abort_handler);
}

static gchar *
kernel_dir (void)
{
  const gchar *cache = g_getenv ("SHOAL_KERNEL_CACHE");
  gchar *dir = cache != NULL ? g_build_filename (cache, "kernel", "current", NULL) : NULL;
  g_autofree gchar *vmlinuz = dir != NULL ? g_build_filename (dir, "vmlinuz", NULL) : NULL;

  if (vmlinuz == NULL || !g_file_test (vmlinuz, G_FILE_TEST_EXISTS))
    {
      g_free (dir);
      return NULL;
    }
  return dir;
}

static gboolean
can_run (void)
{
  const gchar *tools[] = { "ip", "qemu-system-x86_64", "busybox", "cpio", "gzip", "depmod" };
  const gchar *envs[] = { "SHOAL_LOADER", "SHOAL_AGENT_BINARY", "SHOAL_LOADER_INITRAMFS_SCRIPT" };
  g_autofree gchar *kernel = kernel_dir ();

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (network namespaces, tap devices)");
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree gchar *path = g_find_program_in_path (tools[i]);

      if (path == NULL)
        {
          g_test_skip_printf ("%s is missing", tools[i]);
          return FALSE;
        }
    }
  for (guint i = 0; i < G_N_ELEMENTS (envs); i++)
    {
      const gchar *v = g_getenv (envs[i]);

      if (v == NULL || *v == '\0' || !g_file_test (v, G_FILE_TEST_EXISTS))
        {
          g_test_skip_printf ("%s not built (target_programs disabled or sanitized build)", envs[i]);
          return FALSE;
        }
    }
  if (kernel == NULL)
    {
      g_test_skip ("no kernel in the build cache: run scripts/fetch-kernel.sh (SHOAL_KERNEL_CACHE)");
      return FALSE;
    }
  return TRUE;
}

/* Namespace with a bridge, one tap per VM and busybox udhcpd on the bridge */
static void
make_network (Fixture *f, gboolean with_dhcpd)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *conf = g_build_filename (f->tmp, "udhcpd.conf", NULL);
  g_autofree gchar *text = NULL;
  g_autofree gchar *cmd = NULL;
  g_autofree gchar *nspath = NULL;
  int fd;

  f->netns = g_strdup_printf ("shagt%d", (gint) getpid ());
  f->subnet = g_strdup_printf ("10.%d.%d", 100 + (gint) (getpid () % 100), (gint) (getpid () / 100 % 250));
  cmd = g_strdup_printf ("ip netns add %s", f->netns);
  g_assert_true (run (cmd, &error));
  g_free (cmd);
  cmd = g_strdup_printf ("ip -n %s link add br0 type bridge", f->netns);
  g_assert_true (run (cmd, &error));
  g_free (cmd);
  cmd = g_strdup_printf ("ip -n %s addr add %s.1/24 dev br0", f->netns, f->subnet);
  g_assert_true (run (cmd, &error));
  for (guint i = 0; i < N_TAPS; i++)
    {
      g_free (cmd);
      cmd = g_strdup_printf ("ip -n %s tuntap add dev tap%u mode tap", f->netns, i);
      g_assert_true (run (cmd, &error));
      g_free (cmd);
      cmd = g_strdup_printf ("ip -n %s link set tap%u master br0 up", f->netns, i);
      g_assert_true (run (cmd, &error));
    }
  g_free (cmd);
  cmd = g_strdup_printf ("ip -n %s link set br0 up", f->netns);
  g_assert_true (run (cmd, &error));
  g_free (cmd);
  cmd = g_strdup_printf ("ip -n %s link set lo up", f->netns);
  g_assert_true (run (cmd, &error));
  g_assert_no_error (error);

  text = g_strdup_printf ("start %s.100\nend %s.150\ninterface br0\nmax_leases 50\n"
                          "lease_file %s/udhcpd.leases\npidfile %s/udhcpd.pid\n"
                          "option subnet 255.255.255.0\noption router %s.1\noption lease 3600\n",
                          f->subnet, f->subnet, f->tmp, f->tmp, f->subnet);
  g_file_set_contents (conf, text, -1, &error);
  g_assert_no_error (error);
  if (with_dhcpd)
  {
    const gchar *full[] = { "ip", "netns", "exec", f->netns, "timeout", "600", "busybox", "udhcpd", "-f", conf, NULL };

    g_spawn_async (NULL, (gchar **) full, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                   G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &f->pids[DHCPD_SLOT], &error);
    g_assert_no_error (error);
  }
  /* this test's own sockets live in the namespace from now on */
  nspath = g_strdup_printf ("/run/netns/%s", f->netns);
  f->orig_netns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  fd = open (nspath, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (setns (fd, CLONE_NEWNET), ==, 0);
  close (fd);
}

/* @merged_usr: bin, sbin and lib links into usr, as on Debian 12 */
static gchar *
build_loader_initramfs (Fixture *f, const gchar *kernel, gboolean merged_usr)
{
  g_autofree gchar *version = NULL;
  g_autofree gchar *vfile = g_build_filename (kernel, "version", NULL);
  g_autofree gchar *reldir = NULL;
  gchar *out = g_build_filename (f->tmp, "loader.img", NULL);
  g_autofree gchar *cmd = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_get_contents (vfile, &version, NULL, NULL));
  g_strstrip (version);
  reldir = g_build_filename (kernel, "modules", "lib", "modules", version, NULL);
  cmd = g_strdup_printf ("%s%s %s %s %s", g_getenv ("SHOAL_LOADER_INITRAMFS_SCRIPT"),
                         merged_usr ? " --merged-usr" : "", out, g_getenv ("SHOAL_LOADER"), reldir);
  g_assert_true (run (cmd, &error));
  g_assert_no_error (error);
  return out;
}

/* 40 chunks of 64 KiB: a pattern, with chunks 10 to 19 all zeros */
static void
make_image (Fixture *f)
{
  gsize size = IMAGE_CHUNK * IMAGE_CHUNKS - 1000;
  guint8 *data = g_malloc0 (size);
  ShoalManifestError merr = { 0 };
  ShoalManifest *m = shoal_manifest_new ("e2e-image", size, IMAGE_CHUNK, &merr);
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];
  char id[SHOAL_MANIFEST_HEX_LEN + 1];
  gsize len = 0;

  g_assert_nonnull (m);
  for (gsize i = 0; i < size; i++)
    data[i] = (i / IMAGE_CHUNK >= 10 && i / IMAGE_CHUNK < 20) ? 0 : (guint8) (i * 7 + i / 4096);
  for (guint c = 0; c < IMAGE_CHUNKS; c++)
    {
      gsize off = (gsize) c * IMAGE_CHUNK;
      gsize n = MIN (IMAGE_CHUNK, size - off);

      if (shoal_manifest_is_zero (data + off, n))
        shoal_manifest_set_chunk (m, c, NULL);
      else
        {
          shoal_manifest_digest (data + off, n, digest);
          shoal_manifest_set_chunk (m, c, digest);
        }
    }
  shoal_manifest_digest (data, size, digest);
  shoal_manifest_set_image_sha256 (m, digest);
  f->manifest = shoal_manifest_serialize (m, &len);
  shoal_manifest_compute_id (f->manifest, len, id);
  f->image_id = g_strdup (id);
  f->image = g_bytes_new_take (data, size);
  shoal_manifest_free (m);
}

/* GET /e2e-image/manifest and /e2e-image/chunks/<sha256> */
static void
image_cb (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  Fixture *f = user_data;
  const guint8 *data = g_bytes_get_data (f->image, NULL);
  gsize size = g_bytes_get_size (f->image);

  if (g_strcmp0 (path, "/e2e-image/manifest") == 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, f->manifest, strlen (f->manifest));
      return;
    }
  for (gsize off = 0; g_str_has_prefix (path, "/e2e-image/chunks/") && off < size; off += IMAGE_CHUNK)
    {
      gsize n = MIN (IMAGE_CHUNK, size - off);
      uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];
      char hex[SHOAL_MANIFEST_HEX_LEN + 1];

      shoal_manifest_digest (data + off, n, digest);
      shoal_manifest_digest_to_hex (digest, hex);
      if (g_str_equal (path + strlen ("/e2e-image/chunks/"), hex))
        {
          soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
          soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY, (const char *) data + off, n);
          return;
        }
    }
  soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

/* Only this test's three plugins: a folder of links to their build folders */
static ShoalPluginEngine *
engine_new (Fixture *f, const gchar * const *names)
{
  g_autofree gchar *dir = g_build_filename (f->tmp, "plugins", NULL);
  ShoalPluginEngine *engine = shoal_plugin_engine_new ();

  g_mkdir_with_parents (dir, 0755);
  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autofree gchar *target = g_build_filename (SHOAL_BUILD_PLUGINDIR, names[i], NULL);
      g_autofree gchar *link = g_build_filename (dir, names[i], NULL);

      g_assert_cmpint (symlink (target, link), ==, 0);
    }
  shoal_plugin_engine_add_search_path (engine, dir);
  shoal_plugin_engine_load_all (engine);
  return engine;
}

static const gchar * const agent_plugins[] = { "inventory", "drivers", "agent", NULL };

static void
start_controller (Fixture *f, const gchar *kernel, const gchar * const *plugins, const gchar *recipe_json,
                  GKeyFile *config)
{
  g_autoptr(ShoalPluginEngine) engine = engine_new (f, plugins);
  g_autofree gchar *state = g_build_filename (f->tmp, "state", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autofree gchar *url = NULL;
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autoptr(GInetAddress) addr = NULL;
  g_autoptr(GSocketAddress) sa = NULL;
  g_autofree gchar *ip = g_strdup_printf ("%s.1", f->subnet);

  f->controller = shoal_controller_new (engine, state);
  if (config != NULL)
    shoal_controller_set_config (f->controller, config);
  g_assert_true (shoal_controller_open (f->controller, &error));
  g_assert_no_error (error);
  f->server = soup_server_new (NULL, NULL);
  addr = g_inet_address_new_from_string (ip);
  sa = g_inet_socket_address_new (addr, 0);
  g_assert_true (soup_server_listen (f->server, sa, 0, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->server);
  url = g_strdup_printf ("http://%s:%d", ip, g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  shoal_controller_set_http_server (f->controller, f->server, url);
  soup_server_add_handler (f->server, "/e2e-image", image_cb, f, NULL);
  g_assert_true (shoal_controller_start_services (f->controller, &error));
  g_assert_no_error (error);
  recipe = shoal_recipe_new_from_data (recipe_json, -1, "e2e-agent.json", &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_add_recipe (f->controller, recipe, &error));
  g_assert_no_error (error);
}

/* @initrd NULL: a network boot through the NIC's iPXE ROM */
static void
start_vm (Fixture *f, guint i, const gchar *kernel, const gchar *initrd)
{
  ShoalDevice *device = shoal_controller_lookup_device (f->controller, vms[i].id);
  g_autofree gchar *vmlinuz = g_build_filename (kernel, "vmlinuz", NULL);
  g_autofree gchar *disk = g_strdup_printf ("%s/%s.img", f->tmp, vms[i].id);
  g_autofree gchar *extra = g_strdup_printf ("%s/%s-ide.img", f->tmp, vms[i].id);
  g_autofree gchar *append = g_strdup_printf ("console=ttyS0 panic=5 quiet shoal.server=%s shoal.token=%s shoal.device=%s",
                                              shoal_context_get_server_url (shoal_controller_get_context (f->controller)),
                                              shoal_device_get_token (device), vms[i].id);
  g_autofree gchar *netdev = g_strdup_printf ("tap,id=n0,ifname=tap%u,script=no,downscript=no", i);
  g_autofree gchar *nic = g_strdup_printf ("%s,netdev=n0,mac=%s", vms[i].nic, vms[i].mac);
  g_autofree gchar *drive = g_strdup_printf ("file=%s,if=virtio,format=raw", disk);
  g_autofree gchar *ide = g_strdup_printf ("file=%s,if=ide,format=raw", extra);
  g_autofree gchar *serial = g_strdup_printf ("file:%s/%s.log", f->tmp, vms[i].id);
  g_autofree gchar *timeout = g_strdup_printf ("%d", VM_TIMEOUT_S);
  const gchar *common[] = { "ip", "netns", "exec", f->netns, "timeout", timeout, "qemu-system-x86_64",
                            "-accel", "tcg", "-m", "256", "-smp", "1", "-display", "none", "-monitor", "none",
                            "-no-reboot", "-uuid", vms[i].uuid, "-netdev", netdev, "-device", nic, "-drive", drive,
                            "-serial", serial };
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const gchar *files[] = { disk, extra };

  for (guint k = 0; k < G_N_ELEMENTS (files); k++)
    {
      int fd = open (files[k], O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

      g_assert_cmpint (ftruncate (fd, (k + 1) * (8 << 20)), ==, 0);
      close (fd);
    }
  for (guint k = 0; k < G_N_ELEMENTS (common); k++)
    g_ptr_array_add (argv, (gpointer) common[k]);
  if (f->uefi)
    {
      g_autofree gchar *vars = g_strdup_printf ("%s/%s.vars", f->tmp, vms[i].id);
      g_autofree gchar *cp = g_strdup_printf ("cp /usr/share/OVMF/OVMF_VARS_4M.fd %s", vars);
      const gchar *uefi[] = { "-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                              "-drive", NULL, "-device", "ahci,id=ahci", "-drive", NULL,
                              "-device", "ide-hd,drive=d1,bus=ahci.0" };

      g_assert_true (run (cp, NULL));
      f->uefi_args[0] = g_strdup_printf ("if=pflash,format=raw,file=%s", vars);
      f->uefi_args[1] = g_strdup_printf ("id=d1,if=none,file=%s,format=raw", extra);
      uefi[3] = f->uefi_args[0];
      uefi[7] = f->uefi_args[1];
      for (guint k = 0; k < G_N_ELEMENTS (uefi); k++)
        g_ptr_array_add (argv, (gpointer) uefi[k]);
    }
  if (vms[i].ide_disk)
    {
      /* a second, IDE disk: ata_piix and sd_mod in the loader, "sda" in the inventory */
      g_ptr_array_add (argv, "-drive");
      g_ptr_array_add (argv, ide);
    }
  if (initrd == NULL)
    {
      /* BIOS network boot: -boot n (the default order has no network) */
      g_ptr_array_add (argv, "-boot");
      g_ptr_array_add (argv, "n");
    }
  else
    {
      const gchar *direct[] = { "-kernel", vmlinuz, "-initrd", initrd, "-append", append };

      for (guint k = 0; k < G_N_ELEMENTS (direct); k++)
        g_ptr_array_add (argv, (gpointer) direct[k]);
    }
  g_ptr_array_add (argv, NULL);
  g_spawn_async (NULL, (gchar **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                 G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &f->pids[i], &error);
  g_assert_no_error (error);
}

static gboolean
all_done (Fixture *f, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      ShoalDeviceState state = shoal_device_get_state (shoal_controller_lookup_device (f->controller, vms[i].id));

      if (state != SHOAL_DEVICE_STATE_INSTALLED && state != SHOAL_DEVICE_STATE_FAILED)
        return FALSE;
    }
  return TRUE;
}

static void
dump_journal (Fixture *f, ShoalDevice *device)
{
  g_autoptr(GPtrArray) journal = shoal_controller_get_journal (f->controller, device, 0, NULL);

  for (guint j = 0; journal != NULL && j < journal->len; j++)
    {
      ShoalJournalEntry *e = g_ptr_array_index (journal, j);

      g_test_message ("%s [%s/%s %s] %s", shoal_device_get_id (device), shoal_journal_entry_get_source (e),
                      shoal_journal_entry_get_operation (e),
                      shoal_journal_result_to_string (shoal_journal_entry_get_result (e)),
                      shoal_journal_entry_get_message (e));
    }
}

static void
commit_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *done = user_data;

  shoal_controller_commit_finish (SHOAL_CONTROLLER (source), result, NULL);
  *done = TRUE;
}

static gboolean
journal_has (Fixture *f, ShoalDevice *device, const gchar *needle)
{
  g_autoptr(GPtrArray) journal = NULL;
  gboolean committed = FALSE;

  /* the journal is written to the store asynchronously */
  shoal_controller_commit_async (f->controller, NULL, commit_cb, &committed);
  while (!committed)
    g_main_context_iteration (NULL, TRUE);
  journal = shoal_controller_get_journal (f->controller, device, 0, NULL);
  for (guint j = 0; journal != NULL && j < journal->len; j++)
    {
      if (strstr (shoal_journal_entry_get_message (g_ptr_array_index (journal, j)), needle) != NULL)
        return TRUE;
    }
  return FALSE;
}

static const gchar *
nic_driver (ShoalDevice *device)
{
  JsonNode *inv = shoal_device_get_inventory (device);
  JsonObject *root = inv != NULL ? json_node_get_object (inv) : NULL;
  JsonArray *nics = root != NULL ? json_object_get_array_member (root, "nics") : NULL;

  if (nics == NULL || json_array_get_length (nics) == 0)
    return NULL;
  return json_object_get_string_member_with_default (json_array_get_object_element (nics, 0), "driver", NULL);
}

/* How many disks the inventory lists; 0 if @name is given and not among them */
static guint
n_disks (ShoalDevice *device, const gchar *name)
{
  JsonObject *root = json_node_get_object (shoal_device_get_inventory (device));
  JsonArray *disks = json_object_get_array_member (root, "disks");
  gboolean found = name == NULL;

  for (guint k = 0; k < json_array_get_length (disks); k++)
    {
      JsonObject *disk = json_array_get_object_element (disks, k);

      if (g_strcmp0 (json_object_get_string_member_with_default (disk, "name", ""), name) == 0)
        found = g_strcmp0 (json_object_get_string_member_with_default (disk, "model", ""), "QEMU HARDDISK") == 0;
    }
  return found ? json_array_get_length (disks) : 0;
}

static void
check_vm (Fixture *f, guint i)
{
  ShoalDevice *device = shoal_controller_lookup_device (f->controller, vms[i].id);
  g_auto(GStrv) modules = NULL;

  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpstr (nic_driver (device), ==, vms[i].driver);
  modules = g_strsplit (shoal_device_get_metadata (device, "drivers"), " ", -1);
  g_assert_true (g_strv_contains ((const gchar * const *) modules, vms[i].driver));
  for (guint j = 0; j < N_VMS; j++)
    {
      if (j != i)
        g_assert_false (g_strv_contains ((const gchar * const *) modules, vms[j].driver));
    }
  g_assert_true (journal_has (f, device, "agent running"));
  g_assert_true (journal_has (f, device, "agent sent"));
  g_assert_cmpuint (n_disks (device, vms[i].ide_disk ? "sda" : NULL), ==, vms[i].ide_disk ? 2 : 1);
}

static void write_images (Fixture *f);
static void event_cb (GObject *source, GAsyncResult *result, gpointer user_data);

/* One VM went through: its NIC's driver reported and picked, its agent ran */
static void
check_vm_one (Fixture *f, guint i)
{
  ShoalDevice *device = shoal_controller_lookup_device (f->controller, vms[i].id);
  g_auto(GStrv) modules = NULL;

  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_cmpstr (nic_driver (device), ==, vms[i].driver);
  modules = g_strsplit (shoal_device_get_metadata (device, "drivers"), " ", -1);
  g_assert_true (g_strv_contains ((const gchar * const *) modules, vms[i].driver));
  g_assert_true (journal_has (f, device, "agent running"));
}
static void instruct (Fixture *f, guint i, const gchar *json);
static gboolean vm_exited (Fixture *f, guint i);

static void
test_three_vms (Fixture *f, gconstpointer data)
{
  g_autofree gchar *recipe = NULL;
  g_autofree gchar *kernel = NULL;
  g_autofree gchar *initrd = NULL;
  g_autoptr(GError) error = NULL;
  gint64 deadline;
  gint64 start;

  if (!can_run ())
    return;
  kernel = kernel_dir ();
  f->tmp = g_dir_make_tmp ("shoal-agent-e2e-XXXXXX", &error);
  g_assert_no_error (error);
  initrd = build_loader_initramfs (f, kernel, FALSE);
  make_image (f);
  make_network (f, TRUE);
  recipe = g_strdup_printf ("{\"name\":\"e2e-agent\",\"steps\":["
                            "{\"step\":\"inventory\",\"timeout\":%d},"
                            "{\"step\":\"drivers\",\"options\":{\"kernel\":\"%s\"}},"
                            "{\"step\":\"agent\",\"timeout\":%d,\"options\":{\"disk\":\"/dev/vda\"}}]}",
                            VM_TIMEOUT_S, kernel, VM_TIMEOUT_S);
  start_controller (f, kernel, agent_plugins, recipe, NULL);
  for (guint i = 0; i < N_VMS; i++)
    {
      const gchar *macs[] = { vms[i].mac, NULL };
      ShoalDevice *device = shoal_controller_enroll_device (f->controller, vms[i].id, macs, vms[i].uuid, &error);

      g_assert_no_error (error);
      g_assert_true (shoal_controller_assign_recipe (f->controller, device, "e2e-agent", &error));
      g_assert_true (shoal_controller_deploy (f->controller, device, &error));
      g_assert_no_error (error);
    }
  start = g_get_monotonic_time ();
  for (guint i = 0; i < N_VMS; i++)
    start_vm (f, i, kernel, initrd);
  deadline = start + TEST_TIMEOUT_S * G_USEC_PER_SEC;
  while (!all_done (f, N_VMS) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_test_message ("three VMs done in %.1f s", (g_get_monotonic_time () - start) / 1e6);
  for (guint i = 0; i < N_VMS; i++)
    {
      ShoalDevice *device = shoal_controller_lookup_device (f->controller, vms[i].id);

      g_test_message ("%s: %s, drivers [%s]", vms[i].id, shoal_device_state_to_string (shoal_device_get_state (device)),
                      shoal_device_get_metadata (device, "drivers"));
      dump_journal (f, device);
    }
  for (guint i = 0; i < N_VMS; i++)
    {
      if (shoal_device_get_state (shoal_controller_lookup_device (f->controller, vms[i].id)) != SHOAL_DEVICE_STATE_INSTALLED)
        dump_serial_logs (f);
    }
  for (guint i = 0; i < N_VMS; i++)
    check_vm (f, i);
  /* three different agents */
  for (guint i = 0; i < N_VMS; i++)
    for (guint j = i + 1; j < N_VMS; j++)
      g_assert_cmpstr (shoal_device_get_metadata (shoal_controller_lookup_device (f->controller, vms[i].id), "agent.sha256"), !=,
                       shoal_device_get_metadata (shoal_controller_lookup_device (f->controller, vms[j].id), "agent.sha256"));
  start = g_get_monotonic_time ();
  write_images (f);
  g_test_message ("images written and VMs powered off in %.1f s", (g_get_monotonic_time () - start) / 1e6);
}

static void
event_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  JsonNode **out = user_data;

  *out = shoal_device_wait_event_finish (SHOAL_DEVICE (source), result, NULL);
  if (*out == NULL)
    *out = json_node_new (JSON_NODE_NULL);
}

static void
instruct (Fixture *f, guint i, const gchar *json)
{
  g_autoptr(JsonNode) node = json_from_string (json, NULL);

  g_assert_nonnull (node);
  shoal_device_set_instruction (shoal_controller_lookup_device (f->controller, vms[i].id), node);
}

static gboolean
vm_exited (Fixture *f, guint i)
{
  int status = 0;

  if (f->pids[i] == 0)
    return TRUE;
  if (waitpid (f->pids[i], &status, WNOHANG) != f->pids[i])
    return FALSE;
  f->pids[i] = 0;
  return TRUE;
}

/* Every agent writes the image to its disk, reports it, and powers off */
static void
write_images (Fixture *f)
{
  JsonNode *written[N_VMS] = { NULL };
  g_autofree gchar *ins = g_strdup_printf ("{\"action\":\"unicast-receive\",\"manifest\":\"/e2e-image/manifest\","
                                           "\"image_id\":\"%s\"}", f->image_id);
  gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  gboolean done = FALSE;

  for (guint i = 0; i < N_VMS; i++)
    {
      shoal_device_wait_event_async (shoal_controller_lookup_device (f->controller, vms[i].id), "image-written",
                                     NULL, event_cb, &written[i]);
      instruct (f, i, ins);
    }
  while (!done && g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, TRUE);
      done = written[0] != NULL && written[1] != NULL && written[2] != NULL;
    }
  for (guint i = 0; i < N_VMS; i++)
    {
      g_assert_nonnull (written[i]);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (written[i]));
      g_assert_cmpint (json_object_get_int_member (json_node_get_object (written[i]), "bytes"), ==,
                       g_bytes_get_size (f->image));
      g_assert_cmpint (json_object_get_int_member (json_node_get_object (written[i]), "zero_chunks"), ==, 10);
      json_node_unref (written[i]);
      instruct (f, i, "{\"action\":\"poweroff\"}");
    }
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!(vm_exited (f, 0) && vm_exited (f, 1) && vm_exited (f, 2)) && g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (20000);
    }
  for (guint i = 0; i < N_VMS; i++)
    {
      g_autofree gchar *disk = g_strdup_printf ("%s/%s.img", f->tmp, vms[i].id);
      g_autofree gchar *contents = NULL;
      gsize len = 0;

      g_assert_true (vm_exited (f, i));
      g_assert_true (g_file_get_contents (disk, &contents, &len, NULL));
      g_assert_cmpuint (len, ==, 8 << 20);
      g_assert_cmpmem (contents, g_bytes_get_size (f->image), g_bytes_get_data (f->image, NULL),
                       g_bytes_get_size (f->image));
    }
}

/* The whole chain with plugins/unicast: inventory, drivers, agent, then the
 * unicast step serves the recipe's image from the image store and the
 * agent writes it */
static void
test_unicast_plugin (Fixture *f, gconstpointer data)
{
  const gchar * const plugins[] = { "inventory", "drivers", "agent", "unicast", NULL };
  g_autofree gchar *unicast = g_build_filename (SHOAL_BUILD_PLUGINDIR, "unicast", "unicast.plugin", NULL);
  g_autofree gchar *kernel = NULL, *initrd = NULL, *recipe = NULL, *img = NULL;
  g_autofree gchar *disk = NULL, *contents = NULL;
  const gchar *macs[] = { vms[1].mac, NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;
  gint64 deadline, start;

  if (!can_run ())
    return;
  if (!g_file_test (unicast, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("plugins/unicast is not built");
      return;
    }
  kernel = kernel_dir ();
  f->tmp = g_dir_make_tmp ("shoal-agent-e2e-XXXXXX", &error);
  initrd = build_loader_initramfs (f, kernel, FALSE);
  make_image (f);
  img = g_build_filename (f->tmp, "e2e-image.raw", NULL);
  g_assert_true (g_file_set_contents (img, g_bytes_get_data (f->image, NULL), (gssize) g_bytes_get_size (f->image), NULL));
  make_network (f, TRUE);
  recipe = g_strdup_printf ("{\"name\":\"e2e-agent\",\"image\":{\"name\":\"e2e-image\",\"file\":\"%s\"},\"steps\":["
                            "{\"step\":\"inventory\",\"timeout\":%d},"
                            "{\"step\":\"drivers\",\"options\":{\"kernel\":\"%s\"}},"
                            "{\"step\":\"agent\",\"timeout\":%d},"
                            "{\"step\":\"unicast\",\"timeout\":%d}]}",
                            img, VM_TIMEOUT_S, kernel, VM_TIMEOUT_S, VM_TIMEOUT_S);
  start_controller (f, kernel, plugins, recipe, NULL);
  device = shoal_controller_enroll_device (f->controller, vms[1].id, macs, vms[1].uuid, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (f->controller, device, "e2e-agent", &error));
  g_assert_true (shoal_controller_deploy (f->controller, device, &error));
  g_assert_no_error (error);
  start = g_get_monotonic_time ();
  start_vm (f, 1, kernel, initrd);
  deadline = start + TEST_TIMEOUT_S * G_USEC_PER_SEC;
  while (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED
         && shoal_device_get_state (device) != SHOAL_DEVICE_STATE_FAILED && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_test_message ("%s %s in %.1f s", vms[1].id, shoal_device_state_to_string (shoal_device_get_state (device)),
                  (g_get_monotonic_time () - start) / 1e6);
  dump_journal (f, device);
  if (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED)
    dump_serial_logs (f);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  instruct (f, 1, "{\"action\":\"poweroff\"}");
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!vm_exited (f, 1) && g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (20000);
    }
  g_assert_true (vm_exited (f, 1));
  disk = g_strdup_printf ("%s/%s.img", f->tmp, vms[1].id);
  g_assert_true (g_file_get_contents (disk, &contents, NULL, NULL));
  g_assert_cmpmem (contents, g_bytes_get_size (f->image), g_bytes_get_data (f->image, NULL), g_bytes_get_size (f->image));
}

/* The whole chain from the network boot: the NIC's iPXE ROM DHCPs from the
 * pxe plugin (authoritative, in the namespace), chains to its iPXE script,
 * loads the loader kernel and initramfs over HTTP with shoal.server/token/
 * device on the command line; then inventory, drivers and agent */
static void
test_pxe_boot (Fixture *f, gconstpointer data)
{
  const gchar * const plugins[] = { "pxe", "inventory", "drivers", "agent", NULL };
  g_autofree gchar *pxe = g_build_filename (SHOAL_BUILD_PLUGINDIR, "pxe", "pxe.plugin", NULL);
  g_autofree gchar *kernel = NULL, *initrd = NULL, *recipe = NULL, *boot = NULL, *vmlinuz = NULL, *cmd = NULL;
  g_autoptr(GKeyFile) config = g_key_file_new ();
  const gchar *macs[] = { vms[0].mac, NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;
  gint64 deadline, start;

  if (!can_run ())
    return;
  if (!g_file_test (pxe, G_FILE_TEST_EXISTS) || !g_file_test ("/usr/lib/ipxe/qemu/efi-e1000.rom", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("plugins/pxe is not built or ipxe-qemu is missing");
      return;
    }
  kernel = kernel_dir ();
  f->tmp = g_dir_make_tmp ("shoal-agent-e2e-XXXXXX", &error);
  initrd = build_loader_initramfs (f, kernel, FALSE);
  boot = g_build_filename (f->tmp, "state", "boot", "loader", NULL);
  g_mkdir_with_parents (boot, 0755);
  vmlinuz = g_build_filename (kernel, "vmlinuz", NULL);
  cmd = g_strdup_printf ("cp %s %s/vmlinuz", vmlinuz, boot);
  g_assert_true (run (cmd, &error));
  g_free (cmd);
  cmd = g_strdup_printf ("cp %s %s/initrd.img", initrd, boot);
  g_assert_true (run (cmd, &error));
  make_network (f, FALSE);
  g_key_file_set_string (config, "pxe", "mode", "authoritative");
  g_key_file_set_string (config, "pxe", "interface", "br0");
  {
    g_autofree gchar *addr = g_strdup_printf ("%s.1", f->subnet);
    g_autofree gchar *lo = g_strdup_printf ("%s.100", f->subnet);
    g_autofree gchar *hi = g_strdup_printf ("%s.150", f->subnet);

    g_key_file_set_string (config, "pxe", "address", addr);
    g_key_file_set_string (config, "pxe", "range-start", lo);
    g_key_file_set_string (config, "pxe", "range-end", hi);
    g_key_file_set_string (config, "pxe", "router", addr);
  }
  recipe = g_strdup_printf ("{\"name\":\"e2e-agent\",\"boot\":{\"kernel\":\"loader/vmlinuz\","
                            "\"initrd\":\"loader/initrd.img\",\"cmdline\":\"console=ttyS0 panic=5 quiet\"},"
                            "\"steps\":[{\"step\":\"pxe-boot\",\"timeout\":%d},"
                            "{\"step\":\"inventory\",\"timeout\":%d},"
                            "{\"step\":\"drivers\",\"options\":{\"kernel\":\"%s\"}},"
                            "{\"step\":\"agent\",\"timeout\":%d}]}",
                            VM_TIMEOUT_S, VM_TIMEOUT_S, kernel, VM_TIMEOUT_S);
  start_controller (f, kernel, plugins, recipe, config);
  device = shoal_controller_enroll_device (f->controller, vms[0].id, macs, vms[0].uuid, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (f->controller, device, "e2e-agent", &error));
  g_assert_true (shoal_controller_deploy (f->controller, device, &error));
  g_assert_no_error (error);
  start = g_get_monotonic_time ();
  start_vm (f, 0, kernel, NULL);
  deadline = start + TEST_TIMEOUT_S * G_USEC_PER_SEC;
  while (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED
         && shoal_device_get_state (device) != SHOAL_DEVICE_STATE_FAILED && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_test_message ("%s %s in %.1f s", vms[0].id, shoal_device_state_to_string (shoal_device_get_state (device)),
                  (g_get_monotonic_time () - start) / 1e6);
  dump_journal (f, device);
  if (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED)
    dump_serial_logs (f);
  check_vm_one (f, 0);
}

/* The group: three VMs through inventory, drivers and agent meet at the
 * rendezvous, then plugins/multicast sends the recipe's image (imported
 * into the store with plugins/image-store's tool; manifest and missing
 * chunks from plugins/unicast's /images) to all three at once */
static gboolean
members_done (Fixture *f, const guint *members)
{
  for (guint k = 0; k < N_VMS; k++)
    {
      ShoalDeviceState state = shoal_device_get_state (shoal_controller_lookup_device (f->controller, vms[members[k]].id));

      if (state != SHOAL_DEVICE_STATE_INSTALLED && state != SHOAL_DEVICE_STATE_FAILED)
        return FALSE;
    }
  return TRUE;
}

static void
test_multicast_group (Fixture *f, gconstpointer data)
{
  const gchar * const plugins[] = { "inventory", "drivers", "agent", "unicast", "multicast", NULL };
  g_autofree gchar *mcast = g_build_filename (SHOAL_BUILD_PLUGINDIR, "multicast", "multicast.plugin", NULL);
  g_autofree gchar *ucast = g_build_filename (SHOAL_BUILD_PLUGINDIR, "unicast", "unicast.plugin", NULL);
  const gchar *tool = g_getenv ("SHOAL_IMAGE_TOOL");
  g_autofree gchar *kernel = NULL, *initrd = NULL, *recipe = NULL, *img = NULL, *cmd = NULL;
  g_autoptr(GError) error = NULL;
  gint64 deadline, start;
  gboolean done = FALSE;
  /* a homogeneous-enough group; SHOAL_E2E_MCAST_THIRD=2 puts the rtl8139 machine in it */
  guint members[N_VMS] = { 0, 1, 3 };

  if (!can_run ())
    return;
  if (!g_file_test (mcast, G_FILE_TEST_EXISTS) || !g_file_test (ucast, G_FILE_TEST_EXISTS)
      || tool == NULL || !g_file_test (tool, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("plugins/multicast, plugins/unicast or plugins/image-store's tool is not built");
      return;
    }
  kernel = kernel_dir ();
  f->tmp = g_dir_make_tmp ("shoal-agent-e2e-XXXXXX", &error);
  initrd = build_loader_initramfs (f, kernel, FALSE);
  make_image (f);
  img = g_build_filename (f->tmp, "e2e-image.raw", NULL);
  g_assert_true (g_file_set_contents (img, g_bytes_get_data (f->image, NULL), (gssize) g_bytes_get_size (f->image), NULL));
  cmd = g_strdup_printf ("%s --store %s/state/image-store import --name e2e-image --chunk-size 65536 %s", tool, f->tmp, img);
  g_assert_true (run (cmd, &error));
  g_assert_no_error (error);
  if (g_strcmp0 (g_getenv ("SHOAL_E2E_MCAST_THIRD"), "2") == 0)
    members[2] = 2;
  make_network (f, TRUE);
  recipe = g_strdup_printf ("{\"name\":\"e2e-agent\",\"image\":{\"name\":\"e2e-image\"},"
                            "\"group\":{\"min-devices\":%d,\"max-wait\":%d},\"steps\":["
                            "{\"step\":\"inventory\",\"timeout\":%d},"
                            "{\"step\":\"drivers\",\"options\":{\"kernel\":\"%s\"}},"
                            "{\"step\":\"agent\",\"timeout\":%d},"
                            "{\"step\":\"multicast\",\"timeout\":%d,\"options\":{\"interface\":\"br0\"}}]}",
                            N_VMS, VM_TIMEOUT_S, VM_TIMEOUT_S, kernel, VM_TIMEOUT_S, VM_TIMEOUT_S);
  start_controller (f, kernel, plugins, recipe, NULL);
  for (guint k = 0; k < N_VMS; k++)
    {
      guint i = members[k];
      const gchar *macs[] = { vms[i].mac, NULL };
      ShoalDevice *device = shoal_controller_enroll_device (f->controller, vms[i].id, macs, vms[i].uuid, &error);

      g_assert_no_error (error);
      g_assert_true (shoal_controller_assign_recipe (f->controller, device, "e2e-agent", &error));
      g_assert_true (shoal_controller_deploy (f->controller, device, &error));
      g_assert_no_error (error);
    }
  start = g_get_monotonic_time ();
  for (guint k = 0; k < N_VMS; k++)
    start_vm (f, members[k], kernel, initrd);
  deadline = start + TEST_TIMEOUT_S * G_USEC_PER_SEC;
  while (!members_done (f, members) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_test_message ("group done in %.1f s", (g_get_monotonic_time () - start) / 1e6);
  for (guint k = 0; k < N_VMS; k++)
    {
      ShoalDevice *device = shoal_controller_lookup_device (f->controller, vms[members[k]].id);

      dump_journal (f, device);
      if (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED)
        dump_serial_logs (f);
    }
  for (guint k = 0; k < N_VMS; k++)
    check_vm_one (f, members[k]);
  /* a member evicted to unicast finishes after the step: its agent says when */
  {
    JsonNode *written[N_VMS] = { NULL };

    for (guint k = 0; k < N_VMS; k++)
      shoal_device_wait_event_async (shoal_controller_lookup_device (f->controller, vms[members[k]].id),
                                     "image-written", NULL, event_cb, &written[k]);
    deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
    while (!(written[0] && written[1] && written[2]) && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
    for (guint k = 0; k < N_VMS; k++)
      {
        g_autofree gchar *text = written[k] != NULL ? json_to_string (written[k], FALSE) : NULL;

        g_test_message ("%s image-written %s", vms[members[k]].id, text);
        g_assert_nonnull (written[k]);
        json_node_unref (written[k]);
        instruct (f, members[k], "{\"action\":\"poweroff\"}");
      }
  }
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!done && g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (20000);
      done = vm_exited (f, members[0]) && vm_exited (f, members[1]) && vm_exited (f, members[2]);
    }
  for (guint k = 0; k < N_VMS; k++)
    {
      g_autofree gchar *disk = g_strdup_printf ("%s/%s.img", f->tmp, vms[members[k]].id);
      g_autofree gchar *contents = NULL;

      g_assert_true (vm_exited (f, members[k]));
      g_assert_true (g_file_get_contents (disk, &contents, NULL, NULL));
      g_assert_cmpmem (contents, g_bytes_get_size (f->image), g_bytes_get_data (f->image, NULL),
                       g_bytes_get_size (f->image));
    }
}

/* vms[1] through inventory, drivers and agent, booted from the loader
 * initramfs (laid out --merged-usr if @merged_usr); returns its device
 * once it is installed or failed, its machine stopped (a loader that
 * fails powers it off: no need to wait for the step's timeout then), or
 * the test's time is up */
static ShoalDevice *
deploy_one (Fixture *f, gboolean merged_usr)
{
  g_autofree gchar *kernel = kernel_dir ();
  g_autofree gchar *initrd = NULL, *recipe = NULL;
  const gchar *macs[] = { vms[1].mac, NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;
  gint64 deadline, start;

  f->tmp = g_dir_make_tmp ("shoal-agent-e2e-XXXXXX", &error);
  g_assert_no_error (error);
  initrd = build_loader_initramfs (f, kernel, merged_usr);
  make_network (f, TRUE);
  recipe = g_strdup_printf ("{\"name\":\"e2e-agent\",\"steps\":["
                            "{\"step\":\"inventory\",\"timeout\":%d},"
                            "{\"step\":\"drivers\",\"options\":{\"kernel\":\"%s\"}},"
                            "{\"step\":\"agent\",\"timeout\":%d}]}",
                            VM_TIMEOUT_S, kernel, VM_TIMEOUT_S);
  start_controller (f, kernel, agent_plugins, recipe, NULL);
  device = shoal_controller_enroll_device (f->controller, vms[1].id, macs, vms[1].uuid, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (f->controller, device, "e2e-agent", &error));
  g_assert_true (shoal_controller_deploy (f->controller, device, &error));
  g_assert_no_error (error);
  start = g_get_monotonic_time ();
  start_vm (f, 1, kernel, initrd);
  deadline = start + TEST_TIMEOUT_S * G_USEC_PER_SEC;
  while (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED
         && shoal_device_get_state (device) != SHOAL_DEVICE_STATE_FAILED && !vm_exited (f, 1)
         && g_get_monotonic_time () < deadline)
    {
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (10000);
    }
  g_test_message ("%s %s in %.1f s", vms[1].id, shoal_device_state_to_string (shoal_device_get_state (device)),
                  (g_get_monotonic_time () - start) / 1e6);
  dump_journal (f, device);
  if (shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED)
    dump_serial_logs (f);
  return device;
}

/* UEFI: OVMF boots the loader (direct kernel boot), the inventory says
 * "uefi" and lists the AHCI disk, and ahci is picked for the agent */
static void
test_uefi (Fixture *f, gconstpointer data)
{
  g_auto(GStrv) modules = NULL;
  ShoalDevice *device;
  JsonObject *fw;

  if (!can_run ())
    return;
  if (!g_file_test ("/usr/share/OVMF/OVMF_CODE_4M.fd", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("ovmf is missing");
      return;
    }
  f->uefi = TRUE;
  device = deploy_one (f, FALSE);
  check_vm_one (f, 1);
  fw = json_object_get_object_member (json_node_get_object (shoal_device_get_inventory (device)), "firmware");
  g_assert_cmpstr (json_object_get_string_member (fw, "type"), ==, "uefi");
  g_assert_cmpuint (n_disks (device, "sda"), ==, 2);
  modules = g_strsplit (shoal_device_get_metadata (device, "drivers"), " ", -1);
  g_assert_true (g_strv_contains ((const gchar * const *) modules, "ahci"));
}

/* A merged-/usr loader root (bin, sbin and lib links into usr, as Debian
 * 12 and most current distributions have it): the loader unpacks its
 * agent's lib/modules/<release> through lib -> usr/lib, and the agent
 * loads its modules from there */
static void
test_merged_usr (Fixture *f, gconstpointer data)
{
  g_autofree gchar *log_path = NULL, *log = NULL;

  if (!can_run ())
    return;
  deploy_one (f, TRUE);
  log_path = g_strdup_printf ("%s/%s.log", f->tmp, vms[1].id);
  g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "agent unpacked into /"));
  check_vm_one (f, 1);
  /* every module's file opened from /lib/modules, that is usr/lib/modules
   * (crct10dif_pclmul may still fail: QEMU's CPU has no PCLMULQDQ) */
  g_assert_nonnull (strstr (log, "shoal-agent: module virtio_net loaded"));
  g_assert_null (strstr (log, "modules.dep: no modules loaded"));
  g_assert_null (strstr (log, ": cannot open /lib/modules/"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/agent-gen/e2e/three-vms", Fixture, NULL, fixture_set_up, test_three_vms, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/e2e/uefi", Fixture, NULL, fixture_set_up, test_uefi, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/e2e/merged-usr", Fixture, NULL, fixture_set_up, test_merged_usr, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/e2e/pxe-boot", Fixture, NULL, fixture_set_up, test_pxe_boot, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/e2e/multicast-group", Fixture, NULL, fixture_set_up, test_multicast_group, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/e2e/with-unicast-plugin", Fixture, NULL, fixture_set_up, test_unicast_plugin, fixture_tear_down);
  return g_test_run ();
}
