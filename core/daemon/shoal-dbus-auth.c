/* shoal-dbus-auth.c: who may call the mutating methods of shoald
 *
 * Methods that only read are open to everyone. Every other method needs:
 * on the system bus, the caller to be root or authorized by polkit for
 * org.shoal.Shoal1.manage; on any other bus, the caller to run as the
 * daemon's own user.
 *
 * Calls are checked, and run, in the order each caller sent them. The
 * check is asynchronous (the caller's uid from the bus, then polkit, which
 * may show a dialog), so every call of a caller waits in that caller's
 * queue until those before it have run or been refused; a read-only call
 * needs no check, but still waits for them. (The check used to run from
 * GDBusInterfaceSkeleton::g-authorize-method, which GDBus emits in a
 * worker thread per call: calls sent back to back came back to the main
 * loop in whatever order their threads finished, so SetBootAction ignore,
 * local, ignore, local could leave "ignore", and EnrollDevices then
 * RemoveDevice of one id failed as often as not.) shoal_dbus_auth_watch()
 * puts the queue in front of a skeleton's method handlers by wrapping its
 * class's vtable; everything runs on the main loop.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <unistd.h>

#ifdef HAVE_POLKIT
#include <polkit/polkit.h>
#endif

#include "shoal-dbus-auth.h"
#include "shoal-error.h"

struct _ShoalDBusAuth
{
  GObject     parent_instance;

  GHashTable *read_only;  /* "interface.method" */
  GHashTable *queues;     /* caller -> GQueue of Call, the head running or being checked */
  gboolean    use_polkit;
  uid_t       daemon_uid;
  gint        n_denied;   /* atomic */
#ifdef HAVE_POLKIT
  PolkitAuthority *authority;
#endif
};

G_DEFINE_TYPE (ShoalDBusAuth, shoal_dbus_auth, G_TYPE_OBJECT)

static void
shoal_dbus_auth_finalize (GObject *object)
{
  ShoalDBusAuth *self = SHOAL_DBUS_AUTH (object);

  g_hash_table_unref (self->read_only);
  g_hash_table_unref (self->queues);
#ifdef HAVE_POLKIT
  g_clear_object (&self->authority);
#endif
  G_OBJECT_CLASS (shoal_dbus_auth_parent_class)->finalize (object);
}

static void
shoal_dbus_auth_class_init (ShoalDBusAuthClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_dbus_auth_finalize;
}

static void
shoal_dbus_auth_init (ShoalDBusAuth *self)
{
  self->read_only = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->queues = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->daemon_uid = getuid ();
}

/**
 * shoal_dbus_auth_new:
 * @use_polkit: whether callers other than root and the daemon's user are
 *   asked to polkit (the system bus); otherwise they are refused
 * @error: a #GError
 *
 * Without polkit (not built in, or not running) only root and the daemon's
 * own user may call the mutating methods.
 *
 * Returns: (transfer full): a new #ShoalDBusAuth
 */
ShoalDBusAuth *
shoal_dbus_auth_new (gboolean use_polkit, GError **error)
{
  g_autoptr(ShoalDBusAuth) self = g_object_new (SHOAL_TYPE_DBUS_AUTH, NULL);

  self->use_polkit = use_polkit;
#ifdef HAVE_POLKIT
  if (use_polkit)
    {
      g_autoptr(GError) error_local = NULL;

      self->authority = polkit_authority_get_sync (NULL, &error_local);
      if (self->authority == NULL)
        g_warning ("polkit is not available (%s): only root may change anything",
                   error_local->message);
    }
#else
  if (use_polkit)
    g_info ("built without polkit: only root may change anything");
#endif
  return g_steal_pointer (&self);
}

/**
 * shoal_dbus_auth_add_read_only:
 * @self: a #ShoalDBusAuth
 * @interface_name: a D-Bus interface
 * @method_name: one of its methods
 *
 * Marks a method as open to every caller. Call only before the objects
 * are exported.
 */
void
shoal_dbus_auth_add_read_only (ShoalDBusAuth *self,
                               const gchar   *interface_name,
                               const gchar   *method_name)
{
  g_return_if_fail (SHOAL_IS_DBUS_AUTH (self));
  g_hash_table_add (self->read_only, g_strdup_printf ("%s.%s", interface_name, method_name));
}

