/* gw: the API gateway of --api-key, which keeps the real keys out of the
 * guest.
 *
 * Owns, so far, its pure half: the providers (the built-in table and
 * custom:URL:HEADER=ENVNAME), --api-key's spec parsed into one of them,
 * the checks on a key's value, and the rewriting of each guest request --
 * which path upstream gets whatever form the guest sent, which of the
 * guest's headers go on, which key header replaces them, which of the
 * upstream's response headers come back.  No I/O here: the gateway
 * process that uses it parses guest-controlled HTTP, so everything it
 * decides is decided here, unit-tested and fuzzed (tests/fuzz/fuzz-gw.c). */
#ifndef MVM_GW_H
#define MVM_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Bounds of what a spec names: a hostname is at most 253 bytes, a base
 * path is short, a header name is a token. */
#define MVM_GW_MAX_HOST   253
#define MVM_GW_MAX_BASE   256
#define MVM_GW_MAX_HEADER 64
#define MVM_GW_MAX_ENV    128
#define MVM_GW_MAX_PATH   4096
/* A key longer than this is not a key (today's are about 100 bytes). */
#define MVM_GW_MAX_KEY 4096
/* The request target upstream gets: base path + the guest's path. */
#define MVM_GW_MAX_TARGET 8192
/* At most this many --api-key options: one gateway port each. */
#define MVM_GW_MAX_PROVIDERS 8
/* The gateway's ports, one per --api-key in order, on the guest's
 * gateway address. */
#define MVM_GW_PORT_BASE 7480
/* Bounds of what passes: a request body (the APIs we target take up to
 * 32 MB), a reply, the CA bundle sent with the keys. */
#define MVM_GW_MAX_REQUEST  (32 * 1024 * 1024)
#define MVM_GW_MAX_RESPONSE (1024ull * 1024 * 1024)
#define MVM_GW_MAX_CA       (16 * 1024 * 1024)

/* What the guest holds instead of a key: non-empty (clients refuse to
 * start without one) and plainly not a real key. */
#define MVM_GW_PLACEHOLDER "mvm-gateway-placeholder-not-a-key"

enum mvm_gw_auth {
    MVM_GW_AUTH_PLAIN,  /* HEADER: KEY */
    MVM_GW_AUTH_BEARER, /* HEADER: Bearer KEY */
};

struct mvm_gw_provider {
    char name[16]; /* "anthropic", "openai" or "custom" */
    /* The upstream: https only, host, port, and a base path ("" or
     * "/x/y", no trailing '/') that every request's path goes below. */
    char host[MVM_GW_MAX_HOST + 1];
    uint16_t port;
    char base[MVM_GW_MAX_BASE];
    char header[MVM_GW_MAX_HEADER]; /* the key's header, as sent upstream */
    enum mvm_gw_auth auth;
    /* Where the real key comes from: the variable env of mvm's own
     * environment, or (file non-empty) the file, read with the invoking
     * user's rights. */
    char env[MVM_GW_MAX_ENV];
    char file[MVM_GW_MAX_PATH];
    /* What the guest gets: guest_key_var=MVM_GW_PLACEHOLDER and, when
     * guest_url_var is non-empty, guest_url_var=http://GW:PORT<suffix>. */
    char guest_key_var[MVM_GW_MAX_ENV];
    char guest_url_var[MVM_GW_MAX_ENV];
    const char *guest_url_suffix;
};

/* One --api-key argument: PROVIDER[=SOURCE] with PROVIDER "anthropic",
 * "openai" or "custom:https://HOST[:PORT][/BASE]:HEADER" (custom needs a
 * SOURCE), SOURCE "ENVNAME" (the key is mvm's $ENVNAME) or
 * "ENVNAME=@PATH" (the key is PATH's content; ENVNAME names it, and for
 * custom is the guest's placeholder variable).  Pure. */
int mvm_gw_parse_spec(const char *spec, struct mvm_gw_provider *p, struct mvm_error **err);

/* True if s[0..n) is a non-empty HTTP token (a header name). */
bool mvm_gw_is_token(const char *s, size_t n);

/* The upstream as a URL ("https://HOST:PORT/BASE"), for messages and
 * for the gateway's command line.  Returns 0, or -1 when out is short. */
int mvm_gw_upstream_url(const struct mvm_gw_provider *p, char *out, size_t size);

/* A key's value as read (from the environment or a file): one trailing
 * newline (CRLF too) dropped; then it must be non-empty, at most
 * MVM_GW_MAX_KEY bytes, and printable ASCII without spaces, or it could
 * split or smuggle a header.  *len is set to the kept length.  The error
 * never quotes the key. */
int mvm_gw_check_key(const char *key, size_t *len, const char *from, struct mvm_error **err);

/* The path upstream gets for a request target the guest sent: an
 * origin-form target ("/x?y") or an absolute-form one
 * ("http://anything/x?y", its authority ignored: the upstream is fixed)
 * becomes base + path; anything else (authority-form, "*", a relative
 * path, control bytes, spaces, '#', "/../" segments) is refused (-1).
 * out is NUL-terminated.  Returns the length, or -1. */
int mvm_gw_upstream_target(const struct mvm_gw_provider *p, const char *target, char *out,
                           size_t size);

/* Whether a header of the guest's request is sent upstream: not the
 * hop-by-hop ones, not Host or Content-Length (the client sets them for
 * the upstream connection), not any credential (the provider's own key
 * header, Authorization, x-api-key, Proxy-Authorization, Cookie), not
 * Forwarded/X-Forwarded-*, not a name that is not a token.  Case
 * insensitive. */
bool mvm_gw_keep_request_header(const struct mvm_gw_provider *p, const char *name);

/* Whether a header of the upstream's response goes back to the guest:
 * not the hop-by-hop ones, not Content-Length (the reply is streamed),
 * not Set-Cookie. */
bool mvm_gw_keep_response_header(const char *name);

/* The key header line ("x-api-key: KEY", "Authorization: Bearer KEY"),
 * NUL-terminated, no CRLF.  Returns the length, or -1 when out is short.
 * The caller wipes out when done. */
int mvm_gw_key_header(const struct mvm_gw_provider *p, const char *key, size_t keylen, char *out,
                      size_t size);

/* The gateway's command line: `PROG __api-gateway SECRETS (LISTEN SPEC)...`
 * -- descriptors and the --api-key specs as given, never a key.  Pure;
 * free with mvm_strv_free(). */
char **mvm_gw_argv(const char *prog, int secrets_fd, const int *listen_fds, char *const *specs,
                   size_t n);

/* secrets.c: what goes over the secrets pipe, in the order of the
 * specs: each key (n of them), then the CA bundle, each as a 32-bit
 * length and its bytes.  Returns 0 or -1 with err. */
int mvm_gw_write_secrets(int fd, char *const *keys, const size_t *lens, size_t n, const char *ca,
                         size_t calen, struct mvm_error **err);

/* gateway.c: the entry point of `mvm __api-gateway ...` (argv as main()'s
 * with argv[0] the command name); serves until killed.  Returns 1 on a
 * bad argument or a failed start. */
int mvm_gw_main(int argc, char **argv);

/* gwfilter.c: the system calls the gateway may make (its seccomp
 * allowlist, with IPv4 sockets and threads). */
extern const char *const mvm_gw_syscalls[];

#endif
