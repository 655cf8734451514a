/* Parsing of `mvm run` options and config files.  Both go through
 * set_option() so a key means the same thing in either place. */
#include "cli.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char mvm_usage[] =
    "Usage: mvm COMMAND [OPTIONS]\n"
    "\n"
    "Run a program in a throwaway virtual machine that leaves nothing behind.\n"
    "\n"
    "Commands:\n"
    "  run [OPTIONS] [--] [CMD [ARGS...]]   run CMD (default: your login shell) in a new VM\n"
    "  cleanup                              remove what crashed sessions left in /run/mvm\n"
    "  ps [--json] [-a]                     list running sessions\n"
    "  stop [--force] [--timeout D] ID|NAME stop a session: SIGTERM to its command, then\n"
    "                                       the VM is destroyed after D (default 10s)\n"
    "  exec [OPTIONS] ID|NAME [--] [CMD]    run another command in a running session\n"
    "  attach ID|NAME                       connect to a session started with run --detach\n"
    "  volume ls, volume rm NAME            list or remove your persistent volumes\n"
    "  image build NAME [OPTIONS]           build a Debian base image for run --image NAME\n"
    "  image ls, image inspect NAME,        list the images, show one's recipe and digest,\n"
    "  image rm NAME                        remove one\n"
    "  doctor [--json]                      check whether mvm run can work here, and\n"
    "                                       what to install or change if not\n"
    "  config [RUN OPTIONS]                 print the settings mvm run would use, and\n"
    "                                       where each came from\n"
    "\n"
    "  mvm --help, mvm COMMAND --help       show help\n"
    "  mvm --version                        show the version\n";

