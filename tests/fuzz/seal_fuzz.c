/* seal_fuzz.c - libFuzzer target for the gossip receive path: unsealing,
 * the key-file decoder and the transport frame decoder.
 *
 * The first input byte picks what the rest is fed to:
 *   0  cl_open() with a fixed two-key ring: must never crash, and a forgery
 *      must never open;
 *   1  a seal/open round trip of the rest, then one bit flipped at a position
 *      the input chooses: the copy must open intact, the flipped one not;
 *   2  cl_key_parse(): a key that parses must encode back to the same text;
 *   3  cl_nng_frame_decode(): a frame that decodes must encode back the same.
 * An invariant broken aborts, which libFuzzer reports as a crash. */
#include "cluster/nng_transport.h"
#include "cluster/seal.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000000ull

static struct cl_keyring *ring;
static uint64_t clock_ms = NOW;

static void check(int ok)
{
    if (!ok)
        abort();
}

static void setup(void)
{
    uint8_t k1[CL_KEY_LEN], k2[CL_KEY_LEN];

    if (ring)
        return;
    memset(k1, 0x11, sizeof(k1));
    memset(k2, 0x22, sizeof(k2));
    check(cl_keyring_new(k1, &ring) == 0);
    check(cl_keyring_install(ring, k2) == 0);
}

static void fuzz_open(const uint8_t *p, size_t n)
{
    static uint8_t out[CL_NNG_MAX_WIRE];
    const char *from;
    const uint8_t *payload;
    size_t len = 0, flen, plen;
    int rc = cl_open_at(ring, NOW, p, n, out, sizeof(out), &len);

    /* Without the key nothing can forge a tag: any success is a bug. */
    check(rc != 0);
    check(rc == GV_EPROTO || rc == GV_EINVAL || rc == -ENOBUFS);
    (void)cl_nng_frame_decode(p, n, &from, &flen, &payload, &plen);
}

static void fuzz_round_trip(const uint8_t *p, size_t n)
{
    static uint8_t sealed[CL_MAX_MESSAGE + CL_SEAL_OVERHEAD], flipped[sizeof(sealed)];
    static uint8_t out[CL_MAX_MESSAGE];
    size_t slen = 0, olen = 0, pos;
    uint16_t where;

    if (n < 2)
        return;
    memcpy(&where, p, 2);
    p += 2;
    n -= 2;
    if (n > CL_MAX_MESSAGE)
        n = CL_MAX_MESSAGE;
    /* The clock moves on so the replay horizon never reaches fresh messages. */
    clock_ms++;
    check(cl_seal_at(ring, clock_ms, p, n, sealed, sizeof(sealed), &slen) == 0);
    check(slen == n + CL_SEAL_OVERHEAD);
    pos = where % (slen * 8);
    memcpy(flipped, sealed, slen);
    flipped[pos / 8] ^= (uint8_t)(1u << (pos % 8));
    check(cl_open_at(ring, clock_ms, flipped, slen, out, sizeof(out), &olen) != 0);
    check(cl_open_at(ring, clock_ms, sealed, slen, out, sizeof(out), &olen) == 0);
    check(olen == n && (n == 0 || memcmp(out, p, n) == 0));
    check(cl_open_at(ring, clock_ms, sealed, slen, out, sizeof(out), &olen) == GV_EEXIST);
}

static void fuzz_key(const uint8_t *p, size_t n)
{
    uint8_t key[CL_KEY_LEN];
    char text[CL_KEY_B64_LEN + 1], err[128];
    size_t a = 0, b = n;

    if (cl_key_parse((const char *)p, n, key, err, sizeof(err)) != 0)
        return;
    cl_key_encode(key, text);
    while (a < b && strchr(" \t\r\n", p[a]) && p[a])
        a++;
    while (b > a && strchr(" \t\r\n", p[b - 1]) && p[b - 1])
        b--;
    check(b - a == CL_KEY_B64_LEN && memcmp(p + a, text, CL_KEY_B64_LEN) == 0);
}

static void fuzz_frame(const uint8_t *p, size_t n)
{
    static uint8_t again[CL_NNG_MAX_FRAME];
    char from[CL_NNG_MAX_ADDR + 1];
    const char *f;
    const uint8_t *payload;
    size_t flen, plen;
    int len;

    if (cl_nng_frame_decode(p, n, &f, &flen, &payload, &plen) != 0)
        return;
    check(flen <= CL_NNG_MAX_ADDR && plen <= CL_MAX_MESSAGE);
    check(f >= (const char *)p && payload + plen == p + n);
    memcpy(from, f, flen);
    from[flen] = '\0';
    len = cl_nng_frame_encode(from, payload, plen, again, sizeof(again));
    check(len >= 0 && (size_t)len == n && memcmp(again, p, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    switch (data[0] & 3) {
    case 0:
        fuzz_open(data + 1, size - 1);
        break;
    case 1:
        fuzz_round_trip(data + 1, size - 1);
        break;
    case 2:
        fuzz_key(data + 1, size - 1);
        break;
    default:
        fuzz_frame(data + 1, size - 1);
        break;
    }
    return 0;
}
