/* shoal-pxe-tftp-packet.h: TFTP packets (RFC 1350) and option
 * negotiation (RFC 2347 blksize 2348, tsize/timeout 2349, windowsize 7440)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  SHOAL_PXE_TFTP_RRQ = 1,
  SHOAL_PXE_TFTP_WRQ = 2,
  SHOAL_PXE_TFTP_DATA = 3,
  SHOAL_PXE_TFTP_ACK = 4,
  SHOAL_PXE_TFTP_ERROR = 5,
  SHOAL_PXE_TFTP_OACK = 6,
} ShoalPxeTftpOpcode;

typedef enum {
  SHOAL_PXE_TFTP_ERR_UNDEFINED = 0,
  SHOAL_PXE_TFTP_ERR_NOT_FOUND = 1,
  SHOAL_PXE_TFTP_ERR_ACCESS = 2,
  SHOAL_PXE_TFTP_ERR_DISK_FULL = 3,
  SHOAL_PXE_TFTP_ERR_ILLEGAL_OP = 4,
  SHOAL_PXE_TFTP_ERR_UNKNOWN_TID = 5,
  SHOAL_PXE_TFTP_ERR_EXISTS = 6,
  SHOAL_PXE_TFTP_ERR_NO_USER = 7,
  SHOAL_PXE_TFTP_ERR_OPTION = 8,
} ShoalPxeTftpErrorCode;

#define SHOAL_PXE_TFTP_MIN_BLKSIZE 8
#define SHOAL_PXE_TFTP_MAX_BLKSIZE 65464
#define SHOAL_PXE_TFTP_DEFAULT_BLKSIZE 512

typedef struct {
  guint16    opcode;
  gchar     *filename;       /* RRQ/WRQ */
  gchar     *mode;           /* RRQ/WRQ, lower case */
  GPtrArray *option_names;   /* RRQ/WRQ, lower case */
  GPtrArray *option_values;
  guint16    block;          /* DATA/ACK */
  guint16    error_code;     /* ERROR */
  gchar     *error_message;  /* ERROR */
} ShoalPxeTftpPacket;

/* what the server allows */
typedef struct {
  guint max_blksize;
  guint max_windowsize;
  guint default_timeout_ms;
} ShoalPxeTftpLimits;

/* what was agreed for one transfer */
typedef struct {
  gboolean any;            /* an OACK is due */
  gboolean has_blksize;
  gboolean has_tsize;
  gboolean has_timeout;
  gboolean has_windowsize;
  guint    blksize;
  guint    windowsize;
  guint    timeout_ms;
  guint    timeout_s;      /* as requested, echoed in the OACK */
} ShoalPxeTftpOptions;

ShoalPxeTftpPacket *shoal_pxe_tftp_packet_parse (const guint8  *data,
                                                 gsize          len,
                                                 GError       **error);
void                shoal_pxe_tftp_packet_free  (ShoalPxeTftpPacket *packet);
const gchar        *shoal_pxe_tftp_packet_get_option (const ShoalPxeTftpPacket *packet,
                                                      const gchar              *name);

gboolean shoal_pxe_tftp_options_negotiate (const ShoalPxeTftpPacket *request,
                                           const ShoalPxeTftpLimits *limits,
                                           ShoalPxeTftpOptions      *options,
                                           GError                  **error);
GBytes  *shoal_pxe_tftp_build_oack        (const ShoalPxeTftpOptions *options,
                                           guint64                    tsize);
GBytes  *shoal_pxe_tftp_build_error       (ShoalPxeTftpErrorCode      code,
                                           const gchar               *message);
GBytes  *shoal_pxe_tftp_build_request     (ShoalPxeTftpOpcode         opcode,
                                           const gchar               *filename,
                                           const gchar               *mode,
                                           const gchar * const       *options);
GBytes  *shoal_pxe_tftp_build_ack         (guint16                    block);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalPxeTftpPacket, shoal_pxe_tftp_packet_free)

G_END_DECLS
