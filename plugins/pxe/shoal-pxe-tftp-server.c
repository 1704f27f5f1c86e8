/* shoal-pxe-tftp-server.c: read-only TFTP server on the main loop
 *
 * One listening GSocket on port 69 receives requests; each accepted read
 * gets a ShoalPxeTftpTransfer on its own connected socket. Write
 * requests, unknown opcodes and malformed requests are answered with a
 * TFTP error; files come from a virtual file hook or from below the root
 * directory (see shoal-pxe-path.c).
 *
 * Transfers run on a small pool of worker event loops (four per CPU, at
 * most 16, see shoal-pxe-workers.c), never a thread per transfer: with
 * several loops per CPU, a loop preempted by another process stalls only
 * its share of the transfers; requests, the
 * virtual file hook and the signals stay on the caller's main context.
 *
 * Signals: "transfer-started" (client, path) and "transfer-finished"
 * (client, path, bytes, error message or NULL).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "shoal-error.h"
#include "shoal-pxe-net.h"
#include "shoal-pxe-path.h"
#include "shoal-pxe-tftp-packet.h"
#include "shoal-pxe-tftp-server.h"
#include "shoal-pxe-tftp-transfer.h"
#include "shoal-pxe-workers.h"

#define MAX_TRANSFERS 4096

/* A PXE client fetches one file at a time (its loader, then iPXE goes on
 * over HTTP); eight leave room for a firmware that retries from a new
 * port before the old transfer timed out and for a few machines behind
 * one address, while one address can hold no more than eight of the
 * slots above, and eight file descriptors. */
#define DEFAULT_MAX_PER_CLIENT 8

/* A client answers the OACK or block 1 within milliseconds; the timeout
 * it negotiates (up to 255 s, waited out 1 + max_retries times) counts
 * only once it has. 30 s let one that asked for up to 10 s retry twice,
 * while a request nobody follows up holds its slot no longer. */
#define DEFAULT_FIRST_ACK_MS 30000

struct _ShoalPxeTftpServer
{
  GObject                  parent_instance;
  gchar                   *root;
  gint                     root_fd;
  gchar                   *interface;
  gchar                   *address;
  ShoalPxeTftpLimits       limits;
  guint                    max_retries;
  GSocket                 *socket;
  GSource                 *source;
  GHashTable              *transfers;   /* "ip:port" -> Entry */
  GHashTable              *per_client;  /* "ip" -> its number of transfers */
  guint                    max_per_client;
  guint                    first_ack_ms;
  gint                     n_workers;   /* -1: four per CPU, at most 16 */
  ShoalPxeWorkers         *workers;
  GMainContext            *main_context;
  ShoalPxeTftpVirtualFunc  virtual_func;
  gpointer                 virtual_data;
  GDestroyNotify           virtual_destroy;
};

typedef struct {
  ShoalPxeTftpServer   *server;
  ShoalPxeTftpTransfer *transfer;
  gchar                *key;
  gchar                *client;
  gchar                *path;
} Entry;

/* a finished transfer, reported from a worker to the main context */
typedef struct {
  ShoalPxeTftpServer *server;
  gchar              *key;
  guint64             bytes;
  gchar              *error;
} Finished;

enum { SIGNAL_STARTED, SIGNAL_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE (ShoalPxeTftpServer, shoal_pxe_tftp_server, G_TYPE_OBJECT)

static void
entry_free (gpointer data)
{
  Entry *e = data;

  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (e->server->per_client, e->client));

  if (n > 1)
    g_hash_table_insert (e->server->per_client, g_strdup (e->client), GUINT_TO_POINTER (n - 1));
  else
    g_hash_table_remove (e->server->per_client, e->client);
  shoal_pxe_tftp_transfer_free (e->transfer);
  g_free (e->key);
  g_free (e->client);
  g_free (e->path);
  g_free (e);
}

