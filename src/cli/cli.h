/* cli: the command line and config files of `mvm run`, parsed into one
 * options struct.  Pure: no I/O except reading a config file's text. */
#ifndef MVM_CLI_H
#define MVM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum mvm_accel { MVM_ACCEL_AUTO, MVM_ACCEL_KVM, MVM_ACCEL_TCG };
enum mvm_machine { MVM_MACHINE_AUTO, MVM_MACHINE_MICROVM, MVM_MACHINE_Q35 };
enum mvm_tty { MVM_TTY_AUTO, MVM_TTY_ALWAYS, MVM_TTY_NEVER };

struct mvm_env_opt {
    char *name;
    char *value; /* NULL: copy the host's value */
};

struct mvm_share_opt {
    char *host;  /* as given; made absolute later */
    char *guest; /* NULL: same path as on the host */
    bool ro;
};

struct mvm_volume_opt {
    char *name;
    char *guest;       /* absolute, "~" or "~/DIR" */
    uint64_t size_mib; /* 0: the default (or the existing volume's size) */
};

/* --audit: the order of the names in cli.c's table. */
enum mvm_audit_mode { MVM_AUDIT_OFF, MVM_AUDIT_WARN, MVM_AUDIT_STRICT };

/* --net: the order of the names in cli.c's table; allow=RULES last. */
enum mvm_net_opt { MVM_NETOPT_ISOLATED, MVM_NETOPT_NONE, MVM_NETOPT_OPEN, MVM_NETOPT_ALLOW };

#define MVM_MAX_DNS 3

struct mvm_run_opts {
    unsigned cpus;
    uint64_t memory_mib;
    char *kernel, *modules;
    char *name;                           /* --name */
    char *result_file, *console_log_file; /* --result, --console-log */
    enum mvm_accel accel;
    enum mvm_machine machine;
    enum mvm_tty tty;
    uint64_t timeout_ms; /* 0: none */
    bool console, no_cwd, no_resolve, force_share, root, quiet, help;
    struct mvm_env_opt *env;
    size_t nenv;
    struct mvm_share_opt *shares;
    size_t nshares;
    struct mvm_volume_opt *volumes;
    size_t nvolumes;
    uint64_t disk_mib; /* --disk: the scratch disk's size; 0: none (tmpfs) */
    enum mvm_net_opt net;
    char *dns[MVM_MAX_DNS]; /* --dns: IPv4 resolvers for the relay */
    size_t ndns;
    /* --publish, --allow-host, --allow-lan as given (net/ parses them):
     * from the command line and the system's and user's config only. */
    char **publish, **allow_host, **allow_lan;
    size_t npublish, nallow_host, nallow_lan;
    char *net_allow; /* --net allow=RULES: the rules as given */
    /* --audit (default warn): from the command line and the system's and
     * user's config only, like the network's holes. */
    enum mvm_audit_mode audit;
    /* --share-limit (bytes; 0: none) and --min-free (bytes, or a
     * percentage when min_free_percent; 0: none): see share/guard.h. */
    uint64_t share_limit, min_free;
    bool min_free_percent;
    char **argv; /* the command; borrowed from main's argv; NULL: login shell */
    int argc;
};

#define MVM_DEFAULT_CPUS       2
#define MVM_DEFAULT_MEMORY_MIB 1024
#define MVM_DEFAULT_DISK_MIB   (8 * 1024)
#define MVM_DEFAULT_MIN_FREE   5 /* percent */

void mvm_run_opts_init(struct mvm_run_opts *o);
void mvm_run_opts_clear(struct mvm_run_opts *o);

/* Parses `mvm run` arguments (argv[0] is "run").  Options stop at "--" or
 * at the first non-option (the command).  Errors name the argument and
 * point at --help. */
int mvm_cli_parse_run(int argc, char **argv, struct mvm_run_opts *o, struct mvm_error **err);

/* Applies one config file's text ("key = value" lines, '#' comments) on
 * top of o.  Keys: cpus, memory, kernel, modules, accel, machine, timeout,
 * console, quiet, net, dns, disk, publish, allow-host, allow-lan, audit,
 * share-limit, min-free.
 * `origin` names the file in errors ("FILE:LINE: ..."). */
int mvm_cli_apply_config(const char *text, const char *origin, struct mvm_run_opts *o,
                         struct mvm_error **err);

/* config.c: applies /etc/mvm/config and the invoking user's
 * ~/.config/mvm/config (missing files are fine). */
int mvm_config_load_defaults(struct mvm_run_opts *o, struct mvm_error **err);

/* "512M", "2G", "1048576K", bare number = MiB.  Result in MiB. */
int mvm_parse_size_mib(const char *s, uint64_t *mib, struct mvm_error **err);
/* "90s", "10m", "1h", "250ms", bare number = seconds.  Result in ms. */
int mvm_parse_duration_ms(const char *s, uint64_t *ms, struct mvm_error **err);

extern const char mvm_run_usage[];
extern const char mvm_usage[];

#endif
