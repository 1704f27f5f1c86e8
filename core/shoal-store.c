/* shoal-store.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <sqlite3.h>

#include "shoal-error.h"
#include "shoal-store-private.h"

/*
 * ShoalStore: devices, their runs and the operations journal in SQLite
 * (WAL, synchronous=FULL). Writes are queued from the main context and
 * applied by one writer thread, which commits everything queued so far in
 * one transaction (group commit). A flush completes once everything queued
 * before it is durable: the controller acknowledges a transition only
 * then. Reads use their own connection (WAL readers never block the
 * writer).
 *
 * A batch that fails (disk full, an I/O error, the file-size limit) is
 * rolled back and kept: its writes are tried again, before anything
 * queued after them, first at once when a flush asks and otherwise after
 * a delay that doubles up to RETRY_MAX_MS, so a disk that gets space back
 * recovers without a restart. A flush that waits for durability
 * (shoal_store_flush_async()) completes once the retry lands; one that
 * must answer now (SHOAL_STORE_FLUSH_FAIL_FAST) fails with the error.
 * Closing while writes fail keeps trying them for CLOSE_GRACE_MS (a full
 * disk given room as the daemon stops still gets them) before they are
 * lost, with a warning naming the devices whose changes they were. Only
 * a damaged database (SQLITE_CORRUPT, SQLITE_NOTADB) stops the writer for
 * good; a write the database refuses as such (a constraint) is dropped
 * and the flushes of its batch fail.
 */

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   5000
#define CLOSE_GRACE_MS 10000

/*
 * Each device's journal keeps its newest journal_keep entries (0: all).
 * Sequence numbers have no gaps, so a batch that appends entry n to a
 * device deletes the device's oldest entries up to n - journal_keep, in the
 * same transaction, at most one per new entry plus BATCH_PRUNE_EXTRA: a
 * batch never waits for a long backlog to go.
 *
 * That backlog (a store opened with a lower limit, or the limit lowered)
 * is trimmed in the background: OP_PRUNE_JOURNALS (queued at open and when
 * the limit changes) starts a pass over the journals, which the writer
 * runs whenever nothing is queued, in steps of their own short
 * transactions of at most PRUNE_BATCH_ROWS deletions; writes queued
 * meanwhile go first, the pass waits while writes fail. A journal is found
 * by an index seek past the previous one and its oldest and newest entries
 * by two more, so journals within the limit cost three seeks, whatever
 * their length. A flush does not wait for the pass.
 *
 * The pass then gives the freed pages back to the file system: new stores
 * use incremental auto-vacuum and PRAGMA incremental_vacuum runs in steps
 * of VACUUM_STEP_PAGES. A store made before (auto_vacuum off, which only a
 * VACUUM changes) is converted by one VACUUM after its first pass if what
 * it holds is at most convert_max bytes (CONVERT_MAX_BYTES), once nothing
 * was queued for CONVERT_IDLE_MS (writes wait while it runs); a bigger one
 * is left as it is (its free pages are reused, the file does not shrink)
 * and a message says how to convert it: shoald --convert-store
 * (shoal_store_convert_file()), with shoald stopped, as there is no way
 * to convert it without one VACUUM, which rewrites the whole file while
 * writes wait. The WAL is truncated to JOURNAL_SIZE_LIMIT after
 * checkpoints.
 */

#define PRUNE_BATCH_ROWS    SHOAL_STORE_PRUNE_BATCH_ROWS
#define PRUNE_STEP_JOURNALS 256
#define BATCH_PRUNE_EXTRA   64
#define VACUUM_STEP_PAGES   2048
#define VACUUM_MIN_FREE     256
#define CONVERT_MAX_BYTES   (G_GUINT64_CONSTANT (64) * 1024 * 1024)
#define CONVERT_IDLE_MS     1000
#define JOURNAL_SIZE_LIMIT  "67108864"

typedef enum {
  MAINT_IDLE,
  MAINT_PRUNE,     /* trimming every journal */
  MAINT_VACUUM,    /* giving free pages back */
} Maintenance;

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

typedef enum {
  OP_PUT_DEVICE,
  OP_DELETE_DEVICE,
  OP_JOURNAL,
  OP_KV,
  OP_PRUNE_JOURNALS,
  OP_FLUSH,
  OP_QUIT,
} OpKind;

typedef struct {
  OpKind             kind;
  ShoalStoreDevice  *device;
  gchar             *id;
  ShoalJournalEntry *entry;
  gchar             *ns;
  gchar             *key;
  gchar             *value;
  GTask             *task;
  gboolean           fail_fast;   /* OP_FLUSH: fail rather than wait for a retry */
  guint64            seq;         /* order of queueing */
  guint              keep;        /* OP_PRUNE_JOURNALS */
} Op;

struct _ShoalStore
{
  GObject                  parent_instance;

  gchar                   *path;
  sqlite3                 *writer;
  sqlite3                 *reader;
  GThread                 *thread;
  GAsyncQueue             *queue;
  GMainContext            *context;
  ShoalStoreCommittedFunc  committed_func;
  gpointer                 committed_data;
  gint                     commits;     /* atomic */
  guint                    journal_keep; /* atomic */
  GError                  *fatal;       /* set by the writer, under mutex */
  GMutex                   mutex;
  GMutex                   group_lock;  /* a group of ops is committed together */
  GHashTable              *pending_rows; /* id -> queued OP_PUT_DEVICE, under mutex */
  guint                    group_depth; /* owner thread only */

  /* health, under mutex */
  guint64                  failed_batches;
  gchar                   *last_error;
  gboolean                 failing;     /* the last batch failed */
  guint                    retry_ops;   /* writes waiting for a retry */
  guint64                  pushed;      /* ops queued so far */

  /* writer thread only */
  GPtrArray               *retry;       /* ops of failed batches, in order */
  guint                    retry_ms;
  gint64                   retry_at;    /* monotonic µs */
  guint                    commit_delay_ms;  /* tests: a slow disk */
  guint64                  refused_seq; /* a write the database refused... */
  GError                  *refused;     /* ...and why: the next flushes behind it fail */
  Maintenance              maint;       /* background trimming, see above */
  guint                    prune_keep;
  gchar                   *prune_cursor; /* the last journal trimmed, NULL: none yet */
  guint64                  maint_seq;   /* the OP_PRUNE_JOURNALS being served */
  gboolean                 convert_tried;
  gint64                   auto_vacuum; /* the database's mode, read at open */
  guint64                  convert_max;

  /* under mutex */
  guint64                  maint_requested; /* seq of the last OP_PRUNE_JOURNALS */
  guint64                  maint_finished;  /* ...and of the last one served */
  ShoalStoreStats          stats;
};

G_DEFINE_FINAL_TYPE (ShoalStore, shoal_store, G_TYPE_OBJECT)

static const gchar *schema_sql =
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
  "  PRIMARY KEY (ns, key)) WITHOUT ROWID;";

/*
 * Schema versions (PRAGMA user_version): schema_sql above is version 1;
 * migrate() brings it forward.
 *   2: devices.instruction_serial, the last instruction serial the
 *      device's agent was handed (it must never go back, see
 *      shoal_controller_persist()).
 *   3: devices.recipe_digest, the SHA-256 of the canonical JSON of the
 *      recipe the current deployment started with (what identifies a
 *      recipe without a commit when the deployment resumes).
 * A migration adds only what is missing, so a database that an older
 * shoald opened after a newer one (setting user_version back) is brought
 * forward again; a version above SCHEMA_VERSION is left as it is.
 */
#define SCHEMA_VERSION 3

void
shoal_store_device_free (ShoalStoreDevice *row)
{
  if (row == NULL)
    return;
  g_free (row->id);
  g_free (row->macs);
  g_free (row->uuid);
  g_free (row->token);
  g_free (row->recipe);
  g_free (row->recipe_commit);
  g_free (row->recipe_digest);
  g_free (row->group_id);
  g_free (row->current_step);
  g_free (row->inventory);
  g_free (row->metadata);
  g_free (row);
}

static void
op_free (Op *op)
{
  shoal_store_device_free (op->device);
  g_free (op->id);
  g_clear_pointer (&op->entry, shoal_journal_entry_unref);
  g_free (op->ns);
  g_free (op->key);
  g_free (op->value);
  g_clear_object (&op->task);
  g_free (op);
}

static gboolean
set_sqlite_error (GError      **error,
                  sqlite3      *db,
                  const gchar  *doing)
{
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE, _("%s: %s"), doing,
               db != NULL ? sqlite3_errmsg (db) : "out of memory");
  return FALSE;
}

