/* shoal-dbus-auth.c: who may call the mutating methods of shoald
 *
 * Methods that only read are open to everyone. Every other method needs:
 * on the system bus, the caller to be root or authorized by polkit for
 * org.shoal.Shoal1.manage; on any other bus, the caller to run as the
 * daemon's own user.
 *
 * The check runs from GDBusInterfaceSkeleton::g-authorize-method, which
 * GDBus emits in a worker thread, so it may block (the polkit dialog);
 * the method itself then runs on the main loop. Everything this object
 * reads there is fixed once the daemon is started.
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

static gboolean
shoal_dbus_auth_get_caller_uid (GDBusMethodInvocation *invocation,
                                uid_t                 *uid,
                                GError               **error)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const gchar *sender = g_dbus_method_invocation_get_sender (invocation);
  g_autoptr(GVariant) reply = NULL;
  guint32 value = 0;

  if (sender == NULL)
    {
      /* a peer-to-peer connection: ask the socket */
      GCredentials *credentials = g_dbus_connection_get_peer_credentials (connection);
      uid_t peer_uid;

      if (credentials == NULL)
        {
          g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                               _("The caller cannot be identified"));
          return FALSE;
        }
      peer_uid = g_credentials_get_unix_user (credentials, error);
      if (peer_uid == (uid_t) -1)
        return FALSE;
      *uid = peer_uid;
      return TRUE;
    }

  reply = g_dbus_connection_call_sync (connection,
                                       "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus",
                                       "GetConnectionUnixUser",
                                       g_variant_new ("(s)", sender),
                                       G_VARIANT_TYPE ("(u)"),
                                       G_DBUS_CALL_FLAGS_NONE,
                                       5000, NULL, error);
  if (reply == NULL)
    {
      g_prefix_error (error, "identifying the caller %s: ", sender);
      return FALSE;
    }
  g_variant_get (reply, "(u)", &value);
  *uid = (uid_t) value;
  return TRUE;
}

#ifdef HAVE_POLKIT
static gboolean
shoal_dbus_auth_ask_polkit (ShoalDBusAuth         *self,
                            GDBusMethodInvocation *invocation,
                            GError               **error)
{
  g_autoptr(PolkitSubject) subject = NULL;
  g_autoptr(PolkitAuthorizationResult) result = NULL;
  g_autoptr(GError) error_local = NULL;

  subject = polkit_system_bus_name_new (g_dbus_method_invocation_get_sender (invocation));
  result = polkit_authority_check_authorization_sync (self->authority,
                                                      subject,
                                                      SHOAL_DBUS_AUTH_ACTION_MANAGE,
                                                      NULL,
                                                      POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION,
                                                      NULL,
                                                      &error_local);
  if (result == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                   _("Could not check authorization with polkit: %s"),
                   error_local->message);
      return FALSE;
    }
  if (!polkit_authorization_result_get_is_authorized (result))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                   _("Not authorized to manage deployments (polkit action %s)"),
                   SHOAL_DBUS_AUTH_ACTION_MANAGE);
      return FALSE;
    }
  return TRUE;
}
#endif

static gboolean
shoal_dbus_auth_check_caller (ShoalDBusAuth         *self,
                              GDBusMethodInvocation *invocation,
                              GError               **error)
{
  uid_t uid = (uid_t) -1;

  if (!shoal_dbus_auth_get_caller_uid (invocation, &uid, error))
    return FALSE;
  if (uid == self->daemon_uid || (self->use_polkit && uid == 0))
    return TRUE;
#ifdef HAVE_POLKIT
  if (self->use_polkit && self->authority != NULL)
    return shoal_dbus_auth_ask_polkit (self, invocation, error);
#endif
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
               _("Not authorized: %s.%s may only be called by user %u"),
               g_dbus_method_invocation_get_interface_name (invocation),
               g_dbus_method_invocation_get_method_name (invocation),
               (guint) self->daemon_uid);
  return FALSE;
}

/**
 * shoal_dbus_auth_check:
 * @self: a #ShoalDBusAuth
 * @invocation: a method call
 *
 * Decides whether the caller may make @invocation; if not, answers it with
 * org.shoal.Shoal1.Error.PermissionDenied. May block: call it from a worker
 * thread (GDBus emits g-authorize-method in one).
 *
 * Returns: %TRUE if the method may run
 */
gboolean
shoal_dbus_auth_check (ShoalDBusAuth *self, GDBusMethodInvocation *invocation)
{
  g_autofree gchar *key = NULL;
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (SHOAL_IS_DBUS_AUTH (self), FALSE);

  key = g_strdup_printf ("%s.%s",
                         g_dbus_method_invocation_get_interface_name (invocation),
                         g_dbus_method_invocation_get_method_name (invocation));
  if (g_hash_table_contains (self->read_only, key))
    return TRUE;
  if (shoal_dbus_auth_check_caller (self, invocation, &error))
    return TRUE;

  g_atomic_int_inc (&self->n_denied);
  g_info ("refused %s from %s: %s", key,
          g_dbus_method_invocation_get_sender (invocation), error->message);
  if (error->domain != SHOAL_ERROR)
    {
      g_autoptr(GError) denied = g_error_new (SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                                              _("Not authorized: %s"), error->message);
      g_dbus_method_invocation_return_gerror (invocation, denied);
      return FALSE;
    }
  g_dbus_method_invocation_return_gerror (invocation, error);
  return FALSE;
}

static gboolean
shoal_dbus_auth_on_authorize_method (GDBusInterfaceSkeleton *skeleton,
                                     GDBusMethodInvocation  *invocation,
                                     gpointer                user_data)
{
  return shoal_dbus_auth_check (SHOAL_DBUS_AUTH (user_data), invocation);
}

/**
 * shoal_dbus_auth_watch:
 * @self: a #ShoalDBusAuth
 * @skeleton: an interface skeleton not exported yet
 *
 * Makes every method call on @skeleton pass shoal_dbus_auth_check().
 * @self must outlive @skeleton's exports.
 */
void
shoal_dbus_auth_watch (ShoalDBusAuth *self, GDBusInterfaceSkeleton *skeleton)
{
  g_return_if_fail (SHOAL_IS_DBUS_AUTH (self));
  g_signal_connect (skeleton, "g-authorize-method",
                    G_CALLBACK (shoal_dbus_auth_on_authorize_method), self);
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
