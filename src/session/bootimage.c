/* --boot image: an image that mvm image build made, booted with its own
 * kernel, initramfs and init (systemd).  The kernel and initramfs are
 * the ones kept beside the image (disk/); the session reaches the guest
 * through a cloud-init NoCloud seed (disk/seed.h writes it) holding
 * mvm-init and the session description: its user-data has cloud-init
 * start mvm-init --agent as a service once the system is up, and the
 * agent serves the control port as mvm-init does. */
#include "session-int.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "seed.h"

/* The seed's disk, as the guest finds it: /dev/disk/by-id/virtio-SERIAL. */
#define SEED_SERIAL "mvm-seed"
#define SEED_DEV    "/dev/disk/by-id/virtio-" SEED_SERIAL
#define AGENT_DIR   "/run/mvm-seed"
#define AGENT       "/usr/local/sbin/mvm-agent"

/* The image's root for its own initramfs: the disk whose serial is the
 * image's (vm.c's IMAGE_SERIAL), a bare filesystem as mvm image build
 * makes it; and cloud-init told on the command line too (it reads that
 * first) that the network is not its business. */
const char session_boot_cmdline[] = "root=/dev/disk/by-id/virtio-image rw network-config=disabled";

int session_plan_boot_image(struct session *s, const char *stored, struct mvm_error **err)
{
    const struct mvm_run_opts *o = s->o;
    if (!o->boot_image)
        return 0;
    if (o->image == NULL)
        return mvm_error_set(err, 0,
                             "--boot image needs --image NAME, an image mvm image build made "
                             "with a kernel (mvm image ls lists them)");
    if (stored == NULL)
        return mvm_error_set(err, 0,
                             "--boot image: %s is an image file; it boots only images that mvm "
                             "image build made (they keep their kernel beside them)",
                             o->image);
    if (o->kernel != NULL || o->modules != NULL)
        return mvm_error_set(err, 0,
                             "--boot image boots the image's own kernel: drop --kernel and "
                             "--modules (mvm config shows where they are set), or use --boot mvm");
    /* stored: o->image is the name of an image in the store. */
    return mvm_image_boot_files(MVM_IMAGES_DIR, o->image, &s->boot_kernel, &s->initrd,
                                &s->boot_kconfig, err);
}

/* The files at the seed's root.  user-data: cloud-init's last stage
 * (runcmd: the system is up) mounts the seed, installs mvm-init (into
 * the overlay: /run is noexec) and queues it as a service of its own,
 * ordered after cloud-init's last unit, so that the command finds the
 * boot finished; however it ends (a status sent, a crash, a stop), the
 * VM powers off, and an OOM kill of the command does not stop it.  What fails is said
 * on the console, whose last line the host's error quotes. */
static const char user_data[] =
    "#cloud-config\n"
    "# Written by mvm for this session: start mvm's agent, which runs the command.\n"
    "runcmd:\n"
    "  - [sh, -c, 'exec > /dev/console 2>&1; mkdir -p " AGENT_DIR " && mount -o ro " SEED_DEV
    " " AGENT_DIR " && install -D -m 0700 " AGENT_DIR "/mvm-init " AGENT
    " && exec systemd-run --no-block --collect "
    "--unit=mvm-agent --property=After=cloud-final.service --service-type=exec "
    "--property=SuccessAction=poweroff-force --property=FailureAction=poweroff-force "
    "--property=OOMPolicy=continue " AGENT " --agent " AGENT_DIR "/session.json']\n";

/* mvm-init configures the interface itself, from the session, as in
 * every mode; cloud-init leaves the network alone. */
static const char network_config[] = "config: disabled\n";

int session_boot_seed(struct session *s, const char *desc, struct mvm_error **err)
{
    cleanup_free char *meta = xasprintf("instance-id: mvm-%s\nlocal-hostname: mvm\n", s->id);
    const struct mvm_seed_file files[] = {
        {"meta-data", meta, strlen(meta)},
        {"user-data", user_data, sizeof user_data - 1},
        {"network-config", network_config, sizeof network_config - 1},
        {"session.json", desc, strlen(desc)},
        {"mvm-init", mvm_init_blob, mvm_init_blob_size},
    };
    struct buf iso = {0};
    if (mvm_seed_build(files, ARRAY_SIZE(files), MVM_SEED_LABEL, &iso, err) < 0)
        return mvm_error_wrap(err, "writing the cloud-init seed");
    /* In memory: nothing of it is left in /run when the session ends. */
    int fd = memfd_create("mvm-seed", MFD_CLOEXEC);
    int rc = fd < 0 || write_all(fd, iso.data, iso.len) < 0
                 ? mvm_error_set(err, errno, "writing the cloud-init seed")
                 : 0;
    buf_free(&iso);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->seed.fd = fd;
    s->seed.path = xstrdup("the cloud-init seed");
    return 0;
}

const char *session_seed_serial(void)
{
    return SEED_SERIAL;
}