static gboolean
exec_sql (sqlite3      *db,
          const gchar  *sql,
          GError      **error)
{
  g_autofree gchar *message = NULL;
  char *errmsg = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &errmsg) == SQLITE_OK)
    return TRUE;
  message = g_strdup (errmsg != NULL ? errmsg : "unknown error");
  sqlite3_free (errmsg);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE, _("running %.40s…: %s"), sql, message);
  return FALSE;
}

static gboolean
has_column (sqlite3      *db,
            const gchar  *table,
            const gchar  *column,
            gboolean     *out_has,
            GError      **error)
{
  sqlite3_stmt *stmt = NULL;
  gint rc;

  if (sqlite3_prepare_v2 (db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", -1,
                          &stmt, NULL) != SQLITE_OK)
    return set_sqlite_error (error, db, "reading the schema");
  sqlite3_bind_text (stmt, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, column, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  sqlite3_finalize (stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return set_sqlite_error (error, db, "reading the schema");
  *out_has = rc == SQLITE_ROW;
  return TRUE;
}

/* The columns added to the devices table since version 1, each with its
 * definition */
static const struct {
  const gchar *name;
  const gchar *add;
} added_columns[] = {
  { "instruction_serial", "ALTER TABLE devices ADD COLUMN instruction_serial INTEGER NOT NULL DEFAULT 0" },
  { "recipe_digest", "ALTER TABLE devices ADD COLUMN recipe_digest TEXT" },
};

static gboolean
add_missing_columns (sqlite3  *db,
                     GError  **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (added_columns); i++)
    {
      gboolean has = FALSE;

      if (!has_column (db, "devices", added_columns[i].name, &has, error) ||
          (!has && !exec_sql (db, added_columns[i].add, error)))
        return FALSE;
    }
  return TRUE;
}

/* Brings a version 1 database (or a newer one missing a column) to
 * SCHEMA_VERSION, in one transaction */
static gboolean
migrate (sqlite3  *db,
         GError  **error)
{
  sqlite3_stmt *stmt = NULL;
  g_autofree gchar *set_version = NULL;
  gint64 version = 0;

  if (!exec_sql (db, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK ||
      sqlite3_step (stmt) != SQLITE_ROW)
    {
      set_sqlite_error (error, db, "reading the schema version");
      sqlite3_finalize (stmt);
      exec_sql (db, "ROLLBACK", NULL);
      return FALSE;
    }
  version = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  if (!add_missing_columns (db, error))
    {
      exec_sql (db, "ROLLBACK", NULL);
      return FALSE;
    }
  set_version = g_strdup_printf ("PRAGMA user_version = %" G_GINT64_FORMAT,
                                 MAX (version, (gint64) SCHEMA_VERSION));
  if (!exec_sql (db, set_version, error) || !exec_sql (db, "COMMIT", error))
    {
      exec_sql (db, "ROLLBACK", NULL);
      return FALSE;
    }
  if (version > 0 && version < SCHEMA_VERSION)
    g_info ("store: schema version %" G_GINT64_FORMAT " brought to %d", version, SCHEMA_VERSION);
  return TRUE;
}

static sqlite3 *
open_connection (const gchar  *path,
                 GError      **error)
{
  sqlite3 *db = NULL;

  if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                       SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    {
      g_autofree gchar *doing = g_strdup_printf ("opening store %s", path);
      set_sqlite_error (error, db, doing);
      sqlite3_close (db);
      return NULL;
    }
  sqlite3_busy_timeout (db, 10000);
  /* a new database uses incremental auto-vacuum: set before the WAL
   * mode writes its first page (an existing one keeps its mode) */
  if (!exec_sql (db, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
                 "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                 "PRAGMA journal_size_limit=" JOURNAL_SIZE_LIMIT ";", error))
    {
      sqlite3_close (db);
      return NULL;
    }
  return db;
}

static void
shoal_store_finalize (GObject *object)
{
  ShoalStore *self = SHOAL_STORE (object);

  shoal_store_close (self);
  g_free (self->path);
  g_clear_pointer (&self->queue, g_async_queue_unref);
  g_clear_pointer (&self->pending_rows, g_hash_table_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_error (&self->fatal);
  g_clear_pointer (&self->retry, g_ptr_array_unref);
  g_clear_error (&self->refused);
  g_free (self->prune_cursor);
  g_free (self->last_error);
  g_mutex_clear (&self->mutex);
  g_mutex_clear (&self->group_lock);
  G_OBJECT_CLASS (shoal_store_parent_class)->finalize (object);
}

static void
shoal_store_class_init (ShoalStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_store_finalize;
}

static void
shoal_store_init (ShoalStore *self)
{
  g_mutex_init (&self->mutex);
  g_mutex_init (&self->group_lock);
  self->pending_rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->queue = g_async_queue_new_full ((GDestroyNotify) op_free);
  self->retry = g_ptr_array_new_with_free_func ((GDestroyNotify) op_free);
  self->journal_keep = SHOAL_STORE_JOURNAL_KEEP_DEFAULT;
  self->convert_max = CONVERT_MAX_BYTES;
  self->context = g_main_context_ref_thread_default ();
}

ShoalStore *
shoal_store_new (void)
{
  return g_object_new (SHOAL_TYPE_STORE, NULL);
}

/* --- writer thread ------------------------------------------------------ */

typedef struct {
  sqlite3_stmt *put_device;
  sqlite3_stmt *delete_device;
  sqlite3_stmt *delete_journal;
  sqlite3_stmt *journal;
  sqlite3_stmt *kv_set;
  sqlite3_stmt *kv_delete;
  sqlite3_stmt *prune_journal;
  sqlite3_stmt *journal_first;
  sqlite3_stmt *journal_next;
  sqlite3_stmt *journal_range;
} Statements;

static void
statements_clear (Statements *st)
{
  g_clear_pointer (&st->put_device, sqlite3_finalize);
  g_clear_pointer (&st->delete_device, sqlite3_finalize);
  g_clear_pointer (&st->delete_journal, sqlite3_finalize);
  g_clear_pointer (&st->journal, sqlite3_finalize);
  g_clear_pointer (&st->kv_set, sqlite3_finalize);
  g_clear_pointer (&st->kv_delete, sqlite3_finalize);
  g_clear_pointer (&st->prune_journal, sqlite3_finalize);
  g_clear_pointer (&st->journal_first, sqlite3_finalize);
  g_clear_pointer (&st->journal_next, sqlite3_finalize);
  g_clear_pointer (&st->journal_range, sqlite3_finalize);
}

static gboolean
prepare (sqlite3        *db,
         const gchar    *sql,
         sqlite3_stmt  **stmt,
         GError        **error)
{
  if (sqlite3_prepare_v2 (db, sql, -1, stmt, NULL) == SQLITE_OK)
    return TRUE;
  return set_sqlite_error (error, db, "preparing a statement");
}

/* The journals one by one, each found by a seek in the primary key
 * (device, seq) past the one before, and a journal's oldest and newest
 * numbers by a seek each: never a scan of the table */
#define SQL_JOURNAL_FIRST "SELECT MIN(device) FROM journal"
#define SQL_JOURNAL_NEXT  "SELECT device FROM journal WHERE device > ? ORDER BY device LIMIT 1"
#define SQL_JOURNAL_RANGE "SELECT (SELECT MIN(seq) FROM journal WHERE device = ?1)," \
                          " (SELECT MAX(seq) FROM journal WHERE device = ?1)"

static gboolean
statements_prepare (Statements  *st,
                    sqlite3     *db,
                    GError     **error)
{
  return prepare (db, "INSERT OR REPLACE INTO devices (id, macs, uuid, token, state,"
                  " boot_action, recipe, recipe_commit, group_id, current_step,"
                  " step_index, progress, inventory, metadata, run_no, updated,"
                  " instruction_serial, recipe_digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                  &st->put_device, error) &&
         prepare (db, "DELETE FROM devices WHERE id = ?", &st->delete_device, error) &&
         prepare (db, "DELETE FROM journal WHERE device = ?", &st->delete_journal, error) &&
         prepare (db, "INSERT INTO journal (device, seq, time, source, operation, result,"
                  " message) VALUES (?,?,?,?,?,?,?)", &st->journal, error) &&
         prepare (db, "INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?,?,?)",
                  &st->kv_set, error) &&
         prepare (db, "DELETE FROM kv WHERE ns = ? AND key = ?", &st->kv_delete, error) &&
         prepare (db, "DELETE FROM journal WHERE device = ? AND seq <= ?", &st->prune_journal, error) &&
         prepare (db, SQL_JOURNAL_FIRST, &st->journal_first, error) &&
         prepare (db, SQL_JOURNAL_NEXT, &st->journal_next, error) &&
         prepare (db, SQL_JOURNAL_RANGE, &st->journal_range, error);
}

static void
bind_text (sqlite3_stmt *stmt,
           gint          index,
           const gchar  *text)
{
  if (text == NULL)
    sqlite3_bind_null (stmt, index);
  else
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
}

static gboolean
step_statement (sqlite3       *db,
                sqlite3_stmt  *stmt,
                const gchar   *doing,
                GError       **error)
{
  gint rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW)
    return TRUE;
  return set_sqlite_error (error, db, doing);
}

static gchar *
column_dup (sqlite3_stmt *stmt,
            gint          col)
{
  const guchar *text = sqlite3_column_text (stmt, col);

  return text != NULL ? g_strdup ((const gchar *) text) : NULL;
}

/* The journal after @after (NULL: the first) in *out, NULL when no more */
static gboolean
next_journal (sqlite3       *db,
              sqlite3_stmt  *first,
              sqlite3_stmt  *next,
              const gchar   *after,
              gchar        **out,
              GError       **error)
{
  sqlite3_stmt *stmt = after != NULL ? next : first;
  gint rc;

  if (after != NULL)
    bind_text (stmt, 1, after);
  rc = sqlite3_step (stmt);
  *out = rc == SQLITE_ROW ? column_dup (stmt, 0) : NULL;
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return TRUE;
  return set_sqlite_error (error, db, "finding a journal");
}

/* The oldest and newest numbers of @device's journal; FALSE in *found
 * when it has none */
static gboolean
journal_range (sqlite3       *db,
               sqlite3_stmt  *stmt,
               const gchar   *device,
               gint64        *oldest,
               gint64        *newest,
               gboolean      *found,
               GError       **error)
{
  gint rc;

  bind_text (stmt, 1, device);
  rc = sqlite3_step (stmt);
  *found = rc == SQLITE_ROW && sqlite3_column_type (stmt, 1) != SQLITE_NULL;
  *oldest = *found ? sqlite3_column_int64 (stmt, 0) : 0;
  *newest = *found ? sqlite3_column_int64 (stmt, 1) : 0;
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return TRUE;
  return set_sqlite_error (error, db, "reading a journal's range");
}

static gboolean
apply_put_device (sqlite3            *db,
                  Statements         *st,
                  ShoalStoreDevice   *row,
                  GError            **error)
{
  sqlite3_stmt *stmt = st->put_device;

  bind_text (stmt, 1, row->id);
  bind_text (stmt, 2, row->macs != NULL ? row->macs : "");
  bind_text (stmt, 3, row->uuid);
  bind_text (stmt, 4, row->token);
  sqlite3_bind_int (stmt, 5, row->state);
  sqlite3_bind_int (stmt, 6, row->boot_action);
  bind_text (stmt, 7, row->recipe);
  bind_text (stmt, 8, row->recipe_commit);
  bind_text (stmt, 9, row->group_id);
  bind_text (stmt, 10, row->current_step);
  sqlite3_bind_int (stmt, 11, row->step_index);
  sqlite3_bind_double (stmt, 12, row->progress);
  bind_text (stmt, 13, row->inventory);
  bind_text (stmt, 14, row->metadata);
  sqlite3_bind_int64 (stmt, 15, row->run_no);
  sqlite3_bind_int64 (stmt, 16, row->updated_us);
  sqlite3_bind_int64 (stmt, 17, (sqlite3_int64) row->instruction_serial);
  bind_text (stmt, 18, row->recipe_digest);
  return step_statement (db, stmt, "saving a device", error);
}

static gboolean
apply_journal (sqlite3            *db,
               Statements         *st,
               ShoalJournalEntry  *entry,
               GError            **error)
{
  sqlite3_stmt *stmt = st->journal;

  bind_text (stmt, 1, shoal_journal_entry_get_device_id (entry));
  sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) shoal_journal_entry_get_seq (entry));
  sqlite3_bind_int64 (stmt, 3, shoal_journal_entry_get_time (entry));
  bind_text (stmt, 4, shoal_journal_entry_get_source (entry));
  bind_text (stmt, 5, shoal_journal_entry_get_operation (entry));
  bind_text (stmt, 6, shoal_journal_result_to_string (shoal_journal_entry_get_result (entry)));
  bind_text (stmt, 7, shoal_journal_entry_get_message (entry));
  return step_statement (db, stmt, "appending to the journal", error);
}

static gboolean
apply_op (sqlite3     *db,
          Statements  *st,
          Op          *op,
          GError     **error)
{
  switch (op->kind)
    {
    case OP_PUT_DEVICE:
      return apply_put_device (db, st, op->device, error);
    case OP_DELETE_DEVICE:
      bind_text (st->delete_device, 1, op->id);
      if (!step_statement (db, st->delete_device, "removing a device", error))
        return FALSE;
      bind_text (st->delete_journal, 1, op->id);
      return step_statement (db, st->delete_journal, "removing a journal", error);
    case OP_JOURNAL:
      return apply_journal (db, st, op->entry, error);
    case OP_KV:
      {
        sqlite3_stmt *stmt = op->value != NULL ? st->kv_set : st->kv_delete;

        bind_text (stmt, 1, op->ns);
        bind_text (stmt, 2, op->key);
        if (op->value != NULL)
          bind_text (stmt, 3, op->value);
        return step_statement (db, stmt, "saving a key", error);
      }
    case OP_PRUNE_JOURNALS:   /* taken by drain_queue() */
    case OP_FLUSH:
    case OP_QUIT:
    default:
      return TRUE;
    }
}

typedef struct {
  ShoalStore *store;
  GPtrArray  *entries;
} CommittedInvoke;

static gboolean
committed_cb (gpointer user_data)
{
  CommittedInvoke *invoke = user_data;

  if (invoke->store->committed_func != NULL)
    invoke->store->committed_func (invoke->entries, invoke->store->committed_data);
  g_ptr_array_unref (invoke->entries);
  g_object_unref (invoke->store);
  g_free (invoke);
  return G_SOURCE_REMOVE;
}

typedef enum {
  BATCH_OK,
  BATCH_RETRY,    /* a passing failure (space, I/O, a lock): keep the writes */
  BATCH_DROP,     /* the database refuses one write: drop it */
  BATCH_FATAL,    /* the database is damaged */
} BatchResult;

static BatchResult
classify_failure (gint rc)
{
  switch (rc & 0xff)
    {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return BATCH_FATAL;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return BATCH_DROP;
    default:
      return BATCH_RETRY;
    }
}

static void
set_fatal (ShoalStore   *self,
           const GError *error)
{
  /* logged before it is published: a flush that sees the failure returns
   * at once, and its caller may look for the warning */
  g_warning ("store: the database cannot be written any more: %s", error->message);
  g_mutex_lock (&self->mutex);
  if (self->fatal == NULL)
    self->fatal = g_error_copy (error);
  g_free (self->last_error);
  self->last_error = g_strdup (error->message);
  self->failing = TRUE;
  g_mutex_unlock (&self->mutex);
}

static void maintenance_start (ShoalStore *self, Op *op);

/* A popped row can no longer be replaced by a newer one */
static void
row_taken (ShoalStore *self,
           Op         *op)
{
  if (op->kind != OP_PUT_DEVICE)
    return;
  g_mutex_lock (&self->mutex);
  if (g_hash_table_lookup (self->pending_rows, op->device->id) == op)
    g_hash_table_remove (self->pending_rows, op->device->id);
  g_mutex_unlock (&self->mutex);
}

/* Moves @first and everything queued behind it to the end of self->retry,
 * never half of a group (see shoal_store_begin_group()). Returns whether
 * OP_QUIT came; *urgent says whether something must be answered now. */
static gboolean
drain_queue (ShoalStore *self,
             Op         *first,
             gboolean   *urgent)
{
  Op *op = first;

  g_mutex_lock (&self->group_lock);
  while (op != NULL)
    {
      if (op->kind == OP_PRUNE_JOURNALS)
        {
          /* not a write: a pass in the background, see maintenance_step() */
          maintenance_start (self, op);
          op_free (op);
          op = g_async_queue_try_pop (self->queue);
          continue;
        }
      row_taken (self, op);
      g_ptr_array_add (self->retry, op);
      if (op->kind == OP_QUIT)
        {
          *urgent = TRUE;
          g_mutex_unlock (&self->group_lock);
          return TRUE;
        }
      if (op->kind == OP_FLUSH && op->fail_fast)
        *urgent = TRUE;
      op = g_async_queue_try_pop (self->queue);
    }
  g_mutex_unlock (&self->group_lock);
  return FALSE;
}

typedef struct {
  guint64 newest;
  guint   count;
} NewEntries;

/* Deletes what the journal entries of self->retry push out of their
 * devices' journals: the oldest entries up to the newest's number -
 * journal_keep, but no more than one per new entry plus BATCH_PRUNE_EXTRA
 * (a longer backlog is the background pass's) */
static gboolean
prune_journals (ShoalStore  *self,
                Statements  *st,
                GError     **error)
{
  g_autoptr(GHashTable) added = NULL;
  guint keep = g_atomic_int_get (&self->journal_keep);
  GHashTableIter iter;
  gpointer device, value;

  if (keep == 0)
    return TRUE;
  added = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  for (guint i = 0; i < self->retry->len; i++)
    {
      Op *op = g_ptr_array_index (self->retry, i);
      NewEntries *new_entries;

      if (op->kind != OP_JOURNAL)
        continue;
      new_entries = g_hash_table_lookup (added, shoal_journal_entry_get_device_id (op->entry));
      if (new_entries == NULL)
        {
          new_entries = g_new0 (NewEntries, 1);
          g_hash_table_insert (added, (gpointer) shoal_journal_entry_get_device_id (op->entry), new_entries);
        }
      new_entries->newest = MAX (new_entries->newest, shoal_journal_entry_get_seq (op->entry));
      new_entries->count++;
    }
  g_hash_table_iter_init (&iter, added);
  while (g_hash_table_iter_next (&iter, &device, &value))
    {
      NewEntries *new_entries = value;
      gint64 oldest, newest, limit;
      gboolean found;

      if (new_entries->newest <= keep)
        continue;
      limit = (gint64) (new_entries->newest - keep);
      if (!journal_range (self->writer, st->journal_range, device, &oldest, &newest, &found, error))
        return FALSE;
      if (!found || oldest > limit)
        continue;
      bind_text (st->prune_journal, 1, device);
      sqlite3_bind_int64 (st->prune_journal, 2,
                          MIN (limit, oldest + (gint64) new_entries->count - 1 + BATCH_PRUNE_EXTRA));
      if (!step_statement (self->writer, st->prune_journal, "trimming a journal", error))
        return FALSE;
    }
  return TRUE;
}

/* Applies self->retry in one transaction; *failed_at is the index of the
 * write that failed, or -1 */
static BatchResult
apply_batch (ShoalStore  *self,
             Statements  *st,
             gint        *failed_at,
             GError     **error)
{
  gint rc;

  *failed_at = -1;
  if (!exec_sql (self->writer, "BEGIN IMMEDIATE", error))
    return classify_failure (sqlite3_extended_errcode (self->writer));
  for (guint i = 0; i < self->retry->len; i++)
    {
      if (apply_op (self->writer, st, g_ptr_array_index (self->retry, i), error))
        continue;
      rc = sqlite3_extended_errcode (self->writer);
      *failed_at = (gint) i;
      exec_sql (self->writer, "ROLLBACK", NULL);
      return classify_failure (rc);
    }
  if (!prune_journals (self, st, error))
    {
      rc = sqlite3_extended_errcode (self->writer);
      exec_sql (self->writer, "ROLLBACK", NULL);
      return classify_failure (rc);
    }
  /* a slow disk, for tests: SHOAL_STORE_COMMIT_DELAY_MS */
  if (self->commit_delay_ms > 0)
    g_usleep ((gulong) self->commit_delay_ms * 1000);
  if (exec_sql (self->writer, "COMMIT", error))
    return BATCH_OK;
  rc = sqlite3_extended_errcode (self->writer);
  /* a failed COMMIT may leave the transaction open */
  if (!sqlite3_get_autocommit (self->writer))
    exec_sql (self->writer, "ROLLBACK", NULL);
  return classify_failure (rc);
}

/* Answers the flushes of self->retry from @from on with @error (all of
 * them, or only those that do not wait for a retry) and removes them;
 * returns how many it answered */
static guint
fail_flushes (ShoalStore   *self,
              guint         from,
              gboolean      only_fail_fast,
              const GError *error)
{
  guint answered = 0;

  for (guint i = from; i < self->retry->len;)
    {
      Op *op = g_ptr_array_index (self->retry, i);

      if (op->task == NULL || (only_fail_fast && !op->fail_fast))
        {
          i++;
          continue;
        }
      g_task_return_error (op->task, g_error_copy (error));
      g_ptr_array_remove_index (self->retry, i);
      answered++;
    }
  return answered;
}

/* The writes (not the flushes) in self->retry */
static guint
count_writes (ShoalStore *self)
{
  guint n = 0;

  for (guint i = 0; i < self->retry->len; i++)
    if (((Op *) g_ptr_array_index (self->retry, i))->kind < OP_FLUSH)
      n++;
  return n;
}

static void
batch_committed (ShoalStore *self)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_journal_entry_unref);
  g_autoptr(GPtrArray) ops = g_steal_pointer (&self->retry);
  gboolean recovered;
  gboolean reported = FALSE;

  self->retry = g_ptr_array_new_with_free_func ((GDestroyNotify) op_free);
  self->retry_ms = 0;
  g_atomic_int_inc (&self->commits);
  g_mutex_lock (&self->mutex);
  recovered = self->failing;
  self->failing = FALSE;
  self->retry_ops = 0;
  g_mutex_unlock (&self->mutex);
  if (recovered)
    g_message ("store: writing works again; the writes that had failed are committed");

  for (guint i = 0; i < ops->len; i++)
    {
      Op *o = g_ptr_array_index (ops, i);

      if (o->kind == OP_JOURNAL)
        g_ptr_array_add (entries, shoal_journal_entry_ref (o->entry));
    }
  if (entries->len > 0)
    {
      CommittedInvoke *invoke = g_new0 (CommittedInvoke, 1);

      invoke->store = g_object_ref (self);
      invoke->entries = g_steal_pointer (&entries);
      g_main_context_invoke (self->context, committed_cb, invoke);
    }
  for (guint i = 0; i < ops->len; i++)
    {
      Op *o = g_ptr_array_index (ops, i);

      if (o->task == NULL)
        continue;
      if (self->refused != NULL && o->seq > self->refused_seq)
        {
          g_task_return_error (o->task, g_error_copy (self->refused));
          reported = TRUE;
        }
      else
        g_task_return_boolean (o->task, TRUE);
    }
  /* a refused write is reported once, to the flushes of one batch */
  if (reported)
    g_clear_error (&self->refused);
}

/* A passing failure: the writes stay in self->retry for the next try */
static void
batch_failed (ShoalStore   *self,
              const GError *error)
{
  g_autoptr(GError) not_durable = NULL;
  gboolean first;
  guint n_writes = count_writes (self);

  g_mutex_lock (&self->mutex);
  first = !self->failing;
  self->failing = TRUE;
  self->failed_batches++;
  self->retry_ops = n_writes;
  g_free (self->last_error);
  self->last_error = g_strdup (error->message);
  g_mutex_unlock (&self->mutex);
  /* once per outage, not once per try */
  if (first)
    g_warning ("store: writing failed, the writes are kept and tried again until "
               "they succeed: %s", error->message);

  self->retry_ms = self->retry_ms == 0 ? RETRY_FIRST_MS : MIN (self->retry_ms * 2, RETRY_MAX_MS);
  self->retry_at = g_get_monotonic_time () + (gint64) self->retry_ms * 1000;
  not_durable = g_error_new (SHOAL_ERROR, SHOAL_ERROR_STORE,
                             _("the store cannot write (%s); the change is kept in memory "
                               "and written once the store can write again: if shoald stops "
                               "or restarts before then, the change is lost"), error->message);
  fail_flushes (self, 0, TRUE, not_durable);
}

/* The database refuses the write at @index: it is dropped, and the next
 * flushes queued behind it fail */
static void
batch_refused (ShoalStore   *self,
               guint         index,
               const GError *error)
{
  g_warning ("store: a write is dropped: %s", error->message);
  g_mutex_lock (&self->mutex);
  self->failed_batches++;
  g_free (self->last_error);
  self->last_error = g_strdup (error->message);
  g_mutex_unlock (&self->mutex);
  /* the flushes behind it would claim it durable: those of this batch
   * fail now, those still queued when they come through */
  g_clear_error (&self->refused);
  self->refused_seq = ((Op *) g_ptr_array_index (self->retry, index))->seq;
  g_ptr_array_remove_index (self->retry, index);
  /* reported once: when a flush of this batch was told, the flushes queued
   * later are not (one of them failed at random under load, when the
   * first flush after the refused write happened to share its batch) */
  if (fail_flushes (self, index, FALSE, error) == 0)
    self->refused = g_error_copy (error);
}

/* Tries self->retry until it is committed or fails for a reason that
 * another immediate try would not change */
static void
writer_try (ShoalStore *self,
            Statements *st)
{
  while (self->retry->len > 0)
    {
      g_autoptr(GError) error = NULL;
      gint failed_at = -1;
      BatchResult result;

      g_mutex_lock (&self->mutex);
      if (self->fatal != NULL)
        error = g_error_copy (self->fatal);
      g_mutex_unlock (&self->mutex);
      if (error != NULL)
        {
          /* nothing is written any more: answer every flush */
          fail_flushes (self, 0, FALSE, error);
          g_ptr_array_set_size (self->retry, 0);
          return;
        }
      result = apply_batch (self, st, &failed_at, &error);
      switch (result)
        {
        case BATCH_OK:
          batch_committed (self);
          return;
        case BATCH_RETRY:
          batch_failed (self, error);
          return;
        case BATCH_DROP:
          if (failed_at < 0)
            {
              /* no write to blame (BEGIN or COMMIT): try again later */
              batch_failed (self, error);
              return;
            }
          batch_refused (self, (guint) failed_at, error);
          break;
        case BATCH_FATAL:
        default:
          set_fatal (self, error);
          break;
        }
    }
}

/* The next op, or NULL once a retry is due */
static Op *
writer_pop (ShoalStore *self)
{
  gint64 wait;

  if (self->retry_ms == 0)
    return g_async_queue_pop (self->queue);
  wait = self->retry_at - g_get_monotonic_time ();
  if (wait <= 0)
    return g_async_queue_try_pop (self->queue);
  return g_async_queue_timeout_pop (self->queue, (guint64) wait);
}

/* Closing while writes fail: they are tried again (at most a second
 * apart) for CLOSE_GRACE_MS */
static void
writer_close_grace (ShoalStore *self,
                    Statements *st)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) CLOSE_GRACE_MS * 1000;

  if (count_writes (self) > 0)
    g_message ("store: closing with %u writes that failed: trying them again for %d s",
               count_writes (self), CLOSE_GRACE_MS / 1000);
  while (count_writes (self) > 0)
    {
      gint64 now = g_get_monotonic_time ();
      gint64 next = MIN (MIN (self->retry_at, now + G_USEC_PER_SEC), deadline);

      if (now >= deadline)
        break;
      if (next > now)
        g_usleep ((gulong) (next - now));
      self->retry_at = 0;
      writer_try (self, st);
    }
}

