/* shoal-image-prune.c: retention, the older images of a name removed
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Importing an image again under its name (debian-12 every week) keeps
 * every older version and its chunks. Pruning keeps the newest @keep
 * images of each name, and any older one that is in use: named by one of
 * the caller's references (shoald gives those of its recipes and of the
 * deployments running) or held by a transfer (shoal_image_files_hold());
 * it removes the others, then every chunk no remaining image uses. The
 * whole of it runs under the store lock taken exclusively (imports wait),
 * and every manifest must load, or nothing is removed.
 */
#include "config.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "shoal-image-files-private.h"

void
shoal_image_prune_free (ShoalImagePrune *prune)
{
  if (prune == NULL)
    return;
  g_ptr_array_unref (prune->removed);
  g_ptr_array_unref (prune->kept);
  g_ptr_array_unref (prune->reasons);
  g_free (prune);
}

static ShoalImagePrune *
prune_new (void)
{
  ShoalImagePrune *prune = g_new0 (ShoalImagePrune, 1);

  prune->removed = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_image_info_free);
  prune->kept = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_image_info_free);
  prune->reasons = g_ptr_array_new_with_free_func (g_free);
  return prune;
}

static void
prune_keep (ShoalImagePrune      *prune,
            const ShoalImageInfo *info,
            const gchar          *reason)
{
  g_ptr_array_add (prune->kept, shoal_image_info_copy (info));
  g_ptr_array_add (prune->reasons, g_strdup (reason));
}

/* Whether @ref names @info among @images (oldest first), as a lookup
 * would resolve it: an id its image, a name the newest image of that
 * name, and, when no image has that name, 8 to 63 hex digits every image
 * whose id starts with them (several cannot be told apart: all stay). */
static gboolean
ref_names (GPtrArray            *images,
           const gchar          *ref,
           const ShoalImageInfo *info)
{
  g_autofree gchar *lower = NULL;

  if (shoal_manifest_is_valid_id (ref))
    return g_str_equal (ref, info->id);
  for (guint i = images->len; i > 0; i--)
    {
      const ShoalImageInfo *other = g_ptr_array_index (images, i - 1);

      if (g_strcmp0 (other->name, ref) == 0)
        return other == info;
    }
  if (!shoal_image_files_is_id_prefix (ref))
    return FALSE;
  lower = g_ascii_strdown (ref, -1);
  return g_str_has_prefix (info->id, lower);
}

/* The reasons of the references in @in_use that name @info, sorted and
 * joined, or NULL when none does */
static gchar *
in_use_reason (GPtrArray            *images,
               GHashTable           *in_use,
               const ShoalImageInfo *info)
{
  g_autoptr(GPtrArray) reasons = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer ref, reason;

  if (in_use == NULL)
    return NULL;
  g_hash_table_iter_init (&iter, in_use);
  while (g_hash_table_iter_next (&iter, &ref, &reason))
    if (ref_names (images, ref, info))
      g_ptr_array_add (reasons, reason);
  if (reasons->len == 0)
    return NULL;
  g_ptr_array_sort (reasons, (GCompareFunc) g_strcmp0);
  g_ptr_array_add (reasons, NULL);
  return g_strjoinv ("; ", (gchar **) reasons->pdata);
}

/* The images of @images (oldest first) beyond the newest @keep of their
 * name (of @name only, when given) that nothing uses, oldest first; those
 * in use go to @prune's kept with their reason */
static GPtrArray *
choose (GPtrArray       *images,
        const gchar     *name,
        guint            keep,
        GHashTable      *in_use,
        ShoalImagePrune *prune)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *chosen = g_ptr_array_new ();

  for (guint i = images->len; i > 0; i--)
    {
      ShoalImageInfo *info = g_ptr_array_index (images, i - 1);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (seen, info->name)) + 1;
      g_autofree gchar *reason = NULL;

      g_hash_table_insert (seen, info->name, GUINT_TO_POINTER (n));
      if (n <= keep || (name != NULL && g_strcmp0 (info->name, name) != 0))
        continue;
      reason = in_use_reason (images, in_use, info);
      if (reason != NULL)
        prune_keep (prune, info, reason);
      else
        g_ptr_array_insert (chosen, 0, info);
    }
  return chosen;
}

/* What a dry run checks of a removal: BUSY when a transfer holds image @id */
static gboolean
check_removable (const gchar  *root,
                 const gchar  *id,
                 GError      **error)
{
  int fd = shoal_image_files_lock_manifest (root, id, LOCK_EX);

  if (fd >= 0)
    close (fd);
  else if (errno == EWOULDBLOCK)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY, _("Image %s is in use"), id);
      return FALSE;
    }
  return TRUE;
}

/* Removes (a dry run: checks) each image of @chosen; one a transfer
 * holds, or that cannot be removed, is kept and says why */
