/* shoal-multicast-source.c: image store image or plain file -> smc_manifest
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For an image store image the session is bound to the image id (SHA-256
 * of the manifest text the agent fetches over HTTP); for a plain file to
 * the SHA-256 of the protocol's binary manifest.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-multicast-source.h"

#ifdef HAVE_IMAGE_STORE
#include "shoal-image-files.h"
#endif

struct _ShoalMulticastSource
{
  smc_manifest *manifest;
  gchar        *id;
  gint          fd;
  gchar        *root;
#ifdef HAVE_IMAGE_STORE
  ShoalManifest *store_manifest;
  int            hold;      /* the image cannot be removed while it is sent */
#endif
  GMutex        lock;
};

static ShoalMulticastSource *
source_new (void)
{
  ShoalMulticastSource *self = g_new0 (ShoalMulticastSource, 1);

  self->fd = -1;
#ifdef HAVE_IMAGE_STORE
  self->hold = -1;
#endif
  g_mutex_init (&self->lock);
  return self;
}

void
shoal_multicast_source_free (ShoalMulticastSource *self)
{
  if (self == NULL)
    return;
  if (self->fd >= 0)
    close (self->fd);
  smc_manifest_free (self->manifest);
#ifdef HAVE_IMAGE_STORE
  g_clear_pointer (&self->store_manifest, shoal_manifest_free);
  shoal_image_files_release (self->hold);
#endif
  g_mutex_clear (&self->lock);
  g_free (self->root);
  g_free (self->id);
  g_free (self);
}

ShoalMulticastSource *
shoal_multicast_source_open_file (const gchar  *path,
                                  guint32       chunk_size,
                                  GError      **error)
{
  g_autoptr(ShoalMulticastSource) self = source_new ();
  gchar hex[2 * SMC_HASH_LEN + 1];

  self->fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (self->fd < 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("Cannot open image file %s: %s"),
                   path, g_strerror (errno));
      return NULL;
    }
  self->manifest = smc_manifest_from_fd (self->fd, chunk_size != 0 ? chunk_size : SMC_DEFAULT_CHUNK);
  if (self->manifest == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("Cannot read image file %s (empty or unreadable)"), path);
      return NULL;
    }
  smc_hex (self->manifest->id, SMC_HASH_LEN, hex);
  self->id = g_strdup (hex);
  return g_steal_pointer (&self);
}

#ifdef HAVE_IMAGE_STORE
static smc_manifest *
convert_manifest (const ShoalManifest *sm,
                  const gchar         *id)
{
  smc_manifest *m = smc_manifest_new (sm->size, sm->chunk_size);

  if (m == NULL)
    return NULL;
  for (guint64 i = 0; i < sm->n_chunks; i++)
    {
      if (shoal_manifest_chunk_is_zero (sm, i))
        m->flags[i] = SMC_CHUNK_ZERO;
      else
        memcpy (m->hashes[i], shoal_manifest_chunk_digest (sm, i), SMC_HASH_LEN);
    }
  if (smc_unhex (id, m->id, SMC_HASH_LEN) < 0)
    g_clear_pointer (&m, smc_manifest_free);
  return m;
}
#endif

ShoalMulticastSource *
shoal_multicast_source_open_store (const gchar  *root,
                                   JsonObject   *image,
                                   GError      **error)
{
#ifdef HAVE_IMAGE_STORE
  const gchar *name = json_object_get_string_member_with_default (image, "name", NULL);
  const gchar *id = json_object_get_string_member_with_default (image, "id", NULL);
  g_autoptr(ShoalMulticastSource) self = source_new ();
  g_autoptr(ShoalImageInfo) info = NULL;

  info = shoal_image_files_inspect (root, id != NULL ? id : name, error);
  if (info == NULL)
    return NULL;
  /* held for the whole session, unicast repairs included */
  self->hold = shoal_image_files_hold (root, info->id, error);
  if (self->hold < 0)
    return NULL;
  self->store_manifest = shoal_image_files_load_manifest (root, info->id, error);
  if (self->store_manifest == NULL)
    return NULL;
  self->manifest = convert_manifest (self->store_manifest, info->id);
  if (self->manifest == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("Image %s cannot be described for multicast"), info->id);
      return NULL;
    }
  self->id = g_strdup (info->id);
  self->root = g_strdup (root);
  return g_steal_pointer (&self);
#else
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
               _("Built without the image store: give the step an \"image-path\""));
  return NULL;
#endif
}

const smc_manifest *shoal_multicast_source_get_manifest (ShoalMulticastSource *self) { return self->manifest; }
const gchar *shoal_multicast_source_get_id (ShoalMulticastSource *self) { return self->id; }
gboolean shoal_multicast_source_is_store (ShoalMulticastSource *self) { return self->root != NULL; }

guint64
shoal_multicast_source_data_chunks (ShoalMulticastSource *self)
{
  guint64 n = 0;

  for (guint32 i = 0; i < self->manifest->n_chunks; i++)
    n += (self->manifest->flags[i] & SMC_CHUNK_ZERO) == 0;
  return n;
}

int
shoal_multicast_source_read_chunk (void    *user,
                                   uint32_t idx,
                                   uint8_t *buf,
                                   size_t   len)
{
  ShoalMulticastSource *self = user;
  gsize done = 0;

#ifdef HAVE_IMAGE_STORE
  if (self->root != NULL)
    {
      g_autoptr(GError) error = NULL;

      if (!shoal_image_files_read_chunk (self->root, self->store_manifest, idx, buf, &error))
        {
          g_warning ("Reading chunk %u of image %s: %s", idx, self->id, error->message);
          return -1;
        }
      return 0;
    }
#endif
  while (done < len)
    {
      gssize n = pread (self->fd, buf + done, len - done,
                        (off_t) idx * self->manifest->chunk_size + (off_t) done);
      if (n <= 0)
        return -1;
      done += (gsize) n;
    }
  return 0;
}
