/* Unit tests for src/boot/qemu.c: QEMU's argv and the guest kernel's
 * command line, as the session builds them (pure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qemu.h"
#include "util.h"

/* The argument that follows `opt`, NULL if opt is not there. */
static const char *after(char **argv, const char *opt, int nth)
{
    for (size_t i = 0; argv[i]; i++)
        if (strcmp(argv[i], opt) == 0 && nth-- == 0)
            return argv[i + 1];
    return NULL;
}

static bool has(char **argv, const char *arg)
{
    for (size_t i = 0; argv[i]; i++)
        if (strcmp(argv[i], arg) == 0)
            return true;
    return false;
}

static const struct mvm_qemu_fs fs[] = {{12, "usr"}, {14, "s1"}};

static struct mvm_qemu_spec spec(bool microvm, bool kvm)
{
    return (struct mvm_qemu_spec){.binary = "/usr/bin/qemu-system-x86_64",
                                  .microvm = microvm,
                                  .kvm = kvm,
                                  .cpus = 2,
                                  .memory_mib = 1024,
                                  .kernel = "/vm/vmlinux",
                                  .initrd = "/vm/initrd",
                                  .cmdline = "console=ttyS0",
                                  .qmp_fd = 5,
                                  .ctl_fd = 7,
                                  .console_fd = 9,
                                  .fs = fs,
                                  .nfs = 2,
                                  .sandbox = true,
                                  .tap_fd = -1};
}

