/* shoal-dbus-image-users.c: the images that recipes and running
 * deployments name
 *
 * Read on the main thread (devices and recipes live there), then checked
 * against the store in a worker: RemoveImage refuses an image that the
 * recipe of a running deployment names, PruneImages and the retention
 * after an import keep every image a recipe in service or a running
 * deployment names. A running deployment is counted with the recipe it
 * started with and with the recipe in service under that name, which
 * may have changed since.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller-private.h"
#include "shoal-dbus-image-users.h"

/**
 * shoal_dbus_recipe_image_ref:
 * @recipe: a recipe
 *
 * Returns: (nullable): the image @recipe names: its "id", else its
 *   "name"; %NULL when none
 */
const gchar *
shoal_dbus_recipe_image_ref (ShoalRecipe *recipe)
{
  JsonObject *image = shoal_recipe_get_image (recipe);

  if (image == NULL)
    return NULL;
  return json_object_get_string_member_with_default (image, "id",
           json_object_get_string_member_with_default (image, "name", NULL));
}

static void
image_user_free (ShoalDBusImageUser *user)
{
  g_free (user->ref);
  g_free (user->recipe);
  g_ptr_array_unref (user->devices);
  g_free (user);
}

/* the user of @recipe's image in @users, added when new; NULL when the
 * recipe names no image */
static ShoalDBusImageUser *
image_user_for (GPtrArray   *users,
                GHashTable  *by_key,
                ShoalRecipe *recipe)
{
  const gchar *ref = recipe != NULL ? shoal_dbus_recipe_image_ref (recipe) : NULL;
  g_autofree gchar *key = NULL;
  ShoalDBusImageUser *user;

  if (ref == NULL)
    return NULL;
  key = g_strdup_printf ("%s\x1f%s", shoal_recipe_get_name (recipe), ref);
  user = g_hash_table_lookup (by_key, key);
  if (user != NULL)
    return user;
  user = g_new0 (ShoalDBusImageUser, 1);
  user->ref = g_strdup (ref);
  user->recipe = g_strdup (shoal_recipe_get_name (recipe));
  user->devices = g_ptr_array_new_with_free_func (g_free);
  g_hash_table_insert (by_key, g_steal_pointer (&key), user);
  g_ptr_array_add (users, user);
  return user;
}

static void
add_device (ShoalDBusImageUser *user,
            ShoalDevice        *device)
{
  const gchar *id = shoal_device_get_id (device);

  /* the recipe it runs and the one in service may name the same image */
  if (user != NULL &&
      (user->devices->len == 0 || g_strcmp0 (g_ptr_array_index (user->devices, user->devices->len - 1), id) != 0))
    g_ptr_array_add (user->devices, g_strdup (id));
}

/**
 * shoal_dbus_image_users_collect:
 * @controller: (nullable): the controller
 * @every_recipe: also the recipes in service that no deployment runs
 *
 * Returns: (transfer container) (element-type ShoalDBusImageUser): the
 *   image references of the recipes of running deployments (the one each
 *   started with, and the one in service under its name), with their
 *   devices; with @every_recipe those of every recipe in service too
 */
GPtrArray *
shoal_dbus_image_users_collect (ShoalController *controller,
                                gboolean         every_recipe)
{
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func ((GDestroyNotify) image_user_free);
  g_autoptr(GHashTable) by_key = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) devices = NULL;
  g_autoptr(GPtrArray) recipes = NULL;

  if (controller == NULL)
    return g_steal_pointer (&users);
  devices = shoal_controller_get_devices (controller);
  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      ShoalRecipe *in_service = shoal_controller_lookup_recipe (controller, shoal_device_get_recipe (device));
      ShoalRecipe *run = shoal_controller_get_run_recipe (controller, device);

      if (shoal_device_get_recipe (device) == NULL ||
          !shoal_device_state_is_active (shoal_device_get_state (device)))
        continue;
      add_device (image_user_for (users, by_key, in_service), device);
      if (run != NULL && run != in_service)
        add_device (image_user_for (users, by_key, run), device);
    }
  if (!every_recipe)
    return g_steal_pointer (&users);
  recipes = shoal_controller_get_recipes (controller);
  for (guint i = 0; i < recipes->len; i++)
    image_user_for (users, by_key, g_ptr_array_index (recipes, i));
  return g_steal_pointer (&users);
}

/**
 * shoal_dbus_image_user_describe:
 * @user: an image user
 *
 * Returns: (transfer full): "recipe R (devices A, B)", or "recipe R"
 *   when no deployment of it runs
 */
gchar *
shoal_dbus_image_user_describe (ShoalDBusImageUser *user)
{
  g_autofree gchar *devices = NULL;

  if (user->devices->len == 0)
    /* TRANSLATORS: a recipe that names an image */
    return g_strdup_printf (_("recipe %s"), user->recipe);
  g_ptr_array_add (user->devices, NULL);
  devices = g_strjoinv (", ", (gchar **) user->devices->pdata);
  g_ptr_array_remove_index (user->devices, user->devices->len - 1);
  /* TRANSLATORS: a recipe and the devices running it */
  return g_strdup_printf (_("recipe %s (devices %s)"), user->recipe, devices);
}

/**
 * shoal_dbus_image_users_in_use:
 * @users: (element-type ShoalDBusImageUser): image users
 *
 * Returns: (transfer full) (element-type utf8 utf8): each image reference
 *   of @users → who uses it, for shoal_image_store_prune_async()
 */
GHashTable *
shoal_dbus_image_users_in_use (GPtrArray *users)
{
  GHashTable *in_use = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (guint i = 0; i < users->len; i++)
    {
      ShoalDBusImageUser *user = g_ptr_array_index (users, i);
      g_autofree gchar *described = shoal_dbus_image_user_describe (user);
      const gchar *before = g_hash_table_lookup (in_use, user->ref);

      g_hash_table_insert (in_use, g_strdup (user->ref),
                           before != NULL ? g_strconcat (before, "; ", described, NULL)
                                          : g_steal_pointer (&described));
    }
  return in_use;
}
