/* session: one `mvm run`, end to end -- prepare (user, share, kernel,
 * initramfs), start (session directory, virtiofsd, QEMU paused, QMP, cont),
 * relay until the command's status is known, and tear everything down in
 * reverse order on every path.  Resources that outlive a function are on
 * the session's undo list; each undo step is idempotent. */
#ifndef MVM_SESSION_H
#define MVM_SESSION_H

#include "cli.h"
#include "error.h"

/* Runs the session; returns the exit status for mvm (the command's, or
 * 124/125/128+N).  Errors are printed before it returns. */
int mvm_session_run(const struct mvm_run_opts *opts);

#endif
