/* shoal-pxe-dhcp-message.c: parse and build DHCP messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "shoal-error.h"
#include "shoal-pxe-dhcp-message.h"

static const guint8 magic_cookie[4] = { 99, 130, 83, 99 };

ShoalPxeDhcpMessage *
shoal_pxe_dhcp_message_new (void)
{
  return g_new0 (ShoalPxeDhcpMessage, 1);
}

void
shoal_pxe_dhcp_message_free (ShoalPxeDhcpMessage *msg)
{
  if (msg == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (msg->options); i++)
    g_clear_pointer (&msg->options[i], g_bytes_unref);
  g_free (msg);
}

static guint32
read_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static void
copy_string_field (gchar *dest, const guint8 *src, gsize len)
{
  /* the fields are NUL-padded but not always NUL-terminated */
  memcpy (dest, src, len);
  dest[len] = '\0';
}

static void
parse_header (ShoalPxeDhcpMessage *msg, const guint8 *d)
{
  msg->op = d[0];
  msg->htype = d[1];
  msg->hlen = d[2];
  msg->hops = d[3];
  msg->xid = read_be32 (d + 4);
  msg->secs = (guint16) ((d[8] << 8) | d[9]);
  msg->flags = (guint16) ((d[10] << 8) | d[11]);
  memcpy (&msg->ciaddr, d + 12, 4);
  memcpy (&msg->yiaddr, d + 16, 4);
  memcpy (&msg->siaddr, d + 20, 4);
  memcpy (&msg->giaddr, d + 24, 4);
  memcpy (msg->chaddr, d + 28, 16);
  copy_string_field (msg->sname, d + 44, 64);
  copy_string_field (msg->file, d + 108, 128);
}

/* Walks one options area (the options field, or file/sname when
 * overloaded), appending each value to acc[code]: repeated options are
 * concatenated as RFC 3396 says. */
static gboolean
parse_options_area (const guint8  *p,
                    gsize          len,
                    GByteArray   **acc,
                    gboolean       require_end,
                    const gchar   *where,
                    GError       **error)
{
  gsize i = 0;

  while (i < len)
    {
      guint8 code = p[i];
      guint8 olen;

      if (code == SHOAL_PXE_OPT_END)
        return TRUE;
      if (code == SHOAL_PXE_OPT_PAD)
        {
          i++;
          continue;
        }
      if (i + 1 >= len)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                       "DHCP option %u in the %s area has no length byte", code, where);
          return FALSE;
        }
      olen = p[i + 1];
      if (i + 2 + olen > len)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                       "DHCP option %u in the %s area is truncated: %u bytes announced, %" G_GSIZE_FORMAT " left",
                       code, where, olen, len - i - 2);
          return FALSE;
        }
      if (acc[code] == NULL)
        acc[code] = g_byte_array_new ();
      g_byte_array_append (acc[code], p + i + 2, olen);
      i += 2 + (gsize) olen;
    }
  if (require_end)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "DHCP %s area has no end option", where);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_header (const guint8 *data, gsize len, GError **error)
{
  if (len < SHOAL_PXE_DHCP_MIN_LEN)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "DHCP message truncated: %" G_GSIZE_FORMAT " bytes, at least %u needed",
                   len, SHOAL_PXE_DHCP_MIN_LEN);
      return FALSE;
    }
  if (data[0] != SHOAL_PXE_DHCP_BOOTREQUEST && data[0] != SHOAL_PXE_DHCP_BOOTREPLY)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "DHCP message has unknown op %u", data[0]);
      return FALSE;
    }
  if (data[2] > 16)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "DHCP hardware address length %u exceeds 16", data[2]);
      return FALSE;
    }
  if (memcmp (data + SHOAL_PXE_DHCP_HEADER_LEN, magic_cookie, 4) != 0)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                           "DHCP message lacks the magic cookie");
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_overloaded (const guint8 *data, GByteArray **acc, GError **error)
{
  guint8 overload;

  if (acc[SHOAL_PXE_OPT_OVERLOAD] == NULL)
    return TRUE;
  if (acc[SHOAL_PXE_OPT_OVERLOAD]->len != 1)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "DHCP option 52 (overload) has length %u, 1 expected",
                   acc[SHOAL_PXE_OPT_OVERLOAD]->len);
      return FALSE;
    }
  overload = acc[SHOAL_PXE_OPT_OVERLOAD]->data[0];
  if (overload < 1 || overload > 3)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "DHCP option 52 (overload) has value %u, 1-3 expected", overload);
      return FALSE;
    }
  /* RFC 3396 order: options, then file, then sname */
  if ((overload & 1) && !parse_options_area (data + 108, 128, acc, FALSE, "file", error))
    return FALSE;
  if ((overload & 2) && !parse_options_area (data + 44, 64, acc, FALSE, "sname", error))
    return FALSE;
  if (acc[SHOAL_PXE_OPT_OVERLOAD]->len != 1)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                           "DHCP option 52 (overload) repeated in an overloaded field");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_message_type (ShoalPxeDhcpMessage *msg, GError **error)
{
  GBytes *type = msg->options[SHOAL_PXE_OPT_MESSAGE_TYPE];

  if (type != NULL && g_bytes_get_size (type) != 1)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "DHCP option 53 (message type) has length %" G_GSIZE_FORMAT ", 1 expected",
                   g_bytes_get_size (type));
      return FALSE;
    }
  return TRUE;
}

