/* The undo list; see undo.h. */
#include "undo.h"

#include <stdlib.h>

#include "util.h"

void mvm_undo_push(struct mvm_undo *u, void (*fn)(void *arg), void *arg, const char *what)
{
    if (u->n == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 16;
        u->steps = xrealloc(u->steps, u->cap * sizeof *u->steps);
    }
    u->steps[u->n++] = (struct mvm_undo_step){fn, arg, what};
}

void mvm_undo_run(struct mvm_undo *u)
{
    while (u->n > 0) {
        struct mvm_undo_step st = u->steps[--u->n];
        st.fn(st.arg);
    }
    free(u->steps);
    *u = (struct mvm_undo){0};
}
