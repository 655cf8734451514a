/* mvm-init entry point: bring up the minimum, find the control port, build
 * the root, run the command, power off.  PID 1 must never exit (the kernel
 * would panic), so every path ends in poweroff().
 *
 * `mvm-init --agent SESSION` is the agent of --boot image instead: a
 * service cloud-init started in the image's own system (its kernel, its
 * init), with the session description from the seed.  The same port,
 * network and command; the root is the image's as its init made it; it
 * exits when the host has the status, and the host ends the VM. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "proto.h"

static void read_cmdline(void)
{
    char buf[4096] = "";
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    guest_trace_enable(strstr(buf, "mvm.trace") != NULL);
}

static void __attribute__((noreturn)) poweroff(void)
{
    sync();
    reboot(RB_POWER_OFF);
    /* Only reached if reboot() failed; PID 1 must not return. */
    for (;;)
        pause();
}

static void mount_early(void)
{
    mkdir("/dev", 0755);
    mkdir("/proc", 0555);
    mkdir("/sys", 0555);
    if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0)
        guest_log("mounting /dev: %s", strerror(errno));
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        guest_log("mounting /proc: %s", strerror(errno));
    if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        guest_log("mounting /sys: %s", strerror(errno));
}

/* Finds /dev/vportNpM whose sysfs name is the control port's. */
static int try_open_port(void)
{
    glob_t g;
    if (glob("/sys/class/virtio-ports/*/name", 0, NULL, &g) != 0)
        return -1;
    int fd = -1;
    for (size_t i = 0; i < g.gl_pathc && fd < 0; i++) {
        char name[64] = {0};
        int nfd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC);
        if (nfd < 0)
            continue;
        ssize_t n = read(nfd, name, sizeof name - 1);
        close(nfd);
        if (n <= 0)
            continue;
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, MVM_PROTO_PORT) != 0)
            continue;
        /* .../virtio-ports/vport0p1/name -> /dev/vport0p1 */
        char dev[128];
        const char *start = g.gl_pathv[i] + strlen("/sys/class/virtio-ports/");
        size_t dlen = strcspn(start, "/");
        if (snprintf(dev, sizeof dev, "/dev/%.*s", (int)dlen, start) >= (int)sizeof dev)
            continue;
        fd = open(dev, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    }
    globfree(&g);
    return fd;
}

/* Ports appear asynchronously after the driver binds; wait a bounded time. */
static int open_port(void)
{
    for (int i = 0; i < 500; i++) {
        int fd = try_open_port();
        if (fd >= 0)
            return fd;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* READY to the host (best effort: the host's timeout says the rest). */
static void send_ready(int port)
{
    uint8_t ready[MVM_PROTO_HEADER + 4];
    mvm_proto_header(ready, MVM_MSG_READY, 0, 4);
    mvm_put_u32(ready + MVM_PROTO_HEADER, MVM_PROTO_VERSION);
    if (guest_port_send(port, ready, sizeof ready) < 0)
        guest_log("telling the host we are up: %s", strerror(errno));
    guest_trace("ready sent");
}

static int agent(const char *session_path)
{
    read_cmdline();
    guest_trace("agent started");
    int port = open_port();
    if (port < 0) {
        guest_log("control port %s not found (is virtio_console loaded?)", MVM_PROTO_PORT);
        return 1;
    }
    send_ready(port);
    char why[512] = "";
    struct guest_session s = {0};
    if (guest_session_load(session_path, &s, why, sizeof why) < 0 ||
        guest_setup_net(&s, why, sizeof why) < 0 || guest_setup_agent(&s, why, sizeof why) < 0) {
        guest_send_error(port, 125, why);
        return 1;
    }
    /* The seed it came from: no business of the image's services. */
    char seed[256];
    snprintf(seed, sizeof seed, "%s", session_path);
    if (strrchr(seed, '/') != NULL && strrchr(seed, '/') != seed) {
        *strrchr(seed, '/') = '\0';
        umount2(seed, MNT_DETACH);
    }
    guest_trace("agent's session ready");
    guest_run(port, &s);
    sync();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--agent") == 0)
        return agent(argv[2]);
    if (getpid() != 1) {
        fprintf(stderr, "mvm-init: must run as PID 1 inside an mvm guest\n");
        return 1;
    }
    mount_early();
    read_cmdline();
    guest_trace("init started");

    char why[512] = "";
    int modules_ok = guest_load_modules(why, sizeof why);
    guest_trace("modules loaded");
    int port = open_port();
    guest_trace("control port open");
    if (port < 0) {
        guest_log("control port %s not found%s%s", MVM_PROTO_PORT, modules_ok < 0 ? ": " : "",
                  modules_ok < 0 ? why : "");
        poweroff();
    }
    if (modules_ok < 0) {
        guest_send_error(port, 125, why);
        poweroff();
    }
    send_ready(port);

    struct guest_session s = {0};
    if (guest_session_load(GUEST_SESSION_PATH, &s, why, sizeof why) < 0) {
        guest_send_error(port, 125, why);
        poweroff();
    }
    /* Before the root: it needs only /proc and the modules, and by now the
     * NIC has had the time the port took to probe. */
    if (guest_setup_net(&s, why, sizeof why) < 0) {
        guest_send_error(port, 125, why);
        poweroff();
    }
    guest_trace("network configured");
    if (guest_setup_root(&s, why, sizeof why) < 0) {
        guest_send_error(port, 125, why);
        poweroff();
    }
    guest_trace("root ready");
    guest_run(port, &s);
    guest_trace("powering off");
    poweroff();
}
