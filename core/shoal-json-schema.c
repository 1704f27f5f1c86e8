/* shoal-json-schema.c: JSON Schema validation for recipes and inventories
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A validator for the subset of JSON Schema draft 2020-12 that shoal's
 * own schemas use:
 *
 *  - any type: type (a name or an array of names), enum, const, $ref
 *    (JSON pointers into the same document: "#", "#/$defs/x",
 *    "#/definitions/x"), allOf, anyOf, oneOf, not;
 *  - numbers: minimum, maximum, exclusiveMinimum, exclusiveMaximum;
 *  - strings: minLength, maxLength (in Unicode characters), pattern
 *    (a Perl-compatible regular expression, unanchored, as GRegex reads it);
 *  - arrays: items (one schema for every item), minItems, maxItems,
 *    uniqueItems;
 *  - objects: properties, patternProperties, additionalProperties (a
 *    boolean or a schema), required, minProperties, maxProperties.
 *
 * Annotations (title, description, default, examples, $schema, $id,
 * $comment) and keywords outside this subset are ignored. The boolean
 * schemas true and false are understood.
 *
 * Every failure is a %SHOAL_ERROR_INVALID_DATA whose message starts
 * with the JSON path of the offending value, for example
 * `$.steps[2].options.rate: expected integer, got string`.
 *
 * A schema is checked when it is loaded (every subschema is an object
 * or a boolean, every pattern compiles, every $ref resolves) and is
 * read-only afterwards, so one schema may validate in several threads
 * at once.
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#include "shoal-error.h"
#include "shoal-json-schema.h"

/* Bounds the recursion of $ref chains and of nested instances */
#define SHOAL_JSON_SCHEMA_MAX_DEPTH 200

struct _ShoalJsonSchema
{
  GObject     parent_instance;

  JsonNode   *root;
  GHashTable *regexes;  /* pattern string -> GRegex */
  GHashTable *refs;     /* "$ref" string -> JsonNode (borrowed from root) */
};

G_DEFINE_TYPE (ShoalJsonSchema, shoal_json_schema, G_TYPE_OBJECT)

typedef struct
{
  ShoalJsonSchema *schema;
  GString         *path;
  guint            depth;
  gsize            error_path_len;  /* length of the path where the last error was raised */
  gboolean         error_is_type;   /* the last error was a type mismatch */
} Validation;

static gboolean validate_node (Validation *v,
                               JsonNode   *schema,
                               JsonNode   *instance,
                               GError    **error);

/* ---------------------------------------------------------------- */
/* Helpers on JSON values                                           */
/* ---------------------------------------------------------------- */

static gboolean
node_is_number (JsonNode *node)
{
  GType t;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  t = json_node_get_value_type (node);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

static gboolean
node_is_integer (JsonNode *node)
{
  gdouble d;

  if (!node_is_number (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return TRUE;
  d = json_node_get_double (node);
  return isfinite (d) && floor (d) == d;
}

static gboolean
node_is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

static gboolean
node_is_boolean (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_BOOLEAN;
}

static gdouble
node_get_number (JsonNode *node)
{
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return (gdouble) json_node_get_int (node);
  return json_node_get_double (node);
}

static const gchar *
node_type_name (JsonNode *node)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      return "object";
    case JSON_NODE_ARRAY:
      return "array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
    default:
      break;
    }
  if (node_is_string (node))
    return "string";
  if (node_is_boolean (node))
    return "boolean";
  if (node_is_integer (node))
    return "integer";
  return "number";
}

static gboolean
node_has_type (JsonNode    *node,
               const gchar *type)
{
  if (g_strcmp0 (type, "number") == 0)
    return node_is_number (node);
  if (g_strcmp0 (type, "integer") == 0)
    return node_is_integer (node);
  return g_strcmp0 (type, node_type_name (node)) == 0;
}

static gboolean nodes_equal (JsonNode *a, JsonNode *b);

static gboolean
arrays_equal (JsonArray *a,
              JsonArray *b)
{
  guint n = json_array_get_length (a);

  if (n != json_array_get_length (b))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      if (!nodes_equal (json_array_get_element (a, i), json_array_get_element (b, i)))
        return FALSE;
    }
  return TRUE;
}

static gboolean
objects_equal (JsonObject *a,
               JsonObject *b)
{
  JsonObjectIter iter;
  const gchar *key;
  JsonNode *member;

  if (json_object_get_size (a) != json_object_get_size (b))
    return FALSE;
  json_object_iter_init (&iter, a);
  while (json_object_iter_next (&iter, &key, &member))
    {
      JsonNode *other = json_object_get_member (b, key);

      if (other == NULL || !nodes_equal (member, other))
        return FALSE;
    }
  return TRUE;
}

/* JSON equality: numbers compare by value (1 == 1.0), objects ignore
 * member order. */
