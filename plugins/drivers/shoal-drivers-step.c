/* shoal-drivers-step.c: the "drivers" step
 *
 * Picks the kernel modules for the device's inventory (see
 * shoal-drivers-select.c) for the kernel the recipe names, journals what
 * was picked and which hardware matched nothing, and stores on the device:
 *
 *   "drivers"         the module names, space-separated, in load order
 *                     (dependencies first)
 *   "drivers.kernel"  the kernel's lib/modules/<release> directory used
 *
 * Options (step options; "kernel", "add" and "forbid" also come from the
 * recipe's "drivers" object, the step's "kernel" winning, lists merged):
 *   "kernel"        a release ("6.1.0-56-amd64") looked up in the kernel
 *                   directories, or an absolute path (a lib/modules/<release>
 *                   directory or a tree holding one); default: the config
 *                   key [drivers] kernel
 *   "add"           module names always added
 *   "forbid"        module names (or fnmatch patterns) never picked
 *   "classes"       PCI class prefixes whose devices need a driver: 2, 4 or 6
 *                   hex digits (class, subclass, programming interface:
 *                   "02", "0106", "0c0330"), any case; default ["01", "02"]
 *                   (storage, network)
 *   "on-unmatched"  "continue" (default: a warning) or "fail"
 *
 * Kernel directories searched for a release: the config key
 * [drivers] kernel-dirs (':'-separated), <state dir>/kernels,
 * <data dir>/kernels, then /lib/modules.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "shoal-drivers-modindex.h"
#include "shoal-drivers-select.h"
#include "shoal-drivers-step.h"

struct _ShoalDriversStep
{
  GObject parent_instance;
};

static void shoal_drivers_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalDriversStep, shoal_drivers_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_drivers_step_iface_init))

/* Parsed indexes, by release directory: thousands of devices share a few
 * kernels. Each entry is parsed again when the size, mtime or inode of
 * the tree's index files changed (depmod ran, the tree was refreshed in
 * place); an entry is reference-counted, so a replaced one lives until
 * the selections using it are done. */
G_LOCK_DEFINE_STATIC (index_cache);
static GHashTable *index_cache;

typedef struct {
  ShoalModIndex *index;
  gchar         *stamp;
} CachedIndex;

static void
cached_index_clear (gpointer data)
{
  CachedIndex *cached = data;

  g_clear_pointer (&cached->index, shoal_mod_index_free);
  g_free (cached->stamp);
}

static void
cached_index_unref (CachedIndex *cached)
{
  g_atomic_rc_box_release_full (cached, cached_index_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CachedIndex, cached_index_unref)

/* Size, mtime, device and inode of the files the index is read from */
static gchar *
index_stamp (const gchar *release_dir)
{
  const gchar *names[] = { "modules.dep", "modules.alias", "modules.builtin", "modules.softdep",
                           "modules.builtin.modinfo" };
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *path = g_build_filename (release_dir, names[i], NULL);
      GStatBuf st;

      if (g_stat (path, &st) != 0)
        g_string_append_printf (s, "%s missing\n", names[i]);
      else
        g_string_append_printf (s, "%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT ".%09ld %" G_GUINT64_FORMAT " %"
                                G_GUINT64_FORMAT "\n", names[i], (gint64) st.st_size, (gint64) st.st_mtim.tv_sec,
                                (long) st.st_mtim.tv_nsec, (guint64) st.st_dev, (guint64) st.st_ino);
    }
  return g_string_free (s, FALSE);
}

typedef struct {
  gchar     *kernel;
  GStrv      roots;
  GStrv      add;
  GStrv      forbid;
  GStrv      classes;
  JsonNode  *inventory;
  /* results */
  gchar     *release_dir;
  ShoalDriversSelection *selection;
} DriversJob;

static void
drivers_job_free (DriversJob *job)
{
  g_free (job->kernel);
  g_strfreev (job->roots);
  g_strfreev (job->add);
  g_strfreev (job->forbid);
  g_strfreev (job->classes);
  g_clear_pointer (&job->inventory, json_node_unref);
  g_free (job->release_dir);
  g_clear_pointer (&job->selection, shoal_drivers_selection_free);
  g_free (job);
}

/* (transfer full): the parsed index of @release_dir, as its files are now */
static CachedIndex *
lookup_index (const gchar *release_dir, GError **error)
{
  g_autofree gchar *stamp = index_stamp (release_dir);
  CachedIndex *cached;

  G_LOCK (index_cache);
  if (index_cache == NULL)
    index_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) cached_index_unref);
  cached = g_hash_table_lookup (index_cache, release_dir);
  if (cached == NULL || g_strcmp0 (cached->stamp, stamp) != 0)
    {
      ShoalModIndex *index = shoal_mod_index_new (release_dir, error);

      if (index == NULL)
        {
          G_UNLOCK (index_cache);
          return NULL;
        }
      cached = g_atomic_rc_box_new0 (CachedIndex);
      cached->index = index;
      cached->stamp = g_steal_pointer (&stamp);
      g_hash_table_replace (index_cache, g_strdup (release_dir), cached);
    }
  g_atomic_rc_box_acquire (cached);
  G_UNLOCK (index_cache);
  return cached;
}