static void
shoal_pxe_tftp_server_finalize (GObject *object)
{
  ShoalPxeTftpServer *self = SHOAL_PXE_TFTP_SERVER (object);

  shoal_pxe_tftp_server_stop (self);
  g_hash_table_unref (self->transfers);
  g_hash_table_unref (self->per_client);
  if (self->virtual_destroy != NULL)
    self->virtual_destroy (self->virtual_data);
  if (self->root_fd >= 0)
    g_close (self->root_fd, NULL);
  g_free (self->root);
  g_free (self->interface);
  g_free (self->address);
  G_OBJECT_CLASS (shoal_pxe_tftp_server_parent_class)->finalize (object);
}

static void
shoal_pxe_tftp_server_class_init (ShoalPxeTftpServerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_pxe_tftp_server_finalize;
  signals[SIGNAL_STARTED] =
    g_signal_new ("transfer-started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  signals[SIGNAL_FINISHED] =
    g_signal_new ("transfer-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 4,
                  G_TYPE_STRING, G_TYPE_STRING, G_TYPE_UINT64, G_TYPE_STRING);
}

static void
shoal_pxe_tftp_server_init (ShoalPxeTftpServer *self)
{
  self->root_fd = -1;
  self->limits.max_blksize = SHOAL_PXE_TFTP_MAX_BLKSIZE;
  self->limits.max_windowsize = 64;
  self->limits.default_timeout_ms = 1000;
  self->max_retries = 5;
  self->n_workers = -1;
  self->max_per_client = DEFAULT_MAX_PER_CLIENT;
  self->first_ack_ms = DEFAULT_FIRST_ACK_MS;
  self->transfers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, entry_free);
  self->per_client = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/**
 * shoal_pxe_tftp_server_new:
 * @root: (nullable): the directory served, or %NULL for virtual files only
 */
ShoalPxeTftpServer *
shoal_pxe_tftp_server_new (const gchar *root)
{
  ShoalPxeTftpServer *self = g_object_new (SHOAL_PXE_TYPE_TFTP_SERVER, NULL);

  self->root = g_strdup (root);
  return self;
}

void
shoal_pxe_tftp_server_set_interface (ShoalPxeTftpServer *self, const gchar *interface)
{
  g_free (self->interface);
  self->interface = g_strdup (interface);
}

void
shoal_pxe_tftp_server_set_limits (ShoalPxeTftpServer *self,
                                  guint               max_blksize,
                                  guint               max_windowsize,
                                  guint               timeout_ms,
                                  guint               max_retries)
{
  self->limits.max_blksize = CLAMP (max_blksize, SHOAL_PXE_TFTP_MIN_BLKSIZE, SHOAL_PXE_TFTP_MAX_BLKSIZE);
  self->limits.max_windowsize = CLAMP (max_windowsize, 1, 65535);
  self->limits.default_timeout_ms = MAX (timeout_ms, 10);
  self->max_retries = max_retries;
}

/**
 * shoal_pxe_tftp_server_set_max_per_client:
 * @max_per_client: transfers one client address may run at once (8 by
 *   default); a request beyond them gets a TFTP error
 */
void
shoal_pxe_tftp_server_set_max_per_client (ShoalPxeTftpServer *self, guint max_per_client)
{
  self->max_per_client = MAX (max_per_client, 1);
}

/**
 * shoal_pxe_tftp_server_set_first_ack_limit:
 * @limit_ms: how long a transfer waits for the client's first ACK,
 *   whatever timeout the client negotiated (30 s by default)
 */
void
shoal_pxe_tftp_server_set_first_ack_limit (ShoalPxeTftpServer *self, guint limit_ms)
{
  self->first_ack_ms = MAX (limit_ms, 1);
}

/**
 * shoal_pxe_tftp_server_set_workers:
 * @n_workers: threads that run transfers; 0 runs them on the main
 *   context, -1 (the default) means four per CPU, at most 16
 */
void
shoal_pxe_tftp_server_set_workers (ShoalPxeTftpServer *self, gint n_workers)
{
  self->n_workers = n_workers;
}

void
shoal_pxe_tftp_server_set_virtual_func (ShoalPxeTftpServer     *self,
                                        ShoalPxeTftpVirtualFunc func,
                                        gpointer                user_data,
                                        GDestroyNotify          destroy)
{
  if (self->virtual_destroy != NULL)
    self->virtual_destroy (self->virtual_data);
  self->virtual_func = func;
  self->virtual_data = user_data;
  self->virtual_destroy = destroy;
}

guint
shoal_pxe_tftp_server_get_n_transfers (ShoalPxeTftpServer *self)
{
  return g_hash_table_size (self->transfers);
}

static void
send_error (ShoalPxeTftpServer *self, GSocketAddress *to, ShoalPxeTftpErrorCode code, const gchar *message)
{
  g_autoptr(GBytes) packet = shoal_pxe_tftp_build_error (code, message);

  (void) g_socket_send_to (self->socket, to, g_bytes_get_data (packet, NULL),
                           g_bytes_get_size (packet), NULL, NULL);
}

static ShoalPxeTftpErrorCode
error_code_for (const GError *error)
{
  if (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND))
    return SHOAL_PXE_TFTP_ERR_NOT_FOUND;
  if (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED))
    return SHOAL_PXE_TFTP_ERR_ACCESS;
  return SHOAL_PXE_TFTP_ERR_UNDEFINED;
}

