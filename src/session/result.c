/* What a session leaves for CI when asked: --result FILE (a JSON record
 * of how it ended) and --console-log FILE (the guest kernel's console),
 * written with the invoking user's rights: the console log as the last
 * step before the session directory goes, the record after the audit,
 * whose findings and final status it holds. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "json-cleanup.h"
#include "session-int.h"
#include "util.h"

struct out_file {
    const char *path;
    const char *data;
    size_t len;
};

/* In a child that is the user: the file, replaced whole. */
static int write_as_user(void *arg, int out_fd)
{
    (void)out_fd;
    const struct out_file *f = arg;
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int rc = write_all(fd, f->data, f->len) < 0 ? errno : 0;
    if (close(fd) < 0 && rc == 0)
        rc = errno;
    return rc;
}

static void save(const struct session *s, const char *what, const char *path, const char *data,
                 size_t len)
{
    struct out_file f = {path, data, len};
    int rc = run_as(s->user.uid, s->user.gid, write_as_user, &f, NULL, 0);
    if (rc != 0) {
        cleanup_free char *msg =
            xasprintf("mvm: writing the %s to %s: %s\n", what, path, strerror(rc > 0 ? rc : errno));
        write_all(STDERR_FILENO, msg, strlen(msg));
    }
}

static json_int_t ms_between(uint64_t a, uint64_t b)
{
    return a && b > a ? (json_int_t)((b - a) / 1000000) : 0;
}

/* An undo step: the console log lives in the session directory. */
static void save_console_log(void *arg)
{
    struct session *s = arg;
    cleanup_free char *path = xasprintf("%s/console.log", s->dir);
    size_t len = 0;
    cleanup_free char *log = read_file(path, CONSOLE_LOG_MAX + 65536, &len);
    save(s, "console log", s->o->console_log_file, log ? log : "", log ? len : 0);
}

void session_write_result(struct session *s, int code)
{
    if (!s->result_due)
        return;
    uint64_t end = s->t_done ? s->t_done : now_ns();
    json_t *findings = s->audit_findings ? json_incref(s->audit_findings) : json_array();
    static const char *const modes[] = {"off", "warn", "strict"};
    cleanup_json json_t *r = json_pack(
        "{s:i, s:s, s:s, s:s?, s:s, s:I, s:I, s:I, s:{s:s, s:o, s:I}}", "exit_status", code,
        "reason", s->end_reason ? s->end_reason : "the command exited", "id", s->id, "name",
        s->name, "accel", s->kvm ? "kvm" : "tcg", "boot_ms", ms_between(s->t0, s->t_ready),
        "command_ms", ms_between(s->t_ready, end), "total_ms", ms_between(s->t0, now_ns()), "audit",
        "mode", modes[s->o->audit], "findings", findings, "more", (json_int_t)s->audit_more);
    cleanup_free char *text = r ? json_dumps(r, JSON_INDENT(2)) : NULL;
    if (text) {
        cleanup_free char *line = xasprintf("%s\n", text);
        save(s, "result", s->o->result_file, line, strlen(line));
    }
}

void session_push_outputs(struct session *s)
{
    s->result_due = s->o->result_file != NULL;
    if (s->o->console_log_file)
        mvm_undo_push(&s->undo, save_console_log, s, "--console-log");
}
