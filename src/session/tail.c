/* The last bytes of a helper's log, for the one-line error when it dies:
 * leaf code, independent of the session. */
#include "tail.h"

#include <string.h>
#include <unistd.h>

#include "util.h"

void tail_add(struct tail *t, const char *d, size_t n)
{
    if (n >= TAIL_MAX) {
        memcpy(t->buf, d + n - TAIL_MAX, TAIL_MAX);
        t->len = TAIL_MAX;
        return;
    }
    if (t->len + n > TAIL_MAX) {
        size_t drop = t->len + n - TAIL_MAX;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, d, n);
    t->len += n;
}

void drain_log(int fd, struct tail *t)
{
    char buf[4096];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
        if (t)
            tail_add(t, buf, (size_t)n);
}

/* The last non-empty line of a tail, printable characters only. */
char *last_line(const struct tail *t)
{
    size_t end = t->len;
    while (end > 0 &&
           (t->buf[end - 1] == '\n' || t->buf[end - 1] == '\r' || t->buf[end - 1] == ' '))
        end--;
    size_t start = end;
    while (start > 0 && t->buf[start - 1] != '\n' && t->buf[start - 1] != '\r')
        start--;
    char *line = xstrndup(t->buf + start, end - start);
    sanitize_text(line);
    return line;
}

char *helper_last_words(int fd, struct tail *t)
{
    drain_log(fd, t);
    char *why = last_line(t);
    if (why[0] != '\0')
        return why;
    free(why);
    return xstrdup("no message");
}