static gboolean
finish_in_main (gpointer data)
{
  Finished *fin = data;
  ShoalPxeTftpServer *self = fin->server;
  Entry *e = g_hash_table_lookup (self->transfers, fin->key);

  if (e != NULL)
    {
      if (fin->error != NULL)
        g_info ("TFTP %s to %s failed: %s", e->path, e->client, fin->error);
      g_signal_emit (self, signals[SIGNAL_FINISHED], 0, e->client, e->path, fin->bytes, fin->error);
      g_hash_table_remove (self->transfers, fin->key);
    }
  g_object_unref (fin->server);
  g_free (fin->key);
  g_free (fin->error);
  g_free (fin);
  return G_SOURCE_REMOVE;
}

/* runs on the transfer's context, a worker's maybe */
static void
on_transfer_done (ShoalPxeTftpTransfer *transfer, const GError *error, gpointer user_data)
{
  Entry *e = user_data;
  Finished *fin = g_new0 (Finished, 1);

  fin->server = g_object_ref (e->server);
  fin->key = g_strdup (e->key);
  fin->bytes = shoal_pxe_tftp_transfer_get_acked_bytes (transfer);
  fin->error = error != NULL ? g_strdup (error->message) : NULL;
  g_main_context_invoke (e->server->main_context, finish_in_main, fin);
}

/* a virtual file's contents, or (returning %NULL) a file on disk opened
 * in @fd with its @size; FALSE if there is neither */
static gboolean
lookup_contents (ShoalPxeTftpServer *self, const gchar *path, const gchar *client,
                 GBytes **contents, gint *fd, gsize *size, GError **error)
{
  struct stat st;

  *contents = NULL;
  *fd = -1;
  if (!shoal_pxe_path_is_safe (path, error))
    return FALSE;
  if (self->virtual_func != NULL)
    *contents = self->virtual_func (self, path, client, self->virtual_data);
  if (*contents != NULL)
    return TRUE;
  if (self->root_fd < 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, "no file %s", path);
      return FALSE;
    }
  *fd = shoal_pxe_path_open_beneath (self->root_fd, path, error);
  if (*fd < 0)
    return FALSE;
  if (fstat (*fd, &st) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "cannot read %s: %s", path, g_strerror (errno));
      g_close (*fd, NULL);
      *fd = -1;
      return FALSE;
    }
  *size = (gsize) st.st_size;
  return TRUE;
}

