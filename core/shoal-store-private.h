/* shoal-store-private.h: the durable store (SQLite, WAL)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-journal-entry.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_STORE (shoal_store_get_type ())

G_DECLARE_FINAL_TYPE (ShoalStore, shoal_store, SHOAL, STORE, GObject)

/* One device as it is persisted; every string is owned */
typedef struct {
  gchar   *id;
  gchar   *macs;            /* comma-separated */
  gchar   *uuid;
  gchar   *token;
  gint     state;
  gint     boot_action;
  gchar   *recipe;
  gchar   *recipe_commit;
  gchar   *group_id;
  gchar   *current_step;
  gint     step_index;      /* steps completed in the current run */
  gdouble  progress;
  gchar   *inventory;       /* JSON text */
  gchar   *metadata;        /* JSON object text */
  gint64   run_no;
  gint64   updated_us;
  guint64  instruction_serial;  /* the last one handed out (schema 2) */
  gchar   *recipe_digest;   /* SHA-256 of the deployment's recipe (schema 3) */
} ShoalStoreDevice;

void              shoal_store_device_free   (ShoalStoreDevice *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalStoreDevice, shoal_store_device_free)

/**
 * ShoalStoreFlushFlags:
 * @SHOAL_STORE_FLUSH_NONE: wait while failed writes are tried again
 * @SHOAL_STORE_FLUSH_FAIL_FAST: fail at once if the writes before cannot
 *   be committed now (they are still kept and tried again)
 */
typedef enum {
  SHOAL_STORE_FLUSH_NONE      = 0,
  SHOAL_STORE_FLUSH_FAIL_FAST = 1 << 0,
} ShoalStoreFlushFlags;

/* Entries each device's journal keeps unless configured otherwise */
#define SHOAL_STORE_JOURNAL_KEEP_DEFAULT 10000

/* Journal entries one transaction of the background trimming deletes at most */
#define SHOAL_STORE_PRUNE_BATCH_ROWS 5000

/**
 * ShoalStoreStats:
 * @prune_transactions: transactions of the background trimming so far
 * @pruned_rows: entries they deleted
 * @prune_max_rows: the most one of them deleted
 * @vacuumed_pages: pages given back to the file system
 * @seq_load_steps: SQLite VM steps the last
 *   shoal_store_load_journal_seqs() took (for tests: no table scan)
 * @maintaining: a trimming pass asked for has not finished
 */
typedef struct {
  guint64  prune_transactions;
  guint64  pruned_rows;
  guint    prune_max_rows;
  guint64  vacuumed_pages;
  guint64  seq_load_steps;
  gboolean maintaining;
} ShoalStoreStats;

typedef void (*ShoalStoreCommittedFunc) (GPtrArray *entries,
                                         gpointer   user_data);

ShoalStore *shoal_store_new               (void);
gboolean    shoal_store_open              (ShoalStore              *self,
                                           const gchar             *path,
                                           GError                 **error);
void        shoal_store_close             (ShoalStore              *self);
void        shoal_store_set_committed_func (ShoalStore             *self,
                                           ShoalStoreCommittedFunc  func,
                                           gpointer                 user_data);
void        shoal_store_begin_group       (ShoalStore              *self);
void        shoal_store_end_group         (ShoalStore              *self);
void        shoal_store_set_journal_keep  (ShoalStore              *self,
                                           guint                    keep);
void        shoal_store_put_device        (ShoalStore              *self,
                                           ShoalStoreDevice        *row);
void        shoal_store_delete_device     (ShoalStore              *self,
                                           const gchar             *id);
void        shoal_store_append_journal    (ShoalStore              *self,
                                           ShoalJournalEntry       *entry);
void        shoal_store_kv_set            (ShoalStore              *self,
                                           const gchar             *ns,
                                           const gchar             *key,
                                           const gchar             *value);
void        shoal_store_flush_full_async  (ShoalStore              *self,
                                           ShoalStoreFlushFlags     flags,
                                           GCancellable            *cancellable,
                                           GAsyncReadyCallback      callback,
                                           gpointer                 user_data);
void        shoal_store_flush_async       (ShoalStore              *self,
                                           GCancellable            *cancellable,
                                           GAsyncReadyCallback      callback,
                                           gpointer                 user_data);
gboolean    shoal_store_flush_finish      (ShoalStore              *self,
                                           GAsyncResult            *result,
                                           GError                 **error);
gboolean    shoal_store_flush             (ShoalStore              *self,
                                           GError                 **error);
guint64     shoal_store_get_commits       (ShoalStore              *self);
void        shoal_store_get_stats         (ShoalStore              *self,
                                           ShoalStoreStats         *stats);
void        shoal_store_set_convert_max   (ShoalStore              *self,
                                           guint64                  bytes);
gboolean    shoal_store_convert_file      (const gchar             *path,
                                           gboolean                *converted,
                                           GError                 **error);
gboolean    shoal_store_get_health        (ShoalStore              *self,
                                           guint64                 *out_errors,
                                           guint                   *out_pending,
                                           gchar                  **out_last_error);
GPtrArray  *shoal_store_load_devices      (ShoalStore              *self,
                                           GError                 **error);
GHashTable *shoal_store_load_journal_seqs (ShoalStore              *self,
                                           GError                 **error);
GPtrArray  *shoal_store_get_journal       (ShoalStore              *self,
                                           const gchar             *device_id,
                                           guint64                  since_seq,
                                           guint                    max_entries,
                                           GError                 **error);
GHashTable *shoal_store_load_kv           (ShoalStore              *self,
                                           GError                 **error);

G_END_DECLS
