/* The jail, tested from outside: the probe (probe.c) is started through
 * mvm_jail_start() with QEMU's settings and tries every forbidden thing;
 * each must be refused as expected.  Each check then runs again with the
 * layer(s) that refuse it switched off, and must get through -- proof
 * that the check can fail.  Needs root (exit 77 otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail.h"
#include "util.h"

#define ALL  MVM_JAIL_ALL
#define SEC  MVM_JAIL_SECCOMP
#define PRIV (MVM_JAIL_SECCOMP | MVM_JAIL_CAPS | MVM_JAIL_UID)
#define FS   (MVM_JAIL_MOUNTNS | MVM_JAIL_UID | MVM_JAIL_CAPS)

/* Test uids at the top of mvm's range, clear of live sessions. */
#define UID_A (MVM_JAIL_UID_BASE + MVM_JAIL_UID_COUNT - 2)
#define UID_B (MVM_JAIL_UID_BASE + MVM_JAIL_UID_COUNT - 1)

struct expect {
    const char *check;
    const char *jailed; /* result in the full jail */
    unsigned off;       /* layers whose absence lets it through */
    const char *twin;   /* result then: "ok", "errno:X", or "not:X" */
    bool twin_same_uid; /* the twin runs as the other session's uid */
};

static const struct expect table[] = {
    {"unshare_user", "errno:EPERM", SEC, "ok", false},
    {"unshare_mount", "errno:EPERM", PRIV, "ok", false},
    {"setns", "errno:EPERM", SEC, "errno:EBADF", false},
    {"clone_newuser", "errno:EPERM", SEC, "ok", false},
    {"mount", "errno:EPERM", PRIV, "ok", false},
    {"umount", "errno:EPERM", PRIV, "ok", false},
    {"pivot_root", "errno:EPERM", PRIV, "not:EPERM", false},
    {"chroot", "errno:EPERM", PRIV, "ok", false},
    {"ptrace", "errno:EPERM", SEC, "ok", false},
    {"process_vm_readv", "errno:EPERM", SEC, "ok", false},
    {"bpf", "errno:EPERM", PRIV, "ok", false},
    {"perf_event_open", "errno:EPERM", PRIV, "ok", false},
    {"keyctl", "errno:EPERM", SEC, "ok", false},
    {"add_key", "errno:EPERM", SEC, "ok", false},
    {"request_key", "errno:EPERM", SEC, "errno:ENOKEY", false},
    /* Kernels without kexec or module support answer ENOSYS: the twin
     * only has to show that mvm's filter no longer kills. */
    {"kexec_load", "signal:31", PRIV, "not:signal:31", false},
    {"init_module", "signal:31", PRIV, "not:signal:31", false},
    {"finit_module", "signal:31", PRIV, "not:signal:31", false},
    {"delete_module", "signal:31", PRIV, "not:signal:31", false},
    {"reboot", "signal:31", PRIV, "errno:EINVAL", false},
    {"swapon", "errno:EPERM", PRIV, "errno:ENOENT", false},
    {"acct", "errno:EPERM", PRIV, "ok", false},
    {"userfaultfd", "errno:EPERM", PRIV, "ok", false},
    {"iopl", "errno:EPERM", PRIV, "not:EPERM", false}, /* ENOSYS without CONFIG_X86_IOPL_IOPERM */
    {"ioperm", "errno:EPERM", PRIV, "not:EPERM", false},
    {"socket_inet", "errno:EPERM", SEC, "ok", false},
    {"socket_netlink", "errno:EPERM", SEC, "ok", false},
    {"socket_unix", "ok", 0, NULL, false},
    {"open_home", "errno:ENOENT", MVM_JAIL_MOUNTNS, "ok", false},
    {"open_root", "errno:ENOENT", FS, "ok", false},
    {"open_shadow", "errno:ENOENT", FS, "ok", false},
    /* EACCES where PID 1 holds more capabilities than mvm (containers). */
    {"open_proc1_root", "errno:ENOENT", FS | MVM_JAIL_PIDNS, "not:ENOENT", false},
    {"open_run_mvm", "errno:ENOENT", FS, "ok", false},
    {"capset", "errno:EPERM", MVM_JAIL_CAPS | MVM_JAIL_UID, "ok", false},
    {"net_admin_only", "errno:EPERM", 0, NULL, false}, /* ok with .net_admin (below) */
    {"setuid0", "errno:EPERM", MVM_JAIL_UID, "ok", false},
    {"write_usr", "errno:EROFS", FS, "ok", false},
    {"signal_other", "errno:ESRCH", MVM_JAIL_PIDNS, "ok", true},
    /* Another system call ABI: the filter's architecture check kills.
     * Without it, getpid (or SIGSEGV where IA32 emulation is off). */
    {"i386_abi", "signal:31", SEC, "not:signal:31", false},
    {"io_uring", "errno:EPERM", SEC, "ok", false},
    {"personality_default", "ok", 0, NULL, false},
    {"personality_linux32", "errno:EPERM", SEC, "ok", false},
    {"personality_exec", "errno:EPERM", SEC, "ok", false},
    /* ENOSYS where the kernel has no modify_ldt */
    {"modify_ldt", "errno:EPERM", SEC, "not:EPERM", false},
    /* a segment created on the host by main() */
    {"sysv_shm", "errno:ENOENT", MVM_JAIL_IPCNS, "ok", false},
};

