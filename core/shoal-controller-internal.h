/* shoal-controller-internal.h: what the controller's source files share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "shoal-controller-private.h"

G_BEGIN_DECLS

typedef struct _GroupRun GroupRun;

typedef struct {
  ShoalController *controller;      /* unowned */
  ShoalDevice     *device;
  ShoalPipeline   *pipeline;        /* of the current or last run */
  guint            step_index;      /* steps completed in the current run */
  gint64           run_no;
  guint64          journal_seq;
  GCancellable    *cancellable;
  guint64          attempt;         /* unique across records: see
                                     * shoal_controller_next_attempt() */
  guint            timeout_id;
  gboolean         waiting;         /* at a rendezvous */
  gboolean         queued;          /* waiting for a concurrency slot */
  gboolean         fallback;        /* queued: for the late-fallback step, in
                                     * place of its group step */
  gboolean         counted;         /* counted as expected at the rendezvous */
  gboolean         pending;         /* in a group waiting for a slot of its step */
  GroupRun        *group_run;       /* the group step it takes part in, if any */
  gchar           *inventory_json;  /* cache for the store */
  gchar           *recipe_digest;   /* of the recipe the current or last run
                                     * started with (shoal_recipe_get_digest()) */
  gboolean         recheck_recipe;  /* an inventory came during the run: the
                                     * next step's end checks the recipe */
  gchar           *uuid_key;        /* its key in by_uuid (the UUID in lower
                                     * case), NULL when it has none */
  gboolean         superseded_told; /* the agent of the deployment before
                                     * was told to reboot (journaled once) */
} DeviceRecord;

typedef struct {
  guint   running;                  /* of a group step: the late devices
                                     * running its late-fallback step */
  GQueue  waiting;                  /* DeviceRecord* */
  guint   groups;                   /* of a group step: its groups running */
  GQueue  pending;                  /* of a group step: PendingGroup*, formed
                                     * groups waiting for a free slot */
} Slot;

struct _ShoalController
{
  GObject            parent_instance;

  ShoalPluginEngine *engine;
  ShoalStore        *store;
  ShoalContext      *context;
  gchar             *state_dir;
  gchar             *data_dir;
  GKeyFile          *config;
  SoupServer        *http_server;
  gchar             *server_url;
  gboolean           auto_deploy;
  gboolean           services_started;
  guint              default_timeout; /* s; for steps whose recipe sets none */

  GHashTable        *devices;       /* id -> DeviceRecord* */
  GHashTable        *by_mac;        /* mac -> DeviceRecord* (unowned) */
  GHashTable        *by_uuid;       /* uuid, lower case -> GPtrArray of
                                     * DeviceRecord* (unowned): more than one
                                     * only in a store written before UUIDs
                                     * were unique */
  GHashTable        *by_token;      /* token -> DeviceRecord* (unowned) */
  GHashTable        *by_superseded; /* SHA-256 (hex) of the previous
                                     * deployment's claimed token ->
                                     * DeviceRecord* (unowned) */
  GHashTable        *recipes;       /* name -> ShoalRecipe* */
  GHashTable        *pipelines;     /* name -> ShoalPipeline* */
  GHashTable        *expected;      /* ShoalPipeline* -> GUINT count */
  GHashTable        *slots;         /* "ptr:index" -> Slot* */
  GHashTable        *kv;            /* "ns\x1fkey" -> value */
  GHashTable        *stored_recipes; /* names of the recipes in service from the store */
  GPtrArray         *to_resume;     /* DeviceRecord* (unowned) */
  ShoalControllerRecipeLoader recipe_loader; /* nullable: see
                                     * shoal_controller_set_recipe_loader() */
  gpointer           recipe_loader_data;
  GDestroyNotify     recipe_loader_notify;
  guint64            transitions;
  guint64            attempts;      /* the last attempt number handed out */
  /* discovery's bounds (shoal_controller_device_seen()): [controller]
   * discover-max and discover-rate (per minute, its bucket refilled
   * continuously up to one minute's worth) */
  guint              discover_max;
  guint              discover_rate;
  gdouble            discover_tokens;
  gint64             discover_refilled_us;
  gint64             discover_logged_us;
  guint64            discover_refused;
  GHashTable        *identity_noted; /* identity conflict message -> when it
                                      * was last journaled (monotonic us) */
  guint64           *group_serial;  /* the last group number, shared by the
                                     * pipelines (g_atomic_rc_box), kept in
                                     * the store across restarts */
  gint               lock_fd;       /* <state dir>/lock, flock()ed while open */
};

/* device metadata: "true" when the recipe was selected by matching */
#define RECIPE_AUTO_KEY "recipe.auto"

/* device metadata: the SHA-256 (hex) of the previous deployment's token,
 * which an agent that may still run claimed (shoal-controller-token.c) */
#define SHOAL_CONTROLLER_SUPERSEDED_KEY "agent.superseded-token"

/* A transition's journal entries and the device row that records it are
 * committed in one transaction: durable together or not at all */
#define TRANSITION_BEGIN(controller) shoal_store_begin_group ((controller)->store)
#define TRANSITION_END(controller)   shoal_store_end_group ((controller)->store)

/* shoal-controller.c */
void          shoal_controller_persist            (DeviceRecord    *rec);
DeviceRecord *shoal_controller_lookup_record      (ShoalController *self,
                                                   ShoalDevice     *device);
void          shoal_controller_save_group_serial  (ShoalController *self);
gboolean      shoal_controller_recheck_recipe     (DeviceRecord    *rec);
gchar        *shoal_controller_describe_version   (DeviceRecord    *rec);

/* shoal-controller-token.c: device tokens */
gchar        *shoal_controller_new_token           (void);
void          shoal_controller_index_tokens        (DeviceRecord    *rec);
void          shoal_controller_unindex_tokens      (DeviceRecord    *rec);
void          shoal_controller_token_new_deployment (DeviceRecord   *rec);

/* shoal-controller-run.c: running pipelines, per device and per group */
void          shoal_controller_advance            (DeviceRecord    *rec);
void          shoal_controller_commit_then_advance (DeviceRecord   *rec);
void          shoal_controller_fail_device        (DeviceRecord    *rec,
                                                   const gchar     *source,
                                                   const GError    *error);
void          shoal_controller_stop_agent         (ShoalDevice     *device,
                                                   const gchar     *reason);
Slot         *shoal_controller_get_slot           (ShoalController *self,
                                                   ShoalPipeline   *pipeline,
                                                   guint            index);
void          shoal_controller_pending_group_free (gpointer         pending);
void          shoal_controller_group_formed_cb    (ShoalPipeline   *pipeline,
                                                   guint            index,
                                                   const gchar     *group_id,
                                                   GPtrArray       *devices,
                                                   ShoalController *self);
guint         shoal_controller_count_coming_cb    (ShoalPipeline   *pipeline,
                                                   guint            index,
                                                   ShoalController *self);
void          shoal_controller_set_expected       (ShoalController *self,
                                                   ShoalPipeline   *pipeline,
                                                   gint             delta);
void          shoal_controller_uncount            (DeviceRecord    *rec);
void          shoal_controller_next_attempt       (DeviceRecord    *rec);
void          shoal_controller_leave_group        (DeviceRecord    *rec);

G_END_DECLS
