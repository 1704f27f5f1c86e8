/* shoal-pxe-workers.c: a fixed pool of event loops for data transfers
 *
 * Each worker is one thread running its own GMainContext. Transfers are
 * spread over them round-robin, so a busy TFTP server uses every core
 * without a thread per transfer. With zero threads every transfer runs on
 * the caller's main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-pxe-workers.h"

typedef struct {
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
} Worker;

struct _ShoalPxeWorkers
{
  Worker *workers;
  guint   n;
  guint   next;
};

static gpointer
worker_run (gpointer data)
{
  Worker *w = data;

  g_main_context_push_thread_default (w->context);
  g_main_loop_run (w->loop);
  g_main_context_pop_thread_default (w->context);
  return NULL;
}

ShoalPxeWorkers *
shoal_pxe_workers_new (guint n_threads)
{
  ShoalPxeWorkers *self = g_new0 (ShoalPxeWorkers, 1);

  self->n = n_threads;
  self->workers = g_new0 (Worker, MAX (n_threads, 1));
  for (guint i = 0; i < n_threads; i++)
    {
      Worker *w = &self->workers[i];
      g_autofree gchar *name = g_strdup_printf ("pxe-worker-%u", i);

      w->context = g_main_context_new ();
      w->loop = g_main_loop_new (w->context, FALSE);
      w->thread = g_thread_new (name, worker_run, w);
    }
  return self;
}

guint
shoal_pxe_workers_get_size (ShoalPxeWorkers *self)
{
  return self->n;
}

/* the context the next transfer runs on: a worker's, or the thread
 * default one when the pool is empty */
GMainContext *
shoal_pxe_workers_next (ShoalPxeWorkers *self)
{
  if (self->n == 0)
    return g_main_context_get_thread_default ();
  self->next = (self->next + 1) % self->n;
  return self->workers[self->next].context;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* stops and joins every worker; their sources must be destroyed after */
void
shoal_pxe_workers_free (ShoalPxeWorkers *self)
{
  if (self == NULL)
    return;
  for (guint i = 0; i < self->n; i++)
    {
      Worker *w = &self->workers[i];

      g_main_context_invoke (w->context, quit_loop, w->loop);
      g_thread_join (w->thread);
      g_main_loop_unref (w->loop);
      g_main_context_unref (w->context);
    }
  g_free (self->workers);
  g_free (self);
}
