// redirect.cpp: mi_is_redirected(), whether the process's malloc is ours.
//
// Not in override/override.cpp, which only defines the standard symbols:
// builds without it (the API fuzzer's, which leaves malloc to ASan) still
// ask, and get "no".
#include <stdlib.h>

#include <atomic>

#include "../../include/mimalloc.h"

extern "C" bool mi_is_redirected(void) mi_attr_noexcept {
  // Whether `malloc`, as the dynamic linker resolved it for everyone, is ours
  // (preloaded or linked ahead of libc; not when we were loaded late, with
  // dlopen). Asked once, by calling it: comparing its address with ours is
  // not enough, as a non-PIE executable that takes malloc's address (Debian's
  // python3) makes its own PLT entry the address of malloc for the whole
  // process, and that comparison said "not redirected" under LD_PRELOAD.
  // 0: not asked yet, 1: no, 2: yes.
  static std::atomic<int> answer{0};
  int a = answer.load(std::memory_order_relaxed);
  if (a == 0) {
    void* (*volatile resolved_malloc)(size_t) = &malloc;
    void (*volatile resolved_free)(void*) = &free;
    void* p = resolved_malloc(1);
    a = (p != nullptr && mi_is_in_heap_region(p)) ? 2 : 1;
    resolved_free(p);  // the same allocator's free (a free of ours ignores a foreign pointer anyway)
    answer.store(a, std::memory_order_relaxed);
  }
  return a == 2;
}
