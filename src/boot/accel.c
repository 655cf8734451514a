/* KVM usability probe and TSC calibration. */
#include "accel.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "util.h"

#define PROBE_PORT       0x10
#define PROBE_VALUE      42
#define PROBE_TIMEOUT_MS 2000

/* Maps 2 MiB of guest memory with identity page tables and 64-bit code
 * that reads EFER, runs CPUID and writes PROBE_VALUE to PROBE_PORT. */
static int probe_setup(int vm, unsigned char **mem_out)
{
    size_t size = 0x200000;
    unsigned char *mem =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    struct kvm_userspace_memory_region r = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = size, .userspace_addr = (uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return -1;
    uint64_t *pml4 = (uint64_t *)(mem + 0x1000), *pdpt = (uint64_t *)(mem + 0x2000),
             *pd = (uint64_t *)(mem + 0x3000);
    pml4[0] = 0x2000 | 3;
    pdpt[0] = 0x3000 | 3;
    pd[0] = 0x83; /* one 2 MiB page */
    static const unsigned char code[] = {
        0xb9, 0x80,        0x00,       0x00, 0xc0, /* mov ecx, 0xc0000080 (EFER) */
        0x0f, 0x32,                                /* rdmsr */
        0x31, 0xc0,                                /* xor eax, eax */
        0x0f, 0xa2,                                /* cpuid */
        0x66, 0xba,        PROBE_PORT, 0x00,       /* mov dx, PROBE_PORT */
        0xb0, PROBE_VALUE,                         /* mov al, PROBE_VALUE */
        0xee,                                      /* out dx, al */
        0xf4,                                      /* hlt */
    };
    memcpy(mem + 0x8000, code, sizeof code);
    *mem_out = mem;
    return 0;
}

static int probe_vcpu(int kvm, int vm)
{
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vcpu < 0 || size <= 0)
        return -1;
    struct kvm_run *run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    struct kvm_sregs s;
    if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
        return -1;
    struct kvm_segment seg = {.base = 0,
                              .limit = 0xffffffff,
                              .selector = 8,
                              .present = 1,
                              .type = 11,
                              .s = 1,
                              .l = 1,
                              .g = 1};
    s.cs = seg;
    seg.type = 3;
    seg.selector = 16;
    seg.l = 0;
    seg.db = 1;
    s.ds = s.es = s.fs = s.gs = s.ss = seg;
    s.cr3 = 0x1000;
    s.cr4 = 1u << 5;            /* PAE */
    s.cr0 = 0x80000001u | 0x10; /* PG | PE | ET */
    s.efer = 0x500;             /* LME | LMA */
    struct kvm_regs regs = {.rip = 0x8000, .rflags = 2, .rsp = 0x7000};
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return -1;
    if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_IO ||
        run->io.port != PROBE_PORT || ((unsigned char *)run)[run->io.data_offset] != PROBE_VALUE)
        return -1;
    return 0;
}

/* Runs in a child: a hung vCPU must not hang mvm. */
static void __attribute__((noreturn)) probe_child(void)
{
    alarm(PROBE_TIMEOUT_MS / 1000);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0 || ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        _exit(2);
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    unsigned char *mem;
    if (vm < 0)
        _exit(3);
    if (probe_setup(vm, &mem) < 0 || probe_vcpu(kvm, vm) < 0)
        _exit(4);
    _exit(0);
}

bool mvm_kvm_usable(const char **why)
{
    if (access("/dev/kvm", R_OK | W_OK) < 0) {
        *why = "/dev/kvm is missing or not accessible";
        return false;
    }
    /* PVM runs simple probes but hangs a stock kernel (FINDINGS.md). */
    if (access("/sys/module/kvm_pvm", F_OK) == 0 && access("/sys/module/kvm_intel", F_OK) < 0 &&
        access("/sys/module/kvm_amd", F_OK) < 0) {
        *why = "/dev/kvm is a paravirtual KVM (kvm_pvm) that cannot boot a stock kernel";
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *why = "cannot fork the KVM probe";
        return false;
    }
    if (pid == 0)
        probe_child();
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            *why = "cannot wait for the KVM probe";
            return false;
        }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return true;
    *why = WIFSIGNALED(st) ? "a test guest hung under KVM" : "KVM cannot run a test guest";
    return false;
}

static uint64_t calibrate_tsc_khz(void)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC_RAW, &a);
    uint64_t t0 = __rdtsc();
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    uint64_t t1 = __rdtsc();
    clock_gettime(CLOCK_MONOTONIC_RAW, &b);
    uint64_t ns =
        (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ULL + (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
    if (ns == 0 || t1 <= t0)
        return 0;
    /* Round to 1 MHz: calibration noise is far below that. */
    uint64_t khz = (t1 - t0) * 1000000ULL / ns;
    return (khz + 500) / 1000 * 1000;
}

static bool tsc_invariant(void)
{
    cleanup_free char *cpuinfo = read_file("/proc/cpuinfo", 4 * 1024 * 1024, NULL);
    return cpuinfo != NULL && strstr(cpuinfo, " constant_tsc") != NULL;
}

uint64_t mvm_tsc_khz(const char *cache_dir)
{
    cleanup_free char *boot_id = read_file("/proc/sys/kernel/random/boot_id", 128, NULL);
    if (boot_id == NULL)
        return 0;
    boot_id[strcspn(boot_id, "\n")] = '\0';
    cleanup_free char *path = xasprintf("%s/tsc-khz", cache_dir);
    cleanup_free char *cached = read_file(path, 256, NULL);
    char id[64];
    unsigned long long khz;
    if (cached && sscanf(cached, "%63s %llu", id, &khz) == 2 && strcmp(id, boot_id) == 0)
        return khz;
    if (!tsc_invariant())
        return 0;
    khz = calibrate_tsc_khz();
    if (khz == 0)
        return 0;
    cleanup_free char *line = xasprintf("%s %llu\n", boot_id, khz);
    if (mkdir_p(cache_dir, 0700) == 0)
        write_file_atomic(path, line, strlen(line), 0644);
    return khz;
}
