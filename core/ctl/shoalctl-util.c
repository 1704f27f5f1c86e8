/* shoalctl-util.c: helpers of shoalctl (tables, bars, the object list)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "shoalctl.h"

/* ---- text from the daemon ------------------------------------------------ */

/* Unicode's invisible controls that reorder or separate what a terminal
 * shows (bidirectional overrides and isolates, line and paragraph
 * separators): shown escaped like the C0 and C1 controls */
static gboolean
is_format_control (gunichar c)
{
  return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x2028 && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

static gchar *
escape_text (const gchar *text, gboolean keep_lines)
{
  GString *out;
  const gchar *p, *end;

  if (text == NULL)
    return g_strdup ("");
  out = g_string_sized_new (strlen (text));
  end = text + strlen (text);
  for (p = text; p < end; )
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          /* not UTF-8: the byte, escaped */
          g_string_append_printf (out, "\\x%02x", (guchar) *p);
          p++;
          continue;
        }
      if (keep_lines && (c == '\n' || c == '\t'))
        g_string_append_c (out, (gchar) c);
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\x%02x", c);
      else if ((c >= 0x80 && c < 0xa0) || is_format_control (c))
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_len (out, p, g_utf8_next_char (p) - p);
      p = g_utf8_next_char (p);
    }
  return g_string_free (out, FALSE);
}

/**
 * shoalctl_escape:
 * @text: (nullable): a string from the daemon (an id, a UUID, a journal
 *   message, anything a device or its agent may have chosen)
 *
 * What shoalctl prints of @text: every control character (C0, including
 * ESC, BEL, CR, LF and TAB, DEL, C1, and Unicode's bidirectional and line
 * separator controls) as \xNN or \uNNNN, and every byte that is not
 * UTF-8 as \xNN; valid UTF-8 text is kept. Nothing from the daemon
 * reaches the terminal as a control sequence, nor starts a line of its
 * own. Every field shoalctl prints goes through here (tables do it
 * themselves).
 *
 * Returns: (transfer full): the text to print
 */
gchar *
shoalctl_escape (const gchar *text)
{
  return escape_text (text, FALSE);
}

/**
 * shoalctl_escape_lines:
 * @text: (nullable): a text of several lines from the daemon (a recipe
 *   diff, an error that lists several problems)
 *
 * As shoalctl_escape(), but line feeds and tabs are kept.
 *
 * Returns: (transfer full): the text to print
 */
gchar *
shoalctl_escape_lines (const gchar *text)
{
  return escape_text (text, TRUE);
}

/**
 * shoalctl_print_field:
 * @label: the label, such as "UUID:"
 * @value: (nullable): its value from the daemon; "-" when %NULL or empty
 *
 * Prints "label          value" (the value escaped) on a line.
 */
void
shoalctl_print_field (const gchar *label, const gchar *value)
{
  g_autofree gchar *shown = shoalctl_escape (value != NULL && value[0] != '\0' ? value : "-");

  g_print ("%-14s %s\n", label, shown);
}

/**
 * shoalctl_device_path:
 * @id: a device id
 *
 * Returns: (transfer full): the object path shoald exports device @id at
 */
gchar *
shoalctl_device_path (const gchar *id)
{
  g_autofree gchar *escaped = g_dbus_escape_object_path (id);

  return g_strconcat (SHOALCTL_DEVICES_PATH "/", escaped, NULL);
}

/**
 * shoalctl_device_error:
 * @id: the device id a call named
 * @error: return location for the error to report
 * @error_local: (transfer full): the error of a call on @id's object
 *
 * Reports the error of a call on a device's object: when the object does
 * not exist (the device is not enrolled, or was removed meanwhile) that is
 * "No device “id”" rather than the bus's own words, as `shoalctl show`
 * says; any other error as it is.
 *
 * Returns: %FALSE, for `return shoalctl_device_error (...)`
 */
