/* shoal-journal-entry.h: one operation in a device's journal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * ShoalJournalResult:
 * @SHOAL_JOURNAL_RESULT_INFO: an event with no outcome of its own
 * @SHOAL_JOURNAL_RESULT_OK: the operation succeeded
 * @SHOAL_JOURNAL_RESULT_WARNING: the operation succeeded with a problem
 * @SHOAL_JOURNAL_RESULT_FAILED: the operation failed
 */
typedef enum {
  SHOAL_JOURNAL_RESULT_INFO,
  SHOAL_JOURNAL_RESULT_OK,
  SHOAL_JOURNAL_RESULT_WARNING,
  SHOAL_JOURNAL_RESULT_FAILED,
} ShoalJournalResult;

#define SHOAL_TYPE_JOURNAL_ENTRY (shoal_journal_entry_get_type ())

typedef struct _ShoalJournalEntry ShoalJournalEntry;

GType               shoal_journal_entry_get_type      (void) G_GNUC_CONST;
ShoalJournalEntry  *shoal_journal_entry_new           (const gchar        *device_id,
                                                       gint64              time_us,
                                                       const gchar        *source,
                                                       const gchar        *operation,
                                                       ShoalJournalResult  result,
                                                       const gchar        *message);
ShoalJournalEntry  *shoal_journal_entry_ref           (ShoalJournalEntry  *self);
void                shoal_journal_entry_unref         (ShoalJournalEntry  *self);
const gchar        *shoal_journal_entry_get_device_id (ShoalJournalEntry  *self);
guint64             shoal_journal_entry_get_seq       (ShoalJournalEntry  *self);
void                shoal_journal_entry_set_seq       (ShoalJournalEntry  *self,
                                                       guint64             seq);
gint64              shoal_journal_entry_get_time      (ShoalJournalEntry  *self);
const gchar        *shoal_journal_entry_get_source    (ShoalJournalEntry  *self);
const gchar        *shoal_journal_entry_get_operation (ShoalJournalEntry  *self);
ShoalJournalResult  shoal_journal_entry_get_result    (ShoalJournalEntry  *self);
const gchar        *shoal_journal_entry_get_message   (ShoalJournalEntry  *self);
const gchar        *shoal_journal_result_to_string   (ShoalJournalResult  result);
ShoalJournalResult  shoal_journal_result_from_string  (const gchar        *str);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalJournalEntry, shoal_journal_entry_unref)

G_END_DECLS
