/* mvm doctor: the checks, in the order `mvm run` meets what they check.
 * Each looks at what the session would use -- the same QEMU, virtiofsd,
 * kernel search, modules, rulesets, cgroup layout and directories -- and
 * changes nothing on the machine.  Settings come from the config files,
 * as for mvm run, with doctor's own options on top. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accel.h"
#include "doctor.h"
#include "initramfs.h"
#include "session-int.h"
#include "syscalls.h"
#include "util.h"
#include "wggenl.h"

#define QUERY_TIMEOUT_MS 10000
#define QUERY_MAX        (1u << 20)
#define KERNEL_READ_MAX  (256u << 20)
#define NOBODY           65534
#define GIB              (1ULL << 30)
#define SPACE_WARN       (2 * GIB)
#define SPACE_FAIL       (256ULL << 20)
#define STATE_DIR        "/var/lib/mvm"

struct doctor {
    struct mvm_doctor_report r;
    struct mvm_run_opts o;  /* the config files, then doctor's --kernel/--modules */
    const char *qemu;       /* --qemu, else the one mvm run uses; NULL: none */
    const char *kernel_opt; /* doctor's --kernel, --modules */
    const char *modules_opt;
    bool root;
    unsigned release[2]; /* the host kernel's version */
    char release_text[65];
    uid_t uid; /* the invoking user (through sudo: who ran it) */
    gid_t gid;
};

#define ADD(d, name, st, fix, ...) mvm_doctor_add(&(d)->r, name, st, fix, __VA_ARGS__)

static void check_root(struct doctor *d)
{
    if (d->root)
        ADD(d, "root", MVM_DOCTOR_OK, NULL, "running as root, as mvm run does");
    else
        ADD(d, "root", MVM_DOCTOR_WARN, "run sudo mvm doctor to check everything",
            "not root: mvm run needs root (sudo mvm run); the nftables, firewall and "
            "idmapped-mount checks need it too");
}

static void check_config(struct doctor *d)
{
    cleanup_error struct mvm_error *err = NULL;
    if (mvm_config_load_defaults(&d->o, &err) < 0) {
        ADD(d, "config", MVM_DOCTOR_FAIL,
            "correct or remove that line (the keys are mvm run's long options: mvm run --help)",
            "%s", err->msg);
        return;
    }
    ADD(d, "config", MVM_DOCTOR_OK, NULL,
        "/etc/mvm/config and ~/.config/mvm/config are fine (or absent)");
}

/* One of the words of /proc/cpuinfo's first flags line. */
static bool cpu_flag(const char *cpuinfo, const char *flag)
{
    const char *line = cpuinfo ? strstr(cpuinfo, "\nflags") : NULL;
    if (line == NULL)
        return false;
    size_t end = strcspn(line + 1, "\n") + 1, len = strlen(flag);
    for (const char *p = line; (p = strstr(p + 1, flag)) != NULL && p < line + end;)
        if (p[-1] == ' ' && (p[len] == ' ' || p[len] == '\n'))
            return true;
    return false;
}

/* What to do about a KVM that cannot run a guest; the cases mvm tells
 * apart: PVM, a VM without nested virtualisation, a missing module, no
 * rights, and a probe that failed anyway. */
static const char *kvm_fix(void)
{
    if (access("/dev/kvm", F_OK) == 0 && access("/dev/kvm", R_OK | W_OK) < 0)
        return "run mvm as root (sudo), which may open /dev/kvm";
    if (access("/sys/module/kvm_pvm", F_OK) == 0)
        return "nothing to change, TCG works; for speed, a host whose KVM is hardware-assisted "
               "(kvm_intel or kvm_amd) rather than PVM";
    if (access("/dev/kvm", F_OK) == 0)
        return "see dmesg for KVM errors; a nested KVM needs its host to pass VT-x/AMD-V on";
    cleanup_free char *cpuinfo = read_file("/proc/cpuinfo", 4u << 20, NULL);
    if (cpu_flag(cpuinfo, "vmx") || cpu_flag(cpuinfo, "svm"))
        return "load KVM: modprobe kvm_intel (Intel) or modprobe kvm_amd (AMD)";
    if (cpu_flag(cpuinfo, "hypervisor"))
        return "this machine is a VM without nested virtualisation: enable it on its host "
               "(kvm_intel nested=1, or the cloud's nested-virtualisation option)";
    return "enable VT-x or AMD-V in the firmware settings";
}

