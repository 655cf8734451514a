/* The one error type of the tree: a message built up with context as it
 * travels towards main(), plus the errno and exit code of its root cause. */
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static int set_va(struct mvm_error **err, int errnum, int exit_code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int set_va(struct mvm_error **err, int errnum, int exit_code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return -1;
    char *text = xvasprintf(fmt, ap);
    if (errnum != 0) {
        char *full = xasprintf("%s: %s", text, strerror(errnum));
        free(text);
        text = full;
    }
    mvm_error_free(*err);
    struct mvm_error *e = xmalloc(sizeof *e);
    e->errnum = errnum;
    e->exit_code = exit_code;
    e->msg = text;
    *err = e;
    return -1;
}

int mvm_error_set(struct mvm_error **err, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_va(err, errnum, 125, fmt, ap);
    va_end(ap);
    return -1;
}

int mvm_error_set_code(struct mvm_error **err, int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_va(err, 0, exit_code, fmt, ap);
    va_end(ap);
    return -1;
}

int mvm_error_wrap(struct mvm_error **err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    if (*err == NULL) /* a bug, but never lose the context */
        return mvm_error_set(err, 0, "unknown error");
    va_list ap;
    va_start(ap, fmt);
    char *ctx = xvasprintf(fmt, ap);
    va_end(ap);
    char *full = xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = full;
    return -1;
}

int mvm_error_propagate(struct mvm_error **err, struct mvm_error *e)
{
    if (err == NULL) {
        mvm_error_free(e);
    } else {
        mvm_error_free(*err);
        *err = e;
    }
    return -1;
}

void mvm_error_free(struct mvm_error *err)
{
    if (err == NULL)
        return;
    free(err->msg);
    free(err);
}

void mvm_error_print(const struct mvm_error *err)
{
    if (err == NULL)
        return;
    cleanup_free char *msg = xstrdup(err->msg);
    sanitize_text(msg); /* may quote the guest or QEMU */
    cleanup_free char *line = xasprintf("mvm: %s\n", msg);
    /* One write so the line is not interleaved with guest output. */
    write_all(STDERR_FILENO, line, strlen(line));
}
