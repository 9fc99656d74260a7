// migrate.cpp: a thread that moved to another NUMA node.
//
// Owns: what the allocation slow path does when it finds its thread on
// another node than the one its heaps last allocated on (the program or the
// scheduler moved it, e.g. with sched_setaffinity): the pages of the old
// node leave the thread's heaps, so that its next blocks come from pages of
// the new node instead of refilling free slots of the old one. Pages whose
// blocks are all free go back to their segment; pages with live blocks are
// abandoned as at thread exit, so that a thread of their node reclaims them
// (heap/reclaim.cpp takes only segments of its own node) and frees into them
// stay valid from any thread. The blocks themselves never move.
//
// Which heaps follow their thread: the default heap and others created with
// a plain mi_heap_new_in_arena(0)-like setup (no node, no arena, not
// destroyable). A heap for a node (mi_heap_new_on_node, mi_malloc_on_node)
// stays on its node by definition; a heap of an arena keeps that arena's
// memory; a destroyable heap (mi_heap_new) keeps its pages so that
// mi_heap_destroy still frees them all. A segment that holds a page of one
// of those stays with the thread whole: abandoning only part of a segment
// would leave those pages with no owner that collects them.
//
// Cost: one pass over the thread's pages per move (a thread that the
// scheduler moves back and forth pays it each time; it reclaims its old
// segments when it is back on their node). Thread-safety: the calling
// thread's own heaps only; the abandoned list has its own lock.
#include "../common/stats.h"
#include "../common/types.h"
#include "../segment/segment.h"
#include "../topology/topology.h"
#include "cross_cache.h"
#include "full_held.h"
#include "heap.h"
#include "page.h"

namespace mi {

namespace {

bool follows_thread(const Heap* heap) { return heap->numa_node < 0 && heap->arena_id == 0 && !heap->no_reclaim; }

// A page of the segment is in a heap that does not follow the thread.
bool held_by_fixed_heap(const Segment* s) {
  for (size_t i = 0; i < s->capacity; i++) {
    const Page* p = &s->pages[i];
    if (!p->segment_in_use || p->slice_offset != 0) continue;
    const Heap* h = p->xheap.load(std::memory_order_relaxed);
    if (h != nullptr && !follows_thread(h)) return true;
  }
  return false;
}

// Does the page leave a following heap when its thread is on `node`?
// Memory bound to no node (node -1) is local by first touch: it stays.
bool leaves(const Page* page, int node) {
  const Segment* s = page_segment(page);
  return s->numa_node >= 0 && s->numa_node != node && s->exclusive_arena == 0 && !held_by_fixed_heap(s);
}

template <class F>
void for_each_page(Heap* heap, F&& fn) {
  for (size_t bin = 0; bin < BIN_COUNT; bin++) {
    PageQueue* pq = &heap->pages[bin];
    for (Page* page = pq->first; page != nullptr;) {
      Page* next = page->next;
      fn(pq, page);
      page = next;
    }
  }
}

void heap_leave_node(Heap* heap, int node) {
  full_held_flush(heap);  // held blocks of the old node's pages back to them first
  // First no other thread may hand a block of those pages to this heap's
  // delayed list any more; then the blocks already on it are freed into
  // their pages while the pages are still ours (as at thread exit).
  size_t leaving = 0;
  for_each_page(heap, [&](PageQueue*, Page* page) {
    if (!leaves(page, node)) return;
    page_use_delayed_free(page, Delayed::never_delayed_free, false);
    leaving++;
  });
  if (leaving == 0) return;
  delayed_list_free_all(heap);
  for_each_page(heap, [&](PageQueue* pq, Page* page) {
    if (!leaves(page, node)) return;
    page_free_collect(page, true);
    if (page->used == 0) page_free(page, pq);
    else page_abandon(page, pq);
  });
}

}  // namespace

void heap_thread_moved(Tld* tld, int node) noexcept {
  const int old = tld->node;
  tld->node = node;
  // blocks of other threads it kept are of the old node's pages: back to them
  cross_cache_flush(tld);
  if (old < 0) return;  // the thread's first allocation: nothing to move
  for (Heap* h = tld->heaps; h != nullptr; h = h->next) {
    if (follows_thread(h)) heap_leave_node(h, node);
  }
  // the empty segments the thread kept (segment_keep_when_empty) may be the old node's
  segments_release_empty(&tld->segments);
  stat_counter(stats_global.node_moves, 1);
}

}  // namespace mi
