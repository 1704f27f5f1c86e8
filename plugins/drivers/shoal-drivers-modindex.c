/* shoal-drivers-modindex.c: a kernel's modules.alias, modules.dep,
 * modules.softdep, modules.builtin and modules.builtin.modinfo
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-drivers-modindex.h"

#include <fnmatch.h>
#include <string.h>

#include "shoal-error.h"

typedef struct {
  gchar *pattern;
  gsize  literal_len;   /* bytes before the first wildcard */
  gchar *module;
  gboolean builtin;     /* from modules.builtin.modinfo: the module is built in */
} ShoalModAlias;

typedef struct {
  gchar     *name;
  gchar     *path;      /* relative to the release dir */
  GPtrArray *deps;      /* names, as modules.dep lists them */
} ShoalModEntry;

typedef struct {
  GPtrArray *pre;       /* names or aliases, as modules.softdep lists them */
  GPtrArray *post;
} ShoalModSoftdep;

struct _ShoalModIndex {
  gchar      *dir;
  gchar      *release;
  GArray     *aliases;   /* ShoalModAlias */
  GHashTable *modules;   /* name -> ShoalModEntry */
  GHashTable *builtin;   /* name set */
  GHashTable *softdeps;  /* name -> ShoalModSoftdep */
};

static void
mod_alias_clear (gpointer data)
{
  ShoalModAlias *a = data;

  g_free (a->pattern);
  g_free (a->module);
}

static void
mod_entry_free (gpointer data)
{
  ShoalModEntry *e = data;

  g_free (e->name);
  g_free (e->path);
  g_ptr_array_unref (e->deps);
  g_free (e);
}

static void
mod_softdep_free (gpointer data)
{
  ShoalModSoftdep *d = data;

  g_ptr_array_unref (d->pre);
  g_ptr_array_unref (d->post);
  g_free (d);
}

gchar *
shoal_mod_index_normalize_name (const gchar *name)
{
  gchar *norm = g_strdup (name);

  g_strdelimit (norm, "-", '_');
  return norm;
}

/**
 * shoal_mod_index_normalize_pattern:
 *
 * An fnmatch pattern of module names with '-' made '_' outside character
 * classes, as kmod's alias_normalize() does: "bnx[0-9]*" stays, "e1000-*"
 * becomes "e1000_*".
 */
gchar *
shoal_mod_index_normalize_pattern (const gchar *pattern)
{
  gchar *norm = g_strdup (pattern);

  for (gchar *p = norm; *p != '\0'; p++)
    {
      if (*p == '[')
        {
          /* to the closing ']'; one right after '[' or "[!" is a member */
          gchar *close = p + 1;

          if (*close == '!' || *close == '^')
            close++;
          if (*close == ']')
            close++;
          close = strchr (close, ']');
          /* unterminated: a plain '[' to fnmatch */
          if (close != NULL)
            p = close;
        }
      else if (*p == '-')
        *p = '_';
    }
  return norm;
}

/* kernel/drivers/net/e1000.ko[.xz] -> e1000 */
static gchar *
name_of_path (const gchar *path)
{
  g_autofree gchar *base = g_path_get_basename (path);
  gchar *ko = strstr (base, ".ko");

  if (ko != NULL)
    *ko = '\0';
  return shoal_mod_index_normalize_name (base);
}

static gchar *
read_index_file (ShoalModIndex *self, const gchar *name, gboolean required, gsize *length, GError **error)
{
  g_autofree gchar *path = g_build_filename (self->dir, name, NULL);
  gchar *contents = NULL;

  if (length != NULL)
    *length = 0;
  if (!required && !g_file_test (path, G_FILE_TEST_EXISTS))
    return g_strdup ("");
  if (!g_file_get_contents (path, &contents, length, error))
    {
      g_prefix_error (error, "reading the kernel's %s: ", name);
      return NULL;
    }
  return contents;
}

static void
add_alias (ShoalModIndex *self, const gchar *pattern, const gchar *module, gboolean builtin)
{
  ShoalModAlias a;

  a.pattern = g_strdup (pattern);
  a.literal_len = strcspn (a.pattern, "*?[\\");
  a.module = shoal_mod_index_normalize_name (module);
  a.builtin = builtin;
  g_array_append_val (self->aliases, a);
}

static void
parse_aliases (ShoalModIndex *self, gchar *text)
{
  gchar *save = NULL;

  for (gchar *line = strtok_r (text, "\n", &save); line != NULL; line = strtok_r (NULL, "\n", &save))
    {
      g_auto(GStrv) words = NULL;

      if (!g_str_has_prefix (line, "alias "))
        continue;
      words = g_strsplit_set (line, " \t", -1);
      if (g_strv_length (words) != 3 || *words[1] == '\0' || *words[2] == '\0')
        continue;
      add_alias (self, words[1], words[2], FALSE);
    }
}

