// page_queue.h: a heap's page queues (one per bin, plus huge and full) and the
// direct table that maps small sizes to the first page of their bin.
//
// Invariants (checked by heap_is_valid): a page is in exactly one queue of its
// heap; queue `bin` holds pages of that bin's block size, BIN_HUGE the huge
// pages, BIN_FULL pages found full (PAGE_IN_FULL); the direct page of a bin
// of the direct sizes (Heap::direct_page[bin]) is the first page of its
// queue, or page_empty, and Heap::direct_bin maps each direct size to its bin.
// Thread-safety: owner thread only.
#pragma once

#include "../common/types.h"
#include "heap_check.h"
#include "size_class.h"

namespace mi {

constexpr size_t QUEUE_HUGE_BLOCK_SIZE = LARGE_OBJ_SIZE_MAX + WORD_SIZE;
constexpr size_t QUEUE_FULL_BLOCK_SIZE = LARGE_OBJ_SIZE_MAX + 2 * WORD_SIZE;

// page->bin, not bin_of_size(block_size) again: page_retire and page_unfull
// are on the path of every malloc+free of the sizes above 1 KiB
// (page_queue_is_valid checks that the two agree).
inline size_t page_bin(const Page* page) {
  if (page_in_full(page)) return BIN_FULL;
  return page->bin;
}

inline PageQueue* heap_page_queue_of(Heap* heap, const Page* page) { return &heap->pages[page_bin(page)]; }

inline bool page_queue_is_full(const PageQueue* pq) { return pq->block_size == QUEUE_FULL_BLOCK_SIZE; }
inline bool page_queue_is_huge(const PageQueue* pq) { return pq->block_size == QUEUE_HUGE_BLOCK_SIZE; }

// Keeps the direct page of a small bin (Heap::direct_page) in step with the
// first page of its queue.
inline void heap_queue_first_update(Heap* heap, PageQueue* pq) {
  const size_t bin = static_cast<size_t>(pq - heap->pages);
  if (bin > BIN_DIRECT_MAX) return;
  heap->direct_page[bin] = (pq->first != nullptr) ? pq->first : &page_empty;
}

// Takes a page out of the links of pq (its own links are left to the caller).
// update_direct false: the direct table may be left pointing at the page
// (for a caller that sets it once for several moves: page_queue_find_free;
// until then the heap is invalid for heap_is_valid).
inline void page_queue_unlink(Heap* heap, PageQueue* pq, const Page* page, bool update_direct = true) {
  // pre: page is in pq (not another queue: its ends would be left pointing at it)
  MI_ASSERT((page->prev != nullptr) != (pq->first == page) && (page->next != nullptr) != (pq->last == page));
  if (page->prev != nullptr) page->prev->next = page->next;
  if (page->next != nullptr) page->next->prev = page->prev;
  if (page == pq->last) pq->last = page->prev;
  if (page == pq->first) {
    pq->first = page->next;
    if (update_direct) heap_queue_first_update(heap, pq);
  }
}

inline void page_queue_remove(Heap* heap, PageQueue* pq, Page* page) {
  MI_ASSERT(heap->page_count > 0);
  page_queue_unlink(heap, pq, page);
  heap->page_count--;
  page->next = page->prev = nullptr;
  page_set_flag(page, PAGE_IN_FULL, false);
}

// Adds a page at the front: it is the one allocated from next.
inline void page_queue_push(Heap* heap, PageQueue* pq, Page* page) {
  MI_ASSERT(page->next == nullptr && page->prev == nullptr && pq->first != page);  // in no queue
  page_set_flag(page, PAGE_IN_FULL, page_queue_is_full(pq));
  page->next = pq->first;
  page->prev = nullptr;
  if (pq->first != nullptr) pq->first->prev = page;
  else pq->last = page;
  pq->first = page;
  heap_queue_first_update(heap, pq);
  heap->page_count++;
}

// Moves a page from `from` to the end of `to` (update_direct: as for page_queue_unlink).
inline void page_queue_move_to_back(Heap* heap, PageQueue* to, PageQueue* from, Page* page, bool update_direct = true) {
  page_queue_unlink(heap, from, page, update_direct);
  page->prev = to->last;
  page->next = nullptr;
  if (to->last != nullptr) to->last->next = page;
  else {
    to->first = page;
    heap_queue_first_update(heap, to);
  }
  to->last = page;
  page_set_flag(page, PAGE_IN_FULL, page_queue_is_full(to));
  MI_ASSERT_EXPENSIVE(!update_direct || (page_queue_is_valid(heap, from) && page_queue_is_valid(heap, to)));
}

// Moves a page from `from` (another queue, or `to` itself) to the front of
// `to`: the page allocated from next. The direct table is set once.
inline void page_queue_move_to_front(Heap* heap, PageQueue* to, PageQueue* from, Page* page) {
  page_queue_unlink(heap, from, page, from != to);
  page->prev = nullptr;
  page->next = to->first;
  if (to->first != nullptr) to->first->prev = page;
  else to->last = page;
  to->first = page;
  heap_queue_first_update(heap, to);
  page_set_flag(page, PAGE_IN_FULL, page_queue_is_full(to));
  MI_ASSERT_EXPENSIVE(page_queue_is_valid(heap, from) && page_queue_is_valid(heap, to));
}

}  // namespace mi
