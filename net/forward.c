/* The host settings networking needs: IPv4 forwarding (recorded before
 * mvm changes it, restored by `mvm cleanup --all`) and the shared table. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"

static int read_char(const char *path, char *c)
{
    cleanup_free char *text = read_file(path, 64, NULL);
    if (text == NULL || (text[0] != '0' && text[0] != '1')) {
        errno = text ? EINVAL : errno;
        return -1;
    }
    *c = text[0];
    return 0;
}

int mvm_net_forwarding_on(const char *state_file, bool *changed, struct mvm_error **err)
{
    char now;
    *changed = false;
    if (read_char(IP_FORWARD, &now) < 0)
        return mvm_error_set(err, errno, "reading " IP_FORWARD);
    if (now == '1')
        return 0;
    /* Only the first change is recorded: that is the value to restore. */
    if (access(state_file, F_OK) < 0 && write_file_atomic(state_file, "0\n", 2, 0600) < 0)
        return mvm_error_set(err, errno, "recording the forwarding setting in %s", state_file);
    if (write_existing_file(IP_FORWARD, "1") < 0)
        return mvm_error_set(err, errno, "enabling IPv4 forwarding (" IP_FORWARD ")");
    *changed = true;
    return 0;
}

int mvm_net_forwarding_restore(const char *state_file, struct mvm_error **err)
{
    char was;
    if (read_char(state_file, &was) < 0)
        return errno == ENOENT ? 0 : mvm_error_set(err, errno, "reading %s", state_file);
    if (write_existing_file(IP_FORWARD, (char[]){was, '\0'}) < 0)
        return mvm_error_set(err, errno, "restoring " IP_FORWARD);
    unlink(state_file);
    return 0;
}

int mvm_net_remove_host_table(struct mvm_error **err)
{
    return mvm_nft_apply("add table inet mvm\ndelete table inet mvm\n", "the host", err);
}
