/* shoal-multicast-step.c: the "multicast" step: one session sends the
 * recipe's image to every device of the group at once
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Scope GROUP, phase TRANSFER. Resolves the image (the recipe's image in
 * the image store, or the step option "image-path" for tests), opens a
 * sender session (plugins/multicast/proto), tells every device's agent
 *   {"action": "multicast-receive", "group": "239.77.x.y", "port": 6100,
 *    "session": n, "node": n, "key": "<hex>", "image": "<id>",
 *    "manifest": "<server>/images/<id>/manifest" (store images only),
 *    "size": bytes, "chunk-size": bytes, "join": "<key=value string>"}
 * then sends. Each device's membership, outcome, and the session's rate and
 * repairs go to its journal; a device that fails (silent, never joined) is
 * dropped from the group; one evicted to unicast (too slow, too lossy), or
 * left with chunks to fetch, finishes by HTTP: the step then waits for its
 * agent's "image-written" event (or "error", which drops it), at most
 * "unicast-timeout-s" (which drops it too), and no longer once the device
 * is dropped from the group (ShoalStepContext::device-dropped: the
 * controller drops a device that is cancelled, removed or restarted). The
 * step ends when every member completed, finished by unicast, or was
 * dropped.
 *
 * Without an interface configured, devices behind different interfaces
 * (the routes to their addresses) get one session on each, side by side;
 * the step ends when every session has.
 *
 * Options: "image-path", "chunk-size" (image-path only), "store",
 * "server-url", "group", "port", "interface", "mtu", "rate-mbit" (cap),
 * "start-rate-mbit" (where slow start begins, 1000 by default: raise it
 * where every receiver is known to take more), "min-rate-mbit" (with
 * slow-policy "evict": the group is not slowed below it, a receiver that
 * cannot take it finishes by unicast; 0, the default: the group slows
 * down to its slowest receiver),
 * "slow-disk-percent" (with slow-policy "evict": a receiver whose disk
 * writes, for 2 s, under this share of what the others' disks write, or
 * of the cap, finishes by unicast instead of holding the group to its
 * speed; a quarter of the group at most; 50 by default, 0: the group
 * slows down to its slowest disk),
 * "window-mib" (repair by the window code over windows of about this
 * many MiB of chunks, 0-1024; 0: Reed-Solomon blocks of "fec-k" in each
 * chunk, the protocol's first repair; -1, the default: 8 for up to four
 * devices, 16 for more; at jumbo MTU blocks up to four, 2 for more:
 * smc_default_window_bytes),
 * "fec-k", "proactive-permille", "slow-policy" ("evict" | "wait"),
 * "max-loss-permille", "join-wait-ms", "node-timeout-ms", "read-ahead"
 * (chunks read and verified ahead of the sending thread, 0-64, default 4),
 * "interleave" (chunks whose first pass is interleaved, so that receivers
 * hash them together: 1-4, default 2), "gso" (boolean, default true: runs of
 * packets go as UDP GSO super-packets), "unicast-timeout-s" (how long a
 * device finishing by unicast may take before it fails, 1800 by default,
 * 0: no limit). Each is checked against its range (read_options) when the
 * step runs and when a recipe loads (validate_options).
 * Config [multicast]: interface, rate-mbit, start-rate-mbit, mtu, gso
 * (defaults for the options).
 * Device metadata set: multicast.session, multicast.node, multicast.outcome,
 * image.id (store images: the unicast service serves a member this image's
 * chunks, and no other's).
 * A device's Progress follows the chunks its receiver has verified (from its
 * reports, at most every 250 ms), 1 once its image is whole.
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <openssl/rand.h>

#include "shoal-mcast-sender.h"
#include "shoal-multicast-journal.h"
#include "shoal-multicast-route.h"
#include "shoal-multicast-source.h"
#include "shoal-multicast-step.h"

#define SOURCE_NAME "multicast"

struct _ShoalMulticastStep
{
  GObject parent_instance;
};

static void shoal_multicast_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalMulticastStep, shoal_multicast_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_multicast_step_iface_init))

typedef struct {
  ShoalStepContext     *ctx;
  GPtrArray            *devices;        /* ShoalDevice, index = node id - 1 */
  GMainContext         *main_context;
  GCancellable         *cancellable;
  gulong                cancel_id;
  ShoalMulticastSource *source;
  smc_sender           *sender;
  smc_sender_config     cfg;
  gchar                *group;
  gchar                *iface;
  gchar                *root;
  gchar                *server_url;
  gchar                *image_path;
  JsonObject           *image;
  guint32               chunk_size;
  gint                  sender_rc;
  guint64               data_chunks;    /* chunks that are not all-zero */
  guint                 pending;        /* devices finishing by unicast */
  GCancellable         *waits;
  GPtrArray            *unicast;        /* UnicastWait, those still waiting
                                         * (not owned: each is held by its
                                         * event waits until it is done) */
  gulong                dropped_id;     /* ctx's device-dropped, from the
                                         * announcement on */
  GCancellable         *session_waits;  /* the members' "error" waits
                                         * during the session */
  guint                 unicast_timeout_s;  /* 0: none */
  gint                  window_mib;         /* the window code's windows, MiB (0: Reed-Solomon
                                             * blocks; -1: smc_default_window_bytes) */
  GSource              *unicast_timer;
  GPtrArray            *iface_notes;    /* each device's note on the interface
                                         * chosen for it (NULL: none chosen) */
} Run;

static void
clear_unicast_timer (Run *run)
{
  if (run->unicast_timer != NULL)
    g_source_destroy (run->unicast_timer);
  g_clear_pointer (&run->unicast_timer, g_source_unref);
}

static void
run_free (Run *run)
{
  if (run->cancellable != NULL && run->cancel_id != 0)
    g_cancellable_disconnect (run->cancellable, run->cancel_id);
  g_clear_object (&run->cancellable);
  if (run->waits != NULL)
    g_cancellable_cancel (run->waits);
  g_clear_object (&run->waits);
  if (run->session_waits != NULL)
    g_cancellable_cancel (run->session_waits);
  g_clear_object (&run->session_waits);
  g_clear_signal_handler (&run->dropped_id, run->ctx);
  clear_unicast_timer (run);
  g_clear_pointer (&run->unicast, g_ptr_array_unref);
  g_clear_pointer (&run->sender, smc_sender_free);
  g_clear_pointer (&run->source, shoal_multicast_source_free);
  g_clear_pointer (&run->devices, g_ptr_array_unref);
  g_clear_pointer (&run->iface_notes, g_ptr_array_unref);
  g_clear_pointer (&run->main_context, g_main_context_unref);
  g_clear_pointer (&run->image, json_object_unref);
  g_clear_object (&run->ctx);
  g_free (run->group);
  g_free (run->iface);
  g_free (run->root);
  g_free (run->server_url);
  g_free (run->image_path);
  g_free (run);
}

static ShoalDevice *
run_device (Run     *run,
            guint32  node)
{
  if (node == 0 || node > run->devices->len)
    return NULL;
  return g_ptr_array_index (run->devices, node - 1);
}

/* --- per-node events, marshalled from the sender thread ------------------- */

