/* pxe-tftp-fuzzer.c: libFuzzer harness for the TFTP packet parser and
 * option negotiation
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-pxe-tftp-packet.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  static const ShoalPxeTftpLimits limits = { 65464, 64, 1000 };
  g_autoptr(ShoalPxeTftpPacket) packet = shoal_pxe_tftp_packet_parse (data, size, NULL);
  ShoalPxeTftpOptions options;

  if (packet == NULL)
    return 0;
  if (packet->opcode == SHOAL_PXE_TFTP_RRQ &&
      shoal_pxe_tftp_options_negotiate (packet, &limits, &options, NULL))
    {
      g_autoptr(GBytes) oack = shoal_pxe_tftp_build_oack (&options, size);
      if (g_bytes_get_size (oack) < 2)
        __builtin_trap ();
      if (options.blksize < 8 || options.blksize > 65464 || options.windowsize < 1 || options.windowsize > 64)
        __builtin_trap ();
    }
  return 0;
}
