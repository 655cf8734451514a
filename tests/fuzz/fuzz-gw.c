/* Fuzzes what the guest sends the API gateway: the input is a request
 * target, a NUL, and a header name.  Whatever the target, the path
 * upstream gets stays below the base path and holds nothing that could
 * split a request; a credential header never goes on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT_SIZE (MVM_GW_MAX_TARGET + 256)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[MVM_GW_MAX_TARGET + MVM_GW_MAX_BASE + 8];
    struct mvm_gw_provider p;
    if (size > MAX_INPUT_SIZE || mvm_gw_parse_spec("custom:https://h/base:X-Key=K", &p, NULL) < 0)
        return 0;
    char *in = malloc(size + 2);
    memcpy(in, data, size);
    in[size] = in[size + 1] = '\0';
    const char *name = in + strlen(in) + 1;
    if (name > in + size)
        name = in + size;
    int n = mvm_gw_upstream_target(&p, in, out, sizeof out);
    if (n >= 0) {
        if ((size_t)n != strlen(out) || strncmp(out, "/base/", 6) != 0 || strstr(out, "/../"))
            __builtin_trap();
        for (int i = 0; i < n; i++)
            if ((unsigned char)out[i] <= ' ' || (unsigned char)out[i] >= 0x7f)
                __builtin_trap();
    }
    if (mvm_gw_keep_request_header(&p, name) &&
        (strcasecmp(name, "x-key") == 0 || strcasecmp(name, "authorization") == 0 ||
         strcasecmp(name, "host") == 0 || strpbrk(name, ": \r\n") != NULL || *name == '\0'))
        __builtin_trap();
    mvm_gw_keep_response_header(name);
    free(in);
    return 0;
}
