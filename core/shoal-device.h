/* shoal-device.h: one machine managed by shoal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "shoal-journal-entry.h"

G_BEGIN_DECLS

/**
 * ShoalDeviceState:
 * @SHOAL_DEVICE_STATE_DISCOVERED: seen on the network or enrolled, nothing assigned
 * @SHOAL_DEVICE_STATE_ASSIGNED: a recipe is assigned, no deployment running
 * @SHOAL_DEVICE_STATE_QUEUED: a deployment was requested and waits for its first step
 * @SHOAL_DEVICE_STATE_BOOTING: running a step of the boot phase
 * @SHOAL_DEVICE_STATE_INVENTORY: running a step of the inventory phase
 * @SHOAL_DEVICE_STATE_DRIVERS: running a step of the driver selection phase
 * @SHOAL_DEVICE_STATE_AGENT: running a step of the agent phase
 * @SHOAL_DEVICE_STATE_WAITING: waiting at a rendezvous for its group to form
 * @SHOAL_DEVICE_STATE_TRANSFER: receiving the image with its group
 * @SHOAL_DEVICE_STATE_VERIFY: running a step of the verify phase
 * @SHOAL_DEVICE_STATE_FINISHING: running a step of the finish phase
 * @SHOAL_DEVICE_STATE_INSTALLED: every step completed; the device boots locally
 * @SHOAL_DEVICE_STATE_FAILED: a step failed; the journal says why
 * @SHOAL_DEVICE_STATE_CANCELLED: the deployment was cancelled
 *
 * Where a device stands. The controller persists every change.
 */
typedef enum {
  SHOAL_DEVICE_STATE_DISCOVERED,
  SHOAL_DEVICE_STATE_ASSIGNED,
  SHOAL_DEVICE_STATE_QUEUED,
  SHOAL_DEVICE_STATE_BOOTING,
  SHOAL_DEVICE_STATE_INVENTORY,
  SHOAL_DEVICE_STATE_DRIVERS,
  SHOAL_DEVICE_STATE_AGENT,
  SHOAL_DEVICE_STATE_WAITING,
  SHOAL_DEVICE_STATE_TRANSFER,
  SHOAL_DEVICE_STATE_VERIFY,
  SHOAL_DEVICE_STATE_FINISHING,
  SHOAL_DEVICE_STATE_INSTALLED,
  SHOAL_DEVICE_STATE_FAILED,
  SHOAL_DEVICE_STATE_CANCELLED,
} ShoalDeviceState;

/**
 * ShoalBootAction:
 * @SHOAL_BOOT_ACTION_DEPLOY: network-boot into the deployment
 * @SHOAL_BOOT_ACTION_LOCAL: boot the local disk
 * @SHOAL_BOOT_ACTION_IGNORE: do not answer the device at all
 *
 * What the network boot service tells a device to do.
 */
typedef enum {
  SHOAL_BOOT_ACTION_DEPLOY,
  SHOAL_BOOT_ACTION_LOCAL,
  SHOAL_BOOT_ACTION_IGNORE,
} ShoalBootAction;

#define SHOAL_TYPE_DEVICE (shoal_device_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDevice, shoal_device, SHOAL, DEVICE, GObject)

/* Threads (see #ShoalDevice): a device changes, and sends its property
 * notifications and signals, on the main context of the thread that made
 * it. Every call below may be made from any thread but the getters that
 * return a pointer into the device (const strings, MAC addresses,
 * inventory, instruction), which are for that context only: from another
 * thread, call their shoal_device_dup_*() variants, which return copies
 * and which bindings call under the get_ name. A change made from another
 * thread is made on that context, after what the thread queued there
 * before, and returns once made, so the thread reads its change back at
 * once; shoal_device_log() and shoal_device_set_progress() are queued
 * without waiting. */

ShoalDevice         *shoal_device_new               (const gchar         *id);
const gchar         *shoal_device_get_id            (ShoalDevice         *self);
const gchar * const *shoal_device_get_macs          (ShoalDevice         *self);
gchar              **shoal_device_dup_macs          (ShoalDevice         *self);
void                 shoal_device_set_macs          (ShoalDevice         *self,
                                                     const gchar * const *macs);
gboolean             shoal_device_has_mac           (ShoalDevice         *self,
                                                     const gchar         *mac);