/* A method call waiting in its caller's queue */
typedef struct
{
  ShoalDBusAuth               *auth;
  GDBusInterfaceSkeleton      *skeleton;
  const GDBusInterfaceVTable  *inner;       /* the skeleton's own handlers */
  GDBusMethodInvocation       *invocation;  /* owned until run or answered */
  gchar                       *caller;
  gboolean                     checking;    /* its check was started */
  gboolean                     checked;     /* and is over: */
  GError                      *refused;     /* the reason it may not run */
} Call;

static void
call_free (Call *call)
{
  g_object_unref (call->auth);
  g_object_unref (call->skeleton);
  g_free (call->caller);
  g_clear_error (&call->refused);
  g_free (call);
}

static void run_queue (ShoalDBusAuth *self, const gchar *caller);

static void
call_run (Call *call)
{
  GDBusMethodInvocation *invocation = g_steal_pointer (&call->invocation);

  call->inner->method_call (g_dbus_method_invocation_get_connection (invocation),
                            g_dbus_method_invocation_get_sender (invocation),
                            g_dbus_method_invocation_get_object_path (invocation),
                            g_dbus_method_invocation_get_interface_name (invocation),
                            g_dbus_method_invocation_get_method_name (invocation),
                            g_dbus_method_invocation_get_parameters (invocation),
                            invocation, call->skeleton);
}

/* Answers a call its check refused */
static void
call_refuse (Call         *call,
             const GError *error)
{
  GDBusMethodInvocation *invocation = g_steal_pointer (&call->invocation);

  g_atomic_int_inc (&call->auth->n_denied);
  g_info ("refused %s.%s from %s: %s", g_dbus_method_invocation_get_interface_name (invocation),
          g_dbus_method_invocation_get_method_name (invocation), call->caller, error->message);
  if (error->domain != SHOAL_ERROR)
    {
      g_autoptr(GError) denied = g_error_new (SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                                              _("Not authorized: %s"), error->message);
      g_dbus_method_invocation_return_gerror (invocation, denied);
    }
  else
    g_dbus_method_invocation_return_gerror (invocation, error);
}

typedef struct
{
  ShoalDBusAuth *auth;
  gchar         *caller;
} QueueTurn;

static gboolean
run_queue_idle (gpointer user_data)
{
  QueueTurn *turn = user_data;

  run_queue (turn->auth, turn->caller);
  g_object_unref (turn->auth);
  g_free (turn->caller);
  g_free (turn);
  return G_SOURCE_REMOVE;
}

/* The check of the call at the head of its caller's queue is over (@error:
 * refused). The queue goes on from the main loop, not from within the
 * callback of the check's own D-Bus call. */
static void
call_checked (Call         *call,
              const GError *error)
{
  QueueTurn *turn = g_new0 (QueueTurn, 1);

  call->checked = TRUE;
  if (error != NULL)
    call->refused = g_error_copy (error);
  turn->auth = g_object_ref (call->auth);
  turn->caller = g_strdup (call->caller);
  g_idle_add (run_queue_idle, turn);
}

#ifdef HAVE_POLKIT
static void
on_polkit_checked (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Call *call = user_data;
  g_autoptr(PolkitAuthorizationResult) answer = NULL;
  g_autoptr(GError) error_local = NULL;
  g_autoptr(GError) error = NULL;

  answer = polkit_authority_check_authorization_finish (POLKIT_AUTHORITY (source), result, &error_local);
  if (answer == NULL)
    g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                 _("Could not check authorization with polkit: %s"), error_local->message);
  else if (!polkit_authorization_result_get_is_authorized (answer))
    g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                 _("Not authorized to manage deployments (polkit action %s)"),
                 SHOAL_DBUS_AUTH_ACTION_MANAGE);
  call_checked (call, error);
}
#endif

/* The caller runs as @uid: root and the daemon's user may; anyone else
 * asks polkit on the system bus, and is refused elsewhere */