static void
free_acc (GByteArray **acc)
{
  for (guint i = 0; i < 256; i++)
    if (acc[i] != NULL)
      g_byte_array_unref (acc[i]);
}

/**
 * shoal_pxe_dhcp_message_parse:
 *
 * Parses a DHCP (or BOOTP) message. Truncated headers, options that run
 * past their area, an options field without an end option and bad
 * overload or message type options are errors of %SHOAL_ERROR_INVALID_DATA.
 * Whether the message type is one a server handles is the caller's choice.
 */
ShoalPxeDhcpMessage *
shoal_pxe_dhcp_message_parse (const guint8  *data,
                              gsize          len,
                              GError       **error)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = NULL;
  GByteArray *acc[256] = { NULL, };
  gboolean ok;

  if (!check_header (data, len, error))
    return NULL;
  msg = shoal_pxe_dhcp_message_new ();
  parse_header (msg, data);
  ok = parse_options_area (data + SHOAL_PXE_DHCP_MIN_LEN, len - SHOAL_PXE_DHCP_MIN_LEN,
                           acc, TRUE, "options", error) &&
       parse_overloaded (data, acc, error);
  if (ok && acc[SHOAL_PXE_OPT_OVERLOAD] != NULL)
    {
      /* the fields held options, not names */
      guint8 overload = acc[SHOAL_PXE_OPT_OVERLOAD]->data[0];
      if (overload & 1)
        msg->file[0] = '\0';
      if (overload & 2)
        msg->sname[0] = '\0';
    }
  for (guint i = 0; i < 256; i++)
    if (acc[i] != NULL)
      msg->options[i] = g_bytes_new (acc[i]->data, acc[i]->len);
  free_acc (acc);
  if (!ok || !check_message_type (msg, error))
    return NULL;
  return g_steal_pointer (&msg);
}

/**
 * shoal_pxe_dhcp_message_new_reply:
 *
 * A BOOTREPLY to @request of @type: same transaction id, flags, relay
 * address and client hardware address.
 */
ShoalPxeDhcpMessage *
shoal_pxe_dhcp_message_new_reply (const ShoalPxeDhcpMessage *request,
                                  ShoalPxeDhcpType           type)
{
  ShoalPxeDhcpMessage *reply = shoal_pxe_dhcp_message_new ();

  reply->op = SHOAL_PXE_DHCP_BOOTREPLY;
  reply->htype = request->htype;
  reply->hlen = request->hlen;
  reply->xid = request->xid;
  reply->flags = request->flags;
  reply->giaddr = request->giaddr;
  memcpy (reply->chaddr, request->chaddr, sizeof reply->chaddr);
  shoal_pxe_dhcp_message_set_u8 (reply, SHOAL_PXE_OPT_MESSAGE_TYPE, type);
  return reply;
}

static void
write_be32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) (v >> 24);
  p[1] = (guint8) (v >> 16);
  p[2] = (guint8) (v >> 8);
  p[3] = (guint8) v;
}

