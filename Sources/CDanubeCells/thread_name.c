// The OS-level name of the calling thread (what top -H, ps -L and profilers show). pthread_setname_np is a GNU
// extension the Swift Glibc module does not export, hence this shim.
#define _GNU_SOURCE
#include <pthread.h>
#include "CDanubeCells.h"

void dm_set_thread_name(const char *name) {
    (void)pthread_setname_np(pthread_self(), name);
}