typedef struct {
  Run           *run;
  GTask         *task;
  smc_node_info  info;
} NodeEvent;

static void
node_event_free (NodeEvent *ev)
{
  g_object_unref (ev->task);
  g_free (ev);
}

gchar *
shoal_multicast_eviction_message (const smc_sender_config *cfg,
                                  const smc_node_info     *n)
{
  /* the receiver's own reason first: it can tell an MTU problem, which
   * shows at the sender as loss */
  if (n->last.reason == SMC_REASON_MTU)
    return g_strdup_printf (_("The MTU of its network interface is smaller than the session's packets "
                              "(MTU %u): finishing by unicast"), (guint) cfg->mtu);
  if (n->last.reason == SMC_REASON_PATH_MTU)
    return g_strdup_printf (_("The session's short packets reached it but none of its full-size ones "
                              "(is the MTU of a switch port on its path smaller than the session's, %u?): "
                              "finishing by unicast"), (guint) cfg->mtu);
  switch (n->evict_cause)
    {
    case SMC_EVICT_LOSS:
      return g_strdup_printf (_("Lost %.1f%% of the session's packets, more than the %.1f%% the group allows "
                                "(max-loss-permille), after %u chunks: finishing by unicast"),
                              n->last.loss_permille / 10.0, cfg->max_loss_permille / 10.0, n->last.chunks_done);
    case SMC_EVICT_FLOOR:
      return g_strdup_printf (_("Could not keep up with the group at its minimum rate of %llu Mbit/s "
                                "(min-rate-mbit), after %u chunks: finishing by unicast"),
                              (unsigned long long) (cfg->rate_min_bps / 1000000), n->last.chunks_done);
    case SMC_EVICT_SLOW:
      return g_strdup_printf (_("Its disk wrote %.1f MB/s, under %u%% of the %.1f MB/s the rest of the group takes "
                                "(slow-disk-percent), after %u chunks: finishing by unicast"),
                              n->drain_Bps / 1e6, cfg->slow_ratio_permille / 10, n->group_Bps / 1e6,
                              n->last.chunks_done);
    case SMC_EVICT_BEHIND:
      return g_strdup_printf (_("Fell more than %u chunks behind the group, after %u chunks: finishing by unicast"),
                              cfg->max_behind_chunks, n->last.chunks_done);
    default:
      return g_strdup_printf (_("Left the multicast session after %u chunks (loss %.1f%%): finishing by unicast"),
                              n->last.chunks_done, n->last.loss_permille / 10.0);
    }
}

static void
journal_outcome (Run                 *run,
                 ShoalDevice         *device,
                 const smc_node_info *n)
{
  const gchar *what = smc_node_outcome_str (n->outcome);

  /* a member dropped from the group may be in another run already */
  if (shoal_step_context_is_dropped (run->ctx, device, NULL))
    return;
  shoal_device_set_metadata (device, "multicast.outcome", what);
  switch (n->outcome)
    {
    case SMC_NODE_JOINED:
      shoal_step_context_log (run->ctx, device, "multicast-join", SHOAL_JOURNAL_RESULT_INFO,
                              _("Joined multicast session %u from %s"), run->cfg.session, n->addr);
      break;
    case SMC_NODE_COMPLETE:
      /* with what its disk took, when its receiver said (the figure the
       * slow-disk rule weighs) */
      if (n->drain_Bps > 0)
        shoal_step_context_log (run->ctx, device, "multicast-receive", SHOAL_JOURNAL_RESULT_OK,
                                _("Received %u chunks by multicast (%u left for unicast), loss %.1f%%, %u repair "
                                  "requests; its receive queue filled up %u times (the group slowed down for it); "
                                  "its disk wrote %.1f MB/s"),
                                n->last.chunks_done, n->last.ext_missing, n->last.loss_permille / 10.0, n->nacks,
                                n->backlog_signals, n->drain_Bps / 1e6);
      else
        shoal_step_context_log (run->ctx, device, "multicast-receive", SHOAL_JOURNAL_RESULT_OK,
                                _("Received %u chunks by multicast (%u left for unicast), loss %.1f%%, %u repair "
                                  "requests; its receive queue filled up %u times (the group slowed down for it)"),
                                n->last.chunks_done, n->last.ext_missing, n->last.loss_permille / 10.0, n->nacks,
                                n->backlog_signals);
      shoal_step_context_set_progress (run->ctx, device, 1.0);
      break;
    case SMC_NODE_EVICTED:
      {
        g_autofree gchar *why = shoal_multicast_eviction_message (&run->cfg, n);

        shoal_step_context_log (run->ctx, device, "multicast-receive", SHOAL_JOURNAL_RESULT_WARNING, "%s", why);
      }
      break;
    default:
      shoal_step_context_log (run->ctx, device, "multicast-receive", SHOAL_JOURNAL_RESULT_FAILED,
                              _("Multicast receiver %s (last heard after %u chunks)"), what, n->last.chunks_done);
      break;
    }
}

static gboolean
node_event_main (gpointer data)
{
  NodeEvent *ev = data;
  ShoalDevice *device = run_device (ev->run, ev->info.node);

  if (device != NULL)
    journal_outcome (ev->run, device, &ev->info);
  return G_SOURCE_REMOVE;
}

/* hands a copy of n to func on the step's main context */
static void
post_node_event (GTask               *task,
                 const smc_node_info *n,
                 GSourceFunc          func)
{
  Run *run = g_task_get_task_data (task);
  NodeEvent *ev = g_new0 (NodeEvent, 1);

  ev->run = run;
  ev->task = g_object_ref (task);
  ev->info = *n;
  g_main_context_invoke_full (run->main_context, G_PRIORITY_DEFAULT, func, ev, (GDestroyNotify) node_event_free);
}

static void
on_node (void                *user,
         const smc_node_info *n)
{
  post_node_event (user, n, node_event_main);
}

/* a receiver's chunks verified so far, as the step's progress for its
 * device (the Progress a desktop tool shows during the transfer) */
static gboolean
progress_event_main (gpointer data)
{
  NodeEvent *ev = data;
  ShoalDevice *device = run_device (ev->run, ev->info.node);

  if (device != NULL && ev->run->data_chunks > 0 && !shoal_step_context_is_dropped (ev->run->ctx, device, NULL))
    shoal_step_context_set_progress (ev->run->ctx, device,
                                     MIN (1.0, (gdouble) ev->info.last.chunks_done / ev->run->data_chunks));
  return G_SOURCE_REMOVE;
}

static void
on_progress (void                *user,
             const smc_node_info *n)
{
  post_node_event (user, n, progress_event_main);
}

/* --- the end of the session ------------------------------------------------ */

