/* shoal-pxe-tftp-transfer.h: one TFTP read transfer on its own socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-pxe-tftp-packet.h"

G_BEGIN_DECLS

typedef struct _ShoalPxeTftpTransfer ShoalPxeTftpTransfer;

/* called once when the transfer ends; @error is %NULL on success. The
 * callback may free the transfer. */
typedef void (*ShoalPxeTftpTransferDone) (ShoalPxeTftpTransfer *transfer,
                                          const GError         *error,
                                          gpointer              user_data);

ShoalPxeTftpTransfer *shoal_pxe_tftp_transfer_new     (GSocket                   *socket,
                                                       GBytes                    *contents,
                                                       const ShoalPxeTftpOptions *options,
                                                       guint                      max_retries,
                                                       ShoalPxeTftpTransferDone   done,
                                                       gpointer                   user_data);
ShoalPxeTftpTransfer *shoal_pxe_tftp_transfer_new_for_fd (GSocket               *socket,
                                                          gint                   fd,
                                                          gsize                  size,
                                                          const ShoalPxeTftpOptions *options,
                                                          guint                  max_retries,
                                                          ShoalPxeTftpTransferDone done,
                                                          gpointer               user_data);
void                  shoal_pxe_tftp_transfer_set_first_ack_limit (ShoalPxeTftpTransfer *transfer,
                                                                   guint                 limit_ms);
void                  shoal_pxe_tftp_transfer_start   (ShoalPxeTftpTransfer      *transfer,
                                                       GMainContext              *context);
void                  shoal_pxe_tftp_transfer_free    (ShoalPxeTftpTransfer      *transfer);
guint64               shoal_pxe_tftp_transfer_get_acked_bytes (ShoalPxeTftpTransfer *transfer);
guint64               shoal_pxe_tftp_transfer_get_packets_sent (ShoalPxeTftpTransfer *transfer);

G_END_DECLS
