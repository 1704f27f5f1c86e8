/* shoal-pxe-tftp-packet.c: parse TFTP packets, negotiate options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "shoal-error.h"
#include "shoal-pxe-tftp-packet.h"

void
shoal_pxe_tftp_packet_free (ShoalPxeTftpPacket *packet)
{
  if (packet == NULL)
    return;
  g_free (packet->filename);
  g_free (packet->mode);
  g_clear_pointer (&packet->option_names, g_ptr_array_unref);
  g_clear_pointer (&packet->option_values, g_ptr_array_unref);
  g_free (packet->error_message);
  g_free (packet);
}

/* the NUL-terminated string at *pos, advancing *pos past it */
static gchar *
read_string (const guint8 *data, gsize len, gsize *pos, const gchar *what, GError **error)
{
  const guint8 *nul;

  if (*pos >= len)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "TFTP packet truncated before its %s", what);
      return NULL;
    }
  nul = memchr (data + *pos, '\0', len - *pos);
  if (nul == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "TFTP %s is not NUL-terminated", what);
      return NULL;
    }
  {
    gchar *s = g_strndup ((const gchar *) data + *pos, (gsize) (nul - (data + *pos)));
    *pos = (gsize) (nul - data) + 1;
    return s;
  }
}

static gboolean
parse_options (ShoalPxeTftpPacket *packet, const guint8 *data, gsize len, gsize pos, GError **error)
{
  packet->option_names = g_ptr_array_new_with_free_func (g_free);
  packet->option_values = g_ptr_array_new_with_free_func (g_free);
  while (pos < len)
    {
      g_autofree gchar *name = read_string (data, len, &pos, "option name", error);
      g_autofree gchar *value = NULL;
      g_autofree gchar *lower = NULL;

      if (name == NULL)
        return FALSE;
      value = read_string (data, len, &pos, "option value", error);
      if (value == NULL)
        return FALSE;
      lower = g_ascii_strdown (name, -1);
      if (shoal_pxe_tftp_packet_get_option (packet, lower) != NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                       "TFTP option %s given twice", lower);
          return FALSE;
        }
      g_ptr_array_add (packet->option_names, g_steal_pointer (&lower));
      g_ptr_array_add (packet->option_values, g_steal_pointer (&value));
    }
  return TRUE;
}

static gboolean
parse_request (ShoalPxeTftpPacket *packet, const guint8 *data, gsize len, GError **error)
{
  gsize pos = 2;
  g_autofree gchar *mode = NULL;

  packet->filename = read_string (data, len, &pos, "file name", error);
  if (packet->filename == NULL)
    return FALSE;
  if (packet->filename[0] == '\0')
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                           "TFTP request has an empty file name");
      return FALSE;
    }
  mode = read_string (data, len, &pos, "mode", error);
  if (mode == NULL)
    return FALSE;
  packet->mode = g_ascii_strdown (mode, -1);
  return parse_options (packet, data, len, pos, error);
}

static gboolean
parse_fixed (ShoalPxeTftpPacket *packet, const guint8 *data, gsize len, GError **error)
{
  if (len < 4)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "TFTP packet of opcode %u truncated: %" G_GSIZE_FORMAT " bytes",
                   packet->opcode, len);
      return FALSE;
    }
  packet->block = (guint16) ((data[2] << 8) | data[3]);
  if (packet->opcode == SHOAL_PXE_TFTP_ERROR)
    {
      gsize pos = 4;
      packet->error_code = packet->block;
      /* some clients omit the final NUL: accept the rest as the message */
      if (memchr (data + 4, '\0', len - 4) != NULL)
        packet->error_message = read_string (data, len, &pos, "error message", NULL);
      else
        packet->error_message = g_strndup ((const gchar *) data + 4, len - 4);
    }
  return TRUE;
}

/**
 * shoal_pxe_tftp_packet_parse:
 *
 * Parses any TFTP packet. Unknown opcodes, truncated packets, strings
 * without their NUL and options without a value are errors of
 * %SHOAL_ERROR_INVALID_DATA.
 */
ShoalPxeTftpPacket *
shoal_pxe_tftp_packet_parse (const guint8  *data,
                             gsize          len,
                             GError       **error)
{
  g_autoptr(ShoalPxeTftpPacket) packet = g_new0 (ShoalPxeTftpPacket, 1);
  gboolean ok = FALSE;

  if (len < 2)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "TFTP packet truncated: %" G_GSIZE_FORMAT " bytes", len);
      return NULL;
    }
  packet->opcode = (guint16) ((data[0] << 8) | data[1]);
  switch (packet->opcode)
    {
    case SHOAL_PXE_TFTP_RRQ:
    case SHOAL_PXE_TFTP_WRQ:
      ok = parse_request (packet, data, len, error);
      break;
    case SHOAL_PXE_TFTP_DATA:
    case SHOAL_PXE_TFTP_ACK:
    case SHOAL_PXE_TFTP_ERROR:
      ok = parse_fixed (packet, data, len, error);
      break;
    case SHOAL_PXE_TFTP_OACK:
      ok = parse_options (packet, data, len, 2, error);
      break;
    default:
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                   "TFTP opcode %u is unknown", packet->opcode);
    }
  if (!ok)
    return NULL;
  return g_steal_pointer (&packet);
}

const gchar *
shoal_pxe_tftp_packet_get_option (const ShoalPxeTftpPacket *packet,
                                  const gchar              *name)
{
  if (packet->option_names == NULL)
    return NULL;
  for (guint i = 0; i < packet->option_names->len; i++)
    if (g_strcmp0 (g_ptr_array_index (packet->option_names, i), name) == 0)
      return g_ptr_array_index (packet->option_values, i);
  return NULL;
}

