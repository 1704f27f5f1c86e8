/* shoal-pxe-boot.h: what kind of client asks, and what it boots
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "shoal-pxe-dhcp-message.h"

G_BEGIN_DECLS

typedef enum {
  SHOAL_PXE_CLIENT_PLAIN,      /* no PXE: an OS's DHCP client, gets no boot file */
  SHOAL_PXE_CLIENT_PXE,        /* firmware PXE (vendor class PXEClient) */
  SHOAL_PXE_CLIENT_IPXE,       /* iPXE already runs: chain to the HTTP script */
  SHOAL_PXE_CLIENT_HTTP_BOOT,  /* UEFI HTTP Boot (vendor class HTTPClient) */
} ShoalPxeClientKind;

/* RFC 4578 option 93 values shoal serves */
#define SHOAL_PXE_ARCH_BIOS      0
#define SHOAL_PXE_ARCH_EFI_IA32  6
#define SHOAL_PXE_ARCH_EFI_BC    7
#define SHOAL_PXE_ARCH_EFI_X64   9
#define SHOAL_PXE_ARCH_EFI_X64_HTTP 16

typedef struct {
  gchar *bios_file;     /* TFTP name for BIOS PXE, "undionly.kpxe" */
  gchar *uefi_file;     /* TFTP name for UEFI x64 PXE, "ipxe.efi" */
  gchar *http_base;     /* "http://10.0.0.1:8080", no trailing slash */
} ShoalPxeBootConfig;

typedef struct {
  ShoalPxeClientKind kind;
  gint               arch;
  gchar             *filename;      /* TFTP name or URL, NULL: no boot file */
  const gchar       *vendor_class;  /* option 60 to send back */
} ShoalPxeBootChoice;

ShoalPxeClientKind shoal_pxe_boot_client_kind   (const ShoalPxeDhcpMessage *msg);
const gchar       *shoal_pxe_boot_kind_to_string (ShoalPxeClientKind        kind);
gboolean           shoal_pxe_boot_choose        (const ShoalPxeDhcpMessage *msg,
                                                 const ShoalPxeBootConfig  *config,
                                                 ShoalPxeBootChoice        *choice);
gchar             *shoal_pxe_uuid_normalize     (const gchar               *uuid);
gchar             *shoal_pxe_boot_script_url    (const ShoalPxeBootConfig  *config,
                                                 const gchar               *mac,
                                                 const gchar               *uuid);
void               shoal_pxe_boot_choice_clear  (ShoalPxeBootChoice        *choice);

G_END_DECLS
