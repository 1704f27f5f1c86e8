/* shoal-pxe-dhcp-message.h: DHCP messages (RFC 2131/2132) with the PXE
 * options of RFC 4578 and iPXE's encapsulated options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SHOAL_PXE_DHCP_HEADER_LEN   236   /* fixed BOOTP header */
#define SHOAL_PXE_DHCP_MIN_LEN      240   /* header + magic cookie */
#define SHOAL_PXE_DHCP_MIN_REPLY    300   /* BOOTP minimum, padded */
#define SHOAL_PXE_DHCP_DEFAULT_MAX  576   /* RFC 2131 minimum client max size */
#define SHOAL_PXE_DHCP_ABSOLUTE_MAX 1472  /* what fits an Ethernet frame */

typedef enum {
  SHOAL_PXE_DHCP_BOOTREQUEST = 1,
  SHOAL_PXE_DHCP_BOOTREPLY = 2,
} ShoalPxeDhcpOp;

typedef enum {
  SHOAL_PXE_DHCP_NONE = 0,        /* plain BOOTP: no option 53 */
  SHOAL_PXE_DHCP_DISCOVER = 1,
  SHOAL_PXE_DHCP_OFFER = 2,
  SHOAL_PXE_DHCP_REQUEST = 3,
  SHOAL_PXE_DHCP_DECLINE = 4,
  SHOAL_PXE_DHCP_ACK = 5,
  SHOAL_PXE_DHCP_NAK = 6,
  SHOAL_PXE_DHCP_RELEASE = 7,
  SHOAL_PXE_DHCP_INFORM = 8,
} ShoalPxeDhcpType;

/* option codes used by shoal */
enum {
  SHOAL_PXE_OPT_PAD = 0,
  SHOAL_PXE_OPT_SUBNET_MASK = 1,
  SHOAL_PXE_OPT_ROUTER = 3,
  SHOAL_PXE_OPT_DNS = 6,
  SHOAL_PXE_OPT_HOSTNAME = 12,
  SHOAL_PXE_OPT_VENDOR = 43,
  SHOAL_PXE_OPT_REQUESTED_IP = 50,
  SHOAL_PXE_OPT_LEASE_TIME = 51,
  SHOAL_PXE_OPT_OVERLOAD = 52,
  SHOAL_PXE_OPT_MESSAGE_TYPE = 53,
  SHOAL_PXE_OPT_SERVER_ID = 54,
  SHOAL_PXE_OPT_PARAM_LIST = 55,
  SHOAL_PXE_OPT_MESSAGE = 56,
  SHOAL_PXE_OPT_MAX_SIZE = 57,
  SHOAL_PXE_OPT_RENEWAL_TIME = 58,
  SHOAL_PXE_OPT_REBINDING_TIME = 59,
  SHOAL_PXE_OPT_VENDOR_CLASS = 60,
  SHOAL_PXE_OPT_CLIENT_ID = 61,
  SHOAL_PXE_OPT_TFTP_SERVER = 66,
  SHOAL_PXE_OPT_BOOTFILE = 67,
  SHOAL_PXE_OPT_USER_CLASS = 77,
  SHOAL_PXE_OPT_CLIENT_ARCH = 93,
  SHOAL_PXE_OPT_CLIENT_NDI = 94,
  SHOAL_PXE_OPT_CLIENT_UUID = 97,
  SHOAL_PXE_OPT_IPXE = 175,
  SHOAL_PXE_OPT_END = 255,
};

/* iPXE encapsulated option 175, sub-option 176: skip the ProxyDHCP wait */
#define SHOAL_PXE_IPXE_NO_PXEDHCP 176

typedef struct {
  guint8   op;
  guint8   htype;
  guint8   hlen;
  guint8   hops;
  guint32  xid;          /* host order */
  guint16  secs;
  guint16  flags;        /* host order; 0x8000 is the broadcast flag */
  guint32  ciaddr;       /* the addresses in network order */
  guint32  yiaddr;
  guint32  siaddr;
  guint32  giaddr;
  guint8   chaddr[16];
  gchar    sname[65];
  gchar    file[129];
  GBytes  *options[256]; /* concatenated values (RFC 3396), NULL if absent */
} ShoalPxeDhcpMessage;

ShoalPxeDhcpMessage *shoal_pxe_dhcp_message_new        (void);
void                 shoal_pxe_dhcp_message_free       (ShoalPxeDhcpMessage *msg);
ShoalPxeDhcpMessage *shoal_pxe_dhcp_message_parse      (const guint8        *data,
                                                        gsize                len,
                                                        GError             **error);
ShoalPxeDhcpMessage *shoal_pxe_dhcp_message_new_reply  (const ShoalPxeDhcpMessage *request,
                                                        ShoalPxeDhcpType     type);
GBytes              *shoal_pxe_dhcp_message_to_bytes   (const ShoalPxeDhcpMessage *msg,
                                                        gsize                max_size,
                                                        GError             **error);

const guint8 *shoal_pxe_dhcp_message_get_option  (const ShoalPxeDhcpMessage *msg,
                                                  guint8               code,
                                                  gsize               *len);
void          shoal_pxe_dhcp_message_set_option  (ShoalPxeDhcpMessage *msg,
                                                  guint8               code,
                                                  const void          *data,
                                                  gsize                len);
void          shoal_pxe_dhcp_message_set_u8      (ShoalPxeDhcpMessage *msg,
                                                  guint8               code,
                                                  guint8               value);
void          shoal_pxe_dhcp_message_set_u32     (ShoalPxeDhcpMessage *msg,
                                                  guint8               code,
                                                  guint32              value);
void          shoal_pxe_dhcp_message_set_string  (ShoalPxeDhcpMessage *msg,
                                                  guint8               code,
                                                  const gchar         *value);

ShoalPxeDhcpType shoal_pxe_dhcp_message_get_type         (const ShoalPxeDhcpMessage *msg);
gchar           *shoal_pxe_dhcp_message_get_mac          (const ShoalPxeDhcpMessage *msg);
gchar           *shoal_pxe_dhcp_message_get_uuid         (const ShoalPxeDhcpMessage *msg);
gchar           *shoal_pxe_dhcp_message_get_vendor_class (const ShoalPxeDhcpMessage *msg);
gint             shoal_pxe_dhcp_message_get_arch         (const ShoalPxeDhcpMessage *msg);
gboolean         shoal_pxe_dhcp_message_get_u32          (const ShoalPxeDhcpMessage *msg,
                                                          guint8               code,
                                                          guint32             *value);
gsize            shoal_pxe_dhcp_message_get_max_size     (const ShoalPxeDhcpMessage *msg);
gboolean         shoal_pxe_dhcp_message_has_user_class   (const ShoalPxeDhcpMessage *msg,
                                                          const gchar         *user_class);
gboolean         shoal_pxe_dhcp_message_is_ipxe          (const ShoalPxeDhcpMessage *msg);
const gchar     *shoal_pxe_dhcp_type_to_string           (ShoalPxeDhcpType     type);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalPxeDhcpMessage, shoal_pxe_dhcp_message_free)

G_END_DECLS
