/* shoal-journal-entry.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-journal-entry.h"

/**
 * ShoalJournalEntry:
 *
 * One operation performed on a device (claims 9, 13, 26): who did it
 * (@source: a step id, a plugin or "controller"), what (@operation), when,
 * with what result, and a human-readable message. Entries are immutable
 * once the controller has given them their sequence number.
 */
struct _ShoalJournalEntry
{
  gatomicrefcount     ref_count;
  gchar              *device_id;
  guint64             seq;
  gint64              time_us;
  gchar              *source;
  gchar              *operation;
  ShoalJournalResult  result;
  gchar              *message;
};

G_DEFINE_BOXED_TYPE (ShoalJournalEntry, shoal_journal_entry,
                     shoal_journal_entry_ref, shoal_journal_entry_unref)

/**
 * shoal_journal_entry_new:
 * @device_id: the device the operation concerns
 * @time_us: wall-clock time in microseconds, or 0 for now
 * @source: who performed it
 * @operation: what was performed
 * @result: the outcome
 * @message: (nullable): details
 *
 * Returns: (transfer full): a new entry without a sequence number
 */
ShoalJournalEntry *
shoal_journal_entry_new (const gchar        *device_id,
                         gint64              time_us,
                         const gchar        *source,
                         const gchar        *operation,
                         ShoalJournalResult  result,
                         const gchar        *message)
{
  ShoalJournalEntry *self = g_new0 (ShoalJournalEntry, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->device_id = g_strdup (device_id);
  self->time_us = time_us != 0 ? time_us : g_get_real_time ();
  self->source = g_strdup (source != NULL ? source : "controller");
  self->operation = g_strdup (operation != NULL ? operation : "event");
  self->result = result;
  self->message = g_strdup (message != NULL ? message : "");
  return self;
}

/**
 * shoal_journal_entry_ref:
 * @self: an entry
 *
 * Returns: (transfer full): @self
 */
ShoalJournalEntry *
shoal_journal_entry_ref (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
shoal_journal_entry_unref (ShoalJournalEntry *self)
{
  g_return_if_fail (self != NULL);
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  g_free (self->device_id);
  g_free (self->source);
  g_free (self->operation);
  g_free (self->message);
  g_free (self);
}

const gchar *
shoal_journal_entry_get_device_id (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->device_id;
}

guint64
shoal_journal_entry_get_seq (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->seq;
}

void
shoal_journal_entry_set_seq (ShoalJournalEntry *self,
                             guint64            seq)
{
  g_return_if_fail (self != NULL);
  self->seq = seq;
}

gint64
shoal_journal_entry_get_time (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->time_us;
}

const gchar *
shoal_journal_entry_get_source (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->source;
}

const gchar *
shoal_journal_entry_get_operation (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->operation;
}

ShoalJournalResult
shoal_journal_entry_get_result (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, SHOAL_JOURNAL_RESULT_INFO);
  return self->result;
}

const gchar *
shoal_journal_entry_get_message (ShoalJournalEntry *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->message;
}

static const gchar *result_names[] = { "info", "ok", "warning", "failed" };

const gchar *
shoal_journal_result_to_string (ShoalJournalResult result)
{
  if ((guint) result >= G_N_ELEMENTS (result_names))
    return "info";
  return result_names[result];
}

ShoalJournalResult
shoal_journal_result_from_string (const gchar *str)
{
  for (guint i = 0; str != NULL && i < G_N_ELEMENTS (result_names); i++)
    {
      if (g_strcmp0 (str, result_names[i]) == 0)
        return (ShoalJournalResult) i;
    }
  return SHOAL_JOURNAL_RESULT_INFO;
}
