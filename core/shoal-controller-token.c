/* shoal-controller-token.c: the controller's device tokens. A device has
 * one token per deployment, handed out by its boot script; a script asked
 * for after the agent claimed it hands out a new one, the claimed one
 * refused. The token of the deployment before, when an agent claimed it,
 * is kept (as its SHA-256) for one thing only: that agent, still running
 * when the new deployment started, asks for its next instruction and is
 * told to reboot into the new deployment (shoal-agent-api.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-controller-internal.h"
#include "shoal-random-private.h"

/* Set (to "yes") when the device's agent first used this deployment's
 * token; cleared when the next deployment starts, with a new token */
#define TOKEN_CLAIMED_KEY "agent.token-claimed"

gchar *
shoal_controller_new_token (void)
{
  g_autoptr(GError) error = NULL;
  gchar *token = shoal_random_hex (16, &error);

  /* no predictable token instead (the Mersenne Twister it fell back to):
   * without the kernel's generator shoald cannot work safely */
  if (token == NULL)
    g_error ("Cannot make a device token: %s", error->message);
  return token;
}

/* Replaces the device's token: the old one no longer names it, at once */
static void
replace_token (DeviceRecord *rec)
{
  g_autofree gchar *token = shoal_controller_new_token ();
  const gchar *old = shoal_device_get_token (rec->device);

  if (old != NULL)
    g_hash_table_remove (rec->controller->by_token, old);
  shoal_device_set_token (rec->device, token);
  g_hash_table_replace (rec->controller->by_token, g_strdup (token), rec);
}

static gchar *
token_digest (const gchar *token)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, token, -1);
}

/* Makes @digest (nullable) the device's superseded token */
static void
set_superseded (DeviceRecord *rec,
                const gchar  *digest)
{
  GHashTable *by_superseded = rec->controller->by_superseded;
  const gchar *old = shoal_device_get_metadata (rec->device, SHOAL_CONTROLLER_SUPERSEDED_KEY);

  if (old != NULL && g_hash_table_lookup (by_superseded, old) == rec)
    g_hash_table_remove (by_superseded, old);
  shoal_device_set_metadata (rec->device, SHOAL_CONTROLLER_SUPERSEDED_KEY, digest);
  if (digest != NULL)
    g_hash_table_replace (by_superseded, g_strdup (digest), rec);
  rec->superseded_told = FALSE;
}

/**
 * shoal_controller_index_tokens:
 * @rec: a device record just added
 *
 * Indexes the device's token and, restored from its metadata, its
 * superseded one.
 */
void
shoal_controller_index_tokens (DeviceRecord *rec)
{
  const gchar *token = shoal_device_get_token (rec->device);
  const gchar *superseded = shoal_device_get_metadata (rec->device, SHOAL_CONTROLLER_SUPERSEDED_KEY);

  if (token != NULL)
    g_hash_table_replace (rec->controller->by_token, g_strdup (token), rec);
  if (superseded != NULL)
    g_hash_table_replace (rec->controller->by_superseded, g_strdup (superseded), rec);
}

/**
 * shoal_controller_unindex_tokens:
 * @rec: the record of a device being removed
 */
void
shoal_controller_unindex_tokens (DeviceRecord *rec)
{
  const gchar *token = shoal_device_get_token (rec->device);
  const gchar *superseded = shoal_device_get_metadata (rec->device, SHOAL_CONTROLLER_SUPERSEDED_KEY);

  if (token != NULL)
    g_hash_table_remove (rec->controller->by_token, token);
  if (superseded != NULL && g_hash_table_lookup (rec->controller->by_superseded, superseded) == rec)
    g_hash_table_remove (rec->controller->by_superseded, superseded);
}

/**
 * shoal_controller_token_new_deployment:
 * @rec: a device whose next deployment starts
 *
 * Each deployment has a token of its own (the boot script hands it out):
 * whoever held the previous one (on the kernel command line of the last
 * boot, in the agent it ran) is refused from now on. When an agent
 * claimed the previous one, it may still be running (the agent of a
 * failed or cancelled deployment, waiting), and its next request for an
 * instruction is answered with a reboot: that token becomes the
 * superseded one. One that nobody claimed leaves the superseded token as
 * it was (deployed twice before the machine rebooted: the agent still
 * running holds the older one).
 */
