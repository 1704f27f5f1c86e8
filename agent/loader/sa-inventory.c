/* sa-inventory.c: collects the hardware inventory from /sys and /proc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-inventory.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "sa-json.h"

#define SHOAL_AGENT_VERSION "0.1.0"

/* A sysfs string made safe for JSON: printable ASCII only, trimmed */
static char *
clean (char *s)
{
  char *start, *end;

  if (s == NULL)
    return NULL;
  for (unsigned char *p = (unsigned char *) s; *p; p++)
    {
      if (*p < 0x20 || *p >= 0x7f)
        *p = (*p == '\n' || *p == '\t') ? ' ' : '?';
    }
  start = s;
  while (*start == ' ')
    start++;
  end = start + strlen (start);
  while (end > start && end[-1] == ' ')
    *--end = '\0';
  memmove (s, start, strlen (start) + 1);
  return s;
}

static char *
read_attr (const char *dir, const char *name)
{
  return clean (sa_read_filef (true, "%s/%s", dir, name));
}

/* "0x8086" -> "8086"; NULL unless it is hex of at most @width digits */
static char *
read_hex_id (const char *dir, const char *name, int width)
{
  char *raw = read_attr (dir, name);
  char *p, *endp = NULL;
  unsigned long v;
  char *out;

  if (raw == NULL)
    return NULL;
  p = raw;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
    p += 2;
  v = strtoul (p, &endp, 16);
  if (endp == p || *endp != '\0' || (width < 8 && v >> (4 * width) != 0))
    {
      free (raw);
      return NULL;
    }
  out = sa_malloc0 (16);
  snprintf (out, 16, "%0*lx", width, v);
  free (raw);
  return out;
}

static char *
link_basename (const char *dir, const char *name)
{
  char path[PATH_MAX], target[PATH_MAX];
  ssize_t n;
  const char *slash;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  n = readlink (path, target, sizeof target - 1);
  if (n <= 0)
    return NULL;
  target[n] = '\0';
  slash = strrchr (target, '/');
  return sa_strdup (slash ? slash + 1 : target);
}

static bool
path_exists (const char *dir, const char *name)
{
  char path[PATH_MAX];
  struct stat st;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  return stat (path, &st) == 0 || lstat (path, &st) == 0;
}

/* Appends ,"key":"value" (or the first member without the comma) and frees @value */
static void
member_str (SaBuf *buf, bool *first, const char *key, char *value)
{
  if (value == NULL)
    return;
  sa_buf_append_str (buf, *first ? "" : ",");
  *first = false;
  sa_json_append_string (buf, key);
  sa_buf_append (buf, ":", 1);
  sa_json_append_string (buf, value);
  free (value);
}

static void
member_int (SaBuf *buf, bool *first, const char *key, long long value)
{
  sa_buf_append_str (buf, *first ? "" : ",");
  *first = false;
  sa_json_append_string (buf, key);
  sa_buf_printf (buf, ":%lld", value);
}

static void
member_bool (SaBuf *buf, bool *first, const char *key, bool value)
{
  sa_buf_append_str (buf, *first ? "" : ",");
  *first = false;
  sa_json_append_string (buf, key);
  sa_buf_append_str (buf, value ? ":true" : ":false");
}

static int
not_dot (const struct dirent *d)
{
  return d->d_name[0] != '.';
}

typedef void (*SaEntryFunc) (SaBuf *buf, const char *dir, const char *name);

/* Calls @func for each entry of @root@dir (sorted), appending to a JSON
 * array (@first: nothing in it yet); at most @max elements, and at most
 * *@left, which counts down */
static void
json_elements_of_dir (SaBuf *buf, const char *root, const char *dir, SaEntryFunc func, bool *first,
                      int max, int *left)
{
  char path[PATH_MAX];
  struct dirent **names = NULL;
  int n;
  size_t before;

  snprintf (path, sizeof path, "%s%s", root, dir);
  n = scandir (path, &names, not_dot, alphasort);
  for (int i = 0; i < n; i++)
    {
      char entry[PATH_MAX + 512];

      snprintf (entry, sizeof entry, "%s/%s", path, names[i]->d_name);
      before = buf->len;
      if (max > 0 && *left > 0)
        {
          if (!*first)
            sa_buf_append (buf, ",", 1);
          func (buf, entry, names[i]->d_name);
        }
      if (buf->len <= before + (*first ? 0 : 1))
        {
          /* nothing written: drop the comma */
          buf->len = before;
          buf->data[before] = '\0';
        }
      else
        {
          *first = false;
          max--;
          (*left)--;
        }
      free (names[i]);
    }
  free (names);
}