static void check_kvm(struct doctor *d)
{
    const char *why = NULL;
    if (d->o.accel == MVM_ACCEL_TCG) {
        ADD(d, "kvm", MVM_DOCTOR_OK, NULL, "not used: accel = tcg in the config");
        return;
    }
    if (mvm_kvm_usable(&why)) {
        ADD(d, "kvm", MVM_DOCTOR_OK, NULL, "/dev/kvm runs a test guest: guests use KVM");
        return;
    }
    if (d->o.accel == MVM_ACCEL_KVM)
        ADD(d, "kvm", MVM_DOCTOR_FAIL, "set accel = auto (or tcg) in the config",
            "%s, and the config says accel = kvm", why);
    else
        ADD(d, "kvm", MVM_DOCTOR_WARN, kvm_fix(),
            "%s; mvm run uses TCG emulation instead (it works, slower)", why);
}

/* Reads what the child writes to fd until EOF or the deadline. */
static int read_until(int fd, uint64_t deadline, struct buf *out)
{
    char chunk[4096];
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)((deadline - now) / 1000000) + 1);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc <= 0)
            continue;
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -1;
        if (n > 0 && out->len + (size_t)n <= QUERY_MAX)
            buf_append(out, chunk, (size_t)n);
    }
}

/* QEMU's answer to one query (--version, -device help), asked as nobody
 * with no capabilities, no_new_privs, an empty network namespace and a
 * minimal environment (when root; else as the caller), within
 * QUERY_TIMEOUT_MS.  Its stdout and stderr together. */
static char *qemu_query(const struct doctor *d, char *const *argv, struct mvm_error **err)
{
    static char *const envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        mvm_error_set(err, errno, "asking %s: pipe", d->qemu);
        return NULL;
    }
    struct mvm_jail j = {
        .name = "QEMU",
        .path = d->qemu,
        .argv = argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = p[1],
        .stderr_fd = p[1],
        .layers = MVM_JAIL_NNP | MVM_JAIL_RLIMITS,
        .netns_fd = -1,
        .uid = NOBODY,
        .gid = NOBODY,
    };
    if (d->root)
        j.layers |= MVM_JAIL_UID | MVM_JAIL_CAPS | MVM_JAIL_NETNS | MVM_JAIL_IPCNS | MVM_JAIL_PIDNS;
    cleanup_pid struct mvm_child c = MVM_CHILD_INIT;
    int rc = mvm_jail_start(&j, &c, err);
    close(p[1]);
    cleanup_close int rd = p[0];
    if (rc < 0)
        return NULL;
    struct buf out = {0};
    uint64_t deadline = now_ns() + QUERY_TIMEOUT_MS * 1000000ULL;
    if (read_until(rd, deadline, &out) < 0 || mvm_child_wait(&c, 1000) != 1) {
        kill(-c.pid, SIGKILL); /* its process group: what it started too */
        buf_free(&out);
        mvm_error_set(err, 0, "%s %s did not answer within %d s", d->qemu, argv[1],
                      QUERY_TIMEOUT_MS / 1000);
        return NULL;
    }
    buf_append(&out, "", 1);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
        out.data[strcspn(out.data, "\n")] = '\0';
        mvm_error_set(err, 0, "%s %s failed: %s", d->qemu, argv[1],
                      out.data[0] ? out.data : "no message");
        buf_free(&out);
        return NULL;
    }
    return out.data;
}

