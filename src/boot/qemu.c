/* QEMU and kernel command lines. */
#include "qemu.h"

#include <stdarg.h>
#include <string.h>

#include "util.h"

struct argv_builder {
    char **v;
    size_t n, cap;
};

static void add(struct argv_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct argv_builder *b, const char *fmt, ...)
{
    if (b->n + 2 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = xrealloc(b->v, b->cap * sizeof *b->v);
    }
    va_list ap;
    va_start(ap, fmt);
    b->v[b->n++] = xvasprintf(fmt, ap);
    va_end(ap);
    b->v[b->n] = NULL;
}

static void add_devices(struct argv_builder *b, const struct mvm_qemu_spec *s)
{
    const char *bus = s->microvm ? "device" : "pci";
    add(b, "-chardev");
    add(b, "socket,id=ctl,fd=%d", s->ctl_fd);
    add(b, "-device");
    add(b, "virtio-serial-%s,max_ports=2", bus);
    add(b, "-device");
    add(b, "virtserialport,chardev=ctl,name=org.mvm.ctl");
    for (size_t i = 0; i < s->nfs; i++) {
        add(b, "-chardev");
        add(b, "socket,id=fs%zu,fd=%d", i, s->fs[i].fd);
        add(b, "-device");
        add(b, "vhost-user-fs-%s,chardev=fs%zu,tag=%s,queue-size=1024", bus, i, s->fs[i].tag);
    }
    /* Disks arrive as descriptors (-add-fd): the jailed QEMU opens no
     * file.  Writeback caching; the guest's discards free image space. */
    for (size_t i = 0; i < s->ndisks; i++) {
        if (!s->disks[i].readonly) {
            add(b, "-add-fd");
            add(b, "fd=%d,set=%zu", s->disks[i].fd, i + 1);
        }
        add(b, "-add-fd");
        add(b, "fd=%d,set=%zu", s->disks[i].ro_fd, i + 1);
        add(b, "-drive");
        if (s->disks[i].readonly)
            add(b, "file=/dev/fdset/%zu,format=raw,if=none,id=d%zu,readonly=on", i + 1, i);
        else
            add(b,
                "file=/dev/fdset/"
                "%zu,format=raw,if=none,id=d%zu,discard=unmap,detect-zeroes=unmap,werror=report,"
                "rerror=report",
                i + 1, i);
        add(b, "-device");
        add(b, "virtio-blk-%s,drive=d%zu,serial=%s", bus, i, s->disks[i].serial);
    }
    const struct mvm_qemu_image *im = s->image;
    if (im) {
        size_t base = s->ndisks + 1, ov = s->ndisks + 2; /* fd sets after the disks' */
        add(b, "-add-fd");
        add(b, "fd=%d,set=%zu", im->base_fd, base);
        add(b, "-add-fd");
        add(b, "fd=%d,set=%zu", im->overlay_fd, ov);
        add(b, "-add-fd");
        add(b, "fd=%d,set=%zu", im->overlay_ro_fd, ov);
        add(b, "-blockdev");
        add(b, "driver=file,node-name=img-base-file,filename=/dev/fdset/%zu,read-only=on", base);
        add(b, "-blockdev");
        add(b, "driver=%s,node-name=img-base,file=img-base-file,read-only=on",
            im->base_qcow2 ? "qcow2" : "raw");
        add(b, "-blockdev");
        add(b, "driver=file,node-name=img-top-file,filename=/dev/fdset/%zu,discard=unmap", ov);
        add(b, "-blockdev");
        add(b, "driver=qcow2,node-name=img-top,file=img-top-file,backing=img-base,discard=unmap");
        add(b, "-device");
        add(b, "virtio-blk-%s,drive=img-top,serial=%s", bus, im->serial);
    }
    if (s->tap_fd >= 0) { /* no vhost: /dev/vhost-net is not for a jailed QEMU */
        add(b, "-netdev");
        add(b, "tap,id=n0,fd=%d,vhost=off", s->tap_fd);
        add(b, "-device");
        add(b, "virtio-net-%s,netdev=n0,mac=%s", bus, s->mac);
    }
}

