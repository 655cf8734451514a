/* Internal to net/: helpers shared by its files. */
#ifndef MVM_NET_INT_H
#define MVM_NET_INT_H

#include "error.h"
#include "net.h"

/* nft.c: applies a ruleset in the current network namespace. */
int mvm_nft_apply(const char *ruleset, const char *where, struct mvm_error **err);

#endif
