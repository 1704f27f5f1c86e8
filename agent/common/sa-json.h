/* sa-json.h: a small JSON writer and reader for the target programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sa-util.h"

/* Writer: appends a JSON string literal (with quotes) to @buf */
void sa_json_append_string (SaBuf *buf, const char *str);

/* Reader */
typedef enum {
  SA_JSON_NULL,
  SA_JSON_BOOL,
  SA_JSON_NUMBER,
  SA_JSON_STRING,
  SA_JSON_ARRAY,
  SA_JSON_OBJECT,
} SaJsonType;

typedef struct SaJson SaJson;
struct SaJson {
  SaJsonType  type;
  bool        boolean;
  double      number;
  char       *string;    /* SA_JSON_STRING */
  size_t      n;         /* members of an array or object */
  char      **keys;      /* SA_JSON_OBJECT */
  SaJson    **values;    /* SA_JSON_ARRAY and SA_JSON_OBJECT */
};

/* Parses @len bytes; on error returns NULL and writes a message to @err */
SaJson      *sa_json_parse       (const char *data, size_t len, char *err, size_t errlen);
void         sa_json_free        (SaJson *node);
SaJson      *sa_json_get         (const SaJson *object, const char *key);
const char  *sa_json_get_string  (const SaJson *object, const char *key);
bool         sa_json_get_number  (const SaJson *object, const char *key, double *out);
/* The number at @key truncated to an integer; @default_value when there
 * is none or it is outside int64_t's range */
int64_t      sa_json_get_int     (const SaJson *object, const char *key, int64_t default_value);