static gint
compare_id_ptrs (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/* The ids of the devices whose changes (rows, removals, journal entries)
 * the failed writes hold, sorted, comma-separated; and how many other
 * writes (settings) there are */
static gchar *
describe_lost_writes (ShoalStore *self,
                      guint      *n_other)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  g_autoptr(GString) out = g_string_new (NULL);

  *n_other = 0;
  for (guint i = 0; i < self->retry->len; i++)
    {
      Op *op = g_ptr_array_index (self->retry, i);
      const gchar *id = NULL;

      if (op->kind == OP_PUT_DEVICE)
        id = op->device->id;
      else if (op->kind == OP_DELETE_DEVICE)
        id = op->id;
      else if (op->kind == OP_JOURNAL)
        id = shoal_journal_entry_get_device_id (op->entry);
      else if (op->kind < OP_FLUSH)
        (*n_other)++;
      if (id != NULL && g_hash_table_add (seen, (gpointer) id))
        g_ptr_array_add (ids, (gpointer) id);
    }
  g_ptr_array_sort (ids, compare_id_ptrs);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (out, "%s%s", i > 0 ? ", " : "", (const gchar *) g_ptr_array_index (ids, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Closing while writes still fail: they are lost, their flushes fail, and
 * the log says whose changes they were */
static void
writer_give_up (ShoalStore *self)
{
  g_autoptr(GError) error = NULL;
  guint n_writes = count_writes (self);

  if (n_writes > 0)
    {
      guint n_other = 0;
      g_autofree gchar *devices = describe_lost_writes (self, &n_other);

      g_warning ("store: closed with %u writes that could not be committed: the changes of "
                 "devices [%s]%s are lost (the store holds them as they were before)",
                 n_writes, devices, n_other > 0 ? " and daemon settings" : "");
    }
  error = g_error_new (SHOAL_ERROR, SHOAL_ERROR_STORE,
                       _("the store closed before the change could be written"));
  fail_flushes (self, 0, FALSE, error);
  g_ptr_array_set_size (self->retry, 0);
}

/* --- background maintenance (writer thread) ----------------------------- */

static void
maintenance_start (ShoalStore *self,
                   Op         *op)
{
  g_clear_pointer (&self->prune_cursor, g_free);
  self->prune_keep = op->keep;
  self->maint = op->keep > 0 ? MAINT_PRUNE : MAINT_VACUUM;
  self->maint_seq = op->seq;
}

static void
maintenance_done (ShoalStore *self)
{
  self->maint = MAINT_IDLE;
  g_clear_pointer (&self->prune_cursor, g_free);
  g_mutex_lock (&self->mutex);
  self->maint_finished = MAX (self->maint_finished, self->maint_seq);
  g_mutex_unlock (&self->mutex);
}

/* Whether a step is due: never while writes wait for a retry */
static gboolean
maintenance_due (ShoalStore *self)
{
  gboolean fatal;

  if (self->maint == MAINT_IDLE || self->retry->len > 0 || self->retry_ms != 0)
    return FALSE;
  g_mutex_lock (&self->mutex);
  fatal = self->fatal != NULL;
  g_mutex_unlock (&self->mutex);
  return !fatal;
}

/* One step of the trimming pass: one transaction that deletes at most
 * PRUNE_BATCH_ROWS entries, of the journals after self->prune_cursor,
 * looking at PRUNE_STEP_JOURNALS of them at most */
static gboolean
prune_step (ShoalStore  *self,
            Statements  *st,
            gboolean    *finished,
            GError     **error)
{
  guint budget = PRUNE_BATCH_ROWS;
  gboolean in_transaction = FALSE;

  *finished = FALSE;
  for (guint looked = 0; looked < PRUNE_STEP_JOURNALS && budget > 0; looked++)
    {
      g_autofree gchar *device = NULL;
      gint64 oldest, newest, limit, upto;
      gboolean found;
      guint deleted;

      if (!next_journal (self->writer, st->journal_first, st->journal_next,
                         self->prune_cursor, &device, error))
        goto failed;
      if (device == NULL)
        {
          *finished = TRUE;
          break;
        }
      if (!journal_range (self->writer, st->journal_range, device, &oldest, &newest, &found, error))
        goto failed;
      limit = newest - (gint64) self->prune_keep;
      if (found && oldest <= limit)
        {
          /* numbers are unique in a journal: at most budget entries */
          upto = MIN (limit, oldest + (gint64) budget - 1);
          if (!in_transaction)
            {
              if (!exec_sql (self->writer, "BEGIN IMMEDIATE", error))
                goto failed;
              in_transaction = TRUE;
            }
          bind_text (st->prune_journal, 1, device);
          sqlite3_bind_int64 (st->prune_journal, 2, upto);
          if (!step_statement (self->writer, st->prune_journal, "trimming a journal", error))
            goto failed;
          deleted = (guint) sqlite3_changes (self->writer);
          budget -= MIN (deleted, budget);
          if (upto < limit)
            break;      /* the rest of this journal in the next step */
        }
      g_free (self->prune_cursor);
      self->prune_cursor = g_steal_pointer (&device);
    }
  if (!in_transaction)
    return TRUE;
  /* a slow disk, for tests: SHOAL_STORE_COMMIT_DELAY_MS */
  if (self->commit_delay_ms > 0)
    g_usleep ((gulong) self->commit_delay_ms * 1000);
  if (!exec_sql (self->writer, "COMMIT", error))
    goto failed;
  g_mutex_lock (&self->mutex);
  self->stats.prune_transactions++;
  self->stats.pruned_rows += PRUNE_BATCH_ROWS - budget;
  self->stats.prune_max_rows = MAX (self->stats.prune_max_rows, PRUNE_BATCH_ROWS - budget);
  g_mutex_unlock (&self->mutex);
  return TRUE;

failed:
  if (in_transaction && !sqlite3_get_autocommit (self->writer))
    exec_sql (self->writer, "ROLLBACK", NULL);
  return FALSE;
}

static gboolean
pragma_int (sqlite3      *db,
            const gchar  *sql,
            gint64       *out,
            GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint rc;

  if (!prepare (db, sql, &stmt, error))
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    return set_sqlite_error (error, db, "reading the database's size");
  *out = sqlite3_column_int64 (stmt, 0);
  return TRUE;
}

/* the VACUUM that converts @db (of @pages pages) to incremental
 * auto-vacuum; *pages_after: its pages then */
static gboolean
convert_vacuum (sqlite3      *db,
                const gchar  *path,
                gint64        pages,
                gint64       *pages_after,
                GError      **error)
{
  gint64 mode;

  if (!exec_sql (db, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", error) ||
      !pragma_int (db, "PRAGMA page_count", pages_after, error) ||
      !pragma_int (db, "PRAGMA auto_vacuum", &mode, error))
    return FALSE;
  if (mode != 2)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("the VACUUM of store %s left its auto-vacuum mode at %d"),
                   path, (gint) mode);
      return FALSE;
    }
  g_message ("store: %s converted to incremental auto-vacuum: %" G_GINT64_FORMAT
             " pages, %" G_GINT64_FORMAT " before", path, *pages_after, pages);
  return TRUE;
}

/* One step of giving free pages back: PRAGMA incremental_vacuum of
 * VACUUM_STEP_PAGES; or, once, the VACUUM that converts a store made
 * before incremental auto-vacuum, if it holds at most self->convert_max */
static gboolean
vacuum_step (ShoalStore  *self,
             gboolean    *finished,
             GError     **error)
{
  g_autofree gchar *sql = NULL;
  gint64 mode, free_pages, pages, page_size, pages_after;

  *finished = TRUE;
  if (!pragma_int (self->writer, "PRAGMA auto_vacuum", &mode, error) ||
      !pragma_int (self->writer, "PRAGMA freelist_count", &free_pages, error) ||
      !pragma_int (self->writer, "PRAGMA page_count", &pages, error) ||
      !pragma_int (self->writer, "PRAGMA page_size", &page_size, error))
    return FALSE;
  if (mode == 0)
    {
      guint64 used = (guint64) (pages - free_pages) * (guint64) page_size;

      if (self->convert_tried)
        return TRUE;
      self->convert_tried = TRUE;
      if (used > self->convert_max)
        {
          g_autofree gchar *used_text = g_format_size (used);

          g_message ("store: %s was made without auto-vacuum and holds %s,"
                     " more than is converted while shoald runs: its %" G_GINT64_FORMAT
                     " free pages are reused but the file does not shrink; to convert it,"
                     " stop shoald and run shoald --convert-store once (with the same"
                     " --state-dir or configuration)",
                     self->path, used_text, free_pages);
          return TRUE;
        }
      if (!convert_vacuum (self->writer, self->path, pages, &pages_after, error))
        return FALSE;
      self->auto_vacuum = 2;
      g_mutex_lock (&self->mutex);
      self->stats.vacuumed_pages += (guint64) MAX (pages - pages_after, 0);
      g_mutex_unlock (&self->mutex);
      return TRUE;
    }
  if (mode != 2 || free_pages <= VACUUM_MIN_FREE)
    return TRUE;
  sql = g_strdup_printf ("PRAGMA incremental_vacuum(%d)", VACUUM_STEP_PAGES);
  if (!exec_sql (self->writer, sql, error))
    return FALSE;
  g_mutex_lock (&self->mutex);
  self->stats.vacuumed_pages += (guint64) MIN (free_pages, VACUUM_STEP_PAGES);
  g_mutex_unlock (&self->mutex);
  *finished = free_pages - VACUUM_STEP_PAGES <= VACUUM_MIN_FREE;
  return TRUE;
}

/* One step of the background pass, between batches of writes */
static void
maintenance_step (ShoalStore *self,
                  Statements *st)
{
  g_autoptr(GError) error = NULL;
  gboolean finished = FALSE;
  gboolean ok;

  if (self->maint == MAINT_PRUNE)
    ok = prune_step (self, st, &finished, &error);
  else
    ok = vacuum_step (self, &finished, &error);
  if (!ok)
    {
      if (classify_failure (sqlite3_extended_errcode (self->writer)) == BATCH_FATAL)
        set_fatal (self, error);
      else
        g_message ("store: trimming the journals stopped, it starts again when the store "
                   "opens or the limit changes: %s", error->message);
      maintenance_done (self);
      return;
    }
  if (!finished)
    return;
  if (self->maint == MAINT_PRUNE)
    self->maint = MAINT_VACUUM;
  else
    maintenance_done (self);
}

static gpointer
writer_thread (gpointer user_data)
{
  ShoalStore *self = user_data;
  Statements st = { 0 };
  g_autoptr(GError) error = NULL;
  gboolean quit = FALSE;

  if (!statements_prepare (&st, self->writer, &error))
    set_fatal (self, error);
  while (!quit)
    {
      Op *op;
      gboolean urgent = FALSE;

      /* the background pass goes on while nothing is queued; the VACUUM
       * that converts an old store waits for a quiet moment */
      if (maintenance_due (self))
        {
          if (self->maint == MAINT_VACUUM && self->auto_vacuum == 0 && !self->convert_tried)
            op = g_async_queue_timeout_pop (self->queue, (guint64) CONVERT_IDLE_MS * 1000);
          else
            op = g_async_queue_try_pop (self->queue);
          if (op == NULL)
            {
              maintenance_step (self, &st);
              continue;
            }
        }
      else
        op = writer_pop (self);

      if (op != NULL)
        quit = drain_queue (self, op, &urgent);
      /* while writes fail, try again when a flush must be answered or
       * the delay is over; new writes wait behind the failed ones */
      if (self->retry_ms != 0 && !urgent && g_get_monotonic_time () < self->retry_at)
        continue;
      writer_try (self, &st);
    }
  writer_close_grace (self, &st);
  writer_give_up (self);
  statements_clear (&st);
  return NULL;
}

/* --- public ------------------------------------------------------------- */

static void push_prune_journals (ShoalStore *self);

/**
 * shoal_store_open:
 * @self: a store
 * @path: the database file, created if missing
 * @error: return location for a #GError
 *
 * Opens (or creates) the store and starts its writer.
 */
gboolean
shoal_store_open (ShoalStore   *self,
                  const gchar  *path,
                  GError      **error)
{
  g_return_val_if_fail (SHOAL_IS_STORE (self), FALSE);
  g_return_val_if_fail (self->writer == NULL, FALSE);

  self->writer = open_connection (path, error);
  if (self->writer == NULL)
    return FALSE;
  if (!exec_sql (self->writer, schema_sql, error) || !migrate (self->writer, error) ||
      !pragma_int (self->writer, "PRAGMA auto_vacuum", &self->auto_vacuum, error))
    {
      g_clear_pointer (&self->writer, sqlite3_close);
      return FALSE;
    }
  self->reader = open_connection (path, error);
  if (self->reader == NULL)
    {
      g_clear_pointer (&self->writer, sqlite3_close);
      return FALSE;
    }
  self->path = g_strdup (path);
  /* tests of what a slow disk does to clients: each commit waits that long */
  self->commit_delay_ms = (guint) CLAMP (g_ascii_strtoll (g_getenv ("SHOAL_STORE_COMMIT_DELAY_MS") ?: "0", NULL, 10),
                                         0, 10000);
  self->thread = g_thread_new ("shoal-store", writer_thread, self);
  push_prune_journals (self);
  return TRUE;
}

/**
 * shoal_store_close:
 * @self: a store
 *
 * Commits everything queued and stops the writer.
 */
void
shoal_store_close (ShoalStore *self)
{
  Op *op;

  g_return_if_fail (SHOAL_IS_STORE (self));
  if (self->thread == NULL)
    return;
  op = g_new0 (Op, 1);
  op->kind = OP_QUIT;
  g_async_queue_push (self->queue, op);
  g_thread_join (g_steal_pointer (&self->thread));
  g_clear_pointer (&self->writer, sqlite3_close);
  g_clear_pointer (&self->reader, sqlite3_close);
}

/**
 * shoal_store_begin_group: (skip)
 * @self: a store
 *
 * Operations queued until shoal_store_end_group() are committed in one
 * transaction: a step's journal entry and the device row that records
 * the step as done are durable together or not at all. Groups nest; call
 * from the thread that owns the store only.
 */
void
shoal_store_begin_group (ShoalStore *self)
{
  g_return_if_fail (SHOAL_IS_STORE (self));
  if (self->group_depth++ == 0)
    g_mutex_lock (&self->group_lock);
}

void
shoal_store_end_group (ShoalStore *self)
{
  g_return_if_fail (SHOAL_IS_STORE (self));
  g_return_if_fail (self->group_depth > 0);
  if (--self->group_depth == 0)
    g_mutex_unlock (&self->group_lock);
}

void
shoal_store_set_committed_func (ShoalStore              *self,
                                ShoalStoreCommittedFunc  func,
                                gpointer                 user_data)
{
  g_return_if_fail (SHOAL_IS_STORE (self));
  self->committed_func = func;
  self->committed_data = user_data;
}

static void
push_op (ShoalStore *self,
         Op         *op)
{
  if (self->thread == NULL)
    {
      op_free (op);
      return;
    }
  g_mutex_lock (&self->mutex);
  op->seq = ++self->pushed;
  if (op->kind == OP_PRUNE_JOURNALS)
    self->maint_requested = op->seq;
  g_async_queue_push (self->queue, op);
  g_mutex_unlock (&self->mutex);
}

static void
push_prune_journals (ShoalStore *self)
{
  Op *op = g_new0 (Op, 1);

  op->kind = OP_PRUNE_JOURNALS;
  op->keep = g_atomic_int_get (&self->journal_keep);
  push_op (self, op);
}

/**
 * shoal_store_set_journal_keep:
 * @self: a store
 * @keep: how many entries each device's journal keeps, the newest; 0
 *   keeps them all
 *
 * Trims every journal to @keep, in the background (short transactions
 * between the writes, which do not wait for it), and each device's whenever
 * it gets a new entry. The default is %SHOAL_STORE_JOURNAL_KEEP_DEFAULT.
 */
void
shoal_store_set_journal_keep (ShoalStore *self,
                              guint       keep)
{
  g_return_if_fail (SHOAL_IS_STORE (self));
  g_atomic_int_set (&self->journal_keep, keep);
  push_prune_journals (self);
}

/**
 * shoal_store_put_device: (skip)
 * @self: a store
 * @row: (transfer full): the device's row
 */
void
shoal_store_put_device (ShoalStore       *self,
                        ShoalStoreDevice *row)
{
  Op *op;

  /* A row still queued is replaced by the newer one: under load a device
   * is written once per batch, not once per transition. Both belong to
   * the same batch (the writer drains whole groups), so a transition's
   * row and journal entries still commit together. */
  g_mutex_lock (&self->mutex);
  op = self->thread != NULL ? g_hash_table_lookup (self->pending_rows, row->id) : NULL;
  if (op != NULL)
    {
      shoal_store_device_free (op->device);
      op->device = row;
      g_mutex_unlock (&self->mutex);
      return;
    }
  op = g_new0 (Op, 1);
  op->kind = OP_PUT_DEVICE;
  op->device = row;
  if (self->thread != NULL)
    g_hash_table_insert (self->pending_rows, g_strdup (row->id), op);
  g_mutex_unlock (&self->mutex);
  push_op (self, op);
}

void
shoal_store_delete_device (ShoalStore  *self,
                           const gchar *id)
{
  Op *op = g_new0 (Op, 1);

  /* a row queued before the removal must not take a later row */
  g_mutex_lock (&self->mutex);
  g_hash_table_remove (self->pending_rows, id);
  g_mutex_unlock (&self->mutex);
  op->kind = OP_DELETE_DEVICE;
  op->id = g_strdup (id);
  push_op (self, op);
}

void
shoal_store_append_journal (ShoalStore        *self,
                            ShoalJournalEntry *entry)
{
  Op *op = g_new0 (Op, 1);

  op->kind = OP_JOURNAL;
  op->entry = shoal_journal_entry_ref (entry);
  push_op (self, op);
}

void
shoal_store_kv_set (ShoalStore  *self,
                    const gchar *ns,
                    const gchar *key,
                    const gchar *value)
{
  Op *op = g_new0 (Op, 1);

  op->kind = OP_KV;
  op->ns = g_strdup (ns);
  op->key = g_strdup (key);
  op->value = g_strdup (value);
  push_op (self, op);
}

/**
 * shoal_store_flush_full_async:
 * @self: a store
 * @flags: #SHOAL_STORE_FLUSH_FAIL_FAST to fail at once when the writes
 *   queued before cannot be committed now
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once everything queued before is durable
 * @user_data: data for @callback
 *
 * Without #SHOAL_STORE_FLUSH_FAIL_FAST the flush waits while failed
 * writes are tried again, and fails only if the database is damaged or
 * the store closes first. With it, a failed write fails the flush; the
 * write is still kept and tried again.
 */
void
shoal_store_flush_full_async (ShoalStore           *self,
                              ShoalStoreFlushFlags  flags,
                              GCancellable         *cancellable,
                              GAsyncReadyCallback   callback,
                              gpointer              user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  Op *op;

  g_task_set_source_tag (task, shoal_store_flush_async);
  g_mutex_lock (&self->mutex);
  if (self->fatal != NULL)
    {
      g_task_return_error (task, g_error_copy (self->fatal));
      g_mutex_unlock (&self->mutex);
      return;
    }
  g_mutex_unlock (&self->mutex);
  if (self->thread == NULL)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_STORE, _("the store is closed"));
      return;
    }
  op = g_new0 (Op, 1);
  op->kind = OP_FLUSH;
  op->fail_fast = (flags & SHOAL_STORE_FLUSH_FAIL_FAST) != 0;
  op->task = g_steal_pointer (&task);
  push_op (self, op);
}