static void
drivers_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  DriversJob *job = task_data;
  g_autoptr(CachedIndex) cached = NULL;
  ShoalDriversOptions options;
  g_autoptr(GError) error = NULL;

  job->release_dir = shoal_mod_index_find_release_dir (job->kernel, (const gchar * const *) job->roots, &error);
  if (job->release_dir == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  cached = lookup_index (job->release_dir, &error);
  if (cached == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  options = (ShoalDriversOptions) { (const gchar * const *) job->add, (const gchar * const *) job->forbid,
                                    (const gchar * const *) job->classes };
  job->selection = shoal_drivers_select (cached->index, job->inventory, &options, &error);
  if (job->selection == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static gchar *
join (GPtrArray *array, const gchar *sep)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < array->len; i++)
    g_string_append_printf (out, "%s%s", i > 0 ? sep : "", (const gchar *) g_ptr_array_index (array, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
drivers_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalStepContext *ctx = g_task_get_task_data (task);
  ShoalDevice *device = shoal_step_context_get_device (ctx);
  DriversJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  g_autofree gchar *modules = NULL;
  g_autofree gchar *matched = NULL;
  const gchar *on_unmatched = shoal_step_context_get_option_string (ctx, "on-unmatched", "continue");

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_prefix_error (&error, "selecting drivers: ");
      shoal_step_context_log (ctx, device, "drivers", SHOAL_JOURNAL_RESULT_FAILED, "%s", error->message);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  modules = join (job->selection->modules, " ");
  matched = join (job->selection->matched, ", ");
  shoal_step_context_log (ctx, device, "drivers", SHOAL_JOURNAL_RESULT_OK,
                          "kernel %s: %u modules [%s] (matched: %s)", job->release_dir,
                          job->selection->modules->len, modules, *matched ? matched : "nothing");
  if (job->selection->forbidden->len > 0)
    {
      g_autofree gchar *forbidden = join (job->selection->forbidden, ", ");

      shoal_step_context_log (ctx, device, "drivers", SHOAL_JOURNAL_RESULT_INFO,
                              "forbidden by the recipe: %s", forbidden);
    }
  if (job->selection->unmatched->len > 0)
    {
      g_autofree gchar *unmatched = join (job->selection->unmatched, ", ");
      gboolean fail = g_strcmp0 (on_unmatched, "fail") == 0;

      shoal_step_context_log (ctx, device, "drivers",
                              fail ? SHOAL_JOURNAL_RESULT_FAILED : SHOAL_JOURNAL_RESULT_WARNING,
                              "no driver for %s", unmatched);
      if (fail)
        {
          g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                                   "no driver in kernel %s for %s (on-unmatched: fail)",
                                   job->release_dir, unmatched);
          return;
        }
    }
  shoal_device_set_metadata (device, "drivers", modules);
  shoal_device_set_metadata (device, "drivers.kernel", job->release_dir);
  g_task_return_boolean (task, TRUE);
}

/* The option @name as a string list, merged with the recipe's "drivers" member */
static GStrv
string_list (ShoalStepContext *ctx, const gchar *name)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  ShoalRecipe *recipe = shoal_step_context_get_recipe (ctx);
  JsonObject *sources[2] = { shoal_step_context_get_options (ctx),
                             recipe != NULL ? shoal_recipe_get_drivers (recipe) : NULL };

  for (guint s = 0; s < G_N_ELEMENTS (sources); s++)
    {
      JsonNode *node = sources[s] != NULL ? json_object_get_member (sources[s], name) : NULL;
      JsonArray *array = node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;

      for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
        {
          const gchar *str = json_array_get_string_element (array, i);

          if (str != NULL)
            g_strv_builder_add (builder, str);
        }
    }
  return g_strv_builder_end (builder);
}

static gchar *
kernel_of (ShoalStepContext *ctx)
{
  ShoalRecipe *recipe = shoal_step_context_get_recipe (ctx);
  JsonObject *drivers = recipe != NULL ? shoal_recipe_get_drivers (recipe) : NULL;
  const gchar *kernel = shoal_step_context_get_option_string (ctx, "kernel", NULL);
  ShoalContext *context = shoal_step_context_get_context (ctx);

  if (kernel == NULL && drivers != NULL)
    kernel = json_object_get_string_member_with_default (drivers, "kernel", NULL);
  if (kernel != NULL)
    return g_strdup (kernel);
  return context != NULL ? shoal_context_get_config_string (context, "drivers", "kernel", NULL) : NULL;
}

static GStrv
kernel_roots (ShoalStepContext *ctx)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree gchar *dirs = NULL;
  g_auto(GStrv) split = NULL;

  if (context == NULL)
    return g_strv_builder_end (builder);
  dirs = shoal_context_get_config_string (context, "drivers", "kernel-dirs", "");
  split = g_strsplit (dirs, ":", -1);
  for (guint i = 0; split[i] != NULL; i++)
    {
      if (*split[i] != '\0')
        g_strv_builder_add (builder, split[i]);
    }
  for (guint i = 0; i < 2; i++)
    {
      const gchar *base = i == 0 ? shoal_context_get_state_dir (context) : shoal_context_get_data_dir (context);
      g_autofree gchar *dir = base != NULL ? g_build_filename (base, "kernels", NULL) : NULL;

      if (dir != NULL)
        g_strv_builder_add (builder, dir);
    }
  return g_strv_builder_end (builder);
}

