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
 * Files on disk are read (preadv into one buffer of up to 64 kB per
 * transfer), never mapped: a file truncated while it is served would
 * make a read through a mapping raise SIGBUS; a read comes up short
 * and the transfer ends with a TFTP error.
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
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

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
  GBytes                  *contents;     /* a virtual file, or NULL */
  gint                     fd;           /* a file on disk, or -1 */
  gsize                    size;
  ShoalPxeTftpOptions      options;
  guint64                  n_blocks;     /* the last one is shorter than blksize */
  guint64                  acked;        /* highest block acknowledged */
  gboolean                 answered;     /* an ACK came (of the OACK or a block) */
  guint                    first_ack_ms; /* the limit on the wait for it, 0 for none */
  gint64                   first_ack_by; /* its monotonic deadline */
  guint64                  sent_upto;    /* highest block sent */
  gboolean                 oack_pending;
  gboolean                 dup_resent;
  gboolean                 no_gso;
  gboolean                 gone;         /* a send or recv saw ECONNREFUSED */
  GError                  *read_error;   /* the file could not be read */
  guint8                  *buf;          /* blocks being sent, header and payload */
  gsize                    buf_size;
  guint                    retries;
  guint                    max_retries;
  guint64                  packets_sent;
  ShoalPxeTftpTransferDone done;
  gpointer                 user_data;
};

static ShoalPxeTftpTransfer *
transfer_new (GSocket                   *socket,
              gsize                      size,
              const ShoalPxeTftpOptions *options,
              guint                      max_retries,
              ShoalPxeTftpTransferDone   done,
              gpointer                   user_data)
{
  ShoalPxeTftpTransfer *t = g_new0 (ShoalPxeTftpTransfer, 1);

  t->socket = g_object_ref (socket);
  t->fd = -1;
  t->size = size;
  t->options = *options;
  t->n_blocks = t->size / options->blksize + 1;
  t->oack_pending = options->any;
  t->max_retries = max_retries;
  t->done = done;
  t->user_data = user_data;
  return t;
}

/* serves @contents, a file generated in memory */
ShoalPxeTftpTransfer *
shoal_pxe_tftp_transfer_new (GSocket                   *socket,
                             GBytes                    *contents,
                             const ShoalPxeTftpOptions *options,
                             guint                      max_retries,
                             ShoalPxeTftpTransferDone   done,
                             gpointer                   user_data)
{
  ShoalPxeTftpTransfer *t = transfer_new (socket, g_bytes_get_size (contents), options,
                                          max_retries, done, user_data);

  t->contents = g_bytes_ref (contents);
  return t;
}

/**
 * shoal_pxe_tftp_transfer_new_for_fd:
 * @fd: a regular file, read with pread; the transfer takes it
 * @size: its size when the request came: the size served
 *
 * The file is read, not mapped: one that shrinks during the transfer
 * ends it with an error, where a mapping would raise SIGBUS.
 */