/* The "<module>.alias=<pattern>" records of modules.builtin.modinfo
 * (NUL-terminated): the aliases of the built-in modules, which
 * modules.alias leaves out */
static void
parse_builtin_modinfo (ShoalModIndex *self, const gchar *data, gsize length)
{
  const gchar *end = data + length;

  for (const gchar *rec = data; rec < end; rec += strnlen (rec, end - rec) + 1)
    {
      g_autofree gchar *text = g_strndup (rec, end - rec);
      gchar *dot = strchr (text, '.');
      g_autofree gchar *module = NULL;

      if (dot == NULL || dot == text || !g_str_has_prefix (dot, ".alias=") || dot[7] == '\0')
        continue;
      *dot = '\0';
      module = shoal_mod_index_normalize_name (text);
      g_hash_table_add (self->builtin, g_strdup (module));
      add_alias (self, dot + 7, module, TRUE);
    }
}

static void
parse_deps (ShoalModIndex *self, gchar *text)
{
  gchar *save = NULL;

  for (gchar *line = strtok_r (text, "\n", &save); line != NULL; line = strtok_r (NULL, "\n", &save))
    {
      gchar *colon = strchr (line, ':');
      g_auto(GStrv) deps = NULL;
      ShoalModEntry *e;

      if (colon == NULL)
        continue;
      *colon = '\0';
      e = g_new0 (ShoalModEntry, 1);
      e->path = g_strdup (g_strstrip (line));
      e->name = name_of_path (e->path);
      e->deps = g_ptr_array_new_with_free_func (g_free);
      deps = g_strsplit_set (colon + 1, " \t", -1);
      for (guint i = 0; deps[i] != NULL; i++)
        {
          if (*deps[i] != '\0')
            g_ptr_array_add (e->deps, name_of_path (deps[i]));
        }
      g_hash_table_replace (self->modules, e->name, e);
    }
}

/* "softdep <module> pre: <name>... post: <name>...", as kmod reads it:
 * names before the first "pre:" or "post:" are ignored. The lines of one
 * module are merged (kmod itself stops at the first). */
static void
parse_softdeps (ShoalModIndex *self, gchar *text)
{
  gchar *save = NULL;

  for (gchar *line = strtok_r (text, "\n", &save); line != NULL; line = strtok_r (NULL, "\n", &save))
    {
      g_auto(GStrv) words = NULL;
      g_autofree gchar *name = NULL;
      ShoalModSoftdep *d;
      GPtrArray *into = NULL;

      if (!g_str_has_prefix (line, "softdep "))
        continue;
      words = g_strsplit_set (line, " \t", -1);
      for (guint i = 1; words[i] != NULL && name == NULL; i++)
        {
          if (*words[i] != '\0')
            name = shoal_mod_index_normalize_name (words[i]);
        }
      if (name == NULL)
        continue;
      d = g_hash_table_lookup (self->softdeps, name);
      if (d == NULL)
        {
          d = g_new0 (ShoalModSoftdep, 1);
          d->pre = g_ptr_array_new_with_free_func (g_free);
          d->post = g_ptr_array_new_with_free_func (g_free);
          g_hash_table_insert (self->softdeps, g_strdup (name), d);
        }
      for (guint i = 1, seen_name = 0; words[i] != NULL; i++)
        {
          if (*words[i] == '\0')
            continue;
          if (!seen_name)
            seen_name = 1;
          else if (strcmp (words[i], "pre:") == 0)
            into = d->pre;
          else if (strcmp (words[i], "post:") == 0)
            into = d->post;
          else if (into != NULL && !g_ptr_array_find_with_equal_func (into, words[i], g_str_equal, NULL))
            g_ptr_array_add (into, g_strdup (words[i]));
        }
    }
}

static void
parse_builtin (ShoalModIndex *self, gchar *text)
{
  gchar *save = NULL;

  for (gchar *line = strtok_r (text, "\n", &save); line != NULL; line = strtok_r (NULL, "\n", &save))
    {
      if (*g_strstrip (line) != '\0')
        g_hash_table_add (self->builtin, name_of_path (line));
    }
}

/**
 * shoal_mod_index_new:
 * @release_dir: a lib/modules/<release> directory holding modules.alias
 *   and modules.dep (modules.softdep, modules.builtin and
 *   modules.builtin.modinfo are optional)
 */
