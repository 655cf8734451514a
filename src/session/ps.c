/* What runs: each session publishes a summary in /run/mvm/.ps/<id>.json
 * (world-readable, root's: the same facts /proc shows every user of mvm's
 * command line), which `mvm ps` lists and `mvm stop` finds a session by.
 * A summary counts only while its mvm (pid + start time) lives. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json-cleanup.h"
#include "session-int.h"
#include "session.h"
#include "syscalls.h"
#include "util.h"

#define NAME_MAX_LEN 64

/* A string field of a summary, "" when missing. */
static const char *field(json_t *info, const char *key)
{
    const char *v = json_string_value(json_object_get(info, key));
    return v ? v : "";
}

static char *info_path(const char *id)
{
    return xasprintf(MVM_PS_DIR "/%s.json", id);
}

/* A summary whose mvm still runs; NULL (and, as root, the file removed)
 * otherwise. */
static json_t *load_live(const char *file)
{
    cleanup_free char *path = xasprintf(MVM_PS_DIR "/%s", file);
    size_t len = 0;
    cleanup_free char *text = read_file(path, 256 * 1024, &len);
    json_t *info = text ? json_loadb(text, len, 0, NULL) : NULL;
    json_int_t pid = json_integer_value(json_object_get(info, "pid"));
    json_int_t start = json_integer_value(json_object_get(info, "starttime"));
    if (info && pid > 0 && pid <= INT32_MAX && start > 0 &&
        mvm_proc_starttime((pid_t)pid) == (uint64_t)start)
        return info;
    json_decref(info);
    /* Stale: pid + start time name a process uniquely, and it is gone. */
    if (text && geteuid() == 0)
        unlink(path);
    return NULL;
}

/* Every live summary, oldest first. */
static json_t *load_all(void)
{
    json_t *all = json_array();
    DIR *d = opendir(MVM_PS_DIR);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        json_t *info = load_live(de->d_name);
        if (info)
            json_array_append_new(all, info);
    }
    if (d)
        closedir(d);
    /* Insertion sort by start: a handful of sessions. */
    for (size_t i = 1; i < json_array_size(all); i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(all, j - 1), *b = json_array_get(all, j);
            if (json_integer_value(json_object_get(a, "created")) <=
                json_integer_value(json_object_get(b, "created")))
                break;
            json_incref(a);
            json_array_set(all, j - 1, b);
            json_array_set_new(all, j, a);
        }
    return all;
}

static bool session_live(const char *id)
{
    cleanup_free char *file = xasprintf("%s.json", id);
    json_t *info = load_live(file);
    json_decref(info);
    return info != NULL;
}

void mvm_ps_prune(void)
{
    json_decref(load_all()); /* as root, loading removes the stale ones */
    exec_server_sweep(session_live);
}

static bool name_taken(json_t *all, const char *name)
{
    size_t i;
    json_t *info;
    json_array_foreach(all, i, info) if (strcmp(field(info, "name"), name) == 0) return true;
    return false;
}