#define QEMU_FIX "install QEMU 6.2 or later: apt-get install qemu-system-x86"

static void check_qemu_devices(struct doctor *d)
{
    static const char *const devices[] = {"vhost-user-fs-device", "virtio-blk-device",
                                          "virtio-net-device", "virtio-serial-device"};
    static const char *const machines[] = {"microvm"};
    cleanup_error struct mvm_error *err = NULL;
    cleanup_free char *dev =
        qemu_query(d, (char *[]){(char *)d->qemu, "-device", "help", NULL}, &err);
    cleanup_free char *mach =
        dev ? qemu_query(d, (char *[]){(char *)d->qemu, "-machine", "help", NULL}, &err) : NULL;
    if (mach == NULL) {
        ADD(d, "qemu-devices", MVM_DOCTOR_FAIL, QEMU_FIX, "%s", err->msg);
        return;
    }
    cleanup_free char *no_dev = mvm_doctor_qemu_lacks(dev, devices, ARRAY_SIZE(devices), false);
    cleanup_free char *no_mach = mvm_doctor_qemu_lacks(mach, machines, 1, true);
    if (no_dev || no_mach)
        ADD(d, "qemu-devices", MVM_DOCTOR_FAIL, QEMU_FIX, "%s lacks %s%s%s", d->qemu,
            no_mach ? "the microvm machine" : "", no_mach && no_dev ? " and " : "",
            no_dev ? no_dev : "");
    else
        ADD(d, "qemu-devices", MVM_DOCTOR_OK, NULL,
            "microvm, vhost-user-fs-device, virtio-blk-device, virtio-net-device, "
            "virtio-serial-device");
}

static void check_qemu(struct doctor *d)
{
    if (d->qemu == NULL || access(d->qemu, X_OK) < 0) {
        ADD(d, "qemu", MVM_DOCTOR_FAIL, "apt-get install qemu-system-x86",
            d->qemu ? "%s is not an executable file" : "qemu-system-x86_64 not found%s",
            d->qemu ? d->qemu : " (in /usr/bin, /usr/local/bin, /usr/libexec/qemu-kvm)");
        ADD(d, "qemu-devices", MVM_DOCTOR_FAIL, QEMU_FIX, "not checked: no QEMU");
        return;
    }
    cleanup_error struct mvm_error *err = NULL;
    cleanup_free char *text = qemu_query(d, (char *[]){(char *)d->qemu, "--version", NULL}, &err);
    unsigned v[3];
    if (text == NULL || mvm_doctor_qemu_version(text, v) < 0) {
        ADD(d, "qemu", MVM_DOCTOR_FAIL, QEMU_FIX, "%s",
            err ? err->msg : "its --version names no QEMU version");
        ADD(d, "qemu-devices", MVM_DOCTOR_FAIL, QEMU_FIX, "not checked: QEMU did not answer");
        return;
    }
    if (v[0] < 6 || (v[0] == 6 && v[1] < 2))
        ADD(d, "qemu", MVM_DOCTOR_FAIL, QEMU_FIX, "QEMU %u.%u.%u at %s is older than 6.2", v[0],
            v[1], v[2], d->qemu);
    else
        ADD(d, "qemu", MVM_DOCTOR_OK, NULL, "QEMU %u.%u.%u at %s", v[0], v[1], v[2], d->qemu);
    check_qemu_devices(d);
}

static void check_virtiofsd(struct doctor *d)
{
    struct mvm_virtiofsd v = {0};
    cleanup_error struct mvm_error *err = NULL;
    if (mvm_virtiofsd_find(&v, &err) < 0) {
        ADD(d, "virtiofsd", MVM_DOCTOR_FAIL,
            "apt-get install qemu-system-x86 (Debian 12), or the virtiofsd package",
            "not found in /usr/libexec or /usr/lib/qemu");
        return;
    }
    ADD(d, "virtiofsd", MVM_DOCTOR_OK, NULL, "%s (the %s one)", v.path,
        v.flavor == MVM_VIRTIOFSD_C ? "C" : "Rust");
    mvm_virtiofsd_clear(&v);
}

