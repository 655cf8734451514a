/* Creating the session's resources: the session directory, the initramfs
 * with the session description, one virtiofsd per share, and QEMU --
 * started paused, its helpers coming up in parallel -- then QMP and cont.
 * Every step registers its undo before the next one starts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dnsrelay.h"
#include "initramfs.h"
#include "json-cleanup.h"
#include "portrelay.h"
#include "qemu.h"
#include "session-int.h"
#include "util.h"

/* Where the jail shows QEMU its kernel and initrd. */
#define JAIL_KERNEL "/vm/vmlinux"
#define JAIL_INITRD "/vm/initrd"
/* QEMU's needs beyond guest RAM and the TCG cache: its heap, device and
 * I/O buffers, code; measured RSS overhead is ~100 MiB, this leaves room. */
#define QEMU_OVERHEAD_MIB 256
#define QEMU_PIDS_MAX     256
#define QEMU_NOFILE       4096

static void undo_dir(void *arg)
{
    const char *dir = arg;
    remove_tree(dir);
}

/* virtiofsd exits by itself once QEMU is gone; give it a moment. */
static void undo_share(void *arg)
{
    struct mvm_share *sh = arg;
    mvm_child_wait(&sh->proc, 500);
    mvm_share_stop(sh);
}

static void undo_cgroup(void *arg)
{
    mvm_cgroup_remove(arg);
}

void session_qemu_quit(struct session *s)
{
    if (s->qmp && !mvm_qmp_closed(s->qmp)) {
        cleanup_error struct mvm_error *ignored = NULL;
        mvm_qmp_execute(s->qmp, "quit", NULL, NULL, 1000, &ignored);
    }
}

static void undo_qemu(void *arg)
{
    struct session *s = arg;
    if (s->qemu.pid <= 0 || mvm_child_poll(&s->qemu))
        return;
    session_qemu_quit(s);
    if (!mvm_child_wait(&s->qemu, 2000))
        mvm_child_kill(&s->qemu);
}

static json_t *state_json(const struct session *s)
{
    json_t *st =
        json_pack("{s:s, s:i, s:I, s:i, s:s, s:I, s:i}", "id", s->id, "pid", (int)getpid(),
                  "starttime", (json_int_t)mvm_proc_starttime(getpid()), "uid", (int)s->user.uid,
                  "cwd", s->cwd, "created", (json_int_t)time(NULL), "qemu_pid", (int)s->qemu.pid);
    /* Keep the claim: other sessions read it to pick a different uid. */
    if (s->jail_uid)
        json_object_set_new(st, "jail_uid", json_integer(s->jail_uid));
    return st;
}

static int write_state(struct session *s, struct mvm_error **err)
{
    cleanup_json json_t *st = state_json(s);
    return mvm_sessiondir_write_state(s->dir, st, err);
}

/* The guest's side of the network, for mvm-init; null without one. */
static json_t *net_description(const struct session *s)
{
    if (s->o->net == MVM_NETOPT_NONE)
        return json_null();
    char guest[16], gw[16];
    mvm_ip4_str(s->netplan.guest_ip, guest);
    mvm_ip4_str(s->netplan.tap_ip, gw);
    return json_pack("{s:s, s:s, s:i, s:s, s:[s], s:i}", "mac", s->mac, "address", guest, "prefix",
                     (int)s->netplan.guest_prefix, "gateway", gw, "dns", gw, "mtu", 1500);
}

/* How the guest tells the disks apart: virtio-blk serials. */
static void disk_serial(size_t i, char serial[16])
{
    snprintf(serial, 16, "mvm%u", (unsigned)(i % MAX_DISKS));
}

#define SCRATCH_SERIAL "scratch"
#define IMAGE_SERIAL   "image"

/* The lines of an account file (passwd(5), group(5)) whose id, the
 * third field, is a system one (1-999): what dpkg's statoverride and
 * maintainer scripts name.  Account names only: no password is in
 * either file on a shadowed system, and an "x" is all they hold. */
