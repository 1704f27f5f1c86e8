/* shoal-context.h: what the daemon offers plugins
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "shoal-device.h"
#include "shoal-recipe.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_CONTEXT (shoal_context_get_type ())

G_DECLARE_FINAL_TYPE (ShoalContext, shoal_context, SHOAL, CONTEXT, GObject)

const gchar  *shoal_context_get_server_url       (ShoalContext        *self);
const gchar  *shoal_context_get_state_dir        (ShoalContext        *self);
const gchar  *shoal_context_get_data_dir         (ShoalContext        *self);
gchar        *shoal_context_get_config_string    (ShoalContext        *self,
                                                  const gchar         *group,
                                                  const gchar         *key,
                                                  const gchar         *default_value);
gint64        shoal_context_get_config_int       (ShoalContext        *self,
                                                  const gchar         *group,
                                                  const gchar         *key,
                                                  gint64               default_value);
gboolean      shoal_context_add_http_handler     (ShoalContext        *self,
                                                  const gchar         *path,
                                                  SoupServerCallback   callback,
                                                  gpointer             user_data,
                                                  GDestroyNotify       destroy,
                                                  GError             **error);
void          shoal_context_remove_http_handler  (ShoalContext        *self,
                                                  const gchar         *path);
void          shoal_context_allow_http_body      (ShoalContext        *self,
                                                  const gchar         *path,
                                                  gint64               max_bytes);
void          shoal_context_allow_http_body_full (ShoalContext        *self,
                                                  const gchar         *path,
                                                  const gchar *const  *methods,
                                                  gint64               max_bytes);
ShoalDevice  *shoal_context_lookup_device        (ShoalContext        *self,
                                                  const gchar         *id);
ShoalDevice  *shoal_context_lookup_device_by_mac (ShoalContext        *self,
                                                  const gchar         *mac);
ShoalDevice  *shoal_context_lookup_device_by_uuid (ShoalContext       *self,
                                                  const gchar         *uuid);
ShoalDevice  *shoal_context_lookup_device_by_token (ShoalContext      *self,
                                                  const gchar         *token);
ShoalDevice  *shoal_context_device_seen          (ShoalContext        *self,
                                                  const gchar         *mac,
                                                  const gchar         *uuid,
                                                  const gchar         *source,
                                                  GError             **error);
ShoalBootAction shoal_context_get_boot_action    (ShoalContext        *self,
                                                  ShoalDevice         *device);
gchar        *shoal_context_issue_boot_token     (ShoalContext        *self,
                                                  ShoalDevice         *device);
ShoalRecipe  *shoal_context_lookup_recipe        (ShoalContext        *self,
                                                  const gchar         *name);
GPtrArray    *shoal_context_get_devices          (ShoalContext        *self);
gchar        *shoal_context_kv_get               (ShoalContext        *self,
                                                  const gchar         *ns,
                                                  const gchar         *key);
void          shoal_context_kv_set               (ShoalContext        *self,
                                                  const gchar         *ns,
                                                  const gchar         *key,
                                                  const gchar         *value);
GHashTable   *shoal_context_kv_list              (ShoalContext        *self,
                                                  const gchar         *ns);
void          shoal_context_commit_async         (ShoalContext        *self,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
gboolean      shoal_context_commit_finish        (ShoalContext        *self,
                                                  GAsyncResult        *result,
                                                  GError             **error);

G_END_DECLS
