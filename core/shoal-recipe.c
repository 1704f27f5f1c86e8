/* shoal-recipe.c: a versioned deployment recipe
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A recipe is a JSON document validated against
 * schemas/recipe.schema.json (which documents every member), then
 * checked for what a schema cannot say: step ids unique within the
 * recipe, group max-devices at least min-devices, comparison operators
 * given values of the right type. A recipe is immutable once built,
 * except for the commit it came from (set by the recipe repository).
 *
 * Errors are %SHOAL_ERROR_INVALID_RECIPE with a message of the form
 * `<source>: $.json.path: problem`.
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "shoal-error.h"
#include "shoal-json-private.h"
#include "shoal-json-schema.h"
#include "shoal-recipe.h"

/* Recipes are small documents; these bound the work done on hostile input */
#define SHOAL_RECIPE_MAX_SIZE  (1024 * 1024)
#define SHOAL_RECIPE_MAX_DEPTH 64

typedef struct
{
  gchar      *name;
  gchar      *id;
  JsonObject *options;
  gint        max_parallel;
  gint        timeout;
} RecipeStep;

struct _ShoalRecipe
{
  GObject     parent_instance;

  JsonNode   *root;
  gchar      *source;
  gchar      *commit;
  gchar      *digest;        /* SHA-256 of the canonical JSON */
  const gchar *name;         /* borrowed from root */
  const gchar *description;  /* borrowed from root, may be NULL */
  GArray     *steps;         /* of RecipeStep */
  gint        priority;
  gboolean    is_default;
  guint       group_min;
  guint       group_max;
  guint       group_max_wait;
  gboolean    group_wait_all;
  gboolean    late_unicast;
};

G_DEFINE_TYPE (ShoalRecipe, shoal_recipe, G_TYPE_OBJECT)

static void
recipe_step_clear (gpointer data)
{
  RecipeStep *step = data;

  g_clear_pointer (&step->name, g_free);
  g_clear_pointer (&step->id, g_free);
  g_clear_pointer (&step->options, json_object_unref);
}

static void
shoal_recipe_finalize (GObject *object)
{
  ShoalRecipe *self = SHOAL_RECIPE (object);

  g_clear_pointer (&self->steps, g_array_unref);
  g_clear_pointer (&self->root, json_node_unref);
  g_clear_pointer (&self->source, g_free);
  g_clear_pointer (&self->commit, g_free);
  g_clear_pointer (&self->digest, g_free);

  G_OBJECT_CLASS (shoal_recipe_parent_class)->finalize (object);
}

static void
shoal_recipe_class_init (ShoalRecipeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = shoal_recipe_finalize;
}

static void
shoal_recipe_init (ShoalRecipe *self)
{
  self->steps = g_array_new (FALSE, TRUE, sizeof (RecipeStep));
  g_array_set_clear_func (self->steps, recipe_step_clear);
  self->group_min = 1;
  self->group_max = 0;
  self->group_max_wait = 60;
}

/* ---------------------------------------------------------------- */
/* Checks a schema cannot express                                   */
/* ---------------------------------------------------------------- */

static gboolean recipe_fail (GError     **error,
                             const gchar *source,
                             const gchar *format,
                             ...) G_GNUC_PRINTF (3, 4);

static gboolean
recipe_fail (GError     **error,
             const gchar *source,
             const gchar *format,
             ...)
{
  va_list args;
  g_autofree gchar *problem = NULL;

  va_start (args, format);
  problem = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE, "%s: %s", source, problem);
  return FALSE;
}

static const gchar *
step_id_of (JsonNode *step)
{
  JsonObject *object;

  if (JSON_NODE_HOLDS_VALUE (step))
    return json_node_get_string (step);
  object = json_node_get_object (step);
  if (json_object_has_member (object, "id"))
    return json_object_get_string_member (object, "id");
  return json_object_get_string_member (object, "step");
}

