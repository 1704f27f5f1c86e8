/* shoal-pxe-lease-pool.c: the addresses of the authoritative DHCP mode
 *
 * A lease is offered for a minute, then committed for the lease time.
 * Committed leases are handed to a store function ("<ip> <expiry>", the
 * expiry in seconds since the epoch), which the plugin backs with the
 * daemon's key/value store; on start they are loaded back. Declined
 * addresses (RFC 2131 DECLINE: someone else uses them) are skipped for
 * ten minutes. Addresses are in network order at the interface.
 *
 * Every expiry in memory is in monotonic seconds: a step of the wall
 * clock (NTP, date) neither expires leases at once, which would hand
 * their addresses to other clients, nor holds offers and DECLINEs for a
 * day. Only the saved expiry is wall time, converted when it is saved
 * and when it is loaded.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include "shoal-error.h"
#include "shoal-pxe-clock.h"
#include "shoal-pxe-lease-pool.h"
#include "shoal-pxe-net.h"

#define OFFER_SECONDS 60
#define DECLINE_SECONDS 600

typedef struct {
  gchar   *mac;
  guint32  ip;        /* host order */
  gint64   expires;   /* monotonic seconds (shoal_pxe_clock_monotonic_s) */
  gboolean committed;
} Lease;

struct _ShoalPxeLeasePool
{
  guint32                first;   /* host order */
  guint32                last;
  guint                  lease_time;
  GHashTable            *by_mac;    /* mac -> Lease */
  GHashTable            *by_ip;     /* ip -> Lease (borrowed) */
  GHashTable            *declined;  /* ip -> until (monotonic seconds) */
  GHashTable            *reserved;  /* ip set: never handed out */
  ShoalPxeLeaseStoreFunc store;
  gpointer               store_data;
};

static void
lease_free (gpointer data)
{
  Lease *l = data;

  g_free (l->mac);
  g_free (l);
}

/* monotonic: what every expiry in memory is measured against */
static gint64
now_s (void)
{
  return shoal_pxe_clock_monotonic_s ();
}

ShoalPxeLeasePool *
shoal_pxe_lease_pool_new (guint32 first, guint32 last, guint lease_time)
{
  ShoalPxeLeasePool *pool = g_new0 (ShoalPxeLeasePool, 1);

  pool->first = ntohl (first);
  pool->last = ntohl (last);
  pool->lease_time = MAX (lease_time, 60);
  pool->by_mac = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, lease_free);
  pool->by_ip = g_hash_table_new (g_direct_hash, g_direct_equal);
  pool->declined = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  pool->reserved = g_hash_table_new (g_direct_hash, g_direct_equal);
  return pool;
}

void
shoal_pxe_lease_pool_free (ShoalPxeLeasePool *pool)
{
  if (pool == NULL)
    return;
  g_hash_table_unref (pool->by_ip);
  g_hash_table_unref (pool->by_mac);
  g_hash_table_unref (pool->declined);
  g_hash_table_unref (pool->reserved);
  g_free (pool);
}

void
shoal_pxe_lease_pool_set_store (ShoalPxeLeasePool *pool, ShoalPxeLeaseStoreFunc func, gpointer user_data)
{
  pool->store = func;
  pool->store_data = user_data;
}

/**
 * shoal_pxe_lease_pool_set_reserved:
 * @addresses: (array length=n): network order; zeros are skipped
 *
 * Addresses the pool never offers or commits, even inside its range:
 * the server's own, the router's, the subnet's network and broadcast
 * addresses. Replaces the previous set.
 */
void
shoal_pxe_lease_pool_set_reserved (ShoalPxeLeasePool *pool, const guint32 *addresses, guint n)
{
  g_hash_table_remove_all (pool->reserved);
  for (guint i = 0; i < n; i++)
    if (addresses[i] != 0)
      g_hash_table_add (pool->reserved, GUINT_TO_POINTER (ntohl (addresses[i])));
}

guint
shoal_pxe_lease_pool_get_lease_time (ShoalPxeLeasePool *pool)
{
  return pool->lease_time;
}

