/* shoal-pxe-ipxe.h: iPXE scripts from the templates in data/ipxe
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gchar *shoal_pxe_ipxe_load_template (const gchar         *dir,
                                     const gchar         *name,
                                     GError             **error);
gchar *shoal_pxe_ipxe_render        (const gchar         *template_text,
                                     const gchar * const *vars,
                                     GError             **error);
gchar *shoal_pxe_ipxe_file_url      (const gchar         *files_url,
                                     const gchar         *path_or_url);
gchar *shoal_pxe_ipxe_basename      (const gchar         *url);

G_END_DECLS
