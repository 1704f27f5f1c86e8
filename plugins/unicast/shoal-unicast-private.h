/* shoal-unicast-private.h: shared by the files of the unicast server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "shoal-image-files.h"
#include "shoal-unicast-server.h"

G_BEGIN_DECLS

#define PIECE_MAX      (1024 * 1024)
#define MAX_IN_FLIGHT  4

struct _ShoalUnicastServer
{
  gint                  ref_count;
  gchar                *root;
  ShoalUnicastAuthFunc  auth;
  gpointer              auth_data;
  GHashTable           *cache;        /* id → Cached */
  GBytes               *zeros;        /* PIECE_MAX zero bytes */
  guint64               bytes_sent;
};

/* A manifest held in memory, with its chunks by digest */
typedef struct {
  GBytes        *text;
  ShoalManifest *manifest;
  GHashTable    *chunks;   /* hex digest → chunk index + 1 */
} Cached;

typedef struct {
  ShoalUnicastServer  *server;
  SoupServerMessage   *msg;
  ShoalUnicastRequest  kind;
  gchar               *id;
  gchar               *chunk_hex;
  gboolean             head;
  Cached              *cached;
} Request;

/* A part of the response: literal bytes, or bytes [start, end] of the content */
typedef struct {
  GBytes  *literal;
  guint64  start;
  guint64  end;
} Segment;

ShoalUnicastServer *shoal_unicast_server_ref     (ShoalUnicastServer  *self);
void                shoal_unicast_server_unref   (ShoalUnicastServer  *self);
void                shoal_unicast_cached_unref   (Cached              *cached);
void                shoal_unicast_request_free   (Request             *req);
void                shoal_unicast_segment_free   (Segment             *segment);
void                shoal_unicast_respond_error  (SoupServerMessage   *msg,
                                                  guint                status,
                                                  const gchar         *message);
void                shoal_unicast_respond_failed (SoupServerMessage   *msg,
                                                  const gchar         *message);
GQueue             *shoal_unicast_plan_response  (SoupServerMessage   *msg,
                                                  guint64              size,
                                                  const gchar         *etag,
                                                  const gchar         *content_type,
                                                  guint64             *length);
void                shoal_unicast_read_async     (const gchar         *path,
                                                  guint64              offset,
                                                  gsize                length,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
void                shoal_unicast_stream_raw     (Request             *req);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Request, shoal_unicast_request_free)

G_END_DECLS
