/* sa-modload.c: loads kernel modules in modules.dep order
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-modload.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "sa-util.h"

typedef struct {
  char  *name;    /* normalised: '-' -> '_' */
  char  *path;    /* relative to the release dir */
  char **deps;    /* names */
  size_t n_deps;
  int    state;   /* 0 new, 1 loading, 2 done */
} SaMod;

typedef struct {
  SaMod *mods;
  size_t n;
  char   dir[PATH_MAX];
  int    failed;
} SaModTable;

static char *
name_of_path (const char *path, size_t len)
{
  char *copy = sa_strndup (path, len);
  char *slash = strrchr (copy, '/');
  char *name = sa_strdup (slash ? slash + 1 : copy);
  char *ko = strstr (name, ".ko");

  free (copy);
  if (ko != NULL)
    *ko = '\0';
  for (char *p = name; *p; p++)
    {
      if (*p == '-')
        *p = '_';
    }
  return name;
}

static void
parse_line (SaModTable *t, char *line)
{
  char *colon = strchr (line, ':');
  SaMod *m;
  char *save = NULL;

  if (colon == NULL)
    return;
  *colon = '\0';
  t->mods = realloc (t->mods, (t->n + 1) * sizeof *t->mods);
  if (t->mods == NULL)
    abort ();
  m = &t->mods[t->n++];
  memset (m, 0, sizeof *m);
  m->path = sa_strdup (line);
  m->name = name_of_path (line, strlen (line));
  for (char *tok = strtok_r (colon + 1, " \t", &save); tok; tok = strtok_r (NULL, " \t", &save))
    {
      m->deps = realloc (m->deps, (m->n_deps + 1) * sizeof *m->deps);
      if (m->deps == NULL)
        abort ();
      m->deps[m->n_deps++] = name_of_path (tok, strlen (tok));
    }
}

static SaMod *
lookup (SaModTable *t, const char *name)
{
  char norm[256];

  snprintf (norm, sizeof norm, "%s", name);
  for (char *p = norm; *p; p++)
    {
      if (*p == '-')
        *p = '_';
    }
  for (size_t i = 0; i < t->n; i++)
    {
      if (strcmp (t->mods[i].name, norm) == 0)
        return &t->mods[i];
    }
  return NULL;
}

static void
insert (SaModTable *t, SaMod *m)
{
  char path[PATH_MAX * 2];
  int fd;
  long r;

  snprintf (path, sizeof path, "%s/%s", t->dir, m->path);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      sa_log ("module %s: cannot open %s: %s", m->name, path, strerror (errno));
      t->failed++;
      return;
    }
  r = syscall (SYS_finit_module, fd, "", 0);
  if (r < 0 && errno != EEXIST)
    {
      sa_log ("module %s: insmod failed: %s", m->name, strerror (errno));
      t->failed++;
    }
  else
    sa_log ("module %s loaded%s", m->name, r < 0 ? " (already)" : "");
  close (fd);
}

static void
load (SaModTable *t, SaMod *m, int depth)
{
  if (m->state != 0 || depth > 64)
    return;
  m->state = 1;
  for (size_t i = 0; i < m->n_deps; i++)
    {
      SaMod *d = lookup (t, m->deps[i]);

      if (d != NULL)
        load (t, d, depth + 1);
    }
  insert (t, m);
  m->state = 2;
}

static void
table_free (SaModTable *t)
{
  for (size_t i = 0; i < t->n; i++)
    {
      for (size_t j = 0; j < t->mods[i].n_deps; j++)
        free (t->mods[i].deps[j]);
      free (t->mods[i].deps);
      free (t->mods[i].name);
      free (t->mods[i].path);
    }
  free (t->mods);
}

int
sa_modload_all (const char *moddir, const char *release, const char *names)
{
  SaModTable t = { 0 };
  struct utsname u;
  char *dep, *save = NULL, *list;

  if (release == NULL || *release == '\0')
    {
      uname (&u);
      release = u.release;
    }
  snprintf (t.dir, sizeof t.dir, "%s/%s", moddir, release);
  dep = sa_read_filef (false, "%s/modules.dep", t.dir);
  if (dep == NULL)
    {
      sa_log ("no %s/modules.dep: no modules loaded", t.dir);
      return names && *names ? 1 : 0;
    }
  for (char *line = strtok_r (dep, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    parse_line (&t, line);
  free (dep);
  list = sa_strdup (names ? names : "");
  save = NULL;
  for (char *tok = strtok_r (list, " \t,", &save); tok; tok = strtok_r (NULL, " \t,", &save))
    {
      SaMod *m = lookup (&t, tok);

      if (m == NULL)
        {
          sa_log ("module %s: not in modules.dep (built in?)", tok);
          continue;
        }
      load (&t, m, 0);
    }
  free (list);
  table_free (&t);
  return t.failed;
}
