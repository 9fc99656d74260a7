// override.cpp: the standard allocation symbols (malloc, free, ..., operator
// new/delete in every form), so that LD_PRELOAD or linking with
// -lmimalloc-numa routes a whole program through us.
//
// Symbols only, no logic: each forwards to the inlined fast path of the API
// layer (no extra call), or to an mi_* function for the rarer forms.
//
// Sanitizer builds (tools/dev test's asan and tsan steps):
//   ASan: malloc, free, calloc, realloc and malloc_usable_size first check
//     whether the runtime is up yet (sanitizer_start.cpp).
//   TSan: nothing here is defined; TSan's own allocator serves malloc and
//     new, ours the mi_* functions. TSan sets a new thread up in its
//     pthread_create wrapper, and on the way calls pthread_getattr_np, which
//     allocates (realloc, malloc, free): instrumented code of ours reached
//     from there crashes (the thread has no TSan state yet), and nothing
//     tells us when a thread's state is ready. The cross-thread tests that
//     run under TSan call the mi_* functions (tests/stress: STRESS_MI_ONLY).
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include <atomic>
#include <new>

#include "../api/alloc_inline.h"
#include "../api/api_internal.h"
#include "../api/glibc_introspection.h"
#include "../api/new_inline.h"
#include "../common/sanitizer.h"
#include "sanitizer_start.h"

#define MI_OVERRIDE __attribute__((visibility("default")))

#if !MI_TSAN  // (a TSan build defines none of them: above)

using namespace mi;

extern "C" {

#if MI_ASAN
// A sanitizer build: the entry points that a sanitizer runtime's start-up
// reaches begin in code it does not instrument (sanitizer_start.cpp).
MI_OVERRIDE MI_NO_SANITIZE void* malloc(size_t size) noexcept {
  if (MI_UNLIKELY(!sanitizer_ready())) return start_alloc(size);
  return mi_malloc(size);
}
MI_OVERRIDE MI_NO_SANITIZE void free(void* p) noexcept {
  if (MI_UNLIKELY(!sanitizer_ready() || start_owns(p))) return;  // before: p is null or from the buffer
  mi_free(p);
}
MI_OVERRIDE MI_NO_SANITIZE void* calloc(size_t count, size_t size) noexcept {
  size_t total;
  if (MI_UNLIKELY(!sanitizer_ready())) return mul_overflow(count, size, &total) ? nullptr : start_alloc(total);
  return mi_calloc(count, size);
}
MI_OVERRIDE MI_NO_SANITIZE void* realloc(void* p, size_t newsize) noexcept {
  if (MI_UNLIKELY(!sanitizer_ready() || start_owns(p))) return start_realloc(p, newsize);
  return mi_realloc(p, newsize);
}
MI_OVERRIDE MI_NO_SANITIZE size_t malloc_usable_size(void* p) noexcept {
  if (MI_UNLIKELY(start_owns(p))) return start_size(p);
  return mi_usable_size(p);
}
MI_OVERRIDE MI_NO_SANITIZE void* __libc_malloc(size_t size) noexcept { return malloc(size); }
MI_OVERRIDE MI_NO_SANITIZE void __libc_free(void* p) noexcept { free(p); }
MI_OVERRIDE MI_NO_SANITIZE void* __libc_calloc(size_t count, size_t size) noexcept { return calloc(count, size); }
MI_OVERRIDE MI_NO_SANITIZE void* __libc_realloc(void* p, size_t newsize) noexcept { return realloc(p, newsize); }
// ASan's own strdup and strndup allocate with ASan's allocator, and the
// program frees the copy with our free (to us a foreign pointer, to ASan's
// leak check a leak): in an ASan build they are ours too.
MI_OVERRIDE char* strdup(const char* s) noexcept { return mi_strdup(s); }
MI_OVERRIDE char* __strdup(const char* s) noexcept { return mi_strdup(s); }
MI_OVERRIDE char* strndup(const char* s, size_t n) noexcept { return mi_strndup(s, n); }
MI_OVERRIDE char* __strndup(const char* s, size_t n) noexcept { return mi_strndup(s, n); }
#else
MI_OVERRIDE void* malloc(size_t size) noexcept { return heap_malloc<false>(heap_get_default(), size); }
MI_OVERRIDE void free(void* p) noexcept { free_inline(p); }
MI_OVERRIDE void* calloc(size_t count, size_t size) noexcept { return mi_calloc(count, size); }
MI_OVERRIDE void* realloc(void* p, size_t newsize) noexcept { return mi_realloc(p, newsize); }
MI_OVERRIDE size_t malloc_usable_size(void* p) noexcept { return usable_size_of(p); }
// glibc's internal names, which some programs and libraries call directly.
MI_OVERRIDE void* __libc_malloc(size_t size) noexcept { return heap_malloc<false>(heap_get_default(), size); }
MI_OVERRIDE void __libc_free(void* p) noexcept { free_inline(p); }
MI_OVERRIDE void* __libc_calloc(size_t count, size_t size) noexcept { return mi_calloc(count, size); }
MI_OVERRIDE void* __libc_realloc(void* p, size_t newsize) noexcept { return mi_realloc(p, newsize); }
#endif
MI_OVERRIDE void* reallocarray(void* p, size_t count, size_t size) noexcept { return mi_reallocarray(p, count, size); }
MI_OVERRIDE int posix_memalign(void** p, size_t alignment, size_t size) noexcept {
  return mi_posix_memalign(p, alignment, size);
}
MI_OVERRIDE void* aligned_alloc(size_t alignment, size_t size) noexcept { return mi_aligned_alloc(alignment, size); }
MI_OVERRIDE void* memalign(size_t alignment, size_t size) noexcept { return mi_memalign(alignment, size); }
MI_OVERRIDE void* valloc(size_t size) noexcept { return mi_valloc(size); }
MI_OVERRIDE void* pvalloc(size_t size) noexcept { return mi_pvalloc(size); }
MI_OVERRIDE void cfree(void* p) noexcept { mi_cfree(p); }

// glibc's internal names (the others above).
MI_OVERRIDE void* __libc_memalign(size_t alignment, size_t size) noexcept { return mi_memalign(alignment, size); }
MI_OVERRIDE void* __libc_valloc(size_t size) noexcept { return mi_valloc(size); }
MI_OVERRIDE void* __libc_pvalloc(size_t size) noexcept { return mi_pvalloc(size); }
MI_OVERRIDE int __posix_memalign(void** p, size_t alignment, size_t size) noexcept {
  return mi_posix_memalign(p, alignment, size);
}

// glibc's malloc_trim returns memory to the OS: ours does the same.
MI_OVERRIDE int malloc_trim(size_t pad) noexcept { return glibc_malloc_trim(pad); }

// glibc's introspection, from our own figures (api/glibc_introspection.h):
// without these, programs and monitoring agents read glibc's empty arenas.
MI_OVERRIDE struct mallinfo2 mallinfo2(void) noexcept { return glibc_mallinfo2(); }
MI_OVERRIDE struct mallinfo mallinfo(void) noexcept { return glibc_mallinfo(); }
MI_OVERRIDE void malloc_stats(void) noexcept { glibc_malloc_stats(); }
MI_OVERRIDE int malloc_info(int options, FILE* fp) noexcept { return glibc_malloc_info(options, fp); }
MI_OVERRIDE int mallopt(int param, int value) noexcept { return glibc_mallopt(param, value); }

}  // extern "C"

