/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-net.h: UDP multicast socket setup and batched I/O (internal) */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define SMC_BATCH 64
/* the most one UDP GSO super-packet carries: UDP payload bytes, and
 * packets (the kernel's UDP_MAX_SEGMENTS, 64 before Linux 6.9) */
#define SMC_GSO_MAX_BYTES 65000
#define SMC_GSO_MAX_SEGS 64

/* where an offline socket's packets go (shoal-mcast-sim.h): one call per
 * packet, to dst (a unicast peer) or to the group (dst NULL) */
typedef void (*smc_tap_fn) (void *user, const uint8_t *pkt, size_t len, const struct sockaddr_in *dst);

typedef struct {
  int fd;
  struct sockaddr_in group;
  int ifindex;
  int gso;               /* UDP_SEGMENT usable */
  smc_tap_fn tap;        /* offline (fd -1): sends go here, never to a network */
  void *tap_user;
  uint16_t offline_backlog; /* offline: its receive queue's fill, ‰, as the caller models it */
  uint64_t offline_delay_ns; /* offline: how long a packet queued now waits to be read */
  uint32_t offline_drops;    /* offline: the packets its full queue dropped so far */
} smc_sock;

/* bind 0.0.0.0:port, join group on iface (NULL: any), no loopback of own
 * packets, IP_MULTICAST_ALL off, non-blocking; bufsize for SO_SNDBUF/RCVBUF */
int smc_sock_open (smc_sock *s, const char *group, uint16_t port, const char *iface,
                   int sndbuf, int rcvbuf);
/* the same without membership, bound to an ephemeral port: a sender's
 * transmit socket, which also gets the unicast replies to that port */
int smc_sock_open_tx (smc_sock *s, const char *group, uint16_t port, const char *iface,
                      int sndbuf, int rcvbuf);
void smc_sock_close (smc_sock *s);
/* a socket with no file descriptor: what is sent through it goes to tap
 * (packet by packet, no GSO), nothing is received; -1 on a bad group */
int smc_sock_open_offline (smc_sock *s, const char *group, uint16_t port, smc_tap_fn tap, void *user);

typedef struct {
  struct mmsghdr msgs[SMC_BATCH];
  struct iovec iov[SMC_BATCH];
  struct sockaddr_in from[SMC_BATCH];
  uint8_t *bufs[SMC_BATCH];
  char ctl[SMC_BATCH][64];
  size_t bufsize;
  uint32_t overflow;     /* last SO_RXQ_OVFL value seen */
} smc_rxbatch;

int  smc_rxbatch_init (smc_rxbatch *b, size_t bufsize);
void smc_rxbatch_free (smc_rxbatch *b);
/* non-blocking recvmmsg; returns count (0 when nothing), -1 on error */
int  smc_rxbatch_recv (smc_sock *s, smc_rxbatch *b);
/* the MTU of the route to peer (its interface's, on a LAN); 0 if unknown */
int smc_path_mtu (const struct sockaddr_in *peer);
/* how full the socket's receive queue is, ‰ of its buffer (0 if unknown) */
uint16_t smc_sock_backlog_permille (const smc_sock *s);
/* how long the packet read last waited in the socket's queue, from the
 * kernel's stamp of its arrival (SIOCGSTAMPNS; the first call turns the
 * stamps on and returns 0): about what a packet arriving now will wait
 * while the queue stays as long. Meaningful only while packets are read
 * from a queue that is not empty; 0 if unknown */
uint64_t smc_sock_queue_delay_ns (smc_sock *s);
/* the packets the socket dropped so far, its queue full (SO_MEMINFO): at
 * once. SO_RXQ_OVFL gives the same count with each packet as it was when
 * that packet was queued, so a receiver reads a drop there only once it
 * reads past it, a whole queue later. 0 if unknown */
uint32_t smc_sock_drops (const smc_sock *s);

/* send n packets (to dst, or the group when dst is NULL); returns sent count */
/* n messages of niov[i] (1..3) iovecs each, iov[i][0..niov[i]) */
int smc_send_iov (smc_sock *s, struct iovec (*iov)[3], const int *niov, int n,
                  const struct sockaddr_in *dst);
int smc_send_batch (smc_sock *s, uint8_t *const *pkts, const size_t *lens, int n,
                    const struct sockaddr_in *dst);
/* n packets (lens[i] bytes in niov[i] iovecs each) to the group; runs of
 * packets of one length go as UDP GSO super-packets (the kernel, or the
 * NIC, cuts them into those packets): one pass through the stack each.
 * Returns the packets sent; fewer when the kernel refused a super-packet
 * (errno EIO, EINVAL or EMSGSIZE: the device cannot checksum them, or its
 * MTU is smaller than the packets; send the rest one by one) or another
 * error came. At most max_segs (≤ SMC_GSO_MAX_SEGS) packets in one
 * super-packet; *supers counts super-packets sent. */
int smc_send_iov_gso (smc_sock *s, struct iovec (*iov)[3], const int *niov, const size_t *lens, int n,
                      int max_segs, uint64_t *supers);
