/* shoal-pxe-state.h: what the pxe service's parts share (private)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "shoal.h"

#include "shoal-pxe-dhcp-server.h"
#include "shoal-pxe-tftp-server.h"

G_BEGIN_DECLS

/*
 * Device metadata keys the pxe plugin writes:
 *   pxe.client   how the device last asked: "pxe", "ipxe", "http-boot", "plain"
 *   pxe.arch     its RFC 4578 architecture (option 93), decimal
 *   pxe.ip       the address it last used (DHCP lease or ProxyDHCP request)
 *   pxe.kernel   "fetched" once its agent loader kernel was served over HTTP
 *   pxe.initrd   "fetched" once its agent loader initrd was served over HTTP
 * Event posted on the device: "booted" (payload {"kernel": url, "initrd": url})
 * when both were served; the pxe-boot step waits for it.
 */

typedef struct {
  ShoalContext       *context;
  ShoalPxeDhcpServer *dhcp;
  ShoalPxeTftpServer *tftp;
  gchar              *http_base;     /* "http://10.0.0.1:8080" */
  gchar              *files_dir;     /* the boot files: kernels, initrds */
  gint                files_fd;
  gchar              *ipxe_dir;      /* Debian's ipxe binaries */
  gint                ipxe_fd;
  gchar              *template_dir;  /* data/ipxe */
  ShoalPxeBootConfig  boot;
} ShoalPxeState;

void     shoal_pxe_state_free          (ShoalPxeState *state);
gboolean shoal_pxe_routes_register     (ShoalPxeState *state,
                                        GError       **error);
void     shoal_pxe_routes_unregister   (ShoalPxeState *state);
gboolean shoal_pxe_policy_dhcp         (ShoalPxeDhcpServer        *server,
                                        const ShoalPxeDhcpMessage *request,
                                        ShoalPxeBootChoice        *choice,
                                        gpointer                   user_data);
void     shoal_pxe_policy_connect_tftp (ShoalPxeState *state);
void     shoal_pxe_policy_connect_dhcp (ShoalPxeState *state);
gchar   *shoal_pxe_policy_loader_path  (ShoalPxeState      *state,
                                        const gchar        *name);
GBytes  *shoal_pxe_policy_tftp_file    (ShoalPxeTftpServer *server,
                                        const gchar        *path,
                                        const gchar        *client,
                                        gpointer            user_data);
ShoalDevice *shoal_pxe_policy_device_for_ip (ShoalPxeState *state,
                                             const gchar   *ip);

G_END_DECLS