static void
persist (ShoalPxeLeasePool *pool, const gchar *mac, Lease *l)
{
  g_autofree gchar *ip = NULL;
  g_autofree gchar *value = NULL;

  if (pool->store == NULL)
    return;
  if (l == NULL || !l->committed)
    {
      pool->store (mac, NULL, pool->store_data);
      return;
    }
  ip = shoal_pxe_net_ip_to_string (htonl (l->ip));
  /* saved in wall time: the monotonic clock starts again at boot */
  value = g_strdup_printf ("%s %" G_GINT64_FORMAT, ip, shoal_pxe_clock_real_s () + (l->expires - now_s ()));
  pool->store (mac, value, pool->store_data);
}

static void
drop (ShoalPxeLeasePool *pool, Lease *l)
{
  gboolean was_committed = l->committed;
  g_autofree gchar *mac = g_strdup (l->mac);

  g_hash_table_remove (pool->by_ip, GUINT_TO_POINTER (l->ip));
  g_hash_table_remove (pool->by_mac, mac);
  if (was_committed)
    persist (pool, mac, NULL);
}

static Lease *
put (ShoalPxeLeasePool *pool, const gchar *mac, guint32 ip, gint64 expires, gboolean committed)
{
  Lease *old = g_hash_table_lookup (pool->by_mac, mac);
  Lease *l;

  if (old != NULL)
    g_hash_table_remove (pool->by_ip, GUINT_TO_POINTER (old->ip));
  l = g_new0 (Lease, 1);
  l->mac = g_strdup (mac);
  l->ip = ip;
  l->expires = expires;
  l->committed = committed;
  g_hash_table_replace (pool->by_mac, l->mac, l);
  g_hash_table_replace (pool->by_ip, GUINT_TO_POINTER (ip), l);
  return l;
}

/* free for @mac: in range, not reserved, not declined, not someone
 * else's live lease */
static gboolean
is_free (ShoalPxeLeasePool *pool, guint32 ip, const gchar *mac)
{
  Lease *owner;
  gint64 *until;

  if (ip < pool->first || ip > pool->last || g_hash_table_contains (pool->reserved, GUINT_TO_POINTER (ip)))
    return FALSE;
  until = g_hash_table_lookup (pool->declined, GUINT_TO_POINTER (ip));
  if (until != NULL && *until > now_s ())
    return FALSE;
  if (until != NULL)
    g_hash_table_remove (pool->declined, GUINT_TO_POINTER (ip));
  owner = g_hash_table_lookup (pool->by_ip, GUINT_TO_POINTER (ip));
  if (owner == NULL || g_str_equal (owner->mac, mac))
    return TRUE;
  if (owner->expires > now_s ())
    return FALSE;
  drop (pool, owner);   /* expired: the address is free again */
  return TRUE;
}

/* a lease saved by a previous run */
gboolean
shoal_pxe_lease_pool_load (ShoalPxeLeasePool *pool, const gchar *mac, const gchar *value)
{
  g_auto(GStrv) parts = g_strsplit (value, " ", 2);
  guint32 ip;
  gint64 expires;

  if (g_strv_length (parts) != 2 || !shoal_pxe_net_ip_from_string (parts[0], &ip))
    return FALSE;
  /* what is left of it by the wall clock, from now on the monotonic one */
  expires = g_ascii_strtoll (parts[1], NULL, 10) - shoal_pxe_clock_real_s ();
  if (expires <= 0 || !is_free (pool, ntohl (ip), mac))
    return FALSE;
  put (pool, mac, ntohl (ip), now_s () + expires, TRUE);
  return TRUE;
}

static guint32
pick (ShoalPxeLeasePool *pool, const gchar *mac, guint32 requested)
{
  Lease *mine = g_hash_table_lookup (pool->by_mac, mac);

  if (mine != NULL && is_free (pool, mine->ip, mac))
    return mine->ip;
  if (requested != 0 && is_free (pool, requested, mac))
    return requested;
  for (guint32 ip = pool->first; ip <= pool->last && ip != 0; ip++)
    if (is_free (pool, ip, mac))
      return ip;
  return 0;
}