// ---------------------------------------------------------------------------
// C++ operators
// ---------------------------------------------------------------------------
MI_OVERRIDE void* operator new(size_t n) { return new_inline(n); }
MI_OVERRIDE void* operator new[](size_t n) { return new_inline(n); }
MI_OVERRIDE void* operator new(size_t n, const std::nothrow_t&) noexcept { return mi_new_nothrow(n); }
MI_OVERRIDE void* operator new[](size_t n, const std::nothrow_t&) noexcept { return mi_new_nothrow(n); }

MI_OVERRIDE void operator delete(void* p) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete[](void* p) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete(void* p, size_t) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete[](void* p, size_t) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete(void* p, const std::nothrow_t&) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete[](void* p, const std::nothrow_t&) noexcept { free_inline(p); }

MI_OVERRIDE void* operator new(size_t n, std::align_val_t al) { return mi_new_aligned(n, static_cast<size_t>(al)); }
MI_OVERRIDE void* operator new[](size_t n, std::align_val_t al) { return mi_new_aligned(n, static_cast<size_t>(al)); }
MI_OVERRIDE void* operator new(size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return mi_new_aligned_nothrow(n, static_cast<size_t>(al));
}
MI_OVERRIDE void* operator new[](size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return mi_new_aligned_nothrow(n, static_cast<size_t>(al));
}
MI_OVERRIDE void operator delete(void* p, std::align_val_t) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete[](void* p, std::align_val_t) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete(void* p, size_t, std::align_val_t) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete[](void* p, size_t, std::align_val_t) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { free_inline(p); }
MI_OVERRIDE void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { free_inline(p); }

#endif  // !MI_TSAN
