// free.cpp: mi_free and the usable size of a block; foreign pointers; the
// pointers that are not a block's (heap/misuse.h checks and reports them).
#include "../common/messages.h"
#include "../heap/full_held.h"
#include "../heap/misuse.h"
#include "../heap/remote_batch.h"
#include "alloc_inline.h"

namespace mi {

namespace {

// The bytes from p to the end of its block; 0 (reported) when p is not a
// block start, nor in a page with aligned blocks any pointer into a block.
size_t page_usable_size(const Page* page, const void* p, const char* call) {
  // any thread: in use, capacity and flags are read atomically (types.h)
  if (MI_UNLIKELY(!page_is_in_use(page))) {
    misuse_report(Misuse::page_not_in_use, call, p, page);
    return 0;
  }
  const uint8_t* q = static_cast<const uint8_t*>(p);
  const size_t bsize = page->block_size;
  if (MI_UNLIKELY(q < page->page_start ||
                  static_cast<size_t>(q - page->page_start) >= static_cast<size_t>(page_capacity(page)) * bsize)) {
    misuse_report(Misuse::outside_blocks, call, p, page);
    return 0;
  }
  const size_t offset = static_cast<size_t>(q - page->page_start);
  const size_t in_block = ((bsize & (bsize - 1)) == 0) ? (offset & (bsize - 1)) : offset % bsize;
  if (MI_UNLIKELY(in_block != 0 && !page_has_aligned(page))) {
    misuse_report(Misuse::interior, call, p, page, q - in_block);
    return 0;
  }
  return bsize - in_block;
}

}  // namespace

// Out of line (though mi_free, in this file, could inline it): the fast path
// that tail-calls it then needs no stack frame.
MI_NOINLINE void free_unknown(void* p) noexcept {
  if (p == nullptr) return;
  Segment* segment = segmap_segment_of(p);
  if (segment == nullptr) {
    if (once(Once::free_foreign)) {
      warning_message(
          "free(%p): the pointer was not allocated by mimalloc-numa (a foreign pointer); ignored. "
          "Further such frees are ignored silently.",
          p);
    }
    return;
  }
  // A pointer beyond the first unit of a huge segment: an aligned huge block
  // (or a pointer into one that is not: free_check says which).
  Page* page = segment_page_of_any(segment, p);
  if (!free_check(page, p, segment->thread_id.load(std::memory_order_relaxed) == thread_id())) return;
  free_block(segment, page, p);
}

namespace {

// Out of line, so that the common case of free_not_fast needs no stack frame.
MI_NOINLINE void free_checked(Segment* segment, Page* page, void* p) {
  if (free_check(page, p, segment->thread_id.load(std::memory_order_relaxed) == thread_id()))
    free_block(segment, page, p);
}

}  // namespace

void free_not_fast(void* p, Segment* segment, uintptr_t owner, Page* fast_page) noexcept {
  // First the common case here: a page another thread owns (its id, not 0:
  // not abandoned) with no aligned blocks and frees not checked, full or not
  // (the full state another thread acts on is in xthread_free): kept by this
  // thread or onto its owner's lists (remote_free; xfree_bench: 82 -> 54
  // instructions per remote free when it went straight onto the thread-free
  // list). The page as free_inline indexed it: a later slice of a large
  // page is flagged checked. The secure build checks the block first (below).
  if (MI_SECURE == 0) {
    Page* page = fast_page;
    const uintptr_t owner_id = owner & ~PAGE_FLAGS_MASK;
    if ((owner & (PAGE_FLAGS_MASK & ~uintptr_t{PAGE_IN_FULL})) == 0 && owner_id != 0 && !is_thread_id(owner_id)) {
      remote_free(page, static_cast<Block*>(p), owner_id);
      return;
    }
    // and one of our own full pages, no other flag (a cache's evictions free
    // into full pages: pairs random-4096 369 -> 357 instructions per pair;
    // remote-64 69.4 -> 70.4)
    if (owner == (thread_id() | PAGE_IN_FULL)) {
      // of the sizes above the direct ones: held for the heap's next
      // allocation of its size (heap/full_held.h)
      if (!full_held_push(page, static_cast<Block*>(p))) free_block_local_slow(page, static_cast<Block*>(p));
      return;
    }
  }
  Page* page = segment_page_of(segment, p);
  if (page_free_checked(page)) {
    // a large or huge block freed by its own pointer, the common case, costs
    // five compares here; anything else (or any in the secure build) is
    // checked whole (any thread: whether the page is in use is
    // read atomically; the block's own fields were written before the block
    // was handed out)
    if (MI_SECURE != 0 || p != page->page_start || page->reserved != 1 || page->used != 1 || !page_is_in_use(page)) {
      free_checked(segment, page, p);
      return;
    }
  } else if (MI_SECURE != 0 && !block_free_is_plain(page, p)) {
    // the secure build: the fast path's test (a cross-thread free, a full page), the whole check when it fails
    free_checked(segment, page, p);
    return;
  }
  free_block(segment, page, p);
}

size_t usable_size_of(const void* p, const char* call) noexcept {
  if (p == nullptr) return 0;
  Segment* segment;
  Page* page;
  const unsigned shift = segmap_byte(p);
  if (MI_LIKELY(shift >= SEGMAP_FIRST_MIN)) {
    // the page shift from the map, as free() takes it, not from the segment's
    // header: one cache line less (RocksDB, which asks the usable size of
    // each block it caches, stalled there for a third of this function's time)
    segment = ptr_segment(p);
    page = segment_page_at(segment, p, shift);
    page -= page->slice_offset;  // (a later slice of a large page: 0 for any other)
  } else {
    segment = segmap_segment_of(p);
    if (segment == nullptr) {
      if (once(Once::free_foreign)) {
        warning_message("%s(%p): the pointer was not allocated by mimalloc-numa; returning 0", call, p);
      }
      return 0;
    }
    page = segment_page_of_any(segment, p);
  }
  return page_usable_size(page, p, call);
}

}  // namespace mi

using namespace mi;

extern "C" {

void mi_free(void* p) mi_attr_noexcept { free_inline(p); }

size_t mi_usable_size(const void* p) mi_attr_noexcept { return usable_size_of(p); }

}  // extern "C"
