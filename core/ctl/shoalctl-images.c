/* shoalctl-images.c: the image store commands of shoalctl (images,
 * image-import, image-cancel, image-show, image-rm, image-prune,
 * image-verify)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <glib-unix.h>
#include <signal.h>
#include <unistd.h>

#include "shoalctl.h"

static const gchar *
lookup_string (GVariant *image, const gchar *key)
{
  const gchar *value = NULL;

  if (!g_variant_lookup (image, key, "&s", &value))
    return "?";
  return value;
}

static guint64
lookup_uint64 (GVariant *image, const gchar *key)
{
  guint64 value = 0;

  g_variant_lookup (image, key, "t", &value);
  return value;
}

static gchar *
format_imported (GVariant *image)
{
  g_autoptr(GDateTime) dt = NULL;
  gint64 imported = 0;

  if (!g_variant_lookup (image, "imported", "x", &imported))
    return g_strdup ("?");
  dt = g_date_time_new_from_unix_local (imported);
  return dt != NULL ? g_date_time_format (dt, "%Y-%m-%d %H:%M:%S") : g_strdup ("?");
}

gboolean
shoalctl_cmd_images (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) images = NULL;
  g_autoptr(ShoalCtlTable) table = NULL;
  GVariantIter iter;
  GVariant *next;

  if (!shoalctl_check_args (args, 0, 0, "images", error))
    return FALSE;
  if (!shoal_dbus_manager_call_list_images_sync (ctl->manager, &images, NULL, error))
    return FALSE;
  table = shoalctl_table_new (_("ID"), _("NAME"), _("SIZE"), _("STORED"), _("IMPORTED"), NULL);
  g_variant_iter_init (&iter, images);
  while ((next = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr(GVariant) image = next;
      g_autofree gchar *short_id = g_strndup (lookup_string (image, "id"), 12);
      g_autofree gchar *size = g_format_size (lookup_uint64 (image, "size"));
      g_autofree gchar *stored = g_format_size (lookup_uint64 (image, "data-bytes"));
      g_autofree gchar *imported = format_imported (image);

      shoalctl_table_add_row (table, short_id, lookup_string (image, "name"), size, stored,
                              imported, NULL);
    }
  shoalctl_table_print (table);
  return TRUE;
}

typedef struct
{
  GMainLoop        *loop;
  ShoalDBusManager *manager;
  const gchar      *path;
  const gchar      *display;        /* path as the daemon shows it: no password */
  gboolean          shown;
  gboolean          cancelling;
  gchar            *id;
  GError           *error;
} ImportWait;

/* The daemon reads or downloads the image: a path is made absolute, a URL
 * kept as it is */
static gchar *
import_path_of (const gchar *arg)
{
  if (g_str_has_prefix (arg, "http://") || g_str_has_prefix (arg, "https://"))
    return g_strdup (arg);
  return g_canonicalize_filename (arg, NULL);
}

static void
on_cancel_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *shown = NULL;
  guint n = 0;

  /* the import's own reply says how it ended; this one only if it failed */
  if (shoal_dbus_manager_call_cancel_import_finish (SHOAL_DBUS_MANAGER (source), &n, result, &error))
    return;
  shown = shoalctl_escape_lines (error->message);
  g_printerr (_("Cannot cancel the import: %s\n"), shown);
}

/* Ctrl-C during an import: the daemon is asked to stop it, and the import's
 * reply (Cancelled) ends the wait; a second Ctrl-C ends shoalctl at once */
static gboolean
on_import_interrupt (gpointer user_data)
{
  ImportWait *wait = user_data;

  if (wait->cancelling)
    _exit (130);
  wait->cancelling = TRUE;
  if (wait->shown)
    g_printerr ("\n");
  g_printerr (_("Cancelling the import of %s…\n"), wait->display);
  shoal_dbus_manager_call_cancel_import (wait->manager, wait->path, NULL, on_cancel_done, wait);
  return G_SOURCE_CONTINUE;
}

/* a URL without its password, as the daemon's progress signals show it
 * (shoal_image_fetch_display()) */
static gchar *
display_source (const gchar *path)
{
  g_autoptr(GUri) parsed = g_uri_parse (path, G_URI_FLAGS_HAS_PASSWORD, NULL);

  return parsed != NULL ? g_uri_to_string_partial (parsed, G_URI_HIDE_PASSWORD) : g_strdup (path);
}

