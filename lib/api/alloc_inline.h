// alloc_inline.h: the allocation and free fast paths, inlined into every
// entry point (mi_malloc, malloc, operator new, ...).
//
// malloc of a small size, in the common case (x86-64, ~12 instructions):
//   load the thread's heap (TLS), index its direct table by word size, load
//   the page's free list head, pop it, bump page->used and the size's count.
// free, in the common case (~16 instructions):
//   one byte of the segment map (is it ours? also catches NULL), mask to the
//   segment, shift to the page, compare the owner with the thread pointer,
//   push onto the page's local_free, decrement used.
// Anything else (empty free list, other thread, full page, aligned block,
// large or huge block, foreign pointer) takes one predicted branch to an
// out-of-line slow path, which checks the pointer (heap/misuse.h).
// Counted with callgrind by tools/fastpath-count (instructions per free+malloc).
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

template <bool Zero> MI_ALWAYS_INLINE void* heap_malloc_small(Heap* heap, size_t size) noexcept {
  const size_t wsize = wsize_of(size);
  Page* page = heap->pages_free_direct[wsize];
  Block* block = page->free;
  if (MI_LIKELY(block != nullptr)) {
    page->free = block_pop_next(page, block);
    page->used++;
    heap->malloc_count_direct[wsize]++;
    asan_block_alloc(page, block);
    if constexpr (Zero) {
      if (page->free_is_zero) block->link = 0;
      else memset(block, 0, page->block_size);
    }
    return block;
  }
  return malloc_generic(heap, size, Zero, 0);
}

template <bool Zero> MI_ALWAYS_INLINE void* heap_malloc(Heap* heap, size_t size) noexcept {
  if (MI_LIKELY(size <= SMALL_SIZE_MAX)) return heap_malloc_small<Zero>(heap, size);
  return malloc_generic(heap, size, Zero, 0);
}

// Frees p, checked already (api/free.cpp) where it needs to be.
MI_ALWAYS_INLINE void free_block(Segment* segment, Page* page, void* p) noexcept {
  if (MI_LIKELY(segment->thread_id.load(std::memory_order_relaxed) == thread_id())) {
    if (MI_LIKELY(page->flags == 0)) {  // the owner: a plain read (types.h: page_flags)
      Block* block = static_cast<Block*>(p);
      asan_block_free(page, block);
      block_set_next(page, block, page->local_free);
      page->local_free = block;
      if (MI_UNLIKELY(--page->used == 0)) page_retire(page);
      return;
    }
    page_free_block_local_slow(page, static_cast<Block*>(p));
    return;
  }
  page_free_block_mt(segment, page, static_cast<Block*>(p));
}

// Out of line: a block of another thread's (or an abandoned) page, of a page
// that is full or has aligned blocks, or whose frees are checked (large and
// huge blocks, pages not in use; in the secure build, every block that fails
// the fast path's test).
void free_not_fast(void* p) noexcept;

MI_ALWAYS_INLINE void free_inline(void* p) noexcept {
  const unsigned shift = segmap_byte(p);  // the page shift, or < 16: not a segment's first unit
  if (MI_UNLIKELY(shift < SEGMAP_FIRST_MIN)) {
    free_unknown(p);
    return;
  }
  Segment* segment = ptr_segment(p);
  if (MI_LIKELY(segment->thread_id.load(std::memory_order_relaxed) == thread_id())) {
    Page* page = &segment->pages[(reinterpret_cast<uintptr_t>(p) & SEGMENT_MASK) >> shift];
    // the owner: a plain read of flags (types.h: page_flags)
    if (MI_LIKELY(page->flags == 0) && (MI_SECURE == 0 || MI_LIKELY(block_free_is_plain(page, p)))) {
      Block* block = static_cast<Block*>(p);
      asan_block_free(page, block);
      block_set_next(page, block, page->local_free);
      page->local_free = block;
      if (MI_UNLIKELY(--page->used == 0)) page_retire(page);
      return;
    }
  }
  free_not_fast(p);
}

}  // namespace mi
