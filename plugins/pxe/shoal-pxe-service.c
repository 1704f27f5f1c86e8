/* shoal-pxe-service.c: the network boot service (DHCP, TFTP, HTTP routes)
 *
 * Configuration, group [pxe] of the daemon's configuration:
 *   mode           proxy (default), authoritative or off (no DHCP)
 *   interface      the interface DHCP and TFTP bind to (SO_BINDTODEVICE);
 *                  DHCP needs it
 *   address        the server's IPv4 address (default: the interface's)
 *   range-start, range-end, lease-time (3600), router, dns
 *                  the authoritative mode's pool; leases persist in the
 *                  key/value store, namespace "pxe-leases", key = MAC
 *   dhcp-port (67), proxy-port (4011), tftp-port (69, 0 = no TFTP)
 *   tftp-workers   threads moving TFTP data (-1: four per CPU, at most 16)
 *   tftp-per-client  TFTP transfers one client address may run at once (8)
 *   boot-files     directory of kernels and initrds (<state dir>/boot)
 *   ipxe-dir       Debian's iPXE binaries (default: /usr/lib/ipxe)
 *   http-base      URL devices reach the daemon at (default: its server URL)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "shoal-pxe-net.h"
#include "shoal-pxe-service.h"
#include "shoal-pxe-state.h"

#define KV_NAMESPACE "pxe-leases"

struct _ShoalPxeService
{
  GObject        parent_instance;
  ShoalPxeState *state;
};

static void shoal_pxe_service_iface_init (ShoalServiceInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalPxeService, shoal_pxe_service, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_SERVICE, shoal_pxe_service_iface_init))

void
shoal_pxe_state_free (ShoalPxeState *state)
{
  if (state == NULL)
    return;
  g_clear_object (&state->dhcp);
  g_clear_object (&state->tftp);
  if (state->files_fd >= 0)
    g_close (state->files_fd, NULL);
  if (state->ipxe_fd >= 0)
    g_close (state->ipxe_fd, NULL);
  g_free (state->http_base);
  g_free (state->files_dir);
  g_free (state->ipxe_dir);
  g_free (state->template_dir);
  g_free (state->boot.bios_file);
  g_free (state->boot.uefi_file);
  g_free (state->boot.http_base);
  g_clear_object (&state->context);
  g_free (state);
}

static gchar *
config (ShoalPxeState *state, const gchar *key, const gchar *fallback)
{
  return shoal_context_get_config_string (state->context, "pxe", key, fallback);
}

static gchar *
find_template_dir (ShoalContext *context)
{
  const gchar *data_dir = shoal_context_get_data_dir (context);
  g_autofree gchar *installed = data_dir != NULL ? g_build_filename (data_dir, "ipxe", NULL) : NULL;

  if (installed != NULL && g_file_test (installed, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&installed);
  return g_build_filename (SHOAL_SOURCE_DATADIR, "ipxe", NULL);
}

static gboolean
open_dirs (ShoalPxeState *state, GError **error)
{
  g_autofree gchar *default_files = g_build_filename (shoal_context_get_state_dir (state->context), "boot", NULL);

  state->files_dir = config (state, "boot-files", default_files);
  state->ipxe_dir = config (state, "ipxe-dir", "/usr/lib/ipxe");
  state->template_dir = find_template_dir (state->context);
  if (g_mkdir_with_parents (state->files_dir, 0755) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, _("Cannot create the boot files directory %s: %s"),
                   state->files_dir, g_strerror (errno));
      return FALSE;
    }
  state->files_fd = open (state->files_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  state->ipxe_fd = open (state->ipxe_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (state->ipxe_fd < 0)
    g_warning ("no iPXE binaries in %s (install Debian's ipxe package): PXE clients get nothing to boot",
               state->ipxe_dir);
  return state->files_fd >= 0;
}

static void
store_lease (const gchar *mac, const gchar *value, gpointer user_data)
{
  ShoalPxeState *state = user_data;

  shoal_context_kv_set (state->context, KV_NAMESPACE, mac, value);
}

static ShoalPxeLeasePool *
make_pool (ShoalPxeState *state, GError **error)
{
  g_autofree gchar *start = config (state, "range-start", NULL);
  g_autofree gchar *end = config (state, "range-end", NULL);
  gint64 lease_time = shoal_context_get_config_int (state->context, "pxe", "lease-time", 3600);
  g_autoptr(GHashTable) saved = NULL;
  ShoalPxeLeasePool *pool;
  guint32 first, last;
  GHashTableIter iter;
  gpointer key, value;

  if (!shoal_pxe_net_ip_from_string (start, &first) || !shoal_pxe_net_ip_from_string (end, &last) ||
      ntohl (first) > ntohl (last))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Authoritative DHCP needs a valid range-start and range-end in [pxe], not %s..%s"),
                   start, end);
      return NULL;
    }
  pool = shoal_pxe_lease_pool_new (first, last, (guint) CLAMP (lease_time, 60, G_MAXINT32));
  saved = shoal_context_kv_list (state->context, KV_NAMESPACE);
  g_hash_table_iter_init (&iter, saved);
  while (saved != NULL && g_hash_table_iter_next (&iter, &key, &value))
    if (!shoal_pxe_lease_pool_load (pool, key, value))
      shoal_context_kv_set (state->context, KV_NAMESPACE, key, NULL);   /* expired */
  shoal_pxe_lease_pool_set_store (pool, store_lease, state);
  return pool;
}

