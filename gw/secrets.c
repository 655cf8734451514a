/* What mvm sends the gateway over its secrets pipe (gw.h), and the
 * gateway's command line, which carries none of it. */
#include <errno.h>
#include <stdint.h>

#include "gw.h"
#include "util.h"

static int write_item(int fd, const char *s, size_t n)
{
    uint32_t len = (uint32_t)n;
    return n > UINT32_MAX || write_all(fd, &len, sizeof len) < 0 || write_all(fd, s, n) < 0 ? -1
                                                                                            : 0;
}

int mvm_gw_write_secrets(int fd, char *const *keys, const size_t *lens, size_t n, const char *ca,
                         size_t calen, struct mvm_error **err)
{
    for (size_t i = 0; i < n; i++)
        if (write_item(fd, keys[i], lens[i]) < 0)
            return mvm_error_set(err, errno, "handing the API gateway its keys");
    if (write_item(fd, ca, calen) < 0)
        return mvm_error_set(err, errno, "handing the API gateway its CA bundle");
    return 0;
}

char **mvm_gw_argv(const char *prog, int secrets_fd, const int *listen_fds, char *const *specs,
                   size_t n)
{
    char **argv = xcalloc(2 * n + 4, sizeof *argv);
    argv[0] = xstrdup(prog);
    argv[1] = xstrdup("__api-gateway");
    argv[2] = xasprintf("%d", secrets_fd);
    for (size_t i = 0; i < n; i++) {
        argv[3 + 2 * i] = xasprintf("%d", listen_fds[i]);
        argv[4 + 2 * i] = xstrdup(specs[i]);
    }
    return argv;
}
