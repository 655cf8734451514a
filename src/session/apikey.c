/* --api-key: the providers planned, their keys and the CA bundle read
 * before anything is made, and the gateway (gw/) started in the
 * session's namespace with the keys over a pipe.  The keys live in mvm's
 * memory and the gateway's only, never in a file, an argument or the
 * guest, and are wiped at teardown. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "jail.h"
#include "session-int.h"
#include "undo.h"
#include "util.h"

/* The system's bundle, which the upstreams' certificates chain to. */
#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

static int read_key(struct session *s, const struct mvm_gw_provider *p, const char *spec,
                    char **key, size_t *len, struct mvm_error **err)
{
    const char *value;
    cleanup_free char *text = NULL;
    size_t text_len = 0;
    cleanup_free char *from = NULL;
    if (p->file[0]) {
        struct stat st;
        text = read_regular_as(s->user.uid, s->user.gid, p->file, MVM_GW_MAX_KEY + 2, false, &st,
                               &text_len);
        if (text == NULL && errno == EINVAL)
            return mvm_error_set(err, 0, "--api-key %s: %s is not a regular file holding a key",
                                 spec, p->file);
        if (text == NULL)
            return mvm_error_set(err, errno, "--api-key %s: reading %s", spec, p->file);
        if (st.st_uid != s->user.uid || (st.st_mode & 077) != 0) {
            explicit_bzero(text, text_len);
            return mvm_error_set(err, 0,
                                 "--api-key %s: %s must be yours and readable by you alone: "
                                 "chmod 600 %s",
                                 spec, p->file, p->file);
        }
        value = text;
        from = xstrdup(p->file);
    } else {
        value = getenv(p->env);
        if (value == NULL)
            return mvm_error_set(err, 0,
                                 "--api-key %s: %s is not set in mvm's environment (sudo resets "
                                 "the environment: use sudo --preserve-env=%s, or "
                                 "--api-key %s=%s=@FILE)",
                                 spec, p->env, p->env, strchr(spec, '=') ? p->name : spec, p->env);
        from = xasprintf("$%s", p->env);
    }
    size_t n;
    int rc = mvm_gw_check_key(value, &n, from, err);
    if (rc == 0) {
        *key = xmalloc(n + 1);
        memcpy(*key, value, n);
        (*key)[n] = '\0';
        *len = n;
    }
    if (text)
        explicit_bzero(text, text_len);
    return rc;
}

/* The --env that would put a provider's real key in the guest: refused
 * beside --api-key for that provider, else a notice that it is visible. */
static int check_env_keys(struct session *s, struct mvm_error **err)
{
    static const char *const known[] = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", NULL};
    for (size_t i = 0; i < s->o->nenv; i++) {
        const char *name = s->o->env[i].name;
        for (size_t k = 0; k < s->ngw; k++)
            if (strcmp(name, s->gw[k].guest_key_var) == 0)
                return mvm_error_set(err, 0,
                                     "--env %s and --api-key %s: the gateway keeps the key out "
                                     "of the guest, --env would put it in: drop --env %s",
                                     name, s->o->api_keys[k], name);
        for (size_t k = 0; known[k]; k++)
            if (strcmp(name, known[k]) == 0)
                session_notice(s,
                               "--env %s: the key is visible in the guest (to the agent and "
                               "anything it runs); --api-key keeps it outside",
                               name);
    }
    return 0;
}

static int read_ca(struct session *s, struct mvm_error **err)
{
    size_t sys_len = 0, user_len = 0;
    cleanup_free char *sys = read_file(SYSTEM_CA, MVM_GW_MAX_CA, &sys_len);
    if (sys == NULL)
        return mvm_error_set(err, errno,
                             "--api-key: reading the system's CA bundle %s (install "
                             "ca-certificates)",
                             SYSTEM_CA);
    cleanup_free char *user = NULL;
    if (s->o->api_ca) {
        user = read_file_as(s->user.uid, s->user.gid, s->o->api_ca, MVM_GW_MAX_CA, &user_len);
        if (user == NULL)
            return mvm_error_set(err, errno, "--api-ca %s: reading it", s->o->api_ca);
        if (strstr(user, "-----BEGIN CERTIFICATE-----") == NULL)
            return mvm_error_set(err, 0, "--api-ca %s: no PEM certificate in it", s->o->api_ca);
    }
    if (sys_len + user_len + 1 > MVM_GW_MAX_CA)
        return mvm_error_set(err, 0, "--api-ca %s: the CA bundle is over %d MiB", s->o->api_ca,
                             MVM_GW_MAX_CA >> 20);
    s->gw_ca = xasprintf("%s\n%s", sys, user ? user : "");
    s->gw_ca_len = strlen(s->gw_ca);
    return 0;
}

