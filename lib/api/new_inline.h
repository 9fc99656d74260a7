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

MI_ALWAYS_INLINE void* new_inline(size_t size) {
  void* p = heap_malloc<false>(heap_get_default(), size);
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, 0, false);
  return p;
}

}  // namespace mi
