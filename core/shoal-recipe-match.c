/* shoal-recipe-match.c: which recipe a device gets
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A recipe's "match" member holds criteria; every criterion given must
 * hold (see schemas/recipe.schema.json):
 *
 *  - "macs": shell globs; any MAC of the device matching any glob
 *    (case-insensitively) satisfies it;
 *  - "inventory": conditions { path, op, value } on the device's
 *    inventory, all of which must hold. The path selects a set of
 *    values ($ the inventory, .name a member, [N] an item, [*] every
 *    item); a path that selects nothing never holds.
 *
 * A recipe without criteria matches no device by itself. A recipe with
 * "default": true matches every device, but shoal_recipe_select() picks
 * it only when no recipe's criteria hold. Among candidates the highest
 * priority wins, then the name that sorts first, so the choice does not
 * depend on the order recipes were loaded in.
 */
#include "config.h"

#include <fnmatch.h>
#include <string.h>

#include "shoal-recipe.h"

/* ---------------------------------------------------------------- */
/* JSON paths                                                       */
/* ---------------------------------------------------------------- */

static void select_values (JsonNode    *node,
                           const gchar *path,
                           GPtrArray   *out);

static void
select_member (JsonNode    *node,
               const gchar *path,
               GPtrArray   *out)
{
  gsize len = strcspn (path, ".[");
  g_autofree gchar *key = g_strndup (path, len);
  JsonNode *member;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return;
  member = json_object_get_member (json_node_get_object (node), key);
  if (member != NULL)
    select_values (member, path + len, out);
}

static void
select_items (JsonNode    *node,
              const gchar *path,
              GPtrArray   *out)
{
  const gchar *close = strchr (path, ']');
  JsonArray *array;
  guint64 index;
  gchar *end = NULL;

  if (close == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return;
  array = json_node_get_array (node);
  if (*path == '*' && close == path + 1)
    {
      for (guint i = 0; i < json_array_get_length (array); i++)
        select_values (json_array_get_element (array, i), close + 1, out);
      return;
    }
  index = g_ascii_strtoull (path, &end, 10);
  if (end == path || end != close || index >= json_array_get_length (array))
    return;
  select_values (json_array_get_element (array, (guint) index), close + 1, out);
}

/* Adds to @out every value @path (the rest of a path after "$")
 * selects from @node. */
static void
select_values (JsonNode    *node,
               const gchar *path,
               GPtrArray   *out)
{
  if (*path == '\0')
    g_ptr_array_add (out, node);
  else if (*path == '.')
    select_member (node, path + 1, out);
  else if (*path == '[')
    select_items (node, path + 1, out);
}

/* ---------------------------------------------------------------- */
/* Comparisons                                                      */
/* ---------------------------------------------------------------- */

/* A number, or a string that holds nothing but a number */
static gboolean
node_as_number (JsonNode *node,
                gdouble  *out)
{
  GType type;
  const gchar *str;
  gchar *end = NULL;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64 || type == G_TYPE_DOUBLE)
    {
      *out = json_node_get_double (node);
      return TRUE;
    }
  if (type != G_TYPE_STRING)
    return FALSE;
  str = json_node_get_string (node);
  if (*str == '\0' || g_ascii_isspace (*str))
    return FALSE;
  *out = g_ascii_strtod (str, &end);
  return *end == '\0';
}

static const gchar *
node_as_string (JsonNode *node)
{
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* Strings compare case-insensitively (hex ids, MACs), numbers by value */
static gboolean
values_equal (JsonNode *have,
              JsonNode *want)
{
  gdouble a, b;
  const gchar *sa = node_as_string (have);
  const gchar *sb = node_as_string (want);

  if (sa != NULL && sb != NULL)
    return g_ascii_strcasecmp (sa, sb) == 0;
  if (node_as_number (have, &a) && node_as_number (want, &b))
    return a == b;
  return json_node_equal (have, want);
}

static gboolean
glob_match (const gchar *pattern,
            const gchar *str)
{
  g_autofree gchar *p = g_ascii_strdown (pattern, -1);
  g_autofree gchar *s = g_ascii_strdown (str, -1);

  return fnmatch (p, s, 0) == 0;
}

static gboolean
value_contains (JsonNode *have,
                JsonNode *want)
{
  const gchar *str = node_as_string (have);
  const gchar *needle = node_as_string (want);

  if (values_equal (have, want))
    return TRUE;
  if (JSON_NODE_HOLDS_ARRAY (have))
    {
      JsonArray *array = json_node_get_array (have);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          if (values_equal (json_array_get_element (array, i), want))
            return TRUE;
        }
      return FALSE;
    }
  if (str != NULL && needle != NULL)
    {
      g_autofree gchar *hay = g_ascii_strdown (str, -1);
      g_autofree gchar *low = g_ascii_strdown (needle, -1);

      return strstr (hay, low) != NULL;
    }
  return FALSE;
}

static gboolean
value_satisfies (JsonNode    *have,
                 const gchar *op,
                 JsonNode    *want)
{
  gdouble a, b;

  if (g_strcmp0 (op, "==") == 0)
    return values_equal (have, want);
  if (g_strcmp0 (op, "contains") == 0)
    return value_contains (have, want);
  if (g_strcmp0 (op, "matches") == 0)
    return node_as_string (have) != NULL && node_as_string (want) != NULL &&
           glob_match (node_as_string (want), node_as_string (have));

  if (!node_as_number (have, &a) || !node_as_number (want, &b))
    return FALSE;
  if (g_strcmp0 (op, ">=") == 0)
    return a >= b;
  if (g_strcmp0 (op, "<=") == 0)
    return a <= b;
  if (g_strcmp0 (op, ">") == 0)
    return a > b;
  if (g_strcmp0 (op, "<") == 0)
    return a < b;
  return FALSE;
}