static const char *probe_path;
static void *filter;
static bool net_admin; /* run_probe's jails keep CAP_NET_ADMIN (wireguard-go's) */
static int failures;

/* Runs the probe in a jail with `layers` for the given checks; returns
 * its output. */
static char *run_probe(unsigned layers, uid_t uid, pid_t other, const char *const *checks, int n)
{
    char otherbuf[32];
    snprintf(otherbuf, sizeof otherbuf, "%d", (int)other);
    const char *argv[64] = {"/probe", "--other", otherbuf};
    int argc = 3;
    for (int i = 0; i < n && argc < 62; i++)
        argv[argc++] = checks[i];
    argv[argc] = NULL;
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        abort();
    const struct mvm_jail_bind binds[] = {{probe_path, "/probe"}};
    char *const envp[] = {NULL};
    struct mvm_jail j = {
        .name = "probe",
        .path = (layers & MVM_JAIL_MOUNTNS) ? "/probe" : probe_path,
        .argv = (char *const *)argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = out[1],
        .stderr_fd = 2,
        .nofile = 256,
        .layers = layers,
        .binds = binds,
        .nbinds = 1,
        .netns_fd = -1,
        .uid = uid,
        .gid = (gid_t)uid,
        .seccomp = filter,
        .net_admin = net_admin,
    };
    cleanup_pid struct mvm_child c = MVM_CHILD_INIT;
    struct mvm_error *err = NULL;
    if (mvm_jail_start(&j, &c, &err) < 0) {
        fprintf(stderr, "FAIL: starting the probe: %s\n", err->msg);
        exit(1);
    }
    close(out[1]);
    struct buf b = {0};
    char chunk[4096];
    ssize_t r;
    while ((r = read(out[0], chunk, sizeof chunk)) > 0)
        buf_append(&b, chunk, (size_t)r);
    close(out[0]);
    mvm_child_wait(&c, 10000);
    buf_append(&b, "", 1);
    return b.data;
}

static const char *result_of(const char *output, const char *check, char *res, size_t len)
{
    size_t n = strlen(check);
    for (const char *l = output; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, check, n) == 0 && l[n] == ' ') {
            snprintf(res, len, "%.*s", (int)strcspn(l + n + 1, "\n"), l + n + 1);
            return res;
        }
    return "missing";
}

static bool matches(const char *want, const char *got)
{
    if (strncmp(want, "not:", 4) == 0)
        return strcmp(got, "missing") != 0 && strcmp(got, want + 4) != 0 &&
               !(strncmp(got, "errno:", 6) == 0 && strcmp(got + 6, want + 4) == 0);
    return strcmp(want, got) == 0;
}

static void expect(const char *what, const char *check, const char *want, const char *got)
{
    if (matches(want, got)) {
        printf("ok: %s %s: %s\n", what, check, got);
    } else {
        printf("FAIL: %s %s: expected %s, got %s\n", what, check, want, got);
        failures++;
    }
}

/* Another session's jailed process to signal. */
static struct mvm_child start_other(void)
{
    struct mvm_child c = MVM_CHILD_INIT;
    char *const envp[] = {NULL};
    char *const sleeper[] = {"/usr/bin/sleep", "60", NULL};
    struct mvm_jail j = {
        .name = "other session",
        .path = "/usr/bin/sleep",
        .argv = sleeper,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = -1,
        .stderr_fd = -1,
        .layers = ALL,
        .netns_fd = -1,
        .uid = UID_B,
        .gid = UID_B,
        .seccomp = filter,
    };
    struct mvm_error *err = NULL;
    if (mvm_jail_start(&j, &c, &err) < 0) {
        fprintf(stderr, "FAIL: starting the other session: %s\n", err->msg);
        exit(1);
    }
    return c;
}

