// new_inline.h: the operator new fast path (shared by mi_new and the
// override of operator new).
#pragma once

#include <new>

#include "alloc_inline.h"

namespace mi {

// After a failed allocation of `size` bytes (at `alignment`, 0 for none):
// the C++ rules of new.cpp (throw or return NULL at once for a request that
// can never be met; the std::new_handler loop for a shortage).
void* new_slow(size_t size, size_t alignment, bool nothrow);

// Calls new_handler h; false if it threw std::bad_alloc (new_handler.cpp,
// the one file compiled with exception handling).
bool new_handler_call_nothrow(std::new_handler h);

// operator new's slow paths (new.cpp): heap_malloc_small_slow or
// heap_malloc_slow, then new_slow when they return NULL.
void* new_small_slow(size_t size, Heap* heap, Page* page);
void* new_other_slow(size_t size, Heap* heap);

// Every case but the pop is a tail call, so the pop needs no stack frame (it
// had one, for the size new_slow needs after heap_malloc_slow returns: two
// instructions more than malloc's).
MI_ALWAYS_INLINE void* new_inline(size_t size) {
  Heap* heap = heap_get_default();
  if (MI_LIKELY(size <= SMALL_SIZE_MAX)) {
    Page* page = heap_direct_page(heap, size);
    if (MI_LIKELY(page->free != nullptr)) return page_free_pop(page, false);
    return new_small_slow(size, heap, page);
  }
  return new_other_slow(size, heap);
}

}  // namespace mi
