/* test-store.c: group commit, durability and reads
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "shoal-controller-private.h"
#include "shoal-store-private.h"
#include "shoal-test-util.h"

static ShoalStoreDevice *
make_row (const gchar *id,
          gint         state)
{
  ShoalStoreDevice *row = g_new0 (ShoalStoreDevice, 1);

  row->id = g_strdup (id);
  row->macs = g_strdup ("52:54:00:00:00:01,52:54:00:00:00:02");
  row->token = g_strdup ("secret");
  row->state = state;
  row->recipe = g_strdup ("r");
  row->step_index = 2;
  row->inventory = g_strdup ("{\"cpu\": 4}");
  row->updated_us = g_get_real_time ();
  return row;
}

static void
test_store_roundtrip (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalStore) again = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) journal = NULL;
  g_autoptr(GHashTable) seqs = NULL;
  g_autoptr(GHashTable) kv = NULL;
  ShoalStoreDevice *row;

  g_assert_true (shoal_store_open (store, path, &error));
  g_assert_no_error (error);
  shoal_store_put_device (store, make_row ("a", 3));
  shoal_store_put_device (store, make_row ("b", 4));
  shoal_store_put_device (store, make_row ("a", 5));   /* replaces */
  for (guint i = 1; i <= 100; i++)
    {
      g_autoptr(ShoalJournalEntry) entry =
        shoal_journal_entry_new ("a", 0, "test", "op", SHOAL_JOURNAL_RESULT_OK, "message");

      shoal_journal_entry_set_seq (entry, i);
      shoal_store_append_journal (store, entry);
    }
  shoal_store_kv_set (store, "pxe-leases", "10.0.0.5", "52:54:00:00:00:01");
  shoal_store_kv_set (store, "pxe-leases", "10.0.0.6", "x");
  shoal_store_kv_set (store, "pxe-leases", "10.0.0.6", NULL);
  shoal_store_delete_device (store, "b");
  g_assert_true (shoal_store_flush (store, &error));
  g_assert_cmpuint (shoal_store_get_commits (store), >=, 1);
  shoal_store_close (store);

  g_assert_true (shoal_store_open (again, path, &error));
  rows = shoal_store_load_devices (again, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 1);
  row = g_ptr_array_index (rows, 0);
  g_assert_cmpstr (row->id, ==, "a");
  g_assert_cmpint (row->state, ==, 5);
  g_assert_cmpint (row->step_index, ==, 2);
  g_assert_cmpstr (row->inventory, ==, "{\"cpu\": 4}");
  seqs = shoal_store_load_journal_seqs (again, &error);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "a"), ==, 100);
  journal = shoal_store_get_journal (again, "a", 90, 0, &error);
  g_assert_cmpuint (journal->len, ==, 10);
  g_assert_cmpuint (shoal_journal_entry_get_seq (g_ptr_array_index (journal, 0)), ==, 91);
  kv = shoal_store_load_kv (again, &error);
  g_assert_cmpuint (g_hash_table_size (kv), ==, 1);
  g_assert_cmpstr (g_hash_table_lookup (kv, "pxe-leases\x1f" "10.0.0.5"), ==, "52:54:00:00:00:01");
  shoal_store_close (again);
  shoal_test_rm_rf (dir);
}

static void
test_store_duplicate_seq_fails (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalJournalEntry) entry = shoal_journal_entry_new ("a", 0, "t", "op", SHOAL_JOURNAL_RESULT_OK, "m");
  g_autoptr(GError) error = NULL;

  g_assert_true (shoal_store_open (store, path, &error));
  shoal_journal_entry_set_seq (entry, 1);
  shoal_store_append_journal (store, entry);
  g_assert_true (shoal_store_flush (store, &error));
  /* the journal never takes two entries with one number */
  g_test_expect_message ("Shoal", G_LOG_LEVEL_WARNING, "*UNIQUE*");
  shoal_store_append_journal (store, entry);
  g_assert_false (shoal_store_flush (store, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE);
  g_test_assert_expected_messages ();
  g_clear_error (&error);
  /* the refused write is dropped, the store goes on */
  shoal_journal_entry_set_seq (entry, 2);
  shoal_store_append_journal (store, entry);
  g_assert_true (shoal_store_flush (store, &error));
  g_assert_no_error (error);
  shoal_store_close (store);
  shoal_test_rm_rf (dir);
}

typedef struct {
  gboolean  done;
  gboolean  ok;
  GError   *error;
} FlushResult;