/* progress on a terminal only: "path: 42 % (1.2 GB of 2.9 GB)" */
static void
on_import_progress (ShoalDBusManager *manager,
                    const gchar      *path,
                    guint64           done,
                    guint64           total,
                    ImportWait       *wait)
{
  g_autofree gchar *done_text = NULL;
  g_autofree gchar *total_text = NULL;
  g_autofree gchar *shown = NULL;

  if (g_strcmp0 (path, wait->display) != 0 || total == 0 || !isatty (STDERR_FILENO))
    return;
  shown = shoalctl_escape (path);
  done_text = g_format_size (done);
  total_text = g_format_size (total);
  g_printerr ("\r");
  /* TRANSLATORS: a file path, a percentage, then two sizes such as "1.2 GB" */
  g_printerr (_("%s: %3u %% (%s of %s)"), shown, (guint) (done * 100 / total), done_text, total_text);
  wait->shown = TRUE;
}

static void
on_import_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ImportWait *wait = user_data;

  shoal_dbus_manager_call_import_image_finish (SHOAL_DBUS_MANAGER (source), &wait->id, result, &wait->error);
  g_main_loop_quit (wait->loop);
}

gboolean
shoalctl_cmd_image_import (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autofree gchar *path = NULL;
  g_autofree gchar *display = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  ImportWait wait = { 0 };
  gulong handler;
  guint interrupt;

  if (!shoalctl_check_args (args, 1, 1, "image-import <path|URL> [--name NAME] [--chunk-size BYTES]",
                            error))
    return FALSE;
  if (ctl->chunk_size < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--chunk-size must not be negative"));
      return FALSE;
    }
  /* a large image takes longer than any fixed timeout (Ctrl-C cancels) */
  path = import_path_of (args[0]);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (ctl->manager), G_MAXINT);
  loop = g_main_loop_new (NULL, FALSE);
  wait.loop = loop;
  wait.manager = ctl->manager;
  wait.path = path;
  display = display_source (path);
  wait.display = display;
  handler = g_signal_connect (ctl->manager, "image-import-progress", G_CALLBACK (on_import_progress), &wait);
  interrupt = g_unix_signal_add (SIGINT, on_import_interrupt, &wait);
  shoal_dbus_manager_call_import_image (ctl->manager, path, ctl->name != NULL ? ctl->name : "",
                                        (guint32) ctl->chunk_size, NULL, on_import_done, &wait);
  g_main_loop_run (loop);
  g_source_remove (interrupt);
  g_signal_handler_disconnect (ctl->manager, handler);
  if (wait.shown)
    g_printerr ("\n");
  if (wait.error != NULL)
    {
      g_propagate_error (error, wait.error);
      return FALSE;
    }
  {
    g_autofree gchar *shown = shoalctl_escape (wait.id);

    g_print ("%s\n", shown);
  }
  g_free (wait.id);
  return TRUE;
}

gboolean
shoalctl_cmd_image_cancel (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autofree gchar *path = NULL;
  guint n = 0;

  if (!shoalctl_check_args (args, 1, 1, "image-cancel <path|URL>", error))
    return FALSE;
  path = import_path_of (args[0]);
  if (!shoal_dbus_manager_call_cancel_import_sync (ctl->manager, path, &n, NULL, error))
    return FALSE;
  if (n == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("No import of %s is running"), path);
      return FALSE;
    }
  /* TRANSLATORS: a count, then a file path or URL */
  g_print (g_dngettext (GETTEXT_PACKAGE, "Cancelled %u import of %s\n", "Cancelled %u imports of %s\n", n),
           n, path);
  return TRUE;
}

gboolean
shoalctl_cmd_image_show (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) image = NULL;
  g_autofree gchar *size = NULL;
  g_autofree gchar *stored = NULL;
  g_autofree gchar *imported = NULL;
  guint32 chunk_size = 0;

  if (!shoalctl_check_args (args, 1, 1, "image-show <id|name>", error))
    return FALSE;
  if (!shoal_dbus_manager_call_inspect_image_sync (ctl->manager, args[0], &image, NULL, error))
    return FALSE;
  size = g_format_size_full (lookup_uint64 (image, "size"), G_FORMAT_SIZE_LONG_FORMAT);
  stored = g_format_size_full (lookup_uint64 (image, "data-bytes"), G_FORMAT_SIZE_LONG_FORMAT);
  imported = format_imported (image);
  g_variant_lookup (image, "chunk-size", "u", &chunk_size);
  shoalctl_print_field (_("Id:"), lookup_string (image, "id"));
  shoalctl_print_field (_("Name:"), lookup_string (image, "name"));
  shoalctl_print_field (_("Size:"), size);
  shoalctl_print_field (_("Stored:"), stored);
  g_print ("%-14s %u\n", _("Chunk size:"), chunk_size);
  g_print ("%-14s %" G_GUINT64_FORMAT "\n", _("Chunks:"), lookup_uint64 (image, "chunks"));
  g_print ("%-14s %" G_GUINT64_FORMAT "\n", _("Zero chunks:"), lookup_uint64 (image, "zero-chunks"));
  shoalctl_print_field (_("SHA-256:"), lookup_string (image, "image-sha256"));
  shoalctl_print_field (_("Imported:"), imported);
  return TRUE;
}