static gboolean
nodes_equal (JsonNode *a,
             JsonNode *b)
{
  JsonNodeType ta = json_node_get_node_type (a);

  if (ta != json_node_get_node_type (b))
    return FALSE;
  switch (ta)
    {
    case JSON_NODE_NULL:
      return TRUE;
    case JSON_NODE_OBJECT:
      return objects_equal (json_node_get_object (a), json_node_get_object (b));
    case JSON_NODE_ARRAY:
      return arrays_equal (json_node_get_array (a), json_node_get_array (b));
    case JSON_NODE_VALUE:
    default:
      break;
    }
  if (node_is_number (a) && node_is_number (b))
    {
      if (json_node_get_value_type (a) == G_TYPE_INT64 &&
          json_node_get_value_type (b) == G_TYPE_INT64)
        return json_node_get_int (a) == json_node_get_int (b);
      return node_get_number (a) == node_get_number (b);
    }
  if (node_is_string (a) && node_is_string (b))
    return g_strcmp0 (json_node_get_string (a), json_node_get_string (b)) == 0;
  if (node_is_boolean (a) && node_is_boolean (b))
    return json_node_get_boolean (a) == json_node_get_boolean (b);
  return FALSE;
}

/* A hash agreeing with nodes_equal: numbers hash by their value as a
 * double (1 and 1.0 alike, -0.0 as 0.0), object members by key and value
 * whatever their order. */
static guint
node_hash (JsonNode *node)
{
  guint h;

  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_NULL:
      return 1;
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);

        h = 2;
        for (guint i = 0; i < json_array_get_length (array); i++)
          h = h * 31 + node_hash (json_array_get_element (array, i));
        return h;
      }
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const gchar *key;
        JsonNode *member;

        h = 3;
        json_object_iter_init (&iter, json_node_get_object (node));
        while (json_object_iter_next (&iter, &key, &member))
          h += g_str_hash (key) * 31 + node_hash (member);
        return h;
      }
    case JSON_NODE_VALUE:
    default:
      break;
    }
  if (node_is_number (node))
    {
      gdouble d = node_get_number (node);

      if (d == 0)
        d = 0;
      return g_double_hash (&d);
    }
  if (node_is_string (node))
    return g_str_hash (json_node_get_string (node));
  if (node_is_boolean (node))
    return json_node_get_boolean (node) ? 5 : 4;
  return 0;
}

/* json_to_string copies the node it is given, taking references on the
 * values in it, and json-glib does not count references atomically: two
 * threads validating one instance (which the API allows) corrupted the
 * counts and freed values twice (test-json-schema's threads case, about
 * 1 run in 150). The instance is only read otherwise. */
static GMutex to_string_lock;

static gchar *
node_to_short_string (JsonNode *node)
{
  g_autofree gchar *str = NULL;

  g_mutex_lock (&to_string_lock);
  str = json_to_string (node, FALSE);
  g_mutex_unlock (&to_string_lock);

  if (g_utf8_strlen (str, -1) > 64)
    {
      g_autofree gchar *head = g_utf8_substring (str, 0, 60);
      return g_strdup_printf ("%s…", head);
    }
  return g_steal_pointer (&str);
}

/* ---------------------------------------------------------------- */
/* Paths and errors                                                 */
/* ---------------------------------------------------------------- */

static gboolean
key_is_plain (const gchar *key)
{
  if (*key == '\0')
    return FALSE;
  for (const gchar *p = key; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-' && *p != '@')
        return FALSE;
    }
  return TRUE;
}

static void
path_push_key (GString     *path,
               const gchar *key)
{
  if (key_is_plain (key))
    {
      g_string_append_printf (path, ".%s", key);
    }
  else
    {
      g_autoptr(JsonNode) node = json_node_init_string (json_node_alloc (), key);
      g_autofree gchar *quoted = json_to_string (node, FALSE);

      g_string_append_printf (path, "[%s]", quoted);
    }
}

static void
path_push_index (GString *path,
                 guint    index)
{
  g_string_append_printf (path, "[%u]", index);
}

static gboolean fail (Validation  *v,
                      GError     **error,
                      const gchar *format,
                      ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (Validation  *v,
      GError     **error,
      const gchar *format,
      ...)
{
  va_list args;
  g_autofree gchar *problem = NULL;

  va_start (args, format);
  problem = g_strdup_vprintf (format, args);
  va_end (args);

  v->error_path_len = v->path->len;
  v->error_is_type = FALSE;
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               "%s: %s", v->path->str, problem);
  return FALSE;
}

/* ---------------------------------------------------------------- */
/* Keywords                                                         */
/* ---------------------------------------------------------------- */

static gboolean
check_type (Validation *v,
            JsonObject *schema,
            JsonNode   *instance,
            GError    **error)
{
  JsonNode *type = json_object_get_member (schema, "type");
  g_autoptr(GString) names = NULL;
  JsonArray *array;

  if (type == NULL)
    return TRUE;
  if (node_is_string (type))
    {
      if (node_has_type (instance, json_node_get_string (type)))
        return TRUE;
      fail (v, error, _("expected %s, got %s"),
            json_node_get_string (type), node_type_name (instance));
      v->error_is_type = TRUE;
      return FALSE;
    }

  array = json_node_get_array (type);
  names = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      const gchar *name = json_array_get_string_element (array, i);

      if (node_has_type (instance, name))
        return TRUE;
      g_string_append_printf (names, "%s%s", i > 0 ? " or " : "", name);
    }
  fail (v, error, _("expected %s, got %s"), names->str, node_type_name (instance));
  v->error_is_type = TRUE;
  return FALSE;
}

