/* startup-bench.c: times a store's start as shoald does it (open, load the
 * devices, every journal's newest number and the keys), then its first
 * durable write; built by startup.sh against one version of
 * core/shoal-store.c
 *
 * startup-bench init DB DEVICES: a store of DEVICES installed devices
 * startup-bench run DB KEEP: prints "load_s write_s pass_s", the seconds
 *   from the start until the store is loaded, until its first write is
 *   durable and until the background trimming pass is over (-1 where the
 *   store has none: it trims within its first batch)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>

#include "shoal-store-private.h"

static ShoalStoreDevice *
make_row (guint n)
{
  ShoalStoreDevice *row = g_new0 (ShoalStoreDevice, 1);

  row->id = g_strdup_printf ("dev-%04u", n);
  row->macs = g_strdup_printf ("52:54:00:00:%02x:%02x", (n >> 8) & 0xff, n & 0xff);
  row->token = g_strdup ("secret");
  row->state = 12;      /* installed */
  row->recipe = g_strdup ("debian-12");
  row->step_index = 9;
  row->progress = 1.0;
  row->inventory = g_strdup ("{\"cpu\": 16, \"memory\": 68719476736, \"disks\": [\"sda\", \"sdb\"]}");
  row->metadata = g_strdup ("{}");
  row->run_no = 1;
  row->updated_us = g_get_real_time ();
  return row;
}

static void
check (gboolean ok, GError *error)
{
  if (!ok)
    {
      g_printerr ("startup-bench: %s\n", error != NULL ? error->message : "failed");
      exit (1);
    }
}

int
main (int argc, char **argv)
{
  g_autoptr(ShoalStore) store = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GHashTable) seqs = NULL;
  g_autoptr(GHashTable) kv = NULL;
  gint64 start, loaded, written, passed = -1;

  if (argc != 4)
    {
      g_printerr ("usage: %s init DB DEVICES | run DB KEEP\n", argv[0]);
      return 2;
    }
  store = shoal_store_new ();
  if (g_str_equal (argv[1], "init"))
    {
      guint n = (guint) atoi (argv[3]);

      check (shoal_store_open (store, argv[2], &error), error);
      for (guint i = 0; i < n; i++)
        shoal_store_put_device (store, make_row (i));
      check (shoal_store_flush (store, &error), error);
      shoal_store_close (store);
      return 0;
    }

  start = g_get_monotonic_time ();
  shoal_store_set_journal_keep (store, (guint) atoi (argv[3]));
  check (shoal_store_open (store, argv[2], &error), error);
  rows = shoal_store_load_devices (store, &error);
  check (rows != NULL, error);
  seqs = shoal_store_load_journal_seqs (store, &error);
  check (seqs != NULL, error);
  kv = shoal_store_load_kv (store, &error);
  check (kv != NULL, error);
  loaded = g_get_monotonic_time ();
  /* the first transition a pipeline acknowledges */
  shoal_store_put_device (store, make_row (0));
  check (shoal_store_flush (store, &error), error);
  written = g_get_monotonic_time ();
#ifdef HAVE_STORE_STATS
  for (;;)
    {
      ShoalStoreStats stats;

      shoal_store_get_stats (store, &stats);
      if (!stats.maintaining)
        break;
      g_usleep (10000);
    }
  passed = g_get_monotonic_time ();
#endif
  shoal_store_close (store);
  g_print ("%.3f %.3f %.3f\n", (loaded - start) / 1e6, (written - start) / 1e6,
           passed < 0 ? -1.0 : (passed - start) / 1e6);
  return 0;
}
