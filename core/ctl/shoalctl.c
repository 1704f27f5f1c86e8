/* shoalctl.c: the command-line client of shoald
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <locale.h>
#include <stdlib.h>

#include "shoal-error.h"
#include "shoalctl.h"

static const struct
{
  const gchar         *name;
  ShoalCtlCommandFunc  func;
  const gchar         *usage;
  const gchar         *summary;
} commands[] = {
  { "devices", shoalctl_cmd_devices, "", N_("List the devices") },
  { "show", shoalctl_cmd_show, "<id>", N_("Show a device, its inventory and recipe commit") },
  { "enroll", shoalctl_cmd_enroll, "<id> [--mac MAC]... [--uuid UUID] | --count N [--prefix P]", N_("Enroll devices") },
  { "remove", shoalctl_cmd_remove, "<id>", N_("Forget a device and its journal; a device being deployed must be cancelled first (shoalctl cancel <id>)") },
  { "assign", shoalctl_cmd_assign, "<recipe|--auto> <id...|--all>", N_("Assign a recipe") },
  { "deploy", shoalctl_cmd_deploy, "<id...|--all>", N_("Start deployments") },
  { "cancel", shoalctl_cmd_cancel, "<id...|--all>", N_("Cancel deployments") },
  { "remove-mac", shoalctl_cmd_remove_mac, "<id> <mac>", N_("Take a MAC address off a device (its NIC went into another machine); a device being deployed must be cancelled first") },
  { "boot-action", shoalctl_cmd_boot_action, "<id> <deploy|local|ignore>", N_("Set what a device's next network boot does") },
  { "log", shoalctl_cmd_log, "<id> [--follow] [--until-done]", N_("Show a device's journal") },
  { "watch", shoalctl_cmd_watch, "[--until-done]", N_("Watch every device live") },
  { "steps", shoalctl_cmd_steps, "", N_("List the steps plugins provide") },
  { "plugins", shoalctl_cmd_plugins, "", N_("List the plugins, loaded or not") },
  { "recipes", shoalctl_cmd_recipes, "", N_("List the recipes") },
  { "recipe-add", shoalctl_cmd_recipe_add, "<file.json>", N_("Add or replace a recipe") },
  { "recipe-sync", shoalctl_cmd_recipe_sync, "", N_("Fetch the recipe repository") },
  { "recipe-diff", shoalctl_cmd_recipe_diff, "<name> <from> <to>", N_("Show how a recipe changed between commits") },
  { "recipe-pin", shoalctl_cmd_recipe_pin, "<ref>", N_("Pin the recipe repository to a branch, tag or commit") },
  { "stats", shoalctl_cmd_stats, "", N_("Show the daemon's figures") },
  { "images", shoalctl_cmd_images, "", N_("List the images of the image store") },
  { "image-import", shoalctl_cmd_image_import, "<path|URL> [--name NAME] [--chunk-size BYTES]", N_("Import a disk image: raw, compressed (zstd, xz, gzip, bzip2) or qcow2; a file the daemon reads, or an http(s) URL it downloads (#sha256=HEX checks it)") },
  { "image-cancel", shoalctl_cmd_image_cancel, "<path|URL>", N_("Cancel the running imports of a file or URL (Ctrl-C during image-import does the same)") },
  { "image-show", shoalctl_cmd_image_show, "<id|name>", N_("Show an image") },
  { "image-rm", shoalctl_cmd_image_rm, "<id|name> [--force]", N_("Remove an image and the chunks no other image uses") },
  { "image-prune", shoalctl_cmd_image_prune, "[NAME] [--keep N] [--dry-run]", N_("Remove the older images of each name (of NAME), keeping the newest N (default: [image-store] keep-per-name) and every image a recipe or a running deployment names") },
  { "image-verify", shoalctl_cmd_image_verify, "<id|name>", N_("Read an image back and check every chunk against its SHA-256") },
};

static gchar *
shoalctl_describe_commands (void)
{
  GString *text = g_string_new (_("Commands:"));

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree gchar *line = g_strdup_printf ("%-12s %s", commands[i].name, commands[i].usage);

      g_string_append_printf (text, "\n  %s\n      %s", g_strchomp (line), _(commands[i].summary));
    }
  return g_string_free (text, FALSE);
}

static gboolean
shoalctl_connect (ShoalCtl *ctl, GError **error)
{
  if (ctl->session && ctl->system)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           _("--session and --system exclude each other"));
      return FALSE;
    }
  if (ctl->address != NULL)
    ctl->connection = g_dbus_connection_new_for_address_sync (ctl->address,
                                                              G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                              G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                              NULL, NULL, error);
  else
    ctl->connection = g_bus_get_sync (ctl->session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM,
                                      NULL, error);
  if (ctl->connection == NULL)
    return FALSE;
  ctl->manager = shoal_dbus_manager_proxy_new_sync (ctl->connection,
                                                    G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                                    SHOALCTL_BUS_NAME, SHOALCTL_PATH, NULL, error);
  if (ctl->manager == NULL)
    return FALSE;
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (ctl->manager), SHOALCTL_TIMEOUT_MS);
  return TRUE;
}

static void
shoalctl_clear (ShoalCtl *ctl)
{
  g_free (ctl->address);
  g_strfreev (ctl->macs);
  g_free (ctl->uuid);
  g_free (ctl->prefix);
  g_free (ctl->name);
  g_clear_object (&ctl->manager);
  g_clear_object (&ctl->connection);
}

static void
shoalctl_print_error (GError *error)
{
  g_autofree gchar *escaped = NULL;
  g_auto(GStrv) lines = NULL;
  g_autofree gchar *shown = NULL;

  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
      g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
    {
      g_printerr ("shoalctl: %s\n", _("shoald is not running on this bus"));
      return;
    }
  g_dbus_error_strip_remote_error (error);
  /* the daemon's words may quote what a device sent: escaped; several
   * lines (a recipe sync lists its problems) stay lines, indented under
   * the first, so that none passes for a line of its own */
  escaped = shoalctl_escape_lines (error->message);
  lines = g_strsplit (escaped, "\n", -1);
  shown = g_strjoinv ("\n  ", lines);
  g_printerr ("shoalctl: %s\n", shown);
}

