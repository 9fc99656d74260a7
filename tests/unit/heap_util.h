// heap_util.h: helpers of the unit tests that look into heaps and pages
// (tests/unit; unit_util.h has those that use the public API only).
//
//  - OwnHeap: a heap of the test's own, destroyed with it; hold_none() makes
//    it hold no block freed into its full pages (heap/full_held.h), as once
//    it holds its most: a local free into a full page takes the page out of
//    the full queue.
//  - page_of(): the page of a block (a huge block's too).
//  - fill_page(): allocates from a heap until the page of the first block is
//    full.
#pragma once

#include <mimalloc.h>

#include <vector>

#include "common/types.h"
#include "segment/segment.h"

namespace unit {

struct OwnHeap {
  mi_heap_t* heap = mi_heap_new();
  ~OwnHeap() {
    if (heap != nullptr) mi_heap_destroy(heap);
  }
  void hold_none() const { heap->full_held_room = heap->full_held_max = 0; }
};

inline mi::Page* page_of(const void* p) {
  mi::Segment* s = mi::segmap_segment_of(p);
  return (s->capacity == 1) ? &s->pages[0] : mi::segment_page_of(s, p);
}

// Allocates `size` blocks from `heap` until the page of the first one is
// full; returns its blocks, the page in *page_out.
inline std::vector<void*> fill_page(mi_heap_t* heap, size_t size, mi::Page** page_out) {
  std::vector<void*> blocks;
  void* first = mi_heap_malloc(heap, size);
  mi::Page* pg = page_of(first);
  blocks.push_back(first);
  while (pg->used < pg->reserved) blocks.push_back(mi_heap_malloc(heap, size));
  *page_out = pg;
  return blocks;
}

}  // namespace unit
