/* A guest request rewritten for the upstream: its target and headers,
 * and the upstream's response headers on the way back.  Pure. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "util.h"

/* Bytes the gateway never passes on in a target: controls, space, DEL,
 * non-ASCII, '#', and '\\' (some servers read it as '/'). */
static bool target_byte_ok(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != '#' && c != '\\';
}

/* A "." or ".." segment, raw or percent-encoded, could climb out of the
 * base path at the upstream: refused rather than normalised. */
static bool has_dot_segment(const char *path, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = ++i; /* past '/' */
        while (j < n && path[j] != '/' && path[j] != '?')
            j++;
        size_t dots = 0, k = i;
        while (k < j) {
            if (path[k] == '.')
                k++;
            else if (j - k >= 3 && path[k] == '%' && path[k + 1] == '2' &&
                     (path[k + 2] == 'e' || path[k + 2] == 'E'))
                k += 3;
            else
                break;
            dots++;
        }
        if (k == j && (dots == 1 || dots == 2))
            return true;
        if (j >= n || path[j] == '?')
            return false;
        i = j;
    }
    return false;
}

int mvm_gw_upstream_target(const struct mvm_gw_provider *p, const char *target, char *out,
                           size_t size)
{
    const char *path = target, *slash = "";
    /* Absolute form: whatever host it names, only its path counts
     * ("http://h" and "http://h?q" mean "/" and "/?q"). */
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        const char *auth = strstr(target, "//") + 2;
        path = auth + strcspn(auth, "/?");
        if (*path != '/')
            slash = "/";
    } else if (path[0] != '/') {
        return -1;
    }
    size_t n = strlen(path);
    for (size_t i = 0; i < n; i++)
        if (!target_byte_ok((unsigned char)path[i]))
            return -1;
    if (n > MVM_GW_MAX_TARGET || has_dot_segment(path, n))
        return -1;
    int w = snprintf(out, size, "%s%s%s", p->base, slash, path);
    return w < 0 || (size_t)w >= size ? -1 : w;
}

static bool name_in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0)
            return true;
    return false;
}

/* RFC 9110 section 7.6.1's hop-by-hop fields, and the older ones clients
 * and proxies still send. */
static const char *const hop_by_hop[] = {
    "Connection",        "Keep-Alive", "Proxy-Connection",   "TE", "Trailer",
    "Transfer-Encoding", "Upgrade",    "Proxy-Authenticate", NULL,
};

bool mvm_gw_keep_request_header(const struct mvm_gw_provider *p, const char *name)
{
    static const char *const dropped[] = {
        "Host",   "Content-Length", "Authorization", "x-api-key", "Proxy-Authorization",
        "Cookie", "Forwarded",      "Expect",        NULL,
    };
    if (!mvm_gw_is_token(name, strlen(name)) || name_in(name, hop_by_hop) ||
        name_in(name, dropped) || strcasecmp(name, p->header) == 0)
        return false;
    return strncasecmp(name, "X-Forwarded-", strlen("X-Forwarded-")) != 0;
}

bool mvm_gw_keep_response_header(const char *name)
{
    static const char *const dropped[] = {"Content-Length", "Set-Cookie", NULL};
    return mvm_gw_is_token(name, strlen(name)) && !name_in(name, hop_by_hop) &&
           !name_in(name, dropped);
}

int mvm_gw_key_header(const struct mvm_gw_provider *p, const char *key, size_t keylen, char *out,
                      size_t size)
{
    const char *prefix = p->auth == MVM_GW_AUTH_BEARER ? "Bearer " : "";
    if (keylen > MVM_GW_MAX_KEY)
        return -1;
    int n = snprintf(out, size, "%s: %s%.*s", p->header, prefix, (int)keylen, key);
    return n < 0 || (size_t)n >= size ? -1 : n;
}
