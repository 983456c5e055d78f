/* healthplane.c - rendezvous assignment of health probes to members and the
 * codec of the health reports gossiped on channel 2. */
#include "cluster/healthplane.h"

#include "cluster/hlc.h"
#include "cluster/wire.h"
#include "common/err.h"
#include "common/util.h"

#include <msgpack.h>
#include <string.h>

static const char hp_magic[4] = {'G', 'V', 'H', 'P'};

static uint64_t target_seed(const char *service, const char *address)
{
    uint64_t h = gv_hash64(service, strlen(service), 0x6770686561ULL);
    return gv_hash64(address, strlen(address), h);
}

static uint64_t score(uint64_t seed, const char *member)
{
    return gv_mix64(gv_hash64(member, strlen(member), seed));
}

size_t cl_hp_assign(const char *const *members, size_t n, const char *service, const char *address,
                    size_t out[CL_HP_CHECKERS])
{
    uint64_t seed = target_seed(service, address);
    uint64_t best_s[CL_HP_CHECKERS];
    const char *best_m[CL_HP_CHECKERS];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = score(seed, members[i]);
        /* insertion into the small sorted top list */
        size_t pos = k;
        while (pos > 0) {
            uint64_t ps = best_s[pos - 1];
            bool before = s != ps ? s > ps : strcmp(members[i], best_m[pos - 1]) < 0;
            if (!before)
                break;
            pos--;
        }
        if (pos >= CL_HP_CHECKERS)
            continue;
        size_t last = k < CL_HP_CHECKERS ? k : CL_HP_CHECKERS - 1;
        for (size_t j = last; j > pos; j--) {
            best_s[j] = best_s[j - 1];
            best_m[j] = best_m[j - 1];
            out[j] = out[j - 1];
        }
        best_s[pos] = s;
        best_m[pos] = members[i];
        out[pos] = i;
        if (k < CL_HP_CHECKERS)
            k++;
    }
    return k;
}

bool cl_hp_is_checker(const char *const *members, size_t n, const char *service,
                      const char *address, const char *self)
{
    size_t out[CL_HP_CHECKERS];
    size_t k = cl_hp_assign(members, n, service, address, out);
    for (size_t i = 0; i < k; i++)
        if (strcmp(members[out[i]], self) == 0)
            return true;
    return false;
}

static int buf_write(void *data, const char *p, size_t len)
{
    return gv_buf_append(data, p, len) == 0 ? 0 : -1;
}

static bool str_ok(const char *s, size_t max, bool may_be_empty)
{
    size_t n = strnlen(s, max + 1);
    return n <= max && (may_be_empty || n > 0);
}

int cl_hp_encode(const struct cl_hp_report *r, struct gv_buf *out)
{
    if (!str_ok(r->service, CL_HP_MAX_SERVICE, false) ||
        !str_ok(r->address, CL_HP_MAX_ADDRESS, false) ||
        !str_ok(r->reason, CL_HP_MAX_REASON, true) || !str_ok(r->checker, CL_HP_MAX_NAME, false))
        return GV_EINVAL;
    size_t before = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    int rc = msgpack_pack_array(&pk, 8);
    rc |= msgpack_pack_bin_with_body(&pk, hp_magic, sizeof(hp_magic));
    rc |= msgpack_pack_uint8(&pk, CL_HP_VERSION);
    rc |= msgpack_pack_str_with_body(&pk, r->service, strlen(r->service));
    rc |= msgpack_pack_str_with_body(&pk, r->address, strlen(r->address));
    rc |= r->healthy ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    rc |= msgpack_pack_str_with_body(&pk, r->reason, strlen(r->reason));
    rc |= msgpack_pack_str_with_body(&pk, r->checker, strlen(r->checker));
    rc |= msgpack_pack_uint64(&pk, r->stamp);
    if (rc != 0) {
        out->len = before;
        return GV_ENOMEM;
    }
    return 0;
}

static int get_str(const msgpack_object *o, char *dst, size_t max, bool may_be_empty)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
        (!may_be_empty && o->via.str.size == 0))
        return GV_EPROTO;
    if (memchr(o->via.str.ptr, '\0', o->via.str.size))
        return GV_EPROTO;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return 0;
}

static int decode_obj(const msgpack_object *o, struct cl_hp_report *r)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 8)
        return GV_EPROTO;
    const msgpack_object *a = o->via.array.ptr;
    if (a[0].type != MSGPACK_OBJECT_BIN || a[0].via.bin.size != sizeof(hp_magic) ||
        memcmp(a[0].via.bin.ptr, hp_magic, sizeof(hp_magic)) != 0)
        return GV_EPROTO;
    if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 != CL_HP_VERSION)
        return GV_EPROTO;
    if (get_str(&a[2], r->service, CL_HP_MAX_SERVICE, false) < 0 ||
        get_str(&a[3], r->address, CL_HP_MAX_ADDRESS, false) < 0 ||
        get_str(&a[5], r->reason, CL_HP_MAX_REASON, true) < 0 ||
        get_str(&a[6], r->checker, CL_HP_MAX_NAME, false) < 0)
        return GV_EPROTO;
    if (a[4].type != MSGPACK_OBJECT_BOOLEAN || a[7].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return GV_EPROTO;
    r->healthy = a[4].via.boolean;
    r->stamp = a[7].via.u64;
    return 0;
}

int cl_hp_decode(const uint8_t *p, size_t len, struct cl_hp_report *r)
{
    size_t end;
    /* skim first: msgpack-c would otherwise trust the counts it reads */
    if (p == NULL || len == 0 || len > 4096 || cl_wire_skim(p, len, &end) < 0 || end != len)
        return GV_EPROTO;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = GV_EPROTO;
    if (msgpack_unpack_next(&up, (const char *)p, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        off == len)
        rc = decode_obj(&up.data, r);
    msgpack_unpacked_destroy(&up);
    return rc;
}

int cl_hp_decode_first(const uint8_t *p, size_t len, size_t *used, struct cl_hp_report *r)
{
    size_t end;
    if (p == NULL || len == 0 || cl_wire_skim(p, len, &end) < 0)
        return GV_EPROTO;
    *used = end;
    return cl_hp_decode(p, end, r);
}

bool cl_hp_is_passive(const struct cl_hp_report *r)
{
    return !r->healthy && strcmp(r->reason, CL_HP_REASON_PASSIVE) == 0;
}

uint64_t cl_hp_passive_left(uint64_t stamp, uint64_t eject_for_ms, uint64_t now_unix_ms)
{
    uint64_t made = cl_hlc_unix_ms(stamp);
    uint64_t age = now_unix_ms > made ? now_unix_ms - made : 0;
    return age < eject_for_ms ? eject_for_ms - age : 0;
}

bool cl_hp_newer(const struct cl_hp_report *a, const struct cl_hp_report *b)
{
    if (a->stamp != b->stamp)
        return a->stamp > b->stamp;
    return strcmp(a->checker, b->checker) > 0;
}