const char mvm_run_usage[] =
    "Usage: mvm run [OPTIONS] [--] [CMD [ARGS...]]\n"
    "\n"
    "Boots a throwaway VM, runs CMD in it as you, in the current directory (shared\n"
    "read-write), with your terminal attached, and exits with CMD's status.\n"
    "Without CMD, runs your login shell.\n"
    "\n"
    "Options:\n"
    "  --cpus N             virtual CPUs (default 2)\n"
    "  --memory SIZE        guest memory, e.g. 512M, 2G; a bare number is MiB (default 1G)\n"
    "  --kernel PATH        guest kernel (default: /boot/vmlinuz-$(uname -r), else the newest\n"
    "                       /boot/vmlinuz-* that has modules in /lib/modules)\n"
    "  --modules DIR        modules directory for --kernel (default /lib/modules/RELEASE)\n"
    "  --image FILE|NAME    run the userland of disk image FILE (raw or qcow2; a filesystem\n"
    "                       or a GPT/MBR disk) instead of the host's /usr, with mvm's kernel\n"
    "                       and init; FILE never changes: the writes go to an overlay that\n"
    "                       is gone at exit; a NAME (no '/', no such file here) is an\n"
    "                       image made by mvm image build\n"
    "  --rootfs DIR         the same with directory tree DIR (debootstrap output, an\n"
    "                       unpacked OCI image) as the root, read-only below an overlay\n"
    "                       on the throwaway disk\n"
    "  --boot MODE          mvm (default: mvm's kernel and init) or image: --image NAME's\n"
    "                       own kernel and init (systemd), seeded with cloud-init; slower\n"
    "  --accel MODE         auto, kvm or tcg (default auto: KVM when it can run a guest)\n"
    "  --machine TYPE       auto, microvm or q35 (default auto: microvm)\n"
    "  --env NAME[=VALUE]   set NAME in the guest; NAME alone copies your value (under sudo,\n"
    "                       keep it with sudo --preserve-env=NAME); repeatable\n"
    "  --share HOST[:GUEST][:ro|:overlay][,submounts]\n"
    "                       also share directory HOST at GUEST (default: same path);\n"
    "                       read-write unless :ro; :overlay: writable in the guest, the\n"
    "                       host's files untouched and the changes gone at exit; file\n"
    "                       systems mounted below HOST only with submounts; repeatable\n"
    "  --no-cwd             do not share the current directory (start in the home directory)\n"
    "  --force-share        allow a read-write --share of a home, a system directory, or one\n"
    "                       holding .ssh, .gnupg, .aws... (refused otherwise)\n"
    "  --name NAME          the session's name in mvm ps and mvm stop (default: generated)\n"
    "  --no-resolve         do not look CMD up on your PATH to share where it is installed\n"
    "  --disk SIZE          the throwaway disk under /tmp, /var, the home and the\n"
    "                       writable /usr (default 8G, sparse; none: RAM, read-only /usr)\n"
    "  --volume NAME:GUEST[:SIZE]\n"
    "                       attach your persistent volume NAME (created on first use, SIZE\n"
    "                       default 4G) at GUEST: an absolute path, ~ or ~/DIR; repeatable\n"
    "  --net MODE           isolated (default): the internet, never the host, the LAN or\n"
    "                       other sessions, DNS only through mvm's relay; none: no network\n"
    "                       interface; open: NAT only, NO FILTERING (the LAN and the host\n"
    "                       are reachable); allow=RULE[,RULE...]: only these names (and\n"
    "                       the names below *.NAME), IPv4 addresses or prefixes, each\n"
    "                       with :PORT or else TCP 80 and 443; other names get no answer\n"
    "  --dns ADDR           the IPv4 resolver mvm's relay asks (default: the host's, from\n"
    "                       /etc/resolv.conf); repeatable\n"
    "  --publish [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]\n"
    "                       relay HOSTPORT on the host (on 127.0.0.1 unless HOSTIP says\n"
    "                       otherwise) to GUESTPORT in the guest; repeatable\n"
    "  --allow-host PORT    let the guest reach TCP PORT on this host (at its gateway\n"
    "                       address 10.0.2.2 or any host address); repeatable\n"
    "  --allow-lan HOST:PORT\n"
    "                       let the guest reach TCP PORT at LAN address HOST; repeatable\n"
    "  --wireguard FILE     the guest's only way out is the WireGuard tunnel FILE (a\n"
    "                       wg-quick file, yours alone): nothing leaves when it is down;\n"
    "                       DNS through the tunnel (its DNS line, else --dns)\n"
    "  --api-key PROVIDER[=ENVNAME|=ENVNAME=@FILE]\n"
    "                       keep an API key out of the guest: a gateway outside the VM adds\n"
    "                       it to the guest's requests and speaks TLS to the provider; the\n"
    "                       guest gets the base-URL variable and a placeholder key.\n"
    "                       PROVIDER: anthropic ($ANTHROPIC_API_KEY), openai\n"
    "                       ($OPENAI_API_KEY) or custom:https://HOST[:PORT][/PATH]:HEADER\n"
    "                       (needs =ENVNAME); the key from mvm's environment (under sudo:\n"
    "                       sudo --preserve-env=ENVNAME) or FILE, yours alone; repeatable\n"
    "  --api-ca FILE        also trust this CA (PEM) for the providers' certificates\n"
    "  --audit MODE         at exit, list what the guest left in read-write shares that\n"
    "                       the host would run later (git hooks and config, .envrc, editor\n"
    "                       and agent settings, install scripts, setuid files...): warn\n"
    "                       (default); strict: also undo it and exit 123; off: only\n"
    "                       remove the setuid bits and device nodes it made\n"
    "  --share-limit SIZE   pause the VM when the read-write shares' filesystems have\n"
    "                       grown by more than SIZE (e.g. 2G), or by more than SIZE/4K\n"
    "                       files and directories, since the session started (default: none)\n"
    "  --min-free SIZE|PERCENT\n"
    "                       pause the VM when a filesystem holding a read-write share has\n"
    "                       less than SIZE (or PERCENT%, e.g. 10%) of its space or inodes\n"
    "                       free (default 5%; 0: no floor); then r resumes, s stops\n"
    "  --root               run CMD as root in the guest instead of as you\n"
    "  --timeout DURATION   destroy the VM after DURATION (e.g. 90s, 10m, 1h) and exit 124\n"
    "  --console            show the guest kernel's console on stderr\n"
    "  --console-log FILE   keep the guest kernel's console log in FILE after exit\n"
    "  --result FILE        write a JSON record of how the session ended to FILE\n"
    "  -t, --tty            give CMD a terminal even when stdin/stdout are not terminals\n"
    "  -T, --no-tty         never give CMD a terminal (separate stdout and stderr)\n"
    "  --detach             print the session's name and return; CMD runs on, and\n"
    "                       mvm attach NAME connects your terminal to it (~d detaches)\n"
    "  -q, --quiet          no notices from mvm (errors are still printed)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Terminal escape (after Enter): ~. kills the VM, ~? lists escapes, ~~ sends ~.\n"
    "Exit status: CMD's own; 128+N if it died of signal N; 124 on --timeout;\n"
    "125 if mvm failed; 126 if CMD is not executable; 127 if CMD is not found;\n"
    "123 if --audit strict found something and CMD's own status was 0;\n"
    "122 if a disk limit paused the VM and it was stopped (s, or no terminal).\n"
    "Config files: /etc/mvm/config, then ~/.config/mvm/config (keys: cpus, memory,\n"
    "kernel, modules, image, rootfs, boot, accel, machine, timeout, console, quiet, net, dns, "
    "disk,\n"
    "publish, allow-host, allow-lan, wireguard, api-key, api-ca, audit, share-limit,\n"
    "min-free);\n"
    "options win.\n";