int mvm_session_name_check(const char *name, struct mvm_error **err)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= NAME_MAX_LEN && isalnum((unsigned char)name[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || strchr("._-", name[i]);
    if (!ok)
        return mvm_error_set(err, 0,
                             "bad --name '%.80s': use 1 to %d letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit",
                             name, NAME_MAX_LEN);
    return 0;
}

/* A short name from the session id: "brisk-otter". */
static void generate_name(const char *id, unsigned attempt, char *out, size_t len)
{
    static const char *const adj[] = {"amber",  "brisk",  "calm",  "dusty", "eager", "fuzzy",
                                      "gentle", "hazy",   "icy",   "jolly", "keen",  "lucid",
                                      "mellow", "nimble", "odd",   "plain", "quiet", "rapid",
                                      "sleek",  "tidy",   "urban", "vivid", "witty", "young"};
    static const char *const noun[] = {"otter",  "badger", "crane",  "dingo",  "egret",  "finch",
                                       "gecko",  "heron",  "ibis",   "jackal", "koala",  "lemur",
                                       "marten", "newt",   "okapi",  "panda",  "quail",  "raven",
                                       "stoat",  "tapir",  "urchin", "vole",   "walrus", "yak"};
    unsigned v = 0;
    sscanf(id, "%6x", &v);
    v += attempt * 7919u;
    size_t na = sizeof adj / sizeof adj[0], nn = sizeof noun / sizeof noun[0];
    snprintf(out, len, "%s-%s", adj[v % na], noun[(v / na) % nn]);
}

static json_t *summary(const struct session *s, const char *name)
{
    json_t *cmd = json_array(), *shares = json_array(), *volumes = json_array();
    for (int i = 0; s->o->argv && i < s->o->argc; i++)
        json_array_append_new(cmd, json_string(s->o->argv[i]));
    for (size_t i = session_first_share(s); i < s->nshares; i++)
        json_array_append_new(shares, json_string(s->shares[i].host));
    for (size_t i = 0; i < s->o->nvolumes; i++)
        json_array_append_new(volumes, json_string(s->o->volumes[i].name));
    static const char *const nets[] = {"isolated", "none", "open", "allow"}; /* enum mvm_net_opt */
    return json_pack("{s:s, s:s, s:i, s:I, s:i, s:s, s:o, s:s, s:I, s:s, s:s, s:i, s:I, s:o, "
                     "s:o, s:i, s:b, s:b}",
                     "id", s->id, "name", name, "pid", (int)getpid(), "starttime",
                     (json_int_t)mvm_proc_starttime(getpid()), "uid", (int)s->user.uid, "user",
                     s->user.name, "command", cmd, "cwd", s->guest_cwd, "created",
                     (json_int_t)time(NULL), "accel", s->kvm ? "kvm" : "tcg", "net",
                     nets[s->o->net], "cpus", (int)s->o->cpus, "memory_mib",
                     (json_int_t)s->o->memory_mib, "shares", shares, "volumes", volumes, "qemu_pid",
                     (int)s->qemu.pid, "detached", (int)s->o->detach, "tty", (int)s->tty);
}

static void undo_publish(void *arg)
{
    struct session *s = arg;
    cleanup_free char *path = info_path(s->id);
    unlink(path);
}

int session_publish(struct session *s, struct mvm_error **err)
{
    cleanup_free char *path = info_path(s->id);
    if (s->name != NULL) { /* the name is claimed: an update (QEMU's pid) */
        cleanup_json json_t *info = summary(s, s->name);
        cleanup_free char *text = json_dumps(info, JSON_COMPACT);
        if (text == NULL || write_file_atomic(path, text, strlen(text), 0644) < 0)
            return mvm_error_set(err, errno, "writing %s", path);
        return 0;
    }
    /* /run/mvm: others may reach ps/ in it, not list the sessions. */
    if (chmod(MVM_RUN_DIR, 0711) < 0 || (mkdir(MVM_PS_DIR, 0755) < 0 && errno != EEXIST))
        return mvm_error_set(err, errno, "creating %s", MVM_PS_DIR);
    cleanup_close int lock =
        open(MVM_PS_DIR "/.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0)
        return mvm_error_set(err, errno, "locking %s", MVM_PS_DIR);
    cleanup_json json_t *all = load_all();
    char name[NAME_MAX_LEN + 1];
    if (s->o->name) {
        if (name_taken(all, s->o->name))
            return mvm_error_set(err, 0,
                                 "--name %s: a session of that name is running (see mvm ps); "
                                 "choose another name or stop it: sudo mvm stop %s",
                                 s->o->name, s->o->name);
        snprintf(name, sizeof name, "%s", s->o->name);
    } else {
        unsigned attempt = 0;
        do
            generate_name(s->id, attempt, name, sizeof name);
        while (name_taken(all, name) && ++attempt < 1000);
    }
    cleanup_json json_t *info = summary(s, name);
    cleanup_free char *text = json_dumps(info, JSON_COMPACT);
    mvm_undo_push(&s->undo, undo_publish, s, "session summary");
    if (text == NULL || write_file_atomic(path, text, strlen(text), 0644) < 0)
        return mvm_error_set(err, errno, "writing %s", path);
    s->name = xstrdup(name);
    return 0;
}

/* The caller, and whether they may see or act on every user's sessions:
 * root itself, not a user through sudo. */
static uid_t caller(bool *everyone)
{
    const char *su = getenv("SUDO_UID");
    unsigned long v;
    char *end;
    *everyone = getuid() == 0 && su == NULL;
    if (getuid() == 0 && su && (v = strtoul(su, &end, 10), *end == '\0' && end != su))
        return (uid_t)v;
    return getuid();
}

static void human_bytes(uint64_t b, char *out, size_t len)
{
    if (b >= 10ULL << 30)
        snprintf(out, len, "%lluG", (unsigned long long)(b >> 30));
    else if (b >= 1ULL << 30)
        snprintf(out, len, "%.1fG", (double)b / (1 << 30));
    else
        snprintf(out, len, "%lluM", (unsigned long long)(b >> 20));
}

static void human_duration(uint64_t s, char *out, size_t len)
{
    if (s < 60)
        snprintf(out, len, "%llus", (unsigned long long)s);
    else if (s < 3600)
        snprintf(out, len, "%llum", (unsigned long long)(s / 60));
    else if (s < 86400)
        snprintf(out, len, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else
        snprintf(out, len, "%llud", (unsigned long long)(s / 86400));
}

/* QEMU's resident memory and CPU time, from /proc (readable by all). */
static void qemu_usage(json_t *info)
{
    int pid = (int)json_integer_value(json_object_get(info, "qemu_pid"));
    uint64_t rss = 0, ticks = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    cleanup_free char *status = pid > 0 ? read_file(path, 64 * 1024, NULL) : NULL;
    const char *p = status ? strstr(status, "\nVmRSS:") : NULL;
    unsigned long long kb;
    if (p && sscanf(p, "\nVmRSS: %llu", &kb) == 1)
        rss = kb * 1024;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    cleanup_free char *stat = pid > 0 ? read_file(path, 4096, NULL) : NULL;
    char *q = stat ? strrchr(stat, ')') : NULL;
    unsigned long long ut, st;
    if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
        ticks = ut + st;
    uint64_t up =
        (uint64_t)time(NULL) - (uint64_t)json_integer_value(json_object_get(info, "created"));
    double cpu = up > 0 ? 100.0 * (double)ticks / (double)sysconf(_SC_CLK_TCK) / (double)up : 0;
    json_object_set_new(info, "uptime_s", json_integer((json_int_t)up));
    json_object_set_new(info, "rss_bytes", json_integer((json_int_t)rss));
    json_object_set_new(info, "cpu_percent", json_real(cpu));
}

static char *joined(json_t *arr, const char *empty)
{
    struct buf b = {0};
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        buf_printf(&b, "%s%s", i ? " " : "", json_is_string(v) ? json_string_value(v) : "");
    if (b.len == 0)
        buf_printf(&b, "%s", empty);
    buf_append(&b, "", 1);
    sanitize_text(b.data);
    return b.data;
}

static const char ps_usage[] =
    "Usage: mvm ps [--json] [-a]\n"
    "\n"
    "Lists the running sessions: id, name, user, command, uptime, accelerator,\n"
    "network mode, QEMU's memory and CPU use, and the shares.  You see your own\n"
    "sessions (through sudo: those of the user who ran sudo); -a, as root, shows\n"
    "every user's.\n"
    "  --json   one JSON array, the same fields and more\n"
    "  -a       every user's sessions (root only)\n";

int mvm_ps_main(int argc, char **argv)
{
    bool json = false, all_users = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "-a") == 0 || strcmp(argv[i], "--all") == 0)
            all_users = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(ps_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "mvm ps: unexpected argument '%s' (see mvm ps --help)\n", argv[i]);
            return 125;
        }
    }
    bool everyone;
    uid_t me = caller(&everyone);
    if (all_users && getuid() != 0) {
        fputs("mvm: mvm ps -a lists every user's sessions: run it as root (sudo mvm ps -a)\n",
              stderr);
        return 125;
    }
    everyone = everyone || all_users;
    cleanup_json json_t *all = load_all(), *shown = json_array();
    size_t i;
    json_t *info;
    json_array_foreach(all, i, info)
    {
        if (!everyone && json_integer_value(json_object_get(info, "uid")) != (json_int_t)me)
            continue;
        qemu_usage(info);
        json_array_append(shown, info);
    }
    if (json) {
        cleanup_free char *text = json_dumps(shown, JSON_INDENT(2));
        puts(text ? text : "[]");
        return 0;
    }
    printf("%-12s  %-16s  %-10s  %-7s  %-5s  %-8s  %6s  %5s  %-24s  %s\n", "ID", "NAME", "USER",
           "UPTIME", "ACCEL", "NET", "MEM", "CPU", "COMMAND", "SHARES");
    json_array_foreach(shown, i, info)
    {
        char up[32], mem[32];
        human_duration((uint64_t)json_integer_value(json_object_get(info, "uptime_s")), up,
                       sizeof up);
        human_bytes((uint64_t)json_integer_value(json_object_get(info, "rss_bytes")), mem,
                    sizeof mem);
        cleanup_free char *cmd = joined(json_object_get(info, "command"), "(login shell)");
        cleanup_free char *shares = joined(json_object_get(info, "shares"), "-");
        cleanup_free char *name = xstrdup(field(info, "name"));
        sanitize_text(name);
        printf("%-12s  %-16s  %-10s  %-7s  %-5s  %-8s  %6s  %4.0f%%  %-24.24s  %s\n",
               field(info, "id"), name, field(info, "user"), up, field(info, "accel"),
               field(info, "net"), mem, json_real_value(json_object_get(info, "cpu_percent")), cmd,
               shares);
    }
    return 0;
}