/* Calls @func for each entry of @root@dir (sorted), as a JSON array */
static void
json_array_of_dir (SaBuf *buf, const char *root, const char *dir, SaEntryFunc func)
{
  bool first = true;
  int left = INT_MAX;

  sa_buf_append (buf, "[", 1);
  json_elements_of_dir (buf, root, dir, func, &first, INT_MAX, &left);
  sa_buf_append (buf, "]", 1);
}

static void
pci_entry (SaBuf *buf, const char *dir, const char *name)
{
  bool first = true;
  char *vendor = read_hex_id (dir, "vendor", 4);
  char *device = read_hex_id (dir, "device", 4);

  if (vendor == NULL || device == NULL)
    {
      free (vendor);
      free (device);
      return;
    }
  sa_buf_append (buf, "{", 1);
  member_str (buf, &first, "slot", sa_strdup (name));
  member_str (buf, &first, "vendor", vendor);
  member_str (buf, &first, "device", device);
  member_str (buf, &first, "subsystem_vendor", read_hex_id (dir, "subsystem_vendor", 4));
  member_str (buf, &first, "subsystem_device", read_hex_id (dir, "subsystem_device", 4));
  member_str (buf, &first, "class", read_hex_id (dir, "class", 6));
  member_str (buf, &first, "modalias", read_attr (dir, "modalias"));
  member_str (buf, &first, "driver", link_basename (dir, "driver"));
  sa_buf_append (buf, "}", 1);
}

/* At most @max characters of [a-z0-9_-] (no '-' unless @dash), at least one */
static bool
is_word (const char *s, size_t max, bool dash)
{
  size_t n = strspn (s, dash ? "abcdefghijklmnopqrstuvwxyz0123456789_-" : "abcdefghijklmnopqrstuvwxyz0123456789_");

  return n > 0 && n <= max && s[n] == '\0';
}

/* "<prefix>:<at most 510 printable characters>", as the schema takes it */
static bool
is_modalias (const char *s)
{
  const char *colon = strchr (s, ':');
  char prefix[64];

  if (colon == NULL || colon == s || (size_t) (colon - s) >= sizeof prefix || strlen (colon + 1) > 510)
    return false;
  memcpy (prefix, s, colon - s);
  prefix[colon - s] = '\0';
  return is_word (prefix, sizeof prefix, false);
}

/* NULL unless @s has 1 to @max characters */
static char *
bounded (char *s, size_t max)
{
  if (s != NULL && (*s == '\0' || strlen (s) > max))
    {
      free (s);
      return NULL;
    }
  return s;
}

static void
bus_device_entry (SaBuf *buf, const char *dir, const char *name)
{
  bool first = true;
  char *modalias = read_attr (dir, "modalias");
  char *bus = link_basename (dir, "subsystem");

  if (modalias == NULL || !is_modalias (modalias) || bus == NULL || !is_word (bus, 32, true))
    {
      free (modalias);
      free (bus);
      return;
    }
  sa_buf_append (buf, "{", 1);
  member_str (buf, &first, "bus", bus);
  member_str (buf, &first, "name", bounded (sa_strdup (name), 64));
  member_str (buf, &first, "modalias", modalias);
  member_str (buf, &first, "driver", bounded (link_basename (dir, "driver"), 64));
  sa_buf_append (buf, "}", 1);
}

#define SA_BUS_DEVICES_MAX     256   /* of one bus */
#define SA_ALL_BUS_DEVICES_MAX 2048  /* of all buses */

/* The devices with a modalias on every bus but PCI (its own section) and
 * the CPU bus (one "cpu:type:...:feature:..." per CPU, which no network or
 * storage driver matches): virtio, vmbus, xen, usb, scsi, acpi, platform...,
 * at most SA_BUS_DEVICES_MAX a bus */
