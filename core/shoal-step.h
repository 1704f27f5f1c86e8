/* shoal-step.h: one step of an installation, supplied by a plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "shoal-step-context.h"

G_BEGIN_DECLS

/**
 * ShoalStepScope:
 * @SHOAL_STEP_SCOPE_DEVICE: runs for one device whenever that device gets there
 * @SHOAL_STEP_SCOPE_GROUP: runs once for a group of devices, all at the same time
 */
typedef enum {
  SHOAL_STEP_SCOPE_DEVICE,
  SHOAL_STEP_SCOPE_GROUP,
} ShoalStepScope;

/**
 * ShoalStepPhase:
 * @SHOAL_STEP_PHASE_BOOT: network boot, agent loader
 * @SHOAL_STEP_PHASE_INVENTORY: hardware inventory
 * @SHOAL_STEP_PHASE_DRIVERS: driver selection
 * @SHOAL_STEP_PHASE_AGENT: deployment agent generation and hand-over
 * @SHOAL_STEP_PHASE_TRANSFER: image transfer
 * @SHOAL_STEP_PHASE_VERIFY: verification of what was written
 * @SHOAL_STEP_PHASE_FINISH: reboot, hand-over to the installed system
 *
 * Where a step stands in an installation. The core orders the steps of a
 * recipe by phase (stably: steps of one phase keep the recipe's order) and
 * derives the device state from the phase of the step it runs.
 */
typedef enum {
  SHOAL_STEP_PHASE_BOOT = 100,
  SHOAL_STEP_PHASE_INVENTORY = 200,
  SHOAL_STEP_PHASE_DRIVERS = 300,
  SHOAL_STEP_PHASE_AGENT = 400,
  SHOAL_STEP_PHASE_TRANSFER = 500,
  SHOAL_STEP_PHASE_VERIFY = 600,
  SHOAL_STEP_PHASE_FINISH = 700,
} ShoalStepPhase;

/**
 * ShoalStepFlags:
 * @SHOAL_STEP_FLAGS_NONE: none of the below
 * @SHOAL_STEP_FLAGS_READS_IMAGE: the step reads the image its recipe names
 *   (the recipe's "image") from the daemon's image store, unless its
 *   options name a store or a file of its own ("store", "image-path"):
 *   Deploy refuses a device whose recipe has such a step and names an
 *   image the store does not hold
 *
 * What the core needs to know of what a step does, whatever its name.
 */
typedef enum {
  SHOAL_STEP_FLAGS_NONE = 0,
  SHOAL_STEP_FLAGS_READS_IMAGE = 1 << 0,
} ShoalStepFlags;

#define SHOAL_TYPE_STEP (shoal_step_get_type ())

G_DECLARE_INTERFACE (ShoalStep, shoal_step, SHOAL, STEP, GObject)

/**
 * ShoalStepInterface:
 * @get_scope: returns the scope; the default is %SHOAL_STEP_SCOPE_DEVICE
 * @get_phase: returns the phase; the default is %SHOAL_STEP_PHASE_BOOT
 * @validate_options: checks the options a recipe gives the step, before any
 *   device runs it; the default accepts anything
 * @run_async: starts the step; the default runs @run in a worker thread
 * @run_finish: finishes the step started with @run_async; the default
 *   propagates the boolean of a #GTask whose source object is the step
 * @run: a blocking implementation, run in a worker thread by the default
 *   @run_async; the safer choice for Python plugins
 * @get_flags: returns what the core needs to know of the step; the default
 *   is %SHOAL_STEP_FLAGS_NONE
 *
 * The virtual functions a step plugin implements: @run_async and
 * @run_finish, or @run alone.
 */
struct _ShoalStepInterface
{
  GTypeInterface parent_iface;

  ShoalStepScope (*get_scope)        (ShoalStep            *self);
  ShoalStepPhase (*get_phase)        (ShoalStep            *self);
  gboolean       (*validate_options) (ShoalStep            *self,
                                      JsonObject           *options,
                                      GError              **error);
  void           (*run_async)        (ShoalStep            *self,
                                      ShoalStepContext     *context,
                                      GCancellable         *cancellable,
                                      GAsyncReadyCallback   callback,
                                      gpointer              user_data);
  gboolean       (*run_finish)       (ShoalStep            *self,
                                      GAsyncResult         *result,
                                      GError              **error);
  gboolean       (*run)              (ShoalStep            *self,
                                      ShoalStepContext     *context,
                                      GCancellable         *cancellable,
                                      GError              **error);
  ShoalStepFlags (*get_flags)        (ShoalStep            *self);

  /*< private >*/
  gpointer padding[11];
};

ShoalStepScope shoal_step_get_scope        (ShoalStep            *self);
ShoalStepPhase shoal_step_get_phase        (ShoalStep            *self);
ShoalStepFlags shoal_step_get_flags        (ShoalStep            *self);
gboolean       shoal_step_validate_options (ShoalStep            *self,
                                            JsonObject           *options,
                                            GError              **error);
void           shoal_step_run_async        (ShoalStep            *self,
                                            ShoalStepContext     *context,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
gboolean       shoal_step_run_finish       (ShoalStep            *self,
                                            GAsyncResult         *result,
                                            GError              **error);

const gchar   *shoal_step_scope_to_string  (ShoalStepScope        scope);
const gchar   *shoal_step_phase_to_string  (ShoalStepPhase        phase);
gboolean       shoal_step_phase_from_string (const gchar         *str,
                                             ShoalStepPhase      *phase);

G_END_DECLS
