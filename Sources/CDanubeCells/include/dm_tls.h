// How the hot path's thread-locals are declared.
#ifndef DM_TLS_H
#define DM_TLS_H

/// A thread-local read on every metric update. The initial-exec model makes each read one load at a fixed offset
/// from the thread pointer. The default (general-dynamic, because the package may be built as a shared library)
/// emits a call to `__tls_get_addr` that the linker only later rewrites into such a load: the compiler has by then
/// kept every value live across the "call" in callee-saved registers, so each inlined update paid a stack frame
/// (a histogram observation: a fifth of its instructions). Initial-exec TLS is what glibc's own and jemalloc's
/// thread-locals use; a library loaded with dlopen() takes it from glibc's reserve for this.
#define DM_HOT_THREAD_LOCAL __attribute__((tls_model("initial-exec"))) _Thread_local

#endif