void mvm_run_opts_init(struct mvm_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cpus = MVM_DEFAULT_CPUS;
    o->memory_mib = MVM_DEFAULT_MEMORY_MIB;
    o->disk_mib = MVM_DEFAULT_DISK_MIB;
    o->audit = MVM_AUDIT_WARN;
    o->min_free = MVM_DEFAULT_MIN_FREE;
    o->min_free_percent = true;
}

static void push_str(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = xstrdup(s);
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void mvm_run_opts_clear(struct mvm_run_opts *o)
{
    for (size_t i = 0; i < o->norigins; i++) {
        free(o->origins[i].key);
        free(o->origins[i].value);
        free(o->origins[i].origin);
    }
    free(o->origins);
    free_strs(o->publish, o->npublish);
    free_strs(o->allow_host, o->nallow_host);
    free_strs(o->allow_lan, o->nallow_lan);
    free(o->net_allow);
    free_strs(o->api_keys, o->napi_keys);
    free(o->api_ca);
    free(o->image);
    free(o->rootfs);
    free(o->wireguard);
    for (size_t i = 0; i < o->ndns; i++)
        free(o->dns[i]);
    free(o->kernel);
    free(o->name);
    free(o->result_file);
    free(o->console_log_file);
    free(o->modules);
    for (size_t i = 0; i < o->nenv; i++) {
        free(o->env[i].name);
        free(o->env[i].value);
    }
    free(o->env);
    for (size_t i = 0; i < o->nshares; i++) {
        free(o->shares[i].host);
        free(o->shares[i].guest);
    }
    free(o->shares);
    for (size_t i = 0; i < o->nvolumes; i++) {
        free(o->volumes[i].name);
        free(o->volumes[i].guest);
    }
    free(o->volumes);
    mvm_run_opts_init(o);
}

/* Splits "123abc" into 123 and "abc"; rejects signs, overflow, no digits. */
static int split_number(const char *s, uint64_t *n, const char **suffix)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    *n = v;
    *suffix = end;
    return 0;
}

/* A size in MiB between lo and hi MiB; `what` names it in errors. */
static int parse_size(const char *what, const char *s, uint64_t lo, uint64_t hi, uint64_t *mib,
                      struct mvm_error **err)
{
    uint64_t n;
    const char *suf;
    if (split_number(s, &n, &suf) < 0)
        goto bad;
    uint64_t kib;
    if (strcasecmp(suf, "") == 0 || strcasecmp(suf, "M") == 0 || strcasecmp(suf, "MiB") == 0 ||
        strcasecmp(suf, "MB") == 0)
        kib = n * 1024;
    else if (strcasecmp(suf, "G") == 0 || strcasecmp(suf, "GiB") == 0 || strcasecmp(suf, "GB") == 0)
        kib = n * 1024 * 1024;
    else if (strcasecmp(suf, "T") == 0 || strcasecmp(suf, "TiB") == 0 || strcasecmp(suf, "TB") == 0)
        kib = n * 1024 * 1024 * 1024;
    else if (strcasecmp(suf, "K") == 0 || strcasecmp(suf, "KiB") == 0 || strcasecmp(suf, "KB") == 0)
        kib = n;
    else
        goto bad;
    if (n > (1ULL << 30) || kib % 1024 != 0)
        goto bad;
    *mib = kib / 1024;
    if (*mib < lo || *mib > hi)
        return mvm_error_set(err, 0, "%s '%s' is out of range: use %lluM to %lluG", what, s,
                             (unsigned long long)lo, (unsigned long long)(hi / 1024));
    return 0;
bad:
    return mvm_error_set(err, 0, "bad %s '%s': use a number with K, M or G, e.g. 512M or 2G", what,
                         s);
}

int mvm_parse_size_mib(const char *s, uint64_t *mib, struct mvm_error **err)
{
    return parse_size("memory size", s, 128, 1024 * 1024, mib, err);
}

int mvm_parse_duration_ms(const char *s, uint64_t *ms, struct mvm_error **err)
{
    uint64_t n;
    const char *suf;
    if (split_number(s, &n, &suf) < 0)
        goto bad;
    uint64_t mult;
    if (strcmp(suf, "ms") == 0)
        mult = 1;
    else if (strcmp(suf, "") == 0 || strcmp(suf, "s") == 0)
        mult = 1000;
    else if (strcmp(suf, "m") == 0 || strcmp(suf, "min") == 0)
        mult = 60 * 1000;
    else if (strcmp(suf, "h") == 0)
        mult = 3600 * 1000;
    else
        goto bad;
    if (n == 0 || n > UINT64_MAX / mult / 1000)
        goto bad;
    *ms = n * mult;
    return 0;
bad:
    return mvm_error_set(err, 0, "bad duration '%s': use e.g. 500ms, 90s, 10m or 1h", s);
}

