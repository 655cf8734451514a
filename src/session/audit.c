/* The share audit around a run (share/audit.h): a snapshot of each
 * read-write share before anything boots, and once the VM and every
 * virtiofsd are gone, the audit -- its findings on stderr (even with -q:
 * they are warnings about the user's files, not progress) and, in strict
 * mode, the exit status.  With --audit off there is no snapshot, but the
 * setuid/setgid bits and device nodes the guest made still go (a sweep by
 * ctime): another local user must never get a way to become this one. */
#include <jansson.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "session-int.h"
#include "util.h"

#define AUDIT_STATUS    123 /* strict mode found something; CMD's status was 0 */
#define MAX_SHOWN_LINES 50  /* per share; the rest are counted */

static bool writable(const struct session *s, size_t i)
{
    return !s->shares[i].ro && !s->shares[i].system;
}

int session_audit_snapshot(struct session *s, struct mvm_error **err)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* A second early: file times come from a coarser clock. */
    s->audit_since = ((int64_t)now.tv_sec - 1) * 1000000000LL + now.tv_nsec;
    for (size_t i = 0; i < s->nshares; i++) {
        if (s->o->audit == MVM_AUDIT_OFF || !writable(s, i))
            continue;
        cleanup_error struct mvm_error *e = NULL;
        if (mvm_audit_snapshot(s->shares[i].host, s->user.uid, s->user.gid, &s->audit[i], &e) < 0) {
            /* Strict mode promised to undo what the guest leaves: it
             * cannot without the snapshot. */
            if (s->o->audit == MVM_AUDIT_STRICT)
                return mvm_error_propagate(err, steal_pointer(&e));
            session_warn("audit: %s; %s will not be audited", e->msg, s->shares[i].host);
            continue;
        }
        bool incomplete;
        size_t n = mvm_audit_snap_entries(s->audit[i], &incomplete);
        if (incomplete)
            session_warn(
                "audit: %s holds more than mvm keeps track of (%zu entries, or directories deeper "
                "than %d): what it did not see is reported as new and left as it is",
                s->shares[i].host, n, MVM_AUDIT_MAX_DEPTH);
    }
    session_trace(s, "audit snapshot taken");
    return 0;
}

static void show(const struct session *s, const char *dir, const struct mvm_audit_report *r)
{
    bool strict = s->o->audit == MVM_AUDIT_STRICT;
    if (s->o->audit == MVM_AUDIT_OFF)
        session_warn("audit: the guest left in %s:", dir);
    else
        session_warn("audit: the guest left in %s what would act on the host later%s:", dir,
                     strict ? " (strict: undone where mvm could)" : "");
    size_t shown = r->n < MAX_SHOWN_LINES ? r->n : MAX_SHOWN_LINES;
    for (size_t i = 0; i < shown; i++) {
        cleanup_free char *line = mvm_audit_describe(&r->findings[i]);
        session_warn("audit:   %s", line);
    }
    if (r->n + r->dropped > shown)
        session_warn("audit:   ... and %zu more", r->n + r->dropped - shown);
    if (r->incomplete)
        session_warn("audit:   (not everything could be compared: see above)");
    if (s->o->audit == MVM_AUDIT_WARN)
        session_warn(
            "audit: review these before you run git, npm, your editor or the agent in %s on this "
            "host (--audit strict undoes them)",
            dir);
}

/* Guest-made names are bytes: JSON wants UTF-8, so anything that is not
 * becomes '?'. */
static json_t *text_of(const char *v)
{
    json_t *j = json_string(v);
    if (j)
        return j;
    cleanup_free char *copy = xstrdup(v);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    return json_string(copy);
}

/* For --result: each finding as an object. */
static void record(struct session *s, const char *dir, const struct mvm_audit_report *r)
{
    if (s->o->result_file == NULL)
        return;
    if (s->audit_findings == NULL)
        s->audit_findings = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct mvm_audit_finding *f = &r->findings[i];
        cleanup_free char *line = mvm_audit_describe(f);
        json_t *o =
            json_pack("{s:o, s:o, s:s, s:s, s:b, s:o}", "share", text_of(dir), "path",
                      text_of(f->path), "kind", mvm_audit_kind_name(f->kind), "action",
                      mvm_audit_action_name(f->action), "new", f->added, "text", text_of(line));
        if (o && f->detail)
            json_object_set_new(o, "detail", text_of(f->detail));
        if (o)
            json_array_append_new(s->audit_findings, o);
    }
    s->audit_more += r->dropped;
}

int session_audit(struct session *s, int code)
{
    bool strict = s->o->audit == MVM_AUDIT_STRICT;
    bool found = false, failed = false;
    for (size_t i = 0; i < s->nshares; i++) {
        bool sweep = s->o->audit == MVM_AUDIT_OFF && writable(s, i) && s->audit_since;
        if (s->audit[i] == NULL && !sweep)
            continue;
        struct mvm_audit_report r;
        cleanup_error struct mvm_error *err = NULL;
        int rc = sweep ? mvm_audit_sweep(s->shares[i].host, s->user.uid, s->user.gid,
                                         s->audit_since, &r, &err)
                       : mvm_audit_run(s->audit[i], strict, &r, &err);
        if (rc < 0) {
            session_warn("audit: %s", err->msg);
            failed = true;
        } else {
            if (r.n + r.dropped > 0) {
                found = true;
                show(s, s->shares[i].host, &r);
                record(s, s->shares[i].host, &r);
            }
            mvm_audit_report_clear(&r);
        }
        mvm_audit_snap_free(s->audit[i]);
        s->audit[i] = NULL;
    }
    session_trace(s, "audit done");
    if (!strict || code != 0)
        return code;
    return failed ? 125 : found ? AUDIT_STATUS : 0;
}
