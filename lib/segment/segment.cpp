// segment.cpp: see segment.h.
//
// Page ranges: page i covers [i*page_size, (i+1)*page_size) of the segment,
// except that page 0 starts after the header (segment_info_size). Commit and
// purge work on a page's range with the header excluded from page 0 (the
// header is committed with the segment and stays committed).
#include "segment.h"

#include <string.h>

#include <cstddef>

#include "../arena/arena.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../os/os.h"
#include "abandon.h"

namespace mi {

namespace {

size_t segment_capacity(PageKind kind) {
  switch (kind) {
    case PageKind::small: return SMALL_PAGES_PER_SEGMENT;
    case PageKind::medium: return MEDIUM_PAGES_PER_SEGMENT;
    default: return 1;
  }
}

size_t segment_page_shift(PageKind kind) {
  switch (kind) {
    case PageKind::small: return SMALL_PAGE_SHIFT;
    case PageKind::medium: return MEDIUM_PAGE_SHIFT;
    default: return SEGMENT_SHIFT;
  }
}

size_t segment_info_size(size_t capacity) {
  return align_up(offsetof(Segment, pages) + capacity * sizeof(Page), MI_CACHE_LINE);
}

// The part of the header that is committed with the segment (OS pages).
size_t segment_header_commit_size(const Segment* s) { return align_up(s->segment_info_size, os_page_size()); }

size_t segment_page_size(const Segment* s) {
  return (s->capacity == 1) ? s->segment_size : (size_t{1} << s->page_shift);
}

// Commit/purge range of page i (page 0 without the header).
uint8_t* page_range(const Segment* s, size_t i, size_t* size) {
  uint8_t* start = reinterpret_cast<uint8_t*>(const_cast<Segment*>(s)) + i * segment_page_size(s);
  uint8_t* end = start + segment_page_size(s);
  if (i == 0) start = reinterpret_cast<uint8_t*>(const_cast<Segment*>(s)) + segment_header_commit_size(s);
  *size = (end > start) ? static_cast<size_t>(end - start) : 0;
  return start;
}

uint64_t bit(size_t i) { return uint64_t{1} << i; }
uint64_t all_pages_mask(size_t capacity) { return (capacity >= 64) ? ~uint64_t{0} : (bit(capacity) - 1); }

// ---------------------------------------------------------------------------
// Segment queues of the owner thread
// ---------------------------------------------------------------------------
SegmentQueue* free_queue_of(Segment* s, SegmentsTld* tld) {
  if (s->page_kind == PageKind::small) return &tld->small_free;
  if (s->page_kind == PageKind::medium) return &tld->medium_free;
  return nullptr;
}

void free_queue_push(Segment* s, SegmentsTld* tld) {
  SegmentQueue* q = free_queue_of(s, tld);
  if (q == nullptr || s->in_free_queue) return;
  s->next = nullptr;
  s->prev = q->last;
  if (q->last != nullptr) q->last->next = s;
  else q->first = s;
  q->last = s;
  s->in_free_queue = true;
}

void free_queue_remove(Segment* s, SegmentsTld* tld) {
  if (!s->in_free_queue) return;
  SegmentQueue* q = free_queue_of(s, tld);
  if (s->prev != nullptr) s->prev->next = s->next;
  else q->first = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  else q->last = s->prev;
  s->next = s->prev = nullptr;
  s->in_free_queue = false;
}

void purge_queue_push(Segment* s, SegmentsTld* tld) {
  if (s->in_purge_queue) return;
  s->purge_prev = nullptr;
  s->purge_next = tld->purge_first;
  if (tld->purge_first != nullptr) tld->purge_first->purge_prev = s;
  tld->purge_first = s;
  s->in_purge_queue = true;
}

void purge_queue_remove(Segment* s, SegmentsTld* tld) {
  if (!s->in_purge_queue) return;
  if (s->purge_prev != nullptr) s->purge_prev->purge_next = s->purge_next;
  else tld->purge_first = s->purge_next;
  if (s->purge_next != nullptr) s->purge_next->purge_prev = s->purge_prev;
  s->purge_next = s->purge_prev = nullptr;
  s->in_purge_queue = false;
}

// ---------------------------------------------------------------------------
// Commit and purge of pages
// ---------------------------------------------------------------------------
bool page_ensure_committed(Segment* s, size_t i) {
  if ((s->commit_mask & bit(i)) != 0) return true;
  size_t size;
  uint8_t* start = page_range(s, i, &size);
  if (s->memid.is_accessible) {
    os_stat_committed(static_cast<int64_t>(size));  // mapped read-write already: accounting only
  } else {
    bool zero = false;
    if (size > 0 && !os_commit(start, size, &zero)) return false;
  }
  s->commit_mask |= bit(i);
  s->committed_bytes += size;
  return true;
}

void page_purge_now(Segment* s, size_t i) {
  if ((s->commit_mask & bit(i)) == 0) return;
  size_t size;
  uint8_t* start = page_range(s, i, &size);
  if (size == 0) return;
  if (os_purge(start, size, true)) {
    s->commit_mask &= ~bit(i);
    s->committed_bytes -= size;
    if (i != 0) s->dirty_mask &= ~bit(i);  // reads as zero again (page 0 shares memory with the header)
  }
}

void segment_purge_pending(Segment* s) {
  uint64_t pending = s->purge_mask & s->free_mask;
  while (pending != 0) {
    size_t i = bit_scan_forward(pending);
    pending &= pending - 1;
    page_purge_now(s, i);
  }
  s->purge_mask = 0;
  s->purge_expire_ms = 0;
}

void page_schedule_purge(Segment* s, size_t i, SegmentsTld* tld) {
  if (s->memid.is_pinned || (s->commit_mask & bit(i)) == 0) return;
  long delay = option_get(mi_option_purge_delay);
  if (delay < 0) return;
  if (delay == 0) {
    page_purge_now(s, i);
    return;
  }
  s->purge_mask |= bit(i);
  int64_t now = os_clock_ms();
  if (s->purge_expire_ms == 0) s->purge_expire_ms = now + delay;
  else s->purge_expire_ms += option_get(mi_option_purge_extend_delay);
  purge_queue_push(s, tld);
}

// ---------------------------------------------------------------------------
// Creating and freeing segments
// ---------------------------------------------------------------------------
Segment* segment_alloc(Heap* heap, PageKind kind, size_t required, size_t huge_alignment, SegmentsTld* tld) {
  const size_t capacity = segment_capacity(kind);
  const size_t info_size = segment_info_size(capacity);
  size_t segment_size = SEGMENT_SIZE;
  if (kind == PageKind::huge) {
    size_t extra = (huge_alignment > MAX_ALIGN_IN_PAGE) ? huge_alignment : 0;
    size_t need;
    if (__builtin_add_overflow(info_size + extra, required, &need) || need > (size_t{1} << 46)) return nullptr;
    segment_size = align_up(need, SEGMENT_SIZE);
  }
  // The first eager_commit_delay segments of a thread commit page by page, so
  // short-lived threads stay small; large and huge segments always commit.
  bool eager_delay = tld->eager_delay_left > 0;
  bool commit = (kind == PageKind::large || kind == PageKind::huge) ||
                (!eager_delay && option_is_enabled(mi_option_eager_commit));
  MemId memid;
  void* p = arena_alloc(segment_size, SEGMENT_SIZE, commit, commit, heap->arena_id, heap->numa_node, &memid);
  if (p == nullptr) return nullptr;
  Segment* s = static_cast<Segment*>(p);
  if (!memid.initially_committed) {
    // commit the header now; pages are committed when handed out
    bool zero = false;
    size_t header = align_up(info_size, os_page_size());
    if (memid.is_accessible) {
      os_stat_committed(static_cast<int64_t>(header));
    } else if (!os_commit(s, header, &zero)) {
      arena_free(p, segment_size, 0, memid);
      return nullptr;
    }
  }
  if (!memid.initially_zero) memset(static_cast<void*>(s), 0, info_size);
  s->memid = memid;
  s->segment_size = segment_size;
  s->segment_info_size = info_size;
  s->capacity = capacity;
  s->page_kind = kind;
  s->page_shift = segment_page_shift(kind);
  s->numa_node = memid.numa_node;
  s->free_mask = all_pages_mask(capacity);
  s->dirty_mask = memid.initially_zero ? 0 : all_pages_mask(capacity);
  if (memid.initially_committed) {
    s->commit_mask = all_pages_mask(capacity);
    s->committed_bytes = segment_size;
  } else {
    s->commit_mask = 0;
    s->committed_bytes = align_up(info_size, os_page_size());
  }
  for (size_t i = 0; i < capacity; i++) s->pages[i].segment_idx = static_cast<uint8_t>(i);
  s->thread_id.store(thread_id(), std::memory_order_release);
  segmap_register(s);

  if (tld->eager_delay_left > 0) tld->eager_delay_left--;
  tld->count++;
  if (tld->count > tld->peak_count) tld->peak_count = tld->count;
  tld->current_size += segment_size;
  if (tld->current_size > tld->peak_size) tld->peak_size = tld->current_size;
  stat_increase(stats_global.segments, 1);
  return s;
}

void segment_free(Segment* s, SegmentsTld* tld) {
  MI_ASSERT(s->used == 0);
  free_queue_remove(s, tld);
  purge_queue_remove(s, tld);
  segmap_unregister(s);
  tld->count--;
  tld->current_size -= s->segment_size;
  stat_decrease(stats_global.segments, 1);
  s->thread_id.store(0, std::memory_order_relaxed);
  MemId memid = s->memid;  // the header goes away with the memory
  arena_free(s, s->segment_size, s->committed_bytes, memid);
}

// Sets up page i of s for blocks of block_size (or a huge block).
Page* segment_page_claim(Segment* s, size_t i, size_t block_size) {
  if (!page_ensure_committed(s, i)) return nullptr;
  Page* page = &s->pages[i];
  s->free_mask &= ~bit(i);
  s->purge_mask &= ~bit(i);  // reused before its purge: cancel it
  s->used++;
  bool zero = (s->dirty_mask & bit(i)) == 0;
  s->dirty_mask |= bit(i);

  uint8_t* start = reinterpret_cast<uint8_t*>(s) + i * segment_page_size(s);
  uint8_t* end = start + segment_page_size(s);
  if (i == 0) {
    start = reinterpret_cast<uint8_t*>(s) + s->segment_info_size;
    // Blocks whose size is a multiple of a power of two (up to
    // MAX_ALIGN_GUARANTEE) start aligned to it, as in every other page.
    if (s->page_kind != PageKind::huge) {
      size_t low = block_size & (~block_size + 1);
      if (low > MAX_ALIGN_GUARANTEE) low = MAX_ALIGN_GUARANTEE;
      if (low > MI_CACHE_LINE) start = static_cast<uint8_t*>(align_up_ptr(start, low));
    }
  }
  size_t page_size = static_cast<size_t>(end - start);
  page->segment_in_use = 1;
  page->page_start = start;
  page->is_zero_init = zero ? 1 : 0;
  if (s->page_kind == PageKind::huge) {
    page->block_size = page_size;
    page->reserved = 1;
  } else {
    page->block_size = block_size;
    page->reserved = static_cast<uint16_t>(page_size / block_size);
  }
  page->capacity = 0;
  page->free = nullptr;
  page->local_free = nullptr;
  page->used = 0;
  page->flags.full_aligned = 0;
  page->free_is_zero = 0;
  page->retire_expire = 0;
  page->xthread_free.store(static_cast<uintptr_t>(Delayed::no_delayed_free), std::memory_order_relaxed);
  page->xheap.store(nullptr, std::memory_order_relaxed);
  page->next = page->prev = nullptr;
  stat_increase(stats_global.pages, 1);
  return page;
}

// Every page in use is abandoned: the segment leaves this thread. It must not
// keep this thread's id: a thread created later may get the same thread
// pointer and would take the segment for its own.
void segment_abandon(Segment* s, SegmentsTld* tld) {
  MI_ASSERT(s->abandoned == s->used && s->used > 0);
  free_queue_remove(s, tld);
  purge_queue_remove(s, tld);
  if (option_is_enabled(mi_option_abandoned_page_purge)) segment_purge_pending(s);
  tld->count--;
  tld->current_size -= s->segment_size;
  stat_increase(stats_global.segments_abandoned, 1);
  s->abandoned_visits = 0;
  s->thread_id.store(0, std::memory_order_release);
  abandoned_push(s);
}

}  // namespace

size_t segment_huge_usable_size(size_t size) noexcept {
  size_t info = segment_info_size(1);
  return align_up(info + align_up(size, WORD_SIZE), SEGMENT_SIZE) - info;
}

bool segment_is_suitable(const Segment* segment, const Heap* heap) noexcept {
  if (!arena_memid_is_suitable(segment->memid, heap->arena_id)) return false;
  if (heap->numa_node >= 0 && segment->numa_node >= 0 && segment->numa_node != heap->numa_node) return false;
  return true;
}

Page* segment_page_alloc(Heap* heap, size_t block_size, size_t huge_alignment, bool allow_new, SegmentsTld* tld) noexcept {
  PageKind kind = page_kind_of(block_size);
  Page* page = nullptr;
  if (kind == PageKind::small || kind == PageKind::medium) {
    SegmentQueue* q = (kind == PageKind::small) ? &tld->small_free : &tld->medium_free;
    Segment* s = q->first;
    while (s != nullptr && !segment_is_suitable(s, heap)) s = s->next;
    if (s == nullptr) {
      if (!allow_new) return nullptr;
      s = segment_alloc(heap, kind, 0, 0, tld);
      if (s == nullptr) return nullptr;
      free_queue_push(s, tld);
    }
    MI_ASSERT(s->free_mask != 0);
    size_t i = bit_scan_forward(s->free_mask);
    page = segment_page_claim(s, i, block_size);
    if (page != nullptr && s->used == s->capacity) free_queue_remove(s, tld);
    MI_ASSERT_EXPENSIVE(segment_is_valid(s));
    return page;
  }
  if (!allow_new) return nullptr;
  Segment* s = segment_alloc(heap, kind, block_size, huge_alignment, tld);
  if (s == nullptr) return nullptr;
  page = segment_page_claim(s, 0, block_size);
  if (page == nullptr) {
    segment_free(s, tld);
    return nullptr;
  }
  return page;
}

bool segment_page_free(Page* page, SegmentsTld* tld) noexcept {
  Segment* s = page_segment(page);
  size_t i = page->segment_idx;
  MI_ASSERT(page->segment_in_use && s->used > 0);
  page->segment_in_use = 0;
  page->block_size = 0;
  page->capacity = 0;
  page->reserved = 0;
  page->used = 0;
  page->free = nullptr;
  page->local_free = nullptr;
  page->flags.full_aligned = 0;
  page->xheap.store(nullptr, std::memory_order_relaxed);
  page->xthread_free.store(static_cast<uintptr_t>(Delayed::no_delayed_free), std::memory_order_relaxed);
  s->free_mask |= bit(i);
  s->used--;
  stat_decrease(stats_global.pages, 1);
  if (s->used == 0) {
    segment_free(s, tld);
    return true;
  }
  free_queue_push(s, tld);
  page_schedule_purge(s, i, tld);
  // the thread is leaving and this was the last page not yet abandoned
  if (s->abandoned > 0 && s->abandoned == s->used) segment_abandon(s, tld);
  MI_ASSERT_EXPENSIVE(segment_is_valid(s));
  return false;
}

void segment_page_abandon(Page* page, SegmentsTld* tld) noexcept {
  Segment* s = page_segment(page);
  MI_ASSERT(page->segment_in_use && s->abandoned < s->used);
  s->abandoned++;
  stat_counter(stats_global.pages_abandoned, 1);
  if (s->abandoned == s->used) segment_abandon(s, tld);
}


void segment_reclaim_begin(Segment* s, SegmentsTld* tld) noexcept {
  s->thread_id.store(thread_id(), std::memory_order_release);
  s->abandoned = 0;
  s->abandoned_visits = 0;
  s->in_free_queue = false;
  s->in_purge_queue = false;
  s->next = s->prev = nullptr;
  tld->count++;
  if (tld->count > tld->peak_count) tld->peak_count = tld->count;
  tld->current_size += s->segment_size;
  stat_decrease(stats_global.segments_abandoned, 1);
  stat_counter(stats_global.segments_reclaimed, 1);
}

void segment_reclaim_end(Segment* s, SegmentsTld* tld) noexcept {
  if (s->used < s->capacity) free_queue_push(s, tld);
  if (s->purge_mask != 0) {
    if (s->purge_expire_ms == 0) s->purge_expire_ms = os_clock_ms();
    purge_queue_push(s, tld);
  }
  MI_ASSERT_EXPENSIVE(segment_is_valid(s));
}

bool segments_purge_due(const SegmentsTld* tld, int64_t now_ms) noexcept {
  for (const Segment* s = tld->purge_first; s != nullptr; s = s->purge_next) {
    if (now_ms >= s->purge_expire_ms) return true;
  }
  return false;
}

void segments_try_purge(SegmentsTld* tld, bool force) noexcept {
  if (tld->purge_first == nullptr) return;
  int64_t now = os_clock_ms();
  Segment* s = tld->purge_first;
  while (s != nullptr) {
    Segment* next = s->purge_next;
    if (force || now >= s->purge_expire_ms) {
      segment_purge_pending(s);
      purge_queue_remove(s, tld);
    }
    s = next;
  }
}

void segment_huge_block_reset(Segment* segment, Page* page, void* block) noexcept {
  if (segment->memid.is_pinned) return;
  size_t keep = os_page_size();  // the block's first page holds its free-list link
  uint8_t* start = static_cast<uint8_t*>(block) + keep;
  uint8_t* end = page->page_start + page->block_size;
  if (end > start + keep) os_reset(start, static_cast<size_t>(end - start));
}

bool segment_is_valid(const Segment* s) noexcept {
  if (s == nullptr) return false;
  if (s->capacity == 0 || s->capacity > SMALL_PAGES_PER_SEGMENT) return false;
  size_t in_use = 0;
  uint64_t free_mask = 0;
  for (size_t i = 0; i < s->capacity; i++) {
    const Page* p = &s->pages[i];
    if (p->segment_idx != i) return false;
    if (p->segment_in_use) {
      in_use++;
      if (p->reserved == 0 || p->capacity > p->reserved) return false;
      if (p->page_start == nullptr) return false;
    } else {
      free_mask |= bit(i);
    }
  }
  if (in_use != s->used) return false;
  if (free_mask != s->free_mask) return false;
  if (s->abandoned > s->used) return false;
  if ((s->purge_mask & ~s->free_mask) != 0 && s->purge_mask != 0) {
    // a page in use may still carry a stale purge bit only if cancelled on claim: never
    return false;
  }
  if (segmap_segment_of(reinterpret_cast<const uint8_t*>(s) + 1) != s) return false;
  return true;
}

}  // namespace mi
