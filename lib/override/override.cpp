// override.cpp: the standard allocation symbols (malloc, free, ..., operator
// new/delete in every form), so that LD_PRELOAD or linking with
// -lmimalloc-numa routes a whole program through us.
//
// Symbols only, no logic: each forwards to the inlined fast path of the API
// layer (no extra call), or to an mi_* function for the rarer forms.
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include <atomic>
#include <new>

#include "../api/alloc_inline.h"
#include "../api/api_internal.h"
#include "../api/glibc_introspection.h"
#include "../api/new_inline.h"

#define MI_OVERRIDE __attribute__((visibility("default")))

using namespace mi;

extern "C" {

MI_OVERRIDE void* malloc(size_t size) noexcept { return heap_malloc<false>(heap_get_default(), size); }
MI_OVERRIDE void free(void* p) noexcept { free_inline(p); }
MI_OVERRIDE void* calloc(size_t count, size_t size) noexcept { return mi_calloc(count, size); }
MI_OVERRIDE void* realloc(void* p, size_t newsize) noexcept { return mi_realloc(p, newsize); }
MI_OVERRIDE void* reallocarray(void* p, size_t count, size_t size) noexcept { return mi_reallocarray(p, count, size); }
MI_OVERRIDE int posix_memalign(void** p, size_t alignment, size_t size) noexcept { return mi_posix_memalign(p, alignment, size); }
MI_OVERRIDE void* aligned_alloc(size_t alignment, size_t size) noexcept { return mi_aligned_alloc(alignment, size); }
MI_OVERRIDE void* memalign(size_t alignment, size_t size) noexcept { return mi_memalign(alignment, size); }
MI_OVERRIDE void* valloc(size_t size) noexcept { return mi_valloc(size); }
MI_OVERRIDE void* pvalloc(size_t size) noexcept { return mi_pvalloc(size); }
MI_OVERRIDE size_t malloc_usable_size(void* p) noexcept { return usable_size_of(p); }
MI_OVERRIDE void cfree(void* p) noexcept { mi_cfree(p); }

// glibc's internal names, which some programs and libraries call directly.
MI_OVERRIDE void* __libc_malloc(size_t size) noexcept { return heap_malloc<false>(heap_get_default(), size); }
MI_OVERRIDE void __libc_free(void* p) noexcept { free_inline(p); }
MI_OVERRIDE void* __libc_calloc(size_t count, size_t size) noexcept { return mi_calloc(count, size); }
MI_OVERRIDE void* __libc_realloc(void* p, size_t newsize) noexcept { return mi_realloc(p, newsize); }
MI_OVERRIDE void* __libc_memalign(size_t alignment, size_t size) noexcept { return mi_memalign(alignment, size); }
MI_OVERRIDE void* __libc_valloc(size_t size) noexcept { return mi_valloc(size); }
MI_OVERRIDE void* __libc_pvalloc(size_t size) noexcept { return mi_pvalloc(size); }
MI_OVERRIDE int __posix_memalign(void** p, size_t alignment, size_t size) noexcept { return mi_posix_memalign(p, alignment, size); }

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
