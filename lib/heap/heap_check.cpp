// heap_check.cpp: see heap_check.h.
#include "heap_check.h"

#include <string.h>

#include "../arena/arena.h"
#include "../segment/segment.h"
#include "cross_cache.h"
#include "free_list.h"
#include "full_held.h"
#include "heap.h"
#include "page_queue.h"
#include "size_class.h"

namespace mi {

namespace {

bool block_in_page(const Page* page, const Block* b) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(b);
  if (p < page->page_start) return false;
  size_t diff = static_cast<size_t>(p - page->page_start);
  return diff % page->block_size == 0 && diff / page->block_size < page->capacity;
}

// Walks a free list of the page: false (and why) at the first link that
// leaves the page's blocks, or when it is longer than the page's capacity
// (a cycle).
bool list_is_valid(const Page* page, const Block* b, const char* name, size_t* count, Invalid* why) {
  size_t n = 0;
  for (; b != nullptr; b = block_next(page, b)) {
    if (!block_in_page(page, b)) {
      return invalid(why, "page %p: its %s list leads to %p, not a block of the page (%u blocks of %zu bytes at %p)",
                     static_cast<const void*>(page), name, static_cast<const void*>(b), page->capacity,
                     page->block_size, static_cast<const void*>(page->page_start));
    }
    if (++n > page->capacity) {
      return invalid(why, "page %p: its %s list is longer than its %u blocks (a cycle)", static_cast<const void*>(page),
                     name, page->capacity);
    }
  }
  *count = n;
  return true;
}

}  // namespace

bool page_is_valid(const Page* page, Invalid* why) noexcept {
  if (page == nullptr) return invalid(why, "page: null");
  const void* pp = static_cast<const void*>(page);
  if (!page->segment_in_use) return invalid(why, "page %p: not in use", pp);
  if (page->block_size == 0 || page->capacity > page->reserved || page->used > page->capacity) {
    return invalid(why, "page %p: %u used of %u blocks made of %u, of %zu bytes", pp, page->used, page->capacity,
                   page->reserved, page->block_size);
  }
  size_t nfree = 0, nlocal = 0;
  if (!list_is_valid(page, page->free, "free", &nfree, why)) return false;
  if (!list_is_valid(page, page->local_free, "local free", &nlocal, why)) return false;
  if (nfree + nlocal + page->used > page->capacity) {
    return invalid(why, "page %p: %zu free + %zu local free + %u used blocks of %u", pp, nfree, nlocal, page->used,
                   page->capacity);
  }
  // The thread-free list is pushed onto concurrently, but the list below the
  // head read here stays put until its owner (this thread) takes it: its
  // length is the count read with the head, and counted in `used`.
  const uintptr_t tf = page->xthread_free.load(std::memory_order_acquire);
  size_t nthread = 0;
  if (!list_is_valid(page, thread_free_block(tf), "thread free", &nthread, why)) return false;
  if (nthread != thread_free_count(tf) || nthread > page->used) {
    return invalid(why, "page %p: its thread-free list holds %zu blocks, its count says %zu (%u used)", pp, nthread,
                   thread_free_count(tf), page->used);
  }
  const Segment* s = page_segment(page);
  if (page->segment_idx >= s->capacity || &s->pages[page->segment_idx] != page) {
    return invalid(why, "page %p: not entry %u of its segment %p", pp, page->segment_idx, static_cast<const void*>(s));
  }
  return true;
}