static gboolean
check_enum_const (Validation *v,
                  JsonObject *schema,
                  JsonNode   *instance,
                  GError    **error)
{
  JsonNode *value = json_object_get_member (schema, "const");
  JsonArray *choices;
  g_autofree gchar *got = NULL;
  g_autoptr(GString) list = NULL;

  if (value != NULL && !nodes_equal (value, instance))
    {
      g_autofree gchar *want = node_to_short_string (value);

      got = node_to_short_string (instance);
      return fail (v, error, _("must be %s, got %s"), want, got);
    }

  if (!json_object_has_member (schema, "enum"))
    return TRUE;
  choices = json_object_get_array_member (schema, "enum");
  list = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (choices); i++)
    {
      JsonNode *choice = json_array_get_element (choices, i);
      g_autofree gchar *str = NULL;

      if (nodes_equal (choice, instance))
        return TRUE;
      str = node_to_short_string (choice);
      g_string_append_printf (list, "%s%s", i > 0 ? ", " : "", str);
    }
  got = node_to_short_string (instance);
  return fail (v, error, _("must be one of %s; got %s"), list->str, got);
}

static gboolean
get_number_keyword (JsonObject  *schema,
                    const gchar *keyword,
                    gdouble     *out)
{
  JsonNode *node = json_object_get_member (schema, keyword);

  if (node == NULL || !node_is_number (node))
    return FALSE;
  *out = node_get_number (node);
  return TRUE;
}

static gboolean
check_number (Validation *v,
              JsonObject *schema,
              JsonNode   *instance,
              GError    **error)
{
  gdouble value;
  gdouble limit;
  g_autofree gchar *got = NULL;

  if (!node_is_number (instance))
    return TRUE;
  value = node_get_number (instance);
  got = node_to_short_string (instance);

  if (get_number_keyword (schema, "minimum", &limit) && value < limit)
    return fail (v, error, _("must be at least %g, got %s"), limit, got);
  if (get_number_keyword (schema, "maximum", &limit) && value > limit)
    return fail (v, error, _("must be at most %g, got %s"), limit, got);
  if (get_number_keyword (schema, "exclusiveMinimum", &limit) && value <= limit)
    return fail (v, error, _("must be greater than %g, got %s"), limit, got);
  if (get_number_keyword (schema, "exclusiveMaximum", &limit) && value >= limit)
    return fail (v, error, _("must be less than %g, got %s"), limit, got);
  return TRUE;
}

static gboolean
check_string (Validation *v,
              JsonObject *schema,
              JsonNode   *instance,
              GError    **error)
{
  const gchar *str;
  glong len;
  gdouble limit;

  if (!node_is_string (instance))
    return TRUE;
  str = json_node_get_string (instance);
  len = g_utf8_strlen (str, -1);

  if (get_number_keyword (schema, "minLength", &limit) && len < limit)
    return fail (v, error, _("must have at least %g characters, got %ld"), limit, len);
  if (get_number_keyword (schema, "maxLength", &limit) && len > limit)
    return fail (v, error, _("must have at most %g characters, got %ld"), limit, len);

  if (json_object_has_member (schema, "pattern"))
    {
      const gchar *pattern = json_object_get_string_member (schema, "pattern");
      GRegex *regex = g_hash_table_lookup (v->schema->regexes, pattern);

      if (regex != NULL && !g_regex_match (regex, str, 0, NULL))
        {
          g_autofree gchar *got = node_to_short_string (instance);
          return fail (v, error, _("%s does not match the pattern %s"), got, pattern);
        }
    }
  return TRUE;
}

/* Each item is looked up among those before it by hash: comparing every
 * pair took 2 min 40 s of the daemon's main loop for a recipe listing
 * 110,000 modules (under its 1 MiB limit). */
static gboolean
check_array_unique (Validation *v,
                    JsonArray  *array,
                    GError    **error)
{
  guint n = json_array_get_length (array);
  g_autoptr(GHashTable) seen = g_hash_table_new ((GHashFunc) node_hash, (GEqualFunc) nodes_equal);

  for (guint j = 0; j < n; j++)
    {
      JsonNode *item = json_array_get_element (array, j);
      gpointer first = g_hash_table_lookup (seen, item);

      if (first != NULL)
        return fail (v, error, _("items [%u] and [%u] are equal; items must be unique"),
                     GPOINTER_TO_UINT (first) - 1, j);
      g_hash_table_insert (seen, item, GUINT_TO_POINTER (j + 1));
    }
  return TRUE;
}

