/* The uplinks mvm knows, by kind: the host's routes, or a WireGuard
 * tunnel.  A new way out is one more struct mvm_net_uplink and one more
 * entry here; link.c calls whichever the plan names. */
#include <stddef.h>

#include "net-int.h"

const struct mvm_net_uplink *mvm_net_uplink_of(enum mvm_net_uplink_kind kind)
{
    switch (kind) {
    case MVM_NET_UPLINK_HOST:
        return &mvm_net_uplink_host;
    case MVM_NET_UPLINK_WG:
        return &mvm_net_uplink_wg;
    }
    return &mvm_net_uplink_host;
}
