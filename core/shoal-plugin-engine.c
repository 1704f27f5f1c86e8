/* shoal-plugin-engine.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <libpeas/peas.h>

#include "shoal-error.h"
#include "shoal-plugin-engine.h"

/**
 * ShoalPluginEngine:
 *
 * Finds step and service plugins with libpeas 1.x, loads them (C modules
 * and Python 3 modules alike), and gives the core each step by the name
 * recipes use (the `X-Shoal-Step` key of the `.plugin` file). The core
 * names no plugin. A plugin that fails to load is remembered with the
 * reason; the steps it would provide stay unknown.
 *
 * Search order: paths added with shoal_plugin_engine_add_search_path()
 * (first added wins), then `$SHOAL_PLUGIN_PATH`, then the installed
 * plugin directory. The first plugin of a given module name wins.
 */
struct _ShoalPluginEngine
{
  GObject     parent_instance;

  PeasEngine *engine;
  GPtrArray  *paths;
  gboolean    loaded;
  GHashTable *steps;        /* step name -> ShoalStep* */
  GHashTable *step_modules; /* step name -> module name */
  GHashTable *errors;       /* module -> reason */
  GPtrArray  *services;     /* ShoalService* */
};

G_DEFINE_FINAL_TYPE (ShoalPluginEngine, shoal_plugin_engine, G_TYPE_OBJECT)

static void
shoal_plugin_engine_finalize (GObject *object)
{
  ShoalPluginEngine *self = SHOAL_PLUGIN_ENGINE (object);

  g_clear_pointer (&self->steps, g_hash_table_unref);
  g_clear_pointer (&self->step_modules, g_hash_table_unref);
  g_clear_pointer (&self->errors, g_hash_table_unref);
  g_clear_pointer (&self->services, g_ptr_array_unref);
  g_clear_pointer (&self->paths, g_ptr_array_unref);
  g_clear_object (&self->engine);
  G_OBJECT_CLASS (shoal_plugin_engine_parent_class)->finalize (object);
}

static void
shoal_plugin_engine_class_init (ShoalPluginEngineClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_plugin_engine_finalize;
}