static json_t *system_accounts(const char *path)
{
    cleanup_free char *text = read_file(path, 1024 * 1024, NULL);
    struct buf b = {0};
    for (char *l = text, *next; l && *l; l = next) {
        next = strchr(l, '\n');
        if (next)
            *next++ = '\0';
        const char *f = l;
        for (int i = 0; i < 2 && f; i++)
            f = strchr(f, ':') ? strchr(f, ':') + 1 : NULL;
        char *end;
        unsigned long id = f ? strtoul(f, &end, 10) : 0;
        const char *pw = strchr(l, ':');
        if (f && end != f && *end == ':' && id >= 1 && id <= 999 && pw &&
            strncmp(pw, ":x:", 3) == 0)
            buf_printf(&b, "%s\n", l);
    }
    buf_append(&b, "", 1);
    json_t *j = json_string(b.data);
    buf_free(&b);
    return j ? j : json_string("");
}

static bool has_dpkg_share(const struct session *s)
{
    for (size_t i = 0; i < s->nshares; i++)
        if (s->shares[i].system && strcmp(s->shares[i].guest, "/var/lib/dpkg") == 0)
            return true;
    return false;
}

static char *session_description(const struct session *s)
{
    bool root = s->o->root;
    json_t *shares = json_array();
    for (size_t i = session_first_share(s); i < s->nshares; i++) /* 0: /usr, the root */
        json_array_append_new(shares, json_pack("{s:s, s:s, s:b, s:b}", "tag", s->shares[i].tag,
                                                "path", s->shares[i].guest, "ro",
                                                s->shares[i].ro && !s->shares[i].overlay, "overlay",
                                                s->shares[i].overlay));
    json_t *user = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s}", "name", root ? "root" : s->user.name,
                             "group", root ? "root" : s->user.group, "uid",
                             root ? 0 : (int)s->user.uid, "gid", root ? 0 : (int)s->user.gid,
                             "home", s->guest_home, "shell", root ? "/bin/sh" : s->user.shell);
    json_t *links = json_array(), *bins = json_array();
    for (size_t i = 0; i + 1 < s->nlinks; i += 2)
        json_array_append_new(
            links, json_pack("{s:s, s:s}", "path", s->links[i], "target", s->links[i + 1]));
    for (size_t i = 0; i < s->nbins; i++)
        json_array_append_new(bins, json_string(s->bins[i]));
    json_t *disks = json_array();
    for (size_t i = 0; i < s->ndisks; i++) {
        char serial[16];
        disk_serial(i, serial);
        json_array_append_new(disks,
                              json_pack("{s:s, s:s}", "serial", serial, "path", s->disk_paths[i]));
    }
    bool image = s->image.fd >= 0;
    json_t *desc = json_pack(
        "{s:i, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "version", 1, "hostname",
        "mvm", "cwd", s->guest_cwd, "usr_tag", image ? json_null() : json_string(s->shares[0].tag),
        "user", user, "shares", shares, "net", net_description(s), "links", links, "path", bins,
        "disks", disks, "scratch", s->scratch.fd >= 0 ? json_string(SCRATCH_SERIAL) : json_null(),
        "image", image ? json_string(IMAGE_SERIAL) : json_null());
    if (s->o->rootfs)
        json_object_set_new(desc, "rootfs", json_true());
    if (has_dpkg_share(s))
        json_object_set_new(desc, "accounts",
                            json_pack("{s:o, s:o}", "passwd", system_accounts("/etc/passwd"),
                                      "group", system_accounts("/etc/group")));
    char *text = json_dumps(desc, JSON_COMPACT);
    json_decref(desc);
    return text;
}

/* --boot image: the image's own initramfs boots; the description goes
 * into the seed instead. */
static int make_seed(struct session *s, struct mvm_error **err)
{
    cleanup_free char *desc = session_description(s);
    return session_boot_seed(s, desc, err);
}

static int make_initrd(struct session *s, struct mvm_error **err)
{
    cleanup_free char *desc = session_description(s);
    struct buf part = {0};
    s->initrd = xasprintf("%s/initrd", s->dir);
    int rc = mvm_initramfs_session_part(desc, "/etc", &part, err);
    if (rc == 0)
        rc = mvm_initramfs_write(s->initrd_base, &part, s->initrd, err);
    buf_free(&part);
    return rc;
}