static void
shoal_drivers_step_run_async (ShoalStep           *step,
                              ShoalStepContext    *ctx,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);
  g_autoptr(GTask) worker = NULL;
  ShoalDevice *device = shoal_step_context_get_device (ctx);
  DriversJob *job;

  g_task_set_source_tag (task, shoal_drivers_step_run_async);
  g_task_set_task_data (task, g_object_ref (ctx), g_object_unref);
  if (device == NULL || shoal_device_get_inventory (device) == NULL)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                               "device %s has no inventory: the drivers step needs the inventory step before it",
                               device != NULL ? shoal_device_get_id (device) : "(none)");
      return;
    }
  job = g_new0 (DriversJob, 1);
  job->kernel = kernel_of (ctx);
  job->roots = kernel_roots (ctx);
  job->add = string_list (ctx, "add");
  job->forbid = string_list (ctx, "forbid");
  job->classes = string_list (ctx, "classes");
  if (job->classes[0] == NULL)
    g_clear_pointer (&job->classes, g_strfreev);
  /* a deep copy: json-glib counts references without atomics, and the
   * worker drops its own */
  job->inventory = shoal_device_dup_inventory (device);
  worker = g_task_new (step, cancellable, drivers_done_cb, g_steal_pointer (&task));
  g_task_set_task_data (worker, job, (GDestroyNotify) drivers_job_free);
  g_task_run_in_thread (worker, drivers_thread);
}

static gboolean
check_string_list (JsonObject *options, const gchar *name, GError **error)
{
  JsonNode *node = json_object_get_member (options, name);
  JsonArray *array;

  if (node == NULL)
    return TRUE;
  array = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      JsonNode *elem = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (elem) || json_node_get_value_type (elem) != G_TYPE_STRING)
        array = NULL;
    }
  if (array == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("drivers: option “%s” must be a list of strings"), name);
      return FALSE;
    }
  return TRUE;
}

/* Each "classes" entry is 2, 4 or 6 hex digits */
static gboolean
check_classes (JsonObject *options, GError **error)
{
  JsonNode *node = json_object_get_member (options, "classes");
  JsonArray *array = node != NULL ? json_node_get_array (node) : NULL;

  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      const gchar *klass = json_array_get_string_element (array, i);
      gsize len = strlen (klass);

      if (len == 0)
        {
          g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                               _("drivers: option “classes” has an empty entry, which would match every PCI "
                                 "device; name PCI classes of 2, 4 or 6 hex digits (“01”, “0106”, “0c0330”)"));
          return FALSE;
        }
      if ((len != 2 && len != 4 && len != 6) || strspn (klass, "0123456789abcdefABCDEF") != len)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                       _("drivers: option “classes” takes PCI classes of 2, 4 or 6 hex digits "
                         "(“01”, “0106”, “0c0330”), not “%s”"), klass);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
shoal_drivers_step_validate_options (ShoalStep *step, JsonObject *options, GError **error)
{
  const gchar *lists[] = { "add", "forbid", "classes" };
  JsonNode *kernel = json_object_get_member (options, "kernel");
  const gchar *on_unmatched = json_object_get_string_member_with_default (options, "on-unmatched", "continue");

  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    {
      if (!check_string_list (options, lists[i], error))
        return FALSE;
    }
  if (!check_classes (options, error))
    return FALSE;
  if (kernel != NULL && (!JSON_NODE_HOLDS_VALUE (kernel) || json_node_get_value_type (kernel) != G_TYPE_STRING))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                           _("drivers: option “kernel” must be a string"));
      return FALSE;
    }
  if (g_strcmp0 (on_unmatched, "continue") != 0 && g_strcmp0 (on_unmatched, "fail") != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("drivers: option “on-unmatched” must be “continue” or “fail”, not “%s”"),
                   on_unmatched != NULL ? on_unmatched : "(not a string)");
      return FALSE;
    }
  return TRUE;
}

static ShoalStepPhase
shoal_drivers_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_DRIVERS;
}

static void
shoal_drivers_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_phase = shoal_drivers_step_get_phase;
  iface->validate_options = shoal_drivers_step_validate_options;
  iface->run_async = shoal_drivers_step_run_async;
}

static void
shoal_drivers_step_class_init (ShoalDriversStepClass *klass)
{
}

static void
shoal_drivers_step_class_finalize (ShoalDriversStepClass *klass)
{
}

static void
shoal_drivers_step_init (ShoalDriversStep *self)
{
}

void
shoal_drivers_step_register_types (GTypeModule *module)
{
  shoal_drivers_step_register_type (module);
}