static void
flush_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  FlushResult *flush = user_data;

  flush->ok = shoal_store_flush_finish (SHOAL_STORE (source), result, &flush->error);
  flush->done = TRUE;
}

static gboolean
flush_is_done (gpointer user_data)
{
  return ((FlushResult *) user_data)->done;
}

static gboolean
never (gpointer user_data)
{
  return FALSE;
}

static void
assert_device_ids (ShoalStore  *store,
                   const gchar *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = shoal_store_load_devices (store, &error);
  g_autoptr(GString) ids = g_string_new (NULL);

  g_assert_no_error (error);
  for (guint i = 0; i < rows->len; i++)
    g_string_append (ids, ((ShoalStoreDevice *) g_ptr_array_index (rows, i))->id);
  g_assert_cmpstr (ids->str, ==, expected);
}

/* Opens @store at @path holding device "a", then limits the file size
 * (as a full disk) and queues device "b" with an inventory past it, whose
 * writing fails (one warning expected); the old limit in @old_limit */
static void
open_then_fill_disk (ShoalStore *store, const gchar *path, struct rlimit *old_limit)
{
  g_autoptr(GError) error = NULL;
  ShoalStoreDevice *big = make_row ("b", 1);
  struct rlimit limit;

  g_assert_true (shoal_store_open (store, path, &error));
  shoal_store_put_device (store, make_row ("a", 1));
  g_assert_true (shoal_store_flush (store, &error));

  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, old_limit), ==, 0);
  limit = *old_limit;
  limit.rlim_cur = 256 * 1024;
  signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);

  /* one warning for the outage, however many tries fail */
  g_test_expect_message ("Shoal", G_LOG_LEVEL_WARNING, "*writing failed*");
  g_free (big->inventory);
  big->inventory = g_strnfill (1024 * 1024, 'x');
  shoal_store_put_device (store, big);
}

/* Writes that fail (here: past the file-size limit, as on a full disk)
 * are kept and land once the store can write again, without a restart */
static void
test_store_write_failure_recovers (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalJournalEntry) entry = shoal_journal_entry_new ("b", 0, "t", "op", SHOAL_JOURNAL_RESULT_OK, "m");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) journal = NULL;
  g_autofree gchar *last_error = NULL;
  FlushResult waiting = { 0 };
  struct rlimit old_limit;
  guint64 errors = 0;
  guint pending = 0;

  open_then_fill_disk (store, path, &old_limit);
  shoal_journal_entry_set_seq (entry, 1);
  shoal_store_append_journal (store, entry);
  shoal_store_flush_async (store, NULL, flush_done_cb, &waiting);
  g_assert_false (shoal_store_flush (store, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "kept"));
  g_clear_error (&error);
  shoal_store_put_device (store, make_row ("c", 1));
  g_assert_false (shoal_store_flush (store, &error));
  g_clear_error (&error);
  g_test_assert_expected_messages ();

  g_assert_false (shoal_store_get_health (store, &errors, &pending, &last_error));
  g_assert_cmpuint (errors, >=, 2);
  g_assert_cmpuint (pending, ==, 3);
  g_assert_nonnull (last_error);
  /* nothing of the failed batches is half-written, the waiting flush waits */
  assert_device_ids (store, "a");
  shoal_test_wait_until (never, NULL, 300);
  g_assert_false (waiting.done);

  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old_limit), ==, 0);
  signal (SIGXFSZ, SIG_DFL);
  g_assert_true (shoal_test_wait_until (flush_is_done, &waiting, 20000));
  g_assert_no_error (waiting.error);
  g_assert_true (waiting.ok);
  shoal_store_put_device (store, make_row ("d", 1));
  g_assert_true (shoal_store_flush (store, &error));
  g_assert_no_error (error);
  assert_device_ids (store, "abcd");
  journal = shoal_store_get_journal (store, "b", 0, 0, &error);
  g_assert_cmpuint (journal->len, ==, 1);
  g_clear_pointer (&last_error, g_free);
  g_assert_true (shoal_store_get_health (store, NULL, &pending, NULL));
  g_assert_cmpuint (pending, ==, 0);
  shoal_store_close (store);
  shoal_test_rm_rf (dir);
}

static gpointer
lift_fsize_limit_later (gpointer data)
{
  struct rlimit *limit = data;

  g_usleep (700 * 1000);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, limit), ==, 0);
  return NULL;
}

/* Closing while writes fail keeps trying them a while: a disk given room
 * as the daemon stops still gets them */