struct modfiles {
    const char *dir;
    const struct mvm_modlist *mods;
};

/* In a child with the rights the modules are read with (run_as): the
 * first module file that is not there, written to out_fd. */
static int first_missing(void *arg, int out_fd)
{
    const struct modfiles *mf = arg;
    for (size_t i = 0; i < mf->mods->n; i++) {
        cleanup_free char *path = xasprintf("%s/%s", mf->dir, mf->mods->paths[i]);
        if (access(path, R_OK) < 0) {
            int e = errno;
            write_all(out_fd, path, strlen(path));
            return e;
        }
    }
    return 0;
}

/* The first of mods that k's reader cannot read, as "PATH: why"; NULL
 * when every file is there. */
static char *module_file_missing(const struct mvm_kernel *k, const struct mvm_modlist *mods)
{
    struct modfiles mf = {k->modules_dir, mods};
    struct buf path = {0};
    int rc = run_as(k->uid, k->gid, first_missing, &mf, &path, PATH_MAX);
    int e = rc > 0 ? rc : errno;
    buf_append(&path, "", 1);
    char *msg = rc == 0
                    ? NULL
                    : xasprintf("%s: %s", path.len > 1 ? path.data : k->modules_dir, strerror(e));
    buf_free(&path);
    return msg;
}

/* A kernel without a modules directory (one made for mvm, contrib/kernel/)
 * is fine when its config builds in everything a session may need. */
static void check_builtin(struct doctor *d, const struct mvm_kernel *k, const char *const *want,
                          size_t n)
{
    const char *name = k->release ? k->release : k->image;
    cleanup_free char *config = mvm_kernel_config(k, "/boot");
    struct buf missing = {0};
    if (config != NULL && mvm_kernel_config_missing(config, want, n, &missing) == 0)
        ADD(d, "modules", MVM_DOCTOR_OK, NULL,
            "kernel %s has no modules directory, and its config builds in all mvm needs", name);
    else if (config != NULL)
        ADD(d, "modules", MVM_DOCTOR_WARN, "install that kernel's modules, or give --modules DIR",
            "no modules directory for kernel %s, and its config does not build in %.*s", name,
            (int)missing.len, missing.data);
    else
        ADD(d, "modules", MVM_DOCTOR_WARN, "install that kernel's modules, or give --modules DIR",
            "no modules directory for kernel %s: its virtio drivers must be built in", name);
    buf_free(&missing);
}

/* The modules every kind of session may load, for the configured machine:
 * resolved through modules.dep, and each file there. */
static void check_modules(struct doctor *d, const struct mvm_kernel *k)
{
    const char *name = k->release ? k->release : k->image;
    const char *want[SESSION_MAX_MODULES];
    size_t n = session_modules(d->o.machine != MVM_MACHINE_Q35, true, true, true, want);
    if (k->modules_dir == NULL) {
        check_builtin(d, k, want, n);
        return;
    }
    struct mvm_modlist mods = {0};
    cleanup_error struct mvm_error *err = NULL;
    cleanup_free char *fix = xasprintf("give the modules directory of kernel %s (with modules.dep, "
                                       "as depmod writes it), or install that kernel's modules",
                                       name);
    if (mvm_initramfs_modules(k, want, n, &mods, &err) < 0) {
        ADD(d, "modules", MVM_DOCTOR_FAIL, fix, "%s", err->msg);
        return;
    }
    cleanup_free char *missing = module_file_missing(k, &mods);
    size_t nfiles = mods.n;
    mvm_modlist_clear(&mods);
    if (missing) {
        ADD(d, "modules", MVM_DOCTOR_FAIL, fix, "%s (modules.dep lists it)", missing);
        return;
    }
    struct buf names = {0};
    for (size_t i = 0; i < n; i++)
        buf_printf(&names, "%s%s", i ? ", " : "", want[i]);
    buf_append(&names, "", 1);
    ADD(d, "modules", MVM_DOCTOR_OK, NULL,
        "%s: built in, or among the %zu files (dependencies included) they need from %s",
        names.data, nfiles, k->modules_dir);
    buf_free(&names);
}

