/* The one place that talks to libnftables: a ruleset text, applied as
 * one transaction in the network namespace mvm is in at the time (or, for
 * mvm doctor's probe, in a throwaway one). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <string.h>
#include <sys/wait.h>

#include "json-cleanup.h"
#include "net-int.h"
#include "util.h"

int mvm_nft_apply(const char *ruleset, const char *where, struct mvm_error **err)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx == NULL)
        return mvm_error_set(err, 0, "nftables: cannot create a context");
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int rc = nft_run_cmd_from_buffer(ctx, ruleset);
    if (rc != 0) {
        /* libnftables reports in its error buffer, not errno; the first
         * line names the problem ("Could not process rule: ..."). */
        const char *msg = nft_ctx_get_error_buffer(ctx);
        cleanup_free char *line = xstrndup(msg ? msg : "", msg ? strcspn(msg, "\n") : 0);
        sanitize_text(line);
        rc = mvm_error_set(err, 0,
                           "nftables in %s: %s (does the kernel have nf_tables? modprobe "
                           "nf_tables)",
                           where, line[0] ? line : "failed");
    }
    nft_ctx_free(ctx);
    return rc;
}

/* "Which forward chain of another table drops by default?" -- pure, over
 * libnftables' JSON listing of the chains. */
char *mvm_nft_forward_dropper(const char *json_text)
{
    cleanup_json json_t *root = json_loads(json_text, 0, NULL);
    json_t *items = json_object_get(root, "nftables"), *item;
    size_t i;
    json_array_foreach(items, i, item)
    {
        json_t *c = json_object_get(item, "chain");
        const char *hook = json_string_value(json_object_get(c, "hook"));
        const char *policy = json_string_value(json_object_get(c, "policy"));
        const char *family = json_string_value(json_object_get(c, "family"));
        const char *table = json_string_value(json_object_get(c, "table"));
        const char *name = json_string_value(json_object_get(c, "name"));
        if (hook && policy && family && table && name && strcmp(hook, "forward") == 0 &&
            strcmp(policy, "drop") == 0 && strcmp(table, "mvm") != 0)
            return xasprintf("%s %s, chain %s", family, table, name);
    }
    return NULL;
}

char *mvm_net_forward_blocked(void)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx == NULL)
        return NULL;
    nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    char *found = NULL;
    if (nft_run_cmd_from_buffer(ctx, "list chains") == 0)
        found = mvm_nft_forward_dropper(nft_ctx_get_output_buffer(ctx));
    nft_ctx_free(ctx);
    return found;
}

/* An element's interface is printed by name while it exists and by
 * number once it is gone: the numbers are the stale ones. */
static bool is_number(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

char *mvm_nft_stale_holes(const char *json_text)
{
    cleanup_json json_t *root = json_loads(json_text, 0, NULL);
    json_t *items = json_object_get(root, "nftables"), *item;
    struct buf b = {0};
    size_t i, j;
    json_array_foreach(items, i, item)
    {
        json_t *elems = json_object_get(json_object_get(item, "set"), "elem"), *e;
        json_array_foreach(elems, j, e)
        {
            json_t *c = json_object_get(e, "concat");
            const char *ifindex = json_string_value(json_array_get(c, 0));
            json_int_t port = json_integer_value(json_array_get(c, 1));
            if (json_array_size(c) == 2 && is_number(ifindex) && strlen(ifindex) < 11 && port > 0 &&
                port < 65536)
                buf_printf(&b, "delete element inet mvm host_ports { %s . %d }\n", ifindex,
                           (int)port);
        }
    }
    if (b.len == 0)
        return NULL;
    buf_append(&b, "", 1);
    return b.data;
}

void mvm_net_sweep_holes(void)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx == NULL)
        return;
    nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    cleanup_free char *stale = NULL;
    if (nft_run_cmd_from_buffer(ctx, "list set inet mvm host_ports") == 0)
        stale = mvm_nft_stale_holes(nft_ctx_get_output_buffer(ctx));
    nft_ctx_free(ctx);
    /* Harmless if it fails: a stale element matches no interface. */
    if (stale)
        mvm_nft_apply(stale, "the host (table inet mvm)", NULL);
}

/* In the probe's child, in a network namespace of its own: a session's
 * rules, then the host's table, as mvm writes them. */
static int probe_rulesets(struct mvm_error **err)
{
    struct mvm_net_plan p;
    if (unshare(CLONE_NEWNET) < 0)
        return mvm_error_set(err, errno, "creating a network namespace");
    if (mvm_net_plan_init(&p, MVM_NET_ISOLATED, 0, "doctor", err) < 0 ||
        mvm_net_plan_host_addr(&p, inet_addr("203.0.113.1"), err) < 0)
        return -1;
    cleanup_free char *ns = mvm_net_ruleset_ns(&p);
    cleanup_free char *host = mvm_net_ruleset_host();
    if (mvm_nft_apply(ns, "a throwaway namespace (a session's rules)", err) < 0 ||
        mvm_nft_apply("delete table inet mvm\n", "a throwaway namespace", err) < 0 ||
        mvm_nft_apply(host, "a throwaway namespace (the host's table)", err) < 0)
        return -1;
    return 0;
}

int mvm_net_nft_probe(struct mvm_error **err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return mvm_error_set(err, errno, "nftables probe: pipe");
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return mvm_error_set(err, e, "nftables probe: fork");
    }
    if (pid == 0) {
        close(p[0]);
        alarm(10); /* a wedged netlink socket must not hang the caller */
        struct mvm_error *e = NULL;
        if (probe_rulesets(&e) == 0)
            _exit(0);
        write_all(p[1], e->msg, strlen(e->msg));
        _exit(1);
    }
    close(p[1]);
    char msg[512];
    ssize_t n = read_full(p[0], msg, sizeof msg - 1);
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    msg[n > 0 ? n : 0] = '\0';
    sanitize_text(msg);
    return mvm_error_set(err, 0, "%s", n > 0 ? msg : "the nftables probe died");
}