static void
write_header (const ShoalPxeDhcpMessage *msg, guint8 *d)
{
  d[0] = msg->op;
  d[1] = msg->htype;
  d[2] = msg->hlen;
  d[3] = msg->hops;
  write_be32 (d + 4, msg->xid);
  d[8] = (guint8) (msg->secs >> 8);
  d[9] = (guint8) msg->secs;
  d[10] = (guint8) (msg->flags >> 8);
  d[11] = (guint8) msg->flags;
  memcpy (d + 12, &msg->ciaddr, 4);
  memcpy (d + 16, &msg->yiaddr, 4);
  memcpy (d + 20, &msg->siaddr, 4);
  memcpy (d + 24, &msg->giaddr, 4);
  memcpy (d + 28, msg->chaddr, 16);
  memcpy (d + 44, msg->sname, strnlen (msg->sname, 64));
  memcpy (d + 108, msg->file, strnlen (msg->file, 128));
  memcpy (d + SHOAL_PXE_DHCP_HEADER_LEN, magic_cookie, 4);
}

/* writes one option, split into 255-byte pieces (RFC 3396) */
static void
append_option (GByteArray *out, guint8 code, GBytes *value)
{
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (value, &len);

  if (len == 0)
    {
      guint8 head[2] = { code, 0 };
      g_byte_array_append (out, head, 2);
      return;
    }
  do
    {
      guint8 piece = (guint8) MIN (len, 255);
      guint8 head[2] = { code, piece };

      g_byte_array_append (out, head, 2);
      g_byte_array_append (out, p, piece);
      p += piece;
      len -= piece;
    }
  while (len > 0);
}

/**
 * shoal_pxe_dhcp_message_to_bytes:
 * @max_size: the largest message the client accepts (its option 57, or
 *   %SHOAL_PXE_DHCP_DEFAULT_MAX)
 *
 * Serializes @msg: the message type first, then the other options in
 * numeric order, the end option and padding to the BOOTP minimum of 300.
 */
GBytes *
shoal_pxe_dhcp_message_to_bytes (const ShoalPxeDhcpMessage  *msg,
                                 gsize                       max_size,
                                 GError                    **error)
{
  g_autoptr(GByteArray) out = g_byte_array_sized_new (SHOAL_PXE_DHCP_ABSOLUTE_MAX);
  guint8 end = SHOAL_PXE_OPT_END;

  g_byte_array_set_size (out, SHOAL_PXE_DHCP_MIN_LEN);
  memset (out->data, 0, out->len);
  write_header (msg, out->data);
  if (msg->options[SHOAL_PXE_OPT_MESSAGE_TYPE] != NULL)
    append_option (out, SHOAL_PXE_OPT_MESSAGE_TYPE, msg->options[SHOAL_PXE_OPT_MESSAGE_TYPE]);
  for (guint code = 1; code < SHOAL_PXE_OPT_END; code++)
    if (msg->options[code] != NULL && code != SHOAL_PXE_OPT_MESSAGE_TYPE)
      append_option (out, (guint8) code, msg->options[code]);
  g_byte_array_append (out, &end, 1);
  if (out->len < SHOAL_PXE_DHCP_MIN_REPLY)
    {
      guint old = out->len;
      g_byte_array_set_size (out, SHOAL_PXE_DHCP_MIN_REPLY);
      memset (out->data + old, 0, SHOAL_PXE_DHCP_MIN_REPLY - old);
    }
  if (out->len > max_size)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   "DHCP reply of %u bytes exceeds the client's maximum of %" G_GSIZE_FORMAT,
                   out->len, max_size);
      return NULL;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

const guint8 *
shoal_pxe_dhcp_message_get_option (const ShoalPxeDhcpMessage *msg,
                                   guint8                     code,
                                   gsize                     *len)
{
  gsize dummy;

  if (len == NULL)
    len = &dummy;
  *len = 0;
  if (msg->options[code] == NULL)
    return NULL;
  return g_bytes_get_data (msg->options[code], len);
}

void
shoal_pxe_dhcp_message_set_option (ShoalPxeDhcpMessage *msg,
                                   guint8               code,
                                   const void          *data,
                                   gsize                len)
{
  g_clear_pointer (&msg->options[code], g_bytes_unref);
  if (data != NULL)
    msg->options[code] = g_bytes_new (data, len);
}

void
shoal_pxe_dhcp_message_set_u8 (ShoalPxeDhcpMessage *msg, guint8 code, guint8 value)
{
  shoal_pxe_dhcp_message_set_option (msg, code, &value, 1);
}

/* @value in network order, as the addresses of the header */
void
shoal_pxe_dhcp_message_set_u32 (ShoalPxeDhcpMessage *msg, guint8 code, guint32 value)
{
  shoal_pxe_dhcp_message_set_option (msg, code, &value, 4);
}