static GSocket *
transfer_socket (ShoalPxeTftpServer *self, GSocketAddress *client, GError **error)
{
  g_autoptr(GSocket) sock = shoal_pxe_net_udp_socket (self->address, 0, self->interface, FALSE, error);

  if (sock == NULL || !g_socket_connect (sock, client, NULL, error))
    return NULL;
  /* room for a few windows of large blocks */
  (void) g_socket_set_option (sock, SOL_SOCKET, SO_SNDBUF, 1 << 20, NULL);
  return g_steal_pointer (&sock);
}

static void
start_transfer (ShoalPxeTftpServer *self, GSocketAddress *from, const gchar *key,
                const gchar *client, ShoalPxeTftpPacket *request)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) contents = NULL;
  g_autoptr(GSocket) sock = NULL;
  ShoalPxeTftpOptions options;
  gint fd = -1;
  gsize size = 0;
  Entry *e;

  if (!shoal_pxe_tftp_options_negotiate (request, &self->limits, &options, &error))
    {
      send_error (self, from, SHOAL_PXE_TFTP_ERR_OPTION, error->message);
      return;
    }
  if (!lookup_contents (self, request->filename, client, &contents, &fd, &size, &error))
    {
      g_info ("TFTP %s from %s refused: %s", request->filename, client, error->message);
      send_error (self, from, error_code_for (error), error->message);
      g_signal_emit (self, signals[SIGNAL_FINISHED], 0, client, request->filename, (guint64) 0, error->message);
      return;
    }
  sock = transfer_socket (self, from, &error);
  if (sock == NULL)
    {
      if (fd >= 0)
        g_close (fd, NULL);
      send_error (self, from, SHOAL_PXE_TFTP_ERR_UNDEFINED, error->message);
      return;
    }
  e = g_new0 (Entry, 1);
  e->server = self;
  e->key = g_strdup (key);
  e->client = g_strdup (client);
  e->path = g_strdup (request->filename);
  if (contents != NULL)
    e->transfer = shoal_pxe_tftp_transfer_new (sock, contents, &options, self->max_retries,
                                               on_transfer_done, e);
  else
    e->transfer = shoal_pxe_tftp_transfer_new_for_fd (sock, fd, size, &options, self->max_retries,
                                                      on_transfer_done, e);
  g_hash_table_replace (self->transfers, e->key, e);
  g_hash_table_insert (self->per_client, g_strdup (client),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (self->per_client, client)) + 1));
  shoal_pxe_tftp_transfer_set_first_ack_limit (e->transfer, self->first_ack_ms);
  g_signal_emit (self, signals[SIGNAL_STARTED], 0, client, e->path);
  shoal_pxe_tftp_transfer_start (e->transfer, shoal_pxe_workers_next (self->workers));
}

static void
refuse_busy_client (ShoalPxeTftpServer *self, GSocketAddress *from, const gchar *client, const gchar *path)
{
  g_autofree gchar *message = g_strdup_printf ("%s already has %u transfers running, try again when one ends",
                                               client, self->max_per_client);

  g_info ("TFTP %s from %s refused: %s", path, client, message);
  send_error (self, from, SHOAL_PXE_TFTP_ERR_UNDEFINED, message);
}

