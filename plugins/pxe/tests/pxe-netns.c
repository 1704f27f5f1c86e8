/* pxe-netns.c: network namespaces for the pxe plugin's network tests
 *
 * The server namespace holds a bridge br0 (10.77.0.1/24); each client
 * namespace has a veth whose peer is enslaved to br0. The test process
 * itself moves into the server namespace (setns), so the servers under
 * test run in-process on its main loop; clients run through
 * `ip netns exec`. Everything is deleted by pxe_netns_free, which the
 * tests register first (g_autoptr), so failures clean up too.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "pxe-netns.h"

static void kill_inside (const gchar *ns);

/* namespaces to delete if an assertion aborts the test */
static GPtrArray *live_names;

static void
on_abort (gint sig)
{
  for (guint i = 0; live_names != NULL && i < live_names->len; i++)
    {
      gchar cmd[256];
      g_snprintf (cmd, sizeof cmd,
                  "for p in $(ip netns pids %1$s); do [ $p = %2$d ] || kill -9 $p; done; ip netns del %1$s 2>/dev/null",
                  (const gchar *) g_ptr_array_index (live_names, i), (gint) getpid ());
      if (system (cmd) != 0)
        continue;
    }
  signal (sig, SIG_DFL);
  raise (sig);
}

static void
track (const gchar *name, gboolean live)
{
  if (live_names == NULL)
    {
      live_names = g_ptr_array_new_with_free_func (g_free);
      signal (SIGABRT, on_abort);
      signal (SIGTERM, on_abort);
    }
  if (live)
    g_ptr_array_add (live_names, g_strdup (name));
  else
    for (guint i = 0; i < live_names->len; i++)
      if (g_str_equal (g_ptr_array_index (live_names, i), name))
        g_ptr_array_remove_index (live_names, i--);
}

gboolean
pxe_netns_have_program (const gchar *program)
{
  g_autofree gchar *path = g_find_program_in_path (program);

  return path != NULL;
}

gboolean
pxe_netns_available (gchar **reason)
{
  if (geteuid () != 0)
    {
      *reason = g_strdup ("needs root for network namespaces");
      return FALSE;
    }
  if (!pxe_netns_have_program ("ip"))
    {
      *reason = g_strdup ("needs iproute2 (ip)");
      return FALSE;
    }
  return TRUE;
}

static gboolean
run_argv (const gchar * const *argv, GError **error)
{
  g_autoptr(GSubprocess) proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE, error);

  return proc != NULL && g_subprocess_wait_check (proc, NULL, error);
}

static gboolean
run_sh (const gchar *script, GError **error)
{
  const gchar *argv[] = { "sh", "-ec", script, NULL };

  if (!run_argv (argv, error))
    {
      g_prefix_error (error, "%s: ", script);
      return FALSE;
    }
  return TRUE;
}

gboolean
pxe_netns_sh (const gchar *ns, const gchar *script, GError **error)
{
  g_autofree gchar *cmd = g_strdup_printf ("ip netns exec %s sh -ec '%s'", ns, script);

  return run_sh (cmd, error);
}

static gboolean
add_client (PxeNetns *ns, guint i, gboolean with_address, GError **error)
{
  g_autofree gchar *name = g_strdup_printf ("%s-c%u", ns->server_ns, i);
  g_autofree gchar *script = g_strdup_printf (
    "ip netns add %1$s\n"
    "ip -n %2$s link add v%3$u type veth peer name eth0 netns %1$s\n"
    "ip -n %2$s link set v%3$u master br0 up\n"
    "ip -n %1$s link set lo up\n"
    "ip -n %1$s link set eth0 address 52:54:00:77:00:%3$02x up\n"
    "%4$s",
    name, ns->server_ns, i + 1,
    with_address ? "" : "true\n");

  g_ptr_array_add (ns->client_ns, g_strdup (name));
  track (name, TRUE);
  if (!run_sh (script, error))
    return FALSE;
  if (with_address)
    {
      g_autofree gchar *addr = g_strdup_printf ("ip -n %s addr add 10.77.0.%u/24 dev eth0", name, 100 + i);
      return run_sh (addr, error);
    }
  return TRUE;
}