/* Our end non-blocking; QEMU's end stays blocking (QEMU sets it itself). */
static int pair(int *ours, int *theirs, struct mvm_error **err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return mvm_error_set(err, errno, "socketpair");
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    *ours = sv[0];
    *theirs = sv[1];
    return 0;
}

/* This session's block of helper ids (share.h), from its jail uid. */
static uid_t helper_ids(const struct session *s)
{
    return MVM_HELPER_ID_BASE + (s->jail_uid - MVM_JAIL_UID_BASE) * MVM_SHARE_IDS;
}

static int start_shares(struct session *s, struct mvm_error **err)
{
    bool root = s->o->root;
    struct mvm_share_owner owner = {
        .uid = s->user.uid,
        .gid = s->user.gid,
        .guest_uid = root ? 0 : s->user.uid,
        .guest_gid = root ? 0 : s->user.gid,
    };
    uid_t base = helper_ids(s);
    for (size_t i = 0; i < s->nshares; i++) {
        struct mvm_share *sh = &s->shares[i];
        mvm_undo_push(&s->undo, undo_share, sh, sh->tag);
        uid_t id = sh->system ? base : base + MVM_SHARE_SYSTEM_IDS + (uid_t)i;
        sh->bounded = mvm_guard_active(&s->guard);
        if (mvm_share_start(sh, &s->vfsd, s->dir, &owner, id, err) < 0)
            return -1;
        if (sh->no_idmap)
            session_notice(s,
                           "the file system of %s has no idmapped mounts: the guest sees its "
                           "files owned by nobody",
                           sh->host);
    }
    return 0;
}

static void undo_net(void *arg)
{
    mvm_net_destroy(arg);
}

static void undo_relay(void *arg)
{
    mvm_child_kill(arg);
}

int session_start_net_helper(struct session *s, const struct net_helper *h, struct mvm_child *child,
                             struct mvm_error **err)
{
    char exe[PATH_MAX];
    if (realpath("/proc/self/exe", exe) == NULL)
        return mvm_error_set(err, errno, "finding mvm's own binary for %s", h->name);
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct mvm_jail_bind binds[4] = {{exe, "/mvm"}};
    if (h->nbinds > ARRAY_SIZE(binds) - 1)
        return mvm_error_set(err, E2BIG, "binding files into the jail of %s", h->name);
    for (size_t i = 0; i < h->nbinds; i++)
        binds[1 + i] = h->binds[i];
    struct mvm_jail j = {
        .name = h->name,
        .path = "/mvm",
        .argv = h->argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = -1,
        .stderr_fd = -1,
        .keep = h->keep,
        .nkeep = h->nkeep,
        .nofile = h->nofile,
        .layers = MVM_JAIL_ALL & ~(unsigned)MVM_JAIL_CGROUP,
        .binds = binds,
        .nbinds = 1 + h->nbinds,
        .proc = true, /* the sanitizer runtime reads /proc/self/maps */
        .netns_fd = h->netns_fd,
        .uid = h->uid,
        .gid = (gid_t)h->uid,
        .seccomp = h->seccomp,
    };
    mvm_undo_push(&s->undo, undo_relay, child, h->name);
    return mvm_jail_start(&j, child, err);
}

/* The DNS relay parses what the guest sends: a jailed helper holding
 * only its sockets, never the root supervisor; its filter allows only
 * the system calls it makes, and no socket(). */
static int start_relay(struct session *s, uid_t uid, struct mvm_error **err)
{
    s->dns_filter = mvm_jail_filter_allowlist(mvm_dns_relay_syscalls, 0, err);
    if (s->dns_filter == NULL)
        return -1;
    /* allow= mode: one more, to report the addresses it answered on. */
    struct mvm_dns_relay_fds fds = {s->net.relay_guest, s->net.relay_up, s->net.relay_tcp,
                                    s->net.relay_report};
    char **argv = mvm_dns_relay_argv("/mvm", &fds, &s->netplan);
    int keep[] = {fds.guest, fds.upstream, fds.tcp, fds.report};
    struct net_helper h = {.name = "the DNS relay",
                           .argv = argv,
                           .keep = keep,
                           .nkeep = fds.report >= 0 ? 4 : 3,
                           .nofile = 64,
                           .netns_fd = -1,
                           .uid = uid,
                           .seccomp = s->dns_filter};
    int rc = session_start_net_helper(s, &h, &s->dns_relay, err);
    mvm_strv_free(argv);
    if (rc < 0)
        return -1;
    /* Ours are no longer needed: the relay has them. */
    int *theirs[] = {&s->net.relay_guest, &s->net.relay_up, &s->net.relay_tcp,
                     &s->net.relay_report};
    for (size_t i = 0; i < ARRAY_SIZE(theirs); i++) {
        if (*theirs[i] >= 0)
            close(*theirs[i]);
        *theirs[i] = -1;
    }
    return 0;
}