ShoalModIndex *
shoal_mod_index_new (const gchar *release_dir, GError **error)
{
  g_autoptr(ShoalModIndex) self = g_new0 (ShoalModIndex, 1);
  g_autofree gchar *alias = NULL;
  g_autofree gchar *dep = NULL;
  g_autofree gchar *builtin = NULL;
  g_autofree gchar *softdep = NULL;
  g_autofree gchar *modinfo = NULL;
  gsize modinfo_len = 0;

  self->dir = g_strdup (release_dir);
  self->release = g_path_get_basename (release_dir);
  self->aliases = g_array_new (FALSE, FALSE, sizeof (ShoalModAlias));
  g_array_set_clear_func (self->aliases, mod_alias_clear);
  self->modules = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, mod_entry_free);
  self->builtin = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->softdeps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, mod_softdep_free);
  alias = read_index_file (self, "modules.alias", TRUE, NULL, error);
  if (alias == NULL)
    return NULL;
  dep = read_index_file (self, "modules.dep", TRUE, NULL, error);
  if (dep == NULL)
    return NULL;
  builtin = read_index_file (self, "modules.builtin", FALSE, NULL, error);
  if (builtin == NULL)
    return NULL;
  softdep = read_index_file (self, "modules.softdep", FALSE, NULL, error);
  if (softdep == NULL)
    return NULL;
  modinfo = read_index_file (self, "modules.builtin.modinfo", FALSE, &modinfo_len, error);
  if (modinfo == NULL)
    return NULL;
  parse_aliases (self, alias);
  parse_deps (self, dep);
  parse_builtin (self, builtin);
  parse_softdeps (self, softdep);
  parse_builtin_modinfo (self, modinfo, modinfo_len);
  return g_steal_pointer (&self);
}

void
shoal_mod_index_free (ShoalModIndex *self)
{
  if (self == NULL)
    return;
  g_free (self->dir);
  g_free (self->release);
  g_clear_pointer (&self->aliases, g_array_unref);
  g_clear_pointer (&self->modules, g_hash_table_unref);
  g_clear_pointer (&self->builtin, g_hash_table_unref);
  g_clear_pointer (&self->softdeps, g_hash_table_unref);
  g_free (self);
}

const gchar *
shoal_mod_index_get_dir (ShoalModIndex *self)
{
  return self->dir;
}

const gchar *
shoal_mod_index_get_release (ShoalModIndex *self)
{
  return self->release;
}

guint
shoal_mod_index_get_n_aliases (ShoalModIndex *self)
{
  return self->aliases->len;
}

/**
 * shoal_mod_index_match:
 *
 * The modules whose modules.alias patterns match @modalias, as modprobe
 * matches them (fnmatch), each once, in the order of modules.alias, then
 * the built-in modules whose modules.builtin.modinfo aliases match it
 * (shoal_mod_index_is_builtin() tells them apart).
 *
 * Returns: (transfer container): module names
 */
GPtrArray *
shoal_mod_index_match (ShoalModIndex *self, const gchar *modalias)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < self->aliases->len; i++)
    {
      ShoalModAlias *a = &g_array_index (self->aliases, ShoalModAlias, i);

      if (strncmp (a->pattern, modalias, a->literal_len) != 0)
        continue;
      if (fnmatch (a->pattern, modalias, 0) != 0)
        continue;
      if (!g_ptr_array_find_with_equal_func (out, a->module, g_str_equal, NULL))
        g_ptr_array_add (out, g_strdup (a->module));
    }
  return g_steal_pointer (&out);
}

gboolean
shoal_mod_index_has_module (ShoalModIndex *self, const gchar *name)
{
  g_autofree gchar *norm = shoal_mod_index_normalize_name (name);

  return g_hash_table_contains (self->modules, norm);
}

gboolean
shoal_mod_index_is_builtin (ShoalModIndex *self, const gchar *name)
{
  g_autofree gchar *norm = shoal_mod_index_normalize_name (name);

  return g_hash_table_contains (self->builtin, norm);
}

const gchar *
shoal_mod_index_get_path (ShoalModIndex *self, const gchar *name)
{
  g_autofree gchar *norm = shoal_mod_index_normalize_name (name);
  ShoalModEntry *e = g_hash_table_lookup (self->modules, norm);

  return e != NULL ? e->path : NULL;
}

static gboolean resolve_one (ShoalModIndex *self, const gchar *name, gboolean soft, GHashTable *state,
                             GPtrArray *out, guint depth, GError **error);

/* The modules a modules.softdep name stands for, looked up as kmod does: a
 * module of that name; none for a built-in one; else the modules with an
 * alias matching it ("crypto-crc32c", "platform:idma64") */
