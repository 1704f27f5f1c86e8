/* shoal-pxe-dhcp-server.h: ProxyDHCP and authoritative DHCP for network boot
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-pxe-boot.h"
#include "shoal-pxe-dhcp-message.h"
#include "shoal-pxe-lease-pool.h"

G_BEGIN_DECLS

typedef enum {
  SHOAL_PXE_DHCP_MODE_PROXY,
  SHOAL_PXE_DHCP_MODE_AUTHORITATIVE,
} ShoalPxeDhcpMode;

#define SHOAL_PXE_TYPE_DHCP_SERVER (shoal_pxe_dhcp_server_get_type ())

G_DECLARE_FINAL_TYPE (ShoalPxeDhcpServer, shoal_pxe_dhcp_server, SHOAL_PXE, DHCP_SERVER, GObject)

/**
 * ShoalPxeDhcpPolicyFunc:
 * @request: the client's message
 * @choice: the boot file chosen from the client's kind and architecture;
 *   the function may change or clear it
 *
 * Asked for every request before any answer. Returns %FALSE to ignore the
 * client entirely (no address, no boot file).
 */
typedef gboolean (*ShoalPxeDhcpPolicyFunc) (ShoalPxeDhcpServer        *server,
                                            const ShoalPxeDhcpMessage *request,
                                            ShoalPxeBootChoice        *choice,
                                            gpointer                   user_data);

ShoalPxeDhcpServer *shoal_pxe_dhcp_server_new            (ShoalPxeDhcpMode      mode);
gboolean            shoal_pxe_dhcp_server_parse_mode     (const gchar          *str,
                                                          ShoalPxeDhcpMode     *mode);
void                shoal_pxe_dhcp_server_set_interface  (ShoalPxeDhcpServer   *self,
                                                          const gchar          *interface);
void                shoal_pxe_dhcp_server_set_address    (ShoalPxeDhcpServer   *self,
                                                          const gchar          *address);
void                shoal_pxe_dhcp_server_set_router     (ShoalPxeDhcpServer   *self,
                                                          const gchar          *router);
void                shoal_pxe_dhcp_server_set_dns        (ShoalPxeDhcpServer   *self,
                                                          const gchar          *dns);
void                shoal_pxe_dhcp_server_set_pool       (ShoalPxeDhcpServer   *self,
                                                          ShoalPxeLeasePool    *pool);
void                shoal_pxe_dhcp_server_set_boot_config (ShoalPxeDhcpServer  *self,
                                                          const ShoalPxeBootConfig *config);
void                shoal_pxe_dhcp_server_set_ports      (ShoalPxeDhcpServer   *self,
                                                          guint16               server_port,
                                                          guint16               proxy_port,
                                                          guint16               client_port);
void                shoal_pxe_dhcp_server_set_policy     (ShoalPxeDhcpServer   *self,
                                                          ShoalPxeDhcpPolicyFunc func,
                                                          gpointer              user_data,
                                                          GDestroyNotify        destroy);
gboolean            shoal_pxe_dhcp_server_start          (ShoalPxeDhcpServer   *self,
                                                          GError              **error);
void                shoal_pxe_dhcp_server_stop           (ShoalPxeDhcpServer   *self);
const gchar        *shoal_pxe_dhcp_server_get_address    (ShoalPxeDhcpServer   *self);
gchar              *shoal_pxe_dhcp_server_lookup_mac     (ShoalPxeDhcpServer   *self,
                                                          const gchar          *ip);
GBytes             *shoal_pxe_dhcp_server_handle         (ShoalPxeDhcpServer   *self,
                                                          const guint8         *data,
                                                          gsize                 len,
                                                          gboolean              proxy_port,
                                                          guint32               src_addr,
                                                          guint16               src_port,
                                                          guint32              *dest,
                                                          guint16              *dest_port,
                                                          GError              **error);

G_END_DECLS