/* --min-free: a size, or a percentage of the filesystem; 0 or none: off. */
static int parse_min_free(const char *v, struct mvm_run_opts *o, struct mvm_error **err)
{
    uint64_t n, mib;
    const char *suf;
    if (strcmp(v, "none") == 0) {
        o->min_free = 0;
        return 0;
    }
    if (split_number(v, &n, &suf) == 0 && strcmp(suf, "%") == 0) {
        if (n > 99)
            return mvm_error_set(err, 0,
                                 "bad --min-free '%s': use a percentage from 0%% to 99%%, or a "
                                 "size such as 2G",
                                 v);
        o->min_free = n;
        o->min_free_percent = true;
        return 0;
    }
    if (parse_size("--min-free", v, 0, 16 * 1024 * 1024, &mib, err) < 0)
        return mvm_error_set(err, 0,
                             "bad --min-free '%s': use a size such as 2G or 512M, a percentage "
                             "such as 10%%, or 0 for no floor",
                             v);
    o->min_free = mib * 1024 * 1024;
    o->min_free_percent = false;
    return 0;
}

static int parse_share_limit(const char *v, uint64_t *bytes, struct mvm_error **err)
{
    uint64_t mib;
    if (strcmp(v, "none") == 0 || strcmp(v, "0") == 0) {
        *bytes = 0;
        return 0;
    }
    if (parse_size("--share-limit", v, 1, 16 * 1024 * 1024, &mib, err) < 0)
        return -1;
    *bytes = mib * 1024 * 1024;
    return 0;
}

static int parse_choice(const char *what, const char *v, const char *const *names, int *out,
                        struct mvm_error **err)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    cleanup_free char *list = NULL;
    struct buf b = {0};
    for (int i = 0; names[i]; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    buf_append(&b, "", 1);
    list = b.data;
    return mvm_error_set(err, 0, "bad %s '%s': use one of %s", what, v, list);
}

static int parse_bool(const char *key, const char *v, bool *out, struct mvm_error **err)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return mvm_error_set(err, 0, "bad value '%s' for %s: use true or false", v, key);
    return 0;
}

static int parse_cpus(const char *v, unsigned *cpus, struct mvm_error **err)
{
    uint64_t n;
    const char *suf;
    if (split_number(v, &n, &suf) < 0 || *suf != '\0' || n < 1 || n > 64)
        return mvm_error_set(err, 0, "bad CPU count '%s': use a number from 1 to 64", v);
    *cpus = (unsigned)n;
    return 0;
}

#define CLI_ORIGIN "command line"

static void replace_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

const struct mvm_config_key mvm_config_keys[] = {
    {"cpus", false, "2"},
    {"memory", false, "1G"},
    {"disk", false, "8G"},
    {"timeout", false, "(none)"},
    {"kernel", false, "(/boot's image of the running kernel, else its newest with modules)"},
    {"modules", false, "(the kernel's own under /lib/modules)"},
    {"image", false, "(none: the host's /usr)"},
    {"rootfs", false, "(none: the host's /usr)"},
    {"boot", false, "mvm"},
    {"accel", false, "auto"},
    {"machine", false, "auto"},
    {"net", false, "isolated"},
    {"dns", true, "(the host's resolvers)"},
    {"publish", true, "(none)"},
    {"allow-host", true, "(none)"},
    {"allow-lan", true, "(none)"},
    {"wireguard", false, "(none: the host's routes)"},
    {"api-key", true, "(none)"},
    {"api-ca", false, "(the system's CA bundle alone)"},
    {"audit", false, "warn"},
    {"share-limit", false, "(none)"},
    {"min-free", false, "5%"},
    {"console", false, "false"},
    {"quiet", false, "false"},
    {NULL, false, NULL},
};

static void note_origin(struct mvm_run_opts *o, const char *key, const char *v, const char *origin)
{
    o->origins = xrealloc(o->origins, (o->norigins + 1) * sizeof *o->origins);
    o->origins[o->norigins++] = (struct mvm_opt_origin){xstrdup(key), xstrdup(v), xstrdup(origin)};
}

