/* store_fuzz.c - libFuzzer target for the replicated store's decoders: the
 * entry codec, the file image (as given, and wrapped in a valid header and
 * checksum so the body is reached), and the replica's channel messages (as a
 * direct message and as a push-pull state from a known member). Any input
 * must be rejected or accepted cleanly: never crash, leak or read out of
 * bounds, decode only entries that pass cl_entry_check, re-encode them to
 * the same entry, and leave a store empty when its image is refused. */
#include "cluster/memnet.h"
#include "cluster/replica.h"
#include "cluster/store.h"
#include "cluster/swim.h"
#include "cluster/wire.h"
#include "common/err.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHANNEL 1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static uv_loop_t loop;
static struct cl_memnet *net;
static struct cl_memnet_ep *ep;
static struct cl_swim *swim;
static uint8_t msg[CL_MAX_MESSAGE];

static void must(int cond)
{
    if (!cond)
        abort();
}

/* One swim that knows member "peer" (whose address goes nowhere), so the
 * replica's answers are encoded and sent. */
static void init_once(void)
{
    if (swim != NULL)
        return;
    struct cl_swim_config cfg;
    uv_loop_init(&loop);
    must(cl_memnet_new(&loop, 1, &net) == 0);
    must(cl_memnet_attach(net, "10.0.0.1:7946", &ep) == 0);
    cl_swim_config_init(&cfg);
    cfg.name = "self";
    cfg.advertise = "10.0.0.1:7946";
    cfg.incarnation = 1;
    must(cl_swim_new(&loop, &cfg, cl_memnet_transport(ep), &swim) == 0);
    struct cl_wire_member m = {.name = cl_bytes_str("peer"),
                               .addr = cl_bytes_str("10.0.0.2:7946"),
                               .incarnation = 1,
                               .state = CL_STATE_ALIVE};
    struct cl_wire_msg pp = {.type = CL_MSG_PUSH_PULL,
                             .from = cl_bytes_str("peer"),
                             .from_addr = cl_bytes_str("10.0.0.2:7946"),
                             .members = &m,
                             .n_members = 1};
    size_t n;
    must(cl_wire_encode(&pp, NULL, 0, 0, msg, sizeof(msg), &n) == 0);
    cl_swim_receive(swim, msg, n);
    struct cl_member_info mi;
    must(cl_swim_member(swim, "peer", &mi) == 0);
}

static int same_entry(const struct cl_entry *a, const struct cl_entry *b)
{
    return a->kind == b->kind && a->deleted == b->deleted && a->rank == b->rank &&
           a->stamp == b->stamp && strcmp(a->name, b->name) == 0 &&
           strcmp(a->origin, b->origin) == 0 && a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0);
}

/* Saves s and loads the image into a new store: the same root. */
static void check_round_trip(const struct cl_store *s)
{
    struct gv_buf img;
    struct cl_store *t;
    uint64_t clock = 0;
    gv_buf_init(&img);
    if (cl_store_save(s, 99, &img) != 0) {
        gv_buf_free(&img);
        return;
    }
    must(cl_store_new(&t) == 0);
    must(cl_store_load(t, (const uint8_t *)img.data, img.len, &clock) == 0);
    must(clock == 99 && cl_store_root(t) == cl_store_root(s));
    must(cl_store_count(t) == cl_store_count(s));
    cl_store_free(t);
    gv_buf_free(&img);
}

static void fuzz_entries(const uint8_t *data, size_t len, struct cl_store *s)
{
    size_t off = 0;
    struct cl_entry e, again;
    struct gv_buf b;
    gv_buf_init(&b);
    for (;;) {
        size_t was = off;
        int rv = cl_entry_decode(data, len, &off, &e);
        if (rv != 0) {
            must(rv == GV_EPROTO && off == was);
            break;
        }
        must(off > was && off <= len && cl_entry_check(&e) == 0);
        gv_buf_reset(&b);
        must(cl_entry_encode(&e, &b) == 0);
        size_t o2 = 0;
        must(cl_entry_decode((const uint8_t *)b.data, b.len, &o2, &again) == 0);
        must(o2 == b.len && same_entry(&e, &again));
        must(cl_store_merge(s, &e) >= 0);
    }
    gv_buf_free(&b);
}

static void fuzz_image(const uint8_t *data, size_t len)
{
    struct cl_store *s;
    uint64_t clock = 7;
    must(cl_store_new(&s) == 0);
    int rv = cl_store_load(s, data, len, &clock);
    must(rv == 0 || (rv == GV_EPROTO && cl_store_count(s) == 0 && clock == 7));
    cl_store_free(s);

    /* the same bytes as the body of an image with a valid checksum */
    uint8_t *img = malloc(len + 5 + 32);
    unsigned int mdlen = 0;
    must(img != NULL);
    memcpy(img, "GVST\x01", 5);
    if (len > 0)
        memcpy(img + 5, data, len);
    must(EVP_Digest(img, len + 5, img + len + 5, &mdlen, EVP_sha256(), NULL) == 1);
    must(cl_store_new(&s) == 0);
    clock = 7;
    rv = cl_store_load(s, img, len + 5 + 32, &clock);
    must(rv == 0 || (rv == GV_EPROTO && cl_store_count(s) == 0 && clock == 7));
    if (rv == 0)
        check_round_trip(s);
    cl_store_free(s);
    free(img);
}

static void fuzz_replica(const uint8_t *data, size_t len)
{
    struct cl_store *s;
    struct cl_hlc clock = {0};
    struct cl_replica *r;
    struct cl_replica_config cfg;
    must(cl_store_new(&s) == 0);
    /* a few entries, so fetches and summaries have something to answer */
    static const char *const names[] = {"a", "b", "users", "orders"};
    for (int i = 0; i < 4; i++) {
        struct cl_entry e = {.kind = (uint8_t)i, .stamp = 1000 + (uint64_t)i};
        strcpy(e.name, names[i]);
        strcpy(e.origin, "peer");
        e.value = (const uint8_t *)"{}";
        e.value_len = 2;
        must(cl_store_merge(s, &e) == 1);
    }
    cl_replica_config_init(&cfg);
    cfg.channel = CHANNEL;
    must(cl_replica_new(&loop, swim, s, &clock, &cfg, &r) == 0);
    if (len <= CL_SWIM_MAX_PAYLOAD) {
        size_t n;
        struct cl_wire_msg um = {.type = CL_MSG_USER,
                                 .from = cl_bytes_str("peer"),
                                 .channel = CHANNEL,
                                 .payload = {data, len}};
        if (cl_wire_encode(&um, NULL, 0, 0, msg, sizeof(msg), &n) == 0)
            cl_swim_receive(swim, msg, n);
        struct cl_wire_state st = {.channel = CHANNEL, .data = {data, len}};
        struct cl_wire_msg pp = {.type = CL_MSG_PUSH_PULL,
                                 .from = cl_bytes_str("peer"),
                                 .from_addr = cl_bytes_str("10.0.0.2:7946"),
                                 .states = &st,
                                 .n_states = 1};
        if (cl_wire_encode(&pp, NULL, 0, 0, msg, sizeof(msg), &n) == 0)
            cl_swim_receive(swim, msg, n);
    }
    /* whatever it took, the store still holds only valid entries and saves */
    check_round_trip(s);
    cl_replica_close(r, NULL, NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* the close callback frees the replica */
    cl_store_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct cl_store *s;
    init_once();
    must(cl_store_new(&s) == 0);
    fuzz_entries(data, len, s);
    check_round_trip(s);
    cl_store_free(s);
    fuzz_image(data, len);
    fuzz_replica(data, len);
    return 0;
}
