/* memlens._gdbshim: loaded into gdb (LD_PRELOAD), never imported by Python.
 *
 * gdb 13 writes a thread's extended register state (PTRACE_SETREGSET, NT_X86_XSTATE)
 * with a buffer of its own fixed size; a kernel whose XSAVE area is larger (CPUs with
 * AMX, Linux 5.16 and newer) refuses any other size with EFAULT ("Couldn't write
 * extended state status: Bad address"), halfway through an inferior call, and the
 * target's interrupted system call then fails with error 514. Answering gdb's
 * extended-state requests with EIO, as a kernel without the regset would, makes gdb
 * use PTRACE_GETFPREGS/SETFPREGS (x87 and SSE state, which the kernel takes at any
 * size). memlens only runs code in a thread blocked in a system call, where the vector
 * registers beyond SSE hold nothing the caller keeps (they are caller-saved in the
 * System V ABI), so nothing of the target's is lost. heap/attach/gdb_env.py decides
 * when this is needed (a probe on a throwaway process) and checks that it works.
 *
 * No Python symbols: gdb must load this without libpython's help.
 */
#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ptrace.h>
#include <sys/types.h>

#define MEMLENS_NT_X86_XSTATE 0x202

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

long ptrace(enum __ptrace_request request, ...) {
    va_list ap;
    va_start(ap, request);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);
    if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
        (long)addr == MEMLENS_NT_X86_XSTATE) {
        errno = EIO;
        return -1;
    }
    static ptrace_fn real = 0;
    if (!real) real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(request, pid, addr, data);
}
#else
/* Elsewhere gdb needs no help: an empty library. */
int memlens_gdbshim_unused;
#endif