static const char stop_usage[] =
    "Usage: mvm stop [--force] [--timeout DURATION] ID|NAME\n"
    "\n"
    "Stops a running session: its command gets SIGTERM; if it has not exited\n"
    "after DURATION (default 10s) the VM is destroyed.  That session's mvm run\n"
    "exits with the command's status, 143 when SIGTERM ended it or the VM was\n"
    "destroyed.  You may stop your own sessions; root, any.\n"
    "  --force              destroy the VM at once\n"
    "  --timeout DURATION   how long the command has to exit (e.g. 30s, 2m)\n";

/* The live session whose id (or a unique prefix of 4+) or name is key. */
static json_t *find_session(json_t *all, const char *key, struct mvm_error **err)
{
    json_t *found = NULL, *info;
    size_t i, n = 0;
    json_array_foreach(all, i, info)
    {
        const char *id = field(info, "id");
        const char *name = field(info, "name");
        if (strcmp(name, key) == 0 || strcmp(id, key) == 0)
            return info;
        if (strlen(key) >= 4 && str_has_prefix(id, key)) {
            found = info;
            n++;
        }
    }
    if (n == 1)
        return found;
    if (n > 1)
        mvm_error_set(err, 0, "'%s' names more than one session; give more of the id", key);
    else
        mvm_error_set(err, 0, "no running session '%s' (see mvm ps)", key);
    return NULL;
}