static void
check_uid (Call  *call,
           uid_t  uid)
{
  ShoalDBusAuth *self = call->auth;
  g_autoptr(GError) error = NULL;

  if (uid == self->daemon_uid || (self->use_polkit && uid == 0))
    {
      call_checked (call, NULL);
      return;
    }
#ifdef HAVE_POLKIT
  if (self->use_polkit && self->authority != NULL)
    {
      g_autoptr(PolkitSubject) subject =
        polkit_system_bus_name_new (g_dbus_method_invocation_get_sender (call->invocation));

      polkit_authority_check_authorization (self->authority, subject, SHOAL_DBUS_AUTH_ACTION_MANAGE, NULL,
                                            POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION,
                                            NULL, on_polkit_checked, call);
      return;
    }
#endif
  g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
               _("Not authorized: %s.%s may only be called by user %u"),
               g_dbus_method_invocation_get_interface_name (call->invocation),
               g_dbus_method_invocation_get_method_name (call->invocation),
               (guint) self->daemon_uid);
  call_checked (call, error);
}

static void
on_caller_uid (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Call *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  guint32 uid = 0;

  if (reply == NULL)
    {
      g_prefix_error (&error, "identifying the caller %s: ", call->caller);
      call_checked (call, error);
      return;
    }
  g_variant_get (reply, "(u)", &uid);
  check_uid (call, (uid_t) uid);
}

/* Starts the check of a mutating call: who the caller is (the bus knows,
 * or on a peer-to-peer connection the socket), then check_uid() */
static void
call_check (Call *call)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (call->invocation);
  const gchar *sender = g_dbus_method_invocation_get_sender (call->invocation);
  g_autoptr(GError) error = NULL;

  call->checking = TRUE;
  if (sender == NULL)
    {
      GCredentials *credentials = g_dbus_connection_get_peer_credentials (connection);
      uid_t uid = credentials != NULL ? g_credentials_get_unix_user (credentials, &error) : (uid_t) -1;

      if (uid == (uid_t) -1)
        {
          if (error == NULL)
            g_set_error_literal (&error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                                 _("The caller cannot be identified"));
          call_checked (call, error);
          return;
        }
      check_uid (call, uid);
      return;
    }
  g_dbus_connection_call (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetConnectionUnixUser", g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(u)"),
                          G_DBUS_CALL_FLAGS_NONE, 5000, NULL, on_caller_uid, call);
}

static gboolean
is_read_only (ShoalDBusAuth         *self,
              GDBusMethodInvocation *invocation)
{
  g_autofree gchar *key = g_strdup_printf ("%s.%s", g_dbus_method_invocation_get_interface_name (invocation),
                                           g_dbus_method_invocation_get_method_name (invocation));

  return g_hash_table_contains (self->read_only, key);
}

/* Runs (or refuses) the calls at the head of @caller's queue that need no
 * check or whose check is over, and starts the check of the first one
 * that needs it */
static void
run_queue (ShoalDBusAuth *self,
           const gchar   *caller)
{
  GQueue *queue = g_hash_table_lookup (self->queues, caller);
  Call *call;

  while (queue != NULL && (call = g_queue_peek_head (queue)) != NULL)
    {
      if (!call->checked && !is_read_only (self, call->invocation))
        {
          if (!call->checking)
            call_check (call);
          return;
        }
      g_queue_pop_head (queue);
      if (call->refused != NULL)
        call_refuse (call, call->refused);
      else
        call_run (call);
      call_free (call);
    }
  if (queue != NULL)
    {
      g_queue_free (queue);
      g_hash_table_remove (self->queues, caller);
    }
}

#define AUTH_DATA_KEY "shoal-dbus-auth"

/* A skeleton class's own vtable and the one that queues its calls */
typedef struct
{
  const GDBusInterfaceVTable *inner;
  GDBusInterfaceVTable        queued;
} Vtables;

/* the skeleton classes shoal_dbus_auth_watch() wrapped: GType -> Vtables
 * (never freed: classes live as long as the process) */
static GHashTable *wrapped_classes;
G_LOCK_DEFINE_STATIC (wrapped_classes);

