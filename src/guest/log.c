/* The console log, traces and the ERROR frame: leaf code, used by init.c
 * and relay.c and calling neither. */
#include <errno.h>
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
    guest_port_send(port, frame, sizeof frame);
    guest_port_send(port, msg, len);
}

/* The port is non-blocking, and until QEMU's "host connected" message
 * has been handled a write fails with EAGAIN even though the port is
 * already named: a lost READY left the host waiting out its boot
 * timeout.  Frames sent before the relay runs wait for the host in
 * steps instead (the host's boot timeout bounds it), and the console
 * says so when that takes long, so that a boot that never gets further
 * shows whether the kernel or the port is where it stopped. */
int guest_port_send(int port, const void *buf, size_t len)
{
    const char *p = buf;
    for (int waits = 0; len > 0;) {
        ssize_t n = write(port, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (++waits == 100)
                guest_log("the host has not connected the control port after 1 s; waiting");
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int guest_fail(char *why, size_t whylen, int err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (err)
        snprintf(why, whylen, "%s: %s", what, strerror(err));
    else
        snprintf(why, whylen, "%s", what);
    return -1;
}
