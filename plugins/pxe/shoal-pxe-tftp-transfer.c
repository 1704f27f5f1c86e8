/* shoal-pxe-tftp-transfer.c: one TFTP read transfer on its own socket
 *
 * The transfer owns a UDP socket connected to the client (its TID) and
 * one GUnixFDSource on the main context, whose ready time doubles as the
 * retransmission timer: no thread and no extra timer per transfer.
 *
 * Windows follow RFC 7440: after the ACK of block n the server sends
 * blocks n+1..n+windowsize. A duplicate ACK never causes a resend when
 * the window is one block (no Sorcerer's Apprentice); with larger
 * windows it triggers at most one early resend per window, as RFC 7440
 * clients ACK the last good block on a gap.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include <glib-unix.h>

#include "shoal-error.h"
#include "shoal-pxe-tftp-transfer.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define MAX_BATCH 64
#define MAX_GSO_SEGMENTS 64
#define MAX_GSO_BYTES 65000

struct _ShoalPxeTftpTransfer
{
  GSocket                 *socket;
  GSource                 *source;
  GBytes                  *contents;
  const guint8            *data;
  gsize                    size;
  ShoalPxeTftpOptions      options;
  guint64                  n_blocks;     /* the last one is shorter than blksize */
  guint64                  acked;        /* highest block acknowledged */
  guint64                  sent_upto;    /* highest block sent */
  gboolean                 oack_pending;
  gboolean                 dup_resent;
  gboolean                 no_gso;
  gboolean                 gone;         /* a send or recv saw ECONNREFUSED */
  guint8                  *gso_buf;
  guint                    retries;
  guint                    max_retries;
  guint64                  packets_sent;
  ShoalPxeTftpTransferDone done;
  gpointer                 user_data;
};

ShoalPxeTftpTransfer *
shoal_pxe_tftp_transfer_new (GSocket                   *socket,
                             GBytes                    *contents,
                             const ShoalPxeTftpOptions *options,
                             guint                      max_retries,
                             ShoalPxeTftpTransferDone   done,
                             gpointer                   user_data)
{
  ShoalPxeTftpTransfer *t = g_new0 (ShoalPxeTftpTransfer, 1);

  t->socket = g_object_ref (socket);
  t->contents = g_bytes_ref (contents);
  t->data = g_bytes_get_data (contents, &t->size);
  t->options = *options;
  t->n_blocks = t->size / options->blksize + 1;
  t->oack_pending = options->any;
  t->max_retries = max_retries;
  t->done = done;
  t->user_data = user_data;
  return t;
}

void
shoal_pxe_tftp_transfer_free (ShoalPxeTftpTransfer *t)
{
  if (t == NULL)
    return;
  if (t->source != NULL)
    {
      g_source_destroy (t->source);
      g_source_unref (t->source);
    }
  g_object_unref (t->socket);
  g_bytes_unref (t->contents);
  g_free (t->gso_buf);
  g_free (t);
}

guint64
shoal_pxe_tftp_transfer_get_acked_bytes (ShoalPxeTftpTransfer *t)
{
  return MIN (t->acked * t->options.blksize, t->size);
}

guint64
shoal_pxe_tftp_transfer_get_packets_sent (ShoalPxeTftpTransfer *t)
{
  return t->packets_sent;
}

static void
arm_timer (ShoalPxeTftpTransfer *t)
{
  g_source_set_ready_time (t->source, g_get_monotonic_time () +
                           (gint64) t->options.timeout_ms * 1000);
}

/* an ICMP port unreachable for an earlier datagram comes back as
 * ECONNREFUSED on the next send or recv of the connected socket: the
 * client's port is closed, nobody will ACK */
static void
note_send_error (ShoalPxeTftpTransfer *t, gint saved)
{
  if (saved == ECONNREFUSED)
    t->gone = TRUE;
  else
    g_debug ("TFTP send failed: %s", g_strerror (saved));
}

static void
send_raw (ShoalPxeTftpTransfer *t, GBytes *packet)
{
  /* a lost send is repaired by the retransmission timer */
  if (send (g_socket_get_fd (t->socket), g_bytes_get_data (packet, NULL),
            g_bytes_get_size (packet), MSG_DONTWAIT) < 0)
    note_send_error (t, errno);
  t->packets_sent++;
}

static void
wait_writable (ShoalPxeTftpTransfer *t)
{
  struct pollfd pfd = { g_socket_get_fd (t->socket), POLLOUT, 0 };

  (void) poll (&pfd, 1, 10);
}

/* blocks first..last, batched with sendmmsg, header and payload in two
 * iovecs so the payload is never copied */