ShoalPxeTftpTransfer *
shoal_pxe_tftp_transfer_new_for_fd (GSocket                   *socket,
                                    gint                       fd,
                                    gsize                      size,
                                    const ShoalPxeTftpOptions *options,
                                    guint                      max_retries,
                                    ShoalPxeTftpTransferDone   done,
                                    gpointer                   user_data)
{
  ShoalPxeTftpTransfer *t = transfer_new (socket, size, options, max_retries, done, user_data);

  t->fd = fd;
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
  g_clear_pointer (&t->contents, g_bytes_unref);
  if (t->fd >= 0)
    g_close (t->fd, NULL);
  g_clear_error (&t->read_error);
  g_free (t->buf);
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

/**
 * shoal_pxe_tftp_transfer_set_first_ack_limit:
 * @limit_ms: how long the transfer waits for its first ACK, whatever
 *   timeout the client negotiated; 0 for no limit
 *
 * Call before shoal_pxe_tftp_transfer_start().
 */
void
shoal_pxe_tftp_transfer_set_first_ack_limit (ShoalPxeTftpTransfer *t, guint limit_ms)
{
  t->first_ack_ms = limit_ms;
  t->first_ack_by = g_get_monotonic_time () + (gint64) limit_ms * 1000;
}

static gboolean
waits_for_first_ack (ShoalPxeTftpTransfer *t)
{
  return !t->answered && t->first_ack_ms > 0;
}

static void
arm_timer (ShoalPxeTftpTransfer *t)
{
  gint64 when = g_get_monotonic_time () + (gint64) t->options.timeout_ms * 1000;

  if (waits_for_first_ack (t))
    when = MIN (when, t->first_ack_by);
  g_source_set_ready_time (t->source, when);
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

static gsize
block_len (ShoalPxeTftpTransfer *t, guint64 b)
{
  return MIN (t->options.blksize, t->size - (gsize) ((b - 1) * t->options.blksize));
}

/* blocks in one buffer at a time: up to a GSO send's worth, one at least */
static guint64
blocks_per_buffer (ShoalPxeTftpTransfer *t)
{
  return MAX (1, MAX_GSO_BYTES / (4 + t->options.blksize));
}

static gboolean
pread_all (gint fd, guint8 *dest, gsize len, goffset offset)
{
  while (len > 0)
    {
      gssize r = pread (fd, dest, len, offset);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return FALSE;
      dest += r;
      len -= (gsize) r;
      offset += r;
    }
  return TRUE;
}

/* the payloads of blocks first..first+n-1 into their places in t->buf
 * (block i at i * (4 + blksize), after its header): one preadv, or one
 * pread per block when that came up short */
static gboolean
read_blocks (ShoalPxeTftpTransfer *t, guint64 first, guint64 n)
{
  struct iovec iov[MAX_GSO_SEGMENTS];
  goffset offset = (goffset) ((first - 1) * t->options.blksize);
  gsize want = 0;
  gssize got;
  gint saved;

  for (guint64 i = 0; i < n; i++)
    {
      iov[i] = (struct iovec) { t->buf + i * (4 + t->options.blksize) + 4, block_len (t, first + i) };
      want += iov[i].iov_len;
    }
  do
    got = preadv (t->fd, iov, (gint) n, offset);
  while (got < 0 && errno == EINTR);
  if (got == (gssize) want)
    return TRUE;
  for (guint64 i = 0; i < n; i++)
    if (!pread_all (t->fd, iov[i].iov_base, iov[i].iov_len,
                    offset + (goffset) (i * t->options.blksize)))
      {
        saved = errno;
        g_set_error (&t->read_error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                     "cannot read block %" G_GUINT64_FORMAT ": %s", first + i,
                     got >= 0 || saved == 0 ? "the file shrank during the transfer" : g_strerror (saved));
        return FALSE;
      }
  return TRUE;
}

/* blocks first..first+n-1 (n at most blocks_per_buffer) into t->buf,
 * each with its header; FALSE with t->read_error set when the file
 * could not be read */
static gboolean
fill_buffer (ShoalPxeTftpTransfer *t, guint64 first, guint64 n)
{
  gsize seg = 4 + t->options.blksize;

  if (t->buf == NULL)
    {
      t->buf_size = MAX (MAX_GSO_BYTES, seg);
      t->buf = g_malloc (t->buf_size);
    }
  for (guint64 i = 0; i < n; i++)
    {
      guint8 *p = t->buf + i * seg;
      guint64 b = first + i;

      p[0] = 0;
      p[1] = SHOAL_PXE_TFTP_DATA;
      p[2] = (guint8) (b >> 8);
      p[3] = (guint8) b;
      if (t->contents != NULL)
        memcpy (p + 4, (const guint8 *) g_bytes_get_data (t->contents, NULL) +
                       (b - 1) * t->options.blksize, block_len (t, b));
    }
  return t->contents != NULL || read_blocks (t, first, n);
}

/* blocks first..last, batched with sendmmsg, each datagram a slice of
 * the buffer */
static void
send_blocks (ShoalPxeTftpTransfer *t, guint64 first, guint64 last)
{
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  gsize seg = 4 + t->options.blksize;
  guint64 b = first;

  while (b <= last)
    {
      guint n = (guint) MIN (last - b + 1, MIN (MAX_BATCH, blocks_per_buffer (t)));
      gint sent = 0;

      if (!fill_buffer (t, b, n))
        return;
      memset (msgs, 0, sizeof msgs);
      for (guint i = 0; i < n; i++)
        {
          iov[i] = (struct iovec) { t->buf + i * seg, 4 + block_len (t, b + i) };
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
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
      b += n;
    }
  t->sent_upto = MAX (t->sent_upto, last);
}

/* blocks first..last in one UDP GSO send (UDP_SEGMENT): the kernel cuts
 * the buffer into one datagram per block, so a window costs one pass
 * through the stack. Returns the number of blocks sent, 0 if GSO failed
 * or the file could not be read. */
static guint64
send_blocks_gso (ShoalPxeTftpTransfer *t, guint64 first, guint64 last)
{
  gsize seg = 4 + t->options.blksize;
  guint64 n = MIN (last - first + 1, MIN (MAX_GSO_SEGMENTS, blocks_per_buffer (t)));
  gsize total = 0;
  union { gchar buf[CMSG_SPACE (sizeof (guint16))]; struct cmsghdr align; } control;
  struct iovec iov;
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;

  if (n < 2)
    return 0;
  if (!fill_buffer (t, first, n))
    return 0;
  /* only the last block of the file is short, and it ends the buffer */
  total = (gsize) (n - 1) * seg + 4 + block_len (t, first + n - 1);
  iov = (struct iovec) { t->buf, total };
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

/* the client is gone or the file cannot be read: nothing more to send */
static gboolean
stopped (ShoalPxeTftpTransfer *t)
{
  return t->gone || t->read_error != NULL;
}

static void
send_range (ShoalPxeTftpTransfer *t, guint64 first, guint64 last)
{
  while (first <= last && !t->no_gso && !stopped (t))
    {
      guint64 n = send_blocks_gso (t, first, last);
      if (n == 0)
        break;
      first += n;
    }
  if (first <= last && !stopped (t))
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
  t->answered = TRUE;
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
          if (stopped (t))
            return FALSE;
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
  gint64 now = g_get_monotonic_time ();

  if (g_source_get_ready_time (t->source) > now)
    return FALSE;
  if (waits_for_first_ack (t) && now >= t->first_ack_by)
    {
      finish (t, g_error_new (SHOAL_ERROR, SHOAL_ERROR_TIMEOUT,
                              "no ACK within %u ms of the request", t->first_ack_ms));
      return TRUE;
    }
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

static void
finish_stopped (ShoalPxeTftpTransfer *t)
{
  if (t->read_error != NULL)
    {
      g_autoptr(GBytes) reply = shoal_pxe_tftp_build_error (SHOAL_PXE_TFTP_ERR_UNDEFINED,
                                                            t->read_error->message);
      send_raw (t, reply);
      finish (t, g_steal_pointer (&t->read_error));
      return;
    }
  finish (t, g_error_new (SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                          "client went away (port unreachable) after block %" G_GUINT64_FORMAT,
                          t->acked));
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
  if (!stopped (t) && handle_timeout (t))
    return G_SOURCE_REMOVE;
  if (stopped (t))
    {
      finish_stopped (t);
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
  if (stopped (t))
    g_source_set_ready_time (t->source, 0);   /* ends it from its own loop */
  g_source_attach (t->source, context);
}
