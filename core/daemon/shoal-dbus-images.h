/* shoal-dbus-images.h: the image methods of org.shoal.Shoal1.Manager
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-controller.h"
#include "shoal-dbus-generated.h"
#include "shoal-image-store.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_DBUS_IMAGES (shoal_dbus_images_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDBusImages, shoal_dbus_images, SHOAL, DBUS_IMAGES, GObject)

ShoalDBusImages *shoal_dbus_images_new    (ShoalImageStore  *store,
                                           ShoalController  *controller,
                                           guint             keep);
void             shoal_dbus_images_attach (ShoalDBusImages  *self,
                                           ShoalDBusManager *skeleton);
gboolean         shoal_dbus_images_check_recipe (ShoalDBusImages *self,
                                           ShoalRecipe      *recipe,
                                           GError          **error);

G_END_DECLS