static void
bus_devices_section (SaBuf *buf, const char *root)
{
  char path[PATH_MAX];
  struct dirent **buses = NULL;
  int n, left = SA_ALL_BUS_DEVICES_MAX;
  bool first = true;

  snprintf (path, sizeof path, "%s/sys/bus", root);
  n = scandir (path, &buses, not_dot, alphasort);
  sa_buf_append (buf, "[", 1);
  for (int i = 0; i < n; i++)
    {
      char dir[PATH_MAX];

      if (strcmp (buses[i]->d_name, "pci") != 0 && strcmp (buses[i]->d_name, "cpu") != 0
          && (size_t) snprintf (dir, sizeof dir, "/sys/bus/%s/devices", buses[i]->d_name) < sizeof dir)
        json_elements_of_dir (buf, root, dir, bus_device_entry, &first, SA_BUS_DEVICES_MAX, &left);
      free (buses[i]);
    }
  free (buses);
  sa_buf_append (buf, "]", 1);
}

/* Not a disk to install on: virtual block devices, and an eMMC's hardware
 * boot partitions (mmcblkNbootM, 4 MiB or so, read-only until unlocked)
 * and RPMB partition (mmcblkNrpmb, a block device on older kernels), which
 * the kernel lists in /sys/block beside the eMMC's user area (mmcblkN) */
static bool
skip_block (const char *dir, const char *name)
{
  static const char *const prefixes[] = { "loop", "ram", "zram", "dm-", "md", "nbd", NULL };
  size_t len = strlen (name);

  for (int i = 0; prefixes[i]; i++)
    {
      if (strncmp (name, prefixes[i], strlen (prefixes[i])) == 0)
        return true;
    }
  if (strncmp (name, "mmcblk", 6) == 0 && strstr (name + 6, "boot") != NULL)
    return true;
  if (len >= 4 && strcmp (name + len - 4, "rpmb") == 0)
    return true;
  return !path_exists (dir, "device");
}

static long long
read_ll (const char *dir, const char *name, long long def)
{
  char *s = read_attr (dir, name);
  char *endp = NULL;
  long long v;

  if (s == NULL)
    return def;
  v = strtoll (s, &endp, 10);
  if (endp == s)
    v = def;
  free (s);
  return v;
}

static char *
non_empty (char *s)
{
  if (s != NULL && *s == '\0')
    {
      free (s);
      return NULL;
    }
  return s;
}

static void
disk_entry (SaBuf *buf, const char *dir, const char *name)
{
  bool first = true;
  long long sectors;
  char *serial;

  if (skip_block (dir, name))
    return;
  sectors = read_ll (dir, "size", -1);
  if (sectors < 0)
    return;
  serial = non_empty (read_attr (dir, "serial"));
  if (serial == NULL)
    serial = non_empty (read_attr (dir, "device/serial"));
  if (serial == NULL)
    serial = non_empty (read_attr (dir, "device/wwid"));
  sa_buf_append (buf, "{", 1);
  member_str (buf, &first, "name", sa_strdup (name));
  member_int (buf, &first, "size_bytes", sectors * 512);
  member_str (buf, &first, "model", non_empty (read_attr (dir, "device/model")));
  member_str (buf, &first, "vendor", non_empty (read_attr (dir, "device/vendor")));
  member_str (buf, &first, "serial", serial);
  member_bool (buf, &first, "removable", read_ll (dir, "removable", 0) != 0);
  member_bool (buf, &first, "rotational", read_ll (dir, "queue/rotational", 0) != 0);
  member_bool (buf, &first, "ro", read_ll (dir, "ro", 0) != 0);
  member_str (buf, &first, "driver", link_basename (dir, "device/driver"));
  sa_buf_append (buf, "}", 1);
}

static void
nic_entry (SaBuf *buf, const char *dir, const char *name)
{
  bool first = true;
  char *oper;
  const char *link;
  long long carrier, speed;

  if (!path_exists (dir, "device"))
    return;
  oper = read_attr (dir, "operstate");
  carrier = read_ll (dir, "carrier", -1);
  speed = read_ll (dir, "speed", -1);
  if (carrier == 1)
    link = "up";
  else if (oper != NULL && strcmp (oper, "down") == 0)
    link = "down";
  else if (carrier == 0)
    link = "down";
  else
    link = "unknown";
  free (oper);
  sa_buf_append (buf, "{", 1);
  member_str (buf, &first, "name", sa_strdup (name));
  /* CAN adapters and raw-IP WWAN modems have no link-layer address */
  member_str (buf, &first, "mac", non_empty (read_attr (dir, "address")));
  member_str (buf, &first, "driver", link_basename (dir, "device/driver"));
  member_str (buf, &first, "link", sa_strdup (link));
  if (speed > 0)
    member_int (buf, &first, "speed_mbps", speed);
  member_str (buf, &first, "bus_id", link_basename (dir, "device"));
  sa_buf_append (buf, "}", 1);
}