int session_plan_api_keys(struct session *s, struct mvm_error **err)
{
    const struct mvm_run_opts *o = s->o;
    if (o->napi_keys == 0) {
        if (o->api_ca)
            return mvm_error_set(err, 0, "--api-ca %s is for --api-key's upstreams: add --api-key",
                                 o->api_ca);
        return check_env_keys(s, err);
    }
    if (o->net == MVM_NETOPT_NONE)
        return mvm_error_set(err, 0,
                             "--api-key needs a network for its gateway: not with --net none");
    if (o->napi_keys > MVM_GW_MAX_PROVIDERS || o->napi_keys > MVM_NET_MAX_SERVICES)
        return mvm_error_set(err, 0, "--api-key: at most %d of them", MVM_GW_MAX_PROVIDERS);
    s->gw = xcalloc(o->napi_keys, sizeof *s->gw);
    for (size_t i = 0; i < o->napi_keys; i++) {
        struct mvm_gw_provider *p = &s->gw[i];
        if (mvm_gw_parse_spec(o->api_keys[i], p, err) < 0)
            return -1;
        s->ngw++;
        for (size_t k = 0; k < i; k++)
            if (strcmp(s->gw[k].guest_key_var, p->guest_key_var) == 0)
                return mvm_error_set(err, 0, "--api-key %s and --api-key %s both set %s",
                                     o->api_keys[k], o->api_keys[i], p->guest_key_var);
        if (o->net == MVM_NETOPT_ALLOW && !mvm_net_policy_allows(&s->netpolicy, p->host, p->port))
            return mvm_error_set(err, 0,
                                 "--api-key %s: --net allow= does not let the gateway reach "
                                 "%s:%u: add %s to the rules",
                                 o->api_keys[i], p->host, p->port, p->host);
        if (read_key(s, p, o->api_keys[i], &s->gw_keys[i], &s->gw_key_lens[i], err) < 0)
            return -1;
    }
    if (check_env_keys(s, err) < 0 || read_ca(s, err) < 0)
        return -1;
    return 0;
}

void session_api_keys_free(struct session *s)
{
    for (size_t i = 0; i < s->ngw; i++) {
        if (s->gw_keys[i])
            explicit_bzero(s->gw_keys[i], s->gw_key_lens[i]);
        free(s->gw_keys[i]);
        s->gw_keys[i] = NULL;
    }
    free(s->gw);
    s->gw = NULL;
    s->ngw = 0;
    free(s->gw_ca);
    s->gw_ca = NULL;
}

/* The guest's variables: each provider's placeholder key and, where it
 * has one, its base URL at the gateway's port. */
static void guest_env(struct session *s)
{
    char ip[16];
    mvm_ip4_str(s->netplan.tap_ip, ip);
    for (size_t i = 0; i < s->ngw; i++) {
        const struct mvm_gw_provider *p = &s->gw[i];
        s->env = xrealloc(s->env, (s->nenv + 2) * sizeof *s->env);
        s->env[s->nenv++] = xasprintf("%s=%s", p->guest_key_var, MVM_GW_PLACEHOLDER);
        if (p->guest_url_var[0])
            s->env[s->nenv++] = xasprintf("%s=http://%s:%u%s", p->guest_url_var, ip,
                                          s->netplan.services[i], p->guest_url_suffix);
    }
}

void session_plan_gateway_ports(struct session *s)
{
    for (size_t i = 0; i < s->ngw; i++)
        s->netplan.services[s->netplan.nservices++] = (uint16_t)(MVM_GW_PORT_BASE + i);
}

/* The gateway's resolv.conf, bound into its jail: it asks the session's
 * DNS relay, so its names obey the session's policy (allow= answers the
 * allowed names only, and puts their addresses in the set). */
static char *write_resolv(struct session *s, struct mvm_error **err)
{
    char ip[16];
    char *path = xasprintf("%s/gateway-resolv.conf", s->dir);
    cleanup_free char *text = xasprintf("nameserver %s\noptions attempts:3 timeout:2\n",
                                        mvm_ip4_str(s->netplan.tap_ip, ip));
    if (write_file_atomic(path, text, strlen(text), 0644) < 0) {
        mvm_error_set(err, errno, "writing %s", path);
        free(path);
        return NULL;
    }
    return path;
}

int session_start_gateway(struct session *s, uid_t uid, struct mvm_error **err)
{
    if (s->ngw == 0)
        return 0;
    s->gw_filter = mvm_jail_filter_allowlist(mvm_gw_syscalls,
                                             MVM_JAIL_SOCK_INET_STREAM | MVM_JAIL_SOCK_INET_DGRAM |
                                                 MVM_JAIL_THREADS | MVM_JAIL_SOCKETPAIR,
                                             err);
    if (s->gw_filter == NULL)
        return -1;
    cleanup_free char *resolv = write_resolv(s, err);
    if (resolv == NULL)
        return -1;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return mvm_error_set(err, errno, "making the API gateway's pipe");
    int keep[MVM_NET_MAX_SERVICES + 1];
    keep[0] = pipefd[0];
    for (size_t i = 0; i < s->net.nservice_fds; i++)
        keep[1 + i] = s->net.service_fds[i];
    char **argv = mvm_gw_argv("/mvm", pipefd[0], s->net.service_fds, s->o->api_keys, s->ngw);
    const struct mvm_jail_bind extra[] = {{resolv, "/etc/resolv.conf"}};
    struct net_helper h = {.name = "the API gateway (--api-key)",
                           .argv = argv,
                           .keep = keep,
                           .nkeep = 1 + (int)s->net.nservice_fds,
                           .nofile = 4 * 16 * MVM_GW_MAX_PROVIDERS + 64,
                           .netns_fd = s->net.netns_fd,
                           .uid = uid,
                           .seccomp = s->gw_filter,
                           .binds = extra,
                           .nbinds = 1};
    int rc = session_start_net_helper(s, &h, &s->gateway, err);
    mvm_strv_free(argv);
    close(pipefd[0]);
    if (rc == 0)
        rc = mvm_gw_write_secrets(pipefd[1], s->gw_keys, s->gw_key_lens, s->ngw, s->gw_ca,
                                  s->gw_ca_len, err);
    close(pipefd[1]);
    if (rc < 0)
        return -1;
    mvm_net_services_close(&s->net); /* the gateway has them */
    guest_env(s);
    return 0;
}
