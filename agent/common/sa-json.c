/* sa-json.c: a small JSON writer and reader for the target programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SA_JSON_MAX_DEPTH 64

void
sa_json_append_string (SaBuf *buf, const char *str)
{
  sa_buf_append (buf, "\"", 1);
  for (const unsigned char *p = (const unsigned char *) (str ? str : ""); *p; p++)
    {
      switch (*p)
        {
        case '"': sa_buf_append (buf, "\\\"", 2); break;
        case '\\': sa_buf_append (buf, "\\\\", 2); break;
        case '\n': sa_buf_append (buf, "\\n", 2); break;
        case '\r': sa_buf_append (buf, "\\r", 2); break;
        case '\t': sa_buf_append (buf, "\\t", 2); break;
        default:
          if (*p < 0x20 || *p == 0x7f)
            sa_buf_printf (buf, "\\u%04x", *p);
          else
            sa_buf_append (buf, p, 1);
        }
    }
  sa_buf_append (buf, "\"", 1);
}

typedef struct {
  const char *start;
  const char *p;
  const char *end;
  char       *err;
  size_t      errlen;
  bool        failed;
} SaParser;

static SaJson *parse_value (SaParser *ps, int depth);

static void
fail (SaParser *ps, const char *what)
{
  if (ps->failed)
    return;
  ps->failed = true;
  snprintf (ps->err, ps->errlen, "%s at byte %zu", what, (size_t) (ps->p - ps->start));
}

static void
skip_ws (SaParser *ps)
{
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static bool
accept (SaParser *ps, char c)
{
  skip_ws (ps);
  if (ps->p < ps->end && *ps->p == c)
    {
      ps->p++;
      return true;
    }
  return false;
}

static void
append_utf8 (SaBuf *buf, unsigned cp)
{
  char out[4];
  size_t n;

  if (cp < 0x80)
    { out[0] = (char) cp; n = 1; }
  else if (cp < 0x800)
    { out[0] = (char) (0xc0 | (cp >> 6)); out[1] = (char) (0x80 | (cp & 0x3f)); n = 2; }
  else if (cp < 0x10000)
    {
      out[0] = (char) (0xe0 | (cp >> 12)); out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
      out[2] = (char) (0x80 | (cp & 0x3f)); n = 3;
    }
  else
    {
      out[0] = (char) (0xf0 | (cp >> 18)); out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
      out[2] = (char) (0x80 | ((cp >> 6) & 0x3f)); out[3] = (char) (0x80 | (cp & 0x3f)); n = 4;
    }
  sa_buf_append (buf, out, n);
}

static bool
parse_hex4 (SaParser *ps, unsigned *out)
{
  unsigned v = 0;

  if (ps->end - ps->p < 4)
    return false;
  for (int i = 0; i < 4; i++)
    {
      char c = *ps->p++;

      v <<= 4;
      if (c >= '0' && c <= '9') v |= (unsigned) (c - '0');
      else if (c >= 'a' && c <= 'f') v |= (unsigned) (c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= (unsigned) (c - 'A' + 10);
      else return false;
    }
  *out = v;
  return true;
}

static bool
parse_escape (SaParser *ps, SaBuf *buf)
{
  char c;
  unsigned cp;

  if (ps->p >= ps->end)
    return false;
  c = *ps->p++;
  switch (c)
    {
    case '"': case '\\': case '/': sa_buf_append (buf, &c, 1); return true;
    case 'b': sa_buf_append (buf, "\b", 1); return true;
    case 'f': sa_buf_append (buf, "\f", 1); return true;
    case 'n': sa_buf_append (buf, "\n", 1); return true;
    case 'r': sa_buf_append (buf, "\r", 1); return true;
    case 't': sa_buf_append (buf, "\t", 1); return true;
    case 'u': break;
    default: return false;
    }
  if (!parse_hex4 (ps, &cp))
    return false;
  if (cp >= 0xd800 && cp < 0xdc00)
    {
      unsigned lo;

      if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
        return false;
      ps->p += 2;
      if (!parse_hex4 (ps, &lo) || lo < 0xdc00 || lo > 0xdfff)
        return false;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
  else if (cp >= 0xdc00 && cp < 0xe000)
    return false;
  if (cp == 0)
    return false;
  append_utf8 (buf, cp);
  return true;
}

static char *
parse_string_raw (SaParser *ps)
{
  SaBuf buf;
  bool bad = false;

  if (!accept (ps, '"'))
    {
      fail (ps, "expected a string");
      return NULL;
    }
  sa_buf_init (&buf);
  sa_buf_append (&buf, "", 0);

  while (!bad && ps->p < ps->end && *ps->p != '"')
    {
      char c = *ps->p++;

      if ((unsigned char) c < 0x20)
        bad = true;
      else if (c != '\\')
        sa_buf_append (&buf, &c, 1);
      else
        bad = !parse_escape (ps, &buf);
    }
  if (bad || ps->p >= ps->end || *ps->p != '"')
    {
      sa_buf_clear (&buf);
      fail (ps, "bad string");
      return NULL;
    }
  ps->p++;
  return sa_buf_steal (&buf);
}

static SaJson *
new_node (SaJsonType type)
{
  SaJson *node = sa_malloc0 (sizeof *node);

  node->type = type;
  return node;
}

static void
add_member (SaJson *node, char *key, SaJson *value)
{
  node->values = realloc (node->values, (node->n + 1) * sizeof *node->values);
  if (node->values == NULL)
    abort ();
  node->values[node->n] = value;
  if (node->type == SA_JSON_OBJECT)
    {
      node->keys = realloc (node->keys, (node->n + 1) * sizeof *node->keys);
      if (node->keys == NULL)
        abort ();
      node->keys[node->n] = key;
    }
  node->n++;
}

static SaJson *
parse_container (SaParser *ps, int depth, bool object)
{
  SaJson *node = new_node (object ? SA_JSON_OBJECT : SA_JSON_ARRAY);
  char close = object ? '}' : ']';

  ps->p++;
  if (accept (ps, close))
    return node;
  do
    {
      char *key = NULL;
      SaJson *value;

      if (object)
        {
          key = parse_string_raw (ps);
          if (key == NULL || !accept (ps, ':'))
            {
              free (key);
              fail (ps, "expected a member name and ':'");
              break;
            }
        }
      value = parse_value (ps, depth + 1);
      if (value == NULL)
        {
          free (key);
          break;
        }
      add_member (node, key, value);
    }
  while (accept (ps, ','));
  if (!ps->failed && !accept (ps, close))
    fail (ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
  if (ps->failed)
    {
      sa_json_free (node);
      return NULL;
    }
  return node;
}

static SaJson *
parse_number (SaParser *ps)
{
  char tmp[64];
  size_t n = 0;
  char *endp = NULL;
  SaJson *node;

  while (ps->p + n < ps->end && n < sizeof tmp - 1 && strchr ("+-0123456789.eE", ps->p[n]) != NULL)
    n++;
  memcpy (tmp, ps->p, n);
  tmp[n] = '\0';
  node = new_node (SA_JSON_NUMBER);
  node->number = strtod (tmp, &endp);
  if (n == 0 || endp != tmp + n)
    {
      free (node);
      fail (ps, "bad number");
      return NULL;
    }
  ps->p += n;
  return node;
}

static SaJson *
parse_literal (SaParser *ps, const char *word, SaJsonType type, bool value)
{
  size_t n = strlen (word);
  SaJson *node;

  if ((size_t) (ps->end - ps->p) < n || memcmp (ps->p, word, n) != 0)
    {
      fail (ps, "unexpected character");
      return NULL;
    }
  ps->p += n;
  node = new_node (type);
  node->boolean = value;
  return node;
}

static SaJson *
parse_value (SaParser *ps, int depth)
{
  SaJson *node;

  if (depth > SA_JSON_MAX_DEPTH)
    {
      fail (ps, "nested too deeply");
      return NULL;
    }
  skip_ws (ps);
  if (ps->p >= ps->end)
    {
      fail (ps, "unexpected end");
      return NULL;
    }
  switch (*ps->p)
    {
    case '{': return parse_container (ps, depth, true);
    case '[': return parse_container (ps, depth, false);
    case '"':
      node = new_node (SA_JSON_STRING);
      node->string = parse_string_raw (ps);
      if (node->string == NULL)
        {
          free (node);
          return NULL;
        }
      return node;
    case 't': return parse_literal (ps, "true", SA_JSON_BOOL, true);
    case 'f': return parse_literal (ps, "false", SA_JSON_BOOL, false);
    case 'n': return parse_literal (ps, "null", SA_JSON_NULL, false);
    default: return parse_number (ps);
    }
}

SaJson *
sa_json_parse (const char *data, size_t len, char *err, size_t errlen)
{
  SaParser ps = { data, data, data + len, err, errlen, false };
  SaJson *node;

  if (errlen > 0)
    err[0] = '\0';
  node = parse_value (&ps, 0);
  if (node == NULL)
    return NULL;
  skip_ws (&ps);
  if (ps.p != ps.end)
    {
      fail (&ps, "trailing data");
      sa_json_free (node);
      return NULL;
    }
  return node;
}

void
sa_json_free (SaJson *node)
{
  if (node == NULL)
    return;
  for (size_t i = 0; i < node->n; i++)
    {
      sa_json_free (node->values[i]);
      if (node->keys != NULL)
        free (node->keys[i]);
    }
  free (node->values);
  free (node->keys);
  free (node->string);
  free (node);
}

SaJson *
sa_json_get (const SaJson *object, const char *key)
{
  if (object == NULL || object->type != SA_JSON_OBJECT)
    return NULL;
  for (size_t i = object->n; i > 0; i--)
    {
      if (strcmp (object->keys[i - 1], key) == 0)
        return object->values[i - 1];
    }
  return NULL;
}

const char *
sa_json_get_string (const SaJson *object, const char *key)
{
  SaJson *node = sa_json_get (object, key);

  return node != NULL && node->type == SA_JSON_STRING ? node->string : NULL;
}

bool
sa_json_get_number (const SaJson *object, const char *key, double *out)
{
  SaJson *node = sa_json_get (object, key);

  if (node == NULL || node->type != SA_JSON_NUMBER)
    return false;
  *out = node->number;
  return true;
}

int64_t
sa_json_get_int (const SaJson *object, const char *key, int64_t default_value)
{
  double v;

  /* converting a double outside int64_t's range is undefined (1e300
   * gave INT64_MIN on x86): such a number is no integer here. 2^63 is
   * the first double past INT64_MAX */
  if (!sa_json_get_number (object, key, &v) || !(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
    return default_value;
  return (int64_t) v;
}
