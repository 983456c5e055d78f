/* crash.h - a process that dies of a fatal signal says where, first.
 *
 * A node that crashes in the field or in a CI run leaves, without a core
 * dump, nothing but "exited with SIGSEGV". gv_crash_report_install prints the
 * signal, the fault address and the thread's stack to stderr before the
 * process dies as it would have (same signal, same core). Symbols of
 * static functions print as binary+offset: `addr2line -f -e grapevine
 * 0xOFFSET` names them with the binary of the same build.
 *
 * Not installed under AddressSanitizer, whose own report says more.
 */
#ifndef GV_COMMON_CRASH_H
#define GV_COMMON_CRASH_H

/* Installs the report for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT (once,
 * from the main thread, before other threads start). */
void gv_crash_report_install(const char *program);

#endif
