/* broken-symbol.c: a module that cannot be loaded
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <libpeas/peas.h>

extern void shoal_test_symbol_that_does_not_exist (void);

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  shoal_test_symbol_that_does_not_exist ();
}
