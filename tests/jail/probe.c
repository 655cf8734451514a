/* The jail probe: started through mvm_jail_start() with the same settings
 * as QEMU, it tries forbidden things and reports, one line each,
 *     NAME ok | NAME errno:ENAME | NAME signal:N
 * Each attempt runs in a child so a seccomp kill is observed, not fatal.
 * Usage: probe [--other PID] CHECK...   ("all" runs every check) */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t other_pid;

static int sys(long nr, long a, long b, long c, long d, long e)
{
    return (int)syscall(nr, a, b, c, d, e);
}

/* A sibling that lets anyone of its uid trace it (no Yama surprise). */
static pid_t sibling(void)
{
    pid_t p = fork();
    if (p == 0) {
        prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);
        pause();
        _exit(0);
    }
    usleep(20000);
    return p;
}

static int do_ptrace(void)
{
    pid_t s = sibling();
    int rc = (int)ptrace(PTRACE_ATTACH, s, 0, 0);
    int e = errno;
    kill(s, SIGKILL);
    errno = e;
    return rc;
}

static int do_vm_readv(void)
{
    pid_t s = sibling();
    char buf[8];
    static char src[8] = "probe";
    struct iovec l = {buf, sizeof buf}, r = {src, sizeof src};
    int rc = (int)process_vm_readv(s, &l, 1, &r, 1, 0);
    int e = errno;
    kill(s, SIGKILL);
    errno = e;
    return rc < 0 ? -1 : 0;
}

static int do_capset(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return -1;
    d[0].effective |= 1u << CAP_SYS_ADMIN;
    d[0].permitted |= 1u << CAP_SYS_ADMIN;
    return (int)syscall(SYS_capset, &h, d);
}

/* Effective: CAP_NET_ADMIN and nothing else, and ambient (it survived
 * exec); EPERM otherwise. */
static int do_net_admin_only(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return -1;
    if (d[0].effective != 1u << CAP_NET_ADMIN || d[1].effective != 0 ||
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_ADMIN, 0, 0) != 1) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

static int do_write_usr(void)
{
    char path[64];
    snprintf(path, sizeof path, "/usr/.mvm-jail-probe-%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(path); /* only when a twin run had no read-only /usr */
    return 0;
}

static int do_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -1 : 0;
}

static int do_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -1 : 0;
}

static int do_bpf(void)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    int fd = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -1 : 0;
}

static int do_perf(void)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_TASK_CLOCK;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -1 : 0;
}

static int do_clone_newuser(void)
{
    pid_t p = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (p == 0)
        _exit(0);
    if (p > 0)
        waitpid(p, NULL, 0);
    return p < 0 ? -1 : 0;
}

static int do_io_uring(void)
{
    char params[120]; /* struct io_uring_params */
    memset(params, 0, sizeof params);
    int fd = (int)syscall(SYS_io_uring_setup, 1, params);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -1 : 0;
}

/* The SysV shared memory segment the test created on the host. */
static int do_sysv_shm(void)
{
    return shmget(0x6d766d00, 0, 0) < 0 ? -1 : 0;
}

/* getpid through the i386 ABI: not the filter's architecture. */
static int do_int80(void)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return 0;
}

