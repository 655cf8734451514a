/* Image files and their directories: creating, sizing, formatting with
 * mkfs.ext4 (a child with a minimal environment) and checking that a
 * directory is root's alone. */
#include "disk-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "syscalls.h"
#include "util.h"

void mvm_disk_close(struct mvm_disk *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    free(d->path);
    d->path = NULL;
}

/* mkdir with the parents (0755) that are missing. */
static int make_dir(int at, const char *path, mode_t mode)
{
    if (mkdirat(at, path, mode) == 0 || errno == EEXIST)
        return 0;
    const char *slash = strrchr(path, '/');
    if (errno != ENOENT || at != AT_FDCWD || slash == NULL || slash == path)
        return -1;
    cleanup_free char *parent = xstrndup(path, (size_t)(slash - path));
    if (mkdir_p(parent, 0755) < 0)
        return -1;
    return mkdirat(at, path, mode) == 0 || errno == EEXIST ? 0 : -1;
}

int mvm_disk_dir_open(int at, const char *path, const char *shown, mode_t create_mode, bool follow,
                      struct mvm_error **err)
{
    if (create_mode != 0 && make_dir(at, path, create_mode) < 0)
        return mvm_error_set(err, errno, "creating %s", shown);
    int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
        return mvm_error_set(err, 0, "%s is not a directory (a symlink or a file); remove it",
                             shown);
    if (fd < 0)
        return mvm_error_set(err, errno, "opening %s", shown);
    /* Whoever else could write here could swap one user's volumes for
     * another's. */
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        close(fd);
        return mvm_error_set(err, 0,
                             "%s must be owned by %s and writable only by it; remove it or fix "
                             "its owner and mode",
                             shown, geteuid() == 0 ? "root" : "you");
    }
    return fd;
}

const char *const mvm_disk_qemu_img[] = {"/usr/bin/qemu-img", "/bin/qemu-img", NULL};