char **mvm_qemu_argv(const struct mvm_qemu_spec *s)
{
    struct argv_builder b = {0};
    add(&b, "%s", s->binary);
    add(&b, "-nodefaults");
    add(&b, "-no-user-config");
    add(&b, "-display");
    add(&b, "none");
    add(&b, "-S"); /* paused until mvm says cont */
    add(&b, "-no-reboot");
    if (s->sandbox) { /* QEMU's filter, under mvm's own (jail-filter.c) */
        add(&b, "-sandbox");
        add(&b, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    }
    add(&b, "-machine");
    /* virtiofs needs guest RAM that virtiofsd can map. */
    add(&b, "%s,memory-backend=mem", s->microvm ? "microvm" : "q35");
    if (s->microvm) {
        add(&b, "-global"); /* virtiofsd rejects legacy virtio-mmio */
        add(&b, "virtio-mmio.force-legacy=false");
    }
    add(&b, "-object");
    add(&b, "memory-backend-memfd,id=mem,size=%lluM,share=on", (unsigned long long)s->memory_mib);
    add(&b, "-m");
    add(&b, "%lluM", (unsigned long long)s->memory_mib);
    add(&b, "-smp");
    add(&b, "%u", s->cpus);
    add(&b, "-accel");
    if (s->kvm)
        add(&b, "kvm");
    else
        add(&b, "tcg,tb-size=%d", MVM_TCG_TB_MIB);
    add(&b, "-cpu");
    add(&b, "%s", s->kvm ? "host" : "max");
    add(&b, "-kernel");
    add(&b, "%s", s->kernel);
    add(&b, "-initrd");
    add(&b, "%s", s->initrd);
    add(&b, "-append");
    add(&b, "%s", s->cmdline);
    add(&b, "-chardev");
    add(&b, "socket,id=qmp,fd=%d", s->qmp_fd);
    add(&b, "-mon");
    add(&b, "chardev=qmp,mode=control");
    add(&b, "-chardev");
    add(&b, "socket,id=con,fd=%d", s->console_fd);
    add(&b, "-serial");
    add(&b, "chardev:con");
    add_devices(&b, s);
    return b.v;
}

char *mvm_kernel_cmdline(const struct mvm_cmdline_spec *c)
{
    struct buf b = {0};
    buf_printf(&b, "console=ttyS0 panic=-1 rdinit=/init %s", c->verbose ? "loglevel=7" : "quiet");
    /* Boot-time savings measured in FINDINGS.md and with bench/boot.sh:
     * no crypto self-tests, no initcalls the guest never needs (entropy
     * self-test, certificate loading, integrity/TPM/hibernation setup),
     * expedited RCU while booting (a large win with several vCPUs under
     * TCG), no per-CPU delay calibration. */
    buf_printf(&b, " cryptomgr.notests rodata=off no_timer_check tsc=reliable nowatchdog audit=0");
    buf_printf(&b, " rcupdate.rcu_expedited=1 rcupdate.rcu_normal_after_boot=1 cpu_init_udelay=0");
    buf_printf(&b, " initcall_blacklist=jent_mod_init,load_system_certificate_list,"
                   "crypto_kdf108_init,iosf_mbi_init,init_zswap,init_encrypted,digsig_init,"
                   "init_evm,init_mmio_trace,snapshot_device_init,tpm_init,blake2s_mod_init");
    /* Measured with bench/boot-profile.sh: kprobe event tracing (~50 ms)
     * is never used, and each registrar of BPF kfuncs would parse the
     * kernel's BTF (~45 ms, paid by the first): TCP cubic (TCP falls back
     * to reno, so its default is not looked up either), cgroup rstat, key
     * signatures, the generic set, test runs and BPF congestion control.
     * IPv6 (~30 ms) only where something but mvm-init runs the guest:
     * mvm-init turns it off anyway.  Disabled, not skipped: a skipped
     * inet6_init would look present to the rest of the kernel (the
     * guest's own WireGuard then fails with EAFNOSUPPORT). */
    buf_printf(&b, ",init_kprobe_trace,cubictcp_register,tcp_congestion_default,"
                   "bpf_rstat_kfunc_init,bpf_key_sig_kfuncs_init,kfunc_init,"
                   "bpf_prog_test_run_init,bpf_tcp_ca_kfunc_init");
    if (!c->ipv6)
        buf_printf(&b, " ipv6.disable=1");
    buf_printf(&b, " i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd 8250.nr_uarts=1");
    if (c->microvm)
        buf_printf(&b, " pci=off");
    if (c->tsc_khz)
        buf_printf(&b, " tsc_early_khz=%llu", (unsigned long long)c->tsc_khz);
    /* The TSC drives udelay, so loops per jiffy are TSC cycles per tick;
     * only when the kernel's tick rate is known. */
    if (c->tsc_khz && c->hz)
        buf_printf(&b, " lpj=%llu", (unsigned long long)(c->tsc_khz * 1000 / c->hz));
    if (c->trace)
        buf_printf(&b, " mvm.trace");
    if (c->append)
        buf_printf(&b, " %s", c->append);
    buf_append(&b, "", 1);
    return b.data;
}
