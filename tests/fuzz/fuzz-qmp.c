/* Fuzzes what QEMU's monitor can send us: the bytes go through the framer
 * in chunks (so lines get split at arbitrary points, as reads split them)
 * and every complete line through the parser. */
#include <stdint.h>
#include <string.h>

#include "qmp.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Far beyond any real QMP reply; larger inputs only slow the fuzzer. */
#define MAX_INPUT_SIZE (64 * 1024)

static void parse_lines(struct mvm_qmp_framer *f)
{
    const char *line;
    size_t len;

    while (mvm_qmp_framer_next(f, &line, &len)) {
        struct mvm_qmp_msg msg = {0};
        struct mvm_error *err = NULL;
        if (mvm_qmp_parse(line, len, &msg, &err) == 0) {
            /* Touch what the parser promises is there. */
            if (msg.kind == MVM_QMP_EVENT && (strlen(msg.event) > len || !json_is_object(msg.data)))
                __builtin_trap();
            if (msg.kind == MVM_QMP_ERROR && strlen(msg.error_class) + strlen(msg.error_desc) > len)
                __builtin_trap();
            if (msg.kind == MVM_QMP_RETURN && msg.ret == NULL)
                __builtin_trap();
        }
        mvm_qmp_msg_clear(&msg);
        mvm_error_free(err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mvm_qmp_framer f = {0};
    size_t cuts[4];

    if (size > MAX_INPUT_SIZE)
        return 0;
    /* Split points come from the input itself, so the fuzzer can steer
     * them; they are sorted by construction. */
    cuts[0] = size < 2 ? 0 : data[0] * size / 256;
    cuts[1] = size < 2 ? 0 : cuts[0] + data[1] * (size - cuts[0]) / 256;
    cuts[2] = (cuts[1] + size) / 2;
    cuts[3] = size;

    size_t at = 0;
    for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
        struct mvm_error *err = NULL;
        if (mvm_qmp_framer_feed(&f, data + at, cuts[i] - at, &err) < 0) {
            mvm_error_free(err);
            break;
        }
        at = cuts[i];
        parse_lines(&f);
    }
    mvm_qmp_framer_free(&f);
    return 0;
}
