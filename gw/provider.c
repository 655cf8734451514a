/* The providers --api-key names and the checks on a key's value.  Pure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "util.h"

struct builtin {
    const char *name, *host, *header, *env, *url_var, *url_suffix;
    enum mvm_gw_auth auth;
};

/* The guest's SDKs append their own paths to the base URL: Anthropic's
 * add /v1/..., OpenAI's expect /v1 in the base already. */
static const struct builtin builtins[] = {
    {"anthropic", "api.anthropic.com", "x-api-key", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "",
     MVM_GW_AUTH_PLAIN},
    {"openai", "api.openai.com", "Authorization", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1",
     MVM_GW_AUTH_BEARER},
};

static bool is_env_name(const char *s, size_t n)
{
    if (n == 0 || n >= MVM_GW_MAX_ENV || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

/* RFC 9110 token characters. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool mvm_gw_is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar(s[i]))
            return false;
    return true;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* "https://HOST[:PORT][/BASE]" (n bytes) into p; no userinfo, query,
 * fragment or IPv6 literal. */
static int parse_url(const char *s, size_t n, struct mvm_gw_provider *p, struct mvm_error **err)
{
    static const char scheme[] = "https://";
    const char *end = s + n;
    if (n < strlen(scheme) || strncmp(s, scheme, strlen(scheme)) != 0)
        return mvm_error_set(err, 0, "the upstream must be an https:// URL");
    const char *h = s + strlen(scheme), *q = h;
    while (q < end && is_host_char(*q))
        q++;
    size_t hl = (size_t)(q - h);
    if (hl == 0 || hl > MVM_GW_MAX_HOST || h[0] == '.' || h[0] == '-')
        return mvm_error_set(err, 0, "the upstream URL needs a host name or IPv4 address");
    memcpy(p->host, h, hl);
    p->host[hl] = '\0';
    p->port = 443;
    if (q < end && *q == ':') {
        unsigned long port = 0;
        const char *d = ++q;
        while (q < end && *q >= '0' && *q <= '9' && q - d < 6)
            port = port * 10 + (unsigned long)(*q++ - '0');
        if (q == d || port == 0 || port > 65535)
            return mvm_error_set(err, 0, "bad port in the upstream URL");
        p->port = (uint16_t)port;
    }
    /* The base path: kept as given, less a trailing '/'. */
    const char *b = q;
    if (b < end && *b != '/')
        return mvm_error_set(err, 0, "the upstream URL has no user, query or fragment part");
    for (q = b; q < end; q++)
        if (*q <= ' ' || *q >= 0x7f || *q == '?' || *q == '#' || *q == '\\')
            return mvm_error_set(err, 0, "the upstream URL's path has no query or fragment part");
    size_t bl = (size_t)(end - b);
    while (bl > 0 && b[bl - 1] == '/')
        bl--;
    if (bl >= sizeof p->base || (bl > 0 && (strstr(b, "/./") != NULL || strstr(b, "/../") != NULL)))
        return mvm_error_set(err, 0, "the upstream URL's path is too long or not plain");
    memcpy(p->base, b, bl);
    p->base[bl] = '\0';
    return 0;
}

/* SOURCE: "ENVNAME" or "ENVNAME=@PATH". */
static int parse_source(const char *s, struct mvm_gw_provider *p, struct mvm_error **err)
{
    const char *eq = strchr(s, '=');
    size_t n = eq ? (size_t)(eq - s) : strlen(s);
    if (!is_env_name(s, n))
        return mvm_error_set(err, 0, "'%.*s' is not a variable name (letters, digits, _)", (int)n,
                             s);
    memcpy(p->env, s, n);
    p->env[n] = '\0';
    p->file[0] = '\0';
    if (eq == NULL)
        return 0;
    if (eq[1] != '@' || eq[2] == '\0')
        return mvm_error_set(err, 0, "after %s= comes @PATH, the file that holds the key", p->env);
    size_t fl = strlen(eq + 2);
    if (fl >= sizeof p->file)
        return mvm_error_set(err, 0, "the key file's path is too long");
    memcpy(p->file, eq + 2, fl + 1);
    return 0;
}

/* "custom:URL:HEADER" (n bytes): URLs hold ':' too, a header name never. */
static int parse_custom(const char *s, size_t n, struct mvm_gw_provider *p, struct mvm_error **err)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':')
            colon = s + i;
    if (colon == NULL)
        return mvm_error_set(err, 0, "use custom:https://HOST[:PORT][/PATH]:HEADER=ENVNAME");
    size_t hl = (size_t)(s + n - colon - 1);
    if (!mvm_gw_is_token(colon + 1, hl) || hl >= sizeof p->header)
        return mvm_error_set(err, 0, "'%.*s' is not a header name", (int)hl, colon + 1);
    memcpy(p->header, colon + 1, hl);
    p->header[hl] = '\0';
    snprintf(p->name, sizeof p->name, "custom");
    p->auth = MVM_GW_AUTH_PLAIN;
    p->guest_url_var[0] = '\0';
    p->guest_url_suffix = "";
    return parse_url(s, (size_t)(colon - s), p, err);
}