static GPtrArray *
softdep_targets (ShoalModIndex *self, const gchar *name)
{
  g_autofree gchar *norm = shoal_mod_index_normalize_name (name);
  g_autoptr(GPtrArray) out = NULL;

  if (g_hash_table_contains (self->modules, norm))
    {
      out = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (out, g_steal_pointer (&norm));
      return g_steal_pointer (&out);
    }
  if (g_hash_table_contains (self->builtin, norm))
    return g_ptr_array_new_with_free_func (g_free);
  out = shoal_mod_index_match (self, name);
  for (guint i = out->len; i > 0; i--)
    {
      if (!g_hash_table_contains (self->modules, g_ptr_array_index (out, i - 1)))
        g_ptr_array_remove_index (out, i - 1);
    }
  return g_steal_pointer (&out);
}

static gboolean
resolve_softdeps (ShoalModIndex *self, GPtrArray *names, const gchar *of, GHashTable *state, GPtrArray *out,
                  guint depth, GError **error)
{
  for (guint i = 0; i < names->len; i++)
    {
      const gchar *name = g_ptr_array_index (names, i);
      g_autoptr(GPtrArray) targets = softdep_targets (self, name);

      if (targets->len == 0)
        g_debug ("kernel %s: soft dependency %s of %s is neither a module nor an alias of one, skipped",
                 self->release, name, of);
      for (guint j = 0; j < targets->len; j++)
        {
          const gchar *target = g_ptr_array_index (targets, j);

          /* a module that is being resolved already: kmod skips it too */
          if (GPOINTER_TO_INT (g_hash_table_lookup (state, target)) == 1)
            continue;
          if (!resolve_one (self, target, TRUE, state, out, depth + 1, error))
            return FALSE;
        }
    }
  return TRUE;
}

static gboolean
resolve_one (ShoalModIndex *self, const gchar *name, gboolean soft, GHashTable *state, GPtrArray *out,
             guint depth, GError **error)
{
  g_autofree gchar *norm = shoal_mod_index_normalize_name (name);
  ShoalModEntry *e;
  ShoalModSoftdep *softdep;
  gint st = GPOINTER_TO_INT (g_hash_table_lookup (state, norm));

  if (st == 2)
    return TRUE;
  if (st == 1 || depth > 64)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "modules.dep has a dependency cycle through %s", norm);
      return FALSE;
    }
  e = g_hash_table_lookup (self->modules, norm);
  if (e == NULL)
    {
      if (g_hash_table_contains (self->builtin, norm))
        return TRUE;
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   "kernel %s has no module named %s", self->release, norm);
      return FALSE;
    }
  softdep = soft ? g_hash_table_lookup (self->softdeps, norm) : NULL;
  g_hash_table_insert (state, g_strdup (norm), GINT_TO_POINTER (1));
  /* modules.dep lists the deepest dependencies last: load them first */
  for (guint i = e->deps->len; i > 0; i--)
    {
      if (!resolve_one (self, g_ptr_array_index (e->deps, i - 1), soft, state, out, depth + 1, error))
        return FALSE;
    }
  if (softdep != NULL && !resolve_softdeps (self, softdep->pre, norm, state, out, depth, error))
    return FALSE;
  g_hash_table_insert (state, g_strdup (norm), GINT_TO_POINTER (2));
  g_ptr_array_add (out, g_strdup (norm));
  if (softdep != NULL && !resolve_softdeps (self, softdep->post, norm, state, out, depth, error))
    return FALSE;
  return TRUE;
}

static GPtrArray *
resolve (ShoalModIndex *self, GPtrArray *names, gboolean soft, GError **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) state = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < names->len; i++)
    {
      if (!resolve_one (self, g_ptr_array_index (names, i), soft, state, out, 0, error))
        return NULL;
    }
  return g_steal_pointer (&out);
}

/**
 * shoal_mod_index_resolve:
 * @names: (element-type utf8): module names
 *
 * The modules to load for @names, as modprobe loads them: with every
 * modules.dep dependency, dependencies before the modules that need them,
 * and the soft dependencies of modules.softdep, each with its own
 * dependencies, "pre:" ones before the module and "post:" ones after it
 * (a soft dependency no module or alias stands for is skipped). Each
 * module once; built-in modules are left out.
 *
 * Returns: (transfer container): module names in load order
 */
GPtrArray *
shoal_mod_index_resolve (ShoalModIndex *self, GPtrArray *names, GError **error)
{
  return resolve (self, names, TRUE, error);
}

