/* shoal-pxe-policy.c: the controller's word on every DHCP and TFTP request
 *
 * A PXE request is a device's "install me" (claim 15): the device is
 * registered if new (shoal_context_device_seen), then its boot action
 * decides: deploy and local boot both chain into iPXE (whose script then
 * deploys or boots the disk), ignore gets no answer at all. A plain DHCP
 * client (an installed OS, an initramfs) registers nothing; in
 * authoritative mode it gets an address, unless its device is ignored.
 * Every answer goes to the device's journal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>

#include <string.h>

#include "shoal-pxe-net.h"
#include "shoal-pxe-path.h"
#include "shoal-pxe-state.h"

static ShoalDevice *
device_for_request (ShoalPxeState *state, const ShoalPxeDhcpMessage *request,
                    const ShoalPxeBootChoice *choice, const gchar *mac)
{
  g_autofree gchar *uuid = shoal_pxe_dhcp_message_get_uuid (request);
  g_autoptr(GError) error = NULL;
  ShoalDevice *device;

  if (choice->kind == SHOAL_PXE_CLIENT_PLAIN)
    return shoal_context_lookup_device_by_mac (state->context, mac);
  device = shoal_context_device_seen (state->context, mac, uuid, "dhcp", &error);
  /* a MAC and a UUID of different devices (journaled on them): no answer,
   * the firmware boots its disk */
  if (device == NULL && (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS) ||
                         g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_BUSY)))
    g_info ("%s not answered: %s", mac, error->message);
  else if (device == NULL)
    g_warning ("cannot register %s: %s", mac, error->message);
  return device;
}

static void
note_client (ShoalDevice *device, const ShoalPxeBootChoice *choice)
{
  g_autofree gchar *arch = g_strdup_printf ("%d", choice->arch);

  shoal_device_set_metadata (device, "pxe.client", shoal_pxe_boot_kind_to_string (choice->kind));
  if (choice->arch >= 0)
    shoal_device_set_metadata (device, "pxe.arch", arch);
}

gboolean
shoal_pxe_policy_dhcp (ShoalPxeDhcpServer        *server,
                       const ShoalPxeDhcpMessage *request,
                       ShoalPxeBootChoice        *choice,
                       gpointer                   user_data)
{
  ShoalPxeState *state = user_data;
  g_autofree gchar *mac = shoal_pxe_dhcp_message_get_mac (request);
  const gchar *type = shoal_pxe_dhcp_type_to_string (shoal_pxe_dhcp_message_get_type (request));
  ShoalDevice *device = device_for_request (state, request, choice, mac);
  ShoalBootAction action;

  if (device == NULL)
    return choice->kind == SHOAL_PXE_CLIENT_PLAIN;
  action = shoal_context_get_boot_action (state->context, device);
  if (action == SHOAL_BOOT_ACTION_IGNORE)
    {
      shoal_device_log (device, "pxe", "dhcp", SHOAL_JOURNAL_RESULT_INFO,
                        "%s from %s ignored: the device is set to be ignored", type, mac);
      return FALSE;
    }
  note_client (device, choice);
  if (action == SHOAL_BOOT_ACTION_LOCAL &&
      (choice->kind == SHOAL_PXE_CLIENT_PXE || choice->kind == SHOAL_PXE_CLIENT_HTTP_BOOT))
    {
      /* Firmware that is not iPXE yet gets no boot file (ProxyDHCP: no
       * answer at all), so it moves on to its disk at once instead of
       * loading iPXE only to be told to exit */
      g_clear_pointer (&choice->filename, g_free);
    }
  g_debug ("%s from %s (%s client, arch %d, action %s)", type, mac,
           shoal_pxe_boot_kind_to_string (choice->kind), choice->arch,
           shoal_boot_action_to_string (action));
  return TRUE;
}

