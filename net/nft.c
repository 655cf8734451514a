/* The one place that talks to libnftables: a ruleset text, applied as
 * one transaction in the network namespace mvm is in at the time. */
#include <jansson.h>
#include <nftables/libnftables.h>
#include <string.h>

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