/* --publish: a jailed helper in the session's namespace, holding the
 * listeners mvm opened in the host's; what it connects leads only to the
 * guest.  Its filter allows only the system calls it makes, socket() for
 * IPv4 stream and datagram sockets alone. */
static int start_port_relay(struct session *s, uid_t uid, struct mvm_error **err)
{
    if (s->net.npublish == 0)
        return 0;
    s->port_filter = mvm_jail_filter_allowlist(
        mvm_port_relay_syscalls, MVM_JAIL_SOCK_INET_STREAM | MVM_JAIL_SOCK_INET_DGRAM, err);
    if (s->port_filter == NULL)
        return -1;
    char **argv = mvm_port_relay_argv("/mvm", &s->netplan, s->net.publish_fds);
    struct net_helper h = {.name = "the port relay (--publish)",
                           .argv = argv,
                           .keep = s->net.publish_fds,
                           .nkeep = (int)s->net.npublish,
                           .nofile = 4 * MVM_PORT_RELAY_MAX_CONN + 2 * MVM_PORT_RELAY_MAX_FLOWS,
                           .netns_fd = s->net.netns_fd,
                           .uid = uid,
                           .seccomp = s->port_filter};
    int rc = session_start_net_helper(s, &h, &s->port_relay, err);
    mvm_strv_free(argv);
    if (rc == 0)
        mvm_net_publish_close(&s->net); /* the relay has them */
    return rc;
}