static gboolean
check_array (Validation *v,
             JsonObject *schema,
             JsonNode   *instance,
             GError    **error)
{
  JsonArray *array;
  JsonNode *items;
  guint n;
  gdouble limit;

  if (!JSON_NODE_HOLDS_ARRAY (instance))
    return TRUE;
  array = json_node_get_array (instance);
  n = json_array_get_length (array);

  if (get_number_keyword (schema, "minItems", &limit) && n < limit)
    return fail (v, error, _("must have at least %g items, got %u"), limit, n);
  if (get_number_keyword (schema, "maxItems", &limit) && n > limit)
    return fail (v, error, _("must have at most %g items, got %u"), limit, n);

  items = json_object_get_member (schema, "items");
  for (guint i = 0; items != NULL && i < n; i++)
    {
      gsize len = v->path->len;
      gboolean ok;

      path_push_index (v->path, i);
      ok = validate_node (v, items, json_array_get_element (array, i), error);
      g_string_truncate (v->path, len);
      if (!ok)
        return FALSE;
    }

  if (json_object_has_member (schema, "uniqueItems") &&
      json_object_get_boolean_member (schema, "uniqueItems"))
    return check_array_unique (v, array, error);
  return TRUE;
}

static gboolean
check_required (Validation *v,
                JsonObject *schema,
                JsonObject *object,
                GError    **error)
{
  JsonArray *required;

  if (!json_object_has_member (schema, "required"))
    return TRUE;
  required = json_object_get_array_member (schema, "required");
  for (guint i = 0; i < json_array_get_length (required); i++)
    {
      const gchar *name = json_array_get_string_element (required, i);

      if (!json_object_has_member (object, name))
        return fail (v, error, _("missing required property “%s”"), name);
    }
  return TRUE;
}

static gchar *
list_properties (JsonObject *schema)
{
  JsonObject *props;
  g_autoptr(GList) names = NULL;
  g_autoptr(GString) str = g_string_new (NULL);

  if (!json_object_has_member (schema, "properties"))
    return g_strdup ("");
  props = json_object_get_object_member (schema, "properties");
  names = json_object_get_members (props);
  for (GList *l = names; l != NULL; l = l->next)
    g_string_append_printf (str, "%s%s", l == names ? "" : ", ", (const gchar *) l->data);
  return g_string_free (g_steal_pointer (&str), FALSE);
}

/* Validates one member against properties, patternProperties and
 * additionalProperties; the path already names the member. */
static gboolean
check_member (Validation  *v,
              JsonObject  *schema,
              const gchar *key,
              JsonNode    *member,
              GError     **error)
{
  JsonNode *sub = NULL;
  JsonNode *additional;
  gboolean known = FALSE;

  if (json_object_has_member (schema, "properties"))
    sub = json_object_get_member (json_object_get_object_member (schema, "properties"), key);
  if (sub != NULL)
    {
      known = TRUE;
      if (!validate_node (v, sub, member, error))
        return FALSE;
    }

  if (json_object_has_member (schema, "patternProperties"))
    {
      JsonObjectIter iter;
      const gchar *pattern;
      JsonNode *psub;

      json_object_iter_init (&iter, json_object_get_object_member (schema, "patternProperties"));
      while (json_object_iter_next (&iter, &pattern, &psub))
        {
          GRegex *regex = g_hash_table_lookup (v->schema->regexes, pattern);

          if (regex == NULL || !g_regex_match (regex, key, 0, NULL))
            continue;
          known = TRUE;
          if (!validate_node (v, psub, member, error))
            return FALSE;
        }
    }

  additional = json_object_get_member (schema, "additionalProperties");
  if (known || additional == NULL)
    return TRUE;
  if (node_is_boolean (additional) && !json_node_get_boolean (additional))
    {
      g_autofree gchar *allowed = list_properties (schema);

      if (*allowed == '\0')
        return fail (v, error, _("unknown property"));
      return fail (v, error, _("unknown property (allowed: %s)"), allowed);
    }
  return validate_node (v, additional, member, error);
}