static void
test_store_close_grace (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalStore) again = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  struct rlimit old_limit;
  GThread *lifter;
  gint64 start;

  open_then_fill_disk (store, path, &old_limit);
  g_assert_false (shoal_store_flush (store, &error));
  g_clear_error (&error);
  g_test_assert_expected_messages ();

  /* the disk gets room 0.7 s into the close */
  lifter = g_thread_new ("lift", lift_fsize_limit_later, &old_limit);
  start = g_get_monotonic_time ();
  shoal_store_close (store);
  g_thread_join (lifter);
  signal (SIGXFSZ, SIG_DFL);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 600 * 1000);

  g_assert_true (shoal_store_open (again, path, &error));
  g_assert_no_error (error);
  assert_device_ids (again, "ab");
  shoal_store_close (again);
  shoal_test_rm_rf (dir);
}

/* Closing while writes still fail after the grace: the log names the
 * devices whose changes are lost (it gave only a count), and the error
 * of a failed write says a restart before the store recovers loses it
 * (it said the change "is kept and written once the store can write
 * again") */
static void
test_store_close_gives_up (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalStore) again = shoal_store_new ();
  g_autoptr(ShoalJournalEntry) entry = shoal_journal_entry_new ("c", 0, "t", "op", SHOAL_JOURNAL_RESULT_OK, "m");
  g_autoptr(GError) error = NULL;
  struct rlimit old_limit;

  open_then_fill_disk (store, path, &old_limit);
  shoal_journal_entry_set_seq (entry, 1);
  shoal_store_append_journal (store, entry);
  shoal_store_put_device (store, make_row ("d", 1));
  g_assert_false (shoal_store_flush (store, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "kept in memory"));
  g_assert_nonnull (strstr (error->message, "restarts before then, the change is lost"));
  g_clear_error (&error);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Shoal", G_LOG_LEVEL_MESSAGE, "*closing with 3 writes that failed*");
  g_test_expect_message ("Shoal", G_LOG_LEVEL_WARNING,
                         "*closed with 3 writes*devices [b, c, d] are lost*");
  shoal_store_close (store);
  g_test_assert_expected_messages ();
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old_limit), ==, 0);
  signal (SIGXFSZ, SIG_DFL);

  g_assert_true (shoal_store_open (again, path, &error));
  g_assert_no_error (error);
  assert_device_ids (again, "a");
  shoal_store_close (again);
  shoal_test_rm_rf (dir);
}

static void
append_entries (ShoalStore  *store,
                const gchar *device,
                guint64      from,
                guint64      to)
{
  for (guint64 seq = from; seq <= to; seq++)
    {
      g_autoptr(ShoalJournalEntry) entry =
        shoal_journal_entry_new (device, 0, "test", "op", SHOAL_JOURNAL_RESULT_OK, "message");

      shoal_journal_entry_set_seq (entry, seq);
      shoal_store_append_journal (store, entry);
    }
}

static void
assert_journal (ShoalStore  *store,
                const gchar *device,
                guint64      first,
                guint64      last)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) journal = shoal_store_get_journal (store, device, 0, 0, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (journal->len, ==, last - first + 1);
  g_assert_cmpuint (shoal_journal_entry_get_seq (g_ptr_array_index (journal, 0)), ==, first);
  g_assert_cmpuint (shoal_journal_entry_get_seq (g_ptr_array_index (journal, journal->len - 1)), ==, last);
}

static gboolean
store_maintained (gpointer user_data)
{
  ShoalStoreStats stats;

  shoal_store_get_stats (SHOAL_STORE (user_data), &stats);
  return !stats.maintaining;
}

/* Waits for the background trimming pass asked for so far */
static gboolean
tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

static void
wait_maintained (ShoalStore *store)
{
  /* the writer tells nothing when it is done: look every 10 ms */
  guint ticker = g_timeout_add (10, tick, NULL);

  g_assert_true (shoal_test_wait_until (store_maintained, store, 30000));
  g_source_remove (ticker);
}

/* Each journal keeps its newest entries: as new ones come, when the limit
 * changes and when the store opens; reads come a page at a time */