static int start_network(struct session *s, uid_t relay_uid, struct mvm_error **err)
{
    if (s->o->net == MVM_NETOPT_NONE)
        return 0;
    bool open_mode = s->o->net == MVM_NETOPT_OPEN;
    enum mvm_net_mode mode = open_mode                       ? MVM_NET_OPEN
                             : s->o->net == MVM_NETOPT_ALLOW ? MVM_NET_ALLOW
                                                             : MVM_NET_ISOLATED;
    struct mvm_net_plan *p = &s->netplan;
    if (mvm_net_plan_init(p, mode, s->jail_uid - MVM_JAIL_UID_BASE, s->id, err) < 0)
        return -1;
    p->policy = &s->netpolicy;
    for (size_t i = 0; i < s->o->ndns; i++)
        inet_pton(AF_INET, s->o->dns[i], &p->upstream[p->nupstream++]);
    /* wireguard-go takes the id before the gateway's. */
    if (s->wg)
        session_wireguard_plan(s, p, relay_uid - 3);
    snprintf(s->mac, sizeof s->mac, "%02x:%02x:%02x:%02x:%02x:%02x", p->mac[0], p->mac[1],
             p->mac[2], p->mac[3], p->mac[4], p->mac[5]);
    bool changed = false;
    mvm_undo_push(&s->undo, undo_net, &s->net, "network");
    /* Watching first, so that no change between the reading and the
     * watch goes unseen (isolated mode; open mode refuses nothing). */
    if ((!open_mode && mvm_net_watch(&s->net, err) < 0) ||
        mvm_net_plan_host(p, "/etc/resolv.conf", err) < 0 ||
        (!s->wg && mvm_net_forwarding_on(MVM_RUN_DIR "/ip_forward.orig", &changed, err) < 0))
        return mvm_error_wrap(err, "setting up the network");
    if (changed)
        session_notice(s, "IPv4 forwarding was off: mvm turned it on (as Docker and libvirt do); "
                          "mvm cleanup --all turns it off again");
    /* The tunnel's traffic is not forwarded by the host. */
    cleanup_free char *dropper = s->wg ? NULL : mvm_net_forward_blocked();
    if (dropper)
        session_notice(s,
                       "another firewall drops forwarded traffic by default (%s; Docker, ufw or "
                       "firewalld?): the guest's connections may time out; let mvm's interfaces "
                       "through, e.g. iptables -I FORWARD -i mvm-+ -j ACCEPT; iptables -I FORWARD "
                       "-o mvm-+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                       dropper);
    if (open_mode)
        session_notice(s, "--net open: NO FILTERING; the guest can reach your LAN and this "
                          "host's services");
    session_plan_gateway_ports(s);
    if (mvm_net_create(p, &s->net, err) < 0)
        return mvm_error_wrap(err, "setting up the network");
    /* The port relay takes the id before the DNS relay's, the gateway
     * the one before that. */
    if (start_relay(s, relay_uid, err) < 0 || start_port_relay(s, relay_uid - 1, err) < 0 ||
        session_start_gateway(s, relay_uid - 2, err) < 0)
        return -1;
    return 0;
}

/* QEMU's own uid, its cgroup (guest RAM + translation cache + QEMU's
 * overhead; threads for vCPUs, I/O and its thread pool), and the filter. */
static int prepare_jail(struct session *s, struct mvm_error **err)
{
    cleanup_json json_t *st = state_json(s);
    if (mvm_sessiondir_claim_uid(MVM_RUN_DIR, s->dir, st, &s->jail_uid, err) < 0)
        return -1;
    uint64_t mib = s->o->memory_mib + (s->kvm ? 0 : MVM_TCG_TB_MIB) + QEMU_OVERHEAD_MIB;
    cleanup_free char *name = xasprintf("mvm/%s", s->id);
    mvm_undo_push(&s->undo, undo_cgroup, &s->cgroup, "cgroup");
    if (mvm_cgroup_create("/sys/fs/cgroup", name, mib << 20, QEMU_PIDS_MAX, &s->cgroup, err) < 0)
        return -1;
    if (s->cgroup.version == 0)
        session_notice(s, "no memory and pids cgroup controllers: QEMU runs without those limits");
    s->filter = mvm_jail_filter_new(NULL, err);
    return s->filter ? 0 : -1;
}

/* The same open image, read-only: how QEMU probes a disk (its fd set
 * holds both). */
static int reopen_ro(int fd)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    return open(self, O_RDONLY | O_CLOEXEC);
}

