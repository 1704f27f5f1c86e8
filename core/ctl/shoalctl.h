/* shoalctl.h: what the parts of shoalctl share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-dbus-generated.h"

G_BEGIN_DECLS

#define SHOALCTL_BUS_NAME "org.shoal.Shoal1"
#define SHOALCTL_PATH "/org/shoal/Shoal1"
#define SHOALCTL_DEVICES_PATH "/org/shoal/Shoal1/devices"
#define SHOALCTL_DEVICE_IFACE "org.shoal.Shoal1.Device"
/* image-prune without --keep: the daemon's [image-store] keep-per-name */
#define SHOALCTL_KEEP_UNSET G_MININT
/* long enough for batches of many thousands of devices */
#define SHOALCTL_TIMEOUT_MS (10 * 60 * 1000)

typedef struct
{
  /* options */
  gchar            *address;
  gboolean          session;
  gboolean          system;
  gchar           **macs;
  gchar            *uuid;
  gint              count;
  gchar            *prefix;
  gboolean          auto_recipe;
  gboolean          all;
  gboolean          follow;
  gboolean          until_done;
  gchar            *name;
  gint              chunk_size;
  gboolean          force;
  gint              keep;        /* SHOALCTL_KEEP_UNSET: not given */
  gboolean          dry_run;

  /* state */
  GDBusConnection  *connection;
  ShoalDBusManager *manager;
} ShoalCtl;

typedef gboolean (*ShoalCtlCommandFunc) (ShoalCtl     *ctl,
                                         gchar       **args,
                                         GError      **error);

/* shoalctl-util.c */
gchar      *shoalctl_escape               (const gchar  *text);
gchar      *shoalctl_escape_lines         (const gchar  *text);
void        shoalctl_print_field          (const gchar  *label,
                                           const gchar  *value);
gchar      *shoalctl_device_path          (const gchar  *id);
gboolean    shoalctl_device_error         (const gchar  *id,
                                           GError      **error,
                                           GError       *error_local);
GVariant   *shoalctl_get_managed_objects  (ShoalCtl     *ctl,
                                           GError      **error);
gchar     **shoalctl_list_device_ids      (ShoalCtl     *ctl,
                                           GError      **error);
typedef gboolean (*ShoalCtlDeviceFilter) (GVariant *props);
gchar     **shoalctl_list_device_ids_where (ShoalCtl    *ctl,
                                           ShoalCtlDeviceFilter keep,
                                           GError      **error);
gboolean    shoalctl_state_is_active      (const gchar  *state);
gboolean    shoalctl_state_is_final       (const gchar  *state);
gchar      *shoalctl_format_time          (gint64        time_us);
gchar      *shoalctl_progress_bar         (gdouble       fraction,
                                           guint         width);
gboolean    shoalctl_check_args           (gchar       **args,
                                           guint         min,
                                           guint         max,
                                           const gchar  *usage,
                                           GError      **error);

typedef struct _ShoalCtlTable ShoalCtlTable;
ShoalCtlTable *shoalctl_table_new         (const gchar  *first_header,
                                           ...) G_GNUC_NULL_TERMINATED;
void        shoalctl_table_add_row        (ShoalCtlTable *table,
                                           const gchar   *first_cell,
                                           ...) G_GNUC_NULL_TERMINATED;
void        shoalctl_table_print          (ShoalCtlTable *table);
void        shoalctl_table_free           (ShoalCtlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalCtlTable, shoalctl_table_free)

/* shoalctl-devices.c */
gboolean    shoalctl_cmd_devices          (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_show             (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_enroll           (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_remove           (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_assign           (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_deploy           (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_cancel           (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_boot_action      (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_remove_mac       (ShoalCtl *ctl, gchar **args, GError **error);

/* shoalctl-log.c */
gboolean    shoalctl_cmd_log              (ShoalCtl *ctl, gchar **args, GError **error);

/* shoalctl-watch.c */
gboolean    shoalctl_cmd_watch            (ShoalCtl *ctl, gchar **args, GError **error);

/* shoalctl-images.c: the image store */
gboolean    shoalctl_cmd_images           (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_image_import     (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_image_cancel     (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_image_show       (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_image_rm         (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_image_prune      (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_image_verify     (ShoalCtl *ctl, gchar **args, GError **error);

/* shoalctl-daemon.c: steps, plugins, recipes, stats */
gboolean    shoalctl_cmd_steps            (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_plugins          (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_recipes          (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_recipe_add       (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_recipe_sync      (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_recipe_diff      (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_recipe_pin       (ShoalCtl *ctl, gchar **args, GError **error);
gboolean    shoalctl_cmd_stats            (ShoalCtl *ctl, gchar **args, GError **error);

G_END_DECLS