static void
send_blocks (ShoalPxeTftpTransfer *t, guint64 first, guint64 last)
{
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH][2];
  guint8 heads[MAX_BATCH][4];
  guint64 b = first;

  while (b <= last)
    {
      guint n = 0;
      gint sent = 0;

      memset (msgs, 0, sizeof msgs);
      for (; b <= last && n < MAX_BATCH; b++, n++)
        {
          gsize offset = (gsize) ((b - 1) * t->options.blksize);
          gsize len = MIN (t->options.blksize, t->size - offset);

          heads[n][0] = 0;
          heads[n][1] = SHOAL_PXE_TFTP_DATA;
          heads[n][2] = (guint8) (b >> 8);
          heads[n][3] = (guint8) b;
          iov[n][0] = (struct iovec) { heads[n], 4 };
          iov[n][1] = (struct iovec) { (gpointer) (t->data + offset), len };
          msgs[n].msg_hdr.msg_iov = iov[n];
          msgs[n].msg_hdr.msg_iovlen = 2;
        }
      /* a full socket buffer waits (briefly) rather than drops */
      for (guint tries = 0; sent < (gint) n && tries < 100; tries++)
        {
          gint r = sendmmsg (g_socket_get_fd (t->socket), msgs + sent, n - (guint) sent, 0);
          if (r < 0 && errno == EAGAIN)
            wait_writable (t);
          else if (r < 0 && errno != EINTR)
            {
              note_send_error (t, errno);
              break;
            }
          else if (r > 0)
            sent += r;
        }
      t->packets_sent += n;
    }
  t->sent_upto = MAX (t->sent_upto, last);
}

/* blocks first..last in one UDP GSO send (UDP_SEGMENT): the kernel cuts
 * the buffer into one datagram per block, so a window costs one pass
 * through the stack. Returns the number of blocks sent, 0 if GSO failed. */
static guint64
send_blocks_gso (ShoalPxeTftpTransfer *t, guint64 first, guint64 last)
{
  gsize seg = 4 + t->options.blksize;
  guint64 n = MIN (last - first + 1, MIN (MAX_GSO_SEGMENTS, MAX_GSO_BYTES / seg));
  guint8 *p;
  gsize total = 0;
  union { gchar buf[CMSG_SPACE (sizeof (guint16))]; struct cmsghdr align; } control;
  struct iovec iov;
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;

  if (n < 2)
    return 0;
  if (t->gso_buf == NULL)
    t->gso_buf = g_malloc (MAX_GSO_BYTES);
  p = t->gso_buf;
  for (guint64 b = first; b < first + n; b++)
    {
      gsize offset = (gsize) ((b - 1) * t->options.blksize);
      gsize len = MIN (t->options.blksize, t->size - offset);

      p[0] = 0;
      p[1] = SHOAL_PXE_TFTP_DATA;
      p[2] = (guint8) (b >> 8);
      p[3] = (guint8) b;
      memcpy (p + 4, t->data + offset, len);
      p += 4 + len;
      total += 4 + len;
    }
  iov = (struct iovec) { t->gso_buf, total };
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_UDP;
  cmsg->cmsg_type = UDP_SEGMENT;
  cmsg->cmsg_len = CMSG_LEN (sizeof (guint16));
  *(guint16 *) (gpointer) CMSG_DATA (cmsg) = (guint16) seg;
  for (guint tries = 0; tries < 100; tries++)
    {
      if (sendmsg (g_socket_get_fd (t->socket), &msg, 0) >= 0)
        {
          t->packets_sent += n;
          return n;
        }
      if (errno == ECONNREFUSED)
        {
          t->gone = TRUE;
          return 0;
        }
      if (errno != EAGAIN && errno != EINTR)
        break;
      wait_writable (t);
    }
  g_debug ("UDP GSO send failed (%s), using sendmmsg", g_strerror (errno));
  t->no_gso = TRUE;
  return 0;
}

static void
send_range (ShoalPxeTftpTransfer *t, guint64 first, guint64 last)
{
  while (first <= last && !t->no_gso && !t->gone)
    {
      guint64 n = send_blocks_gso (t, first, last);
      if (n == 0)
        break;
      first += n;
    }
  if (first <= last && !t->gone)
    send_blocks (t, first, last);
  t->sent_upto = MAX (t->sent_upto, last);
}

static void
send_window (ShoalPxeTftpTransfer *t)
{
  g_autoptr(GBytes) oack = NULL;

  if (t->oack_pending)
    {
      oack = shoal_pxe_tftp_build_oack (&t->options, t->size);
      send_raw (t, oack);
    }
  else
    send_range (t, t->acked + 1, MIN (t->acked + t->options.windowsize, t->n_blocks));
  arm_timer (t);
}

static void
finish (ShoalPxeTftpTransfer *t, GError *error)
{
  /* the callback may free t: nothing touches it afterwards */
  t->done (t, error, t->user_data);
  if (error != NULL)
    g_error_free (error);
}

