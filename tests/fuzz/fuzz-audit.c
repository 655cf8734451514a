/* Fuzzes what the guest writes for the share audit to parse: the input is
 * read as a git config (every variable, the dangerous ones, the include
 * paths it names, core.hooksPath), as package.json, and -- split at its
 * first NUL -- as a path and a symlink target to classify and check. */
#include <stdint.h>
#include <string.h>

#include "audit.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT_SIZE (64 * 1024)

static int check_var(void *arg, const struct mvm_gitconfig_var *v)
{
    (void)arg;
    if (v->section == NULL || v->key == NULL || v->key[0] == '\0')
        __builtin_trap();
    for (const char *p = v->key; *p; p++) /* keys are [a-z0-9-], lowercased */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            __builtin_trap();
    return 0;
}

/* A resolved include is relative, with no "." or ".." or empty part. */
static void check_include(const char *config, const char *inc)
{
    cleanup_free char *p = mvm_audit_include_path("/top", config, inc);
    if (p == NULL)
        return;
    if (p[0] == '\0' || p[0] == '/' || p[strlen(p) - 1] == '/' || strstr(p, "//"))
        __builtin_trap();
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            __builtin_trap();
        c += n;
        c += *c == '/';
    }
}

static void fuzz_git(const char *text, size_t len)
{
    mvm_gitconfig_parse(text, len, check_var, NULL, NULL);
    struct mvm_audit_strs d = {0}, inc = {0};
    if (mvm_audit_git_dangers(text, len, &d, &inc) == 0) {
        for (size_t i = 0; i < inc.n; i++) {
            check_include(".git/config", inc.v[i]);
            check_include("a/b/c.cfg", inc.v[i]);
        }
    } else if (d.n || inc.n) {
        __builtin_trap(); /* a refused file adds nothing */
    }
    mvm_audit_strs_clear(&d);
    mvm_audit_strs_clear(&inc);
    free(mvm_audit_git_hooks_path(text, len));

    /* Whatever follows, a variable before it is seen. */
    static const char prefix[] = "[core]\n\tfsmonitor = x\n";
    cleanup_free char *both = xmalloc(sizeof prefix - 1 + len);
    memcpy(both, prefix, sizeof prefix - 1);
    memcpy(both + sizeof prefix - 1, text, len);
    if (mvm_audit_git_dangers(both, sizeof prefix - 1 + len, &d, NULL) == 0 &&
        (d.n == 0 || strcmp(d.v[0], "core.fsmonitor = x") != 0))
        __builtin_trap();
    mvm_audit_strs_clear(&d);
}

static void fuzz_paths(const char *text, size_t len)
{
    const char *nul = memchr(text, '\0', len);
    cleanup_free char *path = xstrndup(text, nul ? (size_t)(nul - text) : len);
    cleanup_free char *target = nul ? xstrndup(nul + 1, len - (size_t)(nul + 1 - text)) : NULL;
    enum mvm_audit_class a = mvm_audit_classify(path, false);
    enum mvm_audit_class b = mvm_audit_classify(path, true);
    if (a > MVM_AUDIT_CLASS_NPM || b > MVM_AUDIT_CLASS_NPM)
        __builtin_trap();
    if (target) {
        bool leaves = mvm_audit_link_leaves(path, target);
        /* No "..", not absolute: it cannot leave. */
        if (leaves && target[0] != '/' && strstr(target, "..") == NULL)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT_SIZE)
        return 0;
    const char *text = (const char *)data;
    fuzz_git(text, size);
    struct mvm_audit_strs s = {0};
    if (mvm_audit_npm_scripts(text, size, &s) < 0 && s.n)
        __builtin_trap();
    mvm_audit_strs_clear(&s);
    fuzz_paths(text, size);
    return 0;
}