/* More descriptors than the jail once kept (it cut the list at 60): every
 * one arrives in the child at its number, and nothing else is open. */
static void check_many_fds(void)
{
    enum { N = 100 };
    int fds[N];
    struct buf args = {0};
    buf_printf(&args, "for fd in");
    for (int i = 0; i < N; i++) {
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        buf_printf(&args, " %d", fds[i]);
    }
    buf_printf(&args, "; do [ -e /proc/self/fd/$fd ] || echo missing $fd; done; "
                      "ls /proc/self/fd | wc -l");
    buf_append(&args, "", 1);
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        abort();
    char *const sh[] = {"/bin/sh", "-c", args.data, NULL};
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct mvm_jail j = {.name = "many fds",
                         .path = "/bin/sh",
                         .argv = sh,
                         .envp = envp,
                         .stdin_fd = -1,
                         .stdout_fd = out[1],
                         .stderr_fd = out[1],
                         .keep = fds,
                         .nkeep = N,
                         .nofile = 256,
                         .layers = MVM_JAIL_RLIMITS,
                         .netns_fd = -1};
    cleanup_pid struct mvm_child c = MVM_CHILD_INIT;
    struct mvm_error *err = NULL;
    if (mvm_jail_start(&j, &c, &err) < 0) {
        printf("FAIL: starting a child with %d kept fds: %s\n", N, err->msg);
        failures++;
        return;
    }
    close(out[1]);
    char got[4096] = "";
    ssize_t n = read_full(out[0], got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    close(out[0]);
    mvm_child_wait(&c, 10000);
    /* The kept ones, stdio, and the directory ls reads. */
    char want[32];
    snprintf(want, sizeof want, "%d\n", N + 3 + 1);
    expect("kept", "100 fds", want, got);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    buf_free(&args);
}

int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        printf("SKIP: the jail test needs root (namespaces, uid changes)\n");
        return 77;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test-jail PROBE\n");
        return 2;
    }
    probe_path = argv[1];
    /* mvm creates it on first use; a fresh machine has none yet. */
    if (mkdir("/run/mvm", 0700) < 0 && errno != EEXIST) {
        printf("FAIL: creating /run/mvm: %s\n", strerror(errno));
        return 1;
    }
    unsigned nrules = 0;
    struct mvm_error *err = NULL;
    filter = mvm_jail_filter_new(&nrules, &err);
    if (filter == NULL) {
        fprintf(stderr, "FAIL: %s\n", err->msg);
        return 1;
    }
    printf("seccomp filter: %u rules\n", nrules);
    struct mvm_child other = start_other();
    int shm = shmget(0x6d766d00, 4096, IPC_CREAT | IPC_EXCL | 0666);
    if (shm < 0) {
        printf("FAIL: creating the host's SysV segment: %s\n", strerror(errno));
        return 1;
    }

    const char *checks[64];
    int n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        checks[n++] = table[i].check;
    char res[128];
    char *out = run_probe(ALL, UID_A, other.pid, checks, n);
    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        expect("jailed", table[i].check, table[i].jailed,
               result_of(out, table[i].check, res, sizeof res));
    free(out);

    for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
        const struct expect *e = &table[i];
        if (e->twin == NULL)
            continue;
        char *twin =
            run_probe(ALL & ~e->off, e->twin_same_uid ? UID_B : UID_A, other.pid, &e->check, 1);
        cleanup_free char *what = xasprintf("without layers 0x%x", e->off);
        expect(what, e->check, e->twin, result_of(twin, e->check, res, sizeof res));
        free(twin);
    }
    /* wireguard-go's jail: CAP_NET_ADMIN alone, still no way back to
     * root or to any other capability. */
    net_admin = true;
    static const char *const kept[] = {"net_admin_only", "capset", "setuid0", "mount"};
    static const char *const kept_want[] = {"ok", "errno:EPERM", "errno:EPERM", "errno:EPERM"};
    out = run_probe(ALL, UID_A, other.pid, kept, (int)ARRAY_SIZE(kept));
    for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
        expect("with CAP_NET_ADMIN kept", kept[i], kept_want[i],
               result_of(out, kept[i], res, sizeof res));
    free(out);
    net_admin = false;
    check_many_fds();
    mvm_child_kill(&other);
    shmctl(shm, IPC_RMID, NULL);
    mvm_jail_filter_free(filter);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