gboolean
shoalctl_cmd_image_verify (ShoalCtl *ctl, gchar **args, GError **error)
{
  if (!shoalctl_check_args (args, 1, 1, "image-verify <id|name>", error))
    return FALSE;
  /* the daemon reads the whole image back: no fixed timeout, as for an import */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (ctl->manager), G_MAXINT);
  if (!shoal_dbus_manager_call_verify_image_sync (ctl->manager, args[0], NULL, error))
    return FALSE;
  /* TRANSLATORS: %s is an image id or name */
  g_print (_("%s: every chunk and the whole image match their SHA-256\n"), args[0]);
  return TRUE;
}

gboolean
shoalctl_cmd_image_rm (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autofree gchar *freed_text = NULL;
  guint64 freed = 0;

  if (!shoalctl_check_args (args, 1, 1, "image-rm <id|name> [--force]", error))
    return FALSE;
  if (ctl->force)
    {
      g_auto(GVariantDict) options = G_VARIANT_DICT_INIT (NULL);

      g_variant_dict_insert (&options, "force", "b", TRUE);
      if (!shoal_dbus_manager_call_remove_image_with_options_sync (ctl->manager, args[0],
                                                                   g_variant_dict_end (&options),
                                                                   &freed, NULL, error))
        return FALSE;
    }
  /* without --force, the method every shoald has */
  else if (!shoal_dbus_manager_call_remove_image_sync (ctl->manager, args[0], &freed, NULL, error))
    return FALSE;
  freed_text = g_format_size (freed);
  /* TRANSLATORS: %s is an image id or name, then a size such as "12.3 MB" */
  g_print (_("Removed %s, freed %s\n"), args[0], freed_text);
  return TRUE;
}

static void
add_prune_rows (ShoalCtlTable *table, GVariant *images, const gchar *action)
{
  GVariantIter iter;
  GVariant *next;

  g_variant_iter_init (&iter, images);
  while ((next = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr(GVariant) image = next;
      g_autofree gchar *short_id = g_strndup (lookup_string (image, "id"), 12);
      g_autofree gchar *imported = format_imported (image);
      const gchar *reason = NULL;

      g_variant_lookup (image, "reason", "&s", &reason);
      shoalctl_table_add_row (table, action, short_id, lookup_string (image, "name"), imported,
                              reason != NULL ? reason : "", NULL);
    }
}

gboolean
shoalctl_cmd_image_prune (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_auto(GVariantDict) options = G_VARIANT_DICT_INIT (NULL);
  g_autoptr(GVariant) removed = NULL;
  g_autoptr(GVariant) kept = NULL;
  g_autoptr(ShoalCtlTable) table = NULL;
  g_autofree gchar *freed_text = NULL;
  guint64 freed = 0;
  gsize n;

  if (!shoalctl_check_args (args, 0, 1, "image-prune [NAME] [--keep N] [--dry-run]", error))
    return FALSE;
  if (ctl->keep != SHOALCTL_KEEP_UNSET && ctl->keep < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _("--keep must not be negative"));
      return FALSE;
    }
  if (ctl->keep != SHOALCTL_KEEP_UNSET)
    g_variant_dict_insert (&options, "keep", "u", (guint32) ctl->keep);
  if (args[0] != NULL)
    g_variant_dict_insert (&options, "name", "s", args[0]);
  if (ctl->dry_run)
    g_variant_dict_insert (&options, "dry-run", "b", TRUE);
  if (!shoal_dbus_manager_call_prune_images_sync (ctl->manager, g_variant_dict_end (&options),
                                                  &removed, &kept, &freed, NULL, error))
    return FALSE;
  n = g_variant_n_children (removed);
  table = shoalctl_table_new ("", _("ID"), _("NAME"), _("IMPORTED"), _("KEPT BECAUSE"), NULL);
  /* TRANSLATORS: what image-prune did to an image: the first column of its table */
  add_prune_rows (table, removed, ctl->dry_run ? _("would remove") : _("removed"));
  add_prune_rows (table, kept, _("kept"));
  if (n + g_variant_n_children (kept) > 0)
    shoalctl_table_print (table);
  freed_text = g_format_size (freed);
  if (n == 0)
    g_print (_("No image to remove\n"));
  else if (ctl->dry_run)
    /* TRANSLATORS: a count of images, then a size such as "12.3 MB" */
    g_print (g_dngettext (GETTEXT_PACKAGE, "Would remove %zu image and free %s\n",
                          "Would remove %zu images and free %s\n", n), n, freed_text);
  else
    /* TRANSLATORS: a count of images, then a size such as "12.3 MB" */
    g_print (g_dngettext (GETTEXT_PACKAGE, "Removed %zu image, freed %s\n",
                          "Removed %zu images, freed %s\n", n), n, freed_text);
  return TRUE;
}