gboolean
shoalctl_device_error (const gchar  *id,
                       GError      **error,
                       GError       *error_local)
{
  if (g_error_matches (error_local, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
      g_error_matches (error_local, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
      g_error_matches (error_local, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE) ||
      g_error_matches (error_local, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS))
    {
      g_error_free (error_local);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("No device “%s”"), id);
      return FALSE;
    }
  g_propagate_error (error, error_local);
  return FALSE;
}

/**
 * shoalctl_get_managed_objects:
 * @ctl: the client
 * @error: a #GError
 *
 * Returns: (transfer full): the a{oa{sa{sv}}} of every object of shoald
 */
GVariant *
shoalctl_get_managed_objects (ShoalCtl *ctl, GError **error)
{
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (ctl->connection, SHOALCTL_BUS_NAME, SHOALCTL_PATH,
                                       "org.freedesktop.DBus.ObjectManager",
                                       "GetManagedObjects", NULL,
                                       G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                                       G_DBUS_CALL_FLAGS_NONE, SHOALCTL_TIMEOUT_MS,
                                       NULL, error);
  if (reply == NULL)
    return NULL;
  return g_variant_get_child_value (reply, 0);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/**
 * shoalctl_list_device_ids_where:
 * @ctl: the client
 * @keep: (nullable): which devices to list, given the properties of each
 *   (every device when %NULL)
 * @error: a #GError
 *
 * Returns: (transfer full): the ids of the devices @keep keeps, sorted
 */
gchar **
shoalctl_list_device_ids_where (ShoalCtl *ctl, ShoalCtlDeviceFilter keep, GError **error)
{
  g_autoptr(GVariant) objects = shoalctl_get_managed_objects (ctl, error);
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GVariant) ifaces = NULL;
  GVariantIter iter;

  if (objects == NULL)
    return NULL;
  g_variant_iter_init (&iter, objects);
  while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", NULL, &ifaces))
    {
      g_autoptr(GVariant) props = g_variant_lookup_value (ifaces, SHOALCTL_DEVICE_IFACE,
                                                          G_VARIANT_TYPE ("a{sv}"));
      const gchar *id = NULL;

      g_clear_pointer (&ifaces, g_variant_unref);
      if (props != NULL && g_variant_lookup (props, "Id", "&s", &id) &&
          (keep == NULL || keep (props)))
        g_ptr_array_add (ids, g_strdup (id));
    }
  g_ptr_array_sort (ids, compare_strings);
  g_ptr_array_add (ids, NULL);
  return (gchar **) g_ptr_array_free (g_steal_pointer (&ids), FALSE);
}

/**
 * shoalctl_list_device_ids:
 * @ctl: the client
 * @error: a #GError
 *
 * Returns: (transfer full): the ids of every device, sorted
 */
gchar **
shoalctl_list_device_ids (ShoalCtl *ctl, GError **error)
{
  return shoalctl_list_device_ids_where (ctl, NULL, error);
}

/**
 * shoalctl_state_is_final:
 * @state: a device state
 *
 * Returns: whether a deployment ended in @state
 */
gboolean
shoalctl_state_is_final (const gchar *state)
{
  return g_strcmp0 (state, "installed") == 0 ||
         g_strcmp0 (state, "failed") == 0 ||
         g_strcmp0 (state, "cancelled") == 0;
}

/**
 * shoalctl_state_is_active:
 * @state: a device state
 *
 * Returns: whether a deployment is running in @state
 */
gboolean
shoalctl_state_is_active (const gchar *state)
{
  if (state == NULL || state[0] == '\0')
    return FALSE;
  return !shoalctl_state_is_final (state) &&
         g_strcmp0 (state, "discovered") != 0 &&
         g_strcmp0 (state, "assigned") != 0;
}

/**
 * shoalctl_format_time:
 * @time_us: microseconds since the epoch
 *
 * Returns: (transfer full): the local time, to the millisecond
 */
gchar *
shoalctl_format_time (gint64 time_us)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local (time_us / G_USEC_PER_SEC);
  g_autofree gchar *base = NULL;

  if (dt == NULL)
    return g_strdup ("?");
  base = g_date_time_format (dt, "%Y-%m-%d %H:%M:%S");
  return g_strdup_printf ("%s.%03d", base, (gint) ((time_us % G_USEC_PER_SEC) / 1000));
}

/**
 * shoalctl_progress_bar:
 * @fraction: from 0.0 to 1.0
 * @width: the number of cells between the brackets
 *
 * Returns: (transfer full): e.g. "[#####.....]  50%"
 */
