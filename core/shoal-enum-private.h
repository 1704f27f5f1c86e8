/* shoal-enum-private.h: enum values as their nicks, for the public
 * *_to_string / *_from_string functions of the core's enums
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* the nick of @value in the enum @type, or "unknown" */
static inline const gchar *
shoal_enum_to_nick (GType type,
                    gint  value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  return v != NULL ? v->value_nick : "unknown";
}

/* the value of the nick @str in the enum @type into @value (may be NULL);
 * FALSE when @str is NULL or no nick of @type */
static inline gboolean
shoal_enum_from_nick (GType        type,
                      const gchar *str,
                      gint        *value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = str != NULL ? g_enum_get_value_by_nick (klass, str) : NULL;

  if (v == NULL)
    return FALSE;
  if (value != NULL)
    *value = v->value;
  return TRUE;
}

G_END_DECLS