/**
 * shoal_store_flush_async:
 * @self: a store
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once everything queued before is durable
 * @user_data: data for @callback
 *
 * Waits while failed writes are tried again; see
 * shoal_store_flush_full_async().
 */
void
shoal_store_flush_async (ShoalStore          *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  shoal_store_flush_full_async (self, SHOAL_STORE_FLUSH_NONE, cancellable, callback, user_data);
}

gboolean
shoal_store_flush_finish (ShoalStore    *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
flush_sync_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/**
 * shoal_store_flush:
 * @self: a store
 * @error: return location for a #GError
 *
 * Blocks until everything queued is durable, or fails at once when it
 * cannot be made durable now (#SHOAL_STORE_FLUSH_FAIL_FAST). For tests
 * and shutdown.
 */
gboolean
shoal_store_flush (ShoalStore  *self,
                   GError     **error)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GAsyncResult) result = NULL;
  gboolean ret;

  g_main_context_push_thread_default (context);
  shoal_store_flush_full_async (self, SHOAL_STORE_FLUSH_FAIL_FAST, NULL, flush_sync_cb, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  ret = shoal_store_flush_finish (self, result, error);
  g_main_context_pop_thread_default (context);
  return ret;
}

/**
 * shoal_store_get_stats: (skip)
 * @self: a store
 * @stats: (out caller-allocates): the background pass's and the loads' counts
 */
