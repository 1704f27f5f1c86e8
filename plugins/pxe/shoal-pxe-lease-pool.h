/* shoal-pxe-lease-pool.h: the addresses of the authoritative DHCP mode
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ShoalPxeLeasePool ShoalPxeLeasePool;

/* called with @value NULL when a lease goes */
typedef void (*ShoalPxeLeaseStoreFunc) (const gchar *mac,
                                        const gchar *value,
                                        gpointer     user_data);

ShoalPxeLeasePool *shoal_pxe_lease_pool_new       (guint32                 first,
                                                   guint32                 last,
                                                   guint                   lease_time);
void               shoal_pxe_lease_pool_free      (ShoalPxeLeasePool      *pool);
void               shoal_pxe_lease_pool_set_store (ShoalPxeLeasePool      *pool,
                                                   ShoalPxeLeaseStoreFunc  func,
                                                   gpointer                user_data);
void               shoal_pxe_lease_pool_set_reserved (ShoalPxeLeasePool   *pool,
                                                      const guint32       *addresses,
                                                      guint                n);
gboolean           shoal_pxe_lease_pool_load      (ShoalPxeLeasePool      *pool,
                                                   const gchar            *mac,
                                                   const gchar            *value);
guint32            shoal_pxe_lease_pool_offer     (ShoalPxeLeasePool      *pool,
                                                   const gchar            *mac,
                                                   guint32                 requested,
                                                   GError                **error);
gboolean           shoal_pxe_lease_pool_commit    (ShoalPxeLeasePool      *pool,
                                                   const gchar            *mac,
                                                   guint32                 address,
                                                   GError                **error);
void               shoal_pxe_lease_pool_release   (ShoalPxeLeasePool      *pool,
                                                   const gchar            *mac);
gboolean           shoal_pxe_lease_pool_decline   (ShoalPxeLeasePool      *pool,
                                                   const gchar            *mac,
                                                   guint32                 address,
                                                   GError                **error);
guint              shoal_pxe_lease_pool_get_n_declined (ShoalPxeLeasePool *pool);
guint32            shoal_pxe_lease_pool_lookup    (ShoalPxeLeasePool      *pool,
                                                   const gchar            *mac);
const gchar       *shoal_pxe_lease_pool_lookup_owner (ShoalPxeLeasePool   *pool,
                                                      guint32              address);
guint              shoal_pxe_lease_pool_get_lease_time (ShoalPxeLeasePool *pool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalPxeLeasePool, shoal_pxe_lease_pool_free)

G_END_DECLS
