/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-net.c: UDP multicast sockets, recvmmsg/sendmmsg, UDP GSO */
#include "shoal-mcast-net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif

static void
set_buf (int fd, int force_opt, int opt, int size)
{
  if (size <= 0)
    return;
  if (setsockopt (fd, SOL_SOCKET, force_opt, &size, sizeof size) < 0)
    setsockopt (fd, SOL_SOCKET, opt, &size, sizeof size);
}

static int
sock_setup (smc_sock *s, uint16_t port, int sndbuf, int rcvbuf, int join)
{
  struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons (join ? port : 0) };
  struct ip_mreqn mr = { 0 };
  int one = 1, zero = 0, ttl = 4, seg = 1400;
  setsockopt (s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  set_buf (s->fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);
  set_buf (s->fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf);
  setsockopt (s->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (bind (s->fd, (struct sockaddr *) &any, sizeof any) < 0)
    return -1;
  mr.imr_multiaddr = s->group.sin_addr;
  mr.imr_ifindex = s->ifindex;
  if (join && setsockopt (s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
    return -1;
  if (s->ifindex != 0)
    setsockopt (s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
  setsockopt (s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);
  setsockopt (s->fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
  setsockopt (s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  s->gso = setsockopt (s->fd, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof seg) == 0;
  seg = 0;
  setsockopt (s->fd, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof seg);
  return 0;
}

/* no socket yet, the group's address: -1 when it is not a multicast one */
static int
sock_init (smc_sock *s, const char *group, uint16_t port)
{
  memset (s, 0, sizeof *s);
  s->fd = -1;
  s->group.sin_family = AF_INET;
  s->group.sin_port = htons (port);
  if (inet_pton (AF_INET, group, &s->group.sin_addr) != 1 || !IN_MULTICAST (ntohl (s->group.sin_addr.s_addr)))
    return -1;
  return 0;
}

static int
sock_open (smc_sock *s, const char *group, uint16_t port, const char *iface,
           int sndbuf, int rcvbuf, int join)
{
  if (sock_init (s, group, port) < 0)
    return -1;
  s->ifindex = iface != NULL && iface[0] ? (int) if_nametoindex (iface) : 0;
  if (iface != NULL && iface[0] && s->ifindex == 0)
    return -1;
  s->fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0)
    return -1;
  if (sock_setup (s, port, sndbuf, rcvbuf, join) < 0) {
    close (s->fd);
    s->fd = -1;
    return -1;
  }
  return 0;
}

int
smc_sock_open (smc_sock *s, const char *group, uint16_t port, const char *iface,
               int sndbuf, int rcvbuf)
{
  return sock_open (s, group, port, iface, sndbuf, rcvbuf, 1);
}

int
smc_sock_open_tx (smc_sock *s, const char *group, uint16_t port, const char *iface,
                  int sndbuf, int rcvbuf)
{
  return sock_open (s, group, port, iface, sndbuf, rcvbuf, 0);
}

int
smc_sock_open_offline (smc_sock *s, const char *group, uint16_t port, smc_tap_fn tap, void *user)
{
  if (sock_init (s, group, port) < 0 || tap == NULL)
    return -1;
  s->tap = tap;
  s->tap_user = user;
  return 0;
}

void
smc_sock_close (smc_sock *s)
{
  if (s->fd >= 0)
    close (s->fd);
  s->fd = -1;
}

int
smc_rxbatch_init (smc_rxbatch *b, size_t bufsize)
{
  memset (b, 0, sizeof *b);
  b->bufsize = bufsize;
  for (int i = 0; i < SMC_BATCH; i++) {
    b->bufs[i] = malloc (bufsize);
    if (b->bufs[i] == NULL)
      return -1;
  }
  return 0;
}

void
smc_rxbatch_free (smc_rxbatch *b)
{
  for (int i = 0; i < SMC_BATCH; i++)
    free (b->bufs[i]);
  memset (b, 0, sizeof *b);
}

int
smc_rxbatch_recv (smc_sock *s, smc_rxbatch *b)
{
  int n;
  if (s->fd < 0)
    return 0;  /* offline: its packets are handed over (shoal-mcast-sim.h) */
  for (int i = 0; i < SMC_BATCH; i++) {
    b->iov[i].iov_base = b->bufs[i];
    b->iov[i].iov_len = b->bufsize;
    memset (&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
    b->msgs[i].msg_hdr.msg_name = &b->from[i];
    b->msgs[i].msg_hdr.msg_namelen = sizeof b->from[i];
    b->msgs[i].msg_hdr.msg_control = b->ctl[i];
    b->msgs[i].msg_hdr.msg_controllen = sizeof b->ctl[i];
  }
  n = recvmmsg (s->fd, b->msgs, SMC_BATCH, MSG_DONTWAIT, NULL);
  if (n < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
  if (n > 0) {
    struct msghdr *mh = &b->msgs[n - 1].msg_hdr;
    for (struct cmsghdr *c = CMSG_FIRSTHDR (mh); c != NULL; c = CMSG_NXTHDR (mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
        memcpy (&b->overflow, CMSG_DATA (c), sizeof b->overflow);
  }
  return n;
}

int
smc_path_mtu (const struct sockaddr_in *peer)
{
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), mtu = 0;
  socklen_t len = sizeof mtu;
  /* a connected socket has a route, whose device's MTU IP_MTU gives */
  if (fd < 0)
    return 0;
  if (connect (fd, (const struct sockaddr *) peer, sizeof *peer) < 0 ||
      getsockopt (fd, IPPROTO_IP, IP_MTU, &mtu, &len) < 0)
    mtu = 0;
  close (fd);
  return mtu;
}

/* the socket's SO_MEMINFO, every field of it; -1 if the kernel gives less */
static int
sock_meminfo (const smc_sock *s, uint32_t mi[SK_MEMINFO_VARS])
{
  socklen_t len = SK_MEMINFO_VARS * sizeof mi[0];
  if (getsockopt (s->fd, SOL_SOCKET, SO_MEMINFO, mi, &len) < 0 || len < SK_MEMINFO_VARS * sizeof mi[0])
    return -1;
  return 0;
}

uint16_t
smc_sock_backlog_permille (const smc_sock *s)
{
  uint32_t mi[SK_MEMINFO_VARS] = { 0 };
  uint64_t fill;
  if (s->fd < 0)
    return s->offline_backlog;
  /* both in the kernel's accounting (buffer space each packet takes) */
  if (sock_meminfo (s, mi) < 0 || mi[SK_MEMINFO_RCVBUF] == 0)
    return 0;
  fill = (uint64_t) mi[SK_MEMINFO_RMEM_ALLOC] * 1000 / mi[SK_MEMINFO_RCVBUF];
  return (uint16_t) (fill > 1000 ? 1000 : fill);
}

uint32_t
smc_sock_drops (const smc_sock *s)
{
  uint32_t mi[SK_MEMINFO_VARS] = { 0 };
  if (s->fd < 0)
    return s->offline_drops;
  return sock_meminfo (s, mi) < 0 ? 0 : mi[SK_MEMINFO_DROPS];
}

uint64_t
smc_sock_queue_delay_ns (smc_sock *s)
{
  struct timespec stamp, now;
  int64_t d;
  if (s->fd < 0)
    return s->offline_delay_ns;
  /* ENOENT the first time: stamps are on from now */
  if (ioctl (s->fd, SIOCGSTAMPNS, &stamp) < 0 || clock_gettime (CLOCK_REALTIME, &now) < 0)
    return 0;
  d = (int64_t) (now.tv_sec - stamp.tv_sec) * 1000000000 + (now.tv_nsec - stamp.tv_nsec);
  /* a stamp from before the clock was set back, or a stale one */
  return d > 0 && d < 60 * (int64_t) 1000000000 ? (uint64_t) d : 0;
}

int
smc_send_batch (smc_sock *s, uint8_t *const *pkts, const size_t *lens, int n,
                const struct sockaddr_in *dst)
{
  struct iovec iov[SMC_BATCH][3];
  int niov[SMC_BATCH];
  if (n > SMC_BATCH)
    n = SMC_BATCH;
  for (int i = 0; i < n; i++) {
    iov[i][0].iov_base = pkts[i];
    iov[i][0].iov_len = lens[i];
    niov[i] = 1;
  }
  return smc_send_iov (s, iov, niov, n, dst);
}

/* sends msgs[0..m) with sendmmsg; a full socket buffer is waited out
 * (back-pressure: the qdisc drains it). Returns the messages sent: m, or
 * fewer when another error came (errno tells). */
static int
send_msgs (smc_sock *s, struct mmsghdr *msgs, int m)
{
  int sent = 0;
  while (sent < m) {
    int r = sendmmsg (s->fd, msgs + sent, (unsigned) (m - sent), 0);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        usleep (200);
        continue;
      }
      if (errno == EINTR)
        continue;
      return sent;
    }
    sent += r;
  }
  return sent;
}

/* an offline socket's packets, each made whole and handed to its tap */
static int
tap_send (smc_sock *s, struct iovec (*iov)[3], const int *niov, int n, const struct sockaddr_in *dst)
{
  static _Thread_local uint8_t pkt[65536];
  for (int i = 0; i < n; i++) {
    size_t len = 0;
    for (int v = 0; v < niov[i]; v++) {
      if (iov[i][v].iov_len > sizeof pkt - len)
        return i;
      memcpy (pkt + len, iov[i][v].iov_base, iov[i][v].iov_len);
      len += iov[i][v].iov_len;
    }
    s->tap (s->tap_user, pkt, len, dst);
  }
  return n;
}

int
smc_send_iov (smc_sock *s, struct iovec (*iov)[3], const int *niov, int n,
              const struct sockaddr_in *dst)
{
  struct mmsghdr msgs[SMC_BATCH];
  if (n > SMC_BATCH)
    n = SMC_BATCH;
  if (s->tap != NULL)
    return tap_send (s, iov, niov, n, dst);
  for (int i = 0; i < n; i++) {
    memset (&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = iov[i];
    msgs[i].msg_hdr.msg_iovlen = (size_t) niov[i];
    msgs[i].msg_hdr.msg_name = (void *) (dst != NULL ? dst : &s->group);
    msgs[i].msg_hdr.msg_namelen = sizeof s->group;
  }
  return send_msgs (s, msgs, n);
}

int
smc_send_iov_gso (smc_sock *s, struct iovec (*iov)[3], const int *niov, const size_t *lens, int n,
                  int max_segs, uint64_t *supers)
{
  struct mmsghdr msgs[SMC_BATCH];
  struct iovec flat[SMC_BATCH * 3];
  char ctl[SMC_BATCH][CMSG_SPACE (sizeof (uint16_t))];
  int first[SMC_BATCH + 1];  /* message m carries packets first[m] .. first[m + 1] - 1 */
  int m = 0, nf = 0, sent;
  if (n > SMC_BATCH)
    n = SMC_BATCH;
  if (s->tap != NULL)
    return tap_send (s, iov, niov, n, NULL);
  if (max_segs < 1 || max_segs > SMC_GSO_MAX_SEGS)
    max_segs = SMC_GSO_MAX_SEGS;
  for (int i = 0; i < n;) {
    /* a run of packets of one length, 64 KiB (the largest UDP datagram)
     * at most in all */
    int j = i + 1;
    size_t total = lens[i];
    struct msghdr *mh = &msgs[m].msg_hdr;
    while (j < n && lens[j] == lens[i] && total + lens[j] <= SMC_GSO_MAX_BYTES && j - i < max_segs)
      total += lens[j++];
    memset (&msgs[m], 0, sizeof msgs[m]);
    mh->msg_name = &s->group;
    mh->msg_namelen = sizeof s->group;
    mh->msg_iov = &flat[nf];
    for (int k = i; k < j; k++)
      for (int v = 0; v < niov[k]; v++)
        flat[nf++] = iov[k][v];
    mh->msg_iovlen = (size_t) (&flat[nf] - mh->msg_iov);
    if (j - i > 1) {
      struct cmsghdr *c;
      uint16_t seg = (uint16_t) lens[i];
      memset (ctl[m], 0, sizeof ctl[m]);
      mh->msg_control = ctl[m];
      mh->msg_controllen = sizeof ctl[m];
      c = CMSG_FIRSTHDR (mh);
      c->cmsg_level = IPPROTO_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN (sizeof seg);
      memcpy (CMSG_DATA (c), &seg, sizeof seg);
    }
    first[m++] = i;
    i = j;
  }
  first[m] = n;
  sent = send_msgs (s, msgs, m);
  for (int k = 0; k < sent; k++)
    *supers += first[k + 1] - first[k] > 1;
  return first[sent];
}