/**
 * shoal_pxe_lease_pool_offer:
 * @requested: the client's option 50 (network order), or 0
 *
 * Returns: the address to offer (network order), or 0 with @error set
 */
guint32
shoal_pxe_lease_pool_offer (ShoalPxeLeasePool *pool, const gchar *mac, guint32 requested, GError **error)
{
  guint32 ip = pick (pool, mac, requested != 0 ? ntohl (requested) : 0);
  Lease *mine;

  if (ip == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY, "the address pool is exhausted");
      return 0;
    }
  mine = g_hash_table_lookup (pool->by_mac, mac);
  if (mine == NULL || mine->ip != ip || !mine->committed)
    put (pool, mac, ip, now_s () + OFFER_SECONDS, FALSE);
  return htonl (ip);
}

gboolean
shoal_pxe_lease_pool_commit (ShoalPxeLeasePool *pool, const gchar *mac, guint32 address, GError **error)
{
  guint32 ip = ntohl (address);
  Lease *l;

  if (!is_free (pool, ip, mac))
    {
      g_autofree gchar *str = shoal_pxe_net_ip_to_string (address);
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                   "address %s is outside the pool or not free for %s", str, mac);
      return FALSE;
    }
  l = put (pool, mac, ip, now_s () + pool->lease_time, TRUE);
  persist (pool, mac, l);
  return TRUE;
}

void
shoal_pxe_lease_pool_release (ShoalPxeLeasePool *pool, const gchar *mac)
{
  Lease *l = g_hash_table_lookup (pool->by_mac, mac);

  if (l != NULL)
    drop (pool, l);
}

static void
prune_declined (ShoalPxeLeasePool *pool)
{
  GHashTableIter iter;
  gpointer value;
  gint64 now = now_s ();

  g_hash_table_iter_init (&iter, pool->declined);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (*(gint64 *) value <= now)
      g_hash_table_iter_remove (&iter);
}

/**
 * shoal_pxe_lease_pool_decline:
 * @address: the client's option 50 (network order)
 *
 * The client found @address in use by someone else (RFC 2131 DECLINE):
 * the pool skips it for ten minutes. Only the address offered or leased
 * to @mac can be declined, so the table stays within the pool's size and
 * one client cannot mark another's address, or one outside the pool.
 *
 * Returns: %FALSE with @error set when the DECLINE is ignored
 */
gboolean
shoal_pxe_lease_pool_decline (ShoalPxeLeasePool *pool, const gchar *mac, guint32 address, GError **error)
{
  Lease *l = g_hash_table_lookup (pool->by_mac, mac);
  gint64 *until;

  if (l == NULL || l->ip != ntohl (address))
    {
      g_autofree gchar *str = shoal_pxe_net_ip_to_string (address);
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   "%s was not offered to %s", str, mac);
      return FALSE;
    }
  prune_declined (pool);
  until = g_new (gint64, 1);
  *until = now_s () + DECLINE_SECONDS;
  g_hash_table_replace (pool->declined, GUINT_TO_POINTER (l->ip), until);
  drop (pool, l);
  return TRUE;
}

/* the client holding a committed, live lease on @address (network
 * order), or %NULL */
const gchar *
shoal_pxe_lease_pool_lookup_owner (ShoalPxeLeasePool *pool, guint32 address)
{
  Lease *l = g_hash_table_lookup (pool->by_ip, GUINT_TO_POINTER (ntohl (address)));

  if (l == NULL || !l->committed || l->expires <= now_s ())
    return NULL;
  return l->mac;
}

/* addresses declined and not yet pruned, for tests */
guint
shoal_pxe_lease_pool_get_n_declined (ShoalPxeLeasePool *pool)
{
  return g_hash_table_size (pool->declined);
}

/* the committed, live address of @mac (network order), or 0 */
guint32
shoal_pxe_lease_pool_lookup (ShoalPxeLeasePool *pool, const gchar *mac)
{
  Lease *l = g_hash_table_lookup (pool->by_mac, mac);

  if (l == NULL || !l->committed || l->expires <= now_s ())
    return 0;
  return htonl (l->ip);
}
