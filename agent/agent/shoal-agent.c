/* shoal-agent.c: the per-device deployment agent
 *
 * Loads its drivers, brings up the network, tells the server it runs
 * ("agent-running"), then long-polls <server>/agent/v1/next for its
 * instructions and carries them out: "unicast-receive" (write the image
 * from the manifest and chunks over HTTP, every chunk verified),
 * "multicast-receive" (through plugins/multicast/proto when built in),
 * "reboot" and "poweroff". Progress and results go to
 * <server>/agent/v1/event as {"event": name, "data": {...}}.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

#include "sa-config.h"
#include "sa-gpt.h"
#include "sa-http.h"
#include "sa-image.h"
#include "sa-json.h"
#include "sa-modload.h"
#include "sa-util.h"

#ifdef SHOAL_AGENT_HAVE_MULTICAST
#include "sa-multicast.h"
#endif

typedef struct {
  SaConfig  config;
  char     *modules_dir;
  uint64_t  serial;
  bool      executing;   /* events name instruction @serial */
  SaCancel *cancel;      /* the receive under way, while a watch runs */
  uint64_t  last_progress_ms;
  double    last_fraction;
  bool      once;        /* tests: stop after the first instruction */
  unsigned  max_polls;   /* 0: forever */
} Agent;

/* Posts {"event": name, "data": data_json}; bounded retries, none after
 * a final refusal (a 401: the token of a deployment that another one
 * replaced, whose agent was told to reboot, posts "rebooting" in vain) */
static bool
post_event (Agent *a, const char *name, const char *data_json)
{
  char url[2300], err[512];
  SaBuf body;
  bool ok = false, final = false;

  snprintf (url, sizeof url, "%s/agent/v1/event", a->config.server);
  sa_buf_init (&body);
  sa_buf_append_str (&body, "{\"event\":");
  sa_json_append_string (&body, name);
  sa_buf_printf (&body, ",\"data\":%s", data_json ? data_json : "{}");
  /* the instruction it answers: the server drops the events of one it
   * replaced since (a cancelled deployment's) */
  if (a->executing)
    sa_buf_printf (&body, ",\"serial\":%llu", (unsigned long long) a->serial);
  sa_buf_append_str (&body, "}");
  for (unsigned attempt = 1, delay = 500; attempt <= 5 && !ok && !final; attempt++, delay *= 2)
    {
      SaHttpRequest req = { .method = "POST", .url = url, .token = a->config.token,
                            .body = body.data, .body_len = body.len, .timeout_ms = 15000 };
      SaHttpResponse resp;

      if (sa_http_do (&req, &resp, err, sizeof err) == 0)
        {
          ok = resp.status >= 200 && resp.status < 300;
          final = !ok && !sa_http_status_is_transient (resp.status);
          if (!ok)
            snprintf (err, sizeof err, "HTTP %d %s", resp.status, resp.body.data);
        }
      sa_http_response_clear (&resp);
      if (!ok)
        sa_log ("event %s not posted (attempt %u%s): %s", name, attempt, final ? ", refused for good" : "", err);
      if (!ok && !final)
        sa_sleep_ms (delay);
    }
  sa_buf_clear (&body);
  return ok;
}

static void
post_error (Agent *a, const char *action, const char *message)
{
  SaBuf data;

  if (sa_cancel_is_set (a->cancel))
    {
      /* the server gave it another instruction: nobody waits for this one */
      sa_log ("%s stopped: %s", action, message);
      return;
    }
  sa_log ("%s failed: %s", action, message);
  sa_buf_init (&data);
  sa_buf_append_str (&data, "{\"action\":");
  sa_json_append_string (&data, action);
  sa_buf_append_str (&data, ",\"message\":");
  sa_json_append_string (&data, message);
  sa_buf_append_str (&data, "}");
  post_event (a, "error", data.data);
  sa_buf_clear (&data);
}

static bool
has_ipv4 (void)
{
  struct ifaddrs *ifa = NULL;
  bool found = false;

  if (getifaddrs (&ifa) < 0)
    return false;
  for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next)
    found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !(i->ifa_flags & IFF_LOOPBACK);
  freeifaddrs (ifa);
  return found;
}

