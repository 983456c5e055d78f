/* trace_test.c - W3C traceparent: continued when valid, a new trace
 * otherwise, a new span id per hop. */
#include "gateway/trace.h"
#include "test.h"

#include <string.h>

#define TP  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TID "4bf92f3577b34da6a3ce929d0e0e4736"

static bool fresh(const struct gw_trace *t)
{
    return !t->continued && strlen(t->trace_id) == 32 && strcmp(t->trace_id, TID) != 0 &&
           t->flags == 1;
}

static void test_continue(void)
{
    struct gw_trace t;
    char out[GW_TRACEPARENT_LEN + 1];
    gw_trace_begin(&t, TP, strlen(TP));
    CHECK(t.continued);
    CHECK_STR(t.trace_id, TID);
    CHECK_STR(t.parent_id, "00f067aa0ba902b7");
    CHECK(t.flags == 1);
    CHECK(strlen(t.span_id) == 16 && strcmp(t.span_id, "00f067aa0ba902b7") != 0);
    gw_trace_header(&t, out);
    CHECK(strncmp(out, "00-" TID "-", 36) == 0);
    CHECK(memcmp(out + 36, t.span_id, 16) == 0 && strcmp(out + 52, "-01") == 0);
    /* a later version: its first 55 bytes, more after a '-' */
    const char *v1 = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
    gw_trace_begin(&t, v1, strlen(v1));
    CHECK(t.continued && t.flags == 0);
    struct gw_trace u;
    gw_trace_begin(&u, TP, strlen(TP));
    CHECK(strcmp(u.span_id, t.span_id) != 0); /* every hop its own span */
}

static void test_restart(void)
{
    static const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* 00 + more */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper case */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  /* flags */
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* later, no '-' */
    };
    struct gw_trace t;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_trace_begin(&t, bad[i], strlen(bad[i]));
        CHECK(fresh(&t));
    }
    gw_trace_begin(&t, NULL, 0);
    CHECK(fresh(&t) && strlen(t.span_id) == 16 && t.parent_id[0] == '\0');
}

TEST_MAIN(TEST(test_continue), TEST(test_restart))
