/* tail: the last bytes of a stream (a helper's stderr, the console), so an
 * error can quote what the helper said last. */
#ifndef MVM_TAIL_H
#define MVM_TAIL_H

#include <stddef.h>

#define TAIL_MAX 4096

struct tail {
    char buf[TAIL_MAX];
    size_t len;
};

void tail_add(struct tail *t, const char *d, size_t n);
/* Reads what fd has now into t (t may be NULL: discard). */
void drain_log(int fd, struct tail *t);
/* The last non-empty line of t, control characters replaced; never NULL. */
char *last_line(const struct tail *t);
/* What a helper said last on its log fd (drained into t first), or "no
 * message": for the error when it exits. */
char *helper_last_words(int fd, struct tail *t);

#endif
