/* undo: what a session created, taken back in reverse order.  Each step
 * carries its own argument, so two resources of one kind are two steps;
 * the list grows as needed (an allocation failure aborts, as everywhere),
 * so no push is ever lost.  Steps must be idempotent. */
#ifndef MVM_UNDO_H
#define MVM_UNDO_H

#include <stddef.h>

struct mvm_undo_step {
    void (*fn)(void *arg);
    void *arg;
    const char *what; /* for traces: "QEMU", "virtiofsd for /usr" */
};

struct mvm_undo {
    struct mvm_undo_step *steps;
    size_t n, cap;
};

void mvm_undo_push(struct mvm_undo *u, void (*fn)(void *arg), void *arg, const char *what);
/* Runs every step, last pushed first, and empties the list. */
void mvm_undo_run(struct mvm_undo *u);

#endif
