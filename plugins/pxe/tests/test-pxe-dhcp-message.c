/* test-pxe-dhcp-message.c: DHCP message parser and builder
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "shoal-error.h"
#include "shoal-pxe-dhcp-message.h"

/* a DISCOVER as the iPXE ROM in QEMU sends it (see pxe-clients.md) */
static GBytes *
make_ipxe_discover (void)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_new ();
  const guint8 mac[6] = { 0x52, 0x54, 0x00, 0x78, 0x00, 0x01 };
  const guint8 arch[2] = { 0, 0 };
  const guint8 ndi[3] = { 1, 2, 1 };
  const guint8 max[2] = { 0x05, 0xc0 };
  const guint8 encap[] = { 177, 5, 1, 0x80, 0x86, 0x10, 0x0e, 19, 1, 1 };
  guint8 uuid[17] = { 0, 0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56,
                      1, 2, 3, 4, 5, 6, 7, 8 };

  msg->op = SHOAL_PXE_DHCP_BOOTREQUEST;
  msg->htype = 1;
  msg->hlen = 6;
  msg->xid = 0xdeadbeef;
  msg->flags = 0x8000;
  memcpy (msg->chaddr, mac, 6);
  shoal_pxe_dhcp_message_set_u8 (msg, SHOAL_PXE_OPT_MESSAGE_TYPE, SHOAL_PXE_DHCP_DISCOVER);
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_MAX_SIZE, max, 2);
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_CLIENT_ARCH, arch, 2);
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_CLIENT_NDI, ndi, 3);
  shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_VENDOR_CLASS, "PXEClient:Arch:00000:UNDI:002001");
  shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_USER_CLASS, "iPXE");
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_IPXE, encap, sizeof encap);
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_CLIENT_UUID, uuid, sizeof uuid);
  return shoal_pxe_dhcp_message_to_bytes (msg, SHOAL_PXE_DHCP_ABSOLUTE_MAX, NULL);
}

static void
test_ipxe_discover (void)
{
  g_autoptr(GBytes) bytes = make_ipxe_discover ();
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeDhcpMessage) msg = NULL;
  g_autofree gchar *mac = NULL;
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *vendor = NULL;
  gsize len;

  msg = shoal_pxe_dhcp_message_parse (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (msg), ==, SHOAL_PXE_DHCP_DISCOVER);
  g_assert_cmpuint (msg->xid, ==, 0xdeadbeef);
  g_assert_cmpuint (msg->flags, ==, 0x8000);
  mac = shoal_pxe_dhcp_message_get_mac (msg);
  g_assert_cmpstr (mac, ==, "52:54:00:78:00:01");
  uuid = shoal_pxe_dhcp_message_get_uuid (msg);
  g_assert_cmpstr (uuid, ==, "12345678-1234-5678-0102-030405060708");
  vendor = shoal_pxe_dhcp_message_get_vendor_class (msg);
  g_assert_true (g_str_has_prefix (vendor, "PXEClient"));
  g_assert_cmpint (shoal_pxe_dhcp_message_get_arch (msg), ==, 0);
  g_assert_cmpuint (shoal_pxe_dhcp_message_get_max_size (msg), ==, 1472);
  g_assert_true (shoal_pxe_dhcp_message_is_ipxe (msg));
  g_assert_true (shoal_pxe_dhcp_message_has_user_class (msg, "iPXE"));
  g_assert_nonnull (shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_CLIENT_NDI, &len));
  g_assert_cmpuint (len, ==, 3);
}

static void
test_truncated (void)
{
  g_autoptr(GBytes) bytes = make_ipxe_discover ();
  gsize full = 0;
  const guint8 *data = g_bytes_get_data (bytes, &full);
  guint errors = 0;

  /* every prefix that cuts the header or the options must be refused */
  for (gsize len = 0; len < full; len++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_parse (data, len, &error);

      if (msg == NULL)
        {
          g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
          errors++;
        }
    }
  /* the prefixes that still hold the end option (padding cut) are fine */
  g_assert_cmpuint (errors, >, 240);
  {
    g_autoptr(GError) error = NULL;
    g_assert_null (shoal_pxe_dhcp_message_parse (data, 100, &error));
    g_assert_nonnull (strstr (error->message, "truncated"));
  }
}

