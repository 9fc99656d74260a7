// heap_stats.h: a thread's allocation statistics, counted on the slow path
// and made exact when they are read (heap_stats.cpp).
//
// Allocation statistics of the direct sizes, without a count on the fast
// path: blocks are counted as allocated when the slow path puts them in a
// page's `free` list (page.cpp: page_stat_add), and the blocks still in
// `free` when the list leaves the thread's hands (page freed or abandoned)
// are taken back. So the thread's counter of a size class is its
// allocations plus the blocks in the `free` lists of its pages of that
// class; the exact figure (merge, thread report) subtracts those
// (heap_stats_settle). Pages of larger blocks are allocated from by the slow
// path only, which counts each allocation (heap_stat_malloc).
// Thread-safety: owner thread only (the free lists are the owner's to walk).
#pragma once

#include <cstdint>

#include "../common/types.h"
#include "size_class.h"

namespace mi {

// Whether a page's allocations are counted when its free list is filled
// (the direct sizes) rather than one by one.
inline bool page_counted_by_refill(const Page* page) { return page->block_size <= SMALL_SIZE_MAX; }

// Counts one allocation of `size` from `page` by the slow path (pages of the
// direct sizes are counted when their free list is filled). Inline: the slow
// path's last step, as it was when page.cpp defined it.
inline void heap_stat_malloc(Heap* heap, size_t size, const Page* page) noexcept {
  if (page_counted_by_refill(page)) {
    // counted when its free list was filled
  } else if (page->block_size > LARGE_OBJ_SIZE_MAX) {
    own_counter_add(heap->tld->stats.bin_malloc[BIN_HUGE], 1);
    heap->tld->stats.huge_allocs++;
    heap->tld->stats.huge_alloc_bytes += static_cast<int64_t>(size);
  } else {
    // the page's bin, the size's (find_page took the page from that bin's
    // queue): not bin_of_size's ~20 instructions again at every call
    MI_ASSERT(page->bin == bin_of_size(size));
    own_counter_add(heap->tld->stats.bin_malloc[page->bin], 1);
  }
}

// in_free[bin]: blocks in the free lists of the thread's pages of each bin,
// counted in its tld->stats.bin_malloc ahead of their allocation.
void heap_stats_settle(Tld* tld, int64_t in_free[BIN_HUGE + 1]) noexcept;
// Adds the thread's statistics to the process's (stats_merge_thread), with
// the allocations of the direct sizes made exact first.
void heap_stats_merge(Tld* tld) noexcept;

}  // namespace mi
