/* wire_fuzz.c - libFuzzer target for the gossip message decoder: any input
 * must decode or be rejected with GV_EPROTO, never crash, leak or read out of
 * bounds (ASan), and whatever decodes must be freed cleanly. */
#include "cluster/wire.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct cl_wire_msg m;
    int rv = cl_wire_decode(data, len, &m);
    if (rv == 0)
        cl_wire_msg_free(&m);
    else if (rv != GV_EPROTO && rv != GV_ENOMEM)
        abort(); /* the decoder promises 0, GV_EPROTO or GV_ENOMEM */
    return 0;
}
