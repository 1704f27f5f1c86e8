/* shoal-drivers-select.h: picks kernel modules for an inventory
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

#include "shoal-drivers-modindex.h"

G_BEGIN_DECLS

typedef struct {
  GPtrArray *modules;    /* load order, dependencies included */
  GPtrArray *picked;     /* matched or added, before dependencies */
  GPtrArray *matched;    /* "8086:100e e1000" lines: what matched what
                            ("1af4:1041 virtio_pci (built-in)": built into the kernel) */
  GPtrArray *unmatched;  /* "8086:1237 (class 060000, 0000:00:00.0)": nothing matched */
  GPtrArray *forbidden;  /* "8139too (10ec:8139)": matched but forbidden;
                            "e1000e (added by the recipe)": added but forbidden */
} ShoalDriversSelection;

typedef struct {
  const gchar * const *add;      /* module names the recipe adds */
  const gchar * const *forbid;   /* module names or fnmatch patterns never picked */
  const gchar * const *classes;  /* PCI class prefixes whose devices need a driver: 2, 4 or 6
                                    hex digits (class, subclass, interface), any case;
                                    NULL: storage and network ("01", "02") */
} ShoalDriversOptions;

ShoalDriversSelection *shoal_drivers_select         (ShoalModIndex             *index,
                                                     JsonNode                  *inventory,
                                                     const ShoalDriversOptions *options,
                                                     GError                   **error);
void                   shoal_drivers_selection_free (ShoalDriversSelection     *self);
gchar                 *shoal_drivers_pci_modalias   (JsonObject                *pci);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalDriversSelection, shoal_drivers_selection_free)

G_END_DECLS