static guint8 *
make_raw (const guint8 *options, gsize olen, gsize *len)
{
  guint8 *raw = g_malloc0 (240 + olen);
  const guint8 cookie[4] = { 99, 130, 83, 99 };

  raw[0] = 1;
  raw[1] = 1;
  raw[2] = 6;
  memcpy (raw + 236, cookie, 4);
  memcpy (raw + 240, options, olen);
  *len = 240 + olen;
  return raw;
}

static void
expect_invalid (const guint8 *options, gsize olen, const gchar *fragment)
{
  gsize len;
  g_autofree guint8 *raw = make_raw (options, olen, &len);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_parse (raw, len, &error);

  g_assert_null (msg);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, fragment));
}

static void
test_malformed (void)
{
  const guint8 overflow[] = { 53, 1, 1, 60, 200, 'P', 'X', 'E', 255 };
  const guint8 no_length[] = { 53, 1, 1, 60 };
  const guint8 no_end[] = { 53, 1, 1, 12, 2, 'a', 'b' };
  const guint8 bad_type[] = { 53, 2, 1, 1, 255 };
  const guint8 bad_overload[] = { 53, 1, 1, 52, 1, 9, 255 };
  gsize len;
  g_autofree guint8 *raw = make_raw ((const guint8[]) { 53, 1, 1, 255 }, 4, &len);
  g_autoptr(GError) error = NULL;

  expect_invalid (overflow, sizeof overflow, "truncated");
  expect_invalid (no_length, sizeof no_length, "no length");
  expect_invalid (no_end, sizeof no_end, "no end option");
  expect_invalid (bad_type, sizeof bad_type, "message type");
  expect_invalid (bad_overload, sizeof bad_overload, "overload");

  raw[236] = 0;
  g_assert_null (shoal_pxe_dhcp_message_parse (raw, len, &error));
  g_assert_nonnull (strstr (error->message, "cookie"));
  g_clear_error (&error);
  raw[236] = 99;
  raw[0] = 7;
  g_assert_null (shoal_pxe_dhcp_message_parse (raw, len, &error));
  g_assert_nonnull (strstr (error->message, "op"));
  g_clear_error (&error);
  raw[0] = 1;
  raw[2] = 17;
  g_assert_null (shoal_pxe_dhcp_message_parse (raw, len, &error));
  g_assert_nonnull (strstr (error->message, "hardware address"));
}

static void
test_unknown_type (void)
{
  gsize len;
  g_autofree guint8 *raw = make_raw ((const guint8[]) { 53, 1, 42, 255 }, 4, &len);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_parse (raw, len, &error);

  /* parsing succeeds; the server decides to ignore type 42 */
  g_assert_no_error (error);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (msg), ==, 42);
  g_assert_cmpstr (shoal_pxe_dhcp_type_to_string (42), ==, "unknown");
}

static void
test_overload (void)
{
  const guint8 options[] = { 53, 1, 3, 52, 1, 3, 255 };
  gsize len;
  g_autofree guint8 *raw = make_raw (options, sizeof options, &len);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeDhcpMessage) msg = NULL;
  g_autofree gchar *vendor = NULL;
  const guint8 *host;
  gsize hlen;

  /* file (108..235) holds 60 "PXE", 12 "ab"; sname (44..107) holds 60 "Client" */
  memcpy (raw + 108, (const guint8[]) { 60, 3, 'P', 'X', 'E', 12, 2, 'a', 'b', 255 }, 10);
  memcpy (raw + 44, (const guint8[]) { 60, 6, 'C', 'l', 'i', 'e', 'n', 't', 255 }, 9);
  msg = shoal_pxe_dhcp_message_parse (raw, len, &error);
  g_assert_no_error (error);
  vendor = shoal_pxe_dhcp_message_get_vendor_class (msg);
  g_assert_cmpstr (vendor, ==, "PXEClient");
  host = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_HOSTNAME, &hlen);
  g_assert_cmpmem (host, hlen, "ab", 2);
  g_assert_cmpstr (msg->file, ==, "");
  g_assert_cmpstr (msg->sname, ==, "");

  /* an option overflowing the file field is refused */
  raw[109] = 127;
  g_clear_pointer (&msg, shoal_pxe_dhcp_message_free);
  msg = shoal_pxe_dhcp_message_parse (raw, len, &error);
  g_assert_null (msg);
  g_assert_nonnull (strstr (error->message, "file area"));
}