const gchar         *shoal_device_get_uuid          (ShoalDevice         *self);
gchar               *shoal_device_dup_uuid          (ShoalDevice         *self);
void                 shoal_device_set_uuid          (ShoalDevice         *self,
                                                     const gchar         *uuid);
const gchar         *shoal_device_get_token         (ShoalDevice         *self);
gchar               *shoal_device_dup_token         (ShoalDevice         *self);
void                 shoal_device_set_token         (ShoalDevice         *self,
                                                     const gchar         *token);
ShoalDeviceState     shoal_device_get_state         (ShoalDevice         *self);
void                 shoal_device_set_state         (ShoalDevice         *self,
                                                     ShoalDeviceState     state);
ShoalBootAction      shoal_device_get_boot_action   (ShoalDevice         *self);
void                 shoal_device_set_boot_action   (ShoalDevice         *self,
                                                     ShoalBootAction      action);
const gchar         *shoal_device_get_current_step  (ShoalDevice         *self);
gchar               *shoal_device_dup_current_step  (ShoalDevice         *self);
void                 shoal_device_set_current_step  (ShoalDevice         *self,
                                                     const gchar         *step_id);
gdouble              shoal_device_get_progress      (ShoalDevice         *self);
void                 shoal_device_set_progress      (ShoalDevice         *self,
                                                     gdouble              progress);
const gchar         *shoal_device_get_recipe        (ShoalDevice         *self);
gchar               *shoal_device_dup_recipe        (ShoalDevice         *self);
void                 shoal_device_set_recipe        (ShoalDevice         *self,
                                                     const gchar         *recipe);
const gchar         *shoal_device_get_recipe_commit (ShoalDevice         *self);
gchar               *shoal_device_dup_recipe_commit (ShoalDevice         *self);
void                 shoal_device_set_recipe_commit (ShoalDevice         *self,
                                                     const gchar         *commit);
const gchar         *shoal_device_get_group         (ShoalDevice         *self);
gchar               *shoal_device_dup_group         (ShoalDevice         *self);
void                 shoal_device_set_group         (ShoalDevice         *self,
                                                     const gchar         *group);
JsonNode            *shoal_device_get_inventory     (ShoalDevice         *self);
JsonNode            *shoal_device_dup_inventory     (ShoalDevice         *self);
void                 shoal_device_set_inventory     (ShoalDevice         *self,
                                                     JsonNode            *inventory);
const gchar         *shoal_device_get_metadata      (ShoalDevice         *self,
                                                     const gchar         *key);
gchar               *shoal_device_dup_metadata      (ShoalDevice         *self,
                                                     const gchar         *key);
void                 shoal_device_set_metadata      (ShoalDevice         *self,
                                                     const gchar         *key,
                                                     const gchar         *value);
GHashTable          *shoal_device_get_metadata_all  (ShoalDevice         *self);

void                 shoal_device_log               (ShoalDevice         *self,
                                                     const gchar         *source,
                                                     const gchar         *operation,
                                                     ShoalJournalResult   result,
                                                     const gchar         *format,
                                                     ...) G_GNUC_PRINTF (5, 6);
void                 shoal_device_log_literal       (ShoalDevice         *self,
                                                     const gchar         *source,
                                                     const gchar         *operation,
                                                     ShoalJournalResult   result,
                                                     const gchar         *message);

void                 shoal_device_post_event        (ShoalDevice         *self,
                                                     const gchar         *name,
                                                     JsonNode            *payload);
void                 shoal_device_wait_event_async  (ShoalDevice         *self,
                                                     const gchar         *name,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
JsonNode            *shoal_device_wait_event_finish (ShoalDevice         *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);

void                 shoal_device_clear_events      (ShoalDevice         *self);
JsonNode            *shoal_device_get_instruction   (ShoalDevice         *self);
JsonNode            *shoal_device_dup_instruction   (ShoalDevice         *self);
void                 shoal_device_set_instruction   (ShoalDevice         *self,
                                                     JsonNode            *instruction);
guint64              shoal_device_get_instruction_serial (ShoalDevice    *self);

const gchar         *shoal_device_state_to_string   (ShoalDeviceState     state);
gboolean             shoal_device_state_from_string (const gchar         *str,
                                                     ShoalDeviceState    *state);
gboolean             shoal_device_state_is_active   (ShoalDeviceState     state);
const gchar         *shoal_boot_action_to_string    (ShoalBootAction      action);
gboolean             shoal_boot_action_from_string  (const gchar         *str,
                                                     ShoalBootAction     *action);

G_END_DECLS
