/* shoal-image.c: manage an image store folder from the command line
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   shoal-image --store DIR import [--name NAME] [--chunk-size BYTES] FILE
 *   shoal-image --store DIR list
 *   shoal-image --store DIR inspect [--manifest] ID|NAME
 *   shoal-image --store DIR verify ID|NAME
 *   shoal-image --store DIR rm ID|NAME
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <locale.h>
#include <stdio.h>

#include "shoal-image-files.h"

static gchar *opt_store = NULL;
static gchar *opt_name = NULL;
static gint opt_chunk_size = 0;
static gboolean opt_manifest = FALSE;
static gboolean opt_progress = FALSE;

static const GOptionEntry entries[] = {
  { "store", 's', 0, G_OPTION_ARG_FILENAME, &opt_store, N_("Image store folder"), N_("DIR") },
  { "name", 'n', 0, G_OPTION_ARG_STRING, &opt_name, N_("Image name (import)"), N_("NAME") },
  { "chunk-size", 'c', 0, G_OPTION_ARG_INT, &opt_chunk_size, N_("Chunk size in bytes (import)"), N_("BYTES") },
  { "manifest", 'm', 0, G_OPTION_ARG_NONE, &opt_manifest, N_("Print the manifest text (inspect)"), NULL },
  { "progress", 'p', 0, G_OPTION_ARG_NONE, &opt_progress, N_("Show progress (import)"), NULL },
  { NULL }
};

static void
print_progress (guint64  done,
                guint64  total,
                gpointer user_data)
{
  if (total > 0)
    g_printerr ("\r%3u%%", (guint) (done * 100 / total));
}

static int
cmd_import (const gchar *path)
{
  g_autoptr(GError) error = NULL;
  ShoalImportStats stats = { 0 };
  gint64 start = g_get_monotonic_time ();
  g_autofree gchar *id = NULL;
  gdouble secs;

  id = shoal_image_files_import (opt_store, path, opt_name, (guint32) opt_chunk_size, &stats,
                                 opt_progress ? print_progress : NULL, NULL, NULL, &error);
  if (opt_progress)
    g_printerr ("\n");
  if (id == NULL)
    {
      g_printerr (_("Import failed: %s\n"), error->message);
      return 1;
    }
  secs = (gdouble) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  g_printerr (_("%llu chunks: %llu zero, %llu written, %llu already stored; %.3f s\n"),
              (unsigned long long) stats.n_chunks, (unsigned long long) stats.n_zero,
              (unsigned long long) stats.n_written, (unsigned long long) stats.n_deduplicated, secs);
  g_print ("%s\n", id);
  return 0;
}

static int
cmd_list (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) images = shoal_image_files_list (opt_store, &error);

  if (images == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  for (guint i = 0; i < images->len; i++)
    {
      ShoalImageInfo *info = g_ptr_array_index (images, i);
      g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (info->imported);
      g_autofree gchar *when = g_date_time_format_iso8601 (dt);

      g_print ("%s  %-24s %14" G_GUINT64_FORMAT "  %s\n", info->id, info->name, info->size, when);
    }
  return 0;
}

static int
cmd_inspect (const gchar *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = shoal_image_files_inspect (opt_store, what, &error);
  g_autoptr(GBytes) text = NULL;

  if (info == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  if (opt_manifest)
    {
      text = shoal_image_files_load_manifest_bytes (opt_store, info->id, &error);
      if (text == NULL)
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
      fwrite (g_bytes_get_data (text, NULL), 1, g_bytes_get_size (text), stdout);
      return 0;
    }
  g_print ("id: %s\nname: %s\nsize: %" G_GUINT64_FORMAT "\nchunk-size: %u\nchunks: %" G_GUINT64_FORMAT
           "\nzero-chunks: %" G_GUINT64_FORMAT "\ndata-bytes: %" G_GUINT64_FORMAT
           "\nimage-sha256: %s\nimported: %" G_GINT64_FORMAT "\n",
           info->id, info->name, info->size, info->chunk_size, info->n_chunks,
           info->n_zero_chunks, info->data_bytes, info->image_sha256, info->imported);
  return 0;
}

static int
cmd_verify_or_rm (const gchar *cmd,
                  const gchar *what)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id = shoal_image_files_resolve (opt_store, what, &error);
  guint64 freed = 0;

  if (id != NULL && g_strcmp0 (cmd, "verify") == 0 &&
      shoal_image_files_verify (opt_store, id, NULL, &error))
    {
      g_print (_("%s: every chunk and the image SHA-256 match\n"), id);
      return 0;
    }
  if (id != NULL && g_strcmp0 (cmd, "rm") == 0 &&
      shoal_image_files_remove (opt_store, id, &freed, &error))
    {
      g_print (_("Removed %s, freed %llu bytes\n"), id, (unsigned long long) freed);
      return 0;
    }
  g_printerr ("%s\n", error->message);
  return 1;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *cmd;

  setlocale (LC_ALL, "");
  context = g_option_context_new (_("import FILE|URL | list | inspect ID | verify ID | rm ID"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (opt_store == NULL || argc < 2)
    {
      g_printerr (_("Usage: shoal-image --store DIR import FILE|URL | list | inspect ID | verify ID | rm ID\n"));
      return 2;
    }
  cmd = argv[1];
  if (g_strcmp0 (cmd, "list") == 0)
    return cmd_list ();
  if (argc != 3)
    {
      g_printerr (_("%s needs one argument\n"), cmd);
      return 2;
    }
  if (g_strcmp0 (cmd, "import") == 0)
    return cmd_import (argv[2]);
  if (g_strcmp0 (cmd, "inspect") == 0)
    return cmd_inspect (argv[2]);
  if (g_strcmp0 (cmd, "verify") == 0 || g_strcmp0 (cmd, "rm") == 0)
    return cmd_verify_or_rm (cmd, argv[2]);
  g_printerr (_("Unknown command %s\n"), cmd);
  return 2;
}
