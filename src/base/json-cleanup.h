/* cleanup_json: json_decref at scope exit, for the files that use
 * jansson (base/ itself does not link it). */
#ifndef MVM_JSON_CLEANUP_H
#define MVM_JSON_CLEANUP_H

#include <jansson.h>

static inline void cleanup_json_fn(json_t **j)
{
    json_decref(*j);
}
#define cleanup_json __attribute__((cleanup(cleanup_json_fn)))

#endif
