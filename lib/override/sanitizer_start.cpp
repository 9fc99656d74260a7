// sanitizer_start.cpp: see sanitizer_start.h. Compiled only into ASan builds
// (the file is empty otherwise).
//
// Why: ASan initialises itself from the program's .preinit_array, before any
// constructor. While it looks up the functions it intercepts, the dynamic
// linker reports each one it cannot find (some that glibc does not have) in a
// message it allocates with `malloc` — ours, when we are preloaded or linked
// into the program. Our code is instrumented, and instrumented code run at
// that moment crashes: ASan's shadow memory is not mapped yet. So until our
// constructor has run, the override entry points serve requests from a static
// buffer, with code ASan leaves alone. By then the runtime is up: the
// instrumented module constructor that precedes ours calls its init
// function, which returns at once when init is done. What lands here is
// little: 79 KB in a preloaded test program (the linker's messages, and the
// C++ runtime's emergency exception pool when its constructor runs first).
#include "sanitizer_start.h"

#if MI_ASAN

#include <string.h>

#include <cstdint>

#include "../../include/mimalloc.h"

namespace mi {

namespace {

constexpr size_t START_BUFFER_SIZE = 1024 * 1024;  // .bss: costs nothing unless used
constexpr size_t START_ALIGN = 16;                 // a size header of 16 bytes keeps blocks aligned as malloc's

alignas(START_ALIGN) char start_buffer[START_BUFFER_SIZE];
// Builtins, not std::atomic: its member functions are instrumented code.
size_t start_used = 0;
bool ready = false;

__attribute__((constructor(101))) MI_NO_SANITIZE void sanitizer_start_done() {
  __atomic_store_n(&ready, true, __ATOMIC_RELEASE);
}

}  // namespace

MI_NO_SANITIZE bool sanitizer_ready() noexcept { return __atomic_load_n(&ready, __ATOMIC_ACQUIRE); }

MI_NO_SANITIZE void* start_alloc(size_t size) noexcept {
  if (size > START_BUFFER_SIZE) return nullptr;
  const size_t need = START_ALIGN + ((size + START_ALIGN - 1) & ~(START_ALIGN - 1));
  const size_t at = __atomic_fetch_add(&start_used, need, __ATOMIC_RELAXED);
  if (at + need > START_BUFFER_SIZE) return nullptr;
  *reinterpret_cast<size_t*>(start_buffer + at) = size;
  return start_buffer + at + START_ALIGN;
}

MI_NO_SANITIZE bool start_owns(const void* p) noexcept {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t base = reinterpret_cast<uintptr_t>(start_buffer);
  return a >= base && a < base + START_BUFFER_SIZE;
}

MI_NO_SANITIZE size_t start_size(const void* p) noexcept {
  return *reinterpret_cast<const size_t*>(static_cast<const char*>(p) - START_ALIGN);
}

MI_NO_SANITIZE void* start_realloc(void* p, size_t newsize) noexcept {
  const size_t old = (p != nullptr && start_owns(p)) ? start_size(p) : 0;
  const size_t copy = (old < newsize) ? old : newsize;
  if (sanitizer_ready()) {
    void* q = mi_malloc(newsize);
    if (q != nullptr && copy > 0) memcpy(q, p, copy);
    return q;
  }
  // p is ours or null: a foreign pointer cannot exist before any allocator ran
  char* q = static_cast<char*>(start_alloc(newsize));
  if (q == nullptr) return nullptr;
  const volatile char* from = static_cast<const char*>(p);  // volatile: no memcpy call before the runtime is up
  for (size_t i = 0; i < copy; i++) q[i] = from[i];
  return q;
}

}  // namespace mi

#endif  // MI_ASAN
