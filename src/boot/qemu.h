/* qemu: the QEMU command line and the guest kernel command line.  Pure:
 * every descriptor QEMU uses is already open and passed by number. */
#ifndef MVM_QEMU_H
#define MVM_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mvm_qemu_fs {
    int fd;          /* connected vhost-user socket */
    const char *tag; /* virtiofs tag */
};

/* A virtio-blk disk on an open image file: QEMU picks from its fd set
 * the descriptor whose access mode it asks for (it probes read-only). */
struct mvm_qemu_disk {
    int fd, ro_fd;      /* O_RDWR and O_RDONLY on the same image */
    const char *serial; /* how the guest finds it: at most 20 bytes */
    bool readonly;      /* only ro_fd is given (--boot image's seed) */
};

/* --image: a base opened read-only (raw or qcow2) under a qcow2 overlay
 * that takes the writes; QEMU is told the base as the overlay's backing
 * node, so the overlay's header names no file. */
struct mvm_qemu_image {
    int base_fd;                   /* O_RDONLY */
    bool base_qcow2;               /* else raw */
    int overlay_fd, overlay_ro_fd; /* O_RDWR and O_RDONLY on the overlay */
    const char *serial;
};

struct mvm_qemu_spec {
    const char *binary;
    bool microvm; /* else q35 */
    bool kvm;     /* else TCG */
    unsigned cpus;
    uint64_t memory_mib;
    const char *kernel, *initrd, *cmdline;
    int qmp_fd, ctl_fd, console_fd;
    const struct mvm_qemu_fs *fs;
    size_t nfs;
    bool sandbox; /* QEMU's own seccomp filter (-sandbox) */
    const struct mvm_qemu_disk *disks;
    size_t ndisks;
    int tap_fd; /* the guest's NIC on this tap; -1: no NIC at all */
    const char *mac;
    const struct mvm_qemu_image *image; /* NULL: none */
};

/* NULL-terminated argv; free with mvm_strv_free() (util.h). */
char **mvm_qemu_argv(const struct mvm_qemu_spec *s);

struct mvm_cmdline_spec {
    bool microvm;
    bool ipv6;        /* false: the guest's IPv6 stack is never started */
    uint64_t tsc_khz; /* 0: unknown */
    unsigned hz;      /* the kernel's CONFIG_HZ, 0: unknown */
    bool verbose;     /* kernel messages on the console */
    bool trace;       /* mvm-init logs timestamped steps */
    /* --boot image: words for the image's own initramfs and init (its
     * root device, ...); NULL: mvm-init builds the root */
    const char *append;
};

/* The guest kernel command line: serial console, fast-boot options,
 * tsc_early_khz when known (microvm has no other clock to calibrate
 * against), quiet unless verbose. */
char *mvm_kernel_cmdline(const struct mvm_cmdline_spec *c);

/* TCG translation cache size (MiB): QEMU reserves 1 GiB by default. */
#define MVM_TCG_TB_MIB 128

#endif
