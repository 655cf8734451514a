/* Notices and traces on stderr: leaf code, called by every step of the
 * session and calling none of them. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session-int.h"
#include "util.h"

static void say(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static void say(const char *fmt, va_list ap)
{
    cleanup_free char *msg = xvasprintf(fmt, ap);
    sanitize_text(msg);
    cleanup_free char *line = xasprintf("mvm: %s\n", msg);
    write_all(STDERR_FILENO, line, strlen(line));
}

void session_notice(const struct session *s, const char *fmt, ...)
{
    if (s->o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
}

void session_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
}

bool session_tracing(void)
{
    const char *e = getenv("MVM_TRACE");
    return e && strcmp(e, "1") == 0;
}

void session_trace(const struct session *s, const char *what)
{
    if (!session_tracing())
        return;
    cleanup_free char *line =
        xasprintf("mvm: +%llums %s\n", (unsigned long long)((now_ns() - s->t0) / 1000000), what);
    write_all(STDERR_FILENO, line, strlen(line));
}