static void
journal_summary (Run *run)
{
  const smc_sender_stats *st = smc_sender_get_stats (run->sender);
  const smc_node_info *nodes;
  gsize n_nodes = smc_sender_get_nodes (run->sender, &nodes);
  gdouble secs = (st->end_ns - st->data_start_ns) / 1e9;
  guint64 image = run->cfg.manifest->image_size;

  if (st->gso_refused)
    g_warning ("Multicast session %u: the kernel refused UDP GSO super-packets on this interface "
               "(its MTU below the session's %u?); it sent one packet per message",
               run->cfg.session, (guint) run->cfg.mtu);
  for (guint i = 0; i < run->devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (run->devices, i);
      const smc_node_info *n = NULL;

      if (shoal_step_context_is_dropped (run->ctx, device, NULL))
        continue;  /* it left the group, or failed, during the session */
      for (gsize j = 0; j < n_nodes; j++)
        if (nodes[j].node == i + 1)
          n = &nodes[j];
      if (st->no_receiver)
        {
          g_autoptr(GError) error = g_error_new (SHOAL_ERROR, SHOAL_ERROR_TIMEOUT,
                                                 _("No receiver joined multicast session %u within %u ms "
                                                   "(join-wait-ms): the image was not sent"),
                                                 run->cfg.session, (guint) run->cfg.join_wait_ms);

          shoal_step_context_log (run->ctx, device, "multicast-receive", SHOAL_JOURNAL_RESULT_FAILED,
                                  "%s", error->message);
          shoal_step_context_drop_device (run->ctx, device, error);
          continue;
        }
      shoal_step_context_log (run->ctx, device, "multicast-session", SHOAL_JOURNAL_RESULT_INFO,
                              _("Session %u: %.1f s, final rate %.0f Mbit/s, egress %.3f× the image, "
                                "%llu parity packets for %llu NACKs, %llu source symbols sent again for %llu "
                                "requests by index, rate lowered %llu times for a filling receive queue"),
                              run->cfg.session, secs, st->rate_bps / 1e6, image ? (gdouble) st->bytes / image : 0.0,
                              (unsigned long long) st->parity_pkts, (unsigned long long) st->nacks_rx,
                              (unsigned long long) st->source_resent, (unsigned long long) st->srcreqs_rx,
                              (unsigned long long) st->backlog_signals);
      if (n == NULL || n->outcome == SMC_NODE_FAILED || n->outcome == 0)
        {
          g_autoptr(GError) error = g_error_new (SHOAL_ERROR, SHOAL_ERROR_TIMEOUT,
                                                 n == NULL ? _("The device never joined multicast session %u")
                                                           : _("The device's multicast receiver failed in session %u"),
                                                 run->cfg.session);
          if (n == NULL)
            shoal_step_context_log (run->ctx, device, "multicast-receive", SHOAL_JOURNAL_RESULT_FAILED,
                                    "%s", error->message);
          shoal_step_context_drop_device (run->ctx, device, error);
        }
    }
}

static void
send_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  Run *run = task_data;

  run->sender_rc = smc_sender_run (run->sender);
  g_task_return_boolean (task, TRUE);
}

/* --- devices that finish by unicast ----------------------------------------- */

/* A device evicted to unicast, or left with chunks to fetch, is done when
 * its agent posts "image-written" (or fails with "error"), as in the
 * unicast step: until then the step holds it, unless it is dropped from
 * the group or unicast-timeout-s passes. */
typedef struct {
  GTask        *task;
  ShoalDevice  *device;
  GCancellable *cancel;
  gboolean      done;
  gint          refs;
} UnicastWait;

static void
unicast_wait_unref (UnicastWait *w)
{
  if (--w->refs > 0)
    return;
  g_object_unref (w->task);
  g_object_unref (w->device);
  g_object_unref (w->cancel);
  g_free (w);
}

static void
finish_task (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  guint kept = 0;

  for (guint i = 0; i < run->devices->len; i++)
    kept += !shoal_step_context_is_dropped (run->ctx, g_ptr_array_index (run->devices, i), NULL);
  if (kept == 0)
    g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                             _("No device of the group received the image (multicast session %u)"),
                             run->cfg.session);
  else
    g_task_return_boolean (task, TRUE);
}

/* one device less to wait for: the step ends after the last */
static void
run_release (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  if (--run->pending > 0)
    return;
  clear_unicast_timer (run);
  finish_task (task);
}

/* w waits no more (its event waits end, cancelled, in an idle) */
static void
unicast_wait_detach (UnicastWait *w)
{
  Run *run = g_task_get_task_data (w->task);

  w->done = TRUE;
  g_cancellable_cancel (w->cancel);
  g_ptr_array_remove_fast (run->unicast, w);
}

static void
unicast_wait_done (UnicastWait *w,
                   const gchar *failure)
{
  Run *run = g_task_get_task_data (w->task);

  /* before the drop below, which its device-dropped handler sees */
  unicast_wait_detach (w);
  if (failure != NULL)
    {
      g_autoptr(GError) error = g_error_new (SHOAL_ERROR, SHOAL_ERROR_FAILED,
                                             _("Finishing the image by unicast failed: %s"), failure);
      shoal_step_context_log (run->ctx, w->device, "multicast-receive", SHOAL_JOURNAL_RESULT_FAILED,
                              "%s", error->message);
      shoal_step_context_drop_device (run->ctx, w->device, error);
    }
  else
    {
      shoal_step_context_log (run->ctx, w->device, "multicast-receive", SHOAL_JOURNAL_RESULT_OK,
                              _("Image written (missing chunks fetched by unicast)"));
      shoal_step_context_set_progress (run->ctx, w->device, 1.0);
    }
  run_release (w->task);
}

/* the wait for device, if it still waits */
static UnicastWait *
find_unicast_wait (Run         *run,
                   ShoalDevice *device)
{
  for (guint i = 0; device != NULL && run->unicast != NULL && i < run->unicast->len; i++)
    if (((UnicastWait *) g_ptr_array_index (run->unicast, i))->device == device)
      return g_ptr_array_index (run->unicast, i);
  return NULL;
}

/* a device dropped from the group (it left it, or failed): whatever it
 * still had to fetch by unicast, the step waits for it no more. Its
 * failure is the dropper's to journal */
static gboolean
dropped_event_main (gpointer data)
{
  NodeEvent *ev = data;
  UnicastWait *w = find_unicast_wait (ev->run, run_device (ev->run, ev->info.node));

  if (w != NULL)
    {
      unicast_wait_detach (w);
      run_release (ev->task);
    }
  return G_SOURCE_REMOVE;
}

/* the controller drops a device from its main context; any other thread's
 * drop is handed to the step's */
static void
device_dropped_cb (ShoalStepContext *ctx,
                   ShoalDevice      *device,
                   const GError     *error,
                   GTask            *task)
{
  Run *run = g_task_get_task_data (task);
  guint index;
  smc_node_info n = { 0 };

  if (!g_ptr_array_find (run->devices, device, &index))
    return;  /* another session's (a group behind several interfaces) */
  /* the session no longer waits for its receiver, nor serves it: told
   * to leave if it joined (nothing once the session ended) */
  if (run->sender != NULL && smc_sender_drop_node (run->sender, index + 1) < 0)
    g_warning ("Multicast session %u: out of memory dropping node %u", run->cfg.session, index + 1);
  n.node = index + 1;
  post_node_event (task, &n, dropped_event_main);
}

/* unicast-timeout-s passed: the devices still waiting fail, the others
 * are done */
