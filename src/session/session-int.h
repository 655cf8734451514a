/* Internal to the session: the state shared by session.c (lifecycle and
 * teardown), prepare.c (what to run), vm.c (starting the helpers) and
 * loop.c (the event loop).  Calls go one way: session.c calls the three
 * steps, the steps call the leaves (notice.c, undo.c, tail.c) and the
 * libraries, and nothing calls back up.  Not a public interface. */
#ifndef MVM_SESSION_INT_H
#define MVM_SESSION_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

#include <jansson.h>

#include "audit.h"
#include "cgroup.h"
#include "cli.h"
#include "disk.h"
#include "error.h"
#include "exec-server.h"
#include "guard.h"
#include "gw.h"
#include "jail.h"
#include "kernel.h"
#include "net.h"
#include "qmp.h"
#include "relay.h"
#include "sessiondir.h"
#include "share.h"
#include "tail.h"
#include "tty.h"
#include "undo.h"
#include "user.h"

#define CACHE_DIR       MVM_CACHE_DIR
#define CONSOLE_LOG_MAX (1024 * 1024)
#define MAX_SHARES      16
#define MAX_DISKS       8
#define BOOT_TIMEOUT_MS (60 * 1000)
/* --boot image: the image's systemd and cloud-init start the agent (under
 * TCG ~25 s, see bench/image.sh). */
#define BOOT_IMAGE_TIMEOUT_MS (300 * 1000)
#define QMP_TIMEOUT_MS        10000
#define POWEROFF_WAIT_MS      3000
#define STOP_TIMEOUT_MS       10000 /* SIGTERM to the command, then the VM goes */
/* A disk limit paused the VM and the session was stopped (guard.c). */
#define MVM_EXIT_DISK_LIMIT 122

extern const unsigned char mvm_init_blob[];
extern const unsigned long mvm_init_blob_size;
extern const char mvm_init_blob_key[]; /* its SHA-256, from init-key.cmake */

struct session {
    const struct mvm_run_opts *o;
    uint64_t t0;
    struct mvm_user user;
    char *cwd, *share_dir, *guest_home, *guest_cwd;
    struct mvm_kernel kernel;
    char *vmlinux, *initrd_base, *initrd, *qemu_bin;
    bool kvm, microvm, tty, stdin_tty, stdout_tty;
    uint64_t tsc_khz;
    unsigned kernel_hz;
    char **env;
    size_t nenv;
    char **links; /* pairs: guest path, its target (where CMD is installed) */
    size_t nlinks;
    char **bins; /* first on the guest's PATH */
    size_t nbins;
    struct mvm_disk disks[MAX_DISKS]; /* --volume, in order */
    char *disk_paths[MAX_DISKS];      /* where the guest mounts each */
    size_t ndisks;
    struct mvm_disk scratch; /* --disk; fd -1 with --disk none */
    struct mvm_image image;  /* --image; fd -1 without */
    /* --boot image (bootimage.c): the image's kernel and its config (or
     * NULL) beside it -- its initramfs is initrd -- and the seed */
    char *boot_kernel, *boot_kconfig;
    struct mvm_disk seed; /* fd -1 without */

    char id[MVM_ID_LEN + 1];
    char *name;               /* --name, or generated; NULL until published (ps.c) */
    bool stopping;            /* SIGTERM reached the command (mvm stop) */
    uint64_t t_ready, t_done; /* mvm-init up; the command's status in (now_ns) */
    int exit_code;            /* mvm's, once known (for --result) */
    const char *end_reason;   /* the error that ended it, or NULL */
    uint64_t stop_deadline;   /* then: when the VM is destroyed (now_ns) */
    char *dir;
    struct mvm_virtiofsd vfsd;
    struct mvm_share shares[MAX_SHARES];
    size_t nshares;
    struct mvm_child qemu;
    struct mvm_net_plan netplan;
    struct mvm_net net;
    struct mvm_child dns_relay;      /* jailed */
    struct mvm_net_policy netpolicy; /* --publish, --allow-host, --allow-lan */
    struct mvm_child port_relay;     /* jailed; for --publish */
    struct session_wg *wg;           /* --wireguard (wireguard.c), or NULL */
    struct mvm_child wg_proc;        /* wireguard-go, jailed */
    void *wg_filter;                 /* its seccomp filter */
    void *dns_filter, *port_filter;  /* the relays' seccomp allowlists */
    /* --api-key (apikey.c): the providers, their keys (wiped at the end)
     * and the CA bundle for the gateway, which is jailed */
    struct mvm_gw_provider *gw;
    size_t ngw;
    char *gw_keys[MVM_GW_MAX_PROVIDERS];
    size_t gw_key_lens[MVM_GW_MAX_PROVIDERS];
    char *gw_ca;
    size_t gw_ca_len;
    struct mvm_child gateway;
    void *gw_filter;
    char mac[18];
    uid_t jail_uid;
    struct mvm_cgroup cgroup;
    void *filter; /* mvm's seccomp filter for QEMU */
    int qemu_log, qmp_fd, ctl_fd, con_fd, console_log, sigfd;
    size_t console_written;
    struct tail console_tail, qemu_tail, share_tail[MAX_SHARES];
    struct mvm_outfilter console_filter; /* --console output to stderr */
    struct mvm_qmp *qmp;
    struct mvm_relay relay;
    bool relay_started;
    struct exec_server execs; /* mvm exec's clients */
    struct tty_state term;

