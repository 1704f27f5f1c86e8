/* pxe-dhcp-fuzzer.c: libFuzzer harness for the DHCP message parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-pxe-dhcp-message.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_parse (data, size, NULL);
  g_autoptr(ShoalPxeDhcpMessage) reply = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autofree gchar *mac = NULL;
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *vendor = NULL;
  guint32 addr;

  if (msg == NULL)
    return 0;
  mac = shoal_pxe_dhcp_message_get_mac (msg);
  uuid = shoal_pxe_dhcp_message_get_uuid (msg);
  vendor = shoal_pxe_dhcp_message_get_vendor_class (msg);
  (void) shoal_pxe_dhcp_message_get_arch (msg);
  (void) shoal_pxe_dhcp_message_is_ipxe (msg);
  (void) shoal_pxe_dhcp_message_get_max_size (msg);
  (void) shoal_pxe_dhcp_message_get_u32 (msg, 50, &addr);
  (void) shoal_pxe_dhcp_type_to_string (shoal_pxe_dhcp_message_get_type (msg));
  /* whatever parsed must serialize and parse again */
  out = shoal_pxe_dhcp_message_to_bytes (msg, 65536, NULL);
  if (out != NULL)
    {
      g_autoptr(ShoalPxeDhcpMessage) again =
        shoal_pxe_dhcp_message_parse (g_bytes_get_data (out, NULL), g_bytes_get_size (out), NULL);
      if (again == NULL)
        __builtin_trap ();
    }
  reply = shoal_pxe_dhcp_message_new_reply (msg, SHOAL_PXE_DHCP_OFFER);
  return 0;
}
