/* pxe-netns.h: network namespaces for the pxe plugin's network tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PXE_NETNS_SERVER_IP "10.77.0.1"

typedef struct {
  gchar     *server_ns;
  GPtrArray *client_ns;     /* names */
  gint       original_fd;   /* the namespace the test started in */
} PxeNetns;

gboolean  pxe_netns_available  (gchar       **reason);
gboolean  pxe_netns_have_program (const gchar *program);
PxeNetns *pxe_netns_new        (const gchar  *prefix,
                                guint         n_clients,
                                gboolean      client_addresses,
                                GError      **error);
void      pxe_netns_free       (PxeNetns     *ns);
gboolean  pxe_netns_sh         (const gchar  *ns,
                                const gchar  *script,
                                GError      **error);
gboolean  pxe_netns_run        (const gchar  *ns,
                                const gchar * const *argv,
                                guint         timeout_s,
                                gchar       **output,
                                GError      **error);
GSubprocess *pxe_netns_spawn   (const gchar  *ns,
                                const gchar * const *argv,
                                GError      **error);
gboolean  pxe_netns_wait       (GSubprocess  *proc,
                                guint         timeout_s,
                                gchar       **output,
                                GError      **error);
gchar    *pxe_netns_tmpdir     (const gchar  *prefix);
gboolean  pxe_netns_iterate_until (gboolean  *flag,
                                   guint      timeout_ms);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PxeNetns, pxe_netns_free)

G_END_DECLS