static gboolean
check_unique_step_ids (JsonObject  *root,
                       const gchar *source,
                       GError     **error)
{
  JsonArray *steps = json_object_get_array_member (root, "steps");
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < json_array_get_length (steps); i++)
    {
      JsonNode *step = json_array_get_element (steps, i);
      const gchar *id = step_id_of (step);
      gpointer first;

      if (g_hash_table_lookup_extended (seen, id, NULL, &first))
        {
          gboolean explicit_id = JSON_NODE_HOLDS_OBJECT (step) &&
                                 json_object_has_member (json_node_get_object (step), "id");

          return recipe_fail (error, source,
                              _("$.steps[%u]%s: step id “%s” is already used by $.steps[%u]; give each step a unique “id”"),
                              i, explicit_id ? ".id" : "", id, GPOINTER_TO_UINT (first));
        }
      g_hash_table_insert (seen, (gpointer) id, GUINT_TO_POINTER (i));
    }
  return TRUE;
}

static gboolean
check_group (JsonObject  *root,
             const gchar *source,
             GError     **error)
{
  JsonObject *group;
  gint64 min = 1;
  gint64 max;

  if (!json_object_has_member (root, "group"))
    return TRUE;
  group = json_object_get_object_member (root, "group");
  if (!json_object_has_member (group, "max-devices"))
    return TRUE;
  max = json_object_get_int_member (group, "max-devices");
  if (json_object_has_member (group, "min-devices"))
    min = json_object_get_int_member (group, "min-devices");
  if (max != 0 && max < min)
    return recipe_fail (error, source,
                        _("$.group.max-devices: must be 0 (no limit) or at least min-devices (%lld), got %lld"),
                        (long long) min, (long long) max);
  return TRUE;
}

