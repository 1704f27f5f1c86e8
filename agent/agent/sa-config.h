/* sa-config.h: the agent's configuration file (/etc/shoal/agent.conf)
 *
 * Lines of key=value written by the agent generator (plugins/agent):
 *   server=http://10.0.0.1:8080   the shoald base URL
 *   token=...                     the device token
 *   device=...                    the device id
 *   image=...                     the recipe's image name (may be empty)
 *   session=...                   the deployment session (may be empty)
 *   disk=/dev/vda                 the disk to write (empty: first fixed disk)
 *   kernel=6.1.0-56-amd64         the kernel the modules were picked for
 *   modules=a b c                 the modules to load, in load order
 *   serial=12                     the device's instruction serial when the
 *                                 agent was generated: older instructions
 *                                 (of an earlier deployment) are not run
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>

typedef struct {
  char *server;
  char *token;
  char *device;
  char *image;
  char *session;
  char *disk;
  char *kernel;
  char *modules;
  char *serial;
} SaConfig;

bool sa_config_parse (const char *text, SaConfig *config, char *err, unsigned errlen);
bool sa_config_load  (const char *path, SaConfig *config, char *err, unsigned errlen);
void sa_config_clear (SaConfig *config);
