/* test-store.c: group commit, durability and reads
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <sys/resource.h>

#include <sqlite3.h>

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

  /* a lower limit trims every journal at once */
  shoal_store_set_journal_keep (store, 20);
  g_assert_true (shoal_store_flush (store, &error));
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
  assert_journal (again, "a", 241, 250);
  assert_journal (again, "b", 71, 80);
  seqs = shoal_store_load_journal_seqs (again, &error);
  g_assert_cmpuint (*(guint64 *) g_hash_table_lookup (seqs, "a"), ==, 250);
  shoal_store_close (again);
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

static gint64
user_version (const gchar *path)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 version;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  version = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return version;
}

static void
exec_on (const gchar *path,
         const gchar *sql)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
}

/* A store written before schema version 2 (an upgrade of shoald) opens,
 * its devices intact; their instruction serials are 0 until written. A
 * database an older shoald set back to version 1 after it had the column
 * opens too */
static void
test_store_migrate (void)
{
  g_autofree gchar *dir = shoal_test_mkdtemp ();
  g_autofree gchar *path = g_build_filename (dir, "s.db", NULL);
  g_autoptr(GError) error = NULL;
  ShoalStoreDevice *row;

  exec_on (path,
           "CREATE TABLE devices ("
           "  id TEXT PRIMARY KEY, macs TEXT NOT NULL DEFAULT '', uuid TEXT, token TEXT,"
           "  state INTEGER NOT NULL, boot_action INTEGER NOT NULL, recipe TEXT,"
           "  recipe_commit TEXT, group_id TEXT, current_step TEXT,"
           "  step_index INTEGER NOT NULL DEFAULT 0, progress REAL NOT NULL DEFAULT 0,"
           "  inventory TEXT, metadata TEXT, run_no INTEGER NOT NULL DEFAULT 0,"
           "  updated INTEGER NOT NULL);"
           "INSERT INTO devices (id, token, state, boot_action, recipe, step_index, run_no, updated)"
           "  VALUES ('old', 'secret', 10, 1, 'r', 1, 3, 1);"
           "PRAGMA user_version = 1;");
  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(ShoalStore) store = shoal_store_new ();
      g_autoptr(GPtrArray) rows = NULL;

      g_assert_true (shoal_store_open (store, path, &error));
      g_assert_no_error (error);
      g_assert_cmpint (user_version (path), ==, 2);
      rows = shoal_store_load_devices (store, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (rows->len, ==, 1);
      row = g_ptr_array_index (rows, 0);
      g_assert_cmpstr (row->id, ==, "old");
      g_assert_cmpstr (row->recipe, ==, "r");
      g_assert_cmpint (row->run_no, ==, 3);
      g_assert_cmpuint (row->instruction_serial, ==, round == 0 ? 0 : 7);
      row = make_row ("old", 10);
      row->run_no = 3;
      row->instruction_serial = 7;
      shoal_store_put_device (store, row);
      g_assert_true (shoal_store_flush (store, &error));
      shoal_store_close (store);
      /* as an older shoald leaves it */
      exec_on (path, "PRAGMA user_version = 1;");
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
  g_test_add_func ("/shoal/store/journal-keep", test_store_journal_keep);
  g_test_add_func ("/shoal/store/migrate", test_store_migrate);
  return g_test_run ();
}
