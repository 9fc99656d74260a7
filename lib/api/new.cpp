// new.cpp: the C++ allocation forms (mi_new and family): on failure they call
// the installed std::new_handler and retry, and throw std::bad_alloc when
// there is none (the nothrow forms return NULL instead).
#include <errno.h>

#include <new>

#include "../common/messages.h"
#include "alloc_inline.h"
#include "api_internal.h"
#include "new_inline.h"

namespace mi {

bool new_handler_retry(bool nothrow) {
  std::new_handler h = std::get_new_handler();
  if (h == nullptr) {
    if (!nothrow) throw std::bad_alloc();
    return false;
  }
  h();  // may free memory, throw, or abort
  return true;
}

void* new_slow(size_t size, size_t alignment, bool nothrow) {
  for (;;) {
    if (!new_handler_retry(nothrow)) return nullptr;
    void* p = (alignment > 0) ? heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false)
                              : heap_malloc<false>(heap_get_default(), size);
    if (p != nullptr) return p;
  }
}

}  // namespace mi

using namespace mi;

extern "C" {

void* mi_new(size_t size) { return new_inline(size); }

void* mi_new_nothrow(size_t size) mi_attr_noexcept {
  void* p = heap_malloc<false>(heap_get_default(), size);
  if (MI_UNLIKELY(p == nullptr)) {
    try {
      p = new_slow(size, 0, true);
    } catch (...) {
      p = nullptr;
    }
  }
  return p;
}

void* mi_new_aligned(size_t size, size_t alignment) {
  void* p = heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false);
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, alignment, false);
  return p;
}

void* mi_new_aligned_nothrow(size_t size, size_t alignment) mi_attr_noexcept {
  void* p = heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false);
  if (MI_UNLIKELY(p == nullptr)) {
    try {
      p = new_slow(size, alignment, true);
    } catch (...) {
      p = nullptr;
    }
  }
  return p;
}

void* mi_new_n(size_t count, size_t size) {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) {
    error_message(EOVERFLOW, "allocation request is too large (%zu * %zu bytes)", count, size);
    new_handler_retry(false);  // throws when there is no handler
    return mi_new_n(count, size);
  }
  return mi_new(total);
}

void* mi_new_realloc(void* p, size_t newsize) {
  for (;;) {
    void* q = mi_realloc(p, newsize);
    if (MI_LIKELY(q != nullptr)) return q;
    new_handler_retry(false);
  }
}

void* mi_new_reallocn(void* p, size_t newcount, size_t size) {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(newcount, size, &total))) {
    error_message(EOVERFLOW, "allocation request is too large (%zu * %zu bytes)", newcount, size);
    new_handler_retry(false);
    return mi_new_reallocn(p, newcount, size);
  }
  return mi_new_realloc(p, total);
}

void* mi_heap_alloc_new(mi_heap_t* heap, size_t size) {
  for (;;) {
    void* p = heap_malloc<false>(heap, size);
    if (MI_LIKELY(p != nullptr)) return p;
    new_handler_retry(false);
  }
}

void* mi_heap_alloc_new_n(mi_heap_t* heap, size_t count, size_t size) {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) {
    error_message(EOVERFLOW, "allocation request is too large (%zu * %zu bytes)", count, size);
    new_handler_retry(false);
    return mi_heap_alloc_new_n(heap, count, size);
  }
  return mi_heap_alloc_new(heap, total);
}

}  // extern "C"