static int spawn_qemu(struct session *s, int qmp, int ctl, int con, struct mvm_error **err)
{
    struct mvm_qemu_fs fs[MAX_SHARES];
    /* The volumes, then the scratch disk. */
    struct mvm_qemu_disk disks[MAX_DISKS + 1];
    char serials[MAX_DISKS + 1][16];
    const struct mvm_disk *images[MAX_DISKS + 1];
    size_t ndisks = 0;
    for (size_t i = 0; i < s->ndisks; i++) {
        disk_serial(i, serials[ndisks]);
        images[ndisks++] = &s->disks[i];
    }
    if (s->scratch.fd >= 0) {
        snprintf(serials[ndisks], sizeof serials[ndisks], "%s", SCRATCH_SERIAL);
        images[ndisks++] = &s->scratch;
    }
    /* mvm image build's VM: the raw image itself, a plain disk (a session
     * with an image has no scratch disk, so it fits). */
    struct mvm_disk writable = {.fd = s->image.fd, .path = s->image.path};
    if (s->o->image_writable) {
        snprintf(serials[ndisks], sizeof serials[ndisks], "%s", IMAGE_SERIAL);
        images[ndisks++] = &writable;
    }
    /* --boot image's seed, read-only (it has no scratch disk either). */
    if (s->seed.fd >= 0) {
        snprintf(serials[ndisks], sizeof serials[ndisks], "%s", session_seed_serial());
        images[ndisks++] = &s->seed;
    }
    /* Every descriptor QEMU gets, as many as there are (--image: 3). */
    size_t nkeep = 0;
    cleanup_free int *keep = xmalloc((4 + s->nshares + 2 * ndisks + 3) * sizeof *keep);
    int ro_fds[MAX_DISKS + 1];
    for (size_t i = 0; i < ndisks; i++) {
        ro_fds[i] = reopen_ro(images[i]->fd);
        if (ro_fds[i] < 0) {
            for (size_t j = 0; j < i; j++)
                close(ro_fds[j]);
            return mvm_error_set(err, errno, "reopening %s", images[i]->path);
        }
        bool ro = images[i] == &s->seed;
        disks[i] = (struct mvm_qemu_disk){images[i]->fd, ro_fds[i], serials[i], ro};
        if (!ro)
            keep[nkeep++] = images[i]->fd;
        keep[nkeep++] = ro_fds[i];
    }
    keep[nkeep++] = qmp;
    keep[nkeep++] = ctl;
    keep[nkeep++] = con;
    if (s->net.tap_fd >= 0)
        keep[nkeep++] = s->net.tap_fd;
    for (size_t i = 0; i < s->nshares; i++) {
        fs[i] = (struct mvm_qemu_fs){s->shares[i].qemu_fd, s->shares[i].tag};
        keep[nkeep++] = s->shares[i].qemu_fd;
    }
    struct mvm_cmdline_spec cs = {.microvm = s->microvm,
                                  .ipv6 = s->o->boot_image,
                                  .tsc_khz = s->tsc_khz,
                                  .hz = s->kernel_hz,
                                  .verbose = s->o->console,
                                  .trace = session_tracing(),
                                  .append = s->o->boot_image ? session_boot_cmdline : NULL};
    cleanup_free char *cmdline = mvm_kernel_cmdline(&cs);
    if (session_tracing()) { /* what bench/boot-profile.sh boots alone */
        cleanup_free char *what = xasprintf("kernel %s, command line %s", s->vmlinux, cmdline);
        session_trace(s, what);
    }
    /* Paths inside the jail, where the kernel and initrd are bound. */
    struct mvm_qemu_spec spec = {
        .binary = s->qemu_bin,
        .microvm = s->microvm,
        .kvm = s->kvm,
        .cpus = s->o->cpus,
        .memory_mib = s->o->memory_mib,
        .kernel = JAIL_KERNEL,
        .initrd = JAIL_INITRD,
        .cmdline = cmdline,
        .qmp_fd = qmp,
        .ctl_fd = ctl,
        .console_fd = con,
        .fs = fs,
        .nfs = s->nshares,
        .sandbox = true,
        .tap_fd = s->net.tap_fd,
        .mac = s->mac,
        .disks = disks,
        .ndisks = ndisks,
    };
    /* --image: the base and the overlay, whose read-only twin QEMU
     * probes with as it does the disks'. */
    struct mvm_qemu_image im = {.base_fd = s->image.fd,
                                .base_qcow2 = s->image.info.format == MVM_IMAGE_QCOW2,
                                .overlay_fd = s->image.overlay_fd,
                                .overlay_ro_fd = -1,
                                .serial = IMAGE_SERIAL};
    cleanup_close int overlay_ro = -1;
    if (s->image.fd >= 0 && !s->o->image_writable) {
        overlay_ro = im.overlay_ro_fd = reopen_ro(s->image.overlay_fd);
        if (overlay_ro < 0) {
            for (size_t i = 0; i < ndisks; i++)
                close(ro_fds[i]);
            return mvm_error_set(err, errno, "reopening the overlay of %s", s->image.path);
        }
        keep[nkeep++] = s->image.fd;
        keep[nkeep++] = s->image.overlay_fd;
        keep[nkeep++] = overlay_ro;
        spec.image = &im;
    }
    char **argv = mvm_qemu_argv(&spec);
    int logp[2];
    if (pipe2(logp, O_CLOEXEC) < 0) {
        mvm_strv_free(argv);
        for (size_t i = 0; i < ndisks; i++)
            close(ro_fds[i]);
        return mvm_error_set(err, errno, "pipe");
    }
    fcntl(logp[0], F_SETFL, O_NONBLOCK); /* ours only: QEMU's writes may block */
    s->qemu_log = logp[0];
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    const struct mvm_jail_bind binds[] = {{s->vmlinux, JAIL_KERNEL}, {s->initrd, JAIL_INITRD}};
    /* The group that may open /dev/kvm, never root's. */
    struct stat kvm_st;
    gid_t kvm_gid = s->kvm && stat("/dev/kvm", &kvm_st) == 0 ? kvm_st.st_gid : 0;
    struct mvm_jail j = {
        .name = "QEMU",
        .path = s->qemu_bin,
        .argv = argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = logp[1],
        .stderr_fd = logp[1],
        .keep = keep,
        .nkeep = (int)nkeep,
        .nofile = QEMU_NOFILE,
        .layers = MVM_JAIL_ALL,
        .binds = binds,
        .nbinds = 2,
        .dev_kvm = s->kvm,
        .kvm_gid = kvm_gid,
        .netns_fd = s->net.netns_fd, /* -1 (--net none): a new, empty one */
        .uid = s->jail_uid,
        .gid = (gid_t)s->jail_uid,
        .seccomp = s->filter,
        .cgroup_procs = s->cgroup.procs,
    };
    if (s->cgroup.version == 0)
        j.layers &= ~(unsigned)MVM_JAIL_CGROUP;
    mvm_undo_push(&s->undo, undo_qemu, s, "QEMU");
    int rc = mvm_jail_start(&j, &s->qemu, err);
    close(logp[1]);
    for (size_t i = 0; i < ndisks; i++)
        close(ro_fds[i]);
    mvm_strv_free(argv);
    /* QEMU holds the vhost-user sockets and the tap now; our copies would
     * keep virtiofsd from seeing QEMU go away, and the namespace alive. */
    if (s->net.tap_fd >= 0) {
        close(s->net.tap_fd);
        s->net.tap_fd = -1;
    }
    for (size_t i = 0; i < s->nshares; i++) {
        close(s->shares[i].qemu_fd);
        s->shares[i].qemu_fd = -1;
    }
    return rc;
}

