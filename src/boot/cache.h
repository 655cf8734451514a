/* cache: keeps /var/cache/mvm bounded.  Extracted kernels and initramfs
 * bases are keyed by what they were made from, so every kernel update or
 * mvm upgrade adds entries and none is ever asked for again; an entry is
 * marked when used, and entries unused for MVM_CACHE_MAX_AGE are removed
 * whenever a new one is written (a rare event: nothing is swept per run). */
#ifndef MVM_CACHE_H
#define MVM_CACHE_H

#include <stdbool.h>
#include <time.h>

#define MVM_CACHE_MAX_AGE (30 * 24 * 3600)

/* Marks the entry at path as used now (its mtime); errors are ignored:
 * a cache that cannot be marked is merely swept sooner. */
void mvm_cache_touch(const char *path);

/* True if an entry last used at mtime is stale at now.  Pure. */
bool mvm_cache_stale(time_t mtime, time_t now, time_t max_age);

/* Removes the regular files in dir whose names start with prefix and
 * that are stale, except keep (a full path, or NULL).  Best effort;
 * returns how many it removed. */
int mvm_cache_sweep(const char *dir, const char *prefix, time_t max_age, const char *keep);

#endif