void
shoal_store_get_stats (ShoalStore      *self,
                       ShoalStoreStats *stats)
{
  g_return_if_fail (SHOAL_IS_STORE (self));
  g_mutex_lock (&self->mutex);
  *stats = self->stats;
  stats->maintaining = self->maint_requested > self->maint_finished;
  g_mutex_unlock (&self->mutex);
}

/**
 * shoal_store_convert_file: (skip)
 * @path: the database of a store that no shoald has open
 * @converted: (out): whether it was converted; %FALSE when it used
 *   incremental auto-vacuum already
 * @error: return location for a #GError
 *
 * Converts a store made without auto-vacuum (by a shoald before
 * incremental auto-vacuum, and too big to be converted while shoald runs)
 * to incremental auto-vacuum, so that the pages trimmed journals free go
 * back to the file system. SQLite converts only by one VACUUM, which
 * rewrites the whole file, needs as much free space again, and may take
 * minutes for a large store: shoald does it only when told
 * (--convert-store), before it starts.
 *
 * Returns: %FALSE with an error if the store is missing or could not be
 *   converted (it is then as it was)
 */
gboolean
shoal_store_convert_file (const gchar  *path,
                          gboolean     *converted,
                          GError      **error)
{
  sqlite3 *db;
  gint64 mode = 0, pages = 0, pages_after = 0;
  gboolean ok;

  g_return_val_if_fail (path != NULL, FALSE);
  *converted = FALSE;
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("no store at %s"), path);
      return FALSE;
    }
  db = open_connection (path, error);
  if (db == NULL)
    return FALSE;
  ok = pragma_int (db, "PRAGMA auto_vacuum", &mode, error) &&
       pragma_int (db, "PRAGMA page_count", &pages, error);
  if (ok && mode == 0)
    {
      ok = convert_vacuum (db, path, pages, &pages_after, error);
      *converted = ok;
    }
  sqlite3_close (db);
  return ok;
}