void
shoal_pxe_dhcp_message_set_string (ShoalPxeDhcpMessage *msg, guint8 code, const gchar *value)
{
  shoal_pxe_dhcp_message_set_option (msg, code, value, value != NULL ? strlen (value) : 0);
}

ShoalPxeDhcpType
shoal_pxe_dhcp_message_get_type (const ShoalPxeDhcpMessage *msg)
{
  gsize len;
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_MESSAGE_TYPE, &len);

  if (p == NULL || len != 1)
    return SHOAL_PXE_DHCP_NONE;
  return (ShoalPxeDhcpType) p[0];
}

/* "aa:bb:cc:dd:ee:ff" for an Ethernet client, NULL for other hardware */
gchar *
shoal_pxe_dhcp_message_get_mac (const ShoalPxeDhcpMessage *msg)
{
  const guint8 *m = msg->chaddr;

  if (msg->htype != 1 || msg->hlen != 6)
    return NULL;
  return g_strdup_printf ("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* option 97 (RFC 4578): type 0 then 16 bytes, printed as SMBIOS does
 * (the first three fields little-endian) */
gchar *
shoal_pxe_dhcp_message_get_uuid (const ShoalPxeDhcpMessage *msg)
{
  gsize len;
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_CLIENT_UUID, &len);
  const guint8 *u;

  if (p == NULL || len != 17 || p[0] != 0)
    return NULL;
  u = p + 1;
  return g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                          u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6],
                          u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

gchar *
shoal_pxe_dhcp_message_get_vendor_class (const ShoalPxeDhcpMessage *msg)
{
  gsize len;
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_VENDOR_CLASS, &len);

  if (p == NULL)
    return NULL;
  return g_strndup ((const gchar *) p, len);
}

/* option 93: the first architecture listed, or -1 */
gint
shoal_pxe_dhcp_message_get_arch (const ShoalPxeDhcpMessage *msg)
{
  gsize len;
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_CLIENT_ARCH, &len);

  if (p == NULL || len < 2)
    return -1;
  return (p[0] << 8) | p[1];
}

gboolean
shoal_pxe_dhcp_message_get_u32 (const ShoalPxeDhcpMessage *msg,
                                guint8                     code,
                                guint32                   *value)
{
  gsize len;
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, code, &len);

  if (p == NULL || len != 4)
    return FALSE;
  memcpy (value, p, 4);
  return TRUE;
}

/* the client's option 57, bounded to what a reply may use */
gsize
shoal_pxe_dhcp_message_get_max_size (const ShoalPxeDhcpMessage *msg)
{
  gsize len;
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_MAX_SIZE, &len);
  gsize value;

  if (p == NULL || len != 2)
    return SHOAL_PXE_DHCP_DEFAULT_MAX;
  value = ((gsize) p[0] << 8) | p[1];
  return CLAMP (value, SHOAL_PXE_DHCP_DEFAULT_MAX, SHOAL_PXE_DHCP_ABSOLUTE_MAX);
}

/* option 77: iPXE sends its class as raw bytes; RFC 3004 clients send
 * length-prefixed items. Both forms match. */
gboolean
shoal_pxe_dhcp_message_has_user_class (const ShoalPxeDhcpMessage *msg,
                                       const gchar               *user_class)
{
  gsize len;
  gsize want = strlen (user_class);
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_USER_CLASS, &len);
  gsize i = 0;

  if (p == NULL)
    return FALSE;
  if (len == want && memcmp (p, user_class, want) == 0)
    return TRUE;
  while (i < len)
    {
      gsize item = p[i];
      if (item == 0 || i + 1 + item > len)
        return FALSE;
      if (item == want && memcmp (p + i + 1, user_class, want) == 0)
        return TRUE;
      i += 1 + item;
    }
  return FALSE;
}

gboolean
shoal_pxe_dhcp_message_is_ipxe (const ShoalPxeDhcpMessage *msg)
{
  return shoal_pxe_dhcp_message_has_user_class (msg, "iPXE") ||
         msg->options[SHOAL_PXE_OPT_IPXE] != NULL;
}

const gchar *
shoal_pxe_dhcp_type_to_string (ShoalPxeDhcpType type)
{
  static const gchar *names[] = {
    "BOOTP", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM",
  };

  if ((guint) type < G_N_ELEMENTS (names))
    return names[type];
  return "unknown";
}