static void
test_store_journal_keep (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalStore) again = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) page = NULL;
  g_autoptr(GHashTable) seqs = NULL;

  g_assert_true (shoal_store_open (store, path, &error));
  shoal_store_set_journal_keep (store, 100);
  append_entries (store, "a", 1, 150);
  g_assert_true (shoal_store_flush (store, &error));
  append_entries (store, "a", 151, 250);
  append_entries (store, "b", 1, 50);
  g_assert_true (shoal_store_flush (store, &error));
  assert_journal (store, "a", 151, 250);
  assert_journal (store, "b", 1, 50);

  page = shoal_store_get_journal (store, "a", 160, 7, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (page->len, ==, 7);
  g_assert_cmpuint (shoal_journal_entry_get_seq (g_ptr_array_index (page, 0)), ==, 161);
  g_assert_cmpuint (shoal_journal_entry_get_seq (g_ptr_array_index (page, 6)), ==, 167);

  /* a lower limit trims every journal, in the background */
  shoal_store_set_journal_keep (store, 20);
  g_assert_true (shoal_store_flush (store, &error));
  wait_maintained (store);
  assert_journal (store, "a", 231, 250);
  assert_journal (store, "b", 31, 50);
  /* 0 keeps everything */
  shoal_store_set_journal_keep (store, 0);
  append_entries (store, "b", 51, 80);
  g_assert_true (shoal_store_flush (store, &error));
  assert_journal (store, "b", 31, 80);
  shoal_store_close (store);

  /* a limit set before the store opens applies when it opens */
  shoal_store_set_journal_keep (again, 10);
  g_assert_true (shoal_store_open (again, path, &error));
  g_assert_true (shoal_store_flush (again, &error));
  wait_maintained (again);
  assert_journal (again, "a", 241, 250);
  assert_journal (again, "b", 71, 80);
  seqs = shoal_store_load_journal_seqs (again, &error);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "a"), ==, 250);
  shoal_store_close (again);
  shoal_test_rm_rf (dir);
}

/* --- long journals ------------------------------------------------------ */

static sqlite3 *
db_open (const gchar *path)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 10000);
  return db;
}

static void
db_exec (sqlite3     *db,
         const gchar *sql)
{
  char *errmsg = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &errmsg) != SQLITE_OK)
    g_error ("%s: %s", sql, errmsg);
}

static gint64
db_int (sqlite3     *db,
        const gchar *sql)
{
  sqlite3_stmt *stmt = NULL;
  gint64 value;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return value;
}

static gint64
file_int (const gchar *path,
          const gchar *sql)
{
  sqlite3 *db = db_open (path);
  gint64 value = db_int (db, sql);

  sqlite3_close (db);
  return value;
}

/* Adds entries @from to @to, each message @message_len long, to @device's
 * journal in the database at @path, as history that piled up */
static void
fill_journal (const gchar *path,
              const gchar *device,
              gint64       from,
              gint64       to,
              gint         message_len)
{
  sqlite3 *db = db_open (path);
  g_autofree gchar *sql =
    g_strdup_printf ("WITH RECURSIVE n(i) AS (SELECT %" G_GINT64_FORMAT " UNION ALL SELECT i + 1"
                     " FROM n WHERE i < %" G_GINT64_FORMAT ")"
                     " INSERT INTO journal SELECT '%s', i, 0, 'test', 'op', 'ok',"
                     " substr(hex(zeroblob(%d)), 1, %d) FROM n",
                     from, to, device, message_len, message_len);

  db_exec (db, sql);
  sqlite3_close (db);
}

static gint64
journal_rows (const gchar *path,
              const gchar *device)
{
  g_autofree gchar *sql = g_strdup_printf ("SELECT COUNT(*) FROM journal WHERE device = '%s'", device);

  return file_int (path, sql);
}

/* A new store, closed, holding nothing */
static void
make_store (const gchar *path)
{
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GError) error = NULL;

  g_assert_true (shoal_store_open (store, path, &error));
  g_assert_no_error (error);
  shoal_store_close (store);
}

/* The schema and pragmas of the store before incremental auto-vacuum
 * (user_version 1), as shoal_store_open() made them: a store of the last
 * release */