static void
test_long_option (void)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_new ();
  g_autoptr(ShoalPxeDhcpMessage) back = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  guint8 big[600];
  gsize len;
  const guint8 *p;

  for (guint i = 0; i < sizeof big; i++)
    big[i] = (guint8) i;
  msg->op = 1;
  msg->htype = 1;
  msg->hlen = 6;
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_VENDOR, big, sizeof big);
  bytes = shoal_pxe_dhcp_message_to_bytes (msg, SHOAL_PXE_DHCP_ABSOLUTE_MAX, &error);
  g_assert_no_error (error);
  back = shoal_pxe_dhcp_message_parse (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  p = shoal_pxe_dhcp_message_get_option (back, SHOAL_PXE_OPT_VENDOR, &len);
  g_assert_cmpmem (p, len, big, sizeof big);

  /* the same message does not fit a client that takes 576 bytes */
  g_clear_pointer (&bytes, g_bytes_unref);
  bytes = shoal_pxe_dhcp_message_to_bytes (msg, SHOAL_PXE_DHCP_DEFAULT_MAX, &error);
  g_assert_null (bytes);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
}

static void
test_reply (void)
{
  g_autoptr(GBytes) bytes = make_ipxe_discover ();
  g_autoptr(ShoalPxeDhcpMessage) req = shoal_pxe_dhcp_message_parse (g_bytes_get_data (bytes, NULL),
                                                                     g_bytes_get_size (bytes), NULL);
  g_autoptr(ShoalPxeDhcpMessage) reply = shoal_pxe_dhcp_message_new_reply (req, SHOAL_PXE_DHCP_OFFER);
  g_autoptr(GBytes) out = NULL;
  g_autoptr(ShoalPxeDhcpMessage) back = NULL;
  const guint8 *data;

  g_strlcpy (reply->file, "undionly.kpxe", sizeof reply->file);
  shoal_pxe_dhcp_message_set_string (reply, SHOAL_PXE_OPT_BOOTFILE, "undionly.kpxe");
  out = shoal_pxe_dhcp_message_to_bytes (reply, 576, NULL);
  g_assert_cmpuint (g_bytes_get_size (out), ==, SHOAL_PXE_DHCP_MIN_REPLY);
  data = g_bytes_get_data (out, NULL);
  g_assert_cmpuint (data[0], ==, 2);
  g_assert_cmpuint (data[240], ==, 53);   /* message type comes first */
  back = shoal_pxe_dhcp_message_parse (data, g_bytes_get_size (out), NULL);
  g_assert_cmpuint (back->xid, ==, req->xid);
  g_assert_cmpstr (back->file, ==, "undionly.kpxe");
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (back), ==, SHOAL_PXE_DHCP_OFFER);
}

static void
test_user_class (void)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_new ();
  const guint8 rfc3004[] = { 3, 'f', 'o', 'o', 4, 'i', 'P', 'X', 'E' };
  const guint8 bogus[] = { 9, 'i', 'P' };

  g_assert_false (shoal_pxe_dhcp_message_is_ipxe (msg));
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_USER_CLASS, rfc3004, sizeof rfc3004);
  g_assert_true (shoal_pxe_dhcp_message_has_user_class (msg, "iPXE"));
  g_assert_true (shoal_pxe_dhcp_message_has_user_class (msg, "foo"));
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_USER_CLASS, bogus, sizeof bogus);
  g_assert_false (shoal_pxe_dhcp_message_has_user_class (msg, "iPXE"));
  g_assert_cmpint (shoal_pxe_dhcp_message_get_arch (msg), ==, -1);
  g_assert_null (shoal_pxe_dhcp_message_get_uuid (msg));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/pxe/dhcp-message/ipxe-discover", test_ipxe_discover);
  g_test_add_func ("/shoal/pxe/dhcp-message/truncated", test_truncated);
  g_test_add_func ("/shoal/pxe/dhcp-message/malformed", test_malformed);
  g_test_add_func ("/shoal/pxe/dhcp-message/unknown-type", test_unknown_type);
  g_test_add_func ("/shoal/pxe/dhcp-message/overload", test_overload);
  g_test_add_func ("/shoal/pxe/dhcp-message/long-option", test_long_option);
  g_test_add_func ("/shoal/pxe/dhcp-message/reply", test_reply);
  g_test_add_func ("/shoal/pxe/dhcp-message/user-class", test_user_class);
  return g_test_run ();
}