static void test_microvm_tcg(void **state)
{
    (void)state;
    struct mvm_qemu_spec s = spec(true, false);
    char **argv = mvm_qemu_argv(&s);
    assert_string_equal(argv[0], s.binary);
    assert_true(has(argv, "-nodefaults") && has(argv, "-no-user-config") && has(argv, "-S"));
    assert_string_equal(after(argv, "-machine", 0), "microvm,memory-backend=mem");
    assert_string_equal(after(argv, "-global", 0), "virtio-mmio.force-legacy=false");
    assert_string_equal(after(argv, "-object", 0),
                        "memory-backend-memfd,id=mem,size=1024M,share=on");
    assert_string_equal(after(argv, "-accel", 0), "tcg,tb-size=128");
    assert_string_equal(after(argv, "-cpu", 0), "max");
    assert_string_equal(after(argv, "-sandbox", 0),
                        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    /* Every descriptor by number; nothing QEMU would open by path. */
    assert_string_equal(after(argv, "-chardev", 0), "socket,id=qmp,fd=5");
    assert_string_equal(after(argv, "-chardev", 1), "socket,id=con,fd=9");
    assert_string_equal(after(argv, "-chardev", 2), "socket,id=ctl,fd=7");
    assert_string_equal(after(argv, "-chardev", 3), "socket,id=fs0,fd=12");
    assert_string_equal(after(argv, "-chardev", 4), "socket,id=fs1,fd=14");
    assert_true(has(argv, "vhost-user-fs-device,chardev=fs1,tag=s1,queue-size=1024"));
    assert_true(has(argv, "virtio-serial-device,max_ports=2"));
    assert_string_equal(after(argv, "-append", 0), "console=ttyS0");
    assert_null(after(argv, "-netdev", 0)); /* --net none: no NIC */
    mvm_strv_free(argv);
}

static void test_nic(void **state)
{
    (void)state;
    struct mvm_qemu_spec s = spec(true, false);
    s.tap_fd = 16;
    s.mac = "52:54:00:12:34:56";
    char **argv = mvm_qemu_argv(&s);
    assert_string_equal(after(argv, "-netdev", 0), "tap,id=n0,fd=16,vhost=off");
    assert_true(has(argv, "virtio-net-device,netdev=n0,mac=52:54:00:12:34:56"));
    mvm_strv_free(argv);
}

static void test_disks(void **state)
{
    (void)state;
    struct mvm_qemu_spec s = spec(false, false);
    const struct mvm_qemu_disk disks[] = {
        {21, 31, "mvm0", false}, {22, 32, "mvm1", false}, {-1, 33, "mvm-seed", true}};
    s.disks = disks;
    s.ndisks = 3;
    char **argv = mvm_qemu_argv(&s);
    /* Each image is a passed descriptor, never a path QEMU opens. */
    assert_string_equal(after(argv, "-add-fd", 0), "fd=21,set=1");
    assert_string_equal(after(argv, "-add-fd", 1), "fd=31,set=1");
    assert_string_equal(after(argv, "-add-fd", 2), "fd=22,set=2");
    assert_string_equal(after(argv, "-drive", 1),
                        "file=/dev/fdset/2,format=raw,if=none,id=d1,discard=unmap,"
                        "detect-zeroes=unmap,werror=report,rerror=report");
    assert_true(has(argv, "virtio-blk-pci,drive=d0,serial=mvm0"));
    assert_true(has(argv, "virtio-blk-pci,drive=d1,serial=mvm1"));
    /* A read-only disk (--boot image's seed): its read-only descriptor
     * alone, and QEMU told so. */
    assert_string_equal(after(argv, "-add-fd", 4), "fd=33,set=3");
    assert_null(after(argv, "-add-fd", 5));
    assert_string_equal(after(argv, "-drive", 2),
                        "file=/dev/fdset/3,format=raw,if=none,id=d2,readonly=on");
    assert_true(has(argv, "virtio-blk-pci,drive=d2,serial=mvm-seed"));
    mvm_strv_free(argv);
}

static void test_q35_kvm(void **state)
{
    (void)state;
    struct mvm_qemu_spec s = spec(false, true);
    s.sandbox = false;
    char **argv = mvm_qemu_argv(&s);
    assert_string_equal(after(argv, "-machine", 0), "q35,memory-backend=mem");
    assert_null(after(argv, "-global", 0));
    assert_string_equal(after(argv, "-accel", 0), "kvm");
    assert_string_equal(after(argv, "-cpu", 0), "host");
    assert_null(after(argv, "-sandbox", 0));
    assert_true(has(argv, "vhost-user-fs-pci,chardev=fs0,tag=usr,queue-size=1024"));
    assert_true(has(argv, "virtio-serial-pci,max_ports=2"));
    mvm_strv_free(argv);
}

static void test_kernel_cmdline(void **state)
{
    (void)state;
    struct mvm_cmdline_spec c = {.microvm = true, .tsc_khz = 2246000, .hz = 250};
    char *line = mvm_kernel_cmdline(&c);
    assert_non_null(strstr(line, "console=ttyS0 panic=-1 rdinit=/init quiet"));
    assert_non_null(strstr(line, " pci=off"));
    assert_non_null(strstr(line, " tsc_early_khz=2246000"));
    assert_non_null(strstr(line, " lpj=8984000"));
    assert_null(strstr(line, "mvm.trace"));
    /* Initcalls no guest uses; IPv6 too where mvm-init runs the guest. */
    assert_non_null(strstr(line, ",bpf_tcp_ca_kfunc_init "));
    assert_non_null(strstr(line, " ipv6.disable=1"));
    free(line);
    /* Unknown TSC: neither clock hint; q35 keeps PCI; verbose and trace. */
    c = (struct mvm_cmdline_spec){.microvm = false, .hz = 250, .verbose = true, .trace = true};
    line = mvm_kernel_cmdline(&c);
    assert_null(strstr(line, "tsc_early_khz"));
    assert_null(strstr(line, "lpj="));
    assert_null(strstr(line, "pci=off"));
    assert_null(strstr(line, " quiet"));
    assert_non_null(strstr(line, "loglevel=7"));
    assert_non_null(strstr(line, " mvm.trace"));
    assert_null(strstr(line, "root="));
    assert_null(strstr(line, "network-config"));
    free(line);
    /* --boot image: the image's root for its own initramfs. */
    c = (struct mvm_cmdline_spec){.microvm = true, .ipv6 = true, .append = "root=/dev/vda rw"};
    line = mvm_kernel_cmdline(&c);
    assert_non_null(strstr(line, " pci=off root=/dev/vda rw"));
    assert_non_null(strstr(line, ",bpf_tcp_ca_kfunc_init "));
    assert_null(strstr(line, "ipv6.disable"));
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_microvm_tcg),
        cmocka_unit_test(test_q35_kvm),
        cmocka_unit_test(test_nic),
        cmocka_unit_test(test_disks),
        cmocka_unit_test(test_kernel_cmdline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
