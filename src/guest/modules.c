/* Loads the modules the host resolved (dependencies first) from the
 * initramfs.  The host decompressed them, so plain finit_module() works on
 * every kernel, including those before 6.4. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guest.h"

int guest_load_modules(char *why, size_t whylen)
{
    FILE *order = fopen(GUEST_MODULES_DIR "/order", "re");
    if (order == NULL)
        return 0; /* a kernel with everything built in */
    char name[256];
    int rc = 0;
    while (fgets(name, sizeof name, order) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        if (name[0] == '\0' || strchr(name, '/') != NULL)
            continue;
        char path[512];
        snprintf(path, sizeof path, GUEST_MODULES_DIR "/%s", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)) {
            snprintf(why, whylen, "loading kernel module %s: %s", name, strerror(errno));
            rc = -1;
        }
        if (fd >= 0)
            close(fd);
        unlink(path); /* give the memory back */
        if (rc < 0)
            break;
    }
    fclose(order);
    return rc;
}
