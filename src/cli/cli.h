/* cli: the command line and config files of `mvm run` (and the command
 * line of `mvm exec`), parsed into one options struct.  Pure: no I/O except reading a config file's
 * text. */
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
    bool submounts; /* serve what is mounted below host too */
    bool overlay;   /* writable in the guest, its changes thrown away */
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

/* One value a config key was given: "FILE:LINE" or "command line". */
struct mvm_opt_origin {
    char *key, *value, *origin;
};

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
    bool detach; /* --detach: print the name, run on for mvm attach */
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
    char *image;     /* --image FILE: the guest's userland (disk/ opens it) */
    /* mvm image build's provisioning VM: image is root's raw file, booted
     * read-write without an overlay.  Never set by an option or a
     * config key. */
    bool image_writable;
    char *rootfs; /* --rootfs DIR: the guest's userland, a host tree */
    /* --boot image: the image's own kernel and init, seeded with
     * cloud-init (session/bootimage.c); else mvm's kernel and init. */
    bool boot_image;
    /* --wireguard: the tunnel's wg-quick file as given, read with the
     * user's rights (session/prepare.c); from the command line and the
     * system's and user's config only. */
    char *wireguard;
    /* --api-key specs as given (gw/ parses them) and --api-ca's file. */
    char **api_keys;
    size_t napi_keys;
    char *api_ca;
    /* --audit (default warn): from the command line and the system's and
     * user's config only, like the network's holes. */
    enum mvm_audit_mode audit;
    /* Where each config key's value came from, in the order applied
     * (`mvm config` shows them). */
    struct mvm_opt_origin *origins;
    size_t norigins;
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

/* The config keys (mvm_config_keys, NULL-terminated): each is also a long
 * option of `mvm run`.  A list key adds a value each time it is given; for
 * the others the last one wins.  dflt is the default as a value, or in
 * parentheses what happens when the key is not set. */
struct mvm_config_key {
    const char *key;
    bool list;
    const char *dflt;
};
extern const struct mvm_config_key mvm_config_keys[];

/* Applies one config file's text ("key = value" lines, '#' comments) on
 * top of o; the keys are mvm_config_keys.  `origin` names the file in
 * errors ("FILE:LINE: ...") and in o->origins. */
int mvm_cli_apply_config(const char *text, const char *origin, struct mvm_run_opts *o,
                         struct mvm_error **err);

/* config.c: applies /etc/mvm/config and the invoking user's
 * ~/.config/mvm/config (missing files are fine). */
int mvm_config_load_defaults(struct mvm_run_opts *o, struct mvm_error **err);

/* `mvm config`: the effective settings, one "key = value  # origin" line
 * per value (a config file itself), "# key: ... (default)" for a key left
 * unset.  Pure; the caller frees. */
char *mvm_cli_config_text(const struct mvm_run_opts *o);

/* "512M", "2G", "1048576K", bare number = MiB.  Result in MiB. */
int mvm_parse_size_mib(const char *s, uint64_t *mib, struct mvm_error **err);
/* "90s", "10m", "1h", "250ms", bare number = seconds.  Result in ms. */
int mvm_parse_duration_ms(const char *s, uint64_t *ms, struct mvm_error **err);

/* The error for getopt_long's ':' (missing value) or '?' (unknown
 * option) at argument arg of `mvm cmd`; returns -1. */
int mvm_cli_getopt_error(const char *cmd, int c, const char *arg, struct mvm_error **err);
/* One --env argument (NAME=VALUE or NAME) appended to env. */
int mvm_cli_add_env(struct mvm_env_opt **env, size_t *nenv, const char *arg,
                    struct mvm_error **err);

/* exec.c: `mvm exec` -- another command in a running session. */
struct mvm_exec_opts {
    const char *session; /* ID or NAME; borrowed from argv */
    enum mvm_tty tty;
    bool root, help;
    struct mvm_env_opt *env;
    size_t nenv;
    char **argv; /* borrowed; NULL: the login shell */
    int argc;
};
void mvm_exec_opts_clear(struct mvm_exec_opts *o);
/* Parses `mvm exec` arguments (argv[0] is "exec"): options, the session,
 * then the command (after an optional "--"). */
int mvm_cli_parse_exec(int argc, char **argv, struct mvm_exec_opts *o, struct mvm_error **err);
/* Parses `mvm attach` arguments (argv[0] is "attach"): --help, or the
 * session; *session is borrowed from argv, NULL with --help. */
int mvm_cli_parse_attach(int argc, char **argv, const char **session, struct mvm_error **err);
extern const char mvm_attach_usage[];

extern const char mvm_exec_usage[];
extern const char mvm_run_usage[];
extern const char mvm_usage[];

#endif