/**
 * shoal_store_set_convert_max: (skip)
 * @self: a store, not open yet
 * @bytes: a store made without auto-vacuum that holds at most this much
 *   is converted by a VACUUM after its first trimming pass
 */
void
shoal_store_set_convert_max (ShoalStore *self,
                             guint64     bytes)
{
  g_return_if_fail (SHOAL_IS_STORE (self));
  self->convert_max = bytes;
}

guint64
shoal_store_get_commits (ShoalStore *self)
{
  return (guint64) g_atomic_int_get (&self->commits);
}

/**
 * shoal_store_get_health:
 * @self: a store
 * @out_errors: (out) (optional): batches that failed since the store opened
 * @out_pending: (out) (optional): writes waiting to be tried again
 * @out_last_error: (out) (optional) (transfer full): the last failure's
 *   message, or %NULL if none
 *
 * Returns: whether the store writes: its last batch was committed and the
 *   database is not damaged
 */
gboolean
shoal_store_get_health (ShoalStore  *self,
                        guint64     *out_errors,
                        guint       *out_pending,
                        gchar      **out_last_error)
{
  gboolean ok;

  g_return_val_if_fail (SHOAL_IS_STORE (self), FALSE);
  g_mutex_lock (&self->mutex);
  ok = !self->failing && self->fatal == NULL;
  if (out_errors != NULL)
    *out_errors = self->failed_batches;
  if (out_pending != NULL)
    *out_pending = self->retry_ops;
  if (out_last_error != NULL)
    *out_last_error = g_strdup (self->last_error);
  g_mutex_unlock (&self->mutex);
  return ok;
}

