/* user: who invoked mvm (through sudo: SUDO_UID/SUDO_GID, not root), and
 * the home directories of the machine's real users. */
#ifndef MVM_USER_H
#define MVM_USER_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct mvm_user {
    uid_t uid;
    gid_t gid;
    char *name, *group, *home, *shell;
};

int mvm_user_invoking(struct mvm_user *u, struct mvm_error **err);
void mvm_user_clear(struct mvm_user *u);

/* Homes of root and of uids 1000..65533 that exist, plus extra (may be
 * NULL).  NULL-terminated; free with mvm_strv_free() (util.h). */
char **mvm_user_homes(const char *extra, size_t *n);

#endif
