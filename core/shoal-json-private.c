/* shoal-json-private.c: JSON helpers shared inside libshoal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "shoal-json-private.h"

/**
 * shoal_json_check_depth:
 * @data: JSON text
 * @length: its length in bytes
 * @max_depth: the deepest nesting of arrays and objects allowed
 *
 * Checks the nesting of JSON text before json-glib, whose parser recurses
 * once per level without a limit (and so overflows the stack on a few
 * hundred kilobytes of brackets), sees it. Brackets inside strings do not
 * count; the text need not be valid JSON.
 *
 * Returns: %TRUE if @data nests at most @max_depth levels deep
 */
gboolean
shoal_json_check_depth (const gchar *data,
                        gsize        length,
                        guint        max_depth)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < length; i++)
    {
      gchar c = data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if ((c == '[' || c == '{') && ++depth > max_depth)
        return FALSE;
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

static JsonNode *copy_node (JsonNode *node,
                            gboolean  sorted);

static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (a, b);
}

/* @source's members into a new object, by name when @sorted, else in
 * their order */
static JsonObject *
copy_object (JsonObject *source,
             gboolean    sorted)
{
  JsonObject *object = json_object_new ();
  g_autoptr(GList) members = NULL;

  if (source == NULL)
    return object;
  members = json_object_get_members (source);
  if (sorted)
    members = g_list_sort (members, compare_names);
  for (GList *l = members; l != NULL; l = l->next)
    json_object_set_member (object, l->data, copy_node (json_object_get_member (source, l->data), sorted));
  return object;
}

static JsonNode *
copy_node (JsonNode *node,
           gboolean  sorted)
{
  JsonNode *copy;

  if (node == NULL)
    return NULL;
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = copy_object (json_node_get_object (node), sorted);

        copy = json_node_init_object (json_node_alloc (), object);
        json_object_unref (object);
        return copy;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *source = json_node_get_array (node);
        JsonArray *array = json_array_new ();

        for (guint i = 0; source != NULL && i < json_array_get_length (source); i++)
          json_array_add_element (array, copy_node (json_array_get_element (source, i), sorted));
        copy = json_node_init_array (json_node_alloc (), array);
        json_array_unref (array);
        return copy;
      }
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          return json_node_init_int (json_node_alloc (), json_node_get_int (node));
        case G_TYPE_DOUBLE:
          return json_node_init_double (json_node_alloc (), json_node_get_double (node));
        case G_TYPE_BOOLEAN:
          return json_node_init_boolean (json_node_alloc (), json_node_get_boolean (node));
        case G_TYPE_STRING:
          return json_node_init_string (json_node_alloc (), json_node_get_string (node));
        default:    /* a value node given no value */
          return json_node_new (JSON_NODE_NULL);
        }
    case JSON_NODE_NULL:
    default:
      return json_node_new (JSON_NODE_NULL);
    }
}

/**
 * shoal_json_node_deep_copy:
 * @node: (nullable): a node
 *
 * Copies @node and everything in it, reading it only. json_node_copy()
 * shares the object, array or value inside and counts its references
 * without atomics, so a node that another thread copies or frees too
 * must be copied whole to cross threads.
 *
 * Returns: (transfer full) (nullable): a node that shares nothing with @node
 */
JsonNode *
shoal_json_node_deep_copy (JsonNode *node)
{
  return copy_node (node, FALSE);
}

/**
 * shoal_json_to_canonical:
 * @node: a node
 *
 * Writes @node as canonical JSON text: the members of every object in
 * the byte order of their names, no whitespace. Two documents that
 * differ only in the order of their members or in their layout give the
 * same text.
 *
 * Returns: (transfer full): the text
 */
gchar *
shoal_json_to_canonical (JsonNode *node)
{
  g_autoptr(JsonNode) sorted = copy_node (node, TRUE);

  return json_to_string (sorted, FALSE);
}
