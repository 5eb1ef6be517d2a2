/* Memory the kernel fills through io_uring is invisible to valgrind, which
 * would then call every byte read that way uninitialised. Mark it defined
 * once the read has completed; a no-op outside valgrind (or without its
 * headers). */
#ifndef IC_COMMON_VALGRIND_H
#define IC_COMMON_VALGRIND_H

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define ic_mem_defined(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#else
#define ic_mem_defined(p, n) ((void)(p), (void)(n))
#endif

/* Under valgrind, which does not know every system call (openat2: it
 * warns and fails it with ENOSYS); false outside it. */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ic_under_valgrind() (RUNNING_ON_VALGRIND != 0)
#else
#define ic_under_valgrind() false
#endif

#endif
