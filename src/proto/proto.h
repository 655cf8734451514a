/* proto: the control protocol between mvm (host) and mvm-init (guest).
 *
 * One virtio-serial port carries framed messages.  A frame is an 8-byte
 * header -- type (u8), reserved (u8, 0), stream id (u16 LE), payload length
 * (u32 LE) -- followed by the payload.  Stream ids let several commands
 * share the port: stream 1 is the session's main command, the host picks
 * others for `mvm exec` (at most MVM_PROTO_MAX_STREAMS at once, main
 * included); stream 0 is the guest's READY.  A stream's id is reused only
 * after its EXIT or ERROR.
 *
 * Data (stdin, stdout, stderr) is credit-based: a side sends data only
 * while the peer has granted window for it, so neither side ever buffers
 * more than the window, and control messages (signals, window size, exit)
 * are never stuck behind data the other end cannot take yet.
 *
 * Pure code, no I/O: shared by mvm and the static mvm-init, and fuzzed
 * (tests/fuzz/fuzz-proto.c). */
#ifndef MVM_PROTO_H
#define MVM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MVM_PROTO_HEADER      8
#define MVM_PROTO_MAX_PAYLOAD (64 * 1024)
/* Window granted for each data direction at the start of a stream. */
#define MVM_PROTO_WINDOW (256 * 1024)
/* Name of the virtio-serial port. */
#define MVM_PROTO_PORT        "org.mvm.ctl"
#define MVM_PROTO_VERSION     1
#define MVM_PROTO_MAIN_STREAM 1
#define MVM_PROTO_MAX_STREAMS 16

/* START's flags. */
#define MVM_START_TTY  0x01 /* under a pty */
#define MVM_START_ROOT 0x02 /* as guest root, not the session's user */

enum mvm_proto_type {
    /* host -> guest */
    MVM_MSG_ARG = 1,        /* one argv string (no NUL inside) */
    MVM_MSG_ENV = 2,        /* one "NAME=VALUE" string */
    MVM_MSG_START = 3,      /* flags u8 (MVM_START_*), rows u16, cols u16: run it */
    MVM_MSG_STDIN = 4,      /* data; empty payload = EOF */
    MVM_MSG_WINSIZE = 5,    /* rows u16, cols u16 */
    MVM_MSG_SIGNAL = 6,     /* signal number u32 */
    MVM_MSG_SHUTDOWN = 7,   /* end the command and power off (empty) */
    MVM_MSG_CREDIT_OUT = 8, /* u32: more window for stdout+stderr */
    /* mvm attach -> the session's supervisor only, never to the guest:
     * connect this client to the main command (empty) */
    MVM_MSG_ATTACH = 9,

    /* guest -> host */
    MVM_MSG_READY = 32,     /* u32 protocol version: init is up */
    MVM_MSG_STDOUT = 33,    /* data */
    MVM_MSG_STDERR = 34,    /* data */
    MVM_MSG_EXIT = 35,      /* u32 exit status, already docker-mapped */
    MVM_MSG_ERROR = 36,     /* u32 exit status, then a message (no NUL) */
    MVM_MSG_CREDIT_IN = 37, /* u32: more window for stdin */
};

struct mvm_proto_frame {
    uint8_t type;
    uint16_t stream;
    uint32_t len;
    const uint8_t *payload; /* borrowed from the decoder's buffer */
};

/* Streaming decoder.  Memory is bounded: at most one header plus one
 * maximal payload is held. */
struct mvm_proto_decoder {
    uint8_t buf[MVM_PROTO_HEADER + MVM_PROTO_MAX_PAYLOAD];
    size_t len;   /* bytes held */
    size_t taken; /* bytes of the frame handed out by the last next() */
};

/* Result of mvm_proto_next(). */
enum mvm_proto_status {
    MVM_PROTO_NEED_MORE = 0,
    MVM_PROTO_FRAME = 1,
    MVM_PROTO_BAD = -1,
};

void mvm_proto_decoder_init(struct mvm_proto_decoder *d);
/* How many bytes the decoder can accept now (call with data up to that). */
size_t mvm_proto_space(const struct mvm_proto_decoder *d);
/* Appends up to `len` bytes (at most mvm_proto_space()); returns the
 * number taken. */
size_t mvm_proto_feed(struct mvm_proto_decoder *d, const void *data, size_t len);
/* Yields the next complete frame.  The frame's payload stays valid until
 * the next feed()/next().  BAD means the peer broke the protocol (unknown
 * type, oversize payload, wrong fixed size, reserved byte set): the
 * connection cannot be trusted further.  *why gets a static reason. */
enum mvm_proto_status mvm_proto_next(struct mvm_proto_decoder *d, struct mvm_proto_frame *f,
                                     const char **why);

/* Encodes a frame header for a payload of len bytes into hdr[8]. */
void mvm_proto_header(uint8_t hdr[MVM_PROTO_HEADER], uint8_t type, uint16_t stream, uint32_t len);

/* Little-endian helpers for fixed-size payloads. */
static inline void mvm_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void mvm_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t mvm_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t mvm_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The status docker run would report for a wait() status: the exit code,
 * or 128+N for death by signal N. */
int mvm_proto_status_from_wait(int wstatus);

#endif