static gboolean
unicast_timeout_cb (gpointer data)
{
  GTask *task = data;
  Run *run = g_task_get_task_data (task);
  g_autofree gchar *why = g_strdup_printf (_("its agent did not report the image written within %u s "
                                             "(unicast-timeout-s)"), run->unicast_timeout_s);

  g_clear_pointer (&run->unicast_timer, g_source_unref);
  while (run->unicast->len > 0)
    unicast_wait_done (g_ptr_array_index (run->unicast, 0), why);
  return G_SOURCE_REMOVE;
}

static void wait_unicast_error (UnicastWait *w);

static void
unicast_written_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  UnicastWait *w = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (w->device, result, &error);

  if (!w->done && payload != NULL)
    {
      /* hand the agent's report on to the steps after this one (a finish
       * step journals the image it names) */
      shoal_device_post_event (w->device, "image-written", payload);
      unicast_wait_done (w, NULL);
    }
  else if (!w->done)
    unicast_wait_done (w, error != NULL ? error->message : _("no event"));  /* also when the step is cancelled */
  unicast_wait_unref (w);
}

static void
unicast_error_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  UnicastWait *w = user_data;
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (w->device, result, NULL);
  JsonObject *data = payload != NULL && JSON_NODE_HOLDS_OBJECT (payload) ? json_node_get_object (payload) : NULL;
  const gchar *action = data != NULL ? json_object_get_string_member_with_default (data, "action", NULL) : NULL;
  const gchar *message = data != NULL ? json_object_get_string_member_with_default (data, "message", NULL) : NULL;

  if (!w->done && payload != NULL)
    {
      if (action != NULL && g_strcmp0 (action, "multicast-receive") != 0 && g_strcmp0 (action, "unicast-receive") != 0)
        wait_unicast_error (w);  /* an error of an older action: not ours */
      else
        unicast_wait_done (w, message != NULL ? message : _("no reason given"));
    }
  unicast_wait_unref (w);
}

static void
wait_unicast_error (UnicastWait *w)
{
  w->refs++;
  shoal_device_wait_event_async (w->device, "error", w->cancel, unicast_error_cb, w);
}

static void
wait_unicast (GTask       *task,
              ShoalDevice *device)
{
  Run *run = g_task_get_task_data (task);
  UnicastWait *w = g_new0 (UnicastWait, 1);

  w->task = g_object_ref (task);
  w->device = g_object_ref (device);
  w->cancel = g_cancellable_new ();
  g_signal_connect_object (run->waits, "cancelled", G_CALLBACK (g_cancellable_cancel), w->cancel, G_CONNECT_SWAPPED);
  if (g_cancellable_is_cancelled (run->waits))  /* from another thread, since sent_cb looked */
    g_cancellable_cancel (w->cancel);
  w->refs = 2;  /* this function's, released below, and the written wait's */
  run->pending++;
  g_ptr_array_add (run->unicast, w);
  shoal_device_wait_event_async (device, "image-written", w->cancel, unicast_written_cb, w);
  wait_unicast_error (w);
  unicast_wait_unref (w);
}

static void
sent_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  const smc_node_info *nodes;
  gsize n_nodes;

  g_task_propagate_boolean (G_TASK (result), NULL);
  /* what the agents report from now on is the unicast waits' */
  g_cancellable_cancel (run->session_waits);
  journal_summary (run);
  /* the sender returned because the step was cancelled: no device is
   * waited for (the Run, its sockets and its image go with the task) */
  if (g_task_return_error_if_cancelled (task))
    return;
  n_nodes = smc_sender_get_nodes (run->sender, &nodes);
  run->unicast = g_ptr_array_new ();
  run->pending = 1;  /* held until every wait is started */
  for (gsize j = 0; j < n_nodes; j++)
    {
      ShoalDevice *device = run_device (run, nodes[j].node);

      if (device == NULL || shoal_step_context_is_dropped (run->ctx, device, NULL))
        continue;
      if (nodes[j].outcome == SMC_NODE_EVICTED ||
          (nodes[j].outcome == SMC_NODE_COMPLETE && nodes[j].last.ext_missing > 0))
        wait_unicast (task, device);
    }
  if (run->unicast->len > 0 && run->unicast_timeout_s > 0)
    {
      run->unicast_timer = g_timeout_source_new_seconds (run->unicast_timeout_s);
      g_source_set_callback (run->unicast_timer, unicast_timeout_cb, task, NULL);
      g_source_attach (run->unicast_timer, run->main_context);
    }
  run_release (task);
}

/* --- starting ---------------------------------------------------------------- */

static JsonNode *
build_instruction (Run     *run,
                   guint32  node)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  gchar key[2 * SMC_KEY_LEN + 1], join[1024];
  const gchar *id = shoal_multicast_source_get_id (run->source);

  smc_hex (run->cfg.key, SMC_KEY_LEN, key);
  smc_sender_join_string (run->sender, node, join, sizeof join);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "action");
  json_builder_add_string_value (b, "multicast-receive");
  json_builder_set_member_name (b, "group");
  json_builder_add_string_value (b, run->group);
  json_builder_set_member_name (b, "port");
  json_builder_add_int_value (b, run->cfg.port);
  json_builder_set_member_name (b, "session");
  json_builder_add_int_value (b, run->cfg.session);
  json_builder_set_member_name (b, "node");
  json_builder_add_int_value (b, node);
  json_builder_set_member_name (b, "key");
  json_builder_add_string_value (b, key);
  json_builder_set_member_name (b, "image");
  json_builder_add_string_value (b, id);
  if (shoal_multicast_source_is_store (run->source) && run->server_url != NULL)
    {
      g_autofree gchar *url = g_strdup_printf ("%s/images/%s/manifest", run->server_url, id);
      json_builder_set_member_name (b, "manifest");
      json_builder_add_string_value (b, url);
    }
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) run->cfg.manifest->image_size);
  json_builder_set_member_name (b, "chunk-size");
  json_builder_add_int_value (b, run->cfg.manifest->chunk_size);
  json_builder_set_member_name (b, "mtu");
  json_builder_add_int_value (b, run->cfg.mtu);
  json_builder_set_member_name (b, "join");
  json_builder_add_string_value (b, join);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
announce_to_devices (Run *run)
{
  for (guint i = 0; i < run->devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (run->devices, i);
      g_autoptr(JsonNode) instruction = build_instruction (run, i + 1);
      g_autofree gchar *session = g_strdup_printf ("%u", run->cfg.session);
      g_autofree gchar *node = g_strdup_printf ("%u", i + 1);

      if (shoal_step_context_is_dropped (run->ctx, device, NULL))
        continue;  /* it left the group before the session began */
      shoal_device_set_metadata (device, "multicast.session", session);
      shoal_device_set_metadata (device, "multicast.node", node);
      if (shoal_multicast_source_is_store (run->source))
        shoal_device_set_metadata (device, "image.id", shoal_multicast_source_get_id (run->source));
      shoal_device_set_instruction (device, instruction);
      shoal_step_context_log (run->ctx, device, "multicast-member", SHOAL_JOURNAL_RESULT_INFO,
                              _("Member %u of %u of multicast session %u (%s:%u, image %s, rate cap %.0f Mbit/s)"),
                              i + 1, run->devices->len, run->cfg.session, run->group, run->cfg.port,
                              shoal_multicast_source_get_id (run->source), run->cfg.rate_max_bps / 1e6);
    }
}

