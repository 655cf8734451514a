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
 * /usr): loaded by a child once the devices' modules are in, while PID 1
 * goes on with the boot (under TCG each vCPU is a thread of its own).
 * Their dependencies are among them or loaded before. */
static const char *const late_modules[] = {
    "virtio_blk.ko", "crc16.ko",          "mbcache.ko", "jbd2.ko",
    "ext4.ko",       "crc32c_generic.ko", "overlay.ko", NULL,
};

static pid_t late_pid = -1;
static int late_pipe = -1;

static bool is_late(const char *name)
{
    for (size_t i = 0; late_modules[i]; i++)
        if (strcmp(name, late_modules[i]) == 0)
            return true;
    return false;
}

/* Loads the modules of the order file that are (late) or are not
 * (!late) in late_modules. */
static int load_pass(bool late, char *why, size_t whylen)
{
    FILE *order = fopen(GUEST_MODULES_DIR "/order", "re");
    if (order == NULL)
        return 0; /* a kernel with everything built in */
    char name[256];
    int rc = 0;
    while (rc == 0 && fgets(name, sizeof name, order) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        if (name[0] == '\0' || strchr(name, '/') != NULL || is_late(name) != late)
            continue;
        char path[512];
        snprintf(path, sizeof path, GUEST_MODULES_DIR "/%s", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)) {
            snprintf(why, whylen, "loading kernel module %s: %s", name, strerror(errno));
            rc = -1;
        }
        if (fd >= 0)
            close(fd);
        unlink(path); /* give the memory back */
    }
    fclose(order);
    return rc;
}

int guest_load_modules(char *why, size_t whylen)
{
    if (load_pass(false, why, whylen) < 0)
        return -1;
    int p[2];
    late_pid = pipe2(p, O_CLOEXEC) < 0 ? -1 : fork();
    if (late_pid == 0) {
        char msg[512] = "";
        int rc = load_pass(true, msg, sizeof msg);
        if (rc < 0)
            (void)!write(p[1], msg, strlen(msg));
        _exit(rc < 0 ? 1 : 0);
    }
    if (late_pid < 0) /* no child: here and now */
        return load_pass(true, why, whylen);
    close(p[1]);
    late_pipe = p[0];
    return 0;
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