/* Options that both config files and the command line may set. */
static int set_value(const char *key, const char *v, struct mvm_run_opts *o, bool *known,
                     struct mvm_error **err)
{
    static const char *const accels[] = {"auto", "kvm", "tcg", NULL};
    static const char *const machines[] = {"auto", "microvm", "q35", NULL};
    static const char *const boots[] = {"mvm", "image", NULL};
    /* The last one only names the form in errors: "allow=" is seen first. */
    static const char *const nets[] = {"isolated", "none", "open", "allow=RULE[,RULE...]", NULL};
    int choice;
    *known = true;
    if (strcmp(key, "cpus") == 0)
        return parse_cpus(v, &o->cpus, err);
    if (strcmp(key, "memory") == 0)
        return mvm_parse_size_mib(v, &o->memory_mib, err);
    if (strcmp(key, "timeout") == 0)
        return mvm_parse_duration_ms(v, &o->timeout_ms, err);
    if (strcmp(key, "disk") == 0) {
        if (strcmp(v, "none") == 0) {
            o->disk_mib = 0;
            return 0;
        }
        return parse_size("disk size", v, 64, 16 * 1024 * 1024, &o->disk_mib, err);
    }
    if (strcmp(key, "kernel") == 0) {
        replace_str(&o->kernel, v);
        return 0;
    }
    if (strcmp(key, "modules") == 0) {
        replace_str(&o->modules, v);
        return 0;
    }
    if (strcmp(key, "image") == 0) {
        replace_str(&o->image, v);
        return 0;
    }
    if (strcmp(key, "rootfs") == 0) {
        replace_str(&o->rootfs, v);
        return 0;
    }
    if (strcmp(key, "boot") == 0) {
        if (parse_choice("boot mode", v, boots, &choice, err) < 0)
            return -1;
        o->boot_image = choice == 1;
        return 0;
    }
    if (strcmp(key, "accel") == 0) {
        if (parse_choice("accelerator", v, accels, &choice, err) < 0)
            return -1;
        o->accel = (enum mvm_accel)choice;
        return 0;
    }
    if (strcmp(key, "machine") == 0) {
        if (parse_choice("machine type", v, machines, &choice, err) < 0)
            return -1;
        o->machine = (enum mvm_machine)choice;
        return 0;
    }
    if (strcmp(key, "net") == 0) {
        if (str_has_prefix(v, "allow=")) { /* net/ parses the rules */
            replace_str(&o->net_allow, v + strlen("allow="));
            o->net = MVM_NETOPT_ALLOW;
            return 0;
        }
        if (parse_choice("network mode", v, nets, &choice, err) < 0)
            return -1;
        o->net = (enum mvm_net_opt)choice;
        return 0;
    }
    if (strcmp(key, "dns") == 0) {
        struct in_addr a;
        if (inet_pton(AF_INET, v, &a) != 1)
            return mvm_error_set(err, 0, "--dns %s: not an IPv4 address", v);
        if (o->ndns == MVM_MAX_DNS)
            return mvm_error_set(err, 0, "--dns: at most %d resolvers", MVM_MAX_DNS);
        o->dns[o->ndns++] = xstrdup(v);
        return 0;
    }
    /* Holes in the network's refusals: security settings, so never from
     * a file in the project (only these keys' two config files). */
    if (strcmp(key, "publish") == 0) {
        push_str(&o->publish, &o->npublish, v);
        return 0;
    }
    if (strcmp(key, "allow-host") == 0) {
        push_str(&o->allow_host, &o->nallow_host, v);
        return 0;
    }
    if (strcmp(key, "allow-lan") == 0) {
        push_str(&o->allow_lan, &o->nallow_lan, v);
        return 0;
    }
    /* The session's only way out: a security setting too. */
    if (strcmp(key, "wireguard") == 0) {
        replace_str(&o->wireguard, v);
        return 0;
    }
    /* Where the user's API keys go: never from a file in the project. */
    if (strcmp(key, "api-key") == 0) {
        push_str(&o->api_keys, &o->napi_keys, v);
        return 0;
    }
    if (strcmp(key, "api-ca") == 0) {
        replace_str(&o->api_ca, v);
        return 0;
    }
    /* A security setting too: what the guest may leave behind. */
    if (strcmp(key, "audit") == 0) {
        static const char *const audits[] = {"off", "warn", "strict", NULL};
        if (parse_choice("audit mode", v, audits, &choice, err) < 0)
            return -1;
        o->audit = (enum mvm_audit_mode)choice;
        return 0;
    }
    /* Security settings too: how much of the host's disk the guest gets. */
    if (strcmp(key, "share-limit") == 0)
        return parse_share_limit(v, &o->share_limit, err);
    if (strcmp(key, "min-free") == 0)
        return parse_min_free(v, o, err);
    if (strcmp(key, "console") == 0)
        return parse_bool(key, v, &o->console, err);
    if (strcmp(key, "quiet") == 0)
        return parse_bool(key, v, &o->quiet, err);
    *known = false;
    return 0;
}

static int set_option(const char *key, const char *v, const char *origin, struct mvm_run_opts *o,
                      bool *known, struct mvm_error **err)
{
    if (set_value(key, v, o, known, err) < 0)
        return -1;
    if (*known)
        note_origin(o, key, v, origin);
    return 0;
}

