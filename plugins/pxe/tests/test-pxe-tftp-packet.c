/* test-pxe-tftp-packet.c: TFTP packet parser and option negotiation
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "shoal-error.h"
#include "shoal-pxe-tftp-packet.h"

static const ShoalPxeTftpLimits limits = { 65464, 64, 1000 };

static ShoalPxeTftpPacket *
parse_bytes (GBytes *bytes, GError **error)
{
  return shoal_pxe_tftp_packet_parse (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), error);
}

static void
test_rrq (void)
{
  const gchar *opts[] = { "BlkSize", "1432", "tsize", "0", "windowsize", "16", "timeout", "3", NULL };
  g_autoptr(GBytes) bytes = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "boot.ipxe", "OCTET", opts);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeTftpPacket) p = parse_bytes (bytes, &error);
  ShoalPxeTftpOptions o;
  g_autoptr(GBytes) oack = NULL;
  g_autoptr(ShoalPxeTftpPacket) back = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (p->opcode, ==, SHOAL_PXE_TFTP_RRQ);
  g_assert_cmpstr (p->filename, ==, "boot.ipxe");
  g_assert_cmpstr (p->mode, ==, "octet");
  g_assert_cmpstr (shoal_pxe_tftp_packet_get_option (p, "blksize"), ==, "1432");
  g_assert_true (shoal_pxe_tftp_options_negotiate (p, &limits, &o, &error));
  g_assert_true (o.any);
  g_assert_cmpuint (o.blksize, ==, 1432);
  g_assert_cmpuint (o.windowsize, ==, 16);
  g_assert_cmpuint (o.timeout_ms, ==, 3000);
  oack = shoal_pxe_tftp_build_oack (&o, 12345);
  back = parse_bytes (oack, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->opcode, ==, SHOAL_PXE_TFTP_OACK);
  g_assert_cmpstr (shoal_pxe_tftp_packet_get_option (back, "tsize"), ==, "12345");
  g_assert_cmpstr (shoal_pxe_tftp_packet_get_option (back, "windowsize"), ==, "16");
}

static void
expect_option_error (const gchar *name, const gchar *value)
{
  const gchar *opts[] = { name, value, NULL };
  g_autoptr(GBytes) bytes = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "f", "octet", opts);
  g_autoptr(ShoalPxeTftpPacket) p = parse_bytes (bytes, NULL);
  g_autoptr(GError) error = NULL;
  ShoalPxeTftpOptions o;

  g_assert_false (shoal_pxe_tftp_options_negotiate (p, &limits, &o, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, name));
}

static void
test_absurd_options (void)
{
  const gchar *big[] = { "blksize", "999999", "windowsize", "60000", "unknown", "x", NULL };
  g_autoptr(GBytes) bytes = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "f", "octet", big);
  g_autoptr(ShoalPxeTftpPacket) p = parse_bytes (bytes, NULL);
  ShoalPxeTftpOptions o;

  expect_option_error ("blksize", "0");
  expect_option_error ("blksize", "7");
  expect_option_error ("blksize", "-5");
  expect_option_error ("blksize", "12abc");
  expect_option_error ("windowsize", "0");
  expect_option_error ("windowsize", "65536");
  expect_option_error ("timeout", "0");
  expect_option_error ("timeout", "256");
  expect_option_error ("tsize", "lots");
  /* too large but legal: lowered to the server's limits */
  g_assert_true (shoal_pxe_tftp_options_negotiate (p, &limits, &o, NULL));
  g_assert_cmpuint (o.blksize, ==, 65464);
  g_assert_cmpuint (o.windowsize, ==, 64);
}

static void
expect_invalid (const guint8 *data, gsize len, gint code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeTftpPacket) p = shoal_pxe_tftp_packet_parse (data, len, &error);

  g_assert_null (p);
  g_assert_error (error, SHOAL_ERROR, code);
}

static void
test_malformed (void)
{
  expect_invalid ((const guint8 *) "", 0, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0", 1, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0\x01" "file", 6, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0\x01" "file\0", 7, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0\x01\0octet\0", 9, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0\x01" "f\0octet\0blksize\0", 18, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0\x01" "f\0octet\0a\0" "1\0a\0" "2\0", 17, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0\x04\0", 3, SHOAL_ERROR_INVALID_DATA);
  expect_invalid ((const guint8 *) "\0\x09\0\0", 4, SHOAL_ERROR_NOT_SUPPORTED);
  expect_invalid ((const guint8 *) "\xff\xff\0\0", 4, SHOAL_ERROR_NOT_SUPPORTED);
}

static void
test_ack_error (void)
{
  g_autoptr(GBytes) ack = shoal_pxe_tftp_build_ack (0xfffe);
  g_autoptr(GBytes) err = shoal_pxe_tftp_build_error (SHOAL_PXE_TFTP_ERR_OPTION, "no");
  g_autoptr(ShoalPxeTftpPacket) a = parse_bytes (ack, NULL);
  g_autoptr(ShoalPxeTftpPacket) e = parse_bytes (err, NULL);
  g_autoptr(ShoalPxeTftpPacket) unterminated = shoal_pxe_tftp_packet_parse ((const guint8 *) "\0\x05\0\x01" "abc", 7, NULL);

  g_assert_cmpuint (a->opcode, ==, SHOAL_PXE_TFTP_ACK);
  g_assert_cmpuint (a->block, ==, 0xfffe);
  g_assert_cmpuint (e->error_code, ==, 8);
  g_assert_cmpstr (e->error_message, ==, "no");
  g_assert_cmpstr (unterminated->error_message, ==, "abc");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/pxe/tftp-packet/rrq", test_rrq);
  g_test_add_func ("/shoal/pxe/tftp-packet/absurd-options", test_absurd_options);
  g_test_add_func ("/shoal/pxe/tftp-packet/malformed", test_malformed);
  g_test_add_func ("/shoal/pxe/tftp-packet/ack-error", test_ack_error);
  return g_test_run ();
}