json_t *session_ps_find(const char *key, struct mvm_error **err)
{
    cleanup_json json_t *all = load_all();
    json_t *info = find_session(all, key, err);
    return info ? json_incref(info) : NULL;
}

uid_t session_ps_caller(bool *everyone)
{
    return caller(everyone);
}

int mvm_stop_main(int argc, char **argv)
{
    bool force = false;
    uint64_t timeout_ms = 10000;
    const char *key = NULL;
    cleanup_error struct mvm_error *err = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(stop_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else if (strcmp(argv[i], "--timeout") == 0 || str_has_prefix(argv[i], "--timeout=")) {
            const char *v = argv[i][9] == '=' ? argv[i] + 10 : (i + 1 < argc ? argv[++i] : NULL);
            if (v == NULL || mvm_parse_duration_ms(v, &timeout_ms, &err) < 0 || timeout_ms == 0 ||
                timeout_ms > INT32_MAX) {
                fprintf(stderr, "mvm stop: bad --timeout '%s': use e.g. 30s or 2m\n", v ? v : "");
                return 125;
            }
        } else if (key == NULL && argv[i][0] != '-') {
            key = argv[i];
        } else {
            fprintf(stderr, "mvm stop: unexpected argument '%s' (see mvm stop --help)\n", argv[i]);
            return 125;
        }
    }
    if (key == NULL) {
        fputs("mvm stop: which session? give its ID or NAME (see mvm ps)\n", stderr);
        return 125;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "mvm: mvm stop must run as root: use sudo mvm stop %s\n", key);
        return 125;
    }
    bool everyone;
    uid_t me = caller(&everyone);
    cleanup_json json_t *all = load_all();
    json_t *info = find_session(all, key, &err);
    if (info && !everyone && json_integer_value(json_object_get(info, "uid")) != (json_int_t)me) {
        mvm_error_set(&err, 0, "session '%s' is not yours; only its user or root may stop it", key);
        info = NULL;
    }
    if (info == NULL) {
        mvm_error_print(err);
        return 125;
    }
    /* The root-only state file is what says which process it is. */
    const char *id = field(info, "id");
    cleanup_free char *state_path = xasprintf(MVM_RUN_DIR "/%s/state.json", id);
    size_t len = 0;
    cleanup_free char *text = read_file(state_path, 64 * 1024, &len);
    struct mvm_session_state st;
    if (text == NULL || mvm_sessiondir_parse_state(text, len, &st) < 0 ||
        mvm_proc_starttime(st.pid) != st.starttime) {
        fprintf(stderr, "mvm: session '%s' ended meanwhile\n", key);
        return 125;
    }
    cleanup_close int pidfd = mvm_pidfd_open(st.pid);
    /* The value says how long the command has (-1: no time at all). */
    union sigval v = {.sival_int = force ? -1 : (int)timeout_ms};
    if (pidfd < 0 || mvm_proc_starttime(st.pid) != st.starttime ||
        sigqueue(st.pid, SIGTERM, v) < 0) {
        fprintf(stderr, "mvm: stopping session '%s': %s\n", key, strerror(errno));
        return 125;
    }
    struct pollfd p = {pidfd, POLLIN, 0};
    int wait_ms = (force ? 0 : (int)timeout_ms) + 15000; /* and the teardown */
    if (poll(&p, 1, wait_ms) != 1) {
        fprintf(stderr, "mvm: session '%s' did not end within %d s\n", key, wait_ms / 1000);
        return 125;
    }
    printf("stopped %s (%s)\n", field(info, "name"), id);
    return 0;
}
