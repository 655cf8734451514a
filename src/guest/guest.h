/* mvm-init: the static PID 1 of every guest.
 *
 * Owns, inside the guest: loading the initramfs' modules, assembling the
 * root filesystem from the session description, creating the user, and
 * running the command with its I/O relayed over the control port.  It
 * trusts the host's messages (the host is the trusted side) and nothing
 * the guest's own processes can change: it runs before them, and after
 * the command it only reads its own pipes and its own wait status. */
#ifndef MVM_GUEST_H
#define MVM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GUEST_SESSION_PATH "/mvm/session.json"
#define GUEST_MODULES_DIR  "/mvm/modules"
#define GUEST_HOST_ETC_DIR "/mvm/etc"
#define GUEST_NEWROOT      "/newroot"

struct guest_share {
    char *tag;
    char *path; /* absolute guest path */
    bool ro;
    bool overlay; /* the host serves it read-only; writable through an overlay */
};

/* The guest's one network interface, from the session's "net" object.
 * Addresses are in network byte order, as netlink wants them. */
#define GUEST_NET_MAX_DNS 3
struct guest_net {
    bool enabled; /* false with --net none: only lo comes up */
    char mac[18]; /* "52:54:00:12:34:56", lower case */
    uint8_t mac_bytes[6];
    uint32_t address, gateway;
    unsigned prefix; /* 1..30 */
    uint32_t dns[GUEST_NET_MAX_DNS];
    size_t ndns;
    unsigned mtu; /* 576..9000 */
};

/* A symlink the root gets: the name the user's PATH finds a program by. */
struct guest_link {
    char *path, *target; /* absolute */
};

/* An ext4 disk (virtio-blk) to mount: a volume, or the scratch disk. */
struct guest_disk {
    char *serial; /* the device's virtio serial */
    char *path;   /* absolute guest path */
};

struct guest_session {
    char *hostname;
    char *user, *group, *home, *shell, *cwd;
    uid_t uid;
    gid_t gid;
    char *usr_tag; /* virtiofs tag of the host's /usr */
    struct guest_share *shares;
    size_t nshares;
    struct guest_link *links;
    size_t nlinks;
    struct guest_disk *disks;
    size_t ndisks;
    char *scratch; /* serial of the scratch disk, or NULL: tmpfs, read-only /usr */
    char *image;   /* serial of --image's disk, or NULL: the host's /usr */
    bool rootfs;   /* usr_tag is --rootfs's tree, the whole root */
    /* The host's system accounts (ids 1-999), appended to /etc/passwd and
     * /etc/group when guest root may run dpkg; or NULL */
    char *sys_passwd, *sys_group;
    char **bins; /* first on the command's PATH */
    size_t nbins;
    struct guest_net net;
};

/* log.c: writes "mvm-init: <msg>\n" to the console (the kernel log the host
 * keeps); used for diagnostics the user sees only on failure. */
void guest_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log.c: "<what>: <strerror(err)>" (err 0: "<what>") into why; returns -1.  err is passed,
 * not read from errno, so formatting cannot clobber it. */
int guest_fail(char *why, size_t whylen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* log.c: a timestamped step on the console when tracing (mvm.trace on
 * the kernel command line, which init.c reads). */
void guest_trace(const char *what);
void guest_trace_enable(bool on);

/* session.c */
int guest_session_load(const char *path, struct guest_session *s, char *why, size_t whylen);

/* netconf.c: the pure part of the network setup, unit-tested on the host.
 * Fills *n from the session's "net" value (NULL or JSON null: no network);
 * every field is required and checked, unknown keys are refused. */
struct json_t;
int guest_net_parse(struct json_t *v, struct guest_net *n, char *why, size_t whylen);
/* Strict dotted quad ("10.0.2.15"; no leading zeros, no short forms). */
int guest_net_parse_ipv4(const char *str, uint32_t *out);
/* Formats a network-order IPv4 address into buf (at least 16 bytes). */
void guest_net_format_ipv4(uint32_t addr, char *buf, size_t len);

/* net.c: brings lo up and, with s->net.enabled, configures the interface
 * whose MAC is s->net.mac (MTU, address, default route); turns IPv6 off
 * first, because the host does not filter it. */
int guest_setup_net(const struct guest_session *s, char *why, size_t whylen);

/* modules.c: loads every module listed in GUEST_MODULES_DIR/order; those
 * only the root's disks need, in a child that guest_wait_modules() waits
 * for (before the first disk is mounted). */
int guest_load_modules(char *why, size_t whylen);
int guest_wait_modules(char *why, size_t whylen);
/* modules.c: GUEST_MODULES_DIR/fs-order's modules (xfs, btrfs and what
 * only they need) loaded, for an image whose root is not ext4, after
 * guest_wait_modules (crc32c comes with ext4's); or, without load, only
 * their files removed. */
int guest_load_fs_modules(bool load, char *why, size_t whylen);

/* disk.c: mounts the ext4 disk whose virtio serial is `serial` at dir
 * with flags; `what` names it in errors. */
int guest_mount_disk(const char *serial, const char *dir, unsigned long flags, const char *what,
                     char *why, size_t whylen);

/* disk.c: /dev/vdX of the disk whose serial is `serial`, waiting a
 * moment for the driver. */
int guest_find_disk(const char *serial, char *dev, size_t devlen, const char *what, char *why,
                    size_t whylen);

/* rootdev.c: --image's root filesystem on disk (/dev/vdX): the disk
 * itself when it holds one, else its partition of GPT type "Linux root
 * (x86-64)", else the one named "root", else the largest that holds a
 * filesystem; its device into dev and its type ("ext4", "xfs",
 * "btrfs") into fstype. */
int guest_image_root(const char *disk, char *dev, size_t devlen, const char **fstype, char *why,
                     size_t whylen);
/* The filesystem whose superblock starts the 64 KiB + 72 bytes at head
 * (n of them), or NULL.  Pure. */
const char *guest_fs_type(const unsigned char *head, size_t n);
/* The 1-based number of the partition of GPT type Linux root (x86-64)
 * among the n entries of size esize at entries, or 0.  Pure. */
unsigned guest_gpt_root(const unsigned char *entries, size_t n, size_t esize);

/* rootfs.c: builds the root under GUEST_NEWROOT and switches to it. */
int guest_setup_root(const struct guest_session *s, char *why, size_t whylen);
/* rootfs.c: for the agent of --boot image, the same on the image's
 * running root, which stays as its init made it: the session's user,
 * names and resolvers in its /etc, the home, volumes, shares and links;
 * no kernel filesystems, /run or /tmp of its own, no switch. */
int guest_setup_agent(const struct guest_session *s, char *why, size_t whylen);

/* exec.c: the started command.  With a pty, in == out == master. */
struct guest_child {
    pid_t pid;
    int master;       /* pty master or -1 */
    int in, out, err; /* err is -1 with a pty */
};
/* Returns 0, or -1 with *status (125/126/127) and a message for the user;
 * the child (if any) then has exited by itself and is reaped as usual. */
int guest_spawn(const struct guest_session *s, const char *file, char **argv, char **envp, bool tty,
                uint16_t rows, uint16_t cols, struct guest_child *c, int *status, char *why,
                size_t whylen);

/* relay.c: runs the command the host describes over the control port,
 * relays its I/O and reports its status.  Returns when the host has the
 * status (or the port is gone). */
void guest_run(int port, const struct guest_session *s);

/* log.c: sends an ERROR frame (best effort). */
void guest_send_error(int port, int status, const char *msg);
/* Writes all of buf to the control port, waiting for the host. */
int guest_port_send(int port, const void *buf, size_t len);

#endif
