/* shoal-dbus-util.c: helpers shared by the D-Bus objects of shoald
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-dbus-util.h"
#include "shoal-error.h"

/**
 * shoal_dbus_device_path:
 * @id: a device id
 *
 * Returns: (transfer full): the object path of the device @id
 */
gchar *
shoal_dbus_device_path (const gchar *id)
{
  g_autofree gchar *escaped = g_dbus_escape_object_path (id);

  return g_strconcat (SHOAL_DBUS_DEVICES_PATH "/", escaped, NULL);
}

/**
 * shoal_dbus_normalize_mac:
 * @mac: a MAC address as a caller gave it: six hex pairs separated by
 *   colons or dashes, in either case
 *
 * Returns: (transfer full) (nullable): @mac in lower case with colons, or
 *   %NULL if it is not a MAC address
 */
gchar *
shoal_dbus_normalize_mac (const gchar *mac)
{
  g_autoptr(GString) out = g_string_sized_new (17);

  if (strlen (mac) != 17)
    return NULL;
  for (guint i = 0; i < 17; i++)
    {
      if (i % 3 == 2)
        {
          if (mac[i] != ':' && mac[i] != '-')
            return NULL;
          g_string_append_c (out, ':');
          continue;
        }
      if (!g_ascii_isxdigit (mac[i]))
        return NULL;
      g_string_append_c (out, g_ascii_tolower (mac[i]));
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/**
 * shoal_dbus_return_error:
 * @invocation: a method call
 * @error: what went wrong
 *
 * Answers @invocation with @error. Errors of the SHOAL_ERROR domain (and of
 * GIO and GDBus) keep their D-Bus names; others become
 * org.shoal.Shoal1.Error.Failed with the original message.
 */
void
shoal_dbus_return_error (GDBusMethodInvocation *invocation, const GError *error)
{
  /* make sure the domain is registered before GDBus maps it */
  (void) SHOAL_ERROR;
  if (error->domain == SHOAL_ERROR || error->domain == G_DBUS_ERROR ||
      error->domain == G_IO_ERROR)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  g_dbus_method_invocation_return_error_literal (invocation, SHOAL_ERROR,
                                                 SHOAL_ERROR_FAILED, error->message);
}

typedef struct
{
  GDBusMethodInvocation    *invocation;
  GVariant                 *reply;
  ShoalDBusBeforeReplyFunc  before_reply;
  gpointer                  user_data;
  GDestroyNotify            destroy;
} CommitData;

static void
commit_data_free (CommitData *data)
{
  g_clear_object (&data->invocation);
  g_clear_pointer (&data->reply, g_variant_unref);
  if (data->destroy != NULL)
    data->destroy (data->user_data);
  g_free (data);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CommitData, commit_data_free)

static void
shoal_dbus_commit_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(CommitData) data = user_data;
  g_autoptr(GError) error = NULL;

  if (!shoal_controller_commit_finish (SHOAL_CONTROLLER (source), result, &error))
    {
      g_prefix_error (&error, "committing to the store: ");
      shoal_dbus_return_error (data->invocation, error);
      return;
    }
  if (data->before_reply != NULL)
    data->before_reply (data->user_data);
  g_dbus_method_invocation_return_value (data->invocation, data->reply);
}

/**
 * shoal_dbus_commit_and_return:
 * @controller: the controller
 * @invocation: (transfer none): a method call whose change is made
 * @reply: (nullable) (transfer floating): the reply, or %NULL for none
 * @before_reply: (nullable): called once the change is durable, right
 *   before the reply is sent (to flush property changes first)
 * @user_data: for @before_reply
 * @destroy: (nullable): frees @user_data
 *
 * Answers @invocation once every change made so far is durable, so that a
 * caller never sees an acknowledged change lost.
 */
void
shoal_dbus_commit_and_return (ShoalController         *controller,
                              GDBusMethodInvocation   *invocation,
                              GVariant                *reply,
                              ShoalDBusBeforeReplyFunc before_reply,
                              gpointer                 user_data,
                              GDestroyNotify           destroy)
{
  CommitData *data = g_new0 (CommitData, 1);

  data->invocation = g_object_ref (invocation);
  data->reply = reply != NULL ? g_variant_ref_sink (reply) : NULL;
  data->before_reply = before_reply;
  data->user_data = user_data;
  data->destroy = destroy;
  shoal_controller_commit_async (controller, NULL, shoal_dbus_commit_cb, data);
}
