// sanitizer.h: what the library does differently when it is built with a
// sanitizer (tools/dev test's asan and tsan steps: meson -Db_sanitize=...).
//
// Owns: the detection macros and the ASan poisoning of free blocks. Nothing
// here exists in a build without sanitizers: every helper is an empty inline
// function there, so the release library is unchanged.
//
//   MI_ASAN   built with AddressSanitizer (gcc: __SANITIZE_ADDRESS__): the
//             override entry points start through override/sanitizer_start.cpp
//   MI_TSAN   built with ThreadSanitizer (gcc: __SANITIZE_THREAD__): there are
//             no override entry points (override/override.cpp says why)
//
// ASan and our free blocks: ASan knows nothing of the blocks we hand out (it
// sees our segments as plain mapped memory), so a use after free, or a write
// past a block into its free neighbour, would go unnoticed. Under ASan a
// page's blocks are poisoned when the page is set up, a block is unpoisoned
// when it is handed out and poisoned again when it is freed, except its first
// word: that holds the free-list link, which the allocator itself reads and
// writes (a stray write there is what the hardened build's checks catch).
// The page's whole range is unpoisoned when it goes back to its segment, so
// the next page set up there, with another block size, starts clean. Huge
// blocks (beyond LARGE_OBJ_SIZE_MAX, a segment each) are left alone: they are
// handed out as soon as their page is made, and poisoning costs a shadow
// write per 8 bytes.
#pragma once

#include <cstddef>

#include "types.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define MI_ASAN 1
#include <sanitizer/asan_interface.h>
#else
#define MI_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define MI_TSAN 1
#else
#define MI_TSAN 0
#endif

// A function the sanitizers leave alone: no instrumentation at all (it may run
// before the sanitizer runtime is initialised: override/sanitizer_start.cpp).
#define MI_NO_SANITIZE __attribute__((no_sanitize("address", "thread", "undefined")))

namespace mi {

#if MI_ASAN
inline bool asan_page_tracked(const Page* page) noexcept { return page->block_size <= LARGE_OBJ_SIZE_MAX; }
#endif

// The blocks of a page, all poisoned or all unpoisoned.
inline void asan_page_blocks(const Page* page, bool poison) noexcept {
#if MI_ASAN
  if (!asan_page_tracked(page)) return;
  const size_t size = static_cast<size_t>(page->reserved) * page->block_size;
  if (poison) ASAN_POISON_MEMORY_REGION(page->page_start, size);
  else ASAN_UNPOISON_MEMORY_REGION(page->page_start, size);
#else
  (void)page;
  (void)poison;
#endif
}

// A page set up for blocks: all of them poisoned (page_extend_free unlinks
// them with asan_block_link).
inline void asan_page_setup(const Page* page) noexcept { asan_page_blocks(page, true); }

// The link word of a block of page, about to be written by the allocator.
inline void asan_block_link(const Page* page, void* block) noexcept {
#if MI_ASAN
  if (asan_page_tracked(page)) ASAN_UNPOISON_MEMORY_REGION(block, sizeof(void*));
#else
  (void)page;
  (void)block;
#endif
}

// A block of page that is free from now on: all of it but its link word.
inline void asan_block_free(const Page* page, void* block) noexcept {
#if MI_ASAN
  if (asan_page_tracked(page) && page->block_size > sizeof(void*)) {
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(block) + sizeof(void*), page->block_size - sizeof(void*));
  }
#else
  (void)page;
  (void)block;
#endif
}

// A block of page handed out: all of it (its usable size).
inline void asan_block_alloc(const Page* page, void* block) noexcept {
#if MI_ASAN
  if (asan_page_tracked(page)) ASAN_UNPOISON_MEMORY_REGION(block, page->block_size);
#else
  (void)page;
  (void)block;
#endif
}

// Copies n bytes that may hold free blocks (the fork copy of huge-page
// arenas): ASan must not check the poisoned ones. Byte by byte through a
// volatile pointer, so that the compiler makes no memcpy call of it (which
// ASan intercepts).
MI_NO_SANITIZE inline void copy_unchecked(void* to, const void* from, size_t n) noexcept {
  volatile unsigned char* d = static_cast<volatile unsigned char*>(to);
  const unsigned char* s = static_cast<const unsigned char*>(from);
  for (size_t i = 0; i < n; i++) d[i] = s[i];
}

// A page that goes back to its segment: no blocks there any more.
inline void asan_page_release(const Page* page) noexcept { asan_page_blocks(page, false); }

}  // namespace mi