gchar *
shoalctl_progress_bar (gdouble fraction, guint width)
{
  g_autoptr(GString) bar = g_string_new ("[");
  guint filled;

  fraction = CLAMP (fraction, 0.0, 1.0);
  filled = (guint) (fraction * width + 0.5);
  for (guint i = 0; i < width; i++)
    g_string_append_c (bar, i < filled ? '#' : '.');
  g_string_append_printf (bar, "] %3u%%", (guint) (fraction * 100.0 + 0.5));
  return g_string_free (g_steal_pointer (&bar), FALSE);
}

/**
 * shoalctl_check_args:
 * @args: the arguments after the command
 * @min: how many are needed
 * @max: how many are allowed (G_MAXUINT for any)
 * @usage: the command's usage, for the error
 * @error: a #GError
 *
 * Returns: whether the number of arguments fits
 */
gboolean
shoalctl_check_args (gchar      **args,
                     guint        min,
                     guint        max,
                     const gchar *usage,
                     GError     **error)
{
  guint n = args != NULL ? g_strv_length (args) : 0;

  if (n >= min && n <= max)
    return TRUE;
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, _("Usage: shoalctl %s"), usage);
  return FALSE;
}

/* ---- tables -------------------------------------------------------------- */

struct _ShoalCtlTable
{
  guint      n_columns;
  GPtrArray *rows;  /* GStrv; the first is the header */
};

static GStrv
collect_cells (const gchar *first, va_list args, guint limit)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  guint n = 0;

  for (const gchar *cell = first; cell != NULL && n < limit; cell = va_arg (args, const gchar *))
    {
      g_autofree gchar *shown = shoalctl_escape (cell);

      g_strv_builder_add (builder, shown);
      n++;
    }
  return g_strv_builder_end (builder);
}

/**
 * shoalctl_table_new:
 * @first_header: the first column's header, then the others, then %NULL
 *
 * Returns: (transfer full): a table to print aligned
 */
ShoalCtlTable *
shoalctl_table_new (const gchar *first_header, ...)
{
  ShoalCtlTable *table = g_new0 (ShoalCtlTable, 1);
  va_list args;
  GStrv header;

  va_start (args, first_header);
  header = collect_cells (first_header, args, G_MAXUINT);
  va_end (args);
  table->n_columns = g_strv_length (header);
  table->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  g_ptr_array_add (table->rows, header);
  return table;
}

/**
 * shoalctl_table_add_row:
 * @table: a table
 * @first_cell: the first cell, then the others, then %NULL
 *
 * The cells are escaped (shoalctl_escape()): a table never prints a
 * control character.
 */
void
shoalctl_table_add_row (ShoalCtlTable *table, const gchar *first_cell, ...)
{
  va_list args;

  va_start (args, first_cell);
  g_ptr_array_add (table->rows, collect_cells (first_cell, args, table->n_columns));
  va_end (args);
}

/**
 * shoalctl_table_print:
 * @table: a table
 *
 * Prints the table with its columns aligned; the last one is not padded.
 */
void
shoalctl_table_print (ShoalCtlTable *table)
{
  g_autofree guint *widths = g_new0 (guint, table->n_columns);
  g_autoptr(GString) line = g_string_new (NULL);

  for (guint r = 0; r < table->rows->len; r++)
    {
      GStrv row = g_ptr_array_index (table->rows, r);

      for (guint c = 0; row[c] != NULL; c++)
        widths[c] = MAX (widths[c], (guint) g_utf8_strlen (row[c], -1));
    }
  for (guint r = 0; r < table->rows->len; r++)
    {
      GStrv row = g_ptr_array_index (table->rows, r);

      g_string_truncate (line, 0);
      for (guint c = 0; row[c] != NULL; c++)
        {
          g_string_append (line, row[c]);
          if (row[c + 1] == NULL)
            break;
          for (guint pad = g_utf8_strlen (row[c], -1); pad < widths[c] + 2; pad++)
            g_string_append_c (line, ' ');
        }
      g_print ("%s\n", line->str);
    }
}

/**
 * shoalctl_table_free:
 * @table: a table
 */
void
shoalctl_table_free (ShoalCtlTable *table)
{
  g_ptr_array_unref (table->rows);
  g_free (table);
}
