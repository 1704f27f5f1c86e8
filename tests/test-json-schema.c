/* test-json-schema.c: the JSON Schema validator
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "shoal-error.h"
#include "shoal-json-schema.h"

/* Validates @instance against @schema; @expected is NULL when it must
 * pass, else the exact error message. */
static void
check (const gchar *schema_text,
       const gchar *instance_text,
       const gchar *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalJsonSchema) schema = shoal_json_schema_new_from_data (schema_text, -1, &error);
  g_autoptr(JsonNode) instance = NULL;
  gboolean ok;

  g_assert_no_error (error);
  g_assert_nonnull (schema);
  instance = json_from_string (instance_text, &error);
  g_assert_no_error (error);

  ok = shoal_json_schema_validate (schema, instance, &error);
  if (expected == NULL)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      return;
    }
  g_assert_false (ok);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
test_type (void)
{
  check ("{\"type\":\"integer\"}", "3", NULL);
  check ("{\"type\":\"integer\"}", "3.0", NULL);
  check ("{\"type\":\"integer\"}", "3.5", "$: expected integer, got number");
  check ("{\"type\":\"integer\"}", "\"3\"", "$: expected integer, got string");
  check ("{\"type\":\"number\"}", "3", NULL);
  check ("{\"type\":\"number\"}", "3.5", NULL);
  check ("{\"type\":\"number\"}", "true", "$: expected number, got boolean");
  check ("{\"type\":\"string\"}", "\"x\"", NULL);
  check ("{\"type\":\"boolean\"}", "false", NULL);
  check ("{\"type\":\"null\"}", "null", NULL);
  check ("{\"type\":\"null\"}", "0", "$: expected null, got integer");
  check ("{\"type\":\"object\"}", "{}", NULL);
  check ("{\"type\":\"object\"}", "[]", "$: expected object, got array");
  check ("{\"type\":\"array\"}", "[]", NULL);
  check ("{\"type\":[\"string\",\"null\"]}", "null", NULL);
  check ("{\"type\":[\"string\",\"null\"]}", "\"a\"", NULL);
  check ("{\"type\":[\"string\",\"null\"]}", "1", "$: expected string or null, got integer");
}

static void
test_enum_const (void)
{
  check ("{\"enum\":[\"unicast\",\"next-group\",3]}", "\"unicast\"", NULL);
  check ("{\"enum\":[\"unicast\",\"next-group\",3]}", "3.0", NULL);
  check ("{\"enum\":[\"unicast\",\"next-group\"]}", "\"x\"",
         "$: must be one of \"unicast\", \"next-group\"; got \"x\"");
  check ("{\"const\":{\"a\":[1,2]}}", "{\"a\":[1,2]}", NULL);
  check ("{\"const\":{\"a\":[1,2]}}", "{\"a\":[2,1]}", "$: must be {\"a\":[1,2]}, got {\"a\":[2,1]}");
}

static void
test_numbers (void)
{
  check ("{\"minimum\":1,\"maximum\":10}", "1", NULL);
  check ("{\"minimum\":1,\"maximum\":10}", "10", NULL);
  check ("{\"minimum\":1}", "0", "$: must be at least 1, got 0");
  check ("{\"maximum\":10}", "10.5", "$: must be at most 10, got 10.5");
  check ("{\"exclusiveMinimum\":0}", "0", "$: must be greater than 0, got 0");
  check ("{\"exclusiveMinimum\":0}", "0.1", NULL);
  check ("{\"exclusiveMaximum\":5}", "5", "$: must be less than 5, got 5");
  /* number keywords ignore other types */
  check ("{\"minimum\":1}", "\"a\"", NULL);
}

static void
test_strings (void)
{
  check ("{\"minLength\":2,\"maxLength\":3}", "\"ab\"", NULL);
  check ("{\"minLength\":2}", "\"a\"", "$: must have at least 2 characters, got 1");
  check ("{\"maxLength\":3}", "\"abcd\"", "$: must have at most 3 characters, got 4");
  /* characters, not bytes */
  check ("{\"maxLength\":2}", "\"\xc3\xa9\xc3\xa9\"", NULL);
  check ("{\"pattern\":\"^[0-9a-f]+$\"}", "\"c0ffee\"", NULL);
  check ("{\"pattern\":\"^[0-9a-f]+$\"}", "\"coffee\"", "$: \"coffee\" does not match the pattern ^[0-9a-f]+$");
  /* unanchored unless the pattern anchors */
  check ("{\"pattern\":\"b\"}", "\"abc\"", NULL);
  /* $ is the end, not before a final newline ("sda\n" became /dev/sda\n) */
  check ("{\"pattern\":\"^[a-z]+$\"}", "\"sda\\n\"", "$: \"sda\\n\" does not match the pattern ^[a-z]+$");
}