bool page_queue_is_valid(const Heap* heap, const PageQueue* pq, size_t* count, Invalid* why) noexcept {
  const size_t bin = static_cast<size_t>(pq - heap->pages);
  if (bin >= BIN_COUNT)
    return invalid(why, "heap %p: queue %p is not one of its queues", static_cast<const void*>(heap),
                   static_cast<const void*>(pq));
  size_t n = 0;
  const Page* prev = nullptr;
  for (const Page* p = pq->first; p != nullptr; p = p->next) {
    const void* pp = static_cast<const void*>(p);
    // (a page linked into two queues has the other queue's neighbour as prev)
    if (p->prev != prev)
      return invalid(why, "page %p: in queue %zu after %p, but its prev is %p", pp, bin, prev, p->prev);
    if (++n > heap->page_count) {
      return invalid(why, "heap %p: queue %zu holds more than the heap's %zu pages (a cycle?)",
                     static_cast<const void*>(heap), bin, heap->page_count);
    }
    if (!page_is_in_use(p)) return invalid(why, "page %p: in queue %zu but not in use", pp, bin);
    if (p->xheap.load(std::memory_order_relaxed) != heap) {
      return invalid(why, "page %p: in queue %zu of heap %p, but its heap is %p", pp, bin,
                     static_cast<const void*>(heap),
                     static_cast<const void*>(p->xheap.load(std::memory_order_relaxed)));
    }
    if ((bin == BIN_FULL) != page_in_full(p)) {
      return invalid(why, "page %p: in queue %zu, flagged %sfull", pp, bin, page_in_full(p) ? "" : "not ");
    }
    if (bin < BIN_HUGE && p->block_size != pq->block_size) {
      return invalid(why, "page %p: blocks of %zu bytes in the queue of %zu", pp, p->block_size, pq->block_size);
    }
    if (p->bin != bin_of_size(p->block_size)) {
      return invalid(why, "page %p: its bin is %u, its blocks of %zu bytes are of bin %zu", pp, unsigned{p->bin},
                     p->block_size, bin_of_size(p->block_size));
    }
    if (p->bin < BIN_HUGE && p->small_block_size != p->block_size) {
      return invalid(why, "page %p: blocks of %zu bytes, %u on its first line", pp, p->block_size,
                     unsigned{p->small_block_size});
    }
    if (page_owner(p) != heap->thread_id) {
      return invalid(why, "page %p: in a queue of the heap of thread 0x%lx, owned by 0x%lx", pp,
                     static_cast<unsigned long>(heap->thread_id), static_cast<unsigned long>(page_owner(p)));
    }
    prev = p;
  }
  if (pq->last != prev)
    return invalid(why, "heap %p: queue %zu ends at %p, not its last page %p", static_cast<const void*>(heap), bin,
                   static_cast<const void*>(pq->last), prev);
  if (bin <= BIN_DIRECT_MAX) {
    const Page* expect = (pq->first != nullptr) ? pq->first : &page_empty;
    if (heap->direct_page[bin] != expect) {
      return invalid(why, "heap %p: the direct page of bin %zu is %p, not the first page of its queue %p",
                     static_cast<const void*>(heap), bin, static_cast<const void*>(heap->direct_page[bin]),
                     static_cast<const void*>(expect));
    }
  }
  if (count != nullptr) *count = n;
  return true;
}

bool heap_is_valid(const Heap* heap, Invalid* why) noexcept {
  if (heap == nullptr || heap->tld == nullptr)
    return invalid(why, "heap %p: not initialised", static_cast<const void*>(heap));
  size_t total = 0;
  for (size_t bin = 1; bin < BIN_COUNT; bin++) {
    size_t n = 0;
    if (!page_queue_is_valid(heap, &heap->pages[bin], &n, why)) return false;
    total += n;
  }
  if (total != heap->page_count) {
    return invalid(why, "heap %p: %zu pages in its queues, page_count says %zu", static_cast<const void*>(heap), total,
                   heap->page_count);
  }
  if (heap->direct_page[0] != &page_empty)
    return invalid(why, "heap %p: direct page 0 is not page_empty", static_cast<const void*>(heap));
  for (size_t size = 0; size <= SMALL_SIZE_MAX; size++) {
    if (heap->direct_bin[size] != direct_bins[size]) {
      return invalid(why, "heap %p: the direct bin of %zu bytes is %u, not %u", static_cast<const void*>(heap), size,
                     static_cast<unsigned>(heap->direct_bin[size]), static_cast<unsigned>(direct_bins[size]));
    }
  }
  if (heap == heap->tld->heap_backing && !cross_cache_is_valid(heap->tld, why)) return false;
  if (!full_held_is_valid(heap, why)) return false;
  return true;
}