static gboolean
condition_holds (JsonObject *condition,
                 JsonNode   *inventory)
{
  const gchar *path = json_object_get_string_member_with_default (condition, "path", "");
  const gchar *op = json_object_get_string_member_with_default (condition, "op", "");
  JsonNode *want = json_object_get_member (condition, "value");
  g_autoptr(GPtrArray) values = g_ptr_array_new ();
  gboolean negate = g_strcmp0 (op, "!=") == 0;

  if (want == NULL || *path != '$')
    return FALSE;
  select_values (inventory, path + 1, values);
  if (values->len == 0)
    return FALSE;
  for (guint i = 0; i < values->len; i++)
    {
      gboolean ok = value_satisfies (g_ptr_array_index (values, i), negate ? "==" : op, want);

      if (ok && !negate)
        return TRUE;
      if (ok && negate)
        return FALSE;
    }
  return negate;
}

static gboolean
macs_match (JsonArray   *patterns,
            ShoalDevice *device)
{
  const gchar * const *macs = shoal_device_get_macs (device);

  for (guint i = 0; macs != NULL && macs[i] != NULL; i++)
    {
      for (guint j = 0; j < json_array_get_length (patterns); j++)
        {
          if (glob_match (json_array_get_string_element (patterns, j), macs[i]))
            return TRUE;
        }
    }
  return FALSE;
}

static gboolean
inventory_matches (JsonArray   *conditions,
                   ShoalDevice *device)
{
  JsonNode *inventory = shoal_device_get_inventory (device);

  if (inventory == NULL)
    return FALSE;
  for (guint i = 0; i < json_array_get_length (conditions); i++)
    {
      if (!condition_holds (json_array_get_object_element (conditions, i), inventory))
        return FALSE;
    }
  return TRUE;
}

/* Whether the recipe has criteria and all of them hold */
static gboolean
criteria_hold (ShoalRecipe *self,
               ShoalDevice *device)
{
  JsonObject *match = shoal_recipe_get_match (self);
  gboolean any = FALSE;

  if (match == NULL)
    return FALSE;
  if (json_object_has_member (match, "macs"))
    {
      any = TRUE;
      if (!macs_match (json_object_get_array_member (match, "macs"), device))
        return FALSE;
    }
  if (json_object_has_member (match, "inventory"))
    {
      any = TRUE;
      if (!inventory_matches (json_object_get_array_member (match, "inventory"), device))
        return FALSE;
    }
  return any;
}

/**
 * shoal_recipe_matches:
 * @self: a #ShoalRecipe
 * @device: a #ShoalDevice
 *
 * Whether @device may get this recipe: a default recipe matches every
 * device; any other recipe matches when it has match criteria and all of
 * them hold for @device's MACs and inventory.
 *
 * Returns: %TRUE if the recipe matches @device
 */
gboolean
shoal_recipe_matches (ShoalRecipe *self,
                      ShoalDevice *device)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), FALSE);
  g_return_val_if_fail (SHOAL_IS_DEVICE (device), FALSE);

  return shoal_recipe_get_is_default (self) || criteria_hold (self, device);
}

/* Whether @a is preferred over @b: higher priority, then smaller name,
 * then smaller source, so the order of @recipes does not matter. */
static gboolean
recipe_preferred (ShoalRecipe *a,
                  ShoalRecipe *b)
{
  gint cmp;

  if (b == NULL)
    return TRUE;
  if (shoal_recipe_get_priority (a) != shoal_recipe_get_priority (b))
    return shoal_recipe_get_priority (a) > shoal_recipe_get_priority (b);
  cmp = g_strcmp0 (shoal_recipe_get_name (a), shoal_recipe_get_name (b));
  if (cmp != 0)
    return cmp < 0;
  return g_strcmp0 (shoal_recipe_get_source (a), shoal_recipe_get_source (b)) < 0;
}

/**
 * shoal_recipe_select:
 * @recipes: (element-type ShoalRecipe): the recipes to choose from
 * @device: a #ShoalDevice
 *
 * Picks the recipe for @device: among the recipes whose match criteria
 * hold, the one with the highest priority, then the name that sorts
 * first; when none holds, the best default recipe the same way.
 *
 * Returns: (transfer none) (nullable): the chosen recipe (an element of
 *   @recipes), or %NULL when no recipe matches
 */
ShoalRecipe *
shoal_recipe_select (GPtrArray   *recipes,
                     ShoalDevice *device)
{
  ShoalRecipe *best = NULL;
  ShoalRecipe *best_default = NULL;

  g_return_val_if_fail (recipes != NULL, NULL);
  g_return_val_if_fail (SHOAL_IS_DEVICE (device), NULL);

  for (guint i = 0; i < recipes->len; i++)
    {
      ShoalRecipe *recipe = g_ptr_array_index (recipes, i);

      if (criteria_hold (recipe, device))
        {
          if (recipe_preferred (recipe, best))
            best = recipe;
        }
      else if (shoal_recipe_get_is_default (recipe) && recipe_preferred (recipe, best_default))
        {
          best_default = recipe;
        }
    }
  return best != NULL ? best : best_default;
}