static gboolean
check_condition (JsonObject  *condition,
                 guint        index,
                 const gchar *source,
                 GError     **error)
{
  const gchar *op = json_object_get_string_member (condition, "op");
  JsonNode *value = json_object_get_member (condition, "value");
  gboolean numeric_op = g_strcmp0 (op, ">=") == 0 || g_strcmp0 (op, "<=") == 0 ||
                        g_strcmp0 (op, ">") == 0 || g_strcmp0 (op, "<") == 0;
  GType type = JSON_NODE_HOLDS_VALUE (value) ? json_node_get_value_type (value) : G_TYPE_INVALID;

  if (numeric_op && type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
    return recipe_fail (error, source,
                        _("$.match.inventory[%u].value: operator “%s” needs a number"),
                        index, op);
  if (g_strcmp0 (op, "matches") == 0 && type != G_TYPE_STRING)
    return recipe_fail (error, source,
                        _("$.match.inventory[%u].value: operator “matches” needs a glob string"),
                        index);
  return TRUE;
}

static gboolean
check_conditions (JsonObject  *root,
                  const gchar *source,
                  GError     **error)
{
  JsonObject *match;
  JsonArray *conditions;

  if (!json_object_has_member (root, "match"))
    return TRUE;
  match = json_object_get_object_member (root, "match");
  if (!json_object_has_member (match, "inventory"))
    return TRUE;
  conditions = json_object_get_array_member (match, "inventory");
  for (guint i = 0; i < json_array_get_length (conditions); i++)
    {
      JsonObject *condition = json_array_get_object_element (conditions, i);

      if (!check_condition (condition, i, source, error))
        return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------- */
/* Building                                                         */
/* ---------------------------------------------------------------- */

static gint
member_int (JsonObject  *object,
            const gchar *name,
            gint         fallback)
{
  if (object == NULL || !json_object_has_member (object, name))
    return fallback;
  return (gint) json_object_get_int_member (object, name);
}

static gboolean
member_bool (JsonObject  *object,
             const gchar *name,
             gboolean     fallback)
{
  if (object == NULL || !json_object_has_member (object, name))
    return fallback;
  return json_object_get_boolean_member (object, name);
}

static void
add_step (ShoalRecipe *self,
          JsonNode    *node)
{
  RecipeStep step = { NULL, };
  JsonObject *object;

  if (JSON_NODE_HOLDS_VALUE (node))
    {
      step.name = g_strdup (json_node_get_string (node));
      step.id = g_strdup (step.name);
      step.options = json_object_new ();
      json_object_seal (step.options);
      g_array_append_val (self->steps, step);
      return;
    }

  object = json_node_get_object (node);
  step.name = g_strdup (json_object_get_string_member (object, "step"));
  step.id = g_strdup (step_id_of (node));
  if (json_object_has_member (object, "options"))
    step.options = json_object_ref (json_object_get_object_member (object, "options"));
  else
    step.options = json_object_new ();
  json_object_seal (step.options);
  step.max_parallel = member_int (object, "max-parallel", 0);
  step.timeout = member_int (object, "timeout", 0);
  g_array_append_val (self->steps, step);
}

static void
shoal_recipe_load (ShoalRecipe *self)
{
  JsonObject *root = json_node_get_object (self->root);
  JsonObject *group = NULL;
  JsonArray *steps = json_object_get_array_member (root, "steps");
  const gchar *fallback = NULL;

  self->name = json_object_get_string_member (root, "name");
  if (json_object_has_member (root, "description"))
    self->description = json_object_get_string_member (root, "description");
  self->priority = member_int (root, "priority", 0);
  self->is_default = member_bool (root, "default", FALSE);

  for (guint i = 0; i < json_array_get_length (steps); i++)
    add_step (self, json_array_get_element (steps, i));

  if (json_object_has_member (root, "group"))
    group = json_object_get_object_member (root, "group");
  self->group_min = (guint) member_int (group, "min-devices", 1);
  self->group_max = (guint) member_int (group, "max-devices", 0);
  self->group_max_wait = (guint) member_int (group, "max-wait", 60);
  self->group_wait_all = member_bool (group, "wait-for-all", FALSE);
  if (group != NULL && json_object_has_member (group, "late-fallback"))
    fallback = json_object_get_string_member (group, "late-fallback");
  self->late_unicast = g_strcmp0 (fallback, "unicast") == 0;
}

/**
 * shoal_recipe_new_from_json:
 * @root: the recipe document
 * @source: (nullable): where the recipe comes from (a file name), used in
 *   error messages
 * @error: return location for a #GError
 *
 * Validates @root against the recipe schema and builds a recipe from a
 * private copy of it.
 *
 * Returns: (transfer full): a new recipe, or %NULL with
 *   %SHOAL_ERROR_INVALID_RECIPE set (message `<source>: $.path: problem`)
 */
ShoalRecipe *
shoal_recipe_new_from_json (JsonNode     *root,
                            const gchar  *source,
                            GError      **error)
{
  g_autoptr(ShoalJsonSchema) schema = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(ShoalRecipe) self = NULL;
  g_autofree gchar *text = NULL;
  JsonObject *object;

  g_return_val_if_fail (root != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (source == NULL)
    source = "recipe";
  schema = shoal_json_schema_new_for_name ("recipe", error);
  if (schema == NULL)
    {
      g_prefix_error (error, _("Loading the recipe schema: "));
      return NULL;
    }
  if (!shoal_json_schema_validate (schema, root, &local_error))
    {
      recipe_fail (error, source, "%s", local_error->message);
      return NULL;
    }

  object = json_node_get_object (root);
  if (!check_unique_step_ids (object, source, error) ||
      !check_group (object, source, error) ||
      !check_conditions (object, source, error))
    return NULL;

  self = g_object_new (SHOAL_TYPE_RECIPE, NULL);
  self->source = g_strdup (source);
  /* A deep copy the caller cannot change under us */
  text = json_to_string (root, FALSE);
  self->root = json_from_string (text, &local_error);
  if (self->root == NULL)
    {
      recipe_fail (error, source, "%s", local_error->message);
      return NULL;
    }
  json_node_seal (self->root);
  g_clear_pointer (&text, g_free);
  text = shoal_json_to_canonical (self->root);
  self->digest = g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
  shoal_recipe_load (self);
  return g_steal_pointer (&self);
}

/**
 * shoal_recipe_new_from_data:
 * @data: the recipe as JSON text
 * @length: the length of @data, or -1 if it is nul-terminated
 * @source: (nullable): where the recipe comes from, used in error messages
 * @error: return location for a #GError
 *
 * Parses and validates a recipe.
 *
 * Returns: (transfer full): a new recipe, or %NULL with
 *   %SHOAL_ERROR_INVALID_RECIPE set
 */
ShoalRecipe *
shoal_recipe_new_from_data (const gchar  *data,
                            gssize        length,
                            const gchar  *source,
                            GError      **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;
  gsize len;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (source == NULL)
    source = "recipe";
  len = length < 0 ? strlen (data) : (gsize) length;
  if (len > SHOAL_RECIPE_MAX_SIZE)
    {
      recipe_fail (error, source, _("the recipe is larger than %u bytes"), SHOAL_RECIPE_MAX_SIZE);
      return NULL;
    }
  if (!shoal_json_check_depth (data, len, SHOAL_RECIPE_MAX_DEPTH))
    {
      recipe_fail (error, source, _("JSON nested more than %u levels deep"), SHOAL_RECIPE_MAX_DEPTH);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      /* json-glib names the text "<data>"; name the source instead */
      if (g_str_has_prefix (local_error->message, "<data>:"))
        recipe_fail (error, source, _("invalid JSON at %s"), local_error->message + strlen ("<data>:"));
      else
        recipe_fail (error, source, _("invalid JSON: %s"), local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      recipe_fail (error, source, _("the document is empty"));
      return NULL;
    }
  return shoal_recipe_new_from_json (root, source, error);
}

/**
 * shoal_recipe_new_from_file:
 * @path: a recipe file
 * @error: return location for a #GError
 *
 * Loads a recipe; errors name @path.
 *
 * Returns: (transfer full): a new recipe, or %NULL on error
 */
ShoalRecipe *
shoal_recipe_new_from_file (const gchar  *path,
                            GError      **error)
{
  g_autofree gchar *contents = NULL;
  gsize length = 0;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &contents, &length, &local_error))
    {
      g_set_error (error, SHOAL_ERROR,
                   g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                     ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_FAILED,
                   _("Reading recipe: %s"), local_error->message);
      return NULL;
    }
  return shoal_recipe_new_from_data (contents, (gssize) length, path, error);
}

/* ---------------------------------------------------------------- */
/* Accessors                                                        */
/* ---------------------------------------------------------------- */

const gchar *
shoal_recipe_get_name (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return self->name;
}

/**
 * shoal_recipe_get_description:
 * @self: a #ShoalRecipe
 *
 * Returns: (nullable): the description, or %NULL when the recipe has none
 */
const gchar *
shoal_recipe_get_description (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return self->description;
}

/**
 * shoal_recipe_get_source:
 * @self: a #ShoalRecipe
 *
 * Returns: where the recipe was read from (a file name, or
 *   recipes/<name>.json inside a recipe repository)
 */
const gchar *
shoal_recipe_get_source (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return self->source;
}

/**
 * shoal_recipe_get_commit:
 * @self: a #ShoalRecipe
 *
 * Returns: (nullable): the full git commit id the recipe was read from,
 *   or %NULL when it did not come from a repository
 */
const gchar *
shoal_recipe_get_commit (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return self->commit;
}

/**
 * shoal_recipe_get_digest:
 * @self: a #ShoalRecipe
 *
 * What identifies the recipe's content whatever its source or commit:
 * the SHA-256 of its canonical JSON (the members of every object in the
 * byte order of their names, no whitespace), so that the same document
 * reformatted or with its members in another order has the same digest.
 *
 * Returns: 64 lower-case hexadecimal digits
 */
const gchar *
shoal_recipe_get_digest (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return self->digest;
}

/**
 * shoal_recipe_set_commit:
 * @self: a #ShoalRecipe
 * @commit: (nullable): the full git commit id
 *
 * Records the commit the recipe was read from. Meant to be called by
 * whoever built the recipe, before the recipe is shared with other
 * threads (a recipe is otherwise immutable).
 */
void
shoal_recipe_set_commit (ShoalRecipe *self,
                         const gchar *commit)
{
  g_return_if_fail (SHOAL_IS_RECIPE (self));
  if (g_strcmp0 (self->commit, commit) == 0)
    return;
  g_free (self->commit);
  self->commit = g_strdup (commit);
}

/**
 * shoal_recipe_get_json:
 * @self: a #ShoalRecipe
 *
 * Returns: (transfer none): the recipe document (sealed: do not modify)
 */
JsonNode *
shoal_recipe_get_json (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return self->root;
}

/**
 * shoal_recipe_to_data:
 * @self: a #ShoalRecipe
 *
 * Returns: (transfer full): the recipe as pretty-printed JSON text
 */
gchar *
shoal_recipe_to_data (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return json_to_string (self->root, TRUE);
}

guint
shoal_recipe_get_n_steps (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), 0);
  return self->steps->len;
}

static RecipeStep *
get_step (ShoalRecipe *self,
          guint        index)
{
  if (index >= self->steps->len)
    return NULL;
  return &g_array_index (self->steps, RecipeStep, index);
}

/**
 * shoal_recipe_get_step_name:
 * @self: a #ShoalRecipe
 * @index: the step index, from 0
 *
 * Returns: (nullable): the name of the step the plugin provides, or
 *   %NULL when @index is out of range
 */
const gchar *
shoal_recipe_get_step_name (ShoalRecipe *self,
                            guint        index)
{
  RecipeStep *step;

  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  step = get_step (self, index);
  return step != NULL ? step->name : NULL;
}

/**
 * shoal_recipe_get_step_id:
 * @self: a #ShoalRecipe
 * @index: the step index, from 0
 *
 * Returns: (nullable): the step's id, unique in the recipe (the step name
 *   unless the recipe gives one), or %NULL when @index is out of range
 */
const gchar *
shoal_recipe_get_step_id (ShoalRecipe *self,
                          guint        index)
{
  RecipeStep *step;

  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  step = get_step (self, index);
  return step != NULL ? step->id : NULL;
}

/**
 * shoal_recipe_get_step_options:
 * @self: a #ShoalRecipe
 * @index: the step index, from 0
 *
 * Returns: (transfer none): the step's options; an empty object when the
 *   recipe gives none. %NULL only when @index is out of range. Do not modify.
 */
JsonObject *
shoal_recipe_get_step_options (ShoalRecipe *self,
                               guint        index)
{
  RecipeStep *step;

  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  step = get_step (self, index);
  g_return_val_if_fail (step != NULL, NULL);
  return step->options;
}

/**
 * shoal_recipe_get_step_max_parallel:
 * @self: a #ShoalRecipe
 * @index: the step index, from 0
 *
 * Returns: the step's concurrency limit, 0 when the recipe sets none
 */
gint
shoal_recipe_get_step_max_parallel (ShoalRecipe *self,
                                    guint        index)
{
  RecipeStep *step;

  g_return_val_if_fail (SHOAL_IS_RECIPE (self), 0);
  step = get_step (self, index);
  return step != NULL ? step->max_parallel : 0;
}

/**
 * shoal_recipe_get_step_timeout:
 * @self: a #ShoalRecipe
 * @index: the step index, from 0
 *
 * Returns: the step's timeout in seconds, 0 when the recipe sets none
 */
gint
shoal_recipe_get_step_timeout (ShoalRecipe *self,
                               guint        index)
{
  RecipeStep *step;

  g_return_val_if_fail (SHOAL_IS_RECIPE (self), 0);
  step = get_step (self, index);
  return step != NULL ? step->timeout : 0;
}

static JsonObject *
get_object_member (ShoalRecipe *self,
                   const gchar *name)
{
  JsonObject *root = json_node_get_object (self->root);

  if (!json_object_has_member (root, name))
    return NULL;
  return json_object_get_object_member (root, name);
}

/**
 * shoal_recipe_get_image:
 * @self: a #ShoalRecipe
 *
 * Returns: (transfer none) (nullable): the "image" object (name, id, file)
 */
JsonObject *
shoal_recipe_get_image (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return get_object_member (self, "image");
}

/**
 * shoal_recipe_get_image_name:
 * @self: a #ShoalRecipe
 *
 * Returns: (nullable): the image name, %NULL when the recipe names none
 */
const gchar *
shoal_recipe_get_image_name (ShoalRecipe *self)
{
  JsonObject *image;

  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  image = get_object_member (self, "image");
  return image != NULL ? json_object_get_string_member (image, "name") : NULL;
}

/**
 * shoal_recipe_get_match:
 * @self: a #ShoalRecipe
 *
 * Returns: (transfer none) (nullable): the "match" object (macs, inventory)
 */
JsonObject *
shoal_recipe_get_match (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return get_object_member (self, "match");
}

/**
 * shoal_recipe_get_drivers:
 * @self: a #ShoalRecipe
 *
 * Returns: (transfer none) (nullable): the "drivers" object (add, forbid, kernel)
 */
JsonObject *
shoal_recipe_get_drivers (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return get_object_member (self, "drivers");
}

/**
 * shoal_recipe_get_boot:
 * @self: a #ShoalRecipe
 *
 * Returns: (transfer none) (nullable): the "boot" object (kernel, initrd, cmdline)
 */
JsonObject *
shoal_recipe_get_boot (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), NULL);
  return get_object_member (self, "boot");
}

