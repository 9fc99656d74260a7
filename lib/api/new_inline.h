// new_inline.h: the operator new fast path (shared by mi_new and the
// override of operator new).
#pragma once

#include "alloc_inline.h"

namespace mi {

// Calls the std::new_handler and retries until memory comes or the handler
// is gone (then throws std::bad_alloc, or returns nullptr when nothrow).
void* new_slow(size_t size, size_t alignment, bool nothrow);
// One round of the new_handler protocol: false if there is no handler (and
// nothrow); throws std::bad_alloc when there is none and !nothrow.
bool new_handler_retry(bool nothrow);

MI_ALWAYS_INLINE void* new_inline(size_t size) {
  void* p = heap_malloc<false>(heap_get_default(), size);
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, 0, false);
  return p;
}

}  // namespace mi