const char *mvm_disk_find_tool(const char *const *paths)
{
    for (size_t i = 0; paths[i] != NULL; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

int mvm_disk_mkfs_find(const char **path, struct mvm_error **err)
{
    static const char *const candidates[] = {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", NULL};
    *path = mvm_disk_find_tool(candidates);
    if (*path != NULL)
        return 0;
    return mvm_error_set(err, 0, "mkfs.ext4 not found; install it: apt-get install e2fsprogs");
}

static void __attribute__((noreturn))
tool_child(char **argv, const struct mvm_disk_tool *t, int null_fd, int err_fd, pid_t parent)
{
    static const char msg[] = "cannot execute it\n";
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL, NULL};
    char tmpdir[4200];
    if (t->tmpdir) {
        snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s", t->tmpdir);
        envp[1] = tmpdir;
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* Not formatting on after mvm is gone. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(127);
    /* Whatever the tool mounts (mmdebstrap: /proc, /sys, /dev in its
     * chroot) dies with its namespace, even after kill -9. */
    if (t->private_mounts &&
        (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0))
        _exit(127);
    if (dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        _exit(127);
    mvm_close_fds_except(3, NULL, 0);
    execve(argv[0], argv, envp);
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
}

/* A tool's stderr on one line (mkfs.ext4 wraps its messages), without
 * its "NAME: " prefixes; with tail, only its last lines (mmdebstrap's
 * progress comes before its error). */
static char *tool_message(struct buf *out, const char *name, int status, bool tail)
{
    cleanup_free char *prefix = xasprintf("%s: ", name);
    struct buf msg = {0};
    buf_append(out, "", 1);
    char *text = out->data;
    /* mmdebstrap's first "E: " line is the cause; else the last lines. */
    char *first_e = NULL;
    for (char *p = out->data; tail && p && !first_e; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (str_has_prefix(p, "E: "))
            first_e = p;
    if (first_e) {
        first_e[strcspn(first_e, "\n")] = '\0';
        text = first_e;
    } else if (tail) { /* from the start of the last 3 non-empty lines */
        int lines = 0;
        for (char *p = out->data + out->len - 1; p > out->data && lines < 3; p--)
            if (p[-1] == '\n' && p[0] != '\n' && p[0] != '\0' && ++lines <= 3)
                text = p;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line += strspn(line, " \t\r");
        if (str_has_prefix(line, prefix))
            line += strlen(prefix);
        line[strcspn(line, "\r")] = '\0';
        if (*line != '\0')
            buf_printf(&msg, "%s%s", msg.len ? " " : "", line);
    }
    if (msg.len == 0 && WIFSIGNALED(status))
        buf_printf(&msg, "killed by signal %d", WTERMSIG(status));
    else if (msg.len == 0)
        buf_printf(&msg, "exit status %d", WEXITSTATUS(status));
    buf_append(&msg, "", 1);
    sanitize_text(msg.data);
    return msg.data;
}

/* Keeps the first 4 KiB of the child's stderr, or with tail its last
 * 4 KiB. */
static void keep(struct buf *out, const char *chunk, size_t n, bool tail)
{
    if (!tail) {
        if (out->len + n <= 4096)
            buf_append(out, chunk, n);
        return;
    }
    buf_append(out, chunk, n);
    if (out->len > 8192) {
        memmove(out->data, out->data + out->len - 4096, 4096);
        out->len = 4096;
    }
}

/* Collects the child's stderr, then its exit status; a signal on
 * t->sigfd sends the child SIGTERM (a second one SIGKILL) and the first
 * is reported in *signo. */
static int collect(pid_t pid, int fd, const struct mvm_disk_tool *t, struct buf *out, int *status,
                   int *signo)
{
    char chunk[1024];
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = t->sigfd, .events = POLLIN}};
        if (poll(p, t->sigfd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        struct signalfd_siginfo si;
        /* The first signal asks the tool to stop; a second insists. */
        if (t->sigfd >= 0 && (p[1].revents & POLLIN) &&
            read(t->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
            kill(pid, *signo == 0 ? SIGTERM : SIGKILL);
            if (*signo == 0)
                *signo = (int)si.ssi_signo;
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
        if (n > 0)
            keep(out, chunk, (size_t)n, t->tail);
    }
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

int mvm_disk_run_tool_with(char **argv, const struct mvm_disk_tool *t, const char *doing,
                           struct mvm_error **err)
{
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    cleanup_close int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int p[2];
    if (null_fd < 0 || pipe2(p, O_CLOEXEC) < 0)
        return mvm_error_set(err, errno, "%s: starting %s", doing, name);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        tool_child(argv, t, null_fd, p[1], parent);
    int e = errno;
    close(p[1]);
    struct buf out = {0};
    int st = 0, signo = 0;
    if (pid < 0 || collect(pid, p[0], t, &out, &st, &signo) < 0) {
        e = pid < 0 ? e : errno;
        close(p[0]);
        buf_free(&out);
        return mvm_error_set(err, e, "%s: running %s", doing, name);
    }
    close(p[0]);
    if (signo != 0) {
        buf_free(&out);
        return mvm_error_set_code(err, 128 + signo, "%s: interrupted (%s)", doing,
                                  strsignal(signo));
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        buf_free(&out);
        return 0;
    }
    cleanup_free char *why = tool_message(&out, name, st, t->tail);
    buf_free(&out);
    return mvm_error_set(err, 0, "%s with %s: %s", doing, name, why);
}

int mvm_disk_run_tool(char **argv, const char *doing, struct mvm_error **err)
{
    struct mvm_disk_tool t = {.sigfd = -1};
    return mvm_disk_run_tool_with(argv, &t, doing, err);
}

static int size_and_format(int fd, const char *path, uint64_t size_mib, const char *mkfs,
                           const struct mvm_disk_mkfs *o, struct mvm_error **err)
{
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return mvm_error_set(err, errno, "locking %s", path);
    if (ftruncate(fd, (off_t)(size_mib << 20)) < 0)
        return mvm_error_set(err, errno, "sizing %s to %llu MiB", path,
                             (unsigned long long)size_mib);
    char **argv = mvm_disk_mkfs_argv(mkfs, path, o);
    cleanup_free char *doing = xasprintf("formatting %s", path);
    struct mvm_disk_tool t = {.sigfd = o->sigfd ? *o->sigfd : -1};
    int rc = mvm_disk_run_tool_with(argv, &t, doing, err);
    mvm_strv_free(argv);
    return rc;
}

int mvm_disk_image_create(int dirfd, const char *name, const char *path, uint64_t size_mib,
                          const char *mkfs, const struct mvm_disk_mkfs *o, struct mvm_disk *d,
                          struct mvm_error **err)
{
    if (size_mib == 0 || size_mib > (uint64_t)INT64_MAX >> 20)
        return mvm_error_set(err, 0, "cannot make %s %llu MiB large: give 1 MiB to 8 EiB", path,
                             (unsigned long long)size_mib);
    cleanup_close int fd =
        openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return mvm_error_set(err, errno, "creating %s", path);
    if (size_and_format(fd, path, size_mib, mkfs, o, err) < 0) {
        unlinkat(dirfd, name, 0);
        return -1;
    }
    d->fd = steal_fd(&fd);
    d->path = xstrdup(path);
    d->size_bytes = size_mib << 20;
    d->created = true;
    return 0;
}

bool mvm_disk_locked(int dirfd, const char *name)
{
    /* O_NONBLOCK: opening a FIFO must not hang. */
    cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    return fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

bool mvm_disk_is_ext4(int fd)
{
    unsigned char m[2];
    return pread(fd, m, sizeof m, MVM_EXT4_MAGIC_OFFSET) == (ssize_t)sizeof m &&
           (m[0] | m[1] << 8) == MVM_EXT4_MAGIC;
}

int mvm_disk_sweep(const char *dir, const char *suffix, struct mvm_error **err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : mvm_error_set(err, errno, "reading %s", dir);
    time_t now = time(NULL);
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        /* Still locked: a session is formatting it (a large one may take
         * longer than the minute). */
        if (!mvm_disk_has_suffix(de->d_name, suffix) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            now - st.st_mtime < 60 || mvm_disk_locked(dirfd(d), de->d_name))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
            return mvm_error_set(err, errno, "removing %s/%s", dir, de->d_name);
        removed++;
    }
    return removed;
}
