/* regex.c - bounded-cost route regexes over PCRE2; see regex.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "gateway/regex.h"
#include "common/err.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MATCH_LIMIT 100000 /* backtracking steps before a match gives up */
#define DEPTH_LIMIT 1000
#define HEAP_LIMIT  1024 /* KiB */

struct gw_regex {
    pcre2_code *code;
    pcre2_match_context *mctx;
};

/* Each thread's match data, made once (one pair of offsets is all we ask). */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void md_init(void)
{
    pthread_key_create(&md_key, md_free);
}

static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&md_once, md_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md == NULL && (md = pcre2_match_data_create(1, NULL)) != NULL)
        pthread_setspecific(md_key, md);
    return md;
}

/* The compiled size, code and JIT together. */
static size_t compiled_size(const pcre2_code *code)
{
    size_t size = 0, jit = 0;
    pcre2_pattern_info(code, PCRE2_INFO_SIZE, &size);
    if (pcre2_pattern_info(code, PCRE2_INFO_JITSIZE, &jit) != 0)
        jit = 0;
    return size + jit;
}

static int compile_code(const char *pattern, pcre2_code **out, char *why, size_t n)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
    if (cctx == NULL)
        return GV_ENOMEM;
    pcre2_set_max_pattern_length(cctx, GW_REGEX_MAX_PATTERN);
    pcre2_set_parens_nest_limit(cctx, 32);
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                         PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY, &errcode,
                         &erroff, cctx);
    pcre2_compile_context_free(cctx);
    if (*out == NULL) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        snprintf(why, n, "%s at offset %zu", (const char *)msg, (size_t)erroff);
        return errcode == PCRE2_ERROR_NOMEMORY ? GV_ENOMEM : GV_EINVAL;
    }
    return 0;
}

int gw_regex_compile(const char *pattern, struct gw_regex **out, char *why, size_t n)
{
    struct gw_regex *re = calloc(1, sizeof(*re));
    int rv;
    if (re == NULL)
        return GV_ENOMEM;
    if (strlen(pattern) > GW_REGEX_MAX_PATTERN) {
        snprintf(why, n, "longer than %d bytes", GW_REGEX_MAX_PATTERN);
        rv = GV_EINVAL;
        goto fail;
    }
    if ((rv = compile_code(pattern, &re->code, why, n)) != 0)
        goto fail;
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* the interpreter serves without JIT */
    if (compiled_size(re->code) > GW_REGEX_MAX_COMPILED) {
        snprintf(why, n, "too costly: compiles to %zu KiB (at most %d)",
                 compiled_size(re->code) / 1024, GW_REGEX_MAX_COMPILED / 1024);
        rv = GV_EINVAL;
        goto fail;
    }
    if ((re->mctx = pcre2_match_context_create(NULL)) == NULL) {
        rv = GV_ENOMEM;
        goto fail;
    }
    pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, DEPTH_LIMIT);
    pcre2_set_heap_limit(re->mctx, HEAP_LIMIT);
    *out = re;
    return 0;
fail:
    gw_regex_free(re);
    return rv;
}

bool gw_regex_match(const struct gw_regex *re, const char *s, size_t len)
{
    pcre2_match_data *md = thread_match_data();
    if (md == NULL)
        return false;
    return pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, re->mctx) >= 0;
}

void gw_regex_free(struct gw_regex *re)
{
    if (re == NULL)
        return;
    pcre2_code_free(re->code);
    pcre2_match_context_free(re->mctx);
    free(re);
}
