/* The session's disks: virtio-blk devices found by their serial (the
 * host names each one), mounted as ext4. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define DISK_WAIT_MS 3000

/* /dev/vdX whose /sys/block/vdX/serial is serial. */
static int find_device(const char *serial, char *dev, size_t devlen)
{
    DIR *d = opendir("/sys/block");
    if (d == NULL)
        return -1;
    int rc = -1;
    struct dirent *de;
    while (rc < 0 && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "vd", 2) != 0)
            continue;
        char path[300], got[64] = "";
        snprintf(path, sizeof path, "/sys/block/%s/serial", de->d_name);
        FILE *f = fopen(path, "re");
        if (f == NULL)
            continue;
        if (fgets(got, sizeof got, f))
            got[strcspn(got, "\n")] = '\0';
        fclose(f);
        /* devtmpfs makes the node a moment after sysfs shows the disk. */
        snprintf(dev, devlen, "/dev/%s", de->d_name);
        if (strcmp(got, serial) == 0 && access(dev, F_OK) == 0)
            rc = 0;
    }
    closedir(d);
    return rc;
}

int guest_find_disk(const char *serial, char *dev, size_t devlen, const char *what, char *why,
                    size_t whylen)
{
    /* The driver probes while the modules load; allow it a moment. */
    for (int waited = 0; find_device(serial, dev, devlen) < 0; waited += 10) {
        if (waited >= DISK_WAIT_MS)
            return guest_fail(why, whylen, ENODEV, "finding the disk for %s", what);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int guest_mount_disk(const char *serial, const char *dir, unsigned long flags, const char *what,
                     char *why, size_t whylen)
{
    char dev[300];
    if (guest_find_disk(serial, dev, sizeof dev, what, why, whylen) < 0)
        return -1;
    if (mount(dev, dir, "ext4", flags | MS_NOATIME, NULL) < 0)
        return guest_fail(why, whylen, errno, "mounting the disk for %s", what);
    return 0;
}