static void
make_old_store (const gchar *path)
{
  sqlite3 *db = db_open (path);

  db_exec (db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;");
  db_exec (db,
           "CREATE TABLE IF NOT EXISTS devices ("
           "  id TEXT PRIMARY KEY, macs TEXT NOT NULL DEFAULT '', uuid TEXT, token TEXT,"
           "  state INTEGER NOT NULL, boot_action INTEGER NOT NULL, recipe TEXT,"
           "  recipe_commit TEXT, group_id TEXT, current_step TEXT,"
           "  step_index INTEGER NOT NULL DEFAULT 0, progress REAL NOT NULL DEFAULT 0,"
           "  inventory TEXT, metadata TEXT, run_no INTEGER NOT NULL DEFAULT 0,"
           "  updated INTEGER NOT NULL);"
           "CREATE TABLE IF NOT EXISTS journal ("
           "  device TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL,"
           "  source TEXT NOT NULL, operation TEXT NOT NULL, result TEXT NOT NULL,"
           "  message TEXT NOT NULL, PRIMARY KEY (device, seq)) WITHOUT ROWID;"
           "CREATE TABLE IF NOT EXISTS kv ("
           "  ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
           "  PRIMARY KEY (ns, key)) WITHOUT ROWID;"
           "PRAGMA user_version = 1;");
  db_exec (db,
           "INSERT INTO devices (id, macs, uuid, token, state, boot_action, recipe, recipe_commit,"
           " group_id, current_step, step_index, progress, inventory, metadata, run_no, updated)"
           " VALUES ('a', '52:54:00:00:00:0a', NULL, 'secret', 5, 1, 'r', NULL, NULL, 'disk', 2,"
           " 0.5, '{\"cpu\": 4}', '{}', 3, 1700000000000000),"
           " ('b', '52:54:00:00:00:0b', NULL, NULL, 1, 0, NULL, NULL, NULL, NULL, 0, 0, NULL,"
           " NULL, 0, 1700000000000000);"
           "INSERT INTO kv VALUES ('pxe-leases', '10.0.0.5', '52:54:00:00:00:0a');");
  g_assert_cmpint (db_int (db, "PRAGMA auto_vacuum"), ==, 0);
  sqlite3_close (db);
}

/* Opening a store reads each journal's newest number by index seeks: the
 * work does not grow with the journals' length */
static void
test_store_load_seqs_seeks (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GHashTable) seqs = NULL;
  g_autoptr(GError) error = NULL;
  ShoalStoreStats stats;

  /* an empty store */
  g_assert_true (shoal_store_open (store, path, &error));
  seqs = shoal_store_load_journal_seqs (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (seqs), ==, 0);
  shoal_store_close (store);
  g_clear_pointer (&seqs, g_hash_table_unref);
  g_clear_object (&store);

  fill_journal (path, "a", 1, 20000, 10);
  fill_journal (path, "b", 7, 9, 10);
  fill_journal (path, "c", 100, 10099, 10);
  store = shoal_store_new ();
  shoal_store_set_journal_keep (store, 0);
  g_assert_true (shoal_store_open (store, path, &error));
  seqs = shoal_store_load_journal_seqs (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (seqs), ==, 3);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "a"), ==, 20000);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "b"), ==, 9);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "c"), ==, 10099);
  /* a scan of the 30003 entries takes several steps each; the seeks, a
   * few dozen per journal */
  shoal_store_get_stats (store, &stats);
  g_assert_cmpuint (stats.seq_load_steps, >, 0);
  g_assert_cmpuint (stats.seq_load_steps, <, 500);
  shoal_store_close (store);
  shoal_test_rm_rf (dir);
}

/* A store opened with a lower limit trims its journals in transactions
 * of at most SHOAL_STORE_PRUNE_BATCH_ROWS deletions each */
static void
test_store_prune_batches (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  ShoalStoreStats stats;

  make_store (path);
  fill_journal (path, "a", 1, 3 * SHOAL_STORE_PRUNE_BATCH_ROWS + 123, 10);
  fill_journal (path, "b", 1, 10, 10);
  fill_journal (path, "c", 1, 7000, 10);

  shoal_store_set_journal_keep (store, 10);
  g_assert_true (shoal_store_open (store, path, &error));
  wait_maintained (store);
  assert_journal (store, "a", 3 * SHOAL_STORE_PRUNE_BATCH_ROWS + 114, 3 * SHOAL_STORE_PRUNE_BATCH_ROWS + 123);
  assert_journal (store, "b", 1, 10);
  assert_journal (store, "c", 6991, 7000);
  shoal_store_get_stats (store, &stats);
  g_assert_cmpuint (stats.pruned_rows, ==, 3 * SHOAL_STORE_PRUNE_BATCH_ROWS + 113 + 6990);
  g_assert_cmpuint (stats.prune_max_rows, <=, SHOAL_STORE_PRUNE_BATCH_ROWS);
  g_assert_cmpuint (stats.prune_transactions, >=, 5);

  /* a device whose backlog is not trimmed yet gets a new entry: its batch
   * deletes a few of the oldest, not the whole backlog */
  shoal_store_close (store);
  g_clear_object (&store);
  fill_journal (path, "d", 1, 3000, 10);
  store = shoal_store_new ();
  shoal_store_set_journal_keep (store, 0);
  g_assert_true (shoal_store_open (store, path, &error));
  shoal_store_set_journal_keep (store, 10);
  append_entries (store, "d", 3001, 3001);
  g_assert_true (shoal_store_flush (store, &error));
  wait_maintained (store);
  assert_journal (store, "d", 2992, 3001);
  shoal_store_close (store);
  shoal_test_rm_rf (dir);
}

