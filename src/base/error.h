/* mvm error convention (see docs/errors.md).
 *
 * Every fallible function takes `struct mvm_error **err` as its last
 * argument, returns a negative value on failure and leaves *err set to a
 * heap-allocated error; callers add context on the way up with
 * mvm_error_wrap().  Nothing below main() prints or exits: the session's
 * teardown must always get to run. */
#ifndef MVM_ERROR_H
#define MVM_ERROR_H

#include <stdarg.h>
#include <stddef.h>

struct mvm_error {
    int errnum;    /* errno of the root cause, 0 if none */
    int exit_code; /* exit status mvm should use (125 unless set) */
    char *msg;     /* "context: context: cause" */
};

/* Sets *err (if err is non-NULL) and returns -1.  errnum is appended as
 * strerror() text when non-zero.  If *err is already set it is replaced. */
int mvm_error_set(struct mvm_error **err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to an existing error and returns -1. */
int mvm_error_wrap(struct mvm_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Convenience for errors the user must act on with a different exit code
 * (124 timeout, 126/127 from the guest). */
int mvm_error_set_code(struct mvm_error **err, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hands an error kept locally (to look at it first) up to the caller:
 * *err takes it, or it is freed when err is NULL.  Returns -1. */
int mvm_error_propagate(struct mvm_error **err, struct mvm_error *e);

void mvm_error_free(struct mvm_error *err);

/* Writes "mvm: <msg>\n" to stderr in one write(2). */
void mvm_error_print(const struct mvm_error *err);

static inline void mvm_error_cleanup(struct mvm_error **err)
{
    mvm_error_free(*err);
    *err = NULL;
}
#define cleanup_error __attribute__((cleanup(mvm_error_cleanup)))

#endif