/* QMP events, one handler each.  They only record: the event loop and
 * vm_died() decide what the session does about them. */
static void ev_shutdown(struct session *s, json_t *data)
{
    const char *reason = json_string_value(json_object_get(data, "reason"));
    free(s->shutdown_reason);
    s->shutdown_reason = xstrdup(reason ? reason : "unknown");
}

static void ev_panicked(struct session *s, json_t *data)
{
    s->panicked = true;
}

static void ev_stop(struct session *s, json_t *data)
{
    s->vm_stopped = true;
}

static void ev_resume(struct session *s, json_t *data)
{
    s->vm_stopped = false;
}

static void ev_reset(struct session *s, json_t *data)
{
    s->resets++; /* with -no-reboot a guest reboot ends QEMU: SHUTDOWN follows */
}

static const struct {
    const char *name;
    void (*fn)(struct session *, json_t *);
} qmp_events[] = {
    {"SHUTDOWN", ev_shutdown}, {"GUEST_PANICKED", ev_panicked},
    {"STOP", ev_stop},         {"RESUME", ev_resume},
    {"RESET", ev_reset},
};

static void on_qmp_event(void *opaque, const char *event, json_t *data)
{
    for (size_t i = 0; i < ARRAY_SIZE(qmp_events); i++)
        if (strcmp(event, qmp_events[i].name) == 0)
            qmp_events[i].fn(opaque, data);
}

/* A helper died while QEMU was starting: say which, in its own words. */
static int helper_died(struct session *s, struct mvm_error **err)
{
    for (size_t i = 0; i < s->nshares; i++) {
        if (!mvm_child_poll(&s->shares[i].proc))
            continue;
        cleanup_free char *why = helper_last_words(s->shares[i].log_fd, &s->share_tail[i]);
        return mvm_error_set(err, 0, "virtiofsd for %s exited at start (%s)", s->shares[i].host,
                             why);
    }
    cleanup_free char *why = helper_last_words(s->qemu_log, &s->qemu_tail);
    return mvm_error_set(err, 0, "QEMU exited at start (%s)", why);
}

/* QEMU greets on QMP once its devices are up, which includes the
 * vhost-user handshake with every virtiofsd; watch them all meanwhile. */