/* --- the agents' errors during the session ---------------------------------- */

typedef struct {
  GTask       *task;
  ShoalDevice *device;
} SessionWait;

static void wait_session_error (GTask *task, ShoalDevice *device);

/* a member's agent failed its "multicast-receive" (it could not join the
 * group, its disk failed): the member is dropped, with the agent's
 * reason in its journal, and the session no longer waits for it */
static void
session_error_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  SessionWait *w = user_data;
  Run *run = g_task_get_task_data (w->task);
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (w->device, result, NULL);
  JsonObject *data = payload != NULL && JSON_NODE_HOLDS_OBJECT (payload) ? json_node_get_object (payload) : NULL;
  const gchar *action = data != NULL ? json_object_get_string_member_with_default (data, "action", NULL) : NULL;
  const gchar *message = data != NULL ? json_object_get_string_member_with_default (data, "message", NULL) : NULL;

  if (payload == NULL || g_cancellable_is_cancelled (run->session_waits) ||
      shoal_step_context_is_dropped (run->ctx, w->device, NULL))
    ;  /* the session ended (its unicast waits take over), or the member left */
  else if (action != NULL && g_strcmp0 (action, "multicast-receive") != 0)
    wait_session_error (w->task, w->device);  /* an error of an older action: not ours */
  else
    {
      g_autoptr(GError) error = g_error_new (SHOAL_ERROR, SHOAL_ERROR_FAILED,
                                             _("Its agent failed to receive multicast session %u: %s"),
                                             run->cfg.session, message != NULL ? message : _("no reason given"));

      shoal_step_context_log (run->ctx, w->device, "multicast-receive", SHOAL_JOURNAL_RESULT_FAILED,
                              "%s", error->message);
      shoal_step_context_drop_device (run->ctx, w->device, error);
    }
  g_object_unref (w->task);
  g_object_unref (w->device);
  g_free (w);
}

static void
wait_session_error (GTask       *task,
                    ShoalDevice *device)
{
  Run *run = g_task_get_task_data (task);
  SessionWait *w = g_new0 (SessionWait, 1);

  w->task = g_object_ref (task);
  w->device = g_object_ref (device);
  shoal_device_wait_event_async (device, "error", run->session_waits, session_error_cb, w);
}

static void
prepare_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  Run *run = task_data;
  GError *error = NULL;
  gchar err[256];

  if (run->image_path != NULL)
    run->source = shoal_multicast_source_open_file (run->image_path, run->chunk_size, &error);
  else
    run->source = shoal_multicast_source_open_store (run->root, run->image, &error);
  if (run->source == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  run->cfg.manifest = shoal_multicast_source_get_manifest (run->source);
  run->cfg.window_chunks = smc_session_window_chunks (run->window_mib, run->cfg.mtu, run->cfg.expected,
                                                      run->cfg.manifest->chunk_size);
  run->data_chunks = shoal_multicast_source_data_chunks (run->source);
  run->cfg.read_chunk = shoal_multicast_source_read_chunk;
  run->cfg.user = run->source;
  run->sender = smc_sender_new (&run->cfg, err, sizeof err);
  if (run->sender == NULL)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_FAILED, _("Starting multicast session: %s"), err);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
cancelled_cb (GCancellable *cancellable,
              gpointer      user_data)
{
  Run *run = user_data;

  /* the sender announces the end to the group and returns */
  if (run->sender != NULL)
    smc_sender_cancel (run->sender);
  g_cancellable_cancel (run->waits);
}

static void
prepared_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GTask) send = NULL;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* from now on a member dropped (it left the group, its agent failed)
   * is dropped from the session too */
  run->dropped_id = g_signal_connect (run->ctx, "device-dropped", G_CALLBACK (device_dropped_cb), task);
  announce_to_devices (run);
  for (guint i = 0; i < run->devices->len; i++)
    if (!shoal_step_context_is_dropped (run->ctx, g_ptr_array_index (run->devices, i), NULL))
      wait_session_error (task, g_ptr_array_index (run->devices, i));
    else if (smc_sender_drop_node (run->sender, i + 1) < 0)  /* left before it was told to join */
      g_warning ("Multicast session %u: out of memory dropping node %u", run->cfg.session, i + 1);
  if (g_task_get_cancellable (task) != NULL)
    {
      run->cancellable = g_object_ref (g_task_get_cancellable (task));
      run->cancel_id = g_cancellable_connect (run->cancellable, G_CALLBACK (cancelled_cb), run, NULL);
    }
  send = g_task_new (object, NULL, sent_cb, g_object_ref (task));
  g_task_set_task_data (send, run, NULL);
  g_task_run_in_thread (send, send_thread);
}

/* The address the server reaches @device at: its agent's, else the one
 * it network-booted from */
static const gchar *
device_address (ShoalDevice *device)
{
  const gchar *agent = shoal_device_get_metadata (device, "agent.address");

  return agent != NULL ? agent : shoal_device_get_metadata (device, "pxe.ip");
}

/* The interface the kernel routes each device's address through (NULL
 * where its address is not known or not routed) */
static GPtrArray *
device_ifaces (GPtrArray *devices)
{
  GPtrArray *ifaces = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      const gchar *address = device_address (device);
      g_autoptr(GError) error = NULL;
      gchar *iface = address != NULL ? shoal_multicast_route_iface (address, &error) : NULL;

      if (address != NULL && iface == NULL)
        g_debug ("no interface for %s (%s): %s", shoal_device_get_id (device), address, error->message);
      g_ptr_array_add (ifaces, iface);
    }
  return ifaces;
}

/* the first interface known in ifaces (NULL: none) */
static const gchar *
first_iface (GPtrArray *ifaces)
{
  for (guint i = 0; i < ifaces->len; i++)
    if (g_ptr_array_index (ifaces, i) != NULL)
      return g_ptr_array_index (ifaces, i);
  return NULL;
}

/* The devices of one session, the interface it sends on and each
 * device's journal note on that choice */
typedef struct {
  GPtrArray *devices;   /* ShoalDevice */
  gchar     *iface;
  GPtrArray *notes;     /* gchar *, one per device */
  GArray    *known;     /* gboolean, one per device: its address routed */
} Link;

static void
link_free (Link *link)
{
  g_ptr_array_unref (link->devices);
  g_ptr_array_unref (link->notes);
  g_array_unref (link->known);
  g_free (link->iface);
  g_free (link);
}

/* No interface configured: the devices grouped by the interface the
 * kernel routes each one's address through (a server's provisioning
 * network is seldom its default route, which the group's route would
 * follow), in their order; a device whose address is not known goes with
 * the first. Devices behind several interfaces get a session on each.
 * NULL (the group's route) when no device's address is known. */
