/* crash.c - the stack of a thread that dies of a fatal signal, on stderr;
 * see crash.h. The handler uses only write(), backtrace() (primed at
 * install: its first call loads libgcc, which allocates) and
 * backtrace_symbols_fd(), which writes without allocating. */
#include "common/crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define GV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GV_ASAN 1
#endif
#endif

#define FRAMES_MAX 64
#define ALT_STACK  (64 * 1024) /* a stack overflow still gets its report */

#ifndef GV_ASAN
static const char *prog = "grapevine";

static void put(const char *s)
{
    ssize_t rv = write(STDERR_FILENO, s, strlen(s));
    (void)rv;
}

/* v in base (10 or 16) into out, no allocation. */
static const char *num(uintptr_t v, unsigned base, char out[32])
{
    char *p = out + 31;
    *p = '\0';
    do {
        *--p = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    if (base == 16) {
        *--p = 'x';
        *--p = '0';
    }
    return p;
}

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    default:
        return "a fatal signal";
    }
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    char a[32], b[32];
    void *frames[FRAMES_MAX];
    (void)uc;
    put(prog);
    put(": fatal ");
    put(sig_name(sig));
    if (si->si_code <= 0) { /* sent (kill, raise, abort): no fault address */
        put(" sent by pid ");
        put(num((uintptr_t)si->si_pid, 10, a));
    } else {
        put(" at address ");
        put(num((uintptr_t)si->si_addr, 16, a));
    }
    put(" in thread ");
    put(num((uintptr_t)syscall(SYS_gettid), 10, b));
    put("; stack (addr2line -f -e BINARY OFFSET names static functions):\n");
    int n = backtrace(frames, FRAMES_MAX);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    /* SA_RESETHAND restored the default: the signal kills as it would have */
    raise(sig);
}

#endif

void gv_crash_report_install(const char *program)
{
#ifndef GV_ASAN
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    void *prime[1];
    stack_t ss = {.ss_sp = malloc(ALT_STACK), .ss_size = ALT_STACK};
    struct sigaction sa;
    if (program != NULL)
        prog = program;
    backtrace(prime, 1);
    if (ss.ss_sp != NULL && sigaltstack(&ss, NULL) != 0)
        free(ss.ss_sp);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
#else
    (void)program;
#endif
}
