/* sa-config.c: the agent's configuration file
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa-util.h"

static char **
field (SaConfig *c, const char *key, size_t klen)
{
  static const struct { const char *key; size_t off; } keys[] = {
    { "server", offsetof (SaConfig, server) },
    { "token", offsetof (SaConfig, token) },
    { "device", offsetof (SaConfig, device) },
    { "image", offsetof (SaConfig, image) },
    { "session", offsetof (SaConfig, session) },
    { "disk", offsetof (SaConfig, disk) },
    { "kernel", offsetof (SaConfig, kernel) },
    { "modules", offsetof (SaConfig, modules) },
    { "serial", offsetof (SaConfig, serial) },
  };

  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    {
      if (strlen (keys[i].key) == klen && strncmp (keys[i].key, key, klen) == 0)
        return (char **) ((char *) c + keys[i].off);
    }
  return NULL;
}

bool
sa_config_parse (const char *text, SaConfig *config, char *err, unsigned errlen)
{
  const char *p = text;

  memset (config, 0, sizeof *config);
  while (*p)
    {
      const char *eol = strchr (p, '\n');
      const char *eq;
      size_t len = eol ? (size_t) (eol - p) : strlen (p);
      char **slot;

      eq = memchr (p, '=', len);
      if (len > 0 && *p != '#' && eq != NULL)
        {
          slot = field (config, p, (size_t) (eq - p));
          if (slot != NULL)
            {
              free (*slot);
              *slot = sa_strndup (eq + 1, len - (size_t) (eq - p) - 1);
            }
        }
      p += len;
      if (*p == '\n')
        p++;
    }
  if (config->server == NULL || config->token == NULL || *config->server == '\0')
    {
      snprintf (err, errlen, "the configuration lacks server= or token=");
      sa_config_clear (config);
      return false;
    }
  return true;
}

bool
sa_config_load (const char *path, SaConfig *config, char *err, unsigned errlen)
{
  char *text = sa_read_file (path, 1 << 20, false);
  bool ok;

  if (text == NULL)
    {
      snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
      return false;
    }
  ok = sa_config_parse (text, config, err, errlen);
  free (text);
  return ok;
}

void
sa_config_clear (SaConfig *config)
{
  free (config->server);
  free (config->token);
  free (config->device);
  free (config->image);
  free (config->session);
  free (config->disk);
  free (config->kernel);
  free (config->modules);
  free (config->serial);
  memset (config, 0, sizeof *config);
}
