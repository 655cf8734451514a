/* accel: decides between KVM and TCG, and measures the host TSC
 * frequency the guest kernel needs on microvm (no HPET/PM timer). */
#ifndef MVM_ACCEL_H
#define MVM_ACCEL_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* True if /dev/kvm can run a normal guest.  A bounded probe in a child
 * process runs a tiny long-mode guest; a paravirtual KVM (kvm_pvm), which
 * runs that probe but hangs stock kernels, is rejected by name.  On false,
 * *why says why in a few words. */
bool mvm_kvm_usable(const char **why);

/* Host TSC frequency in kHz, calibrated against CLOCK_MONOTONIC_RAW and
 * cached in cache_dir for this boot.  0 if unknown (no invariant TSC). */
uint64_t mvm_tsc_khz(const char *cache_dir);

#endif