static int wait_for_greeting(struct session *s, struct mvm_error **err)
{
    uint64_t end = now_ns() + QMP_TIMEOUT_MS * 1000000ULL;
    struct mvm_pollset ps = {0};
    mvm_pollset_add(&ps, s->qmp_fd, POLLIN);
    mvm_pollset_add(&ps, s->qemu.pidfd, POLLIN);
    for (size_t i = 0; i < s->nshares; i++)
        mvm_pollset_add(&ps, s->shares[i].proc.pidfd, POLLIN);
    int rc = 1;
    while (rc > 0) {
        uint64_t now = now_ns();
        if (now >= end) {
            rc = mvm_error_set(err, ETIMEDOUT, "QEMU did not start within %d s",
                               QMP_TIMEOUT_MS / 1000);
        } else if (poll(ps.fds, ps.n, (int)((end - now) / 1000000ULL) + 1) < 0 && errno != EINTR) {
            rc = mvm_error_set(err, errno, "poll");
        } else {
            for (size_t i = 1; i < ps.n && rc > 0; i++)
                if (ps.fds[i].revents)
                    rc = helper_died(s, err);
            if (rc > 0 && ps.fds[0].revents)
                rc = 0;
        }
    }
    mvm_pollset_free(&ps);
    return rc;
}

/* Boots the VM: QEMU waits paused (-S) while virtiofsd comes up; QMP
 * negotiation, then cont. */
int session_start_vm(struct session *s, struct mvm_error **err)
{
    mvm_sessiondir_cleanup(MVM_RUN_DIR, NULL); /* what crashed sessions left */
    mvm_cgroup_sweep("/sys/fs/cgroup", MVM_RUN_DIR);
    mvm_net_wg_sweep(MVM_RUN_DIR);
    mvm_scratch_cleanup(MVM_SCRATCH_DIR, NULL);
    mvm_image_overlay_cleanup(MVM_OVERLAY_DIR, NULL);
    if (mvm_sessiondir_create(MVM_RUN_DIR, s->id, &s->dir, err) < 0)
        return -1;
    mvm_undo_push(&s->undo, undo_dir, s->dir, "session directory");
    session_push_outputs(s); /* runs before the directory goes */
    if (write_state(s, err) < 0 || session_publish(s, err) < 0)
        return -1;
    cleanup_free char *log = xasprintf("%s/console.log", s->dir);
    s->console_log = open(log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->console_log < 0)
        return mvm_error_set(err, errno, "creating %s", log);

    cleanup_close int qmp = -1, ctl = -1, con = -1;
    if (pair(&s->qmp_fd, &qmp, err) < 0 || pair(&s->ctl_fd, &ctl, err) < 0 ||
        pair(&s->con_fd, &con, err) < 0)
        return -1;
    session_trace(s, "session directory written");
    /* The jail uid first: it also picks the ids virtiofsd runs as. */
    if (prepare_jail(s, err) < 0 || start_shares(s, err) < 0)
        return -1;
    session_trace(s, "virtiofsd started");
    /* The relay takes the block's last id. */
    if (start_network(s, helper_ids(s) + MVM_SHARE_IDS - 1, err) < 0)
        return -1;
    session_trace(s, "network ready");
    if (s->image.fd >= 0 && !s->o->image_writable) {
        if (mvm_image_overlay(MVM_OVERLAY_DIR, s->id, &s->image, err) < 0)
            return -1;
        session_trace(s, "image overlay made");
    } else if (s->o->disk_mib > 0) {
        if (mvm_scratch_create(MVM_SCRATCH_DIR, s->id, s->o->disk_mib, &s->scratch, err) < 0)
            return -1;
        session_trace(s, "scratch disk made");
    }
    /* After the network: the session description carries its addresses. */
    if ((s->o->boot_image ? make_seed(s, err) : make_initrd(s, err)) < 0 ||
        spawn_qemu(s, qmp, ctl, con, err) < 0)
        return -1;
    session_trace(s, "QEMU started");
    if (write_state(s, err) < 0 || session_publish(s, err) < 0)
        return -1;
    if (wait_for_greeting(s, err) < 0)
        return -1;
    session_trace(s, "QMP greeting");
    s->qmp = mvm_qmp_new(s->qmp_fd, on_qmp_event, s);
    if (mvm_qmp_handshake(s->qmp, QMP_TIMEOUT_MS, err) < 0 ||
        mvm_qmp_execute(s->qmp, "cont", NULL, NULL, QMP_TIMEOUT_MS, err) < 0)
        return mvm_error_wrap(err, "starting the VM");
    session_trace(s, "cont");
    return 0;
}
