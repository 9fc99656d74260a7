// new.cpp: the C++ allocation forms (mi_new and family): on failure they call
// the installed std::new_handler and retry, and throw std::bad_alloc when
// there is none (the nothrow forms return NULL instead).
//
// The library does not depend on libstdc++: a C program (git, sqlite3, the
// PostgreSQL server) then starts as fast as with glibc's malloc (measured by
// the startup benchmark: loading libstdc++, libm and libgcc_s cost ~0.5 ms).
// What C++ support needs from libstdc++ is referenced weakly below: in a C++
// program these resolve to its libstdc++; in a C program nothing can install
// a new_handler or catch std::bad_alloc, and a failing mi_new aborts with a
// message, as mimalloc built as C does.
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

#include <new>

#include "../os/os.h"

// libstdc++'s std::get_new_handler() and std::__throw_bad_alloc(), by their
// mangled names, weakly.
extern "C" std::new_handler mi_std_get_new_handler() noexcept __asm__("_ZSt15get_new_handlerv") __attribute__((weak));
extern "C" [[noreturn]] void mi_std_throw_bad_alloc() __asm__("_ZSt17__throw_bad_allocv") __attribute__((weak));
// The library is compiled without exception handling of its own: exceptions
// thrown by a new_handler or by __throw_bad_alloc pass through our frames
// (they have unwind tables). So a nothrow form whose new_handler throws lets
// the exception out (std::terminate, as it is noexcept) where libstdc++ would
// catch it and return NULL: only with a throwing handler and no memory left.

#include "../common/messages.h"
#include "alloc_inline.h"
#include "api_internal.h"
#include "new_inline.h"

namespace mi {

namespace {

using throw_fn = void (*)();

[[noreturn]] void throw_bad_alloc() {
  if (&mi_std_throw_bad_alloc != nullptr) mi_std_throw_bad_alloc();
  // libstdc++ may have come later, with dlopen (a C++ plug-in of a C program)
  throw_fn late = reinterpret_cast<throw_fn>(dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv"));
  if (late != nullptr) {
    late();
    __builtin_unreachable();
  }
  static const char msg[] = "mimalloc-numa: out of memory in mi_new and no C++ runtime to throw std::bad_alloc: aborting\n";
  os_write_stderr(msg, sizeof(msg) - 1);
  abort();
}

}  // namespace

bool new_handler_retry(bool nothrow) {
  std::new_handler h = nullptr;
  if (&mi_std_get_new_handler != nullptr) {
    h = mi_std_get_new_handler();
  } else {
    using get_fn = std::new_handler (*)();
    get_fn late = reinterpret_cast<get_fn>(dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv"));
    if (late != nullptr) h = late();
  }
  if (h == nullptr) {
    if (!nothrow) throw_bad_alloc();
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
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, 0, true);
  return p;
}

void* mi_new_aligned(size_t size, size_t alignment) {
  void* p = heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false);
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, alignment, false);
  return p;
}

void* mi_new_aligned_nothrow(size_t size, size_t alignment) mi_attr_noexcept {
  void* p = heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false);
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, alignment, true);
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