/* Writes queued while a long backlog is trimmed commit between its
 * transactions, not after all of them (each commit takes 100 ms here, the
 * ten of the backlog a second: the write waits for one at most) */
static void
test_store_prune_yields (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  ShoalStoreStats stats;

  make_store (path);
  fill_journal (path, "a", 1, 10 * SHOAL_STORE_PRUNE_BATCH_ROWS, 10);

  g_setenv ("SHOAL_STORE_COMMIT_DELAY_MS", "100", TRUE);
  shoal_store_set_journal_keep (store, 10);
  g_assert_true (shoal_store_open (store, path, &error));
  g_unsetenv ("SHOAL_STORE_COMMIT_DELAY_MS");
  shoal_store_put_device (store, make_row ("x", 1));
  g_assert_true (shoal_store_flush (store, &error));
  g_assert_no_error (error);
  assert_device_ids (store, "x");
  /* durable while most of the backlog is still there */
  shoal_store_get_stats (store, &stats);
  g_assert_true (stats.maintaining);
  g_assert_cmpint (journal_rows (path, "a"), >, 5 * SHOAL_STORE_PRUNE_BATCH_ROWS);
  wait_maintained (store);
  g_assert_cmpint (journal_rows (path, "a"), ==, 10);
  shoal_store_close (store);
  shoal_test_rm_rf (dir);
}

static gint64
file_size (const gchar *path)
{
  struct stat st;

  g_assert_cmpint (stat (path, &st), ==, 0);
  return (gint64) st.st_size;
}

/* A new store uses incremental auto-vacuum: once a long backlog is
 * trimmed, the file gives its pages back */
static void
test_store_auto_vacuum (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  ShoalStoreStats stats;
  gint64 pages, size;

  make_store (path);
  g_assert_cmpint (file_int (path, "PRAGMA auto_vacuum"), ==, 2);
  fill_journal (path, "a", 1, 30000, 200);
  pages = file_int (path, "PRAGMA page_count");
  size = file_size (path);
  g_assert_cmpint (pages, >, 1500);

  shoal_store_set_journal_keep (store, 10);
  g_assert_true (shoal_store_open (store, path, &error));
  wait_maintained (store);
  shoal_store_get_stats (store, &stats);
  g_assert_cmpuint (stats.vacuumed_pages, >, 0);
  g_assert_cmpint (file_int (path, "PRAGMA page_count"), <, pages / 10);
  assert_journal (store, "a", 29991, 30000);
  shoal_store_close (store);
  /* the last connection's close checkpoints: the file is smaller */
  g_assert_cmpint (file_size (path), <, size / 10);
  shoal_test_rm_rf (dir);
}

static void
assert_old_store_loads (ShoalStore *store)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = shoal_store_load_devices (store, &error);
  g_autoptr(GHashTable) seqs = NULL;
  g_autoptr(GHashTable) kv = NULL;
  ShoalStoreDevice *row;

  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 2);
  row = g_ptr_array_index (rows, 0);
  g_assert_cmpstr (row->id, ==, "a");
  g_assert_cmpint (row->state, ==, 5);
  g_assert_cmpstr (row->current_step, ==, "disk");
  g_assert_cmpint (row->run_no, ==, 3);
  g_assert_cmpstr (row->inventory, ==, "{\"cpu\": 4}");
  seqs = shoal_store_load_journal_seqs (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (seqs), ==, 2);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "a"), ==, 20000);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "b"), ==, 5);
  kv = shoal_store_load_kv (store, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_hash_table_lookup (kv, "pxe-leases\x1f" "10.0.0.5"), ==, "52:54:00:00:00:0a");
}

/* Makes a store of the last release at @path, a journal of 20000 entries
 * for device a and 5 for b, and opens it in @store with journal-keep 100:
 * it loads as it was and its journals are trimmed. Returns its pages
 * before */
static gint64
open_old_store (ShoalStore  *store,
                const gchar *path)
{
  g_autoptr(GError) error = NULL;
  gint64 pages;

  make_old_store (path);
  fill_journal (path, "a", 1, 20000, 200);
  fill_journal (path, "b", 1, 5, 200);
  pages = file_int (path, "PRAGMA page_count");

  shoal_store_set_journal_keep (store, 100);
  g_assert_true (shoal_store_open (store, path, &error));
  g_assert_no_error (error);
  assert_old_store_loads (store);
  wait_maintained (store);
  assert_journal (store, "a", 19901, 20000);
  assert_journal (store, "b", 1, 5);
  return pages;
}