/* --- reads -------------------------------------------------------------- */

/**
 * shoal_store_load_devices: (skip)
 */
GPtrArray *
shoal_store_load_devices (ShoalStore  *self,
                          GError     **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_store_device_free);
  gint rc;

  if (!prepare (self->reader, "SELECT id, macs, uuid, token, state, boot_action, recipe,"
                " recipe_commit, group_id, current_step, step_index, progress, inventory,"
                " metadata, run_no, updated, instruction_serial, recipe_digest FROM devices ORDER BY id", &stmt, error))
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      ShoalStoreDevice *row = g_new0 (ShoalStoreDevice, 1);

      row->id = column_dup (stmt, 0);
      row->macs = column_dup (stmt, 1);
      row->uuid = column_dup (stmt, 2);
      row->token = column_dup (stmt, 3);
      row->state = sqlite3_column_int (stmt, 4);
      row->boot_action = sqlite3_column_int (stmt, 5);
      row->recipe = column_dup (stmt, 6);
      row->recipe_commit = column_dup (stmt, 7);
      row->group_id = column_dup (stmt, 8);
      row->current_step = column_dup (stmt, 9);
      row->step_index = sqlite3_column_int (stmt, 10);
      row->progress = sqlite3_column_double (stmt, 11);
      row->inventory = column_dup (stmt, 12);
      row->metadata = column_dup (stmt, 13);
      row->run_no = sqlite3_column_int64 (stmt, 14);
      row->updated_us = sqlite3_column_int64 (stmt, 15);
      row->instruction_serial = (guint64) sqlite3_column_int64 (stmt, 16);
      row->recipe_digest = column_dup (stmt, 17);
      g_ptr_array_add (rows, row);
    }
  if (rc != SQLITE_DONE)
    return set_sqlite_error (error, self->reader, "loading devices"), NULL;
  return g_steal_pointer (&rows);
}