static gboolean
check_object (Validation *v,
              JsonObject *schema,
              JsonNode   *instance,
              GError    **error)
{
  JsonObject *object;
  JsonObjectIter iter;
  const gchar *key;
  JsonNode *member;
  gdouble limit;
  guint n;

  if (!JSON_NODE_HOLDS_OBJECT (instance))
    return TRUE;
  object = json_node_get_object (instance);
  n = json_object_get_size (object);

  if (!check_required (v, schema, object, error))
    return FALSE;
  if (get_number_keyword (schema, "minProperties", &limit) && n < limit)
    return fail (v, error, _("must have at least %g properties, got %u"), limit, n);
  if (get_number_keyword (schema, "maxProperties", &limit) && n > limit)
    return fail (v, error, _("must have at most %g properties, got %u"), limit, n);

  json_object_iter_init (&iter, object);
  while (json_object_iter_next (&iter, &key, &member))
    {
      gsize len = v->path->len;
      gboolean ok;

      path_push_key (v->path, key);
      ok = check_member (v, schema, key, member, error);
      g_string_truncate (v->path, len);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* The part of an error message after "<path>: " when the error was
 * raised at the current path, else the whole message. */
static const gchar *
error_problem (Validation *v,
               GError     *error)
{
  if (g_str_has_prefix (error->message, v->path->str) &&
      g_str_has_prefix (error->message + v->path->len, ": "))
    return error->message + v->path->len + 2;
  return error->message;
}

/* How far an alternative got before failing: deeper in the instance is
 * further, and at the same depth a failure after the type matched is
 * further than a type mismatch. */
static gsize
error_rank (Validation *v)
{
  return v->error_path_len * 2 + (v->error_is_type ? 0 : 1);
}

/* Runs every alternative of anyOf/oneOf; returns how many matched.
 * When none matched, *best_error is the error of the alternative that
 * got furthest, or a summary when every alternative failed on the type
 * of this very value. */
static guint
count_matches (Validation *v,
               JsonArray  *alternatives,
               JsonNode   *instance,
               GError    **best_error)
{
  guint matched = 0;
  gsize best_len = 0;
  gsize best_rank = 0;
  g_autoptr(GString) summary = g_string_new (NULL);
  g_autoptr(GError) best = NULL;

  for (guint i = 0; i < json_array_get_length (alternatives); i++)
    {
      g_autoptr(GError) local_error = NULL;

      if (validate_node (v, json_array_get_element (alternatives, i), instance, &local_error))
        {
          matched++;
          continue;
        }
      g_string_append_printf (summary, "%s%s", summary->len > 0 ? "; or " : "",
                              error_problem (v, local_error));
      if (best == NULL || error_rank (v) > best_rank)
        {
          best_rank = error_rank (v);
          best_len = v->error_path_len;
          g_clear_error (&best);
          best = g_steal_pointer (&local_error);
        }
    }

  if (matched > 0 || best == NULL)
    return matched;
  if (best_rank > v->path->len * 2)
    {
      v->error_path_len = best_len;
      v->error_is_type = FALSE;
      g_propagate_error (best_error, g_steal_pointer (&best));
      return 0;
    }
  fail (v, best_error, _("matches none of the allowed forms (%s)"), summary->str);
  return 0;
}

static gboolean
check_combinators (Validation *v,
                   JsonObject *schema,
                   JsonNode   *instance,
                   GError    **error)
{
  if (json_object_has_member (schema, "allOf"))
    {
      JsonArray *all = json_object_get_array_member (schema, "allOf");

      for (guint i = 0; i < json_array_get_length (all); i++)
        {
          if (!validate_node (v, json_array_get_element (all, i), instance, error))
            return FALSE;
        }
    }

  if (json_object_has_member (schema, "anyOf") &&
      count_matches (v, json_object_get_array_member (schema, "anyOf"), instance, error) == 0)
    return FALSE;

  if (json_object_has_member (schema, "oneOf"))
    {
      guint n = count_matches (v, json_object_get_array_member (schema, "oneOf"), instance, error);

      if (n == 0)
        return FALSE;
      if (n > 1)
        return fail (v, error, _("matches %u of the allowed forms, but must match exactly one"), n);
    }

  if (json_object_has_member (schema, "not"))
    {
      g_autoptr(GError) local_error = NULL;
      gsize saved = v->error_path_len;

      if (validate_node (v, json_object_get_member (schema, "not"), instance, &local_error))
        return fail (v, error, _("must not match the schema given in “not”"));
      v->error_path_len = saved;
    }
  return TRUE;
}

static gboolean
validate_object_schema (Validation *v,
                        JsonObject *schema,
                        JsonNode   *instance,
                        GError    **error)
{
  if (json_object_has_member (schema, "$ref"))
    {
      const gchar *ref = json_object_get_string_member (schema, "$ref");
      JsonNode *target = g_hash_table_lookup (v->schema->refs, ref);

      if (target != NULL && !validate_node (v, target, instance, error))
        return FALSE;
    }

  return check_type (v, schema, instance, error) &&
         check_enum_const (v, schema, instance, error) &&
         check_number (v, schema, instance, error) &&
         check_string (v, schema, instance, error) &&
         check_object (v, schema, instance, error) &&
         check_array (v, schema, instance, error) &&
         check_combinators (v, schema, instance, error);
}

static gboolean
validate_node (Validation *v,
               JsonNode   *schema,
               JsonNode   *instance,
               GError    **error)
{
  gboolean ok;

  if (node_is_boolean (schema))
    {
      if (json_node_get_boolean (schema))
        return TRUE;
      return fail (v, error, _("no value is allowed here"));
    }
  if (!JSON_NODE_HOLDS_OBJECT (schema))
    return TRUE;
  if (v->depth >= SHOAL_JSON_SCHEMA_MAX_DEPTH)
    return fail (v, error, _("nested too deeply (more than %u levels)"), SHOAL_JSON_SCHEMA_MAX_DEPTH);

  v->depth++;
  ok = validate_object_schema (v, json_node_get_object (schema), instance, error);
  v->depth--;
  return ok;
}

/* ---------------------------------------------------------------- */
/* Loading and checking a schema                                    */
/* ---------------------------------------------------------------- */

static JsonNode *
resolve_pointer (JsonNode    *root,
                 const gchar *ref)
{
  g_auto(GStrv) tokens = NULL;
  JsonNode *node = root;

  if (g_strcmp0 (ref, "#") == 0)
    return root;
  if (!g_str_has_prefix (ref, "#/"))
    return NULL;

  tokens = g_strsplit (ref + 2, "/", -1);
  for (guint i = 0; tokens[i] != NULL && node != NULL; i++)
    {
      g_autoptr(GString) token = g_string_new (tokens[i]);

      g_string_replace (token, "~1", "/", 0);
      g_string_replace (token, "~0", "~", 0);
      if (JSON_NODE_HOLDS_OBJECT (node))
        {
          node = json_object_get_member (json_node_get_object (node), token->str);
        }
      else if (JSON_NODE_HOLDS_ARRAY (node))
        {
          JsonArray *array = json_node_get_array (node);
          gchar *end = NULL;
          guint64 index = g_ascii_strtoull (token->str, &end, 10);

          if (end == token->str || *end != '\0' || index >= json_array_get_length (array))
            return NULL;
          node = json_array_get_element (array, (guint) index);
        }
      else
        {
          return NULL;
        }
    }
  return node;
}

typedef struct
{
  ShoalJsonSchema *self;
  GString         *where;  /* JSON pointer of the subschema being checked */
} SchemaCheck;

static gboolean check_subschema (SchemaCheck *c,
                                 JsonNode    *node,
                                 GError     **error);

static gboolean schema_fail (SchemaCheck *c,
                             GError     **error,
                             const gchar *format,
                             ...) G_GNUC_PRINTF (3, 4);

static gboolean
schema_fail (SchemaCheck *c,
             GError     **error,
             const gchar *format,
             ...)
{
  va_list args;
  g_autofree gchar *problem = NULL;

  va_start (args, format);
  problem = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               _("Invalid schema at #%s: %s"), c->where->str, problem);
  return FALSE;
}

static gboolean
check_child (SchemaCheck *c,
             const gchar *step,
             JsonNode    *node,
             GError     **error)
{
  gsize len = c->where->len;
  gboolean ok;

  g_string_append_printf (c->where, "/%s", step);
  ok = check_subschema (c, node, error);
  g_string_truncate (c->where, len);
  return ok;
}

static gboolean
check_regex (SchemaCheck *c,
             const gchar *pattern,
             GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GRegex) regex = NULL;

  if (g_hash_table_contains (c->self->regexes, pattern))
    return TRUE;
  /* $ ends the subject, not a final newline before it (PCRE's default) */
  regex = g_regex_new (pattern, G_REGEX_DOLLAR_ENDONLY, G_REGEX_MATCH_DEFAULT, &local_error);
  if (regex == NULL)
    return schema_fail (c, error, _("bad pattern %s: %s"), pattern, local_error->message);
  g_hash_table_insert (c->self->regexes, g_strdup (pattern), g_steal_pointer (&regex));
  return TRUE;
}