static GPtrArray *
group_by_iface (GPtrArray *devices)
{
  g_autoptr(GPtrArray) ifaces = device_ifaces (devices);
  const gchar *first = first_iface (ifaces);
  const gchar *by = NULL;
  GPtrArray *links;

  if (first == NULL)
    return NULL;
  links = g_ptr_array_new_with_free_func ((GDestroyNotify) link_free);
  for (guint i = 0; i < devices->len; i++)
    {
      gboolean known = g_ptr_array_index (ifaces, i) != NULL;
      const gchar *iface = known ? g_ptr_array_index (ifaces, i) : first;
      Link *link = NULL;

      if (by == NULL && known)
        by = shoal_device_get_id (g_ptr_array_index (devices, i));
      for (guint k = 0; k < links->len && link == NULL; k++)
        if (g_str_equal (((Link *) g_ptr_array_index (links, k))->iface, iface))
          link = g_ptr_array_index (links, k);
      if (link == NULL)
        {
          link = g_new0 (Link, 1);
          link->devices = g_ptr_array_new_with_free_func (g_object_unref);
          link->notes = g_ptr_array_new_with_free_func (g_free);
          link->known = g_array_new (FALSE, FALSE, sizeof (gboolean));
          link->iface = g_strdup (iface);
          g_ptr_array_add (links, link);
        }
      g_ptr_array_add (link->devices, g_object_ref (g_ptr_array_index (devices, i)));
      g_array_append_val (link->known, known);
    }
  if (links->len == 1)
    g_info ("multicast interface %s: the route to the agent of %s", first, by);
  else
    g_info ("the group's devices are behind %u interfaces: one multicast session on each", links->len);
  /* what each device's journal says of the choice */
  for (guint k = 0; k < links->len; k++)
    {
      Link *link = g_ptr_array_index (links, k);

      for (guint i = 0; i < link->devices->len; i++)
        {
          ShoalDevice *device = g_ptr_array_index (link->devices, i);
          const gchar *address = device_address (device);
          gboolean known = g_array_index (link->known, gboolean, i);
          gchar *note;

          if (links->len == 1 && known)
            note = g_strdup_printf (_("The session sends on %s, the interface that reaches %s (no interface "
                                      "configured)"), link->iface, address);
          else if (links->len == 1)
            note = g_strdup_printf (_("The session sends on %s, the interface that reaches the agent of %s (no "
                                      "interface configured; this device's address is not known)"),
                                    link->iface, by);
          else if (known)
            note = g_strdup_printf (_("The session sends on %s, the interface that reaches %s (no interface "
                                      "configured; the group is behind %u interfaces, with a session on each)"),
                                    link->iface, address, links->len);
          else
            note = g_strdup_printf (_("The session sends on %s (no interface configured; the group is behind %u "
                                      "interfaces, with a session on each, and this device's address is not "
                                      "known: it goes with the first)"), link->iface, links->len);
          g_ptr_array_add (link->notes, note);
        }
    }
  return links;
}

/* The largest chunk the protocol can carry: SMC_MAX_BLOCKS FEC blocks of
 * SMC_MAX_K symbols (at most SMC_MAX_SRC_SYMBOLS), each of the largest
 * UDP payload. A chunk must also fit the session's own symbols (its mtu
 * and fec-k), which the sender checks when it starts */
#define MAX_CHUNK ((gint64) MIN (SMC_MAX_BLOCKS * SMC_MAX_K, SMC_MAX_SRC_SYMBOLS) * \
                   (G_MAXUINT16 - SMC_IPUDP_OVERHEAD - SMC_DATA_OVERHEAD))
/* the longest join-wait-ms and node-timeout-ms: a day */
#define MAX_WAIT_MS (24 * 3600 * 1000)
/* the longest unicast-timeout-s: a week, a step's longest timeout */
#define MAX_UNICAST_TIMEOUT_S (7 * 24 * 3600)

/* The step's options, with their defaults (the [multicast] config's where
 * the step runs in a daemon), each within what the sender takes */
typedef struct {
  gint64       port;
  gint64       mtu;
  gint64       rate;
  gint64       start;
  gint64       min_rate;
  gint64       slow_disk;
  gint64       fec_k;
  gint64       window_mib;
  gint64       proactive;
  gint64       max_loss;
  gint64       join_wait;
  gint64       node_timeout;
  gint64       read_ahead;
  gint64       interleave;
  gint64       unicast_timeout;
  gint64       chunk_size;
  const gchar *policy;
  gboolean     gso;
} Options;

static gboolean
check_range (const gchar  *name,
             gint64        value,
             gint64        min,
             gint64        max,
             GError      **error)
{
  if (value >= min && value <= max)
    return TRUE;
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE, _("%s must be between %lld and %lld, not %lld"),
               name, (long long) min, (long long) max, (long long) value);
  return FALSE;
}

/* reads the options of ctx into o; FALSE (SHOAL_ERROR_INVALID_RECIPE)
 * when one is out of its range. The step's validate_options and its
 * runs share it */