static void
test_arrays (void)
{
  const gchar *schema = "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}";

  check (schema, "[1,2,3]", NULL);
  check (schema, "[]", "$: must have at least 1 items, got 0");
  check (schema, "[1,2,3,4]", "$: must have at most 3 items, got 4");
  check (schema, "[1,\"2\"]", "$[1]: expected integer, got string");
  check ("{\"uniqueItems\":true}", "[1,\"1\",{\"a\":1},{\"a\":2}]", NULL);
  check ("{\"uniqueItems\":true}", "[1,2,1.0]", "$: items [0] and [2] are equal; items must be unique");
  check ("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]",
         "$: items [0] and [1] are equal; items must be unique");
  check ("{\"uniqueItems\":true}", "[\"a\",\"b\",\"b\",\"a\"]",
         "$: items [1] and [2] are equal; items must be unique");
  check ("{\"uniqueItems\":true}", "[0,[1,{}],-0.0,[1,{}]]",
         "$: items [0] and [2] are equal; items must be unique");
  check ("{\"uniqueItems\":true}", "[[1,{\"a\":[]}],[1,{\"a\":{}}],null,true,false]", NULL);
  check ("{\"items\":false}", "[]", NULL);
  check ("{\"items\":false}", "[1]", "$[0]: no value is allowed here");
}

/* uniqueItems over 200,000 strings: each looked up among the others by
 * hash (comparing every pair would take minutes), the one repeated found */
static void
test_unique_large (void)
{
  g_autoptr(ShoalJsonSchema) schema = shoal_json_schema_new_from_data ("{\"uniqueItems\":true}", -1, NULL);
  g_autoptr(JsonArray) array = json_array_new ();
  g_autoptr(JsonNode) instance = json_node_new (JSON_NODE_ARRAY);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 200000; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("module%u", i);

      json_array_add_string_element (array, name);
    }
  json_node_set_array (instance, array);
  g_assert_true (shoal_json_schema_validate (schema, instance, &error));
  g_assert_no_error (error);
  json_array_add_string_element (array, "module123456");
  g_assert_false (shoal_json_schema_validate (schema, instance, &error));
  g_assert_cmpstr (error->message, ==, "$: items [123456] and [200000] are equal; items must be unique");
}

/* a number json-glib read as infinity is refused wherever it is */
static void
test_not_finite (void)
{
  check ("{}", "[1,{\"x\":1e400}]", "$[1].x: number out of range");
  check ("{\"type\":\"number\"}", "-1e999", "$: number out of range");
  check ("{}", "[1e308,-1e308,5e-324]", NULL);
}

static void
test_objects (void)
{
  const gchar *schema =
    "{\"type\":\"object\",\"required\":[\"name\"],"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"}},"
    "\"additionalProperties\":false}";

  check (schema, "{\"name\":\"a\",\"n\":1}", NULL);
  check (schema, "{\"n\":1}", "$: missing required property “name”");
  check (schema, "{\"name\":1}", "$.name: expected string, got integer");
  check (schema, "{\"name\":\"a\",\"nn\":1}", "$.nn: unknown property (allowed: name, n)");
  check ("{\"additionalProperties\":false}", "{\"x\":1}", "$.x: unknown property");
  check ("{\"additionalProperties\":{\"type\":\"string\"}}", "{\"x\":\"1\",\"y\":2}",
         "$.y: expected string, got integer");
  check ("{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
         "{\"x-a\":\"ok\"}", NULL);
  check ("{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
         "{\"x-a\":1}", "$.x-a: expected string, got integer");
  check ("{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
         "{\"y\":1}", "$.y: unknown property");
  check ("{\"minProperties\":1}", "{}", "$: must have at least 1 properties, got 0");
  check ("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", "$: must have at most 1 properties, got 2");
  /* keys that are not plain identifiers are quoted in paths */
  check ("{\"additionalProperties\":{\"type\":\"string\"}}", "{\"a b\":1}",
         "$[\"a b\"]: expected string, got integer");
}