/* what was actually sent goes to the journal */
static void
on_dhcp_replied (ShoalPxeDhcpServer *server, const gchar *mac, const gchar *type,
                 const gchar *address, const gchar *file, gpointer user_data)
{
  ShoalPxeState *state = user_data;
  ShoalDevice *device = shoal_context_lookup_device_by_mac (state->context, mac);

  if (device == NULL)
    return;
  shoal_device_log (device, "pxe", "dhcp", SHOAL_JOURNAL_RESULT_OK,
                    "%s to %s: address %s, boot file %s", type, mac,
                    address != NULL ? address : "none", file != NULL ? file : "none");
}

void
shoal_pxe_policy_connect_dhcp (ShoalPxeState *state)
{
  g_signal_connect (state->dhcp, "replied", G_CALLBACK (on_dhcp_replied), state);
}

ShoalDevice *
shoal_pxe_policy_device_for_ip (ShoalPxeState *state, const gchar *ip)
{
  g_autofree gchar *mac = state->dhcp != NULL ? shoal_pxe_dhcp_server_lookup_mac (state->dhcp, ip) : NULL;

  if (mac == NULL)
    return NULL;
  return shoal_context_lookup_device_by_mac (state->context, mac);
}

static void
on_tftp_finished (ShoalPxeTftpServer *server, const gchar *client, const gchar *path,
                  guint64 bytes, const gchar *error, gpointer user_data)
{
  ShoalPxeState *state = user_data;
  ShoalDevice *device = shoal_pxe_policy_device_for_ip (state, client);

  if (device == NULL)
    {
      g_info ("TFTP %s to %s (no known device): %s", path, client, error != NULL ? error : "done");
      return;
    }
  shoal_device_set_metadata (device, "pxe.ip", client);
  if (error != NULL)
    shoal_device_log (device, "pxe", "tftp", SHOAL_JOURNAL_RESULT_FAILED,
                      "%s to %s: %s", path, client, error);
  else
    shoal_device_log (device, "pxe", "tftp", SHOAL_JOURNAL_RESULT_OK,
                      "%s to %s: %" G_GUINT64_FORMAT " bytes", path, client, bytes);
}

void
shoal_pxe_policy_connect_tftp (ShoalPxeState *state)
{
  g_signal_connect (state->tftp, "transfer-finished", G_CALLBACK (on_tftp_finished), state);
}

/* The path of an iPXE loader, symlinks resolved: Debian's
 * /usr/lib/ipxe/ipxe.efi points to /boot/ipxe.efi, which a confined open
 * refuses. Only the two loader names are looked up, in the configured
 * (trusted) directory; names from clients never reach this. */
gchar *
shoal_pxe_policy_loader_path (ShoalPxeState *state,
                              const gchar   *name)
{
  g_autofree gchar *link = NULL;
  char *real;
  gchar *path;

  if (g_strcmp0 (name, state->boot.bios_file) != 0 && g_strcmp0 (name, state->boot.uefi_file) != 0)
    return NULL;
  link = g_build_filename (state->ipxe_dir, name, NULL);
  real = realpath (link, NULL);
  if (real == NULL)
    return NULL;
  path = g_strdup (real);
  free (real);
  return path;
}

/* the iPXE loaders come from Debian's ipxe package, wherever it is; the
 * rest from the boot files directory */
GBytes *
shoal_pxe_policy_tftp_file (ShoalPxeTftpServer *server, const gchar *path,
                            const gchar *client, gpointer user_data)
{
  ShoalPxeState *state = user_data;
  g_autofree gchar *loader = NULL;
  gchar *contents = NULL;
  gsize len = 0;

  if (g_strcmp0 (path, "boot.ipxe") == 0)
    {
      /* for clients configured to ask for boot.ipxe: chain to the script */
      gchar *script = g_strdup_printf ("#!ipxe\nchain %s/boot/ipxe?mac=${net0/mac}&uuid=${uuid}\n",
                                       state->http_base);
      return g_bytes_new_take (script, strlen (script));
    }
  loader = shoal_pxe_policy_loader_path (state, path);
  if (loader == NULL)
    return NULL;
  /* read, not mapped (a transfer copies from these bytes: a mapping of
   * a file truncated meanwhile would raise SIGBUS); loaders are small */
  if (!g_file_get_contents (loader, &contents, &len, NULL))
    return NULL;
  return g_bytes_new_take (contents, len);
}