static void
shoal_plugin_engine_init (ShoalPluginEngine *self)
{
  self->engine = peas_engine_new ();
  peas_engine_enable_loader (self->engine, "python3");
  self->paths = g_ptr_array_new_with_free_func (g_free);
  self->steps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->step_modules = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->services = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * shoal_plugin_engine_new:
 *
 * Returns: (transfer full): a new engine
 */
ShoalPluginEngine *
shoal_plugin_engine_new (void)
{
  return g_object_new (SHOAL_TYPE_PLUGIN_ENGINE, NULL);
}

/**
 * shoal_plugin_engine_add_search_path:
 * @self: an engine
 * @path: a directory holding plugins (or folders of plugins)
 *
 * Adds a directory searched before the installed plugins. Call before
 * shoal_plugin_engine_load_all().
 */
void
shoal_plugin_engine_add_search_path (ShoalPluginEngine *self,
                                     const gchar       *path)
{
  g_return_if_fail (SHOAL_IS_PLUGIN_ENGINE (self));
  g_return_if_fail (path != NULL);
  g_return_if_fail (!self->loaded);
  g_ptr_array_add (self->paths, g_strdup (path));
}

static void
register_step (ShoalPluginEngine *self,
               PeasPluginInfo    *info,
               const gchar       *step_name)
{
  const gchar *module = peas_plugin_info_get_module_name (info);
  PeasExtension *extension;

  if (g_hash_table_contains (self->steps, step_name))
    {
      g_warning ("step %s of plugin %s ignored: plugin %s already provides it",
                 step_name, module,
                 (const gchar *) g_hash_table_lookup (self->step_modules, step_name));
      return;
    }
  if (!peas_engine_provides_extension (self->engine, info, SHOAL_TYPE_STEP))
    {
      g_hash_table_replace (self->errors, g_strdup (module),
                            g_strdup_printf ("declares step %s but registers no ShoalStep",
                                             step_name));
      return;
    }
  extension = peas_engine_create_extension (self->engine, info, SHOAL_TYPE_STEP, NULL);
  if (extension == NULL || !SHOAL_IS_STEP (extension))
    {
      g_hash_table_replace (self->errors, g_strdup (module),
                            g_strdup_printf ("could not create step %s", step_name));
      g_clear_object (&extension);
      return;
    }
  g_hash_table_insert (self->steps, g_strdup (step_name), extension);
  g_hash_table_insert (self->step_modules, g_strdup (step_name), g_strdup (module));
  g_debug ("step %s provided by %s", step_name, module);
}

/* What libpeas and its loaders say while a plugin loads. On failure
 * peas_plugin_info_is_available() gives only "Failed to load"; the reason
 * (dlopen's "undefined symbol: ...", the missing .so, a Python exception)
 * is only in the warnings they log meanwhile. Those are recorded through a
 * default log handler installed for the duration of the load, which hands
 * every message on to the handler it replaced, so they are logged (and
 * fatal or not) as before; messages of other threads are not recorded.
 * libpeas' loaders are the process's, not the engine's: a module that
 * failed once fails again at once, saying nothing, in a later engine of
 * the same process, so the reasons are kept for the process too. */
#define LOAD_REASON_MAX 1024

G_LOCK_DEFINE_STATIC (load_reasons);
static GHashTable *load_reasons; /* "module dir/module name" -> reason */

typedef struct
{
  GThread  *thread;
  GLogFunc  previous;
  gchar    *generic;  /* libpeas' own "Error loading plugin 'module'", left out */
  GString  *text;
} LoadCapture;

static void
load_capture_handler (const gchar    *log_domain,
                      GLogLevelFlags  log_level,
                      const gchar    *message,
                      gpointer        user_data)
{
  LoadCapture *capture = user_data;

  if (g_thread_self () == capture->thread &&
      (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) != 0 &&
      message != NULL && g_strcmp0 (message, capture->generic) != 0)
    {
      g_auto(GStrv) words = g_strsplit_set (message, " \t\r\n", -1);

      /* one line: a Python traceback comes over several */
      for (guint i = 0; words[i] != NULL; i++)
        if (*words[i] != '\0')
          g_string_append_printf (capture->text, "%s%s",
                                  capture->text->len > 0 ? " " : "", words[i]);
    }
  capture->previous (log_domain, log_level, message, NULL);
}

/* the reason recorded by the capture, at most LOAD_REASON_MAX bytes, its
 * end kept (an exception's last line names it); NULL if none */
static gchar *
load_capture_reason (LoadCapture *capture)
{
  const gchar *start = capture->text->str;

  if (capture->text->len == 0)
    return NULL;
  if (capture->text->len > LOAD_REASON_MAX)
    {
      start = g_utf8_find_next_char (capture->text->str + capture->text->len - LOAD_REASON_MAX, NULL);
      return g_strconcat ("…", start, NULL);
    }
  return g_strdup (start);
}

static gboolean
load_plugin_capturing (ShoalPluginEngine  *self,
                       PeasPluginInfo     *info,
                       gchar             **reason)
{
  LoadCapture capture = { g_thread_self (), NULL, NULL, g_string_new (NULL) };
  gboolean loaded;

  g_autofree gchar *key = g_build_filename (peas_plugin_info_get_module_dir (info),
                                            peas_plugin_info_get_module_name (info), NULL);

  capture.generic = g_strdup_printf ("Error loading plugin '%s'", peas_plugin_info_get_module_name (info));
  capture.previous = g_log_set_default_handler (load_capture_handler, &capture);
  loaded = peas_engine_load_plugin (self->engine, info) && peas_plugin_info_is_loaded (info);
  g_log_set_default_handler (capture.previous, NULL);
  *reason = loaded ? NULL : load_capture_reason (&capture);
  g_string_free (capture.text, TRUE);
  g_free (capture.generic);
  if (loaded)
    return TRUE;
  G_LOCK (load_reasons);
  if (load_reasons == NULL)
    load_reasons = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (*reason != NULL)
    g_hash_table_replace (load_reasons, g_steal_pointer (&key), g_strdup (*reason));
  else
    *reason = g_strdup (g_hash_table_lookup (load_reasons, key));
  G_UNLOCK (load_reasons);
  return FALSE;
}

static void
register_plugin (ShoalPluginEngine *self,
                 PeasPluginInfo    *info)
{
  const gchar *module = peas_plugin_info_get_module_name (info);
  const gchar *step_name = peas_plugin_info_get_external_data (info, "Shoal-Step");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *logged = NULL;

  if (!peas_plugin_info_is_available (info, &error) ||
      !load_plugin_capturing (self, info, &logged))
    {
      g_autoptr(GError) reason = NULL;

      if (logged != NULL)
        g_hash_table_replace (self->errors, g_strdup (module), g_steal_pointer (&logged));
      else if (!peas_plugin_info_is_available (info, &reason) && reason != NULL)
        g_hash_table_replace (self->errors, g_strdup (module), g_strdup (reason->message));
      else if (error != NULL)
        g_hash_table_replace (self->errors, g_strdup (module), g_strdup (error->message));
      else
        g_hash_table_replace (self->errors, g_strdup (module), g_strdup ("failed to load"));
      g_warning ("plugin %s not loaded: %s", module,
                 (const gchar *) g_hash_table_lookup (self->errors, module));
      return;
    }

  if (step_name != NULL && *step_name != '\0')
    register_step (self, info, step_name);
  if (peas_engine_provides_extension (self->engine, info, SHOAL_TYPE_SERVICE))
    {
      PeasExtension *service = peas_engine_create_extension (self->engine, info,
                                                             SHOAL_TYPE_SERVICE, NULL);
      if (service != NULL)
        g_ptr_array_add (self->services, service);
    }
}

/**
 * shoal_plugin_engine_load_all:
 * @self: an engine
 *
 * Loads every plugin found. Failures are recorded, never fatal.
 */
void
shoal_plugin_engine_load_all (ShoalPluginEngine *self)
{
  const gchar *env = g_getenv ("SHOAL_PLUGIN_PATH");
  const GList *plugins;

  g_return_if_fail (SHOAL_IS_PLUGIN_ENGINE (self));
  if (self->loaded)
    return;
  self->loaded = TRUE;

  for (guint i = 0; i < self->paths->len; i++)
    peas_engine_add_search_path (self->engine, g_ptr_array_index (self->paths, i), NULL);
  if (env != NULL)
    {
      g_auto(GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (guint i = 0; parts[i] != NULL; i++)
        if (*parts[i] != '\0')
          peas_engine_add_search_path (self->engine, parts[i], NULL);
    }
  if (g_getenv ("SHOAL_NO_SYSTEM_PLUGINS") == NULL)
    peas_engine_add_search_path (self->engine, SHOAL_PLUGINDIR, NULL);

  plugins = peas_engine_get_plugin_list (self->engine);
  for (const GList *l = plugins; l != NULL; l = l->next)
    register_plugin (self, l->data);
}

/**
 * shoal_plugin_engine_lookup_step:
 * @self: an engine
 * @name: the step name a recipe uses
 * @error: return location for a #GError
 *
 * Returns: (transfer none): the step, or %NULL with %SHOAL_ERROR_UNKNOWN_STEP
 */
ShoalStep *
shoal_plugin_engine_lookup_step (ShoalPluginEngine  *self,
                                 const gchar        *name,
                                 GError            **error)
{
  ShoalStep *step;

  g_return_val_if_fail (SHOAL_IS_PLUGIN_ENGINE (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  step = g_hash_table_lookup (self->steps, name);
  if (step != NULL)
    return step;

  /* Say why, if a plugin meant to provide it failed to load */
  for (const GList *l = peas_engine_get_plugin_list (self->engine); l != NULL; l = l->next)
    {
      PeasPluginInfo *info = l->data;
      const gchar *module = peas_plugin_info_get_module_name (info);

      if (g_strcmp0 (peas_plugin_info_get_external_data (info, "Shoal-Step"), name) == 0 &&
          g_hash_table_contains (self->errors, module))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_UNKNOWN_STEP,
                       _("step “%s” is unavailable: plugin %s failed to load: %s"),
                       name, module, (const gchar *) g_hash_table_lookup (self->errors, module));
          return NULL;
        }
    }
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_UNKNOWN_STEP,
               _("no loaded plugin provides the step “%s”"), name);
  return NULL;
}

static gint
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/**
 * shoal_plugin_engine_list_steps:
 * @self: an engine
 *
 * Returns: (transfer full): the names of every available step, sorted
 */
gchar **
shoal_plugin_engine_list_steps (ShoalPluginEngine *self)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (SHOAL_IS_PLUGIN_ENGINE (self), NULL);
  g_hash_table_iter_init (&iter, self->steps);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_ptr_array_sort (names, compare_strings);
  g_ptr_array_add (names, NULL);
  return (gchar **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

/**
 * shoal_plugin_engine_get_step_module:
 * @self: an engine
 * @name: a step name
 *
 * Returns: (nullable): the module providing @name
 */
const gchar *
shoal_plugin_engine_get_step_module (ShoalPluginEngine *self,
                                     const gchar       *name)
{
  g_return_val_if_fail (SHOAL_IS_PLUGIN_ENGINE (self), NULL);
  return g_hash_table_lookup (self->step_modules, name);
}

void
shoal_plugin_info_free (ShoalPluginInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->module);
  g_free (info->name);
  g_free (info->description);
  g_strfreev (info->steps);
  g_free (info->error);
  g_free (info);
}

/**
 * shoal_plugin_engine_list_plugins: (skip)
 * @self: an engine
 *
 * Returns: (transfer full): a #ShoalPluginInfo for every plugin found
 */
GPtrArray *
shoal_plugin_engine_list_plugins (ShoalPluginEngine *self)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_plugin_info_free);

  g_return_val_if_fail (SHOAL_IS_PLUGIN_ENGINE (self), list);
  for (const GList *l = peas_engine_get_plugin_list (self->engine); l != NULL; l = l->next)
    {
      PeasPluginInfo *pinfo = l->data;
      ShoalPluginInfo *info = g_new0 (ShoalPluginInfo, 1);
      const gchar *step = peas_plugin_info_get_external_data (pinfo, "Shoal-Step");
      const gchar *steps[] = { step, NULL };

      info->module = g_strdup (peas_plugin_info_get_module_name (pinfo));
      info->name = g_strdup (peas_plugin_info_get_name (pinfo));
      info->description = g_strdup (peas_plugin_info_get_description (pinfo));
      info->steps = g_strdupv (step != NULL && *step != '\0' ? (gchar **) steps : (gchar **) &steps[1]);
      info->loaded = peas_plugin_info_is_loaded (pinfo);
      info->error = g_strdup (g_hash_table_lookup (self->errors, info->module));
      g_ptr_array_add (list, info);
    }
  return list;
}

/**
 * shoal_plugin_engine_get_services:
 * @self: an engine
 *
 * Returns: (transfer none) (element-type ShoalService): the services of every loaded plugin
 */
GPtrArray *
shoal_plugin_engine_get_services (ShoalPluginEngine *self)
{
  g_return_val_if_fail (SHOAL_IS_PLUGIN_ENGINE (self), NULL);
  return self->services;
}
