/* test.h - the minimal unit-test harness: CHECK* macros record failures with
 * file:line and carry on; TEST_MAIN runs the listed cases and prints one
 * closing line "N passed, N failed". Exit status is non-zero on any failure. */
#ifndef GV_TESTS_TEST_H
#define GV_TESTS_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures_;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
            test_failures_++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,    \
                    a_, #b, b_);                                                                   \
            test_failures_++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,      \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                       \
            test_failures_++;                                                                      \
        }                                                                                          \
    } while (0)

struct test_case_ {
    const char *name;
    void (*fn)(void);
};

#define TEST_MAIN(...)                                                                             \
    int main(void)                                                                                 \
    {                                                                                              \
        const struct test_case_ cases[] = {__VA_ARGS__};                                           \
        int passed = 0, failed = 0;                                                                \
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {                            \
            int before = test_failures_;                                                           \
            cases[i].fn();                                                                         \
            if (test_failures_ == before) {                                                        \
                passed++;                                                                          \
                printf("ok   %s\n", cases[i].name);                                                \
            } else {                                                                               \
                failed++;                                                                          \
                printf("FAIL %s\n", cases[i].name);                                                \
            }                                                                                      \
        }                                                                                          \
        printf("%d passed, %d failed\n", passed, failed);                                          \
        return failed ? 1 : 0;                                                                     \
    }

#define TEST(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }

#endif
