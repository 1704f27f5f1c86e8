/* shoal-agent-loader.c: reports the machine's hardware, fetches its
 * generated agent and hands over to it
 *
 * Reads shoal.server=, shoal.token= and shoal.device= from the kernel
 * command line, POSTs the inventory to <server>/agent/v1/inventory, GETs
 * <server>/agent/v1/agent (a compressed newc initramfs), unpacks it and
 * execs /usr/sbin/shoal-agent from it, handing it its token in the
 * environment (SHOAL_TOKEN).
 *
 * Exit status: 1 failed (the initramfs's /init powers the machine off);
 * LOADER_EXIT_REBOOT (3) the server said to reboot: a new deployment
 * replaced the one whose token this boot carries (/init reboots, and the
 * machine boots the new deployment's script).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa-archive.h"
#include "sa-http.h"
#include "sa-json.h"
#include "sa-inventory.h"
#include "sa-util.h"

#define AGENT_MAX_BYTES (256u << 20)

typedef struct {
  char       *server;
  char       *token;
  char       *device;
  const char *root;       /* prefix of /sys and /proc */
  const char *dest;       /* where the agent is unpacked */
  bool        exec_agent;
  bool        print_only;
  unsigned    deadline_s; /* total time allowed for each phase */
  bool        reboot;     /* the server said to reboot */
} Loader;

#define LOADER_EXIT_REBOOT 3

/* After a 401: whether the token was this device's until a new deployment
 * replaced it (the loader had claimed it with its inventory). The server
 * then answers GET /agent/v1/next with a reboot, and only that; any other
 * answer leaves the 401 as it was */
static bool
told_to_reboot (Loader *l)
{
  char url[2300], err[512], perr[256];
  SaHttpRequest req = { .url = url, .token = l->token, .timeout_ms = 15000 };
  SaHttpResponse resp;
  SaJson *root = NULL;
  const char *action = NULL, *reason = NULL;

  snprintf (url, sizeof url, "%s/agent/v1/next?wait=0", l->server);
  if (sa_http_do (&req, &resp, err, sizeof err) != 0)
    {
      sa_http_response_clear (&resp);
      return false;
    }
  if (resp.status == 200)
    root = sa_json_parse (resp.body.data, resp.body.len, perr, sizeof perr);
  if (root != NULL)
    {
      action = sa_json_get_string (sa_json_get (root, "instruction"), "action");
      reason = sa_json_get_string (sa_json_get (root, "instruction"), "reason");
    }
  l->reboot = action != NULL && strcmp (action, "reboot") == 0;
  if (l->reboot)
    sa_log ("token refused: a new deployment replaced this one (%s); rebooting into it",
            reason != NULL ? reason : "no reason given");
  sa_json_free (root);
  sa_http_response_clear (&resp);
  return l->reboot;
}

/* An answer of HTTP status after `attempt` tries that ends the phase: the
 * third refusal in a row that is not transient, or a 401 on which the
 * server says to reboot (l->reboot) */
static bool
given_up (Loader *l, int status, unsigned attempt)
{
  return (status == 401 && told_to_reboot (l)) || (!sa_http_status_is_transient (status) && attempt >= 3);
}

/* Bounded exponential backoff: 1 s doubling up to 8 s, until the deadline */
static bool
backoff (unsigned *delay_ms, uint64_t deadline)
{
  if (sa_now_ms () + *delay_ms > deadline)
    return false;
  sa_sleep_ms (*delay_ms);
  if (*delay_ms < 8000)
    *delay_ms *= 2;
  return true;
}

static bool
post_inventory (Loader *l, const char *json)
{
  char url[2300], err[512];
  unsigned delay = 1000;
  uint64_t deadline = sa_now_ms () + (uint64_t) l->deadline_s * 1000;

  snprintf (url, sizeof url, "%s/agent/v1/inventory", l->server);
  for (unsigned attempt = 1;; attempt++)
    {
      SaHttpRequest req = { .method = "POST", .url = url, .token = l->token,
                            .content_type = "application/json", .body = json,
                            .body_len = strlen (json), .timeout_ms = 15000 };
      SaHttpResponse resp;
      int r = sa_http_do (&req, &resp, err, sizeof err);

      if (r == 0 && resp.status >= 200 && resp.status < 300)
        {
          sa_log ("inventory posted (%zu bytes, HTTP %d)", strlen (json), resp.status);
          sa_http_response_clear (&resp);
          return true;
        }
      if (r == 0)
        sa_log ("inventory refused (attempt %u): HTTP %d %s", attempt, resp.status, resp.body.data);
      else
        sa_log ("inventory not sent (attempt %u): %s", attempt, err);
      r = r == 0 && given_up (l, resp.status, attempt) ? -2 : r;
      sa_http_response_clear (&resp);
      if (r == -2 || !backoff (&delay, deadline))
        return false;
    }
}

static bool
fetch_agent (Loader *l, SaBuf *agent)
{
  char url[2300], err[512];
  unsigned delay = 1000;
  uint64_t deadline = sa_now_ms () + (uint64_t) l->deadline_s * 1000;

  snprintf (url, sizeof url, "%s/agent/v1/agent", l->server);
  for (unsigned attempt = 1;; attempt++)
    {
      SaHttpRequest req = { .url = url, .token = l->token, .timeout_ms = 60000,
                            .max_body = AGENT_MAX_BYTES };
      SaHttpResponse resp;
      int r = sa_http_do (&req, &resp, err, sizeof err);

      if (r == 0 && resp.status == 200)
        {
          *agent = resp.body;
          sa_log ("agent fetched (%zu bytes)", agent->len);
          return true;
        }
      if (r == 0)
        sa_log ("agent not ready (attempt %u): HTTP %d %s", attempt, resp.status,
                resp.status == 503 ? "" : resp.body.data);
      else
        sa_log ("agent not fetched (attempt %u): %s", attempt, err);
      r = r == 0 && given_up (l, resp.status, attempt) ? -2 : r;
      sa_http_response_clear (&resp);
      if (r == -2 || !backoff (&delay, deadline))
        return false;
    }
}