/* a decimal option value within [min, max], or an error naming it */
static gboolean
option_number (const gchar *name, const gchar *value, guint64 min, guint64 max,
               guint64 *out, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (!g_ascii_string_to_unsigned (value, 10, min, max, out, &local))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "TFTP option %s=%s is outside %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT,
                   name, value, min, max);
      return FALSE;
    }
  return TRUE;
}

static gboolean
negotiate_one (const gchar *name, const gchar *value, const ShoalPxeTftpLimits *limits,
               ShoalPxeTftpOptions *o, GError **error)
{
  guint64 n = 0;

  if (g_str_equal (name, "blksize"))
    {
      if (!option_number (name, value, SHOAL_PXE_TFTP_MIN_BLKSIZE, G_MAXUINT32, &n, error))
        return FALSE;
      /* RFC 2348: the server may answer with a smaller size */
      o->blksize = (guint) MIN (n, MIN (limits->max_blksize, SHOAL_PXE_TFTP_MAX_BLKSIZE));
      o->has_blksize = TRUE;
    }
  else if (g_str_equal (name, "windowsize"))
    {
      if (!option_number (name, value, 1, 65535, &n, error))
        return FALSE;
      o->windowsize = (guint) MIN (n, limits->max_windowsize);
      o->has_windowsize = TRUE;
    }
  else if (g_str_equal (name, "timeout"))
    {
      if (!option_number (name, value, 1, 255, &n, error))
        return FALSE;
      o->timeout_s = (guint) n;
      o->timeout_ms = (guint) n * 1000;
      o->has_timeout = TRUE;
    }
  else if (g_str_equal (name, "tsize"))
    {
      if (!option_number (name, value, 0, G_MAXUINT64, &n, error))
        return FALSE;
      o->has_tsize = TRUE;
    }
  /* anything else is ignored, as RFC 2347 allows */
  return TRUE;
}

/**
 * shoal_pxe_tftp_options_negotiate:
 *
 * Agrees on the options of a read request. Values outside what the RFCs
 * allow are an error (the server answers with TFTP error 8); values
 * larger than the server's limits are lowered, as the RFCs allow.
 */
gboolean
shoal_pxe_tftp_options_negotiate (const ShoalPxeTftpPacket *request,
                                  const ShoalPxeTftpLimits *limits,
                                  ShoalPxeTftpOptions      *options,
                                  GError                  **error)
{
  memset (options, 0, sizeof *options);
  options->blksize = SHOAL_PXE_TFTP_DEFAULT_BLKSIZE;
  options->windowsize = 1;
  options->timeout_ms = limits->default_timeout_ms;
  if (request->option_names == NULL)
    return TRUE;
  for (guint i = 0; i < request->option_names->len; i++)
    {
      if (!negotiate_one (g_ptr_array_index (request->option_names, i),
                          g_ptr_array_index (request->option_values, i),
                          limits, options, error))
        return FALSE;
    }
  options->any = options->has_blksize || options->has_tsize ||
                 options->has_timeout || options->has_windowsize;
  return TRUE;
}

static void
append_pair (GByteArray *out, const gchar *name, const gchar *value)
{
  g_byte_array_append (out, (const guint8 *) name, (guint) strlen (name) + 1);
  g_byte_array_append (out, (const guint8 *) value, (guint) strlen (value) + 1);
}

GBytes *
shoal_pxe_tftp_build_oack (const ShoalPxeTftpOptions *o, guint64 tsize)
{
  GByteArray *out = g_byte_array_new ();
  guint8 op[2] = { 0, SHOAL_PXE_TFTP_OACK };
  gchar buf[32];

  g_byte_array_append (out, op, 2);
  if (o->has_blksize)
    append_pair (out, "blksize", (g_snprintf (buf, sizeof buf, "%u", o->blksize), buf));
  if (o->has_tsize)
    append_pair (out, "tsize", (g_snprintf (buf, sizeof buf, "%" G_GUINT64_FORMAT, tsize), buf));
  if (o->has_timeout)
    append_pair (out, "timeout", (g_snprintf (buf, sizeof buf, "%u", o->timeout_s), buf));
  if (o->has_windowsize)
    append_pair (out, "windowsize", (g_snprintf (buf, sizeof buf, "%u", o->windowsize), buf));
  return g_byte_array_free_to_bytes (out);
}

GBytes *
shoal_pxe_tftp_build_error (ShoalPxeTftpErrorCode code, const gchar *message)
{
  GByteArray *out = g_byte_array_new ();
  guint8 head[4] = { 0, SHOAL_PXE_TFTP_ERROR, (guint8) (code >> 8), (guint8) code };

  g_byte_array_append (out, head, 4);
  g_byte_array_append (out, (const guint8 *) message, (guint) strlen (message) + 1);
  return g_byte_array_free_to_bytes (out);
}

/* @options: name, value, name, value, ..., NULL */
GBytes *
shoal_pxe_tftp_build_request (ShoalPxeTftpOpcode   opcode,
                              const gchar         *filename,
                              const gchar         *mode,
                              const gchar * const *options)
{
  GByteArray *out = g_byte_array_new ();
  guint8 op[2] = { 0, (guint8) opcode };

  g_byte_array_append (out, op, 2);
  append_pair (out, filename, mode);
  for (guint i = 0; options != NULL && options[i] != NULL && options[i + 1] != NULL; i += 2)
    append_pair (out, options[i], options[i + 1]);
  return g_byte_array_free_to_bytes (out);
}

GBytes *
shoal_pxe_tftp_build_ack (guint16 block)
{
  guint8 ack[4] = { 0, SHOAL_PXE_TFTP_ACK, (guint8) (block >> 8), (guint8) block };

  return g_bytes_new (ack, 4);
}
