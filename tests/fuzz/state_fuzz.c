/* state_fuzz.c - libFuzzer target for the cluster-state validator, the one
 * code path behind the config file, the admin API and gossip: any JSON must
 * be accepted or refused with a path and a message, never crash or leak;
 * what is accepted must render to canonical JSON that is accepted again and
 * renders the same (the digest every node computes depends on it), and its
 * minimal form must read back to the same state. */
#include "node/state.h"
#include "common/err.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    json_t *root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL)
        return 0;
    struct node_state st, again;
    struct node_state_error err;
    memset(&err, 0, sizeof(err));
    int rv = node_state_from_json(root, &st, &err);
    json_decref(root);
    if (rv != 0) {
        if (rv != GV_EINVAL && rv != GV_ENOMEM)
            abort();
        if (rv == GV_EINVAL && err.msg[0] == '\0')
            abort(); /* a refusal always says why */
        return 0;
    }
    json_t *canon = node_state_to_json(&st);
    if (canon != NULL) {
        if (node_state_from_json(canon, &again, &err) != 0)
            abort(); /* canonical output must validate */
        json_t *canon2 = node_state_to_json(&again);
        char *a = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
        char *b = canon2 ? json_dumps(canon2, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (a != NULL && b != NULL && strcmp(a, b) != 0)
            abort(); /* canonical form is a fixed point */
        free(a);
        free(b);
        json_decref(canon2);
        node_state_free(&again);
        json_decref(canon);
    }
    /* The minimal form (what is stored and digested) reads back to the same
     * state: its canonical form is the same. */
    json_t *min = node_state_to_json_min(&st), *full = node_state_to_json(&st);
    if (min != NULL && full != NULL) {
        if (node_state_from_json(min, &again, &err) != 0)
            abort();
        json_t *full2 = node_state_to_json(&again);
        if (full2 != NULL && !json_equal(full, full2))
            abort();
        json_decref(full2);
        node_state_free(&again);
    }
    json_decref(min);
    json_decref(full);
    node_state_free(&st);
    return 0;
}
