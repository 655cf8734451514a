/* Fallbacks for the wrappers in syscalls.h. */
#include "syscalls.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int mvm_close_fds_except(int lowest, const int *keep, int nkeep)
{
    int sorted[64];
    if (nkeep > 64) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < nkeep; i++)
        sorted[i] = keep[i];
    qsort(sorted, (size_t)nkeep, sizeof sorted[0], cmp_int);

    int from = lowest;
    for (int i = 0; i <= nkeep; i++) {
        int to = i < nkeep ? sorted[i] - 1 : INT_MAX;
        if (i < nkeep && sorted[i] < from) /* kept fd below lowest */
            continue;
        if (to >= from) {
            if (syscall(SYS_close_range, (unsigned)from, (unsigned)to, 0) < 0) {
                if (errno != ENOSYS)
                    return -1;
                int max = (int)sysconf(_SC_OPEN_MAX);
                for (int fd = from; fd <= to && fd < max; fd++)
                    close(fd);
            }
        }
        if (i < nkeep)
            from = sorted[i] + 1;
    }
    return 0;
}