#define KERNEL_FIX                                                                             \
    "install a kernel with its modules (apt-get install linux-image-amd64), or give --kernel " \
    "PATH and --modules DIR"

static void check_kernel(struct doctor *d)
{
    struct mvm_kernel_search where = {"/boot", "/lib/modules", d->release_text, d->uid, d->gid};
    struct mvm_kernel k;
    cleanup_error struct mvm_error *err = NULL;
    if (mvm_kernel_resolve(d->o.kernel, d->o.modules, &where, &k, &err) < 0) {
        ADD(d, "kernel", MVM_DOCTOR_FAIL, KERNEL_FIX, "%s", err->msg);
        ADD(d, "modules", MVM_DOCTOR_FAIL, KERNEL_FIX, "not checked: no guest kernel");
        return;
    }
    /* What mvm run does on first use, in memory: the cache stays as is. */
    size_t len = 0;
    cleanup_free char *img = read_file_as(k.uid, k.gid, k.image, KERNEL_READ_MAX, &len);
    struct buf vmlinux = {0};
    if (img == NULL)
        ADD(d, "kernel", MVM_DOCTOR_FAIL, KERNEL_FIX, "reading %s: %s", k.image, strerror(errno));
    else if (mvm_kernel_extract(img, len, &vmlinux, &err) < 0)
        ADD(d, "kernel", MVM_DOCTOR_FAIL, KERNEL_FIX, "%s: %s", k.image, err->msg);
    else
        ADD(d, "kernel", MVM_DOCTOR_OK, NULL, "%s (%s): its vmlinux extracts (%zu MiB)", k.image,
            k.release ? k.release : "release unknown", vmlinux.len >> 20);
    buf_free(&vmlinux);
    check_modules(d, &k);
    mvm_kernel_clear(&k);
}

static void check_mkfs(struct doctor *d)
{
    const char *path = NULL;
    if (mvm_disk_mkfs_find(&path, NULL) == 0)
        ADD(d, "mkfs.ext4", MVM_DOCTOR_OK, NULL, "%s (formats volumes and scratch disks)", path);
    else
        ADD(d, "mkfs.ext4", d->o.disk_mib > 0 ? MVM_DOCTOR_FAIL : MVM_DOCTOR_WARN,
            "apt-get install e2fsprogs",
            "not found in /usr/sbin or /sbin: the scratch disk (--disk, on by default) and "
            "--volume need it");
}

/* Only mvm image build needs it: a warning at most. */
static void check_mmdebstrap(struct doctor *d)
{
    const char *path = mvm_image_mmdebstrap();
    if (path)
        ADD(d, "mmdebstrap", MVM_DOCTOR_OK, NULL, "%s (mvm image build bootstraps Debian with it)",
            path);
    else
        ADD(d, "mmdebstrap", MVM_DOCTOR_WARN, "apt-get install mmdebstrap",
            "not found in /usr/bin: mvm image build needs it (mvm run does not)");
}

static void check_tun(struct doctor *d)
{
    struct stat st;
    if (d->o.net == MVM_NETOPT_NONE)
        ADD(d, "tun", MVM_DOCTOR_OK, NULL, "not needed: net = none in the config");
    else if (stat("/dev/net/tun", &st) == 0 && S_ISCHR(st.st_mode))
        ADD(d, "tun", MVM_DOCTOR_OK, NULL, "/dev/net/tun (the guest's network interface)");
    else
        ADD(d, "tun", MVM_DOCTOR_FAIL, "modprobe tun; or run with --net none",
            "/dev/net/tun is missing: the guest's network needs it");
}