static gboolean
enter (PxeNetns *ns, GError **error)
{
  g_autofree gchar *path = g_strdup_printf ("/var/run/netns/%s", ns->server_ns);
  gint fd = open (path, O_RDONLY | O_CLOEXEC);
  gint r;

  if (fd < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot open %s", path);
      return FALSE;
    }
  r = setns (fd, CLONE_NEWNET);
  close (fd);
  if (r != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "setns: %s", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/**
 * pxe_netns_new:
 * @prefix: a short name unique to the test (the PID is appended)
 * @client_addresses: give each client 10.77.0.(100+i)/24
 *
 * Creates the namespaces and moves the calling thread into the server one.
 */
PxeNetns *
pxe_netns_new (const gchar *prefix, guint n_clients, gboolean client_addresses, GError **error)
{
  g_autoptr(PxeNetns) ns = g_new0 (PxeNetns, 1);
  g_autofree gchar *script = NULL;

  ns->server_ns = g_strdup_printf ("%s-%d", prefix, (gint) getpid ());
  ns->client_ns = g_ptr_array_new_with_free_func (g_free);
  ns->original_fd = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  script = g_strdup_printf ("ip netns add %1$s\n"
                            "ip -n %1$s link set lo up\n"
                            "ip -n %1$s link add br0 type bridge\n"
                            "ip -n %1$s link set br0 type bridge forward_delay 0 stp_state 0\n"
                            "ip -n %1$s addr add " PXE_NETNS_SERVER_IP "/24 dev br0\n"
                            "ip -n %1$s link set br0 up\n", ns->server_ns);
  track (ns->server_ns, TRUE);
  if (!run_sh (script, error))
    return NULL;
  for (guint i = 0; i < n_clients; i++)
    if (!add_client (ns, i, client_addresses, error))
      return NULL;
  if (!enter (ns, error))
    return NULL;
  return g_steal_pointer (&ns);
}

void
pxe_netns_free (PxeNetns *ns)
{
  if (ns == NULL)
    return;
  if (ns->original_fd >= 0)
    {
      (void) setns (ns->original_fd, CLONE_NEWNET);
      close (ns->original_fd);
    }
  for (guint i = 0; ns->client_ns != NULL && i < ns->client_ns->len; i++)
    {
      const gchar *argv[] = { "ip", "netns", "del", g_ptr_array_index (ns->client_ns, i), NULL };
      kill_inside (argv[3]);
      (void) run_argv (argv, NULL);
      track (argv[3], FALSE);
    }
  if (ns->server_ns != NULL)
    {
      const gchar *argv[] = { "ip", "netns", "del", ns->server_ns, NULL };
      kill_inside (ns->server_ns);
      (void) run_argv (argv, NULL);
      track (ns->server_ns, FALSE);
    }
  g_clear_pointer (&ns->client_ns, g_ptr_array_unref);
  g_free (ns->server_ns);
  g_free (ns);
}

static void
enter_in_child (gpointer user_data)
{
  if (setns (GPOINTER_TO_INT (user_data), CLONE_NEWNET) != 0)
    _exit (127);
}

/* runs @argv inside namespace @ns: the child enters it itself (setns
 * before exec), so the returned process is the program, and killing it
 * kills the program (`ip netns exec` would leave it orphaned) */
GSubprocess *
pxe_netns_spawn (const gchar *ns, const gchar * const *argv, GError **error)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autofree gchar *path = g_strdup_printf ("/var/run/netns/%s", ns);
  gint fd = open (path, O_RDONLY | O_CLOEXEC);
  GSubprocess *proc;

  if (fd < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no namespace %s", ns);
      return NULL;
    }
  g_subprocess_launcher_set_child_setup (launcher, enter_in_child, GINT_TO_POINTER (fd), NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, error);
  close (fd);
  return proc;
}

/* kills what still runs in namespace @ns (never this process) */
static void
kill_inside (const gchar *ns)
{
  g_autofree gchar *cmd = g_strdup_printf ("ip netns pids %s", ns);
  g_autofree gchar *out = NULL;
  g_auto(GStrv) pids = NULL;

  if (!g_spawn_command_line_sync (cmd, &out, NULL, NULL, NULL) || out == NULL)
    return;
  pids = g_strsplit (out, "\n", -1);
  for (guint i = 0; pids[i] != NULL; i++)
    {
      gint pid = atoi (pids[i]);
      if (pid > 1 && pid != getpid ())
        kill (pid, SIGKILL);
    }
}

static void
on_communicated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  g_autoptr(GBytes) out = NULL;
  GError *error = NULL;

  if (!g_subprocess_communicate_finish (G_SUBPROCESS (source), result, &out, NULL, &error))
    g_task_return_error (task, error);
  else
    {
      gsize n = 0;
      const gchar *d = out != NULL ? g_bytes_get_data (out, &n) : NULL;
      g_task_return_pointer (task, g_strndup (d != NULL ? d : "", n), g_free);
    }
  g_object_unref (task);
}

static gboolean
tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* runs the main loop until *flag is set or @timeout_ms passed */
gboolean
pxe_netns_iterate_until (gboolean *flag, guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  guint id = g_timeout_add (20, tick, NULL);

  while (!*flag && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
  return *flag;
}

static void
on_task_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* waits for @proc while the main loop (and so the servers) runs; kills it
 * after @timeout_s */
gboolean
pxe_netns_wait (GSubprocess *proc, guint timeout_s, gchar **output, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree gchar *out = NULL;
  gint64 end = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  GTask *task = g_task_new (proc, NULL, on_task_done, &result);
  guint id = g_timeout_add (100, tick, NULL);

  g_subprocess_communicate_async (proc, NULL, NULL, on_communicated, task);
  while (result == NULL)
    {
      if (g_get_monotonic_time () > end)
        g_subprocess_force_exit (proc);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (id);
  out = g_task_propagate_pointer (G_TASK (result), error);
  if (out == NULL)
    return FALSE;
  if (output != NULL)
    *output = g_strdup (out);
  if (!g_subprocess_get_successful (proc))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "client exited with status %d: %s",
                   g_subprocess_get_status (proc), out);
      return FALSE;
    }
  return TRUE;
}

gboolean
pxe_netns_run (const gchar *ns, const gchar * const *argv, guint timeout_s,
               gchar **output, GError **error)
{
  g_autoptr(GSubprocess) proc = pxe_netns_spawn (ns, argv, error);

  return proc != NULL && pxe_netns_wait (proc, timeout_s, output, error);
}

gchar *
pxe_netns_tmpdir (const gchar *prefix)
{
  g_autofree gchar *tmpl = g_strdup_printf ("%s-XXXXXX", prefix);

  return g_dir_make_tmp (tmpl, NULL);
}