static Vtables *
vtables_of (GDBusInterfaceSkeleton *skeleton)
{
  Vtables *vtables = NULL;

  G_LOCK (wrapped_classes);
  for (GType type = G_OBJECT_TYPE (skeleton); vtables == NULL && type != 0; type = g_type_parent (type))
    vtables = g_hash_table_lookup (wrapped_classes, GSIZE_TO_POINTER (type));
  G_UNLOCK (wrapped_classes);
  g_assert (vtables != NULL);
  return vtables;
}

static void
queued_method_call (GDBusConnection       *connection,
                    const gchar           *sender,
                    const gchar           *object_path,
                    const gchar           *interface_name,
                    const gchar           *method_name,
                    GVariant              *parameters,
                    GDBusMethodInvocation *invocation,
                    gpointer               user_data)
{
  GDBusInterfaceSkeleton *skeleton = G_DBUS_INTERFACE_SKELETON (user_data);
  ShoalDBusAuth *self = g_object_get_data (G_OBJECT (skeleton), AUTH_DATA_KEY);
  Call *call = g_new0 (Call, 1);
  GQueue *queue;

  call->auth = g_object_ref (self);
  call->skeleton = g_object_ref (skeleton);
  call->inner = vtables_of (skeleton)->inner;
  call->invocation = invocation;
  call->caller = sender != NULL ? g_strdup (sender) : g_strdup_printf ("peer %p", (gpointer) connection);
  queue = g_hash_table_lookup (self->queues, call->caller);
  if (queue == NULL)
    {
      queue = g_queue_new ();
      g_hash_table_insert (self->queues, g_strdup (call->caller), queue);
    }
  g_queue_push_tail (queue, call);
  if (queue->length == 1)
    {
      /* the call may be run, and freed with its caller string, in there */
      g_autofree gchar *caller = g_strdup (call->caller);

      run_queue (self, caller);
    }
}

/* the properties are the skeleton's own; only method calls queue */
static GDBusInterfaceVTable *
queued_get_vtable (GDBusInterfaceSkeleton *skeleton)
{
  return &vtables_of (skeleton)->queued;
}

/**
 * shoal_dbus_auth_watch:
 * @self: a #ShoalDBusAuth
 * @skeleton: an interface skeleton not exported yet
 *
 * Makes every method call on @skeleton wait in its caller's queue and pass
 * the check (a mutating one) before it runs, in the order the caller sent
 * them. @self must outlive @skeleton's exports. The first skeleton of a
 * class has the class's vtable wrapped, for every instance: each of them
 * must be watched.
 */
void
shoal_dbus_auth_watch (ShoalDBusAuth          *self,
                       GDBusInterfaceSkeleton *skeleton)
{
  GDBusInterfaceSkeletonClass *klass = G_DBUS_INTERFACE_SKELETON_GET_CLASS (skeleton);

  g_return_if_fail (SHOAL_IS_DBUS_AUTH (self));
  g_object_set_data_full (G_OBJECT (skeleton), AUTH_DATA_KEY, g_object_ref (self), g_object_unref);
  G_LOCK (wrapped_classes);
  if (wrapped_classes == NULL)
    wrapped_classes = g_hash_table_new (NULL, NULL);
  if (klass->get_vtable != queued_get_vtable)
    {
      Vtables *vtables = g_new0 (Vtables, 1);

      /* the generated skeleton's vtable is static: keep a pointer to it */
      vtables->inner = klass->get_vtable (skeleton);
      vtables->queued = *vtables->inner;
      vtables->queued.method_call = queued_method_call;
      g_hash_table_insert (wrapped_classes, GSIZE_TO_POINTER (G_OBJECT_CLASS_TYPE (klass)), vtables);
      klass->get_vtable = queued_get_vtable;
    }
  G_UNLOCK (wrapped_classes);
}

/**
 * shoal_dbus_auth_get_n_denied:
 * @self: a #ShoalDBusAuth
 *
 * Returns: how many calls were refused
 */
guint64
shoal_dbus_auth_get_n_denied (ShoalDBusAuth *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_AUTH (self), 0);
  return (guint64) g_atomic_int_get (&self->n_denied);
}