static void check_nftables(struct doctor *d)
{
    cleanup_error struct mvm_error *err = NULL;
    if (d->o.net == MVM_NETOPT_NONE)
        ADD(d, "nftables", MVM_DOCTOR_OK, NULL, "not needed: net = none in the config");
    else if (!d->root)
        ADD(d, "nftables", MVM_DOCTOR_WARN, "run sudo mvm doctor", "not checked: needs root");
    else if (mvm_net_nft_probe(&err) < 0)
        ADD(d, "nftables", MVM_DOCTOR_FAIL,
            "a kernel with nf_tables, NAT and reject (modprobe nf_tables nft_nat "
            "nft_reject_inet nft_fib_inet); or run with --net none",
            "%s", err->msg);
    else
        ADD(d, "nftables", MVM_DOCTOR_OK, NULL,
            "mvm's rulesets load (tried in a throwaway network namespace)");
}

static void check_forwarding(struct doctor *d)
{
    cleanup_free char *v = read_file("/proc/sys/net/ipv4/ip_forward", 64, NULL);
    if (v == NULL)
        ADD(d, "forwarding", MVM_DOCTOR_WARN, "a kernel with IPv4 networking",
            "cannot read /proc/sys/net/ipv4/ip_forward: %s", strerror(errno));
    else if (v[0] == '1')
        ADD(d, "forwarding", MVM_DOCTOR_OK, NULL, "IPv4 forwarding is on");
    else
        ADD(d, "forwarding", MVM_DOCTOR_OK, NULL,
            "IPv4 forwarding is off: mvm turns it on for its sessions and says so (sudo mvm "
            "cleanup --all restores it)");
}

static void check_firewall(struct doctor *d)
{
    if (!d->root) {
        ADD(d, "firewall", MVM_DOCTOR_WARN, "run sudo mvm doctor", "not checked: needs root");
        return;
    }
    cleanup_free char *dropper = mvm_net_forward_blocked();
    if (dropper)
        ADD(d, "firewall", MVM_DOCTOR_WARN,
            "let mvm's interfaces through: iptables -I FORWARD -i mvm-+ -j ACCEPT; iptables -I "
            "FORWARD -o mvm-+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "%s drops forwarded traffic by default (Docker, ufw or firewalld?): guests' "
            "connections may time out",
            dropper);
    else
        ADD(d, "firewall", MVM_DOCTOR_OK, NULL,
            "no other nftables table drops forwarded traffic (legacy iptables rules are not "
            "seen)");
}

static void check_cgroup(struct doctor *d)
{
    int v = mvm_cgroup_version("/sys/fs/cgroup");
    if (v == 2)
        ADD(d, "cgroup", MVM_DOCTOR_OK, NULL, "cgroup v2 with the memory and pids controllers");
    else if (v == 1)
        ADD(d, "cgroup", MVM_DOCTOR_OK, NULL,
            "cgroup v1 memory and pids hierarchies (the v2 hierarchy lacks those controllers)");
    else
        ADD(d, "cgroup", MVM_DOCTOR_WARN,
            "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2), or mount the v1 memory and "
            "pids controllers under /sys/fs/cgroup",
            "no memory and pids controllers under /sys/fs/cgroup: QEMU's memory and tasks will "
            "not be capped");
}

/* --wireguard takes the kernel's WireGuard where a link of its kind can
 * be made (tried in a throwaway namespace, as root), else wireguard-go
 * (session/wireguard.c): say which. */