/* A store of the last release (auto_vacuum off) opens as it was, is
 * trimmed, converted to incremental auto-vacuum by one VACUUM (it is
 * small) and shrinks; then it works as a new one */
static void
test_store_old_store_converts (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalStore) again = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  gint64 pages;

  pages = open_old_store (store, path);
  g_assert_cmpint (file_int (path, "PRAGMA auto_vacuum"), ==, 2);
  /* and brought to schema version 3 (instruction serials, recipe digests) */
  g_assert_cmpint (file_int (path, "PRAGMA user_version"), ==, 3);
  g_assert_cmpint (file_int (path, "PRAGMA page_count"), <, pages / 10);
  append_entries (store, "a", 20001, 20001);
  g_assert_true (shoal_store_flush (store, &error));
  assert_journal (store, "a", 19902, 20001);
  shoal_store_close (store);

  shoal_store_set_journal_keep (again, 100);
  g_assert_true (shoal_store_open (again, path, &error));
  wait_maintained (again);
  assert_journal (again, "a", 19902, 20001);
  shoal_store_close (again);
  shoal_test_rm_rf (dir);
}

/* An old store that holds more than is converted at start is trimmed and
 * works, and keeps auto_vacuum off (its free pages are reused) */
static void
test_store_old_store_big (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  gint64 pages;

  shoal_store_set_convert_max (store, 4096);
  pages = open_old_store (store, path);
  g_assert_cmpint (file_int (path, "PRAGMA auto_vacuum"), ==, 0);
  g_assert_cmpint (file_int (path, "PRAGMA page_count"), ==, pages);
  g_assert_cmpint (file_int (path, "PRAGMA freelist_count"), >, pages / 2);
  append_entries (store, "b", 6, 6);
  g_assert_true (shoal_store_flush (store, &error));
  assert_journal (store, "b", 1, 6);
  shoal_store_close (store);
  shoal_test_rm_rf (dir);
}

/* An old store too big to be converted while shoald runs was left without
 * auto-vacuum for good (the README gave a sqlite3 command): shoald
 * --convert-store (shoal_store_convert_file()) converts it, with shoald
 * stopped, and it shrinks, its contents intact */
static void
test_store_convert_file (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autofree gchar *missing = g_build_filename (dir, "none.db", NULL);
  g_autofree gchar *state = g_build_filename (dir, "state", NULL);
  g_autofree gchar *state_db = g_build_filename (state, "shoal.db", NULL);
  g_autofree gchar *conf = g_build_filename (dir, "shoald.conf", NULL);
  g_autofree gchar *shoald = NULL;
  g_autofree gchar *out = NULL;
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(ShoalStore) again = shoal_store_new ();
  g_autoptr(GError) error = NULL;
  gboolean converted = FALSE;
  gint64 pages;
  gint status = -1;

  shoal_store_set_convert_max (store, 4096);
  pages = open_old_store (store, path);
  shoal_store_close (store);
  g_assert_cmpint (file_int (path, "PRAGMA auto_vacuum"), ==, 0);
  g_assert_true (shoal_store_convert_file (path, &converted, &error));
  g_assert_no_error (error);
  g_assert_true (converted);
  g_assert_cmpint (file_int (path, "PRAGMA auto_vacuum"), ==, 2);
  g_assert_cmpint (file_int (path, "PRAGMA page_count"), <, pages / 10);
  shoal_store_set_journal_keep (again, 100);
  g_assert_true (shoal_store_open (again, path, &error));
  assert_old_store_loads (again);
  assert_journal (again, "a", 19901, 20000);
  assert_journal (again, "b", 1, 5);
  shoal_store_close (again);
  /* once is enough; and a store must be there */
  g_assert_true (shoal_store_convert_file (path, &converted, &error));
  g_assert_false (converted);
  g_assert_false (shoal_store_convert_file (missing, &converted, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  /* shoald --convert-store, on the store of its state directory */
  if (g_getenv ("SHOAL_BUILD_ROOT") == NULL)
    {
      shoal_test_rm_rf (dir);
      g_test_skip ("SHOAL_BUILD_ROOT is not set: shoald not found");
      return;
    }
  shoald = g_build_filename (g_getenv ("SHOAL_BUILD_ROOT"), "core", "daemon", "shoald", NULL);
  g_assert_cmpint (g_mkdir_with_parents (state, 0700), ==, 0);
  make_old_store (state_db);
  g_assert_true (g_file_set_contents (conf, "", 0, NULL));
  {
    const gchar *argv[] = { shoald, "--convert-store", "--state-dir", state, "--config", conf, NULL };
    g_autoptr(ShoalPluginEngine) engine = shoal_plugin_engine_new ();
    g_autoptr(ShoalController) running = shoal_controller_new (engine, state);
    g_autofree gchar *err = NULL;

    /* not while a shoald uses the state directory (one that does not
     * convert it itself: "too big") */
    shoal_store_set_convert_max (shoal_controller_get_store (running), 4096);
    g_assert_true (shoal_controller_open (running, &error));
    g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &err,
                                 &status, &error));
    g_assert_no_error (error);
    g_test_message ("%s", err);
    g_assert_false (g_spawn_check_wait_status (status, NULL));
    g_assert_nonnull (strstr (err, "in use by another shoald"));
    shoal_controller_close (running);
    /* and once it is gone */
    g_assert_cmpint (file_int (state_db, "PRAGMA auto_vacuum"), ==, 0);
    g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL,
                                 &status, &error));
  }
  g_assert_no_error (error);
  g_test_message ("%s", out);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out, "now uses incremental auto-vacuum"));
  g_assert_cmpint (file_int (state_db, "PRAGMA auto_vacuum"), ==, 2);
  shoal_test_rm_rf (dir);
}