static int
run (const char *const argv[])
{
  pid_t pid = fork ();
  int status = 0;

  if (pid == 0)
    {
      execvp (argv[0], (char *const *) argv);
      _exit (127);
    }
  if (pid < 0 || waitpid (pid, &status, 0) < 0)
    return -1;
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* The loader's init already configured the network; only if no interface
 * has an IPv4 address does the agent run busybox udhcpc on each NIC */
static void
network_up (void)
{
  struct dirent **names = NULL;
  int n;

  for (int i = 0; i < 50 && !has_ipv4 (); i++)
    sa_sleep_ms (100);
  if (has_ipv4 ())
    return;
  n = scandir ("/sys/class/net", &names, NULL, alphasort);
  for (int i = 0; i < n; i++)
    {
      char dev[512];
      struct stat st;
      const char *name = names[i]->d_name;

      snprintf (dev, sizeof dev, "/sys/class/net/%s/device", name);
      if (name[0] != '.' && stat (dev, &st) == 0 && !has_ipv4 ())
        {
          const char *up[] = { "ip", "link", "set", name, "up", NULL };
          const char *dhcp[] = { "udhcpc", "-i", name, "-n", "-q", "-t", "5", "-T", "2", NULL };

          run (up);
          sa_log ("udhcpc on %s: exit %d", name, run (dhcp));
        }
      free (names[i]);
    }
  free (names);
}

static void
progress_cb (void *user_data, uint64_t done, uint64_t total)
{
  Agent *a = user_data;
  double fraction = total ? (double) done / (double) total : 1.0;
  uint64_t now = sa_now_ms ();
  char data[256];

  if (fraction < 1.0 && fraction - a->last_fraction < 0.05 && now - a->last_progress_ms < 2000)
    return;
  a->last_fraction = fraction;
  a->last_progress_ms = now;
  snprintf (data, sizeof data, "{\"fraction\":%.4f,\"bytes\":%llu,\"total\":%llu}", fraction,
            (unsigned long long) done, (unsigned long long) total);
  post_event (a, "progress", data);
}

/* @str as a JSON string literal (malloc'd) */
static char *
json_quote (const char *str)
{
  SaBuf buf;

  sa_buf_init (&buf);
  sa_json_append_string (&buf, str);
  return sa_buf_steal (&buf);
}

/* The image's size in bytes as the instruction gives it ("size"), 0 when
 * it does not */
static uint64_t
image_size_of (const SaJson *ins)
{
  int64_t size = sa_json_get_int (ins, "size", 0);

  return size > 0 ? (uint64_t) size : 0;
}

/* The image id the manifest must hash to: "image_id", or "image" when it is an id */
static const char *
image_id_of (const SaJson *ins)
{
  const char *id = sa_json_get_string (ins, "image_id");
  const char *image = sa_json_get_string (ins, "image");

  if (id != NULL)
    return id;
  return image != NULL && shoal_manifest_is_valid_id (image) ? image : NULL;
}

/* After the image is written and verified: the disk's last MiB past it
 * wiped, the image's backup GPT to the end of a larger disk (sa-gpt.h).
 * The member "partition_table" of the event "image-written" (with its
 * leading comma): that, and what the receiver zeroed of the earlier
 * system's partitions before it wrote the image (@wiped_before); empty
 * when there was nothing to do */
static char *
fit_partition_table (const char *disk, uint64_t image_size, const char *wiped_before)
{
  char msg[1024];
  SaBuf member, text;
  SaGptOutcome outcome = sa_gpt_fit_path (disk, image_size, msg, sizeof msg);

  sa_buf_init (&text);
  if (outcome != SA_GPT_NO_TABLE)
    sa_buf_append_str (&text, msg);
  if (wiped_before[0] != '\0')
    sa_buf_printf (&text, "%s%s", text.len > 0 ? "; " : "", wiped_before);
  if (text.len == 0)
    {
      sa_buf_clear (&text);
      return sa_strdup ("");
    }
  sa_log ("%s: %s", disk, text.data);
  sa_buf_init (&member);
  sa_buf_append_str (&member, ",\"partition_table\":");
  sa_json_append_string (&member, text.data);
  sa_buf_clear (&text);
  return sa_buf_steal (&member);
}

static void
do_unicast (Agent *a, const SaJson *ins)
{
  const char *manifest = sa_json_get_string (ins, "manifest");
  const char *disk = sa_json_get_string (ins, "disk");
  char *fallback = NULL;
  SaImageJob job = { 0 };
  SaImageResult result;
  char err[1024], data[3072];

  if (manifest == NULL)
    manifest = sa_json_get_string (ins, "manifest_url");
  if (disk == NULL && a->config.disk && *a->config.disk)
    disk = a->config.disk;
  if (disk == NULL)
    disk = fallback = sa_image_default_disk ("/sys/block", image_size_of (ins), err, sizeof err);
  if (manifest == NULL || disk == NULL)
    {
      post_error (a, "unicast-receive", manifest ? err : "the instruction names no manifest");
      free (fallback);
      return;
    }
  job = (SaImageJob) { a->config.server, a->config.token, manifest,
                       image_id_of (ins),
                       sa_json_get_string (ins, "chunk_url"), disk, progress_cb, a, a->cancel };
  a->last_fraction = 0;
  a->last_progress_ms = 0;
  if (!sa_image_unicast_receive (&job, &result, err, sizeof err))
    post_error (a, "unicast-receive", err);
  else
    {
      char *qdisk = json_quote (disk);
      char *table = fit_partition_table (disk, result.bytes, result.wiped);

      snprintf (data, sizeof data, "{\"disk\":%s,\"bytes\":%llu,\"chunks\":%llu,"
                "\"zero_chunks\":%llu,\"kept_chunks\":%llu,\"image\":\"%s\",\"image_sha256\":\"%s\","
                "\"mode\":\"unicast\"%s}",
                qdisk, (unsigned long long) result.bytes, (unsigned long long) result.chunks,
                (unsigned long long) result.zero_chunks, (unsigned long long) result.kept_chunks,
                result.image_id, result.image_sha256, table);
      free (qdisk);
      free (table);
      sa_log ("image written to %s: %llu bytes", disk, (unsigned long long) result.bytes);
      post_event (a, "image-written", data);
    }
  free (fallback);
}

#ifdef SHOAL_AGENT_HAVE_MULTICAST
/* the receiver joined the session's group: said only then, a join that
 * fails is an "error" instead */
static void
multicast_joined_cb (void *data)
{
  post_event (data, "multicast-joined", "{}");
}
#endif

static void
do_multicast (Agent *a, const SaJson *ins)
{
#ifdef SHOAL_AGENT_HAVE_MULTICAST
  const char *manifest = sa_json_get_string (ins, "manifest");
  const char *disk = sa_json_get_string (ins, "disk");
  char *fallback = NULL;
  SaImageJob job;
  SaMulticastResult result;
  char err[1024], data[3072];

  if (disk == NULL && a->config.disk && *a->config.disk)
    disk = a->config.disk;
  if (disk == NULL)
    disk = fallback = sa_image_default_disk ("/sys/block", image_size_of (ins), err, sizeof err);
  if (disk == NULL)
    {
      post_error (a, "multicast-receive", err);
      return;
    }
  job = (SaImageJob) { a->config.server, a->config.token, manifest, image_id_of (ins),
                       sa_json_get_string (ins, "chunk_url"), disk, NULL, NULL, a->cancel };
  if (!sa_multicast_receive (&job, sa_json_get_string (ins, "join"), multicast_joined_cb, a, &result, err,
                             sizeof err))
    post_error (a, "multicast-receive", err);
  else
    {
      char *qdisk = json_quote (disk);
      char *table = fit_partition_table (disk, result.bytes, result.wiped);

      snprintf (data, sizeof data, "{\"disk\":%s,\"bytes\":%llu,\"chunks\":%llu,\"zero_chunks\":%llu,"
                "\"multicast_chunks\":%llu,\"unicast_chunks\":%llu,\"kept_chunks\":%llu,\"packets\":%llu,"
                "\"image\":\"%s\",\"image_sha256\":\"%s\",\"mode\":\"multicast\"%s}",
                qdisk, (unsigned long long) result.bytes, (unsigned long long) result.chunks,
                (unsigned long long) result.zero_chunks, (unsigned long long) result.multicast_chunks,
                (unsigned long long) result.unicast_chunks, (unsigned long long) result.kept_chunks,
                (unsigned long long) result.packets, result.image_id, result.image_sha256, table);
      free (qdisk);
      free (table);
      sa_log ("image written to %s by multicast: %llu bytes", disk, (unsigned long long) result.bytes);
      post_event (a, "image-written", data);
    }
  free (fallback);
#else
  const char *fallback = sa_json_get_string (ins, "fallback");

  if (fallback != NULL && strcmp (fallback, "unicast") == 0)
    {
      sa_log ("multicast receiver not built in: falling back to unicast");
      do_unicast (a, ins);
      return;
    }
  post_error (a, "multicast-receive", "this agent was built without the multicast receiver");
#endif
}

static void
do_reboot (Agent *a, bool poweroff)
{
  post_event (a, poweroff ? "powering-off" : "rebooting", "{}");
  sync ();
  if (a->once)
    return;
  sa_log ("%s", poweroff ? "powering off" : "rebooting");
  reboot (poweroff ? RB_POWER_OFF : RB_AUTOBOOT);
  sa_log ("reboot failed: %s", strerror (errno));
}

/* While an image is received, a second thread long-polls for a newer
 * instruction (a cancel's "wait", a new deployment's): one stops the
 * receive (sa_cancel_set), which the main loop then takes */
typedef struct {
  Agent     *a;
  uint64_t   serial;
  SaCancel   cancel;
  int        stop;    /* atomic */
  int        refs;    /* atomic: the thread's and the receive's */
} Watch;

static void
watch_unref (Watch *w)
{
  if (__atomic_sub_fetch (&w->refs, 1, __ATOMIC_ACQ_REL) == 0)
    free (w);
}

#define WATCH_WAIT_S 5

static void *
watch_thread (void *data)
{
  Watch *w = data;
  char url[2400], err[512], perr[256];

  snprintf (url, sizeof url, "%s/agent/v1/next?after=%llu&wait=%d", w->a->config.server,
            (unsigned long long) w->serial, WATCH_WAIT_S);
  while (!__atomic_load_n (&w->stop, __ATOMIC_SEQ_CST))
    {
      SaHttpRequest req = { .url = url, .token = w->a->config.token, .timeout_ms = (WATCH_WAIT_S + 10) * 1000 };
      SaHttpResponse resp;
      SaJson *root = NULL;
      bool newer = false;
      uint64_t started = sa_now_ms ();

      if (sa_http_do (&req, &resp, err, sizeof err) == 0 && resp.status == 200)
        root = sa_json_parse (resp.body.data, resp.body.len, perr, sizeof perr);
      else if (resp.status != 204 || sa_now_ms () - started < 200)
        sa_sleep_ms (resp.status == 204 ? 200 : 1000);  /* an error, or a server that does not wait */
      if (root != NULL)
        {
          SaJson *ins = sa_json_get (root, "instruction");

          newer = sa_json_get_int (root, "serial", -1) > (int64_t) w->serial && ins != NULL
                  && ins->type == SA_JSON_OBJECT;
          if (newer)
            sa_log ("instruction %lld came: stopping instruction %llu",
                    (long long) sa_json_get_int (root, "serial", -1), (unsigned long long) w->serial);
          sa_json_free (root);
        }
      sa_http_response_clear (&resp);
      if (newer)
        {
          sa_cancel_set (&w->cancel);
          break;
        }
    }
  watch_unref (w);
  return NULL;
}

/* Carries out @ins; a receive is watched. The watch is not waited for
 * when the receive ends: its long poll (up to WATCH_WAIT_S) would hold
 * the agent's next poll back; it ends on its own and frees itself, its
 * cancel no longer looked at */
static void
execute_watched (Agent *a, const SaJson *ins, void (*action) (Agent *a, const SaJson *ins))
{
  Watch *w = calloc (1, sizeof *w);
  pthread_attr_t attr;
  pthread_t thread;
  bool watching = false;

  if (w == NULL)
    {
      action (a, ins);
      return;
    }
  *w = (Watch) { .a = a, .serial = a->serial, .cancel = SA_CANCEL_INIT, .refs = 2 };
  if (pthread_attr_init (&attr) == 0)
    {
      watching = pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                 pthread_create (&thread, &attr, watch_thread, w) == 0;
      pthread_attr_destroy (&attr);
    }
  if (!watching)
    {
      sa_log ("cannot watch for a newer instruction: %s", strerror (errno));
      w->refs = 1;
    }
  a->cancel = &w->cancel;
  action (a, ins);
  a->cancel = NULL;
  __atomic_store_n (&w->stop, 1, __ATOMIC_SEQ_CST);
  watch_unref (w);
}

static void
execute (Agent *a, const SaJson *ins)
{
  const char *action = sa_json_get_string (ins, "action");

  if (action == NULL)
    action = sa_json_get_string (ins, "type");
  if (action == NULL)
    action = sa_json_get_string (ins, "op");
  sa_log ("instruction %llu: %s", (unsigned long long) a->serial, action ? action : "(none)");
  if (action == NULL)
    post_error (a, "(none)", "the instruction has no \"action\"");
  else if (strcmp (action, "unicast-receive") == 0)
    execute_watched (a, ins, do_unicast);
  else if (strcmp (action, "multicast-receive") == 0)
    execute_watched (a, ins, do_multicast);
  else if (strcmp (action, "reboot") == 0)
    do_reboot (a, false);
  else if (strcmp (action, "poweroff") == 0)
    do_reboot (a, true);
  else if (strcmp (action, "wait") != 0)
    post_error (a, action, "unknown instruction");
}

/* One long poll: true if an instruction was handled */
static bool
poll_next (Agent *a)
{
  char url[2400], err[512], perr[256];
  SaHttpRequest req = { .url = url, .token = a->config.token, .timeout_ms = 45000 };
  SaHttpResponse resp;
  SaJson *root = NULL;
  bool handled = false;

  snprintf (url, sizeof url, "%s/agent/v1/next?after=%llu", a->config.server, (unsigned long long) a->serial);
  if (sa_http_do (&req, &resp, err, sizeof err) < 0)
    {
      sa_log ("next: %s", err);
      sa_http_response_clear (&resp);
      sa_sleep_ms (2000);
      return false;
    }
  if (resp.status == 200)
    root = sa_json_parse (resp.body.data, resp.body.len, perr, sizeof perr);
  else if (resp.status != 204)
    {
      sa_log ("next: HTTP %d %s", resp.status, resp.body.data);
      sa_sleep_ms (2000);
    }
  if (resp.status == 200 && root == NULL)
    sa_log ("next: bad JSON: %s", perr);
  if (root != NULL)
    {
      int64_t serial = sa_json_get_int (root, "serial", -1);
      SaJson *ins = sa_json_get (root, "instruction");

      if (serial > (int64_t) a->serial && ins != NULL && ins->type == SA_JSON_OBJECT)
        {
          a->serial = (uint64_t) serial;
          a->executing = true;
          execute (a, ins);
          a->executing = false;
          handled = true;
        }
      else if (serial > (int64_t) a->serial)
        a->serial = (uint64_t) serial;
      sa_json_free (root);
    }
  sa_http_response_clear (&resp);
  return handled;
}

static void
announce (Agent *a, int failed_modules)
{
  SaBuf data;

  sa_buf_init (&data);
  sa_buf_append_str (&data, "{\"modules\":");
  sa_json_append_string (&data, a->config.modules ? a->config.modules : "");
  sa_buf_append_str (&data, ",\"kernel\":");
  sa_json_append_string (&data, a->config.kernel ? a->config.kernel : "");
  sa_buf_printf (&data, ",\"failed_modules\":%d}", failed_modules);
  post_event (a, "agent-running", data.data);
  sa_buf_clear (&data);
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "modules", required_argument, NULL, 'm' },
    { "no-modules", no_argument, NULL, 'N' },
    { "no-network", no_argument, NULL, 'W' },
    { "once", no_argument, NULL, 'o' },
    { "max-polls", required_argument, NULL, 'p' },
    { NULL, 0, NULL, 0 },
  };
  Agent a = { .modules_dir = "/lib/modules" };
  const char *config = "/etc/shoal/agent.conf";
  bool load_modules = true;
  bool network = true;
  char err[512];
  int c, failed = 0;

  sa_log_set_prog ("shoal-agent");
  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    {
      switch (c)
        {
        case 'c': config = optarg; break;
        case 'm': a.modules_dir = optarg; break;
        case 'N': load_modules = false; break;
        case 'W': network = false; break;
        case 'o': a.once = true; break;
        case 'p': a.max_polls = (unsigned) strtoul (optarg, NULL, 10); break;
        default:
          fprintf (stderr, "usage: shoal-agent [--config FILE] [--modules DIR] [--no-modules] [--no-network] [--once] [--max-polls N]\n");
          return 2;
        }
    }
  if (!sa_config_load (config, &a.config, err, sizeof err))
    {
      sa_log ("%s", err);
      return 1;
    }
  /* the token this boot's loader was given: newer than agent.conf's when
   * the machine booted again after its agent had used that one */
  if (getenv ("SHOAL_TOKEN") != NULL && *getenv ("SHOAL_TOKEN") != '\0')
    {
      free (a.config.token);
      a.config.token = sa_strdup (getenv ("SHOAL_TOKEN"));
    }
  if (a.config.serial != NULL)
    a.serial = strtoull (a.config.serial, NULL, 10);
  sa_log ("device %s, server %s, instructions after %llu", a.config.device ? a.config.device : "?",
          a.config.server, (unsigned long long) a.serial);
  if (load_modules)
    failed = sa_modload_all (a.modules_dir, a.config.kernel, a.config.modules);
  if (network)
    network_up ();
  announce (&a, failed);
  for (unsigned polls = 0; a.max_polls == 0 || polls < a.max_polls; polls++)
    {
      if (poll_next (&a) && a.once)
        break;
    }
  sa_config_clear (&a.config);
  return 0;
}
