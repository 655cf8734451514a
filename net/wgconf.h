/* wgconf: the WireGuard configuration --wireguard CONF names, a wg-quick
 * style file.
 *
 * Owns: parsing the file's text into struct mvm_wg_config (keys decoded,
 * addresses and prefixes parsed, every count bounded), refusing what mvm
 * will not do (the wg-quick keys that run shell commands or change the
 * host's routing, unknown keys), the check that the file is private to
 * its owner, and the `set=1` text that configures wireguard-go over its
 * UAPI socket (https://www.wireguard.com/xplatform/).
 *
 * Pure code, no I/O: the caller reads the file (with the invoking user's
 * rights), resolves each peer's Endpoint once, and talks to the tunnel.
 * Every byte of the file reaches the parser through the fuzzer
 * (tests/fuzz/fuzz-wgconf.c).
 *
 * The config and the UAPI text hold the private key: the caller clears
 * them (explicit_bzero) when done.  No error message ever quotes a value
 * from the file, since a key may stand on any line. */
#ifndef MVM_WGCONF_H
#define MVM_WGCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "net.h"

#define MVM_WG_KEY_LEN   32
#define MVM_WG_MAX_PEERS 4
#define MVM_WG_MAX_ADDRS 8
/* As many resolvers as the DNS relay asks. */
#define MVM_WG_MAX_DNS MVM_NET_MAX_DNS
/* Enough for the lists that route everything but the private ranges. */
#define MVM_WG_MAX_ALLOWED 64
/* A host name's dotted text (253 characters) plus its NUL. */
#define MVM_WG_HOST_MAX 254
#define MVM_WG_MTU_MIN  576
#define MVM_WG_MTU_MAX  9000

/* An IPv4 or IPv6 address, with a prefix length where one applies. */
struct mvm_wg_ip {
    uint8_t family; /* 4 or 6; 0 for none */
    uint8_t addr[16];
    uint8_t len; /* 0..32 or 0..128 */
};

struct mvm_wg_peer {
    uint8_t public_key[MVM_WG_KEY_LEN];
    uint8_t preshared_key[MVM_WG_KEY_LEN];
    bool has_preshared_key;
    /* Endpoint: a name, or an address's text (IPv6 without its
     * brackets), as written; "" when the peer has none. */
    char endpoint_host[MVM_WG_HOST_MAX];
    uint16_t endpoint_port;
    uint16_t keepalive;                           /* seconds; 0 is off */
    struct mvm_wg_ip allowed[MVM_WG_MAX_ALLOWED]; /* host bits cleared */
    size_t nallowed;
    unsigned line; /* of its [Peer], for messages */
};

struct mvm_wg_config {
    uint8_t private_key[MVM_WG_KEY_LEN];
    struct mvm_wg_ip addr[MVM_WG_MAX_ADDRS]; /* the tunnel's own, as written */
    size_t naddr;
    struct mvm_wg_ip dns[MVM_WG_MAX_DNS]; /* len is the full length */
    size_t ndns;
    unsigned mtu;         /* 0: not given */
    uint16_t listen_port; /* 0: not given (a random one) */
    struct mvm_wg_peer peer[MVM_WG_MAX_PEERS];
    size_t npeer;
};

/* Parses len bytes of text (no NUL needed; one inside is refused) read
 * from file, which only names it in messages.  One [Interface] with a
 * PrivateKey and at least one Address, then 1..MVM_WG_MAX_PEERS [Peer]s
 * with a PublicKey each.  Returns 0, or -1 with err ("FILE:LINE: ...")
 * and c cleared. */
int mvm_wg_parse(const char *text, size_t len, const char *file, struct mvm_wg_config *c,
                 struct mvm_error **err);

/* Refuses a file that its group or others may read or write (st_mode
 * & 077): it holds the tunnel's private key. */
int mvm_wg_check_mode(const char *file, unsigned mode, struct mvm_error **err);

/* The UAPI text of a set operation for c: "set=1", the interface, every
 * peer replacing what the device had, an empty line at the end.  ep[i]
 * is peer i's Endpoint resolved (family 4 or 6; 0 for a peer without
 * one; the port is the config's); ep may be NULL when no peer has one.  Returns 0 with *outlen
 * bytes in out (and a NUL after them), or -1 with err when an Endpoint is not resolved or cap is
 * too small; MVM_WG_UAPI_MAX is always enough. */
#define MVM_WG_UAPI_MAX (256 + MVM_WG_MAX_PEERS * (512 + MVM_WG_MAX_ALLOWED * 56))
int mvm_wg_uapi_set(const struct mvm_wg_config *c, const struct mvm_wg_ip ep[], char *out,
                    size_t cap, size_t *outlen, struct mvm_error **err);

#endif
