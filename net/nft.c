/* The one place that talks to libnftables: a ruleset text, applied as
 * one transaction in the network namespace mvm is in at the time. */
#include <nftables/libnftables.h>
#include <string.h>

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