static void
cpu_section (SaBuf *buf, const char *root)
{
  char *info = sa_read_filef (false, "%s/proc/cpuinfo", root);
  char *model = NULL, *vendor = NULL;
  long long count = 0;
  bool first = true;

  for (char *line = info ? strtok (info, "\n") : NULL; line; line = strtok (NULL, "\n"))
    {
      char *colon = strchr (line, ':');
      const char *value = colon ? colon + 1 : "";

      while (*value == ' ')
        value++;
      if (strncmp (line, "processor", 9) == 0)
        count++;
      else if (model == NULL && strncmp (line, "model name", 10) == 0)
        model = clean (sa_strdup (value));
      else if (vendor == NULL && strncmp (line, "vendor_id", 9) == 0)
        vendor = clean (sa_strdup (value));
    }
  free (info);
  if (count == 0)
    count = 1;
  sa_buf_append_str (buf, "{");
  member_int (buf, &first, "count", count);
  member_str (buf, &first, "model", model);
  member_str (buf, &first, "vendor", vendor);
  sa_buf_append_str (buf, "}");
}

static long long
mem_total_bytes (const char *root)
{
  char *info = sa_read_filef (false, "%s/proc/meminfo", root);
  long long kib = 0;
  char *p = info ? strstr (info, "MemTotal:") : NULL;

  if (p != NULL)
    kib = strtoll (p + 9, NULL, 10);
  free (info);
  return kib * 1024;
}

static void
dmi_section (SaBuf *buf, const char *root)
{
  static const char *const keys[] = {
    "sys_vendor", "product_name", "product_version", "product_serial", "product_uuid",
    "board_vendor", "board_name", "board_serial", "bios_vendor", "bios_version",
    "chassis_type", NULL
  };
  char dir[PATH_MAX];
  bool first = true;

  snprintf (dir, sizeof dir, "%s/sys/class/dmi/id", root);
  sa_buf_append_str (buf, "{");
  for (int i = 0; keys[i]; i++)
    member_str (buf, &first, keys[i], non_empty (read_attr (dir, keys[i])));
  sa_buf_append_str (buf, "}");
}

static char *
kernel_release (const char *root)
{
  struct utsname u;

  if (*root)
    return clean (sa_read_filef (true, "%s/proc/sys/kernel/osrelease", root));
  if (uname (&u) < 0)
    return NULL;
  return sa_strdup (u.release);
}

char *
sa_inventory_collect (const char *root)
{
  SaBuf buf;
  char efi[PATH_MAX];
  struct stat st;
  bool first = true;

  snprintf (efi, sizeof efi, "%s/sys/firmware/efi", root);
  sa_buf_init (&buf);
  sa_buf_append_str (&buf, "{");
  member_int (&buf, &first, "version", 1);
  member_str (&buf, &first, "agent_version", sa_strdup (SHOAL_AGENT_VERSION));
  member_str (&buf, &first, "kernel", kernel_release (root));
  sa_buf_printf (&buf, ",\"firmware\":{\"type\":\"%s\"}", stat (efi, &st) == 0 ? "uefi" : "bios");
  sa_buf_append_str (&buf, ",\"dmi\":");
  dmi_section (&buf, root);
  sa_buf_append_str (&buf, ",\"cpu\":");
  cpu_section (&buf, root);
  sa_buf_printf (&buf, ",\"memory\":{\"total_bytes\":%lld}", mem_total_bytes (root));
  sa_buf_append_str (&buf, ",\"pci\":");
  json_array_of_dir (&buf, root, "/sys/bus/pci/devices", pci_entry);
  sa_buf_append_str (&buf, ",\"devices\":");
  bus_devices_section (&buf, root);
  sa_buf_append_str (&buf, ",\"disks\":");
  json_array_of_dir (&buf, root, "/sys/block", disk_entry);
  sa_buf_append_str (&buf, ",\"nics\":");
  json_array_of_dir (&buf, root, "/sys/class/net", nic_entry);
  sa_buf_append_str (&buf, "}");
  return sa_buf_steal (&buf);
}