static gboolean
read_options (ShoalStepContext  *ctx,
              Options           *o,
              GError           **error)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  JsonNode *gso = json_object_get_member (shoal_step_context_get_options (ctx), "gso");
  gint64 cfg_rate = context != NULL ? shoal_context_get_config_int (context, "multicast", "rate-mbit", 1000) : 1000;
  gint64 cfg_mtu = context != NULL ? shoal_context_get_config_int (context, "multicast", "mtu", 1500) : 1500;
  gint64 cfg_start = context != NULL ? shoal_context_get_config_int (context, "multicast", "start-rate-mbit", 1000) : 1000;
  g_autofree gchar *cfg_gso = context != NULL ? shoal_context_get_config_string (context, "multicast", "gso", NULL) : NULL;

  o->port = shoal_step_context_get_option_int (ctx, "port", 6100);
  o->mtu = shoal_step_context_get_option_int (ctx, "mtu", cfg_mtu);
  o->rate = shoal_step_context_get_option_int (ctx, "rate-mbit", cfg_rate);
  o->start = shoal_step_context_get_option_int (ctx, "start-rate-mbit", MIN (cfg_start, o->rate));
  o->min_rate = shoal_step_context_get_option_int (ctx, "min-rate-mbit", 0);
  o->slow_disk = shoal_step_context_get_option_int (ctx, "slow-disk-percent", 50);
  o->fec_k = shoal_step_context_get_option_int (ctx, "fec-k", SMC_DEFAULT_K);
  o->window_mib = shoal_step_context_get_option_int (ctx, "window-mib", -1);
  o->proactive = shoal_step_context_get_option_int (ctx, "proactive-permille", 0);
  o->max_loss = shoal_step_context_get_option_int (ctx, "max-loss-permille", 250);
  o->join_wait = shoal_step_context_get_option_int (ctx, "join-wait-ms", 30000);
  o->node_timeout = shoal_step_context_get_option_int (ctx, "node-timeout-ms", 5000);
  o->read_ahead = shoal_step_context_get_option_int (ctx, "read-ahead", 4);
  o->interleave = shoal_step_context_get_option_int (ctx, "interleave", SMC_DEFAULT_LANES);
  o->unicast_timeout = shoal_step_context_get_option_int (ctx, "unicast-timeout-s", 1800);
  o->chunk_size = shoal_step_context_get_option_int (ctx, "chunk-size", SMC_DEFAULT_CHUNK);
  o->policy = shoal_step_context_get_option_string (ctx, "slow-policy", "evict");
  /* UDP GSO super-packets (the sender falls back by itself where the
   * kernel refuses them); off for a NIC whose segmentation is suspect */
  o->gso = shoal_step_context_get_option_bool (ctx, "gso",
                                               cfg_gso == NULL || (g_ascii_strcasecmp (cfg_gso, "false") != 0 &&
                                                                   g_strcmp0 (cfg_gso, "0") != 0));
  if (!check_range ("port", o->port, 1, G_MAXUINT16, error) ||
      !check_range ("mtu", o->mtu, 576, G_MAXUINT16, error) ||
      !check_range ("rate-mbit", o->rate, 1, 1000000, error))
    return FALSE;
  if (o->start < 1 || o->start > o->rate)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("start-rate-mbit must be between 1 and rate-mbit (%lld), not %lld"), (long long) o->rate,
                   (long long) o->start);
      return FALSE;
    }
  if (o->min_rate < 0 || o->min_rate > o->rate)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("min-rate-mbit must be between 0 and rate-mbit (%lld), not %lld"), (long long) o->rate,
                   (long long) o->min_rate);
      return FALSE;
    }
  if (!check_range ("slow-disk-percent", o->slow_disk, 0, 100, error) ||
      !check_range ("fec-k", o->fec_k, 2, SMC_MAX_K, error) ||
      !check_range ("window-mib", o->window_mib, -1, 1024, error) ||
      !check_range ("proactive-permille", o->proactive, 0, 1000, error) ||
      !check_range ("max-loss-permille", o->max_loss, 0, 1000, error) ||
      !check_range ("join-wait-ms", o->join_wait, 0, MAX_WAIT_MS, error) ||
      !check_range ("node-timeout-ms", o->node_timeout, 0, MAX_WAIT_MS, error) ||
      !check_range ("unicast-timeout-s", o->unicast_timeout, 0, MAX_UNICAST_TIMEOUT_S, error) ||
      !check_range ("chunk-size", o->chunk_size, 1, MAX_CHUNK, error))
    return FALSE;
  if (gso != NULL && json_node_get_value_type (gso) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE, _("gso must be true or false"));
      return FALSE;
    }
  if (o->read_ahead < 0 || o->read_ahead > 64)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("read-ahead must be between 0 and 64 chunks, not %lld"), (long long) o->read_ahead);
      return FALSE;
    }
  if (o->interleave < 1 || o->interleave > SMC_MAX_LANES)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("interleave must be between 1 and %d chunks, not %lld"), SMC_MAX_LANES,
                   (long long) o->interleave);
      return FALSE;
    }
  if (g_strcmp0 (o->policy, "wait") != 0 && g_strcmp0 (o->policy, "evict") != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("Unknown slow-policy “%s” (expected “evict” or “wait”)"), o->policy);
      return FALSE;
    }
  return TRUE;
}

static gboolean
setup_session (Run               *run,
               ShoalStepContext  *ctx,
               const Options     *o,
               GError           **error)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  g_autofree gchar *cfg_iface = context != NULL ? shoal_context_get_config_string (context, "multicast", "interface", NULL) : NULL;
  const gchar *group = shoal_step_context_get_option_string (ctx, "group", NULL);
  smc_sender_config *c = &run->cfg;

  smc_sender_config_init (c);
  if (RAND_bytes ((unsigned char *) &c->session, sizeof c->session) != 1 ||
      RAND_bytes (c->key, SMC_KEY_LEN) != 1)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, _("No randomness for the session key"));
      return FALSE;
    }
  c->has_key = TRUE;
  c->session |= 1;
  /* one group per session: several sessions (images) run side by side */
  run->group = group != NULL ? g_strdup (group)
                             : g_strdup_printf ("239.77.%u.%u", (c->session >> 8) & 0xff, c->session & 0xff);
  /* an interface the step chose comes with its notes */
  if (run->iface == NULL)
    run->iface = g_strdup (shoal_step_context_get_option_string (ctx, "interface", cfg_iface));
  for (guint i = 0; run->iface_notes != NULL && i < run->iface_notes->len; i++)
    shoal_step_context_log (ctx, g_ptr_array_index (run->devices, i), "multicast-member",
                            SHOAL_JOURNAL_RESULT_INFO, "%s", (const gchar *) g_ptr_array_index (run->iface_notes, i));
  /* every option is in its range (read_options): the casts keep it */
  c->group = run->group;
  c->iface = run->iface;
  c->port = (uint16_t) o->port;
  c->mtu = (uint16_t) o->mtu;
  c->slow_ratio_permille = (uint32_t) o->slow_disk * 10;
  c->rate_min_bps = (uint64_t) o->min_rate * 1000000;
  c->rate_max_bps = (uint64_t) o->rate * 1000000;
  c->rate_start_bps = (uint64_t) o->start * 1000000;
  c->max_k = (uint8_t) o->fec_k;
  c->proactive_permille = (uint32_t) o->proactive;
  c->max_loss_permille = (uint32_t) o->max_loss;
  c->join_wait_ms = (uint32_t) o->join_wait;
  c->node_timeout_ms = (uint32_t) o->node_timeout;
  c->slow_policy = g_strcmp0 (o->policy, "wait") == 0 ? SMC_SLOW_WAIT : SMC_SLOW_EVICT;
  c->expected = run->devices->len;
  c->on_node = on_node;
  c->on_progress = on_progress;
  c->no_gso = !o->gso;
  /* the image store checks every chunk's SHA-256 as it reads it: off the
   * sending thread, so pacing does not stall on it */
  c->read_ahead = (uint32_t) o->read_ahead;
  c->lanes = (uint8_t) o->interleave;
  run->unicast_timeout_s = (guint) o->unicast_timeout;
  run->window_mib = (gint) o->window_mib;
  return TRUE;
}

static gboolean
setup_run (Run               *run,
           ShoalStepContext  *ctx,
           GPtrArray         *devices,
           GError           **error)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  ShoalRecipe *recipe = shoal_step_context_get_recipe (ctx);
  JsonObject *image = recipe != NULL ? shoal_recipe_get_image (recipe) : NULL;
  const gchar *path = shoal_step_context_get_option_string (ctx, "image-path", NULL);
  const gchar *store = shoal_step_context_get_option_string (ctx, "store", NULL);
  const gchar *url = shoal_step_context_get_option_string (ctx, "server-url", NULL);
  Options o;

  if (!read_options (ctx, &o, error))
    return FALSE;
  if (devices == NULL || devices->len == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, _("The multicast step needs a group of devices"));
      return FALSE;
    }
  run->devices = g_ptr_array_ref (devices);
  run->image_path = g_strdup (path);
  run->chunk_size = (guint32) o.chunk_size;
  if (path == NULL && (image == NULL || !json_object_has_member (image, "name")))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("The recipe names no image and the step has no “image-path”"));
      return FALSE;
    }
  if (image != NULL)
    run->image = json_object_ref (image);
  if (store != NULL)
    run->root = g_strdup (store);
  else if (context != NULL)
    {
      g_autofree gchar *fallback = g_build_filename (shoal_context_get_state_dir (context), "image-store", NULL);
      run->root = shoal_context_get_config_string (context, "image-store", "path", fallback);
    }
  run->server_url = g_strdup (url != NULL ? url : context != NULL ? shoal_context_get_server_url (context) : NULL);
  if (run->server_url != NULL && g_str_has_suffix (run->server_url, "/"))
    run->server_url[strlen (run->server_url) - 1] = '\0';
  return setup_session (run, ctx, &o, error);
}

