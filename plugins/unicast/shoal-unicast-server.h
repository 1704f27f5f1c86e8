/* shoal-unicast-server.h: images over HTTP (manifest, chunks, raw with Range)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The request handler behind the /images routes, independent of the daemon:
 * ShoalUnicastService plugs it into shoald's SoupServer with a token check
 * backed by the device registry; tests plug it into their own SoupServer.
 *
 *   GET|HEAD /images/<image id>/manifest          the manifest text
 *   GET|HEAD /images/<image id>/chunks/<sha256>   one chunk of that image
 *   GET|HEAD /images/<image id>/raw               the whole image (zeros filled in)
 *
 * Every route takes Range (single or several ranges: 206, multipart/byteranges;
 * 416 when none is satisfiable), If-Range with the ETag (the id or the chunk
 * digest: content never changes under a name), and needs the device token in
 * "Authorization: Bearer <token>" or "?token=<token>".
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef enum {
  SHOAL_UNICAST_REQUEST_MANIFEST,
  SHOAL_UNICAST_REQUEST_CHUNK,
  SHOAL_UNICAST_REQUEST_RAW,
  SHOAL_UNICAST_REQUEST_OTHER,
} ShoalUnicastRequest;

/* Decides whether @token may make this request: returns SOUP_STATUS_OK,
 * SOUP_STATUS_UNAUTHORIZED (no token, unknown token) or SOUP_STATUS_FORBIDDEN.
 * @image_id is NULL when the path names no image. Runs on the main context.
 * A refusal may say why by setting @msg's response body (text); without
 * one, the answer says "This device may not fetch images now". */
typedef guint (*ShoalUnicastAuthFunc) (const gchar         *token,
                                       ShoalUnicastRequest  request,
                                       const gchar         *image_id,
                                       SoupServerMessage   *msg,
                                       gpointer             user_data);

typedef struct _ShoalUnicastServer ShoalUnicastServer;

ShoalUnicastServer *shoal_unicast_server_new     (const gchar          *store_root,
                                                  ShoalUnicastAuthFunc  auth,
                                                  gpointer              auth_data);
void                shoal_unicast_server_free    (ShoalUnicastServer   *self);
void                shoal_unicast_server_handle  (SoupServer           *server,
                                                  SoupServerMessage    *msg,
                                                  const char           *path,
                                                  GHashTable           *query,
                                                  gpointer              user_data);
guint64             shoal_unicast_server_get_bytes_sent (ShoalUnicastServer *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalUnicastServer, shoal_unicast_server_free)

G_END_DECLS
