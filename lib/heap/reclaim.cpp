// reclaim.cpp: taking over segments of exited threads.
//
// Owns: moving an abandoned segment's pages into a heap of the calling
// thread: pages whose blocks were all freed meanwhile go back to the segment,
// the others join the heap's queues (by their heap tag).
// Thread-safety: the caller removed the segment from the abandoned list, so it
// is ours alone; other threads may still push onto its pages' thread_free.
#include "../common/options.h"
#include "../common/stats.h"
#include "../segment/abandon.h"
#include "../segment/segment.h"
#include "heap.h"
#include "page.h"

namespace mi {

namespace {

// Reclaims `segment` into `heap`; true if a page of `block_size` with free
// blocks came with it.
bool reclaim_segment(Heap* heap, Segment* segment, size_t block_size) {
  SegmentsTld* tld = &heap->tld->segments;
  segment_reclaim_begin(segment, tld);
  bool right_page = false;
  for (size_t i = 0; i < segment->capacity; i++) {
    Page* page = &segment->pages[i];
    if (!page->segment_in_use) continue;
    Heap* target = heap_by_tag(heap, page->heap_tag);
    if (target == nullptr) target = heap;
    page->xheap.store(target, std::memory_order_release);
    page_free_collect(page, false);
    if (page->used == 0) {
      if (segment->page_kind == PageKind::huge) stat_decrease(stats_global.huge_bytes, static_cast<int64_t>(page->block_size));
      if (segment_page_free(page, tld)) return right_page;  // that was the last page: segment freed
      continue;
    }
    page_reclaim(target, page);
    if (target == heap && page->block_size == block_size && (page->free != nullptr || page->capacity < page->reserved)) {
      right_page = true;
    }
  }
  segment_reclaim_end(segment, tld);
  return right_page;
}

bool accept_for_heap(const Segment* segment, const void* arg) {
  return segment_is_suitable(segment, static_cast<const Heap*>(arg));
}

}  // namespace

bool heap_reclaim_abandoned(Heap* heap, size_t block_size) noexcept {
  size_t count = abandoned_count();
  if (count == 0 || heap->no_reclaim) return false;
  long percent = option_get(mi_option_max_segment_reclaim);
  if (percent <= 0) return false;
  size_t tries = count * static_cast<size_t>(percent) / 100;
  if (tries < 1) tries = 1;
  if (tries < 8 && count >= 8) tries = 8;
  bool right_page = false;
  for (size_t i = 0; i < tries && !right_page; i++) {
    Segment* segment = abandoned_pop(&accept_for_heap, heap, 2 * tries + 8);
    if (segment == nullptr) break;
    right_page = reclaim_segment(heap, segment, block_size);
  }
  return right_page;
}

void heap_reclaim_segment(Heap* heap, Segment* segment) noexcept { reclaim_segment(heap, segment, 0); }

// All abandoned segments this heap may take (mi_collect(true) on the main thread).
void heap_reclaim_all(Heap* heap) noexcept {
  if (heap->no_reclaim) return;
  for (;;) {
    Segment* segment = abandoned_pop(&accept_for_heap, heap, static_cast<size_t>(-1));
    if (segment == nullptr) break;
    reclaim_segment(heap, segment, 0);
  }
}

}  // namespace mi
