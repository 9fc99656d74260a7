// full_held.cpp: blocks freed into a heap's own full pages, held for its next
// allocations of their size (full_held.h says why and which).
#include "full_held.h"

#include "../segment/segment.h"
#include "free_list.h"
#include "heap.h"
#include "misuse.h"
#include "page.h"

namespace mi {

namespace {

// Takes every held block of `heap` off its lists and hands it to `give`.
template <typename Give>
void full_held_drain(Heap* heap, Give give) {
  for (Block*& head : heap->full_held) {
    while (head != nullptr) {
      Block* block = head;
      head = reinterpret_cast<Block*>(block->link);
      heap->full_held_room += block_page(block)->block_size;
      give(block);
    }
  }
}

}  // namespace

void full_held_double_free(const Page* page, const Block* block) noexcept {
  misuse_report(Misuse::double_free, "free", block, page);
}

void full_held_flush(Heap* heap) noexcept {
  // (room first, block by block: a free below never holds it again, its page
  // leaves the full queue with its first block back)
  full_held_drain(heap, [](Block* block) {
    Page* page = block_page(block);
#if MI_ASAN
    ASAN_UNPOISON_MEMORY_REGION(block, page->block_size);
#endif
    free_block_local_slow(page, block);
  });
}

void full_held_flush_own() noexcept {
  Heap* heap = heap_get_default();
  if (!heap_is_initialized(heap)) return;
  for (Heap* h = heap->tld->heaps; h != nullptr; h = h->next) full_held_flush(h);
}

void full_held_drop(Heap* heap) noexcept {
  for (Block*& head : heap->full_held) head = nullptr;
  heap->full_held_room = heap->full_held_max;
}

void full_held_fork_orphan(Heap* heap) noexcept {
  // (single-threaded: only the forking thread runs in the child)
  full_held_drain(heap, [](Block* block) { page_thread_free_push_alone(block_page(block), block); });
}

bool full_held_is_valid(const Heap* heap, Invalid* why) noexcept {
  size_t bytes = 0;
  for (size_t i = 0; i < FULL_HELD_BINS; i++) {
    const size_t bsize = bin_block_sizes[FULL_HELD_BIN0 + i];
    for (const Block* b = heap->full_held[i]; b != nullptr; b = reinterpret_cast<const Block*>(b->link)) {
      const Segment* segment = segmap_segment_of(b);
      const Page* page = segment != nullptr ? segment_page_of(segment, b) : nullptr;
      if (page == nullptr || !page_is_in_use(page) || page->block_size != bsize ||
          page->xheap.load(std::memory_order_relaxed) != heap ||
          (reinterpret_cast<const uint8_t*>(b) - page->page_start) % bsize != 0) {
        return invalid(why,
                       "heap %p: block %p on its held list of %zu-byte blocks is not a block of its page of that size",
                       static_cast<const void*>(heap), static_cast<const void*>(b), bsize);
      }
      bytes += bsize;
      if (bytes > heap->full_held_max) {
        return invalid(why, "heap %p: its held lists hold more than %zu bytes (a cycle?)",
                       static_cast<const void*>(heap), heap->full_held_max);
      }
    }
  }
  if (heap->full_held_max > FULL_HELD_BYTES || heap->full_held_room > heap->full_held_max ||
      bytes != heap->full_held_max - heap->full_held_room) {
    return invalid(why, "heap %p: holds %zu bytes of blocks freed into its full pages, its room says %zu of %zu",
                   static_cast<const void*>(heap), bytes, heap->full_held_room, heap->full_held_max);
  }
  return true;
}

}  // namespace mi