    char *shutdown_reason; /* from QMP events */
    bool panicked, vm_stopped;
    unsigned resets;
    unsigned sigints;
    struct mvm_undo undo;
    struct mvm_audit_snap *audit[MAX_SHARES]; /* share i's, before boot (audit.c) */
    int64_t audit_since;                      /* then (CLOCK_REALTIME ns), for --audit off */
    json_t *audit_findings;                   /* for --result: what the audit found */
    size_t audit_more;                        /* ... and how many more it did not list */
    bool result_due;                          /* --result is written after the audit */
    struct mvm_guard guard;                   /* --share-limit, --min-free (guard.c) */
    uint64_t guard_next;                      /* its next sample (now_ns) */
    bool guard_paused;                        /* mvm paused the VM at a disk limit */
    int guard_tty;                            /* the terminal asked meanwhile, or -1 */
    struct termios guard_tio;                 /* its settings before */
    bool guard_tio_set;
};

/* bootimage.c: --boot image's checks and the files beside the stored
 * image (stored: its path, or NULL for an image file); nothing without
 * --boot image. */
int session_plan_boot_image(struct session *s, const char *stored, struct mvm_error **err);
/* bootimage.c: the seed for the session description desc, in s->seed. */
int session_boot_seed(struct session *s, const char *desc, struct mvm_error **err);
/* bootimage.c: the seed's virtio serial; the kernel command line's
 * words for the image's initramfs and cloud-init. */
const char *session_seed_serial(void);
extern const char session_boot_cmdline[];

