/* ThreadSanitizer annotations for what its runtime cannot see; no-ops in
 * other builds. Clang 14's TSan does not intercept
 * pthread_rwlock_clockwrlock, so a lock taken that way is announced by
 * hand: without it every access made under it looks unprotected. */
#ifndef IC_COMMON_TSAN_H
#define IC_COMMON_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define IC_TSAN_ON 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IC_TSAN_ON 1
#endif
#endif

#ifdef IC_TSAN_ON
#include <sanitizer/tsan_interface.h>
/* Around a blocking write lock of l that may fail (rc != 0). */
#define ic_tsan_pre_wrlock(l) __tsan_mutex_pre_lock((l), __tsan_mutex_try_lock)
#define ic_tsan_post_wrlock(l, rc)                                                            \
	__tsan_mutex_post_lock((l), __tsan_mutex_try_lock |                                 \
					    ((rc) ? __tsan_mutex_try_lock_failed : 0), 0)
/* Around a read that races with a writer by design (a seqlock's copy,
 * validated afterwards): the runtime's dynamic annotations. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define ic_tsan_ignore_reads_begin() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define ic_tsan_ignore_reads_end() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define ic_tsan_pre_wrlock(l) ((void)(l))
#define ic_tsan_post_wrlock(l, rc) ((void)(l), (void)(rc))
#define ic_tsan_ignore_reads_begin() ((void)0)
#define ic_tsan_ignore_reads_end() ((void)0)
#endif

#endif