static void
test_combinators (void)
{
  const gchar *one_of =
    "{\"oneOf\":[{\"type\":\"string\"},"
    "{\"type\":\"object\",\"required\":[\"step\"],\"properties\":{\"n\":{\"type\":\"integer\"}}}]}";

  check (one_of, "\"sim\"", NULL);
  check (one_of, "{\"step\":\"sim\"}", NULL);
  /* the alternative that got furthest explains the failure */
  check (one_of, "{\"step\":\"sim\",\"n\":\"x\"}", "$.n: expected integer, got string");
  check (one_of, "{}", "$: missing required property “step”");
  check (one_of, "3", "$: matches none of the allowed forms (expected string, got integer; or expected object, got integer)");
  check ("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "5",
         "$: matches 2 of the allowed forms, but must match exactly one");
  check ("{\"anyOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "5", NULL);
  check ("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"boolean\"}]}", "\"a\"",
         "$: matches none of the allowed forms (expected integer, got string; or expected boolean, got string)");
  check ("{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":3}]}", "3", NULL);
  check ("{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":3}]}", "2", "$: must be at least 3, got 2");
  check ("{\"not\":{\"type\":\"string\"}}", "2", NULL);
  check ("{\"not\":{\"type\":\"string\"}}", "\"a\"", "$: must not match the schema given in “not”");
}

static void
test_refs (void)
{
  const gchar *schema =
    "{\"$defs\":{\"id\":{\"type\":\"string\",\"minLength\":1}},"
    "\"definitions\":{\"n\":{\"type\":\"integer\"}},"
    "\"properties\":{\"a\":{\"$ref\":\"#/$defs/id\"},\"b\":{\"$ref\":\"#/definitions/n\"},"
    "\"c\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/id\"}}}}";
  /* a recursive schema: a tree of named nodes */
  const gchar *tree =
    "{\"$defs\":{\"node\":{\"type\":\"object\",\"required\":[\"name\"],"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}}}},"
    "\"$ref\":\"#/$defs/node\"}";

  check (schema, "{\"a\":\"x\",\"b\":1,\"c\":[\"y\"]}", NULL);
  check (schema, "{\"a\":\"\"}", "$.a: must have at least 1 characters, got 0");
  check (schema, "{\"b\":\"1\"}", "$.b: expected integer, got string");
  check (schema, "{\"c\":[\"y\",2]}", "$.c[1]: expected string, got integer");
  check (tree, "{\"name\":\"r\",\"children\":[{\"name\":\"a\",\"children\":[{\"name\":\"b\"}]}]}", NULL);
  check (tree, "{\"name\":\"r\",\"children\":[{\"name\":\"a\",\"children\":[{}]}]}",
         "$.children[0].children[0]: missing required property “name”");
}

static void
test_annotations_ignored (void)
{
  check ("{\"title\":\"t\",\"description\":\"d\",\"default\":3,\"$comment\":\"c\",\"type\":\"string\"}",
         "\"x\"", NULL);
  check ("true", "{\"anything\":[1]}", NULL);
  check ("false", "1", "$: no value is allowed here");
}

static void
test_error_path (void)
{
  const gchar *schema =
    "{\"properties\":{\"steps\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
    "\"properties\":{\"options\":{\"type\":\"object\",\"properties\":{\"rate\":{\"type\":\"integer\"}}}}}}}}";

  check (schema, "{\"steps\":[{},{},{\"options\":{\"rate\":\"fast\"}}]}",
         "$.steps[2].options.rate: expected integer, got string");
}

static void
check_bad_schema (const gchar *text,
                  const gchar *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalJsonSchema) schema = shoal_json_schema_new_from_data (text, -1, &error);

  g_assert_null (schema);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, expected));
}

static void
test_bad_schemas (void)
{
  check_bad_schema ("{", "Invalid schema");
  check_bad_schema ("3", "a schema must be an object or a boolean");
  check_bad_schema ("{\"properties\":{\"a\":{\"$ref\":\"#/$defs/missing\"}}}",
                    "#/properties/a: “$ref” #/$defs/missing does not resolve");
  check_bad_schema ("{\"pattern\":\"([\"}", "bad pattern");
  check_bad_schema ("{\"patternProperties\":{\"(\":{}}}", "bad pattern");
  check_bad_schema ("{\"minimum\":\"1\"}", "“minimum” must be a number");
  check_bad_schema ("{\"items\":3}", "#/items: a schema must be an object or a boolean");
  check_bad_schema ("{\"anyOf\":[]}", "“anyOf” must be a non-empty array");
  check_bad_schema ("{\"required\":[1]}", "“required” must hold only strings");
}