int mvm_cli_add_env(struct mvm_env_opt **env, size_t *nenv, const char *arg, struct mvm_error **err)
{
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    bool ok = nlen > 0 && (isalpha((unsigned char)arg[0]) || arg[0] == '_');
    for (size_t i = 0; ok && i < nlen; i++)
        ok = isalnum((unsigned char)arg[i]) || arg[i] == '_';
    if (!ok)
        return mvm_error_set(err, 0, "bad --env '%s': use NAME=VALUE or NAME (letters, digits, _)",
                             arg);
    *env = xrealloc(*env, (*nenv + 1) * sizeof **env);
    (*env)[*nenv].name = xstrndup(arg, nlen);
    (*env)[*nenv].value = eq ? xstrdup(eq + 1) : NULL;
    (*nenv)++;
    return 0;
}

/* A trailing ":OPT[,OPT]" of --share: ro, rw, overlay, submounts.  False
 * (and nothing set) when the segment is something else, a path's part. */
static bool share_flags(const char *seg, struct mvm_share_opt *sh)
{
    bool r = false, sm = false, ov = false;
    cleanup_free char *copy = xstrdup(seg);
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "ro") == 0)
            r = true;
        else if (strcmp(w, "submounts") == 0)
            sm = true;
        else if (strcmp(w, "overlay") == 0)
            ov = true;
        else if (strcmp(w, "rw") != 0)
            return false;
    }
    sh->ro = r;
    sh->submounts = sm;
    sh->overlay = ov;
    return seg[0] != '\0';
}

/* HOST[:GUEST][:OPTS] -- a trailing ":ro", ":rw", ":submounts" or a
 * comma list of them is the mode. */
static int add_share(struct mvm_run_opts *o, const char *arg, struct mvm_error **err)
{
    cleanup_free char *s = xstrdup(arg);
    struct mvm_share_opt sh = {0};
    char *last = strrchr(s, ':');
    if (last && share_flags(last + 1, &sh))
        *last = '\0';
    else if (last && last != strchr(s, ':') && strchr(last, '/') == NULL)
        return mvm_error_set(
            err, 0, "bad --share '%s': unknown option '%s' (use ro, rw, overlay, submounts)", arg,
            last + 1);
    if (sh.ro && sh.overlay)
        return mvm_error_set(err, 0, "bad --share '%s': ro or overlay, not both", arg);
    char *colon = strchr(s, ':');
    char *guest = NULL;
    if (colon) {
        *colon = '\0';
        guest = colon + 1;
    }
    if (s[0] == '\0' || (guest && guest[0] != '/'))
        return mvm_error_set(
            err, 0,
            "bad --share '%s': use HOST[:GUEST][:ro|:overlay][,submounts] with an absolute GUEST "
            "path",
            arg);
    sh.host = xstrdup(s);
    sh.guest = guest ? xstrdup(guest) : NULL;
    o->shares = xrealloc(o->shares, (o->nshares + 1) * sizeof *o->shares);
    o->shares[o->nshares++] = sh;
    return 0;
}

/* NAME:GUEST[:SIZE]; GUEST is absolute, "~" or "~/DIR". */
static int add_volume(struct mvm_run_opts *o, const char *arg, struct mvm_error **err)
{
    cleanup_free char *s = xstrdup(arg);
    char *guest = strchr(s, ':');
    uint64_t mib = 0;
    if (guest)
        *guest++ = '\0';
    char *size = guest ? strchr(guest, ':') : NULL;
    if (size)
        *size++ = '\0';
    bool ok = guest && s[0] != '\0' &&
              (guest[0] == '/' || strcmp(guest, "~") == 0 || str_has_prefix(guest, "~/"));
    if (!ok)
        return mvm_error_set(err, 0,
                             "bad --volume '%s': use NAME:GUEST[:SIZE] with GUEST an absolute "
                             "path, ~ or ~/DIR",
                             arg);
    if (size && parse_size("volume size", size, 16, 16 * 1024 * 1024, &mib, err) < 0)
        return mvm_error_wrap(err, "--volume %s", arg);
    for (size_t i = 0; i < o->nvolumes; i++)
        if (strcmp(o->volumes[i].name, s) == 0)
            return mvm_error_set(err, 0, "--volume %s: volume %s is named twice", arg, s);
    o->volumes = xrealloc(o->volumes, (o->nvolumes + 1) * sizeof *o->volumes);
    o->volumes[o->nvolumes].name = xstrdup(s);
    o->volumes[o->nvolumes].guest = xstrdup(guest);
    o->volumes[o->nvolumes].size_mib = mib;
    o->nvolumes++;
    return 0;
}

