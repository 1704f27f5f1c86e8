/* shoal-dbus-image-users.h: the images that recipes and running
 * deployments name, which RemoveImage and PruneImages spare
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-controller.h"

G_BEGIN_DECLS

/* a recipe's image reference, and the devices running a deployment of it */
typedef struct
{
  gchar     *ref;      /* the recipe's image id or name */
  gchar     *recipe;
  GPtrArray *devices;  /* gchar *; empty: a recipe in service nobody runs */
} ShoalDBusImageUser;

const gchar *shoal_dbus_recipe_image_ref    (ShoalRecipe        *recipe);
GPtrArray   *shoal_dbus_image_users_collect (ShoalController    *controller,
                                             gboolean            every_recipe);
gchar       *shoal_dbus_image_user_describe (ShoalDBusImageUser *user);
GHashTable  *shoal_dbus_image_users_in_use  (GPtrArray          *users);

G_END_DECLS
