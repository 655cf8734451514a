/* Internal to net/: helpers shared by its files. */
#ifndef MVM_NET_INT_H
#define MVM_NET_INT_H

#include "error.h"
#include "net.h"

/* nft.c: applies a ruleset in the current network namespace. */
int mvm_nft_apply(const char *ruleset, const char *where, struct mvm_error **err);
/* The commands that delete them, from libnftables' JSON listing of the
 * set; NULL when there is none.  Pure. */
char *mvm_nft_stale_holes(const char *json_text);

/* publish.c: the --publish listeners, into n->publish_fds. */
int mvm_net_publish_open(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);

#endif