static gboolean
start_dhcp (ShoalPxeState *state, GError **error)
{
  g_autofree gchar *mode_str = config (state, "mode", "proxy");
  g_autofree gchar *interface = config (state, "interface", NULL);
  g_autofree gchar *address = config (state, "address", NULL);
  g_autofree gchar *router = config (state, "router", NULL);
  g_autofree gchar *dns = config (state, "dns", NULL);
  ShoalPxeDhcpMode mode;

  if (g_strcmp0 (mode_str, "off") == 0)
    return TRUE;
  if (!shoal_pxe_dhcp_server_parse_mode (mode_str, &mode))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Unknown [pxe] mode %s: use proxy, authoritative or off"), mode_str);
      return FALSE;
    }
  state->dhcp = shoal_pxe_dhcp_server_new (mode);
  shoal_pxe_dhcp_server_set_interface (state->dhcp, interface);
  if (address != NULL)
    shoal_pxe_dhcp_server_set_address (state->dhcp, address);
  shoal_pxe_dhcp_server_set_router (state->dhcp, router);
  shoal_pxe_dhcp_server_set_dns (state->dhcp, dns);
  shoal_pxe_dhcp_server_set_ports (state->dhcp,
    (guint16) shoal_context_get_config_int (state->context, "pxe", "dhcp-port", 67),
    (guint16) shoal_context_get_config_int (state->context, "pxe", "proxy-port", 4011), 68);
  shoal_pxe_dhcp_server_set_boot_config (state->dhcp, &state->boot);
  shoal_pxe_dhcp_server_set_policy (state->dhcp, shoal_pxe_policy_dhcp, state, NULL);
  shoal_pxe_policy_connect_dhcp (state);
  if (mode == SHOAL_PXE_DHCP_MODE_AUTHORITATIVE)
    {
      ShoalPxeLeasePool *pool = make_pool (state, error);
      if (pool == NULL)
        return FALSE;
      shoal_pxe_dhcp_server_set_pool (state->dhcp, pool);
    }
  return shoal_pxe_dhcp_server_start (state->dhcp, error);
}

static gboolean
start_tftp (ShoalPxeState *state, GError **error)
{
  gint64 port = shoal_context_get_config_int (state->context, "pxe", "tftp-port", 69);
  g_autofree gchar *interface = config (state, "interface", NULL);
  g_autofree gchar *address = config (state, "address", NULL);

  if (port <= 0 || port > 65535)
    return TRUE;
  state->tftp = shoal_pxe_tftp_server_new (state->files_dir);
  shoal_pxe_tftp_server_set_interface (state->tftp, interface);
  shoal_pxe_tftp_server_set_workers (state->tftp,
    (gint) shoal_context_get_config_int (state->context, "pxe", "tftp-workers", -1));
  shoal_pxe_tftp_server_set_max_per_client (state->tftp,
    (guint) CLAMP (shoal_context_get_config_int (state->context, "pxe", "tftp-per-client", 8), 1, 4096));
  shoal_pxe_tftp_server_set_virtual_func (state->tftp, shoal_pxe_policy_tftp_file, state, NULL);
  shoal_pxe_policy_connect_tftp (state);
  return shoal_pxe_tftp_server_start (state->tftp, address, (guint16) port, error);
}

static gboolean
shoal_pxe_service_start (ShoalService *service, ShoalContext *context, GError **error)
{
  ShoalPxeService *self = SHOAL_PXE_SERVICE (service);
  ShoalPxeState *state = g_new0 (ShoalPxeState, 1);
  const gchar *url = shoal_context_get_server_url (context);

  state->files_fd = state->ipxe_fd = -1;
  state->context = g_object_ref (context);
  self->state = state;
  state->http_base = config (state, "http-base", url != NULL ? url : "http://0.0.0.0");
  if (g_str_has_suffix (state->http_base, "/"))
    state->http_base[strlen (state->http_base) - 1] = '\0';
  state->boot.bios_file = g_strdup ("undionly.kpxe");
  state->boot.uefi_file = g_strdup ("ipxe.efi");
  state->boot.http_base = g_strdup (state->http_base);
  if (!open_dirs (state, error) || !shoal_pxe_routes_register (state, error) ||
      !start_tftp (state, error) || !start_dhcp (state, error))
    {
      g_prefix_error (error, "%s", _("Cannot start the network boot service: "));
      shoal_service_stop (service);
      return FALSE;
    }
  g_info ("network boot service up: boot files %s, iPXE from %s, scripts at %s/boot/ipxe",
          state->files_dir, state->ipxe_dir, state->http_base);
  return TRUE;
}

static void
shoal_pxe_service_stop (ShoalService *service)
{
  ShoalPxeService *self = SHOAL_PXE_SERVICE (service);

  if (self->state == NULL)
    return;
  shoal_pxe_routes_unregister (self->state);
  g_clear_pointer (&self->state, shoal_pxe_state_free);
}

static void
shoal_pxe_service_iface_init (ShoalServiceInterface *iface)
{
  iface->start = shoal_pxe_service_start;
  iface->stop = shoal_pxe_service_stop;
}

static void
shoal_pxe_service_finalize (GObject *object)
{
  shoal_pxe_service_stop (SHOAL_SERVICE (object));
  G_OBJECT_CLASS (shoal_pxe_service_parent_class)->finalize (object);
}

static void
shoal_pxe_service_class_init (ShoalPxeServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_pxe_service_finalize;
}

static void
shoal_pxe_service_class_finalize (ShoalPxeServiceClass *klass)
{
}

static void
shoal_pxe_service_init (ShoalPxeService *self)
{
}

void
shoal_pxe_service_register_types (GTypeModule *module)
{
  shoal_pxe_service_register_type (module);
}