void
shoal_controller_token_new_deployment (DeviceRecord *rec)
{
  ShoalDevice *device = rec->device;
  const gchar *token = shoal_device_get_token (device);

  if (token != NULL && shoal_device_get_metadata (device, TOKEN_CLAIMED_KEY) != NULL)
    {
      g_autofree gchar *digest = token_digest (token);

      set_superseded (rec, digest);
    }
  replace_token (rec);
  shoal_device_set_metadata (device, TOKEN_CLAIMED_KEY, NULL);
}

/**
 * shoal_controller_token_claimed:
 * @self: a controller
 * @device: the device a request's token named
 *
 * Notes that the device's agent (its loader's first request, POST
 * /agent/v1/inventory) has used its token: the next boot script request
 * gets a new one (shoal_controller_issue_boot_token()). The machine runs
 * this deployment's loader, so no agent of the deployment before runs
 * any more: its superseded token is refused from now on.
 */
void
shoal_controller_token_claimed (ShoalController *self,
                                ShoalDevice     *device)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);

  if (rec == NULL || shoal_device_get_metadata (device, TOKEN_CLAIMED_KEY) != NULL)
    return;
  shoal_device_set_metadata (device, TOKEN_CLAIMED_KEY, "yes");
  if (shoal_device_get_metadata (device, SHOAL_CONTROLLER_SUPERSEDED_KEY) != NULL)
    set_superseded (rec, NULL);
  shoal_controller_persist (rec);
}

/**
 * shoal_controller_issue_boot_token:
 * @self: a controller
 * @device: a device a boot script is made for
 *
 * The token to put in @device's boot script (the kernel command line and
 * the boot file URLs). Until the device's agent has claimed its token
 * (shoal_controller_token_claimed()), the same one, so that a machine
 * that boots again before its agent started gets what it had; after, a
 * new one, the claimed one refused at once, with a warning in the
 * device's journal: whoever asks for the script then (the machine booting
 * again, or someone who knows its MAC address) locks the holder of the
 * old token out, visibly, instead of sharing it.
 *
 * A new token is durable after the next commit
 * (shoal_controller_commit_async()): hand it out only then.
 *
 * Returns: (transfer full) (nullable): the token
 */
gchar *
shoal_controller_issue_boot_token (ShoalController *self,
                                   ShoalDevice     *device)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  if (rec == NULL)
    return NULL;
  if (shoal_device_get_metadata (device, TOKEN_CLAIMED_KEY) != NULL)
    {
      TRANSITION_BEGIN (self);
      replace_token (rec);
      shoal_device_set_metadata (device, TOKEN_CLAIMED_KEY, NULL);
      shoal_device_log (device, "controller", "token", SHOAL_JOURNAL_RESULT_WARNING,
                        "the boot script was requested again after the agent claimed its token: "
                        "a new token was issued; an earlier holder is locked out");
      shoal_controller_persist (rec);
      TRANSITION_END (self);
    }
  return shoal_device_dup_token (device);
}

/**
 * shoal_controller_lookup_device_by_superseded_token:
 * @self: a controller
 * @token: (nullable): a token an agent presented
 *
 * The device whose previous deployment's agent claimed @token, while no
 * agent has claimed the token of its deployment since. Such an agent may
 * be told to reboot, and nothing else.
 *
 * Returns: (transfer none) (nullable): the device
 */
ShoalDevice *
shoal_controller_lookup_device_by_superseded_token (ShoalController *self,
                                                    const gchar     *token)
{
  g_autofree gchar *digest = NULL;
  DeviceRecord *rec;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (self), NULL);
  if (token == NULL || g_hash_table_size (self->by_superseded) == 0)
    return NULL;
  digest = token_digest (token);
  rec = g_hash_table_lookup (self->by_superseded, digest);
  return rec != NULL ? rec->device : NULL;
}

/**
 * shoal_controller_superseded_agent_told:
 * @self: a controller
 * @device: a device found by shoal_controller_lookup_device_by_superseded_token()
 *
 * Journals, once a deployment, that the agent of the deployment before was
 * told to reboot.
 */
void
shoal_controller_superseded_agent_told (ShoalController *self,
                                        ShoalDevice     *device)
{
  DeviceRecord *rec = shoal_controller_lookup_record (self, device);

  if (rec == NULL || rec->superseded_told)
    return;
  rec->superseded_told = TRUE;
  shoal_device_log (device, "controller", "token", SHOAL_JOURNAL_RESULT_INFO,
                    "the agent of an earlier deployment, still running, asked for its next instruction: "
                    "told to reboot, to network-boot into deployment %" G_GINT64_FORMAT,
                    rec->run_no);
}