static void check_wireguard(struct doctor *d)
{
    cleanup_error struct mvm_error *err = NULL;
    const char *module = session_wireguard_module();
    const char *go = session_wireguard_go();
    int kernel = d->root ? mvm_wg_kernel_probe(&err) : -1;
    if (kernel < 0) /* not root: the module's files say what a probe would */
        kernel = module != NULL;
    if (kernel)
        ADD(d, "wireguard", MVM_DOCTOR_OK, NULL, "the kernel's WireGuard for --wireguard (%s)",
            module && strcmp(module, "available") == 0 ? "its module loads on demand"
                                                       : "its module is loaded or built in");
    else if (go)
        ADD(d, "wireguard", MVM_DOCTOR_OK, NULL,
            "%s for --wireguard (the kernel has no WireGuard%s)", go,
            module ? ": its module is listed but makes no link" : "");
    else
        ADD(d, "wireguard", MVM_DOCTOR_WARN, "apt-get install wireguard-go wireguard-tools",
            "neither the kernel's WireGuard nor wireguard-go, one of which --wireguard needs");
}

#define IDMAP_FIX "Linux 5.12 or later, with /usr on ext4, xfs or btrfs"

static void check_idmap(struct doctor *d)
{
    cleanup_error struct mvm_error *err = NULL;
    const char *fallback = "/usr is served with its files owned by nobody in the guest";
    if (d->release[0] < 5 || (d->release[0] == 5 && d->release[1] < 12))
        ADD(d, "idmap", MVM_DOCTOR_WARN, IDMAP_FIX, "Linux %s has no idmapped mounts: %s",
            d->release_text, fallback);
    else if (!d->root && syscall(SYS_mount_setattr, -1, "", 0, NULL, 0) < 0 && errno == ENOSYS)
        ADD(d, "idmap", MVM_DOCTOR_WARN, IDMAP_FIX, "mount_setattr is not available: %s", fallback);
    else if (!d->root)
        ADD(d, "idmap", MVM_DOCTOR_WARN, "run sudo mvm doctor",
            "Linux %s has mount_setattr; /usr not tried: needs root", d->release_text);
    else if (mvm_share_idmap_probe("/usr", &err) < 0)
        ADD(d, "idmap", MVM_DOCTOR_WARN, IDMAP_FIX, "%s: %s", err->msg, fallback);
    else
        ADD(d, "idmap", MVM_DOCTOR_OK, NULL, "/usr takes idmapped mounts (Linux %s)",
            d->release_text);
}

static void check_space(struct doctor *d, const char *name, const char *dir, const char *fix)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    struct statvfs v;
    /* Not made yet: the file system it will be on. */
    while (statvfs(path, &v) < 0) {
        char *slash = strrchr(path, '/');
        if (errno != ENOENT || slash == NULL || slash == path) {
            ADD(d, name, MVM_DOCTOR_WARN, NULL, "cannot tell the free space under %s: %s", dir,
                strerror(errno));
            return;
        }
        *slash = '\0';
    }
    unsigned long long avail = (unsigned long long)v.f_bavail * v.f_frsize;
    enum mvm_doctor_status st = avail < SPACE_FAIL   ? MVM_DOCTOR_FAIL
                                : avail < SPACE_WARN ? MVM_DOCTOR_WARN
                                                     : MVM_DOCTOR_OK;
    ADD(d, name, st, fix, "%.1f GiB free under %s%s%s%s", (double)avail / GIB, dir,
        strcmp(path, dir) != 0 ? " (not made yet; on the file system of " : "",
        strcmp(path, dir) != 0 ? path : "", strcmp(path, dir) != 0 ? ")" : "");
}

static const char doctor_usage[] =
    "Usage: mvm doctor [--json] [--kernel PATH] [--modules DIR] [--qemu PATH]\n"
    "\n"
    "Checks whether mvm run can work on this machine: one line per check (ok, warn\n"
    "or FAIL), what was found and, when it falls short, what to install or change.\n"
    "Exits 0 when no check failed (warnings allowed), 1 when one did.  It changes\n"
    "nothing and boots no VM; as root (sudo mvm doctor) it checks everything.\n"
    "Settings come from the config files, as for mvm run.\n"
    "  --json           a JSON array of {check, status, detail, fix} instead\n"
    "  --kernel PATH    check this guest kernel (as mvm run --kernel)\n"
    "  --modules DIR    and this modules directory (as mvm run --modules)\n"
    "  --qemu PATH      check this QEMU binary instead of the one mvm run uses\n";

