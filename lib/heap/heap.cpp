// heap.cpp: heaps as objects: collect, create, delete, destroy, visit.
#include <errno.h>
#include <string.h>

#include "../../include/mimalloc-numa.h"
#include "../arena/arena.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../segment/segment.h"
#include "../topology/topology.h"
#include "abandoned_purge.h"
#include "cross_cache.h"
#include "free_list.h"
#include "full_held.h"
#include "heap.h"
#include "heap_check.h"
#include "page.h"
#include "page_queue.h"
#include "remote_batch.h"

namespace mi {

namespace {

// Calls fn(heap, pq, page) for every page (fn may remove the page).
template <class F>
void heap_for_each_page(Heap* heap, F&& fn) {
  for (size_t bin = 0; bin < BIN_COUNT; bin++) {
    PageQueue* pq = &heap->pages[bin];
    Page* page = pq->first;
    while (page != nullptr) {
      Page* next = page->next;
      fn(pq, page);
      page = next;
    }
  }
}

// Moves every page of `from` into `to` (same thread).
void heap_absorb(Heap* to, Heap* from) {
  full_held_flush(from);
  delayed_list_free_partial(from);
  for (size_t bin = 0; bin < BIN_COUNT; bin++) {
    PageQueue* pq = &from->pages[bin];
    while (pq->first != nullptr) {
      Page* page = pq->first;
      page_queue_remove(from, pq, page);
      page_set_heap(page, to);
      // from now on delayed frees go to `to`; waits for a concurrent handshake
      page_use_delayed_free(page, Delayed::use_delayed_free, false);
      page_queue_push(to, &to->pages[bin], page);
    }
  }
  delayed_list_free_all(from);  // blocks that reached `from` meanwhile
  MI_ASSERT(from->page_count == 0);
  MI_ASSERT_EXPENSIVE(heap_is_valid(to));
}

void heap_free_struct(Heap* heap) {
  Tld* tld = heap->tld;
  if (heap == tld->heap_backing) return;  // the thread data owns it
  if (tls_heap_default == heap) tls_heap_default = tld->heap_backing;
  for (Heap*& h : tld->node_heaps) {
    if (h == heap) h = nullptr;
  }
  Heap* prev = nullptr;
  for (Heap* h = tld->heaps; h != nullptr; prev = h, h = h->next) {
    if (h != heap) continue;
    if (prev != nullptr) prev->next = heap->next;
    else tld->heaps = heap->next;
    break;
  }
  heap->tld = nullptr;
  mi_free(heap);
}

void heap_destroy_pages(Heap* heap) {
  heap_for_each_page(heap, [&](PageQueue* pq, Page* page) {
    page_use_delayed_free(page, Delayed::never_delayed_free, false);
    if (page_segment(page)->page_kind == PageKind::huge) {
      page_huge_stat_drop(page);
    }
    page_stat_drop(page);
    page_queue_remove(heap, pq, page);
    page->used = 0;
    segment_page_free(page, &heap->tld->segments);
  });
  heap->thread_delayed_free.store(nullptr, std::memory_order_relaxed);
  MI_ASSERT(heap->page_count == 0);
}

}  // namespace

void heap_collect_retired(Heap* heap, bool force) noexcept {
  size_t min = BIN_FULL;
  size_t max = 0;
  for (size_t bin = heap->page_retired_min; bin <= heap->page_retired_max && bin < BIN_FULL; bin++) {
    PageQueue* pq = &heap->pages[bin];
    Page* page = pq->first;
    if (page == nullptr || page->retire_expire == 0) continue;
    if (page->used == 0) {
      page->retire_expire--;
      if (force || page->retire_expire == 0) {
        page_free(pq->first, pq);
        continue;
      }
      if (bin < min) min = bin;
      if (bin > max) max = bin;
    } else {
      page->retire_expire = 0;
    }
  }
  heap->page_retired_min = min;
  heap->page_retired_max = max;
}

void heap_collect(Heap* heap, Collect how) noexcept {
  if (!heap_is_initialized(heap)) return;
  MI_ASSERT(heap->thread_id == thread_id());  // a heap is collected by its own thread only
  const bool force = how != Collect::normal;
  Tld* tld = heap->tld;
  heap_deferred_free(heap, force);
  full_held_flush(heap);  // (before the pages are looked at: their blocks back)
  if (heap == tld->heap_backing) {
    // (the held blocks first: their frees may go into a batch)
    if (how == Collect::abandon) {
      cross_cache_close(tld);
      remote_batch_close(tld);
    } else {
      cross_cache_flush(tld);
      remote_batch_send_all(tld);
      remote_batch_receive(tld);
    }
  }
  if (how == Collect::abandon) {
    // No thread may push onto this heap's delayed list any more.
    heap_for_each_page(heap,
                       [](PageQueue*, Page* page) { page_use_delayed_free(page, Delayed::never_delayed_free, false); });
    delayed_list_free_all(heap);
  } else {
    delayed_list_free_partial(heap);
  }
  // A forced collect of a backing heap also takes over abandoned segments,
  // so that memory of exited threads is released too.
  if (how == Collect::force && heap == tld->heap_backing) {
    heap_reclaim_all(heap);
    heap_collect_foreign_abandoned(heap, static_cast<size_t>(-1));
  }

  heap_for_each_page(heap, [&](PageQueue* pq, Page* page) {
    page_free_collect(page, force);
    if (page->used == 0) page_free(page, pq);
    else if (how == Collect::abandon) page_abandon(page, pq);
  });
  heap_collect_retired(heap, force);
  // abandon: every page was freed or given away
  MI_ASSERT(how != Collect::abandon || heap->page_count == 0);
  MI_ASSERT_EXPENSIVE(heap_is_valid(heap));
  // the empty segments the thread kept (segment_page_free) go at exit and on mi_collect(true)
  if (how != Collect::normal) segments_release_empty(&tld->segments);
  // Only mi_collect(true) purges before the delay. A thread's exit purges
  // what is due, no more: forcing there purged every pending page of the
  // process at each exit, pages the next thread faulted in again at once
  // (thread churn: 0.15 s of 0.55 s CPU in the kernel, 20 K faults per
  // 2000 threads against mimalloc's 2 K).
  const bool purge_now = how == Collect::force;
  segments_try_purge(purge_now);
  arenas_try_purge(purge_now);
  heap_purge_abandoned(purge_now);  // exited threads' free blocks (of other nodes, or that no thread took)
  MI_ASSERT_EXPENSIVE(segments_tld_is_valid(&tld->segments));
}

}  // namespace mi

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------
using namespace mi;

