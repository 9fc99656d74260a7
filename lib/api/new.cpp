// new.cpp: the C++ allocation forms (mi_new and family), with the C++ rules
// for failure:
//   - a request that can never be met (count * size overflows, a size beyond
//     ALLOC_SIZE_MAX, an alignment that is not a power of two) throws at once
//     (std::bad_array_new_length for a count, else std::bad_alloc), or the
//     nothrow forms return NULL: no new_handler can make it possible, and a
//     handler that returns would be called forever;
//   - a real shortage calls the installed std::new_handler and tries again
//     for as long as the handler returns; with none installed, it throws
//     std::bad_alloc (nothrow: returns NULL). A nothrow form whose handler
//     throws std::bad_alloc returns NULL (new_handler.cpp catches it).
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

// libstdc++'s std::get_new_handler(), std::__throw_bad_alloc() and
// std::__throw_bad_array_new_length() (GCC 11), by their mangled names, weakly.
extern "C" std::new_handler mi_std_get_new_handler() noexcept __asm__("_ZSt15get_new_handlerv") __attribute__((weak));
extern "C" [[noreturn]] void mi_std_throw_bad_alloc() __asm__("_ZSt17__throw_bad_allocv") __attribute__((weak));
extern "C" [[noreturn]] void mi_std_throw_bad_array_new_length() __asm__("_ZSt28__throw_bad_array_new_lengthv")
    __attribute__((weak));
// The library is compiled without exception handling of its own (but with
// unwind tables): exceptions thrown by a new_handler or by the functions
// above pass through our frames to the caller of mi_new or operator new.

#include "../common/messages.h"
#include "../heap/page.h"
#include "alloc_inline.h"
#include "api_internal.h"
#include "new_inline.h"

namespace mi {

namespace {

using throw_fn = void (*)();

// The libstdc++ function `name`: linked (weak), or loaded later with dlopen
// (a C++ plug-in of a C program).
template <class F>
F* std_function(F* linked, const char* name) {
  if (linked != nullptr) return linked;
  return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}

[[noreturn]] void no_cxx_runtime() {
  static const char msg[] =
      "mimalloc-numa: out of memory in mi_new and no C++ runtime to throw std::bad_alloc: aborting\n";
  os_write_stderr(msg, sizeof(msg) - 1);
  abort();
}

[[noreturn]] void throw_bad_alloc() {
  throw_fn f = std_function<void()>(&mi_std_throw_bad_alloc, "_ZSt17__throw_bad_allocv");
  if (f != nullptr) f();
  no_cxx_runtime();
}

// As `new T[n]` and std::allocator<T>::allocate(n) do for an n too large.
[[noreturn]] void throw_bad_array_new_length() {
  throw_fn f = std_function<void()>(&mi_std_throw_bad_array_new_length, "_ZSt28__throw_bad_array_new_lengthv");
  if (f != nullptr) f();
  throw_bad_alloc();  // a libstdc++ before GCC 11: its base class
}

std::new_handler current_new_handler() {
  using get_fn = std::new_handler();
  get_fn* get = std_function<get_fn>(&mi_std_get_new_handler, "_ZSt15get_new_handlerv");
  return (get != nullptr) ? get() : nullptr;
}

void* fail(bool nothrow) {
  if (!nothrow) throw_bad_alloc();
  return nullptr;
}

// Could this request ever be met? (else no handler is called)
bool new_request_possible(size_t size, size_t alignment) {
  return (alignment == 0 || is_power_of_two(alignment)) && alloc_request_possible(size, alignment);
}

// The new_handler loop for a request that failed: `alloc()` tries again.
// `shortage`: whether the failure was one of memory (not of the request).
// The first failure was reported; the retries are quiet (the same request).
template <class Alloc>
void* new_retry(bool shortage, bool nothrow, Alloc alloc) {
  if (!shortage) return fail(nothrow);
  for (;;) {
    std::new_handler h = current_new_handler();
    if (h == nullptr) return fail(nothrow);
    if (nothrow) {
      if (!new_handler_call_nothrow(h)) return nullptr;  // it threw std::bad_alloc
    } else {
      h();  // may free memory, throw, or abort
    }
    alloc_failures_quiet(true);
    void* p = alloc();
    alloc_failures_quiet(false);
    if (p != nullptr) return p;
  }
}

// The failure of a count * size request.
[[noreturn]] void throw_count_overflow(size_t count, size_t size) {
  alloc_impossible(count, size, 0);  // the error callback and verbose hear of it, as for mi_mallocn
  throw_bad_array_new_length();
}

}  // namespace

void* new_slow(size_t size, size_t alignment, bool nothrow) {
  return new_retry(new_request_possible(size, alignment), nothrow, [=] {
    return (alignment > 0) ? heap_malloc_aligned_at(heap_get_default(), size, alignment, 0, false)
                           : heap_malloc<false>(heap_get_default(), size);
  });
}

void* new_small_slow(size_t size, Heap* heap, Page* page) {
  void* p = heap_malloc_small_slow(size, heap, page);
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, 0, false);
  return p;
}

void* new_other_slow(size_t size, Heap* heap) {
  void* p = heap_malloc_slow(size, heap, false);
  if (MI_UNLIKELY(p == nullptr)) p = new_slow(size, 0, false);
  return p;
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
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) throw_count_overflow(count, size);
  return mi_new(total);
}

void* mi_new_realloc(void* p, size_t newsize) {
  void* q = mi_realloc(p, newsize);
  if (MI_LIKELY(q != nullptr)) return q;
  // a pointer that is not ours (EINVAL) is no shortage either
  const bool shortage = new_request_possible(newsize, 0) && errno == ENOMEM;
  return new_retry(shortage, false, [=] { return mi_realloc(p, newsize); });
}

void* mi_new_reallocn(void* p, size_t newcount, size_t size) {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(newcount, size, &total))) throw_count_overflow(newcount, size);
  return mi_new_realloc(p, total);
}

void* mi_heap_alloc_new(mi_heap_t* heap, size_t size) {
  void* p = heap_malloc<false>(heap, size);
  if (MI_LIKELY(p != nullptr)) return p;
  return new_retry(new_request_possible(size, 0), false, [=] { return heap_malloc<false>(heap, size); });
}

void* mi_heap_alloc_new_n(mi_heap_t* heap, size_t count, size_t size) {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) throw_count_overflow(count, size);
  return mi_heap_alloc_new(heap, total);
}

}  // extern "C"