static void
test_for_name (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalJsonSchema) recipe = shoal_json_schema_new_for_name ("recipe", &error);
  g_autoptr(ShoalJsonSchema) again = NULL;
  g_autoptr(ShoalJsonSchema) missing = NULL;
  g_autoptr(ShoalJsonSchema) bad = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (recipe);
  /* cached */
  again = shoal_json_schema_new_for_name ("recipe", &error);
  g_assert_no_error (error);
  g_assert_true (again == recipe);

  missing = shoal_json_schema_new_for_name ("no-such-schema", &error);
  g_assert_null (missing);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  bad = shoal_json_schema_new_for_name ("../recipe", &error);
  g_assert_null (bad);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
}

static void
test_for_name_env (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-schema-XXXXXX", &error);
  g_autofree gchar *path = NULL;
  g_autoptr(ShoalJsonSchema) schema = NULL;
  g_autoptr(JsonNode) instance = json_from_string ("\"x\"", NULL);
  g_autofree gchar *saved = NULL;

  g_assert_no_error (error);
  path = g_build_filename (dir, "recipe.schema.json", NULL);
  g_file_set_contents (path, "{\"type\":\"integer\"}", -1, &error);
  g_assert_no_error (error);

  /* $SHOAL_SCHEMA_DIR comes first */
  saved = g_strdup (g_getenv ("SHOAL_SCHEMA_DIR"));
  g_setenv ("SHOAL_SCHEMA_DIR", dir, TRUE);
  schema = shoal_json_schema_new_for_name ("recipe", &error);
  if (saved != NULL)
    g_setenv ("SHOAL_SCHEMA_DIR", saved, TRUE);
  else
    g_unsetenv ("SHOAL_SCHEMA_DIR");
  g_assert_no_error (error);
  g_assert_false (shoal_json_schema_validate (schema, instance, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);

  g_unlink (path);
  g_rmdir (dir);
}

typedef struct
{
  ShoalJsonSchema *schema;
  JsonNode        *good;
  JsonNode        *bad;
} ThreadData;

static gpointer
validate_thread (gpointer user_data)
{
  ThreadData *data = user_data;

  for (guint i = 0; i < 500; i++)
    {
      g_autoptr(GError) error = NULL;

      if (!shoal_json_schema_validate (data->schema, data->good, NULL))
        return GINT_TO_POINTER (1);
      if (shoal_json_schema_validate (data->schema, data->bad, &error) ||
          !g_str_has_prefix (error->message, "$.steps[0]"))
        return GINT_TO_POINTER (1);
    }
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalJsonSchema) schema = shoal_json_schema_new_for_name ("recipe", &error);
  g_autoptr(JsonNode) good = json_from_string ("{\"name\":\"a\",\"steps\":[\"sim\"]}", NULL);
  g_autoptr(JsonNode) bad = json_from_string ("{\"name\":\"a\",\"steps\":[\"no spaces\"]}", NULL);
  ThreadData data = { schema, good, bad };
  GThread *threads[4];

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("validate", validate_thread, &data);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_assert_null (g_thread_join (threads[i]));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shoal/json-schema/type", test_type);
  g_test_add_func ("/shoal/json-schema/enum-const", test_enum_const);
  g_test_add_func ("/shoal/json-schema/numbers", test_numbers);
  g_test_add_func ("/shoal/json-schema/strings", test_strings);
  g_test_add_func ("/shoal/json-schema/arrays", test_arrays);
  g_test_add_func ("/shoal/json-schema/unique-large", test_unique_large);
  g_test_add_func ("/shoal/json-schema/not-finite", test_not_finite);
  g_test_add_func ("/shoal/json-schema/objects", test_objects);
  g_test_add_func ("/shoal/json-schema/combinators", test_combinators);
  g_test_add_func ("/shoal/json-schema/refs", test_refs);
  g_test_add_func ("/shoal/json-schema/annotations", test_annotations_ignored);
  g_test_add_func ("/shoal/json-schema/error-path", test_error_path);
  g_test_add_func ("/shoal/json-schema/bad-schemas", test_bad_schemas);
  g_test_add_func ("/shoal/json-schema/for-name", test_for_name);
  g_test_add_func ("/shoal/json-schema/for-name-env", test_for_name_env);
  g_test_add_func ("/shoal/json-schema/threads", test_threads);

  return g_test_run ();
}