/* notice.c: "mvm: ..." on stderr unless -q. */
void session_notice(const struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* notice.c: the same even with -q, for warnings about the user's files. */
void session_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* With MVM_TRACE=1 in the environment: "mvm: +123ms what" on stderr, for
 * finding where start-up time goes (bench/boot.sh --trace). */
void session_trace(const struct session *s, const char *what);
bool session_tracing(void);

/* prepare.c: everything decided before anything is created. */
int session_prepare(struct session *s, struct mvm_error **err);
/* prepare.c: the command's environment -- TERM, LANG, LC_* and the
 * --env entries (NAME alone: mvm's value) as "NAME=VALUE" appended to
 * *env -- with the sizes of argv and env checked against the protocol. */
#define MVM_COMMAND_MAX_BYTES (2 * 1024 * 1024)
/* Arguments plus environment variables: what mvm-init takes (its
 * MAX_ARGS, less the NULL and one spare). */
#define MVM_COMMAND_MAX_STRINGS 65534
int session_build_env(const struct mvm_env_opt *opts, size_t nopts, char *const *argv, int argc,
                      char ***env, size_t *nenv, struct mvm_error **err);
/* prepare.c: the QEMU binary mvm runs, NULL when none is installed. */
const char *session_qemu_path(void);
/* prepare.c: the guest's kernel modules (names, load order) for a machine
 * (microvm, else q35), with a NIC, with disks, with the scratch disk's
 * overlay; returns how many it put in mods. */
#define SESSION_MAX_MODULES 8
size_t session_modules(bool microvm, bool net, bool disks, bool overlay,
                       const char *mods[SESSION_MAX_MODULES]);
/* prepare.c: one more share; refused past MAX_SHARES. */
int session_add_share(struct session *s, const char *host, const char *guest, bool ro,
                      struct mvm_error **err);
/* program.c: looks CMD up on the user's PATH, as the user, and shares
 * where it is installed (read-only) when the guest would not see it. */
int session_resolve_program(struct session *s, struct mvm_error **err);
/* result.c: --result and --console-log, written at teardown. */
void session_push_outputs(struct session *s);
/* ps.c: claims the session's name and writes /run/mvm/.ps/<id>.json, or
 * (once named) updates it. */
int session_publish(struct session *s, struct mvm_error **err);
/* audit.c: a snapshot of each read-write share, before anything boots
 * (unless --audit off). */
int session_audit_snapshot(struct session *s, struct mvm_error **err);
/* audit.c: after teardown, the audit of each share (findings on stderr,
 * fixes); returns the exit status: code, or with --audit strict and code
 * 0, 123 when something was found (125 when an audit failed). */
int session_audit(struct session *s, int code);
/* result.c: --result FILE, once the audit has given the final status. */
void session_write_result(struct session *s, int code);
/* guard.c: the filesystems of the read-write shares and their first
 * sample (refused when one is below --min-free already). */
int session_guard_open(struct session *s, struct mvm_error **err);
/* guard.c, for the event loop: when to sample next (UINT64_MAX: never);
 * the sample, pausing the VM when a limit is crossed; a key from the
 * terminal while paused (s->guard_tty); the terminal given back. */
uint64_t session_guard_deadline(const struct session *s);
int session_guard_tick(struct session *s, struct mvm_error **err);
int session_guard_key(struct session *s, struct mvm_error **err);
void session_guard_end(struct session *s);
/* vm.c: session directory, initramfs, virtiofsd, QEMU, QMP. */
int session_start_vm(struct session *s, struct mvm_error **err);
/* Asks a running QEMU to quit over QMP (it flushes its block layer). */
void session_qemu_quit(struct session *s);
/* loop.c: relays until the status is known; returns mvm's exit status. */
int session_loop(struct session *s, struct mvm_error **err);
/* loop.c: the mvm exec socket, once the relay is set up. */
int session_exec_listen(struct session *s, struct mvm_error **err);
/* ps.c: the live session whose id (or a unique prefix of 4+) or name is
 * key, as its summary (a new reference), or NULL with err. */
json_t *session_ps_find(const char *key, struct mvm_error **err);
/* ps.c: the user asking (SUDO_UID through sudo), and whether they may see
 * and act on every user's sessions (root itself). */
uid_t session_ps_caller(bool *everyone);
/* loop.c: the terminal (raw mode, fd flags) and its restoration. */
int session_terminal_setup(struct session *s, struct mvm_error **err);
void session_terminal_restore(struct session *s);

/* vm.c: a network helper, mvm itself (bound into the jail as /mvm)
 * running one of its __ commands with only the descriptors in keep and
 * the files in binds besides. */
struct net_helper {
    const char *name;
    char *const *argv; /* argv[0] is "/mvm" */
    const int *keep;
    int nkeep;
    unsigned long nofile;
    int netns_fd; /* -1: a new, empty one */
    uid_t uid;
    const void *seccomp;
    const struct mvm_jail_bind *binds;
    size_t nbinds; /* at most 3 */
};
/* Starts it, its kill pushed on the undo list first. */
int session_start_net_helper(struct session *s, const struct net_helper *h, struct mvm_child *child,
                             struct mvm_error **err);

/* apikey.c: --api-key's providers, keys and CA bundle, read in prepare
 * (before anything is made); the gateway's ports in the plan; the
 * gateway started in the namespace, the guest's variables set; the keys
 * wiped. */
int session_plan_api_keys(struct session *s, struct mvm_error **err);
void session_plan_gateway_ports(struct session *s);
int session_start_gateway(struct session *s, uid_t uid, struct mvm_error **err);
void session_api_keys_free(struct session *s);

/* The first share of the user's (0 is the host's /usr, except with
 * --image, which has none). */
static inline size_t session_first_share(const struct session *s)
{
    return s->image.fd >= 0 ? 0 : 1;
}

/* wireguard.c: --wireguard's file read with the user's rights and its
 * Endpoints resolved, in prepare; the plan's uplink and resolvers; the
 * jailed wireguard-go net/uplink-wg.c asks for where the kernel has no
 * WireGuard; the config wiped. */
int session_plan_wireguard(struct session *s, struct mvm_error **err);
void session_wireguard_plan(struct session *s, struct mvm_net_plan *p, uid_t uid);
int session_wireguard_start(void *arg, int tun_fd, int uapi_fd, struct mvm_error **err);
void session_wireguard_free(struct session *s);
/* The wireguard-go --wireguard runs without the kernel's WireGuard, or
 * NULL (also for mvm doctor). */
const char *session_wireguard_go(void);
/* The kernel's WireGuard module, as its files say: "loaded" (or built
 * in), "available" (modules.dep lists it: the kernel loads it when
 * --wireguard makes a link), or NULL (also for mvm doctor). */
const char *session_wireguard_module(void);

#endif
