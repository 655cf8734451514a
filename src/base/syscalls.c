/* Fallbacks for the wrappers in syscalls.h. */
#include "syscalls.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

/* In place and without allocating: this runs in a freshly forked child. */
static void sort_ints(int *v, int n)
{
    for (int i = 1; i < n; i++) {
        int x = v[i], k = i;
        for (; k > 0 && v[k - 1] > x; k--)
            v[k] = v[k - 1];
        v[k] = x;
    }
}

int mvm_close_fds_except(int lowest, int *keep, int nkeep)
{
    int *sorted = keep;
    sort_ints(sorted, nkeep);

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