static void
remove_chosen (const gchar     *root,
               GPtrArray       *chosen,
               gboolean         dry_run,
               ShoalImagePrune *prune)
{
  for (guint i = 0; i < chosen->len; i++)
    {
      const ShoalImageInfo *info = g_ptr_array_index (chosen, i);
      g_autoptr(GError) error = NULL;

      if (dry_run ? check_removable (root, info->id, &error)
                  : shoal_image_files_unlink_locked (root, info->id, &error))
        g_ptr_array_add (prune->removed, shoal_image_info_copy (info));
      else if (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_BUSY))
        prune_keep (prune, info, _("a transfer to devices reads it"));
      else
        prune_keep (prune, info, error->message);
    }
}

/* Bytes of the chunks that the images @prune removes use and no other
 * image of @images does: what removing them frees */
static gboolean
count_freed (const gchar     *root,
             GPtrArray       *images,
             ShoalImagePrune *prune,
             GError         **error)
{
  g_autoptr(GHashTable) removed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) other_ids = g_ptr_array_new ();
  g_autoptr(GPtrArray) removed_ids = g_ptr_array_new ();
  g_autoptr(GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) freed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  gpointer hex;

  for (guint i = 0; i < prune->removed->len; i++)
    {
      ShoalImageInfo *info = g_ptr_array_index (prune->removed, i);

      g_hash_table_add (removed, info->id);
      g_ptr_array_add (removed_ids, info->id);
    }
  for (guint i = 0; i < images->len; i++)
    {
      ShoalImageInfo *info = g_ptr_array_index (images, i);

      if (!g_hash_table_contains (removed, info->id))
        g_ptr_array_add (other_ids, info->id);
    }
  if (!shoal_image_files_collect_chunks (root, other_ids, used, error) ||
      !shoal_image_files_collect_chunks (root, removed_ids, freed, error))
    return FALSE;
  g_hash_table_iter_init (&iter, freed);
  while (g_hash_table_iter_next (&iter, &hex, NULL))
    {
      g_autofree gchar *path = NULL;
      GStatBuf st;

      if (g_hash_table_contains (used, hex))
        continue;
      path = shoal_image_files_chunk_path (root, hex);
      if (g_stat (path, &st) == 0)
        prune->freed_bytes += (guint64) st.st_size;
    }
  return TRUE;
}

static ShoalImagePrune *
prune_locked (const gchar  *root,
              const gchar  *name,
              guint         keep,
              GHashTable   *in_use,
              gboolean      dry_run,
              GError      **error)
{
  g_autoptr(ShoalImagePrune) prune = prune_new ();
  g_autoptr(GPtrArray) images = shoal_image_files_list_strict (root, error);
  g_autoptr(GPtrArray) chosen = NULL;
  g_autoptr(GError) local_error = NULL;

  if (images == NULL)
    {
      g_prefix_error (error, _("Nothing was pruned: "));
      return NULL;
    }
  chosen = choose (images, name, keep, in_use, prune);
  remove_chosen (root, chosen, dry_run, prune);
  if (dry_run)
    return count_freed (root, images, prune, error) ? g_steal_pointer (&prune) : NULL;
  if (prune->removed->len > 0 && !shoal_image_files_gc_locked (root, &prune->freed_bytes, &local_error))
    {
      g_autoptr(GString) ids = g_string_new (NULL);

      for (guint i = 0; i < prune->removed->len; i++)
        g_string_append_printf (ids, "%s%s", i > 0 ? ", " : "",
                                ((ShoalImageInfo *) g_ptr_array_index (prune->removed, i))->id);
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                  _("Images %s removed, but their chunks were kept: "), ids->str);
      return NULL;
    }
  return g_steal_pointer (&prune);
}

/**
 * shoal_image_files_prune:
 * @root: the store
 * @name: (nullable): prune the images of this name only; %NULL: of every name
 * @keep: how many images of each name stay, the newest imports (1 or more)
 * @in_use: (nullable) (element-type utf8 utf8): references to images that
 *   must stay (an id, a name: its newest image, or the start of an id, as
 *   recipes name them), each with the reason shown when it spares one
 * @dry_run: remove nothing: say what would be removed and freed
 * @error: return location for a #GError
 *
 * Removes the images beyond the newest @keep of their name, but for those
 * @in_use names and those a transfer holds, then every chunk no remaining
 * image uses. Waits for imports in progress. A manifest that cannot be
 * loaded stops it before anything is removed.
 *
 * Returns: (transfer full): what was removed (@dry_run: what would be),
 *   oldest first, and what was kept although older, with its reason; %NULL
 *   with @error
 */
ShoalImagePrune *
shoal_image_files_prune (const gchar  *root,
                         const gchar  *name,
                         guint         keep,
                         GHashTable   *in_use,
                         gboolean      dry_run,
                         GError      **error)
{
  ShoalImagePrune *prune;
  int lock_fd;

  if (keep == 0)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                           _("keep: at least the newest image of each name stays (1 or more)"));
      return NULL;
    }
  lock_fd = shoal_image_files_lock (root, LOCK_EX, error);
  if (lock_fd < 0)
    return NULL;
  prune = prune_locked (root, name, keep, in_use, dry_run, error);
  close (lock_fd);
  return prune;
}
