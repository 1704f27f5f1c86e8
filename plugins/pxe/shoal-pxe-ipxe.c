/* shoal-pxe-ipxe.c: iPXE scripts from the templates in data/ipxe
 *
 * Templates hold @NAME@ placeholders. Every placeholder must have a
 * value, and values may not break out of their line (no newline, no
 * NUL), so a recipe cannot inject iPXE commands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "shoal-error.h"
#include "shoal-pxe-ipxe.h"

gchar *
shoal_pxe_ipxe_load_template (const gchar *dir, const gchar *name, GError **error)
{
  g_autofree gchar *file = g_strdup_printf ("%s.ipxe.in", name);
  g_autofree gchar *path = g_build_filename (dir, file, NULL);
  gchar *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, error))
    {
      g_prefix_error (error, "cannot read the iPXE template %s: ", path);
      return NULL;
    }
  return text;
}

static const gchar *
lookup (const gchar * const *vars, const gchar *name, gsize len)
{
  for (guint i = 0; vars[i] != NULL && vars[i + 1] != NULL; i += 2)
    if (strlen (vars[i]) == len && strncmp (vars[i], name, len) == 0)
      return vars[i + 1];
  return NULL;
}

static gboolean
append_value (GString *out, const gchar *name, gsize len, const gchar *value, GError **error)
{
  if (value == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   "iPXE template placeholder @%.*s@ has no value", (gint) len, name);
      return FALSE;
    }
  if (strpbrk (value, "\r\n") != NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "value of @%.*s@ spans several lines", (gint) len, name);
      return FALSE;
    }
  g_string_append (out, value);
  return TRUE;
}

/**
 * shoal_pxe_ipxe_render:
 * @vars: name, value, name, value, ..., %NULL
 */
gchar *
shoal_pxe_ipxe_render (const gchar *template_text, const gchar * const *vars, GError **error)
{
  g_autoptr(GString) out = g_string_new (NULL);
  const gchar *p = template_text;

  while (*p != '\0')
    {
      const gchar *at = strchr (p, '@');
      const gchar *end;
      gsize len;

      if (at == NULL)
        {
          g_string_append (out, p);
          break;
        }
      g_string_append_len (out, p, at - p);
      end = strchr (at + 1, '@');
      len = end != NULL ? (gsize) (end - at - 1) : 0;
      /* only @UPPER_CASE@ is a placeholder; other @ stay as they are */
      if (end == NULL || len == 0 || strspn (at + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != len)
        {
          g_string_append_c (out, '@');
          p = at + 1;
          continue;
        }
      if (!append_value (out, at + 1, len, lookup (vars, at + 1, len), error))
        return NULL;
      p = end + 1;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* a recipe's kernel or initrd: a URL as it is, or a path below the boot
 * files directory, served under @files_url */
gchar *
shoal_pxe_ipxe_file_url (const gchar *files_url, const gchar *path_or_url)
{
  g_autofree gchar *escaped = NULL;

  if (g_str_has_prefix (path_or_url, "http://") || g_str_has_prefix (path_or_url, "https://"))
    return g_strdup (path_or_url);
  while (*path_or_url == '/')
    path_or_url++;
  escaped = g_uri_escape_string (path_or_url, "/", FALSE);
  return g_strdup_printf ("%s/%s", files_url, escaped);
}

/* the last path component of a URL, without its query */
gchar *
shoal_pxe_ipxe_basename (const gchar *url)
{
  g_autofree gchar *path = g_strndup (url, strcspn (url, "?#"));
  const gchar *slash = strrchr (path, '/');

  return g_strdup (slash != NULL ? slash + 1 : path);
}