/**
 * shoal_mod_index_resolve_deps:
 *
 * As shoal_mod_index_resolve(), with the dependencies of modules.dep only
 * (what a modules.dep line of the module lists).
 *
 * Returns: (transfer container): module names in load order
 */
GPtrArray *
shoal_mod_index_resolve_deps (ShoalModIndex *self, GPtrArray *names, GError **error)
{
  return resolve (self, names, FALSE, error);
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/**
 * shoal_mod_index_find_release_dir:
 * @kernel: a kernel release ("6.1.0-56-amd64"), or a path: a
 *   lib/modules/<release> directory, or a tree holding lib/modules/<release>
 *   (the unpacked package) or kernel/<release>/modules/lib/modules/<release>
 *   (scripts/fetch-kernel.sh's cache); a tree holding several releases is
 *   an error naming them
 * @roots: (nullable): directories searched for a release name, each laid
 *   out as <root>/<release>/, <root>/<release>/modules/lib/modules/<release>/
 *   (scripts/fetch-kernel.sh's kernel/ folder) or <root>/lib/modules/<release>/;
 *   /lib/modules is searched last
 *
 * Returns: the lib/modules/<release> directory
 */
gchar *
shoal_mod_index_find_release_dir (const gchar         *kernel,
                                  const gchar * const *roots,
                                  GError             **error)
{
  g_autofree gchar *dep = NULL;

  if (kernel == NULL || *kernel == '\0')
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                           "no kernel named (step option \"kernel\", the recipe's drivers.kernel "
                           "or the config key [drivers] kernel)");
      return NULL;
    }
  if (g_path_is_absolute (kernel))
    {
      g_autofree gchar *direct = g_build_filename (kernel, "modules.dep", NULL);
      g_autoptr(GDir) dir = NULL;
      g_autofree gchar *mods = g_build_filename (kernel, "lib", "modules", NULL);
      g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
      const gchar *name;

      if (g_file_test (direct, G_FILE_TEST_EXISTS))
        return g_strdup (kernel);
      if (!g_file_test (mods, G_FILE_TEST_IS_DIR))
        {
          g_free (mods);
          mods = g_build_filename (kernel, "modules", "lib", "modules", NULL);
        }
      dir = g_dir_open (mods, 0, NULL);
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree gchar *candidate = g_build_filename (mods, name, "modules.dep", NULL);

          if (g_file_test (candidate, G_FILE_TEST_EXISTS))
            g_ptr_array_add (found, g_strdup (name));
        }
      if (found->len == 1)
        return g_build_filename (mods, g_ptr_array_index (found, 0), NULL);
      if (found->len > 1)
        {
          g_autofree gchar *names = NULL;

          g_ptr_array_sort (found, compare_names);
          g_ptr_array_add (found, NULL);
          names = g_strjoinv (", ", (gchar **) found->pdata);
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                       "%s holds the modules of %u kernels (%s): name one, as %s/<release>",
                       kernel, found->len - 1, names, mods);
          return NULL;
        }
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   "no modules.dep under %s (run scripts/fetch-kernel.sh?)", kernel);
      return NULL;
    }
  if (strchr (kernel, '/') != NULL || g_strcmp0 (kernel, "..") == 0 || g_strcmp0 (kernel, ".") == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   "kernel \"%s\" is neither a release name nor an absolute path", kernel);
      return NULL;
    }
  for (guint i = 0; roots != NULL && roots[i] != NULL; i++)
    {
      const gchar *layouts[][4] = {
        { roots[i], kernel, NULL },
        { roots[i], kernel, "modules/lib/modules", kernel },
        { roots[i], "lib/modules", kernel, NULL },
      };

      for (guint j = 0; j < G_N_ELEMENTS (layouts); j++)
        {
          g_autofree gchar *dir = layouts[j][3] != NULL
            ? g_build_filename (layouts[j][0], layouts[j][1], layouts[j][2], layouts[j][3], NULL)
            : g_build_filename (layouts[j][0], layouts[j][1], layouts[j][2], NULL);

          g_free (dep);
          dep = g_build_filename (dir, "modules.dep", NULL);
          if (g_file_test (dep, G_FILE_TEST_EXISTS))
            return g_steal_pointer (&dir);
        }
    }
  g_free (dep);
  dep = g_build_filename ("/lib/modules", kernel, "modules.dep", NULL);
  if (g_file_test (dep, G_FILE_TEST_EXISTS))
    return g_build_filename ("/lib/modules", kernel, NULL);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
               "no modules for kernel %s (looked in the kernel directories and /lib/modules)", kernel);
  return NULL;
}