/* returns TRUE when the transfer is over */
static gboolean
handle_ack (ShoalPxeTftpTransfer *t, guint16 block)
{
  guint16 delta = (guint16) (block - (guint16) t->acked);

  if (t->oack_pending)
    {
      if (block != 0)
        return FALSE;
      t->oack_pending = FALSE;
    }
  else if (delta == 0)
    {
      /* duplicate: never resend in lockstep; once per window otherwise */
      if (t->options.windowsize > 1 && !t->dup_resent && t->sent_upto > t->acked)
        {
          t->dup_resent = TRUE;
          send_range (t, t->acked + 1, t->sent_upto);
        }
      return FALSE;
    }
  else if (delta > t->sent_upto - t->acked)
    return FALSE;   /* stale or bogus: ignore */
  else
    t->acked += delta;
  if (t->acked >= t->n_blocks)
    return TRUE;
  t->retries = 0;
  t->dup_resent = FALSE;
  send_window (t);
  return FALSE;
}

static GError *
packet_error (const guint8 *buf, gssize len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeTftpPacket) packet = shoal_pxe_tftp_packet_parse (buf, (gsize) len, &error);

  if (packet == NULL)
    return g_steal_pointer (&error);
  if (packet->opcode == SHOAL_PXE_TFTP_ERROR)
    return g_error_new (SHOAL_ERROR, SHOAL_ERROR_CANCELLED, "client aborted: error %u %s",
                        packet->error_code, packet->error_message);
  return g_error_new (SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                      "unexpected TFTP opcode %u during a read", packet->opcode);
}

/* reads what the client sent; returns TRUE when the transfer is over */
static gboolean
drain_socket (ShoalPxeTftpTransfer *t)
{
  guint8 buf[1500];

  /* in lockstep one ACK is due per dispatch: a second recv would only
   * return EAGAIN */
  guint max = t->options.windowsize > 1 ? 64 : 1;

  for (guint i = 0; i < max; i++)
    {
      gssize len = recv (g_socket_get_fd (t->socket), buf, sizeof buf, MSG_DONTWAIT);
      GError *error;

      if (len < 0 && errno == EINTR)
        continue;
      /* recv also takes a pending socket error (an ICMP error for a
       * block sent earlier); any but ECONNREFUSED is only logged */
      if (len < 0 && errno == ECONNREFUSED)
        t->gone = TRUE;
      else if (len < 0 && errno != EAGAIN)
        g_debug ("TFTP receive failed: %s", g_strerror (errno));
      if (len < 0)
        return FALSE;
      if (len >= 4 && buf[0] == 0 && buf[1] == SHOAL_PXE_TFTP_ACK)
        {
          if (handle_ack (t, (guint16) ((buf[2] << 8) | buf[3])))
            {
              finish (t, NULL);
              return TRUE;
            }
          continue;
        }
      error = packet_error (buf, len);
      if (error->code != SHOAL_ERROR_CANCELLED)
        {
          g_autoptr(GBytes) reply = shoal_pxe_tftp_build_error (SHOAL_PXE_TFTP_ERR_ILLEGAL_OP,
                                                                error->message);
          send_raw (t, reply);
        }
      finish (t, error);
      return TRUE;
    }
  return FALSE;
}

static gboolean
handle_timeout (ShoalPxeTftpTransfer *t)
{
  if (g_source_get_ready_time (t->source) > g_get_monotonic_time ())
    return FALSE;
  if (++t->retries > t->max_retries)
    {
      finish (t, g_error_new (SHOAL_ERROR, SHOAL_ERROR_TIMEOUT,
                              "no answer after %u retransmissions (block %" G_GUINT64_FORMAT ")",
                              t->max_retries, t->acked + 1));
      return TRUE;
    }
  g_debug ("TFTP timeout, resending from block %" G_GUINT64_FORMAT, t->acked + 1);
  t->dup_resent = FALSE;
  send_window (t);
  return FALSE;
}

/* an error on the socket (POLLERR) is read and cleared by drain_socket:
 * left pending, it would wake the loop again at once, until the next
 * retransmission */
static gboolean
on_socket (gint fd, GIOCondition condition, gpointer user_data)
{
  ShoalPxeTftpTransfer *t = user_data;

  if ((condition & (G_IO_IN | G_IO_ERR)) && drain_socket (t))
    return G_SOURCE_REMOVE;
  if (!t->gone && handle_timeout (t))
    return G_SOURCE_REMOVE;
  if (t->gone)
    {
      finish (t, g_error_new (SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                              "client went away (port unreachable) after block %" G_GUINT64_FORMAT,
                              t->acked));
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* sends the OACK (or the first window) and starts listening for ACKs on
 * @context (a worker's, or %NULL for the default one); from then on only
 * that context's thread touches the transfer until it is done */
void
shoal_pxe_tftp_transfer_start (ShoalPxeTftpTransfer *t, GMainContext *context)
{
  /* a GUnixFDSource keeps the ready time we set (a GSocketSource resets it) */
  t->source = g_unix_fd_source_new (g_socket_get_fd (t->socket), G_IO_IN | G_IO_ERR);
  g_source_set_callback (t->source, G_SOURCE_FUNC (on_socket), t, NULL);
  send_window (t);
  g_source_attach (t->source, context);
}