static int parse_spec(const char *spec, struct mvm_gw_provider *p, struct mvm_error **err)
{
    memset(p, 0, sizeof *p);
    if (str_has_prefix(spec, "custom:")) {
        const char *rest = spec + strlen("custom:"), *eq = strchr(rest, '=');
        if (eq == NULL)
            return mvm_error_set(err, 0, "a custom provider needs =ENVNAME, where its key is");
        if (parse_custom(rest, (size_t)(eq - rest), p, err) < 0 || parse_source(eq + 1, p, err) < 0)
            return -1;
        /* The guest's client reads its key from the variable it is named by. */
        snprintf(p->guest_key_var, sizeof p->guest_key_var, "%s", p->env);
        return 0;
    }
    const char *eq = strchr(spec, '=');
    size_t n = eq ? (size_t)(eq - spec) : strlen(spec);
    for (size_t i = 0; i < ARRAY_SIZE(builtins); i++) {
        const struct builtin *b = &builtins[i];
        if (strlen(b->name) != n || strncmp(spec, b->name, n) != 0)
            continue;
        snprintf(p->name, sizeof p->name, "%s", b->name);
        snprintf(p->host, sizeof p->host, "%s", b->host);
        p->port = 443;
        snprintf(p->header, sizeof p->header, "%s", b->header);
        p->auth = b->auth;
        snprintf(p->guest_key_var, sizeof p->guest_key_var, "%s", b->env);
        snprintf(p->guest_url_var, sizeof p->guest_url_var, "%s", b->url_var);
        p->guest_url_suffix = b->url_suffix;
        if (eq == NULL) {
            snprintf(p->env, sizeof p->env, "%s", b->env);
            return 0;
        }
        return parse_source(eq + 1, p, err);
    }
    return mvm_error_set(
        err, 0, "unknown provider '%.*s' (anthropic, openai, or custom:URL:HEADER)", (int)n, spec);
}

int mvm_gw_parse_spec(const char *spec, struct mvm_gw_provider *p, struct mvm_error **err)
{
    if (parse_spec(spec, p, err) < 0)
        return mvm_error_wrap(err, "bad --api-key '%s'", spec);
    return 0;
}

int mvm_gw_upstream_url(const struct mvm_gw_provider *p, char *out, size_t size)
{
    int n = snprintf(out, size, "https://%s:%u%s", p->host, p->port, p->base);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int mvm_gw_check_key(const char *key, size_t *len, const char *from, struct mvm_error **err)
{
    size_t n = strnlen(key, MVM_GW_MAX_KEY + 3);
    if (n > 0 && key[n - 1] == '\n')
        n--;
    if (n > 0 && key[n - 1] == '\r')
        n--;
    if (n == 0)
        return mvm_error_set(err, 0, "the API key in %s is empty", from);
    if (n > MVM_GW_MAX_KEY)
        return mvm_error_set(err, 0, "the API key in %s is longer than %d bytes", from,
                             MVM_GW_MAX_KEY);
    for (size_t i = 0; i < n; i++)
        if (key[i] <= ' ' || key[i] >= 0x7f)
            return mvm_error_set(err, 0,
                                 "the API key in %s holds a space or control character "
                                 "(byte %zu)",
                                 from, i + 1);
    *len = n;
    return 0;
}