/* Keywords whose value is a map of name -> subschema */
static gboolean
check_schema_map (SchemaCheck *c,
                  JsonObject  *schema,
                  const gchar *keyword,
                  gboolean     keys_are_patterns,
                  GError     **error)
{
  JsonNode *map = json_object_get_member (schema, keyword);
  JsonObjectIter iter;
  const gchar *key;
  JsonNode *sub;

  if (map == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (map))
    return schema_fail (c, error, _("“%s” must be an object"), keyword);
  json_object_iter_init (&iter, json_node_get_object (map));
  while (json_object_iter_next (&iter, &key, &sub))
    {
      g_autofree gchar *step = g_strdup_printf ("%s/%s", keyword, key);

      if (keys_are_patterns && !check_regex (c, key, error))
        return FALSE;
      if (!check_child (c, step, sub, error))
        return FALSE;
    }
  return TRUE;
}

/* Keywords whose value is an array of subschemas */
static gboolean
check_schema_list (SchemaCheck *c,
                   JsonObject  *schema,
                   const gchar *keyword,
                   GError     **error)
{
  JsonNode *list = json_object_get_member (schema, keyword);
  JsonArray *array;

  if (list == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (list) || json_array_get_length (json_node_get_array (list)) == 0)
    return schema_fail (c, error, _("“%s” must be a non-empty array"), keyword);
  array = json_node_get_array (list);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      g_autofree gchar *step = g_strdup_printf ("%s/%u", keyword, i);

      if (!check_child (c, step, json_array_get_element (array, i), error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
check_string_array (SchemaCheck *c,
                    JsonObject  *schema,
                    const gchar *keyword,
                    GError     **error)
{
  JsonNode *node = json_object_get_member (schema, keyword);
  JsonArray *array;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return schema_fail (c, error, _("“%s” must be an array"), keyword);
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      if (!node_is_string (json_array_get_element (array, i)))
        return schema_fail (c, error, _("“%s” must hold only strings"), keyword);
    }
  return TRUE;
}

static gboolean
check_keyword_types (SchemaCheck *c,
                     JsonObject  *schema,
                     GError     **error)
{
  static const gchar *numeric[] = {
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
    "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
  };
  JsonNode *node;

  for (guint i = 0; i < G_N_ELEMENTS (numeric); i++)
    {
      node = json_object_get_member (schema, numeric[i]);
      if (node != NULL && !node_is_number (node))
        return schema_fail (c, error, _("“%s” must be a number"), numeric[i]);
    }
  node = json_object_get_member (schema, "type");
  if (node != NULL && !node_is_string (node) && !JSON_NODE_HOLDS_ARRAY (node))
    return schema_fail (c, error, _("“type” must be a string or an array of strings"));
  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node) && !check_string_array (c, schema, "type", error))
    return FALSE;
  node = json_object_get_member (schema, "enum");
  if (node != NULL && !JSON_NODE_HOLDS_ARRAY (node))
    return schema_fail (c, error, _("“enum” must be an array"));
  node = json_object_get_member (schema, "uniqueItems");
  if (node != NULL && !node_is_boolean (node))
    return schema_fail (c, error, _("“uniqueItems” must be a boolean"));
  node = json_object_get_member (schema, "pattern");
  if (node != NULL && !node_is_string (node))
    return schema_fail (c, error, _("“pattern” must be a string"));
  if (node != NULL && !check_regex (c, json_node_get_string (node), error))
    return FALSE;
  return check_string_array (c, schema, "required", error);
}