enum {
    OPT_CPUS = 256,
    OPT_MEMORY,
    OPT_KERNEL,
    OPT_MODULES,
    OPT_ACCEL,
    OPT_MACHINE,
    OPT_ENV,
    OPT_SHARE,
    OPT_TIMEOUT,
    OPT_CONSOLE,
    OPT_NET,
    OPT_DNS,
    OPT_PUBLISH,
    OPT_ALLOW_HOST,
    OPT_ALLOW_LAN,
    OPT_WIREGUARD,
    OPT_API_KEY,
    OPT_API_CA,
    OPT_IMAGE,
    OPT_ROOTFS,
    OPT_BOOT,
    OPT_NO_CWD,
    OPT_NO_RESOLVE,
    OPT_FORCE_SHARE,
    OPT_NAME,
    OPT_RESULT,
    OPT_CONSOLE_LOG,
    OPT_DISK,
    OPT_VOLUME,
    OPT_ROOT,
    OPT_AUDIT,
    OPT_DETACH,
    OPT_SHARE_LIMIT,
    OPT_MIN_FREE,
};

static const struct option run_options[] = {
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"modules", required_argument, NULL, OPT_MODULES},
    {"accel", required_argument, NULL, OPT_ACCEL},
    {"machine", required_argument, NULL, OPT_MACHINE},
    {"env", required_argument, NULL, OPT_ENV},
    {"share", required_argument, NULL, OPT_SHARE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"console", no_argument, NULL, OPT_CONSOLE},
    {"net", required_argument, NULL, OPT_NET},
    {"dns", required_argument, NULL, OPT_DNS},
    {"publish", required_argument, NULL, OPT_PUBLISH},
    {"allow-host", required_argument, NULL, OPT_ALLOW_HOST},
    {"allow-lan", required_argument, NULL, OPT_ALLOW_LAN},
    {"wireguard", required_argument, NULL, OPT_WIREGUARD},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"api-ca", required_argument, NULL, OPT_API_CA},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"rootfs", required_argument, NULL, OPT_ROOTFS},
    {"boot", required_argument, NULL, OPT_BOOT},
    {"no-cwd", no_argument, NULL, OPT_NO_CWD},
    {"no-resolve", no_argument, NULL, OPT_NO_RESOLVE},
    {"force-share", no_argument, NULL, OPT_FORCE_SHARE},
    {"name", required_argument, NULL, OPT_NAME},
    {"result", required_argument, NULL, OPT_RESULT},
    {"console-log", required_argument, NULL, OPT_CONSOLE_LOG},
    {"disk", required_argument, NULL, OPT_DISK},
    {"volume", required_argument, NULL, OPT_VOLUME},
    {"root", no_argument, NULL, OPT_ROOT},
    {"audit", required_argument, NULL, OPT_AUDIT},
    {"detach", no_argument, NULL, OPT_DETACH},
    {"share-limit", required_argument, NULL, OPT_SHARE_LIMIT},
    {"min-free", required_argument, NULL, OPT_MIN_FREE},
    {"tty", no_argument, NULL, 't'},
    {"no-tty", no_argument, NULL, 'T'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *option_key(int c)
{
    for (const struct option *opt = run_options; opt->name; opt++)
        if (opt->val == c)
            return opt->name;
    return "?";
}

static int handle_option(int c, const char *arg, struct mvm_run_opts *o, struct mvm_error **err)
{
    bool known;
    switch (c) {
    case OPT_CPUS:
    case OPT_MEMORY:
    case OPT_KERNEL:
    case OPT_MODULES:
    case OPT_ACCEL:
    case OPT_MACHINE:
    case OPT_TIMEOUT:
    case OPT_DISK:
    case OPT_PUBLISH:
    case OPT_ALLOW_HOST:
    case OPT_ALLOW_LAN:
    case OPT_WIREGUARD:
    case OPT_API_KEY:
    case OPT_API_CA:
    case OPT_IMAGE:
    case OPT_ROOTFS:
    case OPT_BOOT:
    case OPT_AUDIT:
    case OPT_SHARE_LIMIT:
    case OPT_MIN_FREE:
        return set_option(option_key(c), arg, CLI_ORIGIN, o, &known, err);
    case OPT_ENV:
        return mvm_cli_add_env(&o->env, &o->nenv, arg, err);
    case OPT_SHARE:
        return add_share(o, arg, err);
    case OPT_CONSOLE:
        return set_option("console", "true", CLI_ORIGIN, o, &known, err);
    case OPT_NET:
        return set_option("net", arg, CLI_ORIGIN, o, &known, err);
    case OPT_DNS:
        return set_option("dns", arg, CLI_ORIGIN, o, &known, err);
    case OPT_NO_CWD:
        o->no_cwd = true;
        return 0;
    case OPT_NO_RESOLVE:
        o->no_resolve = true;
        return 0;
    case OPT_FORCE_SHARE:
        o->force_share = true;
        return 0;
    case OPT_NAME:
        replace_str(&o->name, arg);
        return 0;
    case OPT_RESULT:
        replace_str(&o->result_file, arg);
        return 0;
    case OPT_CONSOLE_LOG:
        replace_str(&o->console_log_file, arg);
        return 0;
    case OPT_VOLUME:
        return add_volume(o, arg, err);
    case OPT_ROOT:
        o->root = true;
        return 0;
    case OPT_DETACH:
        o->detach = true;
        return 0;
    case 't':
        o->tty = MVM_TTY_ALWAYS;
        return 0;
    case 'T':
        o->tty = MVM_TTY_NEVER;
        return 0;
    case 'q':
        return set_option("quiet", "true", CLI_ORIGIN, o, &known, err);
    case 'h':
        o->help = true;
        return 0;
    default:
        return mvm_error_set(err, 0, "internal: unhandled option %d", c);
    }
}

int mvm_cli_getopt_error(const char *cmd, int c, const char *arg, struct mvm_error **err)
{
    if (c == ':')
        return mvm_error_set(err, 0, "mvm %s: missing value for '%s' (see mvm %s --help)", cmd, arg,
                             cmd);
    /* optopt is also set for "--tty=1": name what was typed then. */
    if (optopt > 0 && optopt < 128 && !str_has_prefix(arg, "--"))
        return mvm_error_set(err, 0, "mvm %s: unknown option '-%c' (see mvm %s --help)", cmd,
                             optopt, cmd);
    return mvm_error_set(err, 0, "mvm %s: unknown option '%s' (see mvm %s --help)", cmd, arg, cmd);
}

int mvm_cli_parse_run(int argc, char **argv, struct mvm_run_opts *o, struct mvm_error **err)
{
    optind = 0; /* full reset: the tests parse many command lines */
    opterr = 0;
    for (;;) {
        int idx = optind ? optind : 1;
        int c = getopt_long(argc, argv, "+:tTqh", run_options, NULL);
        if (c == -1)
            break;
        if (c == ':' || c == '?')
            return mvm_cli_getopt_error("run", c, idx < argc ? argv[idx] : "?", err);
        if (handle_option(c, optarg, o, err) < 0)
            return -1;
    }
    o->argc = argc - optind;
    o->argv = o->argc > 0 ? argv + optind : NULL;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int mvm_cli_apply_config(const char *text, const char *origin, struct mvm_run_opts *o,
                         struct mvm_error **err)
{
    cleanup_free char *copy = xstrdup(text);
    char *save = NULL;
    int lineno = 0;
    for (char *line = copy; line; line = save) {
        save = strchr(line, '\n');
        if (save)
            *save++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *l = trim(line);
        if (*l == '\0')
            continue;
        char *eq = strchr(l, '=');
        if (eq == NULL)
            return mvm_error_set(err, 0, "%s:%d: expected 'key = value'", origin, lineno);
        *eq = '\0';
        char *key = trim(l), *value = trim(eq + 1);
        bool known;
        cleanup_free char *where = xasprintf("%s:%d", origin, lineno);
        if (set_option(key, value, where, o, &known, err) < 0)
            return mvm_error_wrap(err, "%s", where);
        if (!known) {
            struct buf names = {0};
            for (const struct mvm_config_key *k = mvm_config_keys; k->key; k++)
                buf_printf(&names, "%s%s", k == mvm_config_keys ? "" : ", ", k->key);
            buf_append(&names, "", 1);
            mvm_error_set(err, 0, "%s: unknown key '%s' (known: %s)", where, key, names.data);
            buf_free(&names);
            return -1;
        }
    }
    return 0;
}

char *mvm_cli_config_text(const struct mvm_run_opts *o)
{
    struct buf b = {0};
    for (const struct mvm_config_key *k = mvm_config_keys; k->key; k++) {
        const struct mvm_opt_origin *last = NULL;
        for (size_t i = 0; i < o->norigins; i++) {
            const struct mvm_opt_origin *v = &o->origins[i];
            if (strcmp(v->key, k->key) != 0)
                continue;
            if (k->list)
                buf_printf(&b, "%s = %s  # %s\n", k->key, v->value, v->origin);
            last = v;
        }
        if (last && !k->list)
            buf_printf(&b, "%s = %s  # %s\n", k->key, last->value, last->origin);
        else if (last == NULL && k->dflt[0] == '(')
            buf_printf(&b, "# %s: %s  # default\n", k->key, k->dflt);
        else if (last == NULL)
            buf_printf(&b, "%s = %s  # default\n", k->key, k->dflt);
    }
    buf_append(&b, "", 1);
    return b.data;
}
