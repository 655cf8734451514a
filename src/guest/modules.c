/* Loads the modules the host resolved (dependencies first) from the
 * initramfs.  The host decompressed them, so plain finit_module() works on
 * every kernel, including those before 6.4. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"

/* Needed only once the root is assembled (the disks and the writable
 * /usr): loaded by a child from the start, in parallel with the devices'
 * modules in PID 1 (under TCG each vCPU is a thread of its own), in the
 * order file's order.  Their dependencies are among them, except
 * virtio_blk's: it comes last, once PID 1 has loaded the virtio core. */
static const char *const late_modules[] = {
    "crc16.ko",          "mbcache.ko", "jbd2.ko",       "ext4.ko",
    "crc32c_generic.ko", "overlay.ko", "virtio_blk.ko", NULL,
};
#define LATE_NEEDS_VIRTIO "virtio_blk.ko"

static pid_t late_pid = -1;
static int late_pipe = -1;

static bool is_late(const char *name)
{
    for (size_t i = 0; late_modules[i]; i++)
        if (strcmp(name, late_modules[i]) == 0)
            return true;
    return false;
}

/* A module's file gone: the memory of the initramfs's copy back. */
static void drop_one(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, GUEST_MODULES_DIR "/%s", name);
    unlink(path);
}

static int load_one(const char *name, char *why, size_t whylen)
{
    char path[512];
    snprintf(path, sizeof path, GUEST_MODULES_DIR "/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)) {
        snprintf(why, whylen, "loading kernel module %s: %s", name, strerror(errno));
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    drop_one(name);
    return rc;
}

/* Loads the modules of the order file that are (late) or are not
 * (!late) in late_modules.  A late pass with virtio_ready (not -1) keeps
 * the module that needs the virtio core for last, and reads from
 * virtio_ready before it: that returns when PID 1 closes the other end. */
static int load_pass(bool late, int virtio_ready, char *why, size_t whylen)
{
    FILE *order = fopen(GUEST_MODULES_DIR "/order", "re");
    if (order == NULL)
        return 0; /* a kernel with everything built in */
    char name[256];
    bool deferred = false;
    int rc = 0;
    while (rc == 0 && fgets(name, sizeof name, order) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        if (name[0] == '\0' || strchr(name, '/') != NULL || is_late(name) != late)
            continue;
        if (virtio_ready >= 0 && strcmp(name, LATE_NEEDS_VIRTIO) == 0)
            deferred = true;
        else
            rc = load_one(name, why, whylen);
    }
    fclose(order);
    if (rc == 0 && deferred) {
        char c;
        while (read(virtio_ready, &c, 1) < 0 && errno == EINTR)
            ;
        rc = load_one(LATE_NEEDS_VIRTIO, why, whylen);
    }
    return rc;
}

/* The child that loads the late modules, started before the devices'
 * pass; *go is the pipe end PID 1 closes once that pass is done. */
static void start_late(int *go)
{
    int p[2], g[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return;
    if (pipe2(g, O_CLOEXEC) < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    late_pid = fork();
    if (late_pid == 0) {
        close(g[1]);
        char msg[512] = "";
        int rc = load_pass(true, g[0], msg, sizeof msg);
        if (rc < 0)
            (void)!write(p[1], msg, strlen(msg));
        _exit(rc < 0 ? 1 : 0);
    }
    close(p[1]);
    close(g[0]);
    if (late_pid < 0) {
        close(p[0]);
        close(g[1]);
        return;
    }
    late_pipe = p[0];
    *go = g[1];
}

int guest_load_modules(char *why, size_t whylen)
{
    int go = -1;
    start_late(&go);
    int rc = load_pass(false, -1, why, whylen);
    if (go >= 0)
        close(go);
    if (rc < 0)
        return -1;
    if (late_pid < 0) /* no child: here and now */
        return load_pass(true, -1, why, whylen);
    return 0;
}

int guest_load_fs_modules(bool load, char *why, size_t whylen)
{
    FILE *order = fopen(GUEST_MODULES_DIR "/fs-order", "re");
    if (order == NULL)
        return 0; /* none: built in, or the mount says what is missing */
    char name[256];
    int rc = 0;
    while (rc == 0 && fgets(name, sizeof name, order) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        if (name[0] == '\0' || strchr(name, '/') != NULL)
            continue;
        if (load)
            rc = load_one(name, why, whylen);
        else
            drop_one(name);
    }
    fclose(order);
    unlink(GUEST_MODULES_DIR "/fs-order");
    return rc;
}

int guest_wait_modules(char *why, size_t whylen)
{
    if (late_pid < 0)
        return 0;
    int st = 0;
    while (waitpid(late_pid, &st, 0) < 0 && errno == EINTR)
        ;
    late_pid = -1;
    ssize_t n = read(late_pipe, why, whylen - 1);
    close(late_pipe);
    late_pipe = -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (n <= 0)
        snprintf(why, whylen, "loading the disk modules failed");
    else
        why[n] = '\0';
    return -1;
}
