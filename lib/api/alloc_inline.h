// alloc_inline.h: the allocation and free fast paths, inlined into every
// entry point (mi_malloc, malloc, operator new, ...).
//
// malloc of a small size, in the common case (x86-64 `malloc` and
// `operator new`: 13 instructions): load the thread's heap (TLS), its bin of
// the size and that bin's direct page (heap_direct_page, size_class.h), the
// page's free list head, pop it, bump page->used.
// Nothing is counted: the statistics count a free list's blocks when the slow
// path fills it (heap/page.cpp).
// free, in the common case (`free`: 23 instructions): one byte of the
// segment map (is it ours? also catches NULL), mask to the segment, shift to
// the page (128-byte entries), compare the page's owner word with the thread
// pointer (one compare: the owner and the flags that need the slow path),
// push onto the page's local_free, decrement used (an emptied page is
// retired unless it is kept for reuse already).
// Anything else (empty free list, other thread, full page, aligned block,
// large or huge block, foreign pointer) takes one predicted branch to an
// out-of-line slow path, which checks the pointer (heap/misuse.h); an empty
// free list whose page has local frees is refilled by heap_malloc_slow in ~45
// instructions. Instructions per malloc+free pair inside the two, as
// tests/bench/instructions.golden holds them (the test `instructions` fails
// when one grows by more than 3%): 36.5-39.0 for one size (immediate free,
// ring of 1000 live blocks), 45.4 for sizes 16..128 in turn (its slow path
// looks at the blocks of other threads' the thread keeps first).
// The secure build (MI_SECURE) adds to both: malloc decodes and checks the
// link it pops (heap/free_list.h) and clears it; free checks that the
// pointer is a block start of its page that does not look free already.
#pragma once

#include <string.h>

#include "../../include/mimalloc.h"
#include "../common/sanitizer.h"
#include "../common/types.h"
#include "../heap/free_list.h"
#include "../heap/heap.h"
#include "../heap/page.h"
#include "../heap/size_class.h"
#include "../segment/segment.h"

namespace mi {

// Frees what the fast path does not handle: NULL, foreign pointers, pointers
// in a later unit of a huge segment.
void free_unknown(void* p) noexcept;
// Usable size of a block pointer: 0 for NULL, foreign pointers and pointers
// that are not a block's (reported; `call` names the caller's function).
size_t usable_size_of(const void* p, const char* call = "malloc_usable_size") noexcept;

template <bool Zero>
MI_ALWAYS_INLINE void* heap_malloc_small(Heap* heap, size_t size) noexcept {
  Page* page = heap_direct_page(heap, size);
  if (MI_LIKELY(page->free != nullptr)) return page_free_pop(page, Zero);
  return Zero ? heap_malloc_small_slow_zero(size, heap, page) : heap_malloc_small_slow(size, heap, page);
}

template <bool Zero>
MI_ALWAYS_INLINE void* heap_malloc(Heap* heap, size_t size) noexcept {
  if (MI_LIKELY(size <= SMALL_SIZE_MAX)) return heap_malloc_small<Zero>(heap, size);
  return heap_malloc_slow(size, heap, Zero);
}

// Frees p, checked already (api/free.cpp) where it needs to be.
MI_ALWAYS_INLINE void free_block(Segment* segment, Page* page, void* p) noexcept {
  if (MI_LIKELY(is_thread_id(page->xowner.load(std::memory_order_relaxed)))) {
    page_local_free_push(page, static_cast<Block*>(p));
    if (MI_UNLIKELY(--page->used == 0)) page_retire(page);
    return;
  }
  if (page_owner(page) == thread_id()) {
    free_block_local_slow(page, static_cast<Block*>(p));
    return;
  }
  free_block_mt(segment, page, static_cast<Block*>(p));
}

// Out of line: a block of another thread's (or an abandoned) page, of a page
// that is full or has aligned blocks, or whose frees are checked (large and
// huge blocks, pages not in use; in the secure build, every block that fails
// the fast path's test). `segment` and `owner` (the page's xowner word) as
// free_inline found them, and `page`, the entry free_inline indexed with the
// segment map's page shift (for a later slice of a large page, the slice's,
// flagged checked): a cross-thread free does not compute or load them
// again, nor read the segment header's page shift, whose line holds page
// 0's owner fields too (types.h: the table starts 16 bytes into it; every
// cross-thread free into a segment read the line its owner writes at each
// allocation from page 0). pairs remote-64 93.2 -> 87.2 instructions a
// pair, random-4096 140.5 -> 133.5; the fast path's count unchanged.
void free_not_fast(void* p, Segment* segment, uintptr_t owner, Page* page) noexcept;

MI_ALWAYS_INLINE void free_inline(void* p) noexcept {
  const unsigned shift = segmap_byte(p);  // the page shift, or < 16: not a segment's first unit
  if (MI_UNLIKELY(shift < SEGMAP_FIRST_MIN)) {
    free_unknown(p);
    return;
  }
  Segment* segment = ptr_segment(p);
  Page* page = segment_page_at(segment, p, shift);
  // The entry's address in a register of its own, made once: the fast path
  // addresses the entry through it, and free_not_fast takes it (left to
  // itself, gcc made it a second time for the call: an instruction more in
  // every free).
  asm("" : "+r"(page));
  // ours, and none of the flags that need the slow path (full, aligned
  // blocks, frees checked: a large or huge page, a page not in use, a slice
  // of a large page); in the secure build, a block start that does not look free
  const uintptr_t owner = page->xowner.load(std::memory_order_relaxed);
  if (MI_LIKELY(is_thread_id(owner)) && (MI_SECURE == 0 || MI_LIKELY(block_free_is_plain(page, p)))) {
    page_local_free_push(page, static_cast<Block*>(p));
    // the page is empty: retire it, unless it is kept empty for reuse already
    // (a block allocated from and freed to it again: the loop of pairs immediate)
    if (MI_UNLIKELY(--page->used == 0) && page->retire_expire == 0) page_retire(page);
    return;
  }
  free_not_fast(p, segment, owner, page);
}

}  // namespace mi
