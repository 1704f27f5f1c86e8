/* pxe-dhcp-server-fuzzer.c: libFuzzer harness for the DHCP server's
 * request handling (both modes, both ports, leases kept across inputs)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>

#include "shoal-pxe-dhcp-server.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

static ShoalPxeDhcpServer *
make_server (ShoalPxeDhcpMode mode)
{
  static const ShoalPxeBootConfig boot = { (gchar *) "undionly.kpxe", (gchar *) "ipxe.efi",
                                           (gchar *) "http://10.9.0.1:8080" };
  ShoalPxeDhcpServer *server = shoal_pxe_dhcp_server_new (mode);

  shoal_pxe_dhcp_server_set_address (server, "10.9.0.1");
  shoal_pxe_dhcp_server_set_boot_config (server, &boot);
  if (mode == SHOAL_PXE_DHCP_MODE_AUTHORITATIVE)
    shoal_pxe_dhcp_server_set_pool (server, shoal_pxe_lease_pool_new (inet_addr ("10.9.0.100"),
                                                                      inet_addr ("10.9.0.104"), 600));
  return server;
}

static void
quiet (const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user_data)
{
}

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  static ShoalPxeDhcpServer *servers[2];
  guint32 dest = 0;
  guint16 port = 0;

  if (servers[0] == NULL)
    {
      g_log_set_default_handler (quiet, NULL);
      servers[0] = make_server (SHOAL_PXE_DHCP_MODE_PROXY);
      servers[1] = make_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE);
    }
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GBytes) reply = shoal_pxe_dhcp_server_handle (servers[i], data, size, size % 2 == 1,
                                                              inet_addr ("10.9.0.50"), 68,
                                                              &dest, &port, NULL);
      if (reply != NULL && g_bytes_get_size (reply) < 300)
        __builtin_trap ();
    }
  return 0;
}
