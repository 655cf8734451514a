/* doctor: `mvm doctor` -- can `mvm run` work on this machine?  One check
 * per thing it needs, each with what was found and, when it falls short,
 * what to install or change.
 *
 * doctor.c runs the checks.  They look and never change anything: the
 * probes that load nftables rules or make an idmapped mount do it in a
 * throwaway network namespace or on a detached mount, and QEMU is asked
 * about itself as nobody, without capabilities.  doctor-report.c holds
 * the results, prints them, and reads QEMU's answers (pure). */
#ifndef MVM_DOCTOR_H
#define MVM_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

enum mvm_doctor_status { MVM_DOCTOR_OK, MVM_DOCTOR_WARN, MVM_DOCTOR_FAIL };

struct mvm_doctor_check {
    char *name; /* "kvm", "qemu", ... */
    enum mvm_doctor_status status;
    char *detail; /* what was found */
    char *fix;    /* what to install or change; NULL: nothing */
};

struct mvm_doctor_report {
    struct mvm_doctor_check *checks;
    size_t n;
};

/* Adds a check; fix may be NULL.  Control characters in the texts (a
 * path, a tool's message) are made printable. */
void mvm_doctor_add(struct mvm_doctor_report *r, const char *name, enum mvm_doctor_status st,
                    const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void mvm_doctor_report_clear(struct mvm_doctor_report *r);

/* One line per check -- "ok    kvm           DETAIL", "FAIL  qemu  DETAIL;
 * fix: FIX" -- then a line that sums up. */
char *mvm_doctor_text(const struct mvm_doctor_report *r);
/* A JSON array of {"check", "status" ("ok", "warn", "fail"), "detail",
 * "fix" (null when none)}. */
char *mvm_doctor_json(const struct mvm_doctor_report *r);
/* 0 when no check failed (mvm run can work), else 1. */
int mvm_doctor_exit_status(const struct mvm_doctor_report *r);

/* "QEMU emulator version 7.2.22 (Debian ...)" -> {7, 2, 22}; -1 when the
 * text says no version. */
int mvm_doctor_qemu_version(const char *text, unsigned v[3]);
/* Which of names a QEMU listing lacks: `-device help` (lines `name "X",
 * bus ...`) or, with machines, `-machine help` (lines that start with the
 * name), as "a, b"; NULL when it has them all. */
char *mvm_doctor_qemu_lacks(const char *listing, const char *const *names, size_t n, bool machines);

/* `mvm doctor [--json] [--kernel PATH] [--modules DIR] [--qemu PATH]`;
 * argv[0] is "doctor".  Returns mvm's exit status. */
int mvm_doctor_main(int argc, char **argv);

#endif
