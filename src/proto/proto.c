/* Framing of the control protocol; see proto.h for the wire format. */
#include "proto.h"

#include <string.h>
#include <sys/wait.h>

void mvm_proto_decoder_init(struct mvm_proto_decoder *d)
{
    d->len = 0;
    d->taken = 0;
}

/* Drops the frame handed out last, so its bytes can be reused. */
static void consume_taken(struct mvm_proto_decoder *d)
{
    if (d->taken == 0)
        return;
    memmove(d->buf, d->buf + d->taken, d->len - d->taken);
    d->len -= d->taken;
    d->taken = 0;
}

size_t mvm_proto_space(const struct mvm_proto_decoder *d)
{
    return sizeof d->buf - (d->len - d->taken);
}

size_t mvm_proto_feed(struct mvm_proto_decoder *d, const void *data, size_t len)
{
    consume_taken(d);
    size_t room = sizeof d->buf - d->len;
    if (len > room)
        len = room;
    memcpy(d->buf + d->len, data, len);
    d->len += len;
    return len;
}

/* Expected payload size for fixed-size messages, -1 when variable. */
static long fixed_size(uint8_t type)
{
    switch (type) {
    case MVM_MSG_START:
        return 5;
    case MVM_MSG_WINSIZE:
        return 4;
    case MVM_MSG_SIGNAL:
    case MVM_MSG_CREDIT_OUT:
    case MVM_MSG_READY:
    case MVM_MSG_EXIT:
    case MVM_MSG_CREDIT_IN:
        return 4;
    case MVM_MSG_SHUTDOWN:
    case MVM_MSG_ATTACH:
        return 0;
    case MVM_MSG_ARG:
    case MVM_MSG_ENV:
    case MVM_MSG_STDIN:
    case MVM_MSG_STDOUT:
    case MVM_MSG_STDERR:
        return -1;
    case MVM_MSG_ERROR:
        return -2; /* at least 4 */
    default:
        return -3; /* unknown */
    }
}

static const char *validate(uint8_t type, const uint8_t *payload, uint32_t len)
{
    long want = fixed_size(type);
    if (want == -3)
        return "unknown message type";
    if (want >= 0 && len != (uint32_t)want)
        return "wrong payload size for message type";
    if (want == -2 && len < 4)
        return "error message too short";
    if ((type == MVM_MSG_ARG || type == MVM_MSG_ENV) && memchr(payload, '\0', len) != NULL)
        return "NUL byte inside a string";
    if (type == MVM_MSG_ENV && memchr(payload, '=', len) == NULL)
        return "environment entry without '='";
    return NULL;
}

enum mvm_proto_status mvm_proto_next(struct mvm_proto_decoder *d, struct mvm_proto_frame *f,
                                     const char **why)
{
    consume_taken(d);
    if (d->len < MVM_PROTO_HEADER)
        return MVM_PROTO_NEED_MORE;
    const uint8_t *h = d->buf;
    uint32_t len = mvm_get_u32(h + 4);
    if (h[1] != 0) {
        *why = "reserved header byte is not zero";
        return MVM_PROTO_BAD;
    }
    if (len > MVM_PROTO_MAX_PAYLOAD) {
        *why = "payload larger than the protocol allows";
        return MVM_PROTO_BAD;
    }
    if (d->len < MVM_PROTO_HEADER + (size_t)len)
        return MVM_PROTO_NEED_MORE;
    const char *bad = validate(h[0], h + MVM_PROTO_HEADER, len);
    if (bad != NULL) {
        *why = bad;
        return MVM_PROTO_BAD;
    }
    f->type = h[0];
    f->stream = mvm_get_u16(h + 2);
    f->len = len;
    f->payload = h + MVM_PROTO_HEADER;
    d->taken = MVM_PROTO_HEADER + len;
    return MVM_PROTO_FRAME;
}

void mvm_proto_header(uint8_t hdr[MVM_PROTO_HEADER], uint8_t type, uint16_t stream, uint32_t len)
{
    hdr[0] = type;
    hdr[1] = 0;
    mvm_put_u16(hdr + 2, stream);
    mvm_put_u32(hdr + 4, len);
}

int mvm_proto_status_from_wait(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 125;
}
