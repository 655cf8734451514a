/* The console log, traces and the ERROR frame: leaf code, used by init.c
 * and relay.c and calling neither. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "proto.h"

void guest_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        fd = dup(STDERR_FILENO);
    if (fd < 0)
        return;
    (void)!write(fd, "mvm-init: ", 10);
    (void)!write(fd, line, (size_t)n);
    close(fd);
}

static bool tracing;

void guest_trace_enable(bool on)
{
    tracing = on;
}

/* With "mvm.trace" on the kernel command line: timestamped steps. */
void guest_trace(const char *what)
{
    if (!tracing)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    guest_log("+%ldms %s", (long)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000), what);
}

void guest_send_error(int port, int status, const char *msg)
{
    guest_log("%s", msg);
    if (port < 0)
        return;
    size_t len = strlen(msg);
    if (len > MVM_PROTO_MAX_PAYLOAD - 4)
        len = MVM_PROTO_MAX_PAYLOAD - 4;
    uint8_t frame[MVM_PROTO_HEADER + 4];
    mvm_proto_header(frame, MVM_MSG_ERROR, MVM_PROTO_MAIN_STREAM, (uint32_t)(4 + len));
    mvm_put_u32(frame + MVM_PROTO_HEADER, (uint32_t)status);
    /* The port is non-blocking; this runs before any data flows, so the
     * small frame fits.  Switch to blocking to be sure it is sent whole. */
    int flags = fcntl(port, F_GETFL);
    fcntl(port, F_SETFL, flags & ~O_NONBLOCK);
    (void)!write(port, frame, sizeof frame);
    (void)!write(port, msg, len);
    fcntl(port, F_SETFL, flags);
}

int guest_fail(char *why, size_t whylen, int err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(why, whylen, "%s: %s", what, strerror(err));
    return -1;
}