static void shoal_multicast_step_run_async (ShoalStep           *step,
                                            ShoalStepContext    *ctx,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);

/* one session, to devices, or to the link's devices on its interface
 * (link NULL: the configured interface, or the group's route) */
static void
start_run (ShoalStep           *step,
           ShoalStepContext    *ctx,
           GPtrArray           *devices,
           const Link          *link,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);
  g_autoptr(GTask) prepare = NULL;
  GError *error = NULL;
  Run *run = g_new0 (Run, 1);

  g_task_set_source_tag (task, shoal_multicast_step_run_async);
  g_task_set_task_data (task, run, (GDestroyNotify) run_free);
  run->ctx = g_object_ref (ctx);
  run->main_context = g_main_context_ref_thread_default ();
  /* before cancelled_cb can cancel it: the unicast waits started after
   * a cancel see it cancelled */
  run->waits = g_cancellable_new ();
  run->session_waits = g_cancellable_new ();
  if (link != NULL)
    {
      devices = link->devices;
      run->iface = g_strdup (link->iface);
      run->iface_notes = g_ptr_array_ref (link->notes);
    }
  if (!setup_run (run, ctx, devices, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* on_node runs in the sender thread and never outlives the task */
  run->cfg.node_user = task;
  prepare = g_task_new (step, cancellable, prepared_cb, g_object_ref (task));
  g_task_set_task_data (prepare, run, NULL);
  g_task_run_in_thread (prepare, prepare_thread);
}

/* --- a group behind several interfaces: a session on each ------------------ */

typedef struct {
  GTask     *task;       /* the step's */
  guint      left;       /* sessions still running */
  guint      succeeded;
  GPtrArray *failed;     /* the devices of each session that failed */
  GPtrArray *errors;     /* and why (GError) */
} Split;

static void
split_free (Split *split)
{
  g_ptr_array_unref (split->failed);
  g_ptr_array_unref (split->errors);
  g_free (split);
}

/* every session ended: when some succeeded, the devices of those that
 * failed are dropped with their session's error; when none did, the
 * step fails with the first error (a recipe's error fails them alike) */
static void
split_finish (Split *split)
{
  ShoalStepContext *ctx = g_task_get_task_data (split->task);

  if (split->succeeded == 0 && split->errors->len > 0)
    {
      g_task_return_error (split->task, g_error_copy (g_ptr_array_index (split->errors, 0)));
      return;
    }
  for (guint k = 0; k < split->failed->len; k++)
    {
      GPtrArray *devices = g_ptr_array_index (split->failed, k);
      const GError *error = g_ptr_array_index (split->errors, k);

      for (guint i = 0; i < devices->len; i++)
        {
          ShoalDevice *device = g_ptr_array_index (devices, i);

          if (shoal_step_context_is_dropped (ctx, device, NULL))
            continue;
          shoal_step_context_log (ctx, device, "multicast-receive", SHOAL_JOURNAL_RESULT_FAILED, "%s",
                                  error->message);
          shoal_step_context_drop_device (ctx, device, error);
        }
    }
  g_task_return_boolean (split->task, TRUE);
}

static void
split_session_done (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Split *split = user_data;
  Run *run = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    split->succeeded++;
  else
    {
      g_info ("multicast session on %s: %s", run->iface != NULL ? run->iface : "?", error->message);
      g_ptr_array_add (split->failed, run->devices != NULL ? g_ptr_array_ref (run->devices) : g_ptr_array_new ());
      g_ptr_array_add (split->errors, error);
    }
  if (--split->left > 0)
    return;
  split_finish (split);
  g_object_unref (split->task);
  split_free (split);
}

static void
shoal_multicast_step_run_async (ShoalStep           *step,
                                ShoalStepContext    *ctx,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  g_autofree gchar *cfg_iface = context != NULL ? shoal_context_get_config_string (context, "multicast", "interface", NULL) : NULL;
  GPtrArray *devices = shoal_step_context_get_devices (ctx);
  g_autoptr(GPtrArray) links = NULL;
  Split *split;

  if (devices != NULL && shoal_step_context_get_option_string (ctx, "interface", cfg_iface) == NULL)
    links = group_by_iface (devices);
  if (links == NULL || links->len == 1)
    {
      start_run (step, ctx, devices, links != NULL ? g_ptr_array_index (links, 0) : NULL, cancellable, callback,
                 user_data);
      return;
    }
  split = g_new0 (Split, 1);
  split->task = g_task_new (step, cancellable, callback, user_data);
  g_task_set_source_tag (split->task, shoal_multicast_step_run_async);
  g_task_set_task_data (split->task, g_object_ref (ctx), g_object_unref);
  split->left = links->len;
  split->failed = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  split->errors = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);
  /* each session holds its devices and notes */
  for (guint k = 0; k < links->len; k++)
    start_run (step, ctx, NULL, g_ptr_array_index (links, k), cancellable, split_session_done, split);
}

static ShoalStepScope
shoal_multicast_step_get_scope (ShoalStep *step)
{
  return SHOAL_STEP_SCOPE_GROUP;
}

static ShoalStepPhase
shoal_multicast_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_TRANSFER;
}

/* the recipe's image, from the daemon's store unless "store" or
 * "image-path" says otherwise */
static ShoalStepFlags
shoal_multicast_step_get_flags (ShoalStep *step)
{
  return SHOAL_STEP_FLAGS_READS_IMAGE;
}

/* a recipe whose options are out of their ranges is refused when it
 * loads; those that depend on the daemon's [multicast] config (the rates)
 * are checked again against it when the step runs */
static gboolean
shoal_multicast_step_validate_options (ShoalStep   *step,
                                       JsonObject  *options,
                                       GError     **error)
{
  g_autoptr(GPtrArray) none = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) ctx = shoal_step_context_new (NULL, NULL, "multicast", options, none, NULL);
  Options o;

  return read_options (ctx, &o, error);
}

static void
shoal_multicast_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_scope = shoal_multicast_step_get_scope;
  iface->validate_options = shoal_multicast_step_validate_options;
  iface->get_phase = shoal_multicast_step_get_phase;
  iface->get_flags = shoal_multicast_step_get_flags;
  iface->run_async = shoal_multicast_step_run_async;
}

static void
shoal_multicast_step_class_init (ShoalMulticastStepClass *klass)
{
}

static void
shoal_multicast_step_class_finalize (ShoalMulticastStepClass *klass)
{
}

static void
shoal_multicast_step_init (ShoalMulticastStep *self)
{
}

void
shoal_multicast_step_register_types (GTypeModule *module)
{
  shoal_multicast_step_register_type (module);
}
