// reclaim.cpp: taking over segments of exited threads.
//
// Owns: moving an abandoned segment's pages into a heap of the calling
// thread: the pages join the heap's queues (by their heap tag); pages whose
// blocks were all freed meanwhile go back to the segment, except the small
// and medium ones of a reclaim for an allocation (below, keep_empty).
// Thread-safety: the caller removed the segment from the abandoned list, so it
// is ours alone; other threads may still push onto its pages' thread_free.
#include "../common/options.h"
#include "../common/stats.h"
#include "../segment/abandon.h"
#include "../segment/segment.h"
#include "../topology/topology.h"
#include "abandoned_purge.h"
#include "heap.h"
#include "page.h"

namespace mi {

namespace {

// Reclaims `segment` into `heap`; true if a page of `block_size` with free
// blocks came with it. *has_room: the segment is still there and has a free page.
//
// keep_empty: a small or medium page whose blocks were all freed while it
// was abandoned joins the heap's queue of its size, retired (page_reclaim),
// instead of going back to the segment. Its blocks are in memory the exited
// thread touched; given back, the page was taken again for whatever size
// the new thread asked for first, so over generations of threads every page
// of the segment was touched whole by one size or another: threadchurn
// (2 short-lived threads at a time, each freeing what the previous one left,
// then allocating mixed small sizes) peaked at 66 pages holding 3.8 MiB
// resident for 1.45 MiB live. Kept by size, a page is reused by the same
// size, within what that size touched before. Not for a purged (parked)
// page: rebuilding its free list would fault in its memory again.
bool reclaim_segment(Heap* heap, Segment* segment, size_t block_size, bool keep_empty, bool* has_room) {
  *has_room = false;
  SegmentsTld* tld = &heap->tld->segments;
  segment_reclaim_begin(segment, tld);
  segment_fork_mend(segment);
  keep_empty = keep_empty && (segment->page_kind == PageKind::small || segment->page_kind == PageKind::medium);
  bool right_page = false;
  for (size_t i = 0; i < segment->capacity; i++) {
    Page* page = &segment->pages[i];
    if (!page->segment_in_use) continue;
    const bool was_parked = page->free_parked;
    page_free_unpark(page);  // a free list a purge parked while it was abandoned
    Heap* target = heap_by_tag(heap, page->heap_tag);
    if (target == nullptr) target = heap;
    page_set_heap(page, target);
    page_stat_adopt(page);  // its free list is ours to allocate from (and count) now
    page_free_collect(page, false);
    if (page->used == 0 && !(keep_empty && !was_parked)) {
      page_stat_drop(page);
      if (segment->page_kind == PageKind::huge) {
        page_huge_stat_drop(page);
      }
      if (segment_page_free(page, tld)) return right_page;  // that was the last page: segment freed
      continue;
    }
    page_reclaim(target, page);
    if (target == heap && page->block_size == block_size &&
        (page->free != nullptr || page->capacity < page->reserved)) {
      right_page = true;
    }
  }
  segment_reclaim_end(segment, tld);
  *has_room = segment->free_mask != 0;
  return right_page;
}

bool accept_for_heap(const Segment* segment, const void* arg) {
  return segment_is_suitable(segment, static_cast<const Heap*>(arg));
}

struct Want {
  const Heap* heap;
  PageKind kind;
};

// A segment of the page kind the caller needs (its pages or free pages serve).
bool accept_for_kind(const Segment* segment, const void* arg) {
  const Want* want = static_cast<const Want*>(arg);
  return segment->page_kind == want->kind && segment_is_suitable(segment, want->heap);
}

}  // namespace

bool heap_reclaim_abandoned(Heap* heap, size_t block_size) noexcept {
  size_t count = abandoned_count();
  if (count == 0 || heap->no_reclaim) return false;
  long percent = option_get(mi_option_max_segment_reclaim);
  if (percent <= 0) return false;
  size_t tries = count * static_cast<size_t>(percent) / 100;
  // at least 8 (or all there are): one at a time, a segment whose pages are
  // all in use by other size classes made us allocate a new segment while
  // the others still waited on the list (larson: peak RSS 1.3x mimalloc's)
  const size_t min_tries = count < 8 ? count : 8;
  if (tries < min_tries) tries = min_tries;
  // Take segments of the page kind we need until one brings a page of this
  // size or room for a new page: an exited thread's memory is reused before
  // a new segment is made (in the larson benchmark, threads replaced every
  // 100 epochs otherwise left the process 30% larger).
  Want want{heap, page_kind_of(block_size)};
  bool right_page = false;
  for (size_t i = 0; i < tries; i++) {
    Segment* segment = abandoned_pop(&accept_for_kind, &want, 2 * tries + 8);
    if (segment == nullptr) break;
    bool has_room = false;
    right_page = reclaim_segment(heap, segment, block_size, true, &has_room);
    if (right_page || has_room) break;
  }
  // now and then, release what other nodes' exited threads left behind
  if (!right_page && numa_node_count() > 1) heap_collect_foreign_abandoned(heap, 1);
  return right_page;
}

namespace {

// A segment of another node (or arena) than the heap takes: its pages' freed
// blocks are collected and empty pages released, and if blocks are still in
// use it goes back on the abandoned list. Memory of a node whose threads are
// gone is returned this way without moving it into another node's heap.
void collect_foreign_segment(Heap* heap, Segment* segment) {
  SegmentsTld* tld = &heap->tld->segments;
  segment_reclaim_begin(segment, tld);
  segment_fork_mend(segment);
  for (size_t i = 0; i < segment->capacity; i++) {
    Page* page = &segment->pages[i];
    if (!page->segment_in_use) continue;
    if (page->free_parked) {
      // Purged while abandoned: nothing to collect unless other threads
      // freed into it since. Rebuilding its list would fault in an OS page
      // per free block (4-node guest, tools/bench/purge/stranded.c: peak
      // 353 MiB with every page rebuilt here).
      if (thread_free_block(page->xthread_free.load(std::memory_order_acquire)) == nullptr && page->used > 0) continue;
      if (page->used == 0) page_free_drop_parked(page);  // freed below: its list is not needed
      else page_free_unpark(page);
    }
    page_free_collect(page, false);
    if (page->used == 0) {
      if (segment->page_kind == PageKind::huge) {
        page_huge_stat_drop(page);
      }
      if (segment_page_free(page, tld, false)) return;  // the segment is gone (never kept: not of our node)
    }
  }
  // Back on the list with the last page; from then on another thread may own
  // it, so stop right there.
  size_t remaining = segment->used;
  for (size_t i = 0; i < segment->capacity && remaining > 0; i++) {
    Page* page = &segment->pages[i];
    if (!page->segment_in_use) continue;
    remaining--;
    segment_page_abandon(page, tld);
  }
}

bool accept_foreign(const Segment* segment, const void* arg) {
  const Heap* heap = static_cast<const Heap*>(arg);
  return !segment_is_suitable(segment, heap) && segment->exclusive_arena == 0;
}

}  // namespace

void heap_collect_foreign_abandoned(Heap* heap, size_t max) noexcept {
  for (size_t i = 0; i < max; i++) {
    Segment* segment = abandoned_pop(&accept_foreign, heap, 16);
    if (segment == nullptr) break;
    collect_foreign_segment(heap, segment);
  }
}

void heap_reclaim_segment(Heap* heap, Segment* segment) noexcept {
  bool has_room;
  reclaim_segment(heap, segment, 0, false, &has_room);
}

// All abandoned segments this heap may take (mi_collect(true) on the main thread).
void heap_reclaim_all(Heap* heap) noexcept {
  if (heap->no_reclaim) return;
  for (;;) {
    Segment* segment = abandoned_pop(&accept_for_heap, heap, static_cast<size_t>(-1));
    if (segment == nullptr) break;
    bool has_room;
    reclaim_segment(heap, segment, 0, false, &has_room);  // (its empty pages are freed by the caller's collect anyway)
  }
}

}  // namespace mi