namespace {

struct SegmentWalk {
  Invalid* why;
  bool ok;
  size_t segments;
  size_t arena_blocks[ARENA_MAX_COUNT];  // blocks of the live segments of each arena
  size_t arena_inuse[ARENA_MAX_COUNT];   // its blocks in use, read when its first segment was seen (+1; 0: not yet)
};

void segment_walk(const Segment* s, void* arg) {
  SegmentWalk* w = static_cast<SegmentWalk*>(arg);
  if (!w->ok) return;
  w->segments++;
  if (s->thread_id.load(std::memory_order_relaxed) == thread_id()) {
    w->ok = segment_is_valid(s, w->why);
  } else {
    // another thread's, or abandoned: only what stays put while it lives
    // (the walk holds the list's lock: no segment on it is released)
    w->ok = arena_memory_is_held(s, s->memid, w->why);
    if (w->ok && segmap_segment_of(reinterpret_cast<const uint8_t*>(s) + 1) != s) {
      w->ok = invalid(w->why, "segment %p: not in the segment map", static_cast<const void*>(s));
    }
  }
  if (!w->ok || s->memid.kind != MemKind::arena) return;
  const size_t i = s->memid.arena_index;  // < ARENA_MAX_COUNT: arena_memory_is_held
  // Every segment seen stays on the list, its blocks in use, for the whole
  // walk: the blocks in use, read at any moment of it, bound their sum.
  if (w->arena_inuse[i] == 0) w->arena_inuse[i] = arena_blocks_in_use(i) + 1;
  w->arena_blocks[i] += s->memid.block_count;
  if (w->arena_blocks[i] > w->arena_inuse[i] - 1) {
    w->ok = invalid(w->why, "arena %zu: its live segments hold %zu blocks, more than its %zu blocks in use", i + 1,
                    w->arena_blocks[i], w->arena_inuse[i] - 1);
  }
}

}  // namespace

bool process_is_valid(bool quiescent, Invalid* why) noexcept {
  if (!arenas_are_valid(quiescent, why)) return false;
  SegmentWalk walk;
  memset(&walk, 0, sizeof(walk));
  walk.why = why;
  walk.ok = true;
  segments_visit(&segment_walk, &walk);
  if (!walk.ok) return false;
  Heap* backing = heap_get_default();
  if (!heap_is_initialized(backing)) return true;
  Tld* tld = backing->tld;
  for (const Heap* heap = tld->heaps; heap != nullptr; heap = heap->next) {
    if (!heap_is_valid(heap, why)) return false;
    for (size_t bin = 1; bin < BIN_COUNT; bin++) {
      for (const Page* p = heap->pages[bin].first; p != nullptr; p = p->next) {
        if (!page_is_valid(p, why)) return false;
        const Segment* s = page_segment(p);
        if (s->thread_id.load(std::memory_order_relaxed) != heap->thread_id) {
          return invalid(why, "page %p: in a heap of thread 0x%lx, its segment %p is owned by 0x%lx",
                         static_cast<const void*>(p), static_cast<unsigned long>(heap->thread_id),
                         static_cast<const void*>(s),
                         static_cast<unsigned long>(s->thread_id.load(std::memory_order_relaxed)));
        }
      }
    }
  }
  return segments_tld_is_valid(&tld->segments, why);
}

}  // namespace mi

#if MI_INVARIANTS
extern "C" bool mi_debug_check_invariants(bool quiescent, char* why, size_t why_size) {
  mi::Invalid found;
  found.text[0] = 0;
  const bool ok = mi::process_is_valid(quiescent, &found);
  if (why != nullptr && why_size > 0) {
    const size_t n = ok ? 0 : strnlen(found.text, sizeof(found.text));
    const size_t m = (n < why_size) ? n : why_size - 1;
    memcpy(why, found.text, m);
    why[m] = 0;
  }
  return ok;
}
#endif
