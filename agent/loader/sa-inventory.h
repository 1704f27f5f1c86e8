/* sa-inventory.h: collects the hardware inventory from /sys and /proc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sa-util.h"

/* Returns the inventory as a JSON document valid against
 * schemas/inventory.schema.json. @root prefixes every /sys and /proc path
 * ("" on a real machine; a fake tree in tests). */
char *sa_inventory_collect (const char *root);