static gboolean
check_ref (SchemaCheck *c,
           JsonObject  *schema,
           GError     **error)
{
  JsonNode *node = json_object_get_member (schema, "$ref");
  const gchar *ref;
  JsonNode *target;

  if (node == NULL)
    return TRUE;
  if (!node_is_string (node))
    return schema_fail (c, error, _("“$ref” must be a string"));
  ref = json_node_get_string (node);
  target = resolve_pointer (c->self->root, ref);
  if (target == NULL)
    return schema_fail (c, error, _("“$ref” %s does not resolve within this schema"), ref);
  if (!node_is_boolean (target) && !JSON_NODE_HOLDS_OBJECT (target))
    return schema_fail (c, error, _("“$ref” %s does not point to a schema"), ref);
  g_hash_table_insert (c->self->refs, g_strdup (ref), target);
  return TRUE;
}

static gboolean
check_subschema (SchemaCheck *c,
                 JsonNode    *node,
                 GError     **error)
{
  JsonObject *schema;
  static const gchar *single[] = { "items", "additionalProperties", "not" };
  static const gchar *lists[] = { "allOf", "anyOf", "oneOf" };

  if (node_is_boolean (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return schema_fail (c, error, _("a schema must be an object or a boolean"));
  schema = json_node_get_object (node);

  if (!check_keyword_types (c, schema, error) || !check_ref (c, schema, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (single); i++)
    {
      JsonNode *sub = json_object_get_member (schema, single[i]);

      if (sub != NULL && !check_child (c, single[i], sub, error))
        return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    {
      if (!check_schema_list (c, schema, lists[i], error))
        return FALSE;
    }
  return check_schema_map (c, schema, "properties", FALSE, error) &&
         check_schema_map (c, schema, "patternProperties", TRUE, error) &&
         check_schema_map (c, schema, "$defs", FALSE, error) &&
         check_schema_map (c, schema, "definitions", FALSE, error);
}

static void
shoal_json_schema_finalize (GObject *object)
{
  ShoalJsonSchema *self = SHOAL_JSON_SCHEMA (object);

  g_clear_pointer (&self->regexes, g_hash_table_unref);
  g_clear_pointer (&self->refs, g_hash_table_unref);
  g_clear_pointer (&self->root, json_node_unref);

  G_OBJECT_CLASS (shoal_json_schema_parent_class)->finalize (object);
}

static void
shoal_json_schema_class_init (ShoalJsonSchemaClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = shoal_json_schema_finalize;
}

static void
shoal_json_schema_init (ShoalJsonSchema *self)
{
  self->regexes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_regex_unref);
  self->refs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static ShoalJsonSchema *
shoal_json_schema_new_for_root (JsonNode  *root,
                                GError   **error)
{
  g_autoptr(ShoalJsonSchema) self = g_object_new (SHOAL_TYPE_JSON_SCHEMA, NULL);
  g_autoptr(GString) where = g_string_new (NULL);
  SchemaCheck check = { self, where };

  self->root = json_node_ref (root);
  if (!check_subschema (&check, root, error))
    return NULL;
  json_node_seal (self->root);
  return g_steal_pointer (&self);
}

/**
 * shoal_json_schema_new_from_data:
 * @data: the schema as JSON text
 * @length: the length of @data, or -1 if it is nul-terminated
 * @error: return location for a #GError
 *
 * Parses and checks a schema.
 *
 * Returns: (transfer full): a new schema, or %NULL with
 *   %SHOAL_ERROR_INVALID_DATA set
 */
ShoalJsonSchema *
shoal_json_schema_new_from_data (const gchar  *data,
                                 gssize        length,
                                 GError      **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!json_parser_load_from_data (parser, data, length, &local_error))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("Invalid schema: %s"), local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                           _("Invalid schema: the document is empty"));
      return NULL;
    }
  return shoal_json_schema_new_for_root (root, error);
}

/**
 * shoal_json_schema_new_from_file:
 * @path: a file holding a JSON schema
 * @error: return location for a #GError
 *
 * Loads and checks a schema from a file.
 *
 * Returns: (transfer full): a new schema, or %NULL on error
 */
ShoalJsonSchema *
shoal_json_schema_new_from_file (const gchar  *path,
                                 GError      **error)
{
  g_autofree gchar *contents = NULL;
  gsize length = 0;
  g_autoptr(GError) local_error = NULL;
  ShoalJsonSchema *schema;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &contents, &length, &local_error))
    {
      g_set_error (error, SHOAL_ERROR,
                   g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                     ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_FAILED,
                   _("Reading schema: %s"), local_error->message);
      return NULL;
    }
  schema = shoal_json_schema_new_from_data (contents, (gssize) length, error);
  if (schema == NULL)
    g_prefix_error (error, "%s: ", path);
  return schema;
}