int
main (int argc, char **argv)
{
  ShoalCtl ctl = { 0 };
  const GOptionEntry entries[] = {
    { "address", 0, 0, G_OPTION_ARG_STRING, &ctl.address, N_("Talk to shoald on the bus at this address"), N_("ADDRESS") },
    { "session", 0, 0, G_OPTION_ARG_NONE, &ctl.session, N_("Talk to shoald on the session bus"), NULL },
    { "system", 0, 0, G_OPTION_ARG_NONE, &ctl.system, N_("Talk to shoald on the system bus (the default)"), NULL },
    { "mac", 0, 0, G_OPTION_ARG_STRING_ARRAY, &ctl.macs, N_("enroll: a MAC address of the device (repeatable)"), N_("MAC") },
    { "uuid", 0, 0, G_OPTION_ARG_STRING, &ctl.uuid, N_("enroll: the SMBIOS UUID of the device"), N_("UUID") },
    { "count", 0, 0, G_OPTION_ARG_INT, &ctl.count, N_("enroll: enroll N devices at once"), N_("N") },
    { "prefix", 0, 0, G_OPTION_ARG_STRING, &ctl.prefix, N_("enroll: the id prefix of a batch (default sim-)"), N_("PREFIX") },
    { "auto", 0, 0, G_OPTION_ARG_NONE, &ctl.auto_recipe, N_("assign: pick each device's recipe by matching"), NULL },
    { "all", 0, 0, G_OPTION_ARG_NONE, &ctl.all, N_("assign, deploy, cancel: every device"), NULL },
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &ctl.follow, N_("log: print new entries as they come"), NULL },
    { "until-done", 0, 0, G_OPTION_ARG_NONE, &ctl.until_done, N_("log, watch: stop when the deployments ended"), NULL },
    { "name", 0, 0, G_OPTION_ARG_STRING, &ctl.name, N_("image-import: the image name (default: from the file name)"), N_("NAME") },
    { "chunk-size", 0, 0, G_OPTION_ARG_INT, &ctl.chunk_size, N_("image-import: bytes per chunk, a power of two (default 1 MiB)"), N_("BYTES") },
    { "force", 0, 0, G_OPTION_ARG_NONE, &ctl.force, N_("image-rm: remove the image even if running deployments' recipes name it"), NULL },
    { "keep", 0, 0, G_OPTION_ARG_INT, &ctl.keep, N_("image-prune: how many images of each name to keep, the newest"), N_("N") },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &ctl.dry_run, N_("image-prune: remove nothing, show what would be removed"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *description = NULL;
  gint status = EXIT_FAILURE;

  ctl.keep = SHOALCTL_KEEP_UNSET;
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  /* map org.shoal.Shoal1.Error.* to SHOAL_ERROR */
  (void) SHOAL_ERROR;

  context = g_option_context_new (_("COMMAND [ARGUMENTS...]"));
  g_option_context_set_summary (context, _("Drives shoald, the fleet OS deployment daemon."));
  description = shoalctl_describe_commands ();
  g_option_context_set_description (context, description);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      shoalctl_print_error (error);
      shoalctl_clear (&ctl);
      return EXIT_FAILURE;
    }
  if (argc < 2)
    {
      g_autofree gchar *help = g_option_context_get_help (context, TRUE, NULL);

      g_printerr ("%s", help);
      shoalctl_clear (&ctl);
      return EXIT_FAILURE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (g_strcmp0 (argv[1], commands[i].name) != 0)
        continue;
      if (shoalctl_connect (&ctl, &error) && commands[i].func (&ctl, argv + 2, &error))
        status = EXIT_SUCCESS;
      break;
    }
  if (status != EXIT_SUCCESS && error == NULL)
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
                 _("Unknown command “%s” (see shoalctl --help)"), argv[1]);
  if (error != NULL)
    shoalctl_print_error (error);
  shoalctl_clear (&ctl);
  return status;
}