static void
handle_request (ShoalPxeTftpServer *self, GSocketAddress *from, const guint8 *buf, gsize len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalPxeTftpPacket) packet = shoal_pxe_tftp_packet_parse (buf, len, &error);
  GInetAddress *ip = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (from));
  g_autofree gchar *client = g_inet_address_to_string (ip);
  g_autofree gchar *key = g_strdup_printf ("%s:%u", client,
                                           g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (from)));

  if (packet == NULL)
    {
      g_debug ("bad TFTP request from %s: %s", key, error->message);
      if (len < 2 || buf[0] != 0 || buf[1] != SHOAL_PXE_TFTP_ERROR)
        send_error (self, from, SHOAL_PXE_TFTP_ERR_ILLEGAL_OP, error->message);
      return;
    }
  if (packet->opcode == SHOAL_PXE_TFTP_WRQ)
    send_error (self, from, SHOAL_PXE_TFTP_ERR_ACCESS, "this server is read-only");
  else if (packet->opcode != SHOAL_PXE_TFTP_RRQ)
    {
      if (packet->opcode != SHOAL_PXE_TFTP_ERROR)
        send_error (self, from, SHOAL_PXE_TFTP_ERR_ILLEGAL_OP, "only read requests on this port");
    }
  else if (!g_str_equal (packet->mode, "octet") && !g_str_equal (packet->mode, "netascii"))
    send_error (self, from, SHOAL_PXE_TFTP_ERR_ILLEGAL_OP, "only octet and netascii modes");
  else if (g_hash_table_contains (self->transfers, key))
    g_debug ("TFTP request from %s repeated, transfer already running", key);
  else if (g_hash_table_size (self->transfers) >= MAX_TRANSFERS)
    send_error (self, from, SHOAL_PXE_TFTP_ERR_UNDEFINED, "too many transfers, try again");
  else if (GPOINTER_TO_UINT (g_hash_table_lookup (self->per_client, client)) >= self->max_per_client)
    refuse_busy_client (self, from, client, packet->filename);
  else
    start_transfer (self, from, key, client, packet);
}

static gboolean
on_request (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  ShoalPxeTftpServer *self = user_data;

  for (guint i = 0; i < 64; i++)
    {
      guint8 buf[1500];
      g_autoptr(GSocketAddress) from = NULL;
      gssize len = g_socket_receive_from (socket, &from, (gchar *) buf, sizeof buf, NULL, NULL);

      if (len < 0)
        break;
      if (G_IS_INET_SOCKET_ADDRESS (from))
        handle_request (self, from, buf, (gsize) len);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
open_root (ShoalPxeTftpServer *self, GError **error)
{
  if (self->root == NULL || self->root_fd >= 0)
    return TRUE;
  self->root_fd = open (self->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (self->root_fd < 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   "cannot open TFTP root %s: %s", self->root, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/**
 * shoal_pxe_tftp_server_start:
 * @address: (nullable): the IPv4 address to listen on, %NULL for any
 * @port: the UDP port, 69 normally
 */
gboolean
shoal_pxe_tftp_server_start (ShoalPxeTftpServer *self,
                             const gchar        *address,
                             guint16             port,
                             GError            **error)
{
  g_return_val_if_fail (self->socket == NULL, FALSE);
  if (!open_root (self, error))
    return FALSE;
  self->socket = shoal_pxe_net_udp_socket (address, port, self->interface, FALSE, error);
  if (self->socket == NULL)
    {
      g_prefix_error (error, "cannot start the TFTP server: ");
      return FALSE;
    }
  g_free (self->address);
  self->address = g_strdup (address);
  self->main_context = g_main_context_ref_thread_default ();
  if (self->n_workers < 0)
    self->n_workers = (gint) MIN (4 * g_get_num_processors (), 16);
  self->workers = shoal_pxe_workers_new ((guint) self->n_workers);
  self->source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->source, G_SOURCE_FUNC (on_request), self, NULL);
  g_source_attach (self->source, NULL);
  return TRUE;
}

void
shoal_pxe_tftp_server_stop (ShoalPxeTftpServer *self)
{
  if (self->source != NULL)
    {
      g_source_destroy (self->source);
      g_clear_pointer (&self->source, g_source_unref);
    }
  g_clear_object (&self->socket);
  /* join the workers before their transfers go */
  g_clear_pointer (&self->workers, shoal_pxe_workers_free);
  g_hash_table_remove_all (self->transfers);
  g_clear_pointer (&self->main_context, g_main_context_unref);
}