static gchar *
find_schema_file (const gchar *name)
{
  g_autofree gchar *basename = g_strdup_printf ("%s.schema.json", name);
  const gchar *dirs[] = { g_getenv ("SHOAL_SCHEMA_DIR"), SHOAL_SOURCE_SCHEMADIR, SHOAL_SCHEMADIR };

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree gchar *path = NULL;

      if (dirs[i] == NULL || *dirs[i] == '\0')
        continue;
      path = g_build_filename (dirs[i], basename, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&path);
    }
  return NULL;
}

G_LOCK_DEFINE_STATIC (schema_cache);
static GHashTable *schema_cache = NULL;  /* path -> ShoalJsonSchema */

/**
 * shoal_json_schema_new_for_name:
 * @name: a schema name such as "recipe" or "inventory"
 * @error: return location for a #GError
 *
 * Finds `<name>.schema.json` in, in this order: the directory named by
 * the environment variable `SHOAL_SCHEMA_DIR`, the source tree's
 * schemas/ (uninstalled runs), and the installed schema directory. A
 * schema is loaded once and cached; this function is thread-safe.
 *
 * Returns: (transfer full): the schema, or %NULL with
 *   %SHOAL_ERROR_NOT_FOUND or %SHOAL_ERROR_INVALID_DATA set
 */
ShoalJsonSchema *
shoal_json_schema_new_for_name (const gchar  *name,
                                GError      **error)
{
  g_autofree gchar *path = NULL;
  ShoalJsonSchema *schema;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (*name == '\0' || strchr (name, '/') != NULL || g_str_has_prefix (name, "."))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Invalid schema name “%s”"), name);
      return NULL;
    }
  path = find_schema_file (name);
  if (path == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   _("No schema named “%s” (looked for %s.schema.json in $SHOAL_SCHEMA_DIR, %s and %s)"),
                   name, name, SHOAL_SOURCE_SCHEMADIR, SHOAL_SCHEMADIR);
      return NULL;
    }

  G_LOCK (schema_cache);
  if (schema_cache == NULL)
    schema_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  schema = g_hash_table_lookup (schema_cache, path);
  if (schema != NULL)
    {
      g_object_ref (schema);
    }
  else
    {
      schema = shoal_json_schema_new_from_file (path, error);
      if (schema != NULL)
        g_hash_table_insert (schema_cache, g_strdup (path), g_object_ref (schema));
    }
  G_UNLOCK (schema_cache);
  return schema;
}

/* json-glib reads a number beyond a double's range (1e400) as infinity,
 * which no JSON text can hold: json_to_string writes it as "inf.0", which
 * it cannot read back. Every number of the instance, whatever the schema
 * says of its place, must be finite. */
static gboolean
check_finite (Validation *v,
              JsonNode   *node,
              guint       depth,
              GError    **error)
{
  gsize len = v->path->len;

  if (depth >= SHOAL_JSON_SCHEMA_MAX_DEPTH)
    return fail (v, error, _("nested too deeply (more than %u levels)"), SHOAL_JSON_SCHEMA_MAX_DEPTH);
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          path_push_index (v->path, i);
          if (!check_finite (v, json_array_get_element (array, i), depth + 1, error))
            return FALSE;
          g_string_truncate (v->path, len);
        }
    }
  else if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      const gchar *key;
      JsonNode *member;

      json_object_iter_init (&iter, json_node_get_object (node));
      while (json_object_iter_next (&iter, &key, &member))
        {
          path_push_key (v->path, key);
          if (!check_finite (v, member, depth + 1, error))
            return FALSE;
          g_string_truncate (v->path, len);
        }
    }
  else if (node_is_number (node) && !isfinite (node_get_number (node)))
    {
      return fail (v, error, _("number out of range"));
    }
  return TRUE;
}

/**
 * shoal_json_schema_validate:
 * @self: a #ShoalJsonSchema
 * @instance: the JSON value to check
 * @error: return location for a #GError
 *
 * Checks @instance against the schema. On failure the error is
 * %SHOAL_ERROR_INVALID_DATA and its message starts with the JSON path of
 * the offending value, as in `$.steps[2].options.rate: expected integer,
 * got string`.
 *
 * Returns: %TRUE if @instance is valid
 */
gboolean
shoal_json_schema_validate (ShoalJsonSchema  *self,
                            JsonNode         *instance,
                            GError          **error)
{
  g_autoptr(GString) path = g_string_new ("$");
  Validation v = { self, path, 0, 0, FALSE };

  g_return_val_if_fail (SHOAL_IS_JSON_SCHEMA (self), FALSE);
  g_return_val_if_fail (instance != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return check_finite (&v, instance, 0, error) && validate_node (&v, self->root, instance, error);
}