/* Sets *value from "--opt VALUE" or "--opt=VALUE"; 1 when argv[*i] is opt. */
static int option_value(int argc, char **argv, int *i, const char *opt, const char **value)
{
    size_t len = strlen(opt);
    if (strncmp(argv[*i], opt, len) != 0 || (argv[*i][len] != '\0' && argv[*i][len] != '='))
        return 0;
    *value = argv[*i][len] == '=' ? argv[*i] + len + 1 : *i + 1 < argc ? argv[++*i] : NULL;
    return *value ? 1 : -1;
}

static int parse_args(struct doctor *d, int argc, char **argv, bool *json)
{
    for (int i = 1; i < argc; i++) {
        const char **targets[] = {&d->kernel_opt, &d->modules_opt, &d->qemu};
        static const char *const opts[] = {"--kernel", "--modules", "--qemu"};
        int rc = 0;
        for (size_t k = 0; k < ARRAY_SIZE(opts) && rc == 0; k++)
            rc = option_value(argc, argv, &i, opts[k], targets[k]);
        if (rc < 0) {
            fprintf(stderr, "mvm doctor: %s needs a value (see mvm doctor --help)\n", argv[i]);
            return 125;
        }
        if (rc > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(doctor_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "mvm doctor: unexpected argument '%s' (see mvm doctor --help)\n",
                    argv[i]);
            return 125;
        }
    }
    return -1;
}

static void doctor_init(struct doctor *d)
{
    mvm_run_opts_init(&d->o);
    d->root = geteuid() == 0;
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(d->release_text, sizeof d->release_text, "%s", u.release);
    sscanf(d->release_text, "%u.%u", &d->release[0], &d->release[1]);
    struct mvm_user user;
    cleanup_error struct mvm_error *err = NULL;
    d->uid = getuid();
    d->gid = getgid();
    if (mvm_user_invoking(&user, &err) == 0) {
        d->uid = user.uid;
        d->gid = user.gid;
        mvm_user_clear(&user);
    }
}

/* Doctor's --kernel and --modules win over the config's, as mvm run's
 * options do. */
static void override(char **setting, const char *value)
{
    if (value) {
        free(*setting);
        *setting = xstrdup(value);
    }
}

int mvm_doctor_main(int argc, char **argv)
{
    struct doctor d = {0};
    bool json = false;
    int rc = parse_args(&d, argc, argv, &json);
    if (rc >= 0)
        return rc;
    doctor_init(&d);
    if (d.qemu == NULL)
        d.qemu = session_qemu_path();
    check_root(&d);
    check_config(&d);
    override(&d.o.kernel, d.kernel_opt);
    override(&d.o.modules, d.modules_opt);
    check_kvm(&d);
    check_qemu(&d);
    check_virtiofsd(&d);
    check_kernel(&d);
    check_mkfs(&d);
    check_mmdebstrap(&d);
    check_tun(&d);
    check_nftables(&d);
    check_forwarding(&d);
    check_firewall(&d);
    check_cgroup(&d);
    check_idmap(&d);
    check_wireguard(&d);
    check_space(&d, "state-space", STATE_DIR,
                "free space there, or remove volumes you no longer need (sudo mvm volume rm NAME)");
    check_space(
        &d, "cache-space", MVM_CACHE_DIR,
        "free space there (sudo mvm cleanup --cache empties it; it refills on the next run)");
    cleanup_free char *text = json ? mvm_doctor_json(&d.r) : mvm_doctor_text(&d.r);
    fputs(text, stdout);
    if (json)
        fputc('\n', stdout);
    rc = mvm_doctor_exit_status(&d.r);
    mvm_doctor_report_clear(&d.r);
    mvm_run_opts_clear(&d.o);
    return rc;
}