static int run_check(const char *c)
{
    if (!strcmp(c, "unshare_user"))
        return unshare(CLONE_NEWUSER);
    if (!strcmp(c, "unshare_mount"))
        return unshare(CLONE_NEWNS);
    if (!strcmp(c, "setns"))
        return setns(-1, 0);
    if (!strcmp(c, "clone_newuser"))
        return do_clone_newuser();
    if (!strcmp(c, "mount"))
        return mount("none", "/dev", "tmpfs", 0, NULL);
    if (!strcmp(c, "umount"))
        return umount2("/usr", MNT_DETACH);
    if (!strcmp(c, "pivot_root"))
        return sys(SYS_pivot_root, (long)"/", (long)"/", 0, 0, 0);
    if (!strcmp(c, "chroot"))
        return chroot("/");
    if (!strcmp(c, "ptrace"))
        return do_ptrace();
    if (!strcmp(c, "process_vm_readv"))
        return do_vm_readv();
    if (!strcmp(c, "bpf"))
        return do_bpf();
    if (!strcmp(c, "perf_event_open"))
        return do_perf();
    if (!strcmp(c, "keyctl"))
        return sys(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1, 0, 0) < 0 ? -1
                                                                                             : 0;
    if (!strcmp(c, "add_key"))
        return sys(SYS_add_key, (long)"user", (long)"mvm-probe", (long)"x", 1,
                   KEY_SPEC_PROCESS_KEYRING) < 0
                   ? -1
                   : 0;
    if (!strcmp(c, "request_key"))
        return sys(SYS_request_key, (long)"user", (long)"mvm-probe-none", 0, 0, 0) < 0 ? -1 : 0;
    /* Invalid flags: refused after the privilege check, so a twin run
     * without the jail gets EINVAL and nothing happens. */
    if (!strcmp(c, "kexec_load"))
        return sys(SYS_kexec_load, 0, 0, 0, 0x8, 0);
    if (!strcmp(c, "init_module"))
        return sys(SYS_init_module, 0, 0, (long)"", 0, 0);
    if (!strcmp(c, "finit_module"))
        return sys(SYS_finit_module, -1, (long)"", 0, 0, 0);
    if (!strcmp(c, "delete_module"))
        return sys(SYS_delete_module, (long)"mvm_probe_none", O_NONBLOCK, 0, 0, 0);
    /* In a PID namespace, CAD_OFF is EINVAL past the privilege check. */
    if (!strcmp(c, "reboot"))
        return sys(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF,
                   0, 0);
    if (!strcmp(c, "swapon"))
        return sys(SYS_swapon, (long)"/nonexistent-swap", 0, 0, 0, 0);
    if (!strcmp(c, "acct"))
        return sys(SYS_acct, 0, 0, 0, 0, 0);
    if (!strcmp(c, "userfaultfd"))
        return sys(SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0) < 0 ? -1 : 0;
    if (!strcmp(c, "iopl"))
        return iopl(3);
    if (!strcmp(c, "ioperm"))
        return ioperm(0x80, 1, 1);
    if (!strcmp(c, "socket_inet"))
        return do_socket(AF_INET);
    if (!strcmp(c, "socket_netlink"))
        return do_socket(AF_NETLINK);
    if (!strcmp(c, "socket_unix"))
        return do_socket(AF_UNIX);
    if (!strcmp(c, "open_home"))
        return do_open("/home");
    if (!strcmp(c, "open_root"))
        return do_open("/root");
    if (!strcmp(c, "open_shadow"))
        return do_open("/etc/shadow");
    if (!strcmp(c, "open_proc1_root"))
        return do_open("/proc/1/root");
    if (!strcmp(c, "open_run_mvm"))
        return do_open("/run/mvm");
    if (!strcmp(c, "capset"))
        return do_capset();
    if (!strcmp(c, "net_admin_only"))
        return do_net_admin_only();
    if (!strcmp(c, "setuid0"))
        return setuid(0);
    if (!strcmp(c, "write_usr"))
        return do_write_usr();
    if (!strcmp(c, "signal_other"))
        return kill(other_pid, 0);
    if (!strcmp(c, "i386_abi"))
        return do_int80();
    if (!strcmp(c, "io_uring"))
        return do_io_uring();
    if (!strcmp(c, "sysv_shm"))
        return do_sysv_shm();
    if (!strcmp(c, "personality_default")) /* the default persona stays allowed */
        return sys(SYS_personality, 0, 0, 0, 0, 0) < 0 ? -1 : 0;
    if (!strcmp(c, "personality_linux32")) /* 0x0008: PER_LINUX32 */
        return sys(SYS_personality, 0x0008, 0, 0, 0, 0) < 0 ? -1 : 0;
    if (!strcmp(c, "personality_exec")) /* READ_IMPLIES_EXEC */
        return sys(SYS_personality, 0x0400000, 0, 0, 0, 0) < 0 ? -1 : 0;
    if (!strcmp(c, "modify_ldt")) {
        char table[64];
        return sys(SYS_modify_ldt, 0, (long)table, sizeof table, 0, 0) < 0 ? -1 : 0;
    }
    errno = ENOSYS;
    return -2;
}

const char *const all_checks[] = {
    "unshare_user",
    "unshare_mount",
    "setns",
    "clone_newuser",
    "mount",
    "umount",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "acct",
    "userfaultfd",
    "iopl",
    "ioperm",
    "socket_inet",
    "socket_netlink",
    "socket_unix",
    "open_home",
    "open_root",
    "open_shadow",
    "open_proc1_root",
    "open_run_mvm",
    "capset",
    "net_admin_only",
    "setuid0",
    "write_usr",
    "signal_other",
    NULL,
};

static void check(const char *c)
{
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return;
    pid_t p = fork();
    if (p == 0) {
        close(pipefd[0]);
        int rc = run_check(c);
        int e = rc < 0 ? errno : 0;
        (void)!write(pipefd[1], &e, sizeof e);
        _exit(0);
    }
    close(pipefd[1]);
    int e = -1, st = 0;
    ssize_t n = read(pipefd[0], &e, sizeof e);
    close(pipefd[0]);
    waitpid(p, &st, 0);
    if (n != sizeof e && WIFSIGNALED(st))
        printf("%s signal:%d\n", c, WTERMSIG(st));
    else if (e == 0)
        printf("%s ok\n", c);
    else
        printf("%s errno:%s\n", c, strerrorname_np(e) ? strerrorname_np(e) : "?");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--other") == 0) {
        other_pid = (pid_t)atoi(argv[i + 1]);
        i += 2;
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "all") == 0)
            for (const char *const *c = all_checks; *c; c++)
                check(*c);
        else
            check(argv[i]);
    }
    return 0;
}
