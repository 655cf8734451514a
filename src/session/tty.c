/* The user's terminal around a relay, for `mvm run` and `mvm exec`: raw
 * mode (the guest's pty does the line discipline), non-blocking stdio,
 * the window size, and everything put back at the end. */
#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

void tty_winsize(int fd, uint16_t *rows, uint16_t *cols)
{
    struct winsize ws = {0};
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    } else {
        *rows = 24;
        *cols = 80;
    }
}

int tty_setup(struct tty_state *t, bool raw, struct mvm_error **err)
{
    for (int fd = 0; fd < 3; fd++) {
        t->fl_saved[fd] = fcntl(fd, F_GETFL);
        if (t->fl_saved[fd] >= 0)
            fcntl(fd, F_SETFL, t->fl_saved[fd] | O_NONBLOCK);
    }
    t->fl_set = true;
    if (!raw)
        return 0;
    if (tcgetattr(STDIN_FILENO, &t->tio) < 0)
        return mvm_error_set(err, errno, "reading the terminal's settings");
    t->tio_saved = true;
    struct termios r = t->tio;
    cfmakeraw(&r);
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &r) < 0)
        return mvm_error_set(err, errno, "setting the terminal to raw mode");
    return 0;
}

static void reset_modes(const struct mvm_outfilter *f, int fd)
{
    struct buf reset = {0};
    mvm_outfilter_reset(f, &reset);
    write_all(fd, reset.data, reset.len);
    buf_free(&reset);
}

void tty_restore(struct tty_state *t, struct mvm_relay *r, bool stdout_tty)
{
    if (r != NULL) {
        mvm_relay_flush_user(r, 1000);
        /* Switch off what the guest switched on, on each terminal. */
        if (stdout_tty)
            reset_modes(&r->filter, STDOUT_FILENO);
        if (r->filter_err && r->err_filter.modes)
            reset_modes(&r->err_filter, STDERR_FILENO);
    }
    if (t->tio_saved)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &t->tio);
    t->tio_saved = false;
    if (t->fl_set)
        for (int fd = 0; fd < 3; fd++)
            if (t->fl_saved[fd] >= 0)
                fcntl(fd, F_SETFL, t->fl_saved[fd]);
    t->fl_set = false;
}
