/* shoal-pxe-boot-step.c: the "pxe-boot" step (per device, phase BOOT)
 *
 * Completes when the device has fetched its agent loader (kernel and
 * initrd) over HTTP: the pxe service's /boot/files route posts the
 * device event "booted" (an event posted before the step runs counts).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-pxe-boot-step.h"

struct _ShoalPxeBootStep
{
  GObject parent_instance;
};

static void shoal_pxe_boot_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalPxeBootStep, shoal_pxe_boot_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_pxe_boot_step_iface_init))

static void
on_booted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalStepContext *ctx = g_task_get_task_data (task);
  ShoalDevice *device = SHOAL_DEVICE (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (device, result, &error);

  if (payload == NULL)
    {
      shoal_step_context_log (ctx, device, "pxe-boot", SHOAL_JOURNAL_RESULT_FAILED, "%s", error->message);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  shoal_step_context_log (ctx, device, "pxe-boot", SHOAL_JOURNAL_RESULT_OK,
                          "the device fetched its agent loader");
  g_task_return_boolean (task, TRUE);
}

static void
shoal_pxe_boot_step_run_async (ShoalStep           *step,
                               ShoalStepContext    *ctx,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);
  ShoalDevice *device = shoal_step_context_get_device (ctx);

  g_task_set_source_tag (task, shoal_pxe_boot_step_run_async);
  g_task_set_task_data (task, g_object_ref (ctx), g_object_unref);
  if (device == NULL)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                               "pxe-boot runs for one device");
      return;
    }
  shoal_step_context_log (ctx, device, "pxe-boot", SHOAL_JOURNAL_RESULT_INFO,
                          "waiting for the device to network-boot its agent loader");
  shoal_device_wait_event_async (device, "booted", cancellable, on_booted, g_steal_pointer (&task));
}

static ShoalStepScope
shoal_pxe_boot_step_get_scope (ShoalStep *step)
{
  return SHOAL_STEP_SCOPE_DEVICE;
}

static ShoalStepPhase
shoal_pxe_boot_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_BOOT;
}

static void
shoal_pxe_boot_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_scope = shoal_pxe_boot_step_get_scope;
  iface->get_phase = shoal_pxe_boot_step_get_phase;
  iface->run_async = shoal_pxe_boot_step_run_async;
}

static void
shoal_pxe_boot_step_class_init (ShoalPxeBootStepClass *klass)
{
}

static void
shoal_pxe_boot_step_class_finalize (ShoalPxeBootStepClass *klass)
{
}

static void
shoal_pxe_boot_step_init (ShoalPxeBootStep *self)
{
}

void
shoal_pxe_boot_step_register_types (GTypeModule *module)
{
  shoal_pxe_boot_step_register_type (module);
}