/**
 * shoal_store_load_journal_seqs: (skip)
 *
 * Each journal's highest number, found by index seeks (three per
 * journal), not by reading the table.
 *
 * Returns: device id -> (guint64 *) highest sequence number
 */
GHashTable *
shoal_store_load_journal_seqs (ShoalStore  *self,
                               GError     **error)
{
  g_autoptr(sqlite3_stmt) first = NULL;
  g_autoptr(sqlite3_stmt) next = NULL;
  g_autoptr(sqlite3_stmt) range = NULL;
  g_autoptr(GHashTable) seqs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autofree gchar *device = NULL;
  guint64 steps;

  if (!prepare (self->reader, SQL_JOURNAL_FIRST, &first, error) ||
      !prepare (self->reader, SQL_JOURNAL_NEXT, &next, error) ||
      !prepare (self->reader, SQL_JOURNAL_RANGE, &range, error))
    return NULL;
  /* one read transaction: the numbers of one moment */
  if (!exec_sql (self->reader, "BEGIN", error))
    return NULL;
  for (;;)
    {
      g_autofree gchar *after = g_steal_pointer (&device);
      gint64 oldest, newest;
      gboolean found;

      if (!next_journal (self->reader, first, next, after, &device, error) ||
          (device != NULL &&
           !journal_range (self->reader, range, device, &oldest, &newest, &found, error)))
        {
          exec_sql (self->reader, "ROLLBACK", NULL);
          g_prefix_error (error, "loading the journal: ");
          return NULL;
        }
      if (device == NULL)
        break;
      if (found)
        {
          guint64 *seq = g_new (guint64, 1);

          *seq = (guint64) newest;
          g_hash_table_insert (seqs, g_strdup (device), seq);
        }
    }
  exec_sql (self->reader, "COMMIT", NULL);
  steps = (guint64) sqlite3_stmt_status (first, SQLITE_STMTSTATUS_VM_STEP, 0) +
          (guint64) sqlite3_stmt_status (next, SQLITE_STMTSTATUS_VM_STEP, 0) +
          (guint64) sqlite3_stmt_status (range, SQLITE_STMTSTATUS_VM_STEP, 0);
  g_mutex_lock (&self->mutex);
  self->stats.seq_load_steps = steps;
  g_mutex_unlock (&self->mutex);
  return g_steal_pointer (&seqs);
}

/**
 * shoal_store_get_journal: (skip)
 * @self: a store
 * @device_id: a device's id
 * @since_seq: only entries with a greater sequence number
 * @max_entries: at most this many, the oldest first; 0 for all
 * @error: return location for a #GError
 */
GPtrArray *
shoal_store_get_journal (ShoalStore   *self,
                         const gchar  *device_id,
                         guint64       since_seq,
                         guint         max_entries,
                         GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_journal_entry_unref);
  gint rc;

  if (!prepare (self->reader, "SELECT seq, time, source, operation, result, message"
                " FROM journal WHERE device = ? AND seq > ? ORDER BY seq LIMIT ?", &stmt, error))
    return NULL;
  bind_text (stmt, 1, device_id);
  sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) since_seq);
  sqlite3_bind_int64 (stmt, 3, max_entries > 0 ? (sqlite3_int64) max_entries : -1);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      ShoalJournalEntry *entry =
        shoal_journal_entry_new (device_id, sqlite3_column_int64 (stmt, 1),
                                 (const gchar *) sqlite3_column_text (stmt, 2),
                                 (const gchar *) sqlite3_column_text (stmt, 3),
                                 shoal_journal_result_from_string ((const gchar *) sqlite3_column_text (stmt, 4)),
                                 (const gchar *) sqlite3_column_text (stmt, 5));

      shoal_journal_entry_set_seq (entry, (guint64) sqlite3_column_int64 (stmt, 0));
      g_ptr_array_add (entries, entry);
    }
  if (rc != SQLITE_DONE)
    return set_sqlite_error (error, self->reader, "reading the journal"), NULL;
  return g_steal_pointer (&entries);
}

/**
 * shoal_store_load_kv: (skip)
 *
 * Returns: "ns\x1fkey" -> value
 */
GHashTable *
shoal_store_load_kv (ShoalStore  *self,
                     GError     **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GHashTable) kv = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gint rc;

  if (!prepare (self->reader, "SELECT ns, key, value FROM kv", &stmt, error))
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      g_hash_table_insert (kv,
                           g_strdup_printf ("%s\x1f%s", sqlite3_column_text (stmt, 0),
                                            sqlite3_column_text (stmt, 1)),
                           column_dup (stmt, 2));
    }
  if (rc != SQLITE_DONE)
    return set_sqlite_error (error, self->reader, "loading keys"), NULL;
  return g_steal_pointer (&kv);
}
