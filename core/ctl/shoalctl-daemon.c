/* shoalctl-daemon.c: the daemon-wide commands of shoalctl (steps,
 * plugins, recipes, statistics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoalctl.h"

gboolean
shoalctl_cmd_steps (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) steps = NULL;
  g_autoptr(ShoalCtlTable) table = NULL;
  const gchar *name, *module, *scope, *phase, *description;
  GVariantIter iter;

  if (!shoalctl_check_args (args, 0, 0, "steps", error))
    return FALSE;
  if (!shoal_dbus_manager_call_list_steps_sync (ctl->manager, &steps, NULL, error))
    return FALSE;
  table = shoalctl_table_new (_("STEP"), _("MODULE"), _("SCOPE"), _("PHASE"), _("DESCRIPTION"), NULL);
  g_variant_iter_init (&iter, steps);
  while (g_variant_iter_next (&iter, "(&s&s&s&s&s)", &name, &module, &scope, &phase, &description))
    shoalctl_table_add_row (table, name, module, scope, phase, description, NULL);
  shoalctl_table_print (table);
  return TRUE;
}

gboolean
shoalctl_cmd_plugins (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) plugins = NULL;
  g_autoptr(ShoalCtlTable) table = NULL;
  const gchar *module, *name, *description, *load_error;
  gboolean loaded;
  GVariantIter iter;

  if (!shoalctl_check_args (args, 0, 0, "plugins", error))
    return FALSE;
  if (!shoal_dbus_manager_call_list_plugins_sync (ctl->manager, &plugins, NULL, error))
    return FALSE;
  table = shoalctl_table_new (_("MODULE"), _("LOADED"), _("NAME"), _("DESCRIPTION / ERROR"), NULL);
  g_variant_iter_init (&iter, plugins);
  while (g_variant_iter_next (&iter, "(&s&s&sb&s)", &module, &name, &description, &loaded, &load_error))
    shoalctl_table_add_row (table, module, loaded ? _("yes") : _("no"), name,
                            loaded ? description : load_error, NULL);
  shoalctl_table_print (table);
  return TRUE;
}

gboolean
shoalctl_cmd_recipes (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) recipes = NULL;
  g_autoptr(ShoalCtlTable) table = NULL;
  const gchar *name, *commit, *image, *source, *description;
  GVariantIter iter;

  if (!shoalctl_check_args (args, 0, 0, "recipes", error))
    return FALSE;
  if (!shoal_dbus_manager_call_list_recipes_sync (ctl->manager, &recipes, NULL, error))
    return FALSE;
  table = shoalctl_table_new (_("RECIPE"), _("COMMIT"), _("IMAGE"), _("SOURCE"), NULL);
  g_variant_iter_init (&iter, recipes);
  while (g_variant_iter_next (&iter, "(&s&s&s&s&s)", &name, &commit, &image, &source, &description))
    {
      g_autofree gchar *short_commit = g_strndup (commit, 12);

      shoalctl_table_add_row (table, name, commit[0] != '\0' ? short_commit : "-",
                              image[0] != '\0' ? image : "-", source, NULL);
    }
  shoalctl_table_print (table);
  return TRUE;
}

gboolean
shoalctl_cmd_recipe_add (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autofree gchar *json = NULL;

  if (!shoalctl_check_args (args, 1, 1, "recipe-add <file.json>", error))
    return FALSE;
  if (!g_file_get_contents (args[0], &json, NULL, error))
    return FALSE;
  if (!shoal_dbus_manager_call_add_recipe_sync (ctl->manager, json, NULL, error))
    return FALSE;
  g_print (_("Added the recipe of %s\n"), args[0]);
  return TRUE;
}

gboolean
shoalctl_cmd_recipe_sync (ShoalCtl *ctl, gchar **args, GError **error)
{
  if (!shoalctl_check_args (args, 0, 0, "recipe-sync", error))
    return FALSE;
  if (!shoal_dbus_manager_call_sync_recipes_sync (ctl->manager, NULL, error))
    return FALSE;
  g_print ("%s\n", _("Recipes synchronized"));
  return shoalctl_cmd_recipes (ctl, NULL, error);
}

gboolean
shoalctl_cmd_recipe_diff (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autofree gchar *diff = NULL;
  g_autofree gchar *shown = NULL;

  if (!shoalctl_check_args (args, 3, 3, "recipe-diff <name> <from-commit> <to-commit>", error))
    return FALSE;
  if (!shoal_dbus_manager_call_diff_recipe_sync (ctl->manager, args[0], args[1], args[2],
                                                 &diff, NULL, error))
    return FALSE;
  shown = shoalctl_escape_lines (diff);
  g_print ("%s", shown);
  if (diff[0] != '\0' && !g_str_has_suffix (diff, "\n"))
    g_print ("\n");
  return TRUE;
}

gboolean
shoalctl_cmd_recipe_pin (ShoalCtl *ctl, gchar **args, GError **error)
{
  if (!shoalctl_check_args (args, 1, 1, "recipe-pin <branch|tag|commit>", error))
    return FALSE;
  if (!shoal_dbus_manager_call_set_recipe_ref_sync (ctl->manager, args[0], NULL, error))
    return FALSE;
  g_print (_("Recipes pinned to %s\n"), args[0]);
  return shoalctl_cmd_recipes (ctl, NULL, error);
}

static gchar *
format_bytes_or_value (const gchar *key, GVariant *value)
{
  if ((g_strcmp0 (key, "rss") == 0 || g_strcmp0 (key, "peak-rss") == 0) &&
      g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    return g_format_size_full (g_variant_get_uint64 (value), G_FORMAT_SIZE_IEC_UNITS);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    return g_strdup_printf ("%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_strdup_printf ("%u", g_variant_get_uint32 (value));
  return g_variant_print (value, FALSE);
}

gboolean
shoalctl_cmd_stats (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) stats = NULL;
  g_autoptr(GVariant) states = NULL;
  GVariantIter iter;
  const gchar *key;
  GVariant *value;

  if (!shoalctl_check_args (args, 0, 0, "stats", error))
    return FALSE;
  if (!shoal_dbus_manager_call_get_stats_sync (ctl->manager, &stats, NULL, error))
    return FALSE;
  g_variant_iter_init (&iter, stats);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autofree gchar *text = NULL;
      g_autofree gchar *key_shown = NULL;
      g_autofree gchar *text_shown = NULL;

      if (g_strcmp0 (key, "states") == 0)
        {
          states = value;
          continue;
        }
      text = format_bytes_or_value (key, value);
      key_shown = shoalctl_escape (key);
      text_shown = shoalctl_escape (text);
      g_print ("%-18s %s\n", key_shown, text_shown);
      g_variant_unref (value);
    }
  if (states != NULL && g_variant_is_of_type (states, G_VARIANT_TYPE ("a{su}")))
    {
      guint32 count;

      g_print ("%s\n", _("devices per state:"));
      g_variant_iter_init (&iter, states);
      while (g_variant_iter_next (&iter, "{&su}", &key, &count))
        {
          g_autofree gchar *key_shown = shoalctl_escape (key);

          if (count > 0)
            g_print ("  %-16s %u\n", key_shown, count);
        }
    }
  return TRUE;
}