static void
test_store_open_error (void)
{
  g_autoptr(ShoalStore) store = shoal_store_new ();
  g_autoptr(GError) error = NULL;

  g_assert_false (shoal_store_open (store, "/nonexistent-dir/x/s.db", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "/nonexistent-dir/x/s.db"));
}

/* A store written before schema version 2 (an upgrade of shoald) opens,
 * its devices intact; their instruction serials are 0 and recipe digests
 * NULL until written. A database an older shoald set back to version 1
 * after it had the columns opens too */
static void
test_store_migrate (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(GError) error = NULL;
  ShoalStoreDevice *row;
  sqlite3 *db;

  make_old_store (path);
  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(ShoalStore) store = shoal_store_new ();
      g_autoptr(GPtrArray) rows = NULL;

      g_assert_true (shoal_store_open (store, path, &error));
      g_assert_no_error (error);
      g_assert_cmpint (file_int (path, "PRAGMA user_version"), ==, 3);
      rows = shoal_store_load_devices (store, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (rows->len, ==, 2);
      row = g_ptr_array_index (rows, 0);
      g_assert_cmpstr (row->id, ==, "a");
      g_assert_cmpstr (row->recipe, ==, "r");
      g_assert_cmpint (row->run_no, ==, 3);
      g_assert_cmpuint (row->instruction_serial, ==, round == 0 ? 0 : 7);
      g_assert_cmpstr (row->recipe_digest, ==, round == 0 ? NULL : "d1");
      row = make_row ("a", 10);
      row->run_no = 3;
      row->instruction_serial = 7;
      row->recipe_digest = g_strdup ("d1");
      shoal_store_put_device (store, row);
      g_assert_true (shoal_store_flush (store, &error));
      shoal_store_close (store);
      /* as an older shoald leaves it */
      db = db_open (path);
      db_exec (db, "PRAGMA user_version = 1;");
      sqlite3_close (db);
    }
  shoal_test_rm_rf (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/store/roundtrip", test_store_roundtrip);
  g_test_add_func ("/shoal/store/duplicate-seq-fails", test_store_duplicate_seq_fails);
  g_test_add_func ("/shoal/store/open-error", test_store_open_error);
  g_test_add_func ("/shoal/store/write-failure-recovers", test_store_write_failure_recovers);
  g_test_add_func ("/shoal/store/close-grace", test_store_close_grace);
  g_test_add_func ("/shoal/store/close-gives-up", test_store_close_gives_up);
  g_test_add_func ("/shoal/store/journal-keep", test_store_journal_keep);
  g_test_add_func ("/shoal/store/migrate", test_store_migrate);
  g_test_add_func ("/shoal/store/load-seqs-seeks", test_store_load_seqs_seeks);
  g_test_add_func ("/shoal/store/prune-batches", test_store_prune_batches);
  g_test_add_func ("/shoal/store/prune-yields", test_store_prune_yields);
  g_test_add_func ("/shoal/store/auto-vacuum", test_store_auto_vacuum);
  g_test_add_func ("/shoal/store/old-store-converts", test_store_old_store_converts);
  g_test_add_func ("/shoal/store/old-store-big", test_store_old_store_big);
  g_test_add_func ("/shoal/store/convert-file", test_store_convert_file);
  return g_test_run ();
}
