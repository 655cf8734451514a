/* session: one `mvm run`, end to end -- prepare (user, share, kernel,
 * initramfs), start (session directory, virtiofsd, QEMU paused, QMP, cont),
 * relay until the command's status is known, and tear everything down in
 * reverse order on every path.  Resources that outlive a function are on
 * the session's undo list; each undo step is idempotent. */
#ifndef MVM_SESSION_H
#define MVM_SESSION_H

#include <stdbool.h>

#include "cli.h"
#include "error.h"

/* Runs the session; returns the exit status for mvm (the command's, or
 * 124/125/128+N).  Errors are printed before it returns. */
int mvm_session_run(const struct mvm_run_opts *opts);

/* ps.c: `mvm ps` and `mvm stop`, given their arguments (argv[0] is the
 * command's name); each returns mvm's exit status. */
int mvm_ps_main(int argc, char **argv);
int mvm_stop_main(int argc, char **argv);
/* exec.c: `mvm exec`, given its arguments; returns the command's status
 * (125 when mvm exec itself failed). */
int mvm_exec_main(int argc, char **argv);
/* exec.c: `mvm attach`; 0 when the user detached, else the command's
 * status (125 when mvm attach itself failed). */
int mvm_attach_main(int argc, char **argv);
/* What the sessions share, once none is left: the host table inet mvm
 * (with_table), /run/mvm/.ps and /run/mvm/.exec.  The last session out
 * calls it, under the lock that keeps a new session from starting
 * meanwhile; mvm cleanup too.  IPv4 forwarding is left on: another tool
 * (Docker, libvirt) may have come to rely on it since; mvm cleanup --all
 * restores it. */
int mvm_session_host_teardown(bool with_table, struct mvm_error **err);
/* Removes the summaries of sessions that are gone (mvm cleanup). */
void mvm_ps_prune(void);
/* A --name: 1 to 64 of [A-Za-z0-9._-], starting alphanumeric. */
int mvm_session_name_check(const char *name, struct mvm_error **err);

#endif