static bool
unpack_agent (Loader *l, SaBuf *agent)
{
  SaBuf cpio;
  char err[512];
  long n;

  sa_buf_init (&cpio);
  if (!sa_decompress (agent->data, agent->len, AGENT_MAX_BYTES, &cpio, err, sizeof err))
    {
      sa_log ("cannot unpack the agent: %s", err);
      sa_buf_clear (&cpio);
      return false;
    }
  n = sa_newc_extract (cpio.data, cpio.len, l->dest, err, sizeof err);
  sa_buf_clear (&cpio);
  if (n < 0)
    {
      sa_log ("cannot unpack the agent: %s", err);
      return false;
    }
  sa_log ("agent unpacked into %s (%ld entries)", l->dest, n);
  return true;
}

static bool
read_cmdline (Loader *l, const char *path)
{
  char *cmdline = sa_read_file (path, 65536, true);

  if (cmdline == NULL)
    {
      sa_log ("cannot read %s: %s", path, strerror (errno));
      return false;
    }
  l->server = sa_cmdline_get (cmdline, "shoal.server");
  l->token = sa_cmdline_get (cmdline, "shoal.token");
  l->device = sa_cmdline_get (cmdline, "shoal.device");
  free (cmdline);
  if (l->server == NULL || l->token == NULL)
    {
      sa_log ("the kernel command line lacks shoal.server= or shoal.token=");
      return false;
    }
  /* no trailing slash: paths are appended */
  while (strlen (l->server) > 0 && l->server[strlen (l->server) - 1] == '/')
    l->server[strlen (l->server) - 1] = '\0';
  return true;
}

static void
usage (void)
{
  fprintf (stderr, "usage: shoal-agent-loader [--cmdline FILE] [--root DIR] [--dest DIR]\n"
                   "                          [--no-exec] [--print-inventory] [--deadline SECONDS]\n");
}

static int
exec_agent (Loader *l)
{
  char bin[4096], conf[4096], mods[4096];

  snprintf (bin, sizeof bin, "%s/usr/sbin/shoal-agent", strcmp (l->dest, "/") ? l->dest : "");
  snprintf (conf, sizeof conf, "%s/etc/shoal/agent.conf", strcmp (l->dest, "/") ? l->dest : "");
  snprintf (mods, sizeof mods, "%s/lib/modules", strcmp (l->dest, "/") ? l->dest : "");
  if (!l->exec_agent)
    return 0;
  /* the agent's part was made with the token of its deployment's first
   * boot; a boot after the agent had used it got a new one, which the
   * agent takes from here (agent.conf's is refused by then) */
  if (setenv ("SHOAL_TOKEN", l->token, 1) != 0)
    sa_log ("cannot hand the token over: %s", strerror (errno));
  sa_log ("handing over to %s", bin);
  execl (bin, bin, "--config", conf, "--modules", mods, (char *) NULL);
  sa_log ("cannot exec %s: %s", bin, strerror (errno));
  return 1;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "cmdline", required_argument, NULL, 'c' },
    { "root", required_argument, NULL, 'r' },
    { "dest", required_argument, NULL, 'd' },
    { "no-exec", no_argument, NULL, 'n' },
    { "print-inventory", no_argument, NULL, 'p' },
    { "deadline", required_argument, NULL, 't' },
    { NULL, 0, NULL, 0 },
  };
  Loader l = { .root = "", .dest = "/", .exec_agent = true, .deadline_s = 600 };
  const char *cmdline = "/proc/cmdline";
  char *inventory;
  SaBuf agent;
  int c, rc = 0;

  sa_log_set_prog ("shoal-agent-loader");
  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    {
      switch (c)
        {
        case 'c': cmdline = optarg; break;
        case 'r': l.root = optarg; break;
        case 'd': l.dest = optarg; break;
        case 'n': l.exec_agent = false; break;
        case 'p': l.print_only = true; break;
        case 't': l.deadline_s = (unsigned) strtoul (optarg, NULL, 10); break;
        default: usage (); return 2;
        }
    }
  inventory = sa_inventory_collect (l.root);
  if (l.print_only)
    {
      printf ("%s\n", inventory);
      free (inventory);
      return 0;
    }
  if (!read_cmdline (&l, cmdline))
    {
      free (inventory);
      free (l.server);
      free (l.token);
      free (l.device);
      return 1;
    }
  sa_log ("server %s, device %s", l.server, l.device ? l.device : "(unknown)");
  sa_buf_init (&agent);
  if (!post_inventory (&l, inventory))
    rc = l.reboot ? LOADER_EXIT_REBOOT : 1;
  else if (!fetch_agent (&l, &agent))
    rc = l.reboot ? LOADER_EXIT_REBOOT : 1;
  else if (!unpack_agent (&l, &agent))
    rc = 1;
  free (inventory);
  sa_buf_clear (&agent);
  if (rc == 0)
    rc = exec_agent (&l);
  free (l.server);
  free (l.token);
  free (l.device);
  return rc;
}