extern "C" {

mi_heap_t* mi_heap_new_ex(int heap_tag, bool allow_destroy, mi_arena_id_t arena_id) {
  Heap* bheap = heap_get_default_init();
  if (bheap == nullptr) return nullptr;
  bheap = bheap->tld->heap_backing;
  if (arena_id != 0 && !arena_id_is_valid(arena_id)) {
    error_message(EINVAL, "mi_heap_new: arena id %d does not exist", arena_id);
    return nullptr;
  }
  void* p = mi_heap_malloc_aligned(bheap, sizeof(Heap), MI_CACHE_LINE);
  if (p == nullptr) return nullptr;
  Heap* heap = static_cast<Heap*>(p);
  // A destroyable heap never takes over abandoned segments: destroying it
  // would free other threads' blocks.
  heap_init(heap, bheap->tld, arena_id, allow_destroy, static_cast<uint8_t>(heap_tag));
  heap->next = bheap->tld->heaps;
  bheap->tld->heaps = heap;
  return heap;
}

mi_heap_t* mi_heap_new_in_arena(mi_arena_id_t arena_id) { return mi_heap_new_ex(0, false, arena_id); }

mi_heap_t* mi_heap_new(void) { return mi_heap_new_ex(0, true, 0); }

void mi_heap_delete(mi_heap_t* heap) {
  if (!heap_is_initialized(heap) || heap == &heap_empty) return;
  if (heap != heap->tld->heap_backing) {
    heap_absorb(heap->tld->heap_backing, heap);  // live blocks stay valid in the backing heap
  } else {
    heap_collect(heap, Collect::abandon);  // the backing heap gives its pages away
  }
  heap_free_struct(heap);
}

void mi_heap_destroy(mi_heap_t* heap) {
  if (!heap_is_initialized(heap) || heap == &heap_empty) return;
  if (!heap->no_reclaim) {
    mi_heap_delete(heap);  // it may hold reclaimed pages of other threads: only delete
    return;
  }
  Tld* tld = heap->tld;
  full_held_drop(heap);
  heap_destroy_pages(heap);
  segments_release_empty(&tld->segments);  // destroy frees everything, kept empty segments too
  heap_free_struct(heap);
}

mi_heap_t* mi_heap_set_default(mi_heap_t* heap) {
  if (!heap_is_initialized(heap)) return nullptr;
  Heap* old = heap_get_default_init();
  tls_heap_default = heap;
  return old;
}

mi_heap_t* mi_heap_get_default(void) { return heap_get_default_init(); }

mi_heap_t* mi_heap_get_backing(void) {
  Heap* heap = heap_get_default_init();
  return (heap != nullptr) ? heap->tld->heap_backing : nullptr;
}

void mi_heap_collect(mi_heap_t* heap, bool force) mi_attr_noexcept {
  heap_collect(heap, force ? Collect::force : Collect::normal);
}

void mi_collect(bool force) mi_attr_noexcept {
  heap_collect(heap_get_default(), force ? Collect::force : Collect::normal);
}

bool mi_heap_contains_block(mi_heap_t* heap, const void* p) {
  if (heap == nullptr || p == nullptr) return false;
  Segment* segment = segmap_segment_of(p);
  if (segment == nullptr) return false;
  Page* page = segment_page_of_any(segment, p);
  return page->segment_in_use && page->xheap.load(std::memory_order_relaxed) == heap;
}

bool mi_heap_check_owned(mi_heap_t* heap, const void* p) {
  if (!heap_is_initialized(heap) || p == nullptr) return false;
  if ((reinterpret_cast<uintptr_t>(p) & (WORD_SIZE - 1)) != 0) return false;
  Segment* segment = segmap_segment_of(p);
  if (segment == nullptr) return false;
  Page* page = segment_page_of_any(segment, p);
  if (!page->segment_in_use || page->xheap.load(std::memory_order_relaxed) != heap) return false;
  const uint8_t* q = static_cast<const uint8_t*>(p);
  return q >= page->page_start && q < page->page_start + static_cast<size_t>(page->capacity) * page->block_size;
}

bool mi_check_owned(const void* p) { return mi_heap_check_owned(heap_get_default(), p); }

bool mi_heap_visit_blocks(const mi_heap_t* cheap, bool visit_blocks, mi_block_visit_fun* visitor, void* arg) {
  Heap* heap = const_cast<Heap*>(cheap);
  if (!heap_is_initialized(heap) || visitor == nullptr) return heap == &heap_empty;
  // the blocks it holds are free, not live (its owner's call: the page lists change below too)
  if (heap->thread_id == thread_id()) full_held_flush(heap);
  for (size_t bin = 0; bin < BIN_COUNT; bin++) {
    for (Page* page = heap->pages[bin].first; page != nullptr; page = page->next) {
      page_free_collect(page, true);
      mi_heap_area_t area;
      area.blocks = page->page_start;
      area.reserved = static_cast<size_t>(page->reserved) * page->block_size;
      area.committed = static_cast<size_t>(page->capacity) * page->block_size;
      area.used = page->used;
      area.block_size = page->block_size;
      area.full_block_size = page->block_size;
      area.heap_tag = page->heap_tag;
      if (!visitor(heap, &area, nullptr, area.block_size, arg)) return false;
      if (!visit_blocks || page->used == 0) continue;
      // Mark the free blocks, then visit the others.
      constexpr size_t MAP_WORDS = (SMALL_PAGE_SIZE / WORD_SIZE + 63) / 64;
      uint64_t free_map[MAP_WORDS] = {};
      const size_t cap = page->capacity;
      const PageBlocks blocks = page_blocks(page);
      auto mark = [&](const Block* b) {
        // at most `cap` steps and only through blocks of the page: a list a
        // double free made into a loop ends the walk
        for (size_t n = 0; b != nullptr && n < cap && blocks.has_block(b); b = block_next(page, b), n++) {
          size_t i = static_cast<size_t>(blocks.offset(b) / page->block_size);
          if (i / 64 < MAP_WORDS) free_map[i / 64] |= uint64_t{1} << (i % 64);
        }
      };
      mark(page->free);
      mark(page->local_free);
      mark(thread_free_block(page->xthread_free.load(std::memory_order_acquire)));
      for (size_t i = 0; i < cap; i++) {
        if ((free_map[i / 64] >> (i % 64)) & 1) continue;
        void* block = page->page_start + i * page->block_size;
        if (!visitor(heap, &area, block, page->block_size, arg)) return false;
      }
    }
  }
  return true;
}

bool mi_is_in_heap_region(const void* p) mi_attr_noexcept { return p != nullptr && segmap_segment_of(p) != nullptr; }

// ---------------------------------------------------------------------------
// mimalloc-numa.h: placement on a node
// ---------------------------------------------------------------------------
mi_heap_t* mi_heap_new_on_node(int node) {
  if (node < 0 || node >= numa_node_count()) {
    errno = EINVAL;
    return nullptr;
  }
  Heap* heap = mi_heap_new_ex(0, false, 0);
  if (heap != nullptr) heap->numa_node = node;
  return heap;
}

namespace {

Heap* node_heap(int node) {
  if (node < 0 || node >= numa_node_count() || node >= TLD_NODE_HEAPS) {
    errno = EINVAL;
    return nullptr;
  }
  Heap* bheap = heap_get_default_init();
  if (bheap == nullptr) return nullptr;
  Heap*& slot = bheap->tld->node_heaps[node];
  if (slot == nullptr) slot = mi_heap_new_on_node(node);
  return slot;
}

}  // namespace

void* mi_malloc_on_node(size_t size, int node) mi_attr_noexcept {
  Heap* heap = node_heap(node);
  return (heap != nullptr) ? mi_heap_malloc(heap, size) : nullptr;
}

void* mi_zalloc_on_node(size_t size, int node) mi_attr_noexcept {
  Heap* heap = node_heap(node);
  return (heap != nullptr) ? mi_heap_zalloc(heap, size) : nullptr;
}

int mi_numa_node_of(const void* p) mi_attr_noexcept {
  if (p == nullptr) return -1;
  Segment* segment = segmap_segment_of(p);
  if (segment == nullptr) return -1;
  // all memory of a one-node machine is node 0's, bound or not
  return (segment->numa_node < 0 && numa_node_count() == 1) ? 0 : segment->numa_node;
}

}  // extern "C"
