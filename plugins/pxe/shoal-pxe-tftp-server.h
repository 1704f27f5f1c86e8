/* shoal-pxe-tftp-server.h: read-only TFTP server on the main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define SHOAL_PXE_TYPE_TFTP_SERVER (shoal_pxe_tftp_server_get_type ())

G_DECLARE_FINAL_TYPE (ShoalPxeTftpServer, shoal_pxe_tftp_server, SHOAL_PXE, TFTP_SERVER, GObject)

/**
 * ShoalPxeTftpVirtualFunc:
 * @path: the requested name, already checked for traversal
 * @client: the client's IPv4 address, as text
 *
 * Serves generated content. Returns the file's contents, or %NULL when
 * @path is not a virtual file (the server then looks on disk).
 */
typedef GBytes *(*ShoalPxeTftpVirtualFunc) (ShoalPxeTftpServer *server,
                                            const gchar        *path,
                                            const gchar        *client,
                                            gpointer            user_data);

ShoalPxeTftpServer *shoal_pxe_tftp_server_new          (const gchar        *root);
void                shoal_pxe_tftp_server_set_interface (ShoalPxeTftpServer *self,
                                                         const gchar        *interface);
void                shoal_pxe_tftp_server_set_limits   (ShoalPxeTftpServer *self,
                                                        guint               max_blksize,
                                                        guint               max_windowsize,
                                                        guint               timeout_ms,
                                                        guint               max_retries);
void                shoal_pxe_tftp_server_set_max_per_client (ShoalPxeTftpServer *self,
                                                              guint               max_per_client);
void                shoal_pxe_tftp_server_set_first_ack_limit (ShoalPxeTftpServer *self,
                                                               guint               limit_ms);
void                shoal_pxe_tftp_server_set_workers  (ShoalPxeTftpServer *self,
                                                        gint                n_workers);
void                shoal_pxe_tftp_server_set_virtual_func (ShoalPxeTftpServer     *self,
                                                            ShoalPxeTftpVirtualFunc func,
                                                            gpointer                user_data,
                                                            GDestroyNotify          destroy);
gboolean            shoal_pxe_tftp_server_start        (ShoalPxeTftpServer *self,
                                                        const gchar        *address,
                                                        guint16             port,
                                                        GError            **error);
void                shoal_pxe_tftp_server_stop         (ShoalPxeTftpServer *self);
guint               shoal_pxe_tftp_server_get_n_transfers (ShoalPxeTftpServer *self);

G_END_DECLS
