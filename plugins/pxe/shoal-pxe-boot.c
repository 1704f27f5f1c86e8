/* shoal-pxe-boot.c: what kind of client asks, and what it boots
 *
 * Firmware PXE gets an iPXE binary over TFTP (BIOS: undionly.kpxe, UEFI
 * x64: ipxe.efi). Once iPXE runs it asks again, with user class "iPXE"
 * (raw bytes) or option 175, and gets the URL of its HTTP script. A UEFI
 * HTTP Boot client gets ipxe.efi as a URL. Anything else (an installed
 * OS, an initramfs's udhcpc) gets no boot file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-pxe-boot.h"

ShoalPxeClientKind
shoal_pxe_boot_client_kind (const ShoalPxeDhcpMessage *msg)
{
  g_autofree gchar *vendor = shoal_pxe_dhcp_message_get_vendor_class (msg);

  if (vendor != NULL && g_str_has_prefix (vendor, "HTTPClient"))
    return SHOAL_PXE_CLIENT_HTTP_BOOT;
  if (shoal_pxe_dhcp_message_is_ipxe (msg))
    return SHOAL_PXE_CLIENT_IPXE;
  if (vendor != NULL && g_str_has_prefix (vendor, "PXEClient"))
    return SHOAL_PXE_CLIENT_PXE;
  return SHOAL_PXE_CLIENT_PLAIN;
}

const gchar *
shoal_pxe_boot_kind_to_string (ShoalPxeClientKind kind)
{
  switch (kind)
    {
    case SHOAL_PXE_CLIENT_PXE:
      return "pxe";
    case SHOAL_PXE_CLIENT_IPXE:
      return "ipxe";
    case SHOAL_PXE_CLIENT_HTTP_BOOT:
      return "http-boot";
    case SHOAL_PXE_CLIENT_PLAIN:
    default:
      return "plain";
    }
}

/**
 * shoal_pxe_uuid_normalize:
 * @uuid: (nullable): a UUID a client sent (the uuid parameter of
 *   /boot/ipxe, which iPXE fills in from SMBIOS)
 *
 * The form the controller checks (shoal_controller_uuid_is_valid()):
 * 8-4-4-4-12 hex digits with dashes, in either case. Anything else (an
 * unset ${uuid}, or bytes someone made up: control characters that would
 * reach the journal, shoalctl's terminal and the next boot script URL) is
 * treated as no UUID at all.
 *
 * Returns: (transfer full) (nullable): @uuid in lower case, or %NULL
 */
gchar *
shoal_pxe_uuid_normalize (const gchar *uuid)
{
  if (uuid == NULL || !g_uuid_string_is_valid (uuid))
    return NULL;
  return g_ascii_strdown (uuid, -1);
}

/* the iPXE script of one device; the MAC and UUID are filled in here
 * rather than left to iPXE's ${net0/mac} expansion */
gchar *
shoal_pxe_boot_script_url (const ShoalPxeBootConfig *config, const gchar *mac, const gchar *uuid)
{
  g_autofree gchar *escaped_mac = g_uri_escape_string (mac != NULL ? mac : "", ":", FALSE);

  if (uuid != NULL)
    return g_strdup_printf ("%s/boot/ipxe?mac=%s&uuid=%s", config->http_base, escaped_mac, uuid);
  return g_strdup_printf ("%s/boot/ipxe?mac=%s", config->http_base, escaped_mac);
}

static const gchar *
firmware_file (const ShoalPxeBootConfig *config, gint arch)
{
  switch (arch)
    {
    case SHOAL_PXE_ARCH_BIOS:
      return config->bios_file;
    case SHOAL_PXE_ARCH_EFI_BC:
    case SHOAL_PXE_ARCH_EFI_X64:
      return config->uefi_file;
    default:
      return NULL;   /* IA32, ARM...: nothing shipped for them */
    }
}

/**
 * shoal_pxe_boot_choose:
 *
 * Fills @choice for the client that sent @msg.
 *
 * Returns: %TRUE if the client gets a boot file
 */
gboolean
shoal_pxe_boot_choose (const ShoalPxeDhcpMessage *msg,
                       const ShoalPxeBootConfig  *config,
                       ShoalPxeBootChoice        *choice)
{
  g_autofree gchar *mac = shoal_pxe_dhcp_message_get_mac (msg);
  g_autofree gchar *uuid = shoal_pxe_dhcp_message_get_uuid (msg);
  const gchar *file;

  choice->kind = shoal_pxe_boot_client_kind (msg);
  choice->arch = shoal_pxe_dhcp_message_get_arch (msg);
  choice->filename = NULL;
  choice->vendor_class = NULL;
  switch (choice->kind)
    {
    case SHOAL_PXE_CLIENT_IPXE:
      choice->filename = shoal_pxe_boot_script_url (config, mac, uuid);
      choice->vendor_class = "PXEClient";
      break;
    case SHOAL_PXE_CLIENT_HTTP_BOOT:
      choice->filename = g_strdup_printf ("%s/boot/files/%s", config->http_base, config->uefi_file);
      choice->vendor_class = "HTTPClient";
      break;
    case SHOAL_PXE_CLIENT_PXE:
      file = firmware_file (config, choice->arch);
      choice->filename = g_strdup (file);
      choice->vendor_class = "PXEClient";
      break;
    case SHOAL_PXE_CLIENT_PLAIN:
    default:
      break;
    }
  return choice->filename != NULL;
}

void
shoal_pxe_boot_choice_clear (ShoalPxeBootChoice *choice)
{
  g_clear_pointer (&choice->filename, g_free);
}