gint
shoal_recipe_get_priority (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), 0);
  return self->priority;
}

gboolean
shoal_recipe_get_is_default (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), FALSE);
  return self->is_default;
}

/**
 * shoal_recipe_get_group_min:
 * @self: a #ShoalRecipe
 *
 * Returns: group.min-devices (default 1)
 */
guint
shoal_recipe_get_group_min (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), 1);
  return self->group_min;
}

/**
 * shoal_recipe_get_group_max:
 * @self: a #ShoalRecipe
 *
 * Returns: group.max-devices, 0 for no limit (the default)
 */
guint
shoal_recipe_get_group_max (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), 0);
  return self->group_max;
}

/**
 * shoal_recipe_get_group_max_wait:
 * @self: a #ShoalRecipe
 *
 * Returns: group.max-wait in seconds (default 60)
 */
guint
shoal_recipe_get_group_max_wait (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), 60);
  return self->group_max_wait;
}

/**
 * shoal_recipe_get_group_wait_all:
 * @self: a #ShoalRecipe
 *
 * Returns: group.wait-for-all (default %FALSE)
 */
gboolean
shoal_recipe_get_group_wait_all (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), FALSE);
  return self->group_wait_all;
}

/**
 * shoal_recipe_get_late_fallback:
 * @self: a #ShoalRecipe
 *
 * Returns: %TRUE when group.late-fallback is "unicast" (a device arriving
 *   after its group started fetches the image on its own), %FALSE for
 *   "next-group" (the default: it waits for the next group)
 */
gboolean
shoal_recipe_get_late_fallback (ShoalRecipe *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE (self), FALSE);
  return self->late_unicast;
}
