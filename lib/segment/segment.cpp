// segment.cpp: see segment.h.
//
// Page ranges: page i covers [i*page_size, (i+1)*page_size) of the segment,
// except that page 0 starts after the header (segment_info_size). Commit and
// purge work on a page's range with the header excluded from page 0 (the
// header is committed with the segment and stays committed).
// Guard pages (secure mode: Segment::guard_size): the OS page after the
// header belongs to the header (committed with it, never purged) and is
// protected for the segment's life. A small or medium page's guard is the
// last OS page of its range, protected when the page is first claimed and
// kept while it is free (its place never changes; a commit that made it
// accessible again clears its bit of guard_mask, and the next claim protects
// it again). A large segment has one more guard only, the last OS page of the
// segment (a page reaching the last slice leaves it out of its block): its
// pages' spans vary, and moving a guard with every large page claimed and
// freed made the mixed-size benchmark (tests/bench/mixed_bench) 3-7x slower
// (one mprotect per large malloc and free). A huge segment's guard is its
// last OS page. Every guard still protected is lifted before the segment's
// memory goes back to its arena, which may hand it out again as committed
// memory.
#include "segment.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <cstddef>

#include "../arena/arena.h"
#include "../common/locked_list.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/sanitizer.h"
#include "../common/stats.h"
#include "../common/test_point.h"
#include "../os/os.h"
#include "../topology/topology.h"
#include "abandon.h"
#include "purge_list.h"
#include "segment_internal.h"
#include "thp.h"

namespace mi {

namespace {

// Small and large segments are both 64 slices of 64 KiB: a small page is one
// slice, a large page a run of them.
size_t segment_capacity(PageKind kind) {
  switch (kind) {
    case PageKind::small: return SMALL_PAGES_PER_SEGMENT;
    case PageKind::medium: return MEDIUM_PAGES_PER_SEGMENT;
    case PageKind::large: return SMALL_PAGES_PER_SEGMENT;
    default: return 1;
  }
}

size_t segment_page_shift(PageKind kind) {
  switch (kind) {
    case PageKind::small: return SMALL_PAGE_SHIFT;
    case PageKind::medium: return MEDIUM_PAGE_SHIFT;
    case PageKind::large: return SMALL_PAGE_SHIFT;
    default: return SEGMENT_SHIFT;
  }
}

size_t segment_info_size(size_t capacity) {
  return align_up(offsetof(Segment, pages) + capacity * sizeof(Page), MI_CACHE_LINE);
}

// The part of the header that is committed with the segment (OS pages), its guard page included.
size_t header_commit_size(size_t info_size, size_t guard) { return align_up(info_size, os_page_size()) + guard; }
size_t segment_header_commit_size(const Segment* s) { return header_commit_size(s->segment_info_size, s->guard_size); }

// The guard pages of a new segment: one OS page, in secure mode, where pages
// are large enough to spare it.
size_t segment_guard_size() { return (secure_enabled() && os_page_size() <= SMALL_PAGE_SIZE / 8) ? os_page_size() : 0; }

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
// Bits i .. i+n-1. pre: i + n <= 64
uint64_t bits(size_t i, size_t n) { return (n >= 64) ? ~uint64_t{0} : ((bit(n) - 1) << i); }

// commit_mask_of/set, purge_expire_of/set: segment_internal.h (read as hints
// by the purge list too).

// Bit i is set iff bits i .. i+n-1 of m are all set (runs of free slices).
uint64_t runs_of(uint64_t m, size_t n) {
  size_t len = 1;
  while (len < n && m != 0) {
    size_t shift = (len < n - len) ? len : n - len;
    m &= m >> shift;
    len += shift;
  }
  return m;
}

// Where page 0's blocks start: after the header, aligned so that blocks
// whose size is a multiple of a power of two (up to MAX_ALIGN_GUARANTEE)
// are aligned to it, as in every other page.
size_t page0_start_offset(const Segment* s, size_t block_size) {
  size_t start = s->blocks_start;
  if (s->page_kind != PageKind::huge) {
    size_t low = block_size & (~block_size + 1);
    if (low > MAX_ALIGN_GUARANTEE) low = MAX_ALIGN_GUARANTEE;
    if (low > MI_CACHE_LINE) start = align_up(start, low);
  }
  return start;
}

// The guard of page (or slice) k: the last OS page of its range.
uint8_t* guard_of(const Segment* s, size_t k) {
  return reinterpret_cast<uint8_t*>(const_cast<Segment*>(s)) + (k + 1) * segment_page_size(s) - s->guard_size;
}

// The mask first, then the protection: a thread stopped in between by a
// fork() leaves its child a guard the mask lists and the OS does not (lifted
// again for nothing), never a protected page the mask does not list, which
// no one would lift: the segment's memory went back to its arena with it,
// and the block a huge segment later made there faulted (fork_stress's
// child, hardened build: about 1 run in 12).
void guard_protect(Segment* s, size_t k) {
  if (!s->guard_protect || (s->guard_mask & bit(k)) != 0) return;
  s->guard_mask |= bit(k);
  if (!os_protect(guard_of(s, k), s->guard_size, true)) s->guard_mask &= ~bit(k);
}

void guard_unprotect(Segment* s, size_t k) {
  if ((s->guard_mask & bit(k)) == 0) return;
  if (os_protect(guard_of(s, k), s->guard_size, false)) s->guard_mask &= ~bit(k);
}

// A page not in use, or a later slice of a large page (PAGE_INNER_SLICE in
// `flags`): no owner, and a free of a pointer into it takes the slow path,
// which reports it or (a slice) follows it to its page (types.h: PAGE_FREE_CHECKED).
void page_flags_not_in_use(Page* page, uintptr_t flags = 0) {
  page->xowner.store(PAGE_FREE_CHECKED | flags, std::memory_order_relaxed);
}

// The bytes a large page of `count` slices from slice `index` needs for a
// block of block_size: page 0 starts after the header, and a page that
// reaches the last slice ends before the segment's guard page.
size_t large_span_need(const Segment* s, size_t index, size_t count, size_t block_size) {
  const size_t head = (index == 0) ? page0_start_offset(s, block_size) : 0;
  const size_t tail = (index + count == s->capacity) ? s->guard_size : 0;
  return head + block_size + tail;
}

// ---------------------------------------------------------------------------
// Segment queues of the owner thread
// ---------------------------------------------------------------------------
// The length of the longest run of set bits in m.
size_t longest_run(uint64_t m) {
  size_t best = 0;
  while (m != 0) {
    m >>= bit_scan_forward(m);
    const size_t len = (~m == 0) ? 64 : bit_scan_forward(~m);
    if (len > best) best = len;
    if (len >= 64) break;
    m >>= len;
  }
  return best;
}

// The free-queue bin of a large segment with free slices free_mask (!= 0).
size_t large_bin_of(uint64_t free_mask) { return longest_run(free_mask) - 1; }

SegmentQueue* free_queue_of(Segment* s, SegmentsTld* tld) {
  if (s->page_kind == PageKind::small) return &tld->small_free;
  if (s->page_kind == PageKind::medium) return &tld->medium_free;
  if (s->page_kind == PageKind::large) return &tld->large_free[s->free_run_bin];
  return nullptr;
}

void free_queue_remove(Segment* s, SegmentsTld* tld) {
  if (!s->in_free_queue) return;
  SegmentQueue* q = free_queue_of(s, tld);
  // pre: s is in q (for a large segment: the bin it was put in)
  MI_ASSERT(q != nullptr && (s->prev != nullptr) != (q->first == s) && (s->next != nullptr) != (q->last == s));
  if (s->prev != nullptr) s->prev->next = s->next;
  else q->first = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  else q->last = s->prev;
  s->next = s->prev = nullptr;
  s->in_free_queue = false;
  if (s->page_kind == PageKind::large && q->first == nullptr) tld->large_free_bins &= ~(uint64_t{1} << s->free_run_bin);
}

// Puts s in the free queue its free pages call for: none when it has none; a
// large segment in the bin of its longest free run (moved when that changed).
void free_queue_push(Segment* s, SegmentsTld* tld) {
  if (s->page_kind == PageKind::large) {
    if (s->free_mask == 0) {
      free_queue_remove(s, tld);
      return;
    }
    const size_t bin = large_bin_of(s->free_mask);
    if (s->in_free_queue) {
      if (s->free_run_bin == bin) return;
      free_queue_remove(s, tld);
    }
    s->free_run_bin = static_cast<uint8_t>(bin);
    tld->large_free_bins |= uint64_t{1} << bin;
  }
  SegmentQueue* q = free_queue_of(s, tld);
  if (q == nullptr || s->in_free_queue) return;
  MI_ASSERT(s->free_mask != 0 && s->next == nullptr && s->prev == nullptr);
  s->next = nullptr;
  s->prev = q->last;
  if (q->last != nullptr) q->last->next = s;
  else q->first = s;
  q->last = s;
  s->in_free_queue = true;
}

// The segment state lock: bit 0 = held, the other bits = the fork epoch it
// was taken in. A fork() child starts a new epoch, so a lock that a thread
// held when the process forked (that thread is not in the child) counts as
// free there instead of blocking the child for ever.
std::atomic<uint32_t> fork_epoch{0};

}  // namespace

bool segment_try_lock(Segment* s) {
  const uint32_t epoch = fork_epoch.load(std::memory_order_relaxed);
  uint32_t v = s->state_lock.load(std::memory_order_relaxed);
  if ((v & 1) != 0 && (v >> 1) == (epoch & 0x7fffffff)) return false;
  return s->state_lock.compare_exchange_strong(v, ((epoch & 0x7fffffff) << 1) | 1, std::memory_order_acquire);
}

void segment_lock(Segment* s) {
  int spins = 0;
  while (!segment_try_lock(s)) {
    if (++spins > 16) sched_yield();  // a purge (an madvise) is running on it
  }
}

void segment_unlock(Segment* s) { s->state_lock.store(0, std::memory_order_release); }

namespace {

// ---------------------------------------------------------------------------
// Every live segment (segments_visit, for the statistics). A segment joins in
// segment_alloc and leaves in segment_free before its memory goes back, both
// under all_lock, so a walk that holds the lock never reads a segment whose
// memory is being released (it may be unmapped, or protected in debug
// builds). Costs one uncontended lock per segment made or freed (4 MiB).
// ---------------------------------------------------------------------------
pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
Segment* all_first = nullptr;

void all_add(Segment* s) { locked_list_add<Segment, &Segment::all_next, &Segment::all_prev>(&all_lock, &all_first, s); }

void all_remove(Segment* s) {
  locked_list_remove<Segment, &Segment::all_next, &Segment::all_prev>(&all_lock, &all_first, s);
}

// ---------------------------------------------------------------------------
// Commit and purge of pages
// ---------------------------------------------------------------------------
bool page_ensure_committed(Segment* s, size_t i) {
  if ((commit_mask_of(s) & bit(i)) != 0) return true;
  if ((s->purged_mask & bit(i)) != 0) {
    // purged at the end of the last interval and wanted again already
    s->purged_mask &= ~bit(i);
    s->purge_regretted = true;
  }
  size_t size;
  uint8_t* start = page_range(s, i, &size);
  if (s->memid.is_accessible) {
    os_stat_committed(static_cast<int64_t>(size), s->memid.account);  // mapped read-write already: accounting only
  } else {
    bool zero = false;
    if (size > 0 && !os_commit(start, size, &zero, s->memid.account)) return false;
    s->guard_mask &= ~bit(i);  // the commit made the page's guard accessible too
  }
  commit_mask_set(s, commit_mask_of(s) | bit(i));
  s->committed_bytes += size;
  return true;
}

void page_purge_now(Segment* s, size_t i) {
  if ((commit_mask_of(s) & bit(i)) == 0) return;
  size_t size;
  uint8_t* start = page_range(s, i, &size);
  if (size == 0) return;
  if (os_purge(start, size, true, s->memid.account)) {
    commit_mask_set(s, commit_mask_of(s) & ~bit(i));
    s->committed_bytes -= size;
    if (i != 0) s->dirty_mask &= ~bit(i);  // reads as zero again (page 0 shares memory with the header)
  }
}

}  // namespace

bool segment_purge_due_pages(Segment* s, bool all, int64_t now) {
  uint64_t pending =
      (all ? (s->purge_mask | s->purge_aged_mask) : s->purge_aged_mask) & s->free_mask & commit_mask_of(s);
  if (!all) purge_backoff_adapt(s);
  s->purged_mask = 0;
  while (pending != 0) {
    size_t i = bit_scan_forward(pending);
    size_t n = (~(pending >> i) == 0) ? 64 - i : bit_scan_forward(~(pending >> i));
    size_t size0, sizen;
    uint8_t* start = page_range(s, i, &size0);
    uint8_t* last = page_range(s, i + n - 1, &sizen);
    size_t size = static_cast<size_t>(last + sizen - start);
    if (size > 0 && os_purge(start, size, true, s->memid.account)) {
      uint64_t mask = bits(i, n);
      commit_mask_set(s, commit_mask_of(s) & ~mask);
      s->committed_bytes -= size;
      s->dirty_mask &= ~(mask & ~uint64_t{1});  // reads as zero again (page 0 shares memory with the header)
      s->purged_mask |= mask;
    }
    pending &= ~bits(i, n);
  }
  if (all) {
    s->purge_mask = 0;
    s->purge_aged_mask = 0;
  } else {
    s->purge_aged_mask = s->purge_mask & commit_mask_of(s);
    s->purge_mask = 0;
  }
  if (s->purge_aged_mask == 0) {
    purge_expire_set(s, 0);
    return false;
  }
  purge_interval_start(s, now);
  return true;
}

namespace {

// Schedules the purge of pages [i, i+n) (just freed).
// pre: the segment lock is held
void page_schedule_purge(Segment* s, size_t i, size_t n) {
  if (s->memid.is_pinned) return;
  const uint64_t mask = bits(i, n) & commit_mask_of(s);
  if (mask == 0) return;
  long delay = option_get(mi_option_purge_delay);
  if (delay < 0) return;
  if (delay == 0) {
    for (size_t k = i; k < i + n; k++) page_purge_now(s, k);
    return;
  }
  s->purge_mask |= mask;
  // A pending purge is put off a little (purge_extend_delay) each time more
  // pages are freed, so a busy thread that frees and reuses pages does not
  // purge and fault them in again all the time (measured: the mixed-size
  // benchmark made 108 K purge calls and ran 9x slower with a hard 10 ms);
  // but never past purge_delay * arena_purge_mult from when it was first
  // scheduled, so memory is returned under continuous load too. Only the
  // first scheduling reads the clock (it showed up at 6% of that benchmark).
  if (purge_expire_of(s) == 0) {
    purge_interval_start(s, os_clock_ms());
  } else {
    int64_t extended = purge_expire_of(s) + option_get(mi_option_purge_extend_delay);
    purge_expire_set(s, (extended < s->purge_deadline_ms) ? extended : s->purge_deadline_ms);
  }
  purge_list_add(s);
}

// ---------------------------------------------------------------------------
// Creating and freeing segments
// ---------------------------------------------------------------------------
// The bytes of memory a segment's memid spans from its start (arena blocks,
// an OS mapping); `fallback` when it does not say.
size_t memid_reach(const MemId& memid, size_t fallback) {
  if (memid.kind == MemKind::arena) return size_t{memid.block_count} * ARENA_BLOCK_SIZE;
  if (memid.kind == MemKind::os && memid.os_size != 0) return memid.os_size;
  return fallback;
}

// Whether a huge segment in this memory keeps what lies past its end
// committed (huge_segment_trim): when its block is a realloc's growth and
// the memory came committed and used before.
bool huge_keeps_tail(const MemId& memid, const SegmentsTld* tld) {
  return tld->realloc_growing && memid.initially_committed && !memid.initially_zero && !memid.is_large &&
         !memid.is_pinned;
}

// A huge segment of segment_size bytes at s, in memory that reaches further
// (not pinned, not on large OS pages): the rest of the 2 MiB range the
// segment ends in is protected when it is readable and writable (committed,
// or an arena mapped read-write), so that transparent huge pages (`always`
// on Debian) cannot fault a 2 MiB page in across the block's end: Linux
// makes a huge page only where the whole aligned 2 MiB lies in one mapping
// of one protection; only where the kernel may do so (thp.h
// thp_may_back_huge_segments). Returns the bytes protected
// (Segment::tail_protected).
// What lies past segment_size and came committed is given back, but for a
// block that realloc is growing, in memory used before (arena blocks freed
// but not purged yet; keep_tail, huge_keeps_tail): it grows into it
// (segment_huge_page_try_grow), and giving it back cost a page fault per
// 4 KiB when it did (realloc_bench: 230 MiB of faults). A block malloc'd at
// its size keeps nothing resident that it does not use. A kept tail is
// counted as the segment's (segment_alloc); the arena purges it after the
// segment is freed.
size_t huge_segment_trim(Segment* s, size_t segment_size, MemId& memid, bool keep_tail) {
  uint8_t* base = reinterpret_cast<uint8_t*>(s);
  const size_t end = align_up(segment_size, os_page_size());
  const size_t reach = memid_reach(memid, end);
  if (reach <= end) return 0;
  const bool readable = memid.initially_committed || memid.is_accessible;
  if (memid.initially_committed && !keep_tail) {
    // committed and counted as a whole: keep (and count) only the segment
    if (!os_decommit(base + end, reach - end, true, memid.account)) return 0;  // (said why) counted as a whole then
  }
  if (!readable || !thp_may_back_huge_segments()) return 0;
  size_t tail_end = align_up(end, os_large_page_size());
  if (tail_end > reach) tail_end = reach;
  if (tail_end <= end) return 0;  // ends on a 2 MiB boundary
  return os_protect(base + end, tail_end - end, true) ? tail_end - end : 0;
}

Segment* segment_alloc(Heap* heap, PageKind kind, size_t required, size_t huge_alignment, SegmentsTld* tld) {
  const size_t capacity = segment_capacity(kind);
  const size_t info_size = segment_info_size(capacity);
  const size_t guard = segment_guard_size();
  size_t segment_size = SEGMENT_SIZE;
  if (kind == PageKind::huge) {
    // Sized to the block, to the OS page: the memory it comes in (arena
    // blocks, an OS mapping) is rounded to SEGMENT_SIZE, but only this much
    // is committed, counted and handed out (a 4 MiB block committed 8 MiB).
    size_t extra = (huge_alignment > MAX_ALIGN_IN_PAGE) ? huge_alignment : 0;
    size_t header = (guard > 0) ? header_commit_size(info_size, guard) : info_size;
    size_t need;
    if (__builtin_add_overflow(header + extra + guard, required, &need) || need > (size_t{1} << 46)) return nullptr;
    segment_size = align_up(need, os_page_size());
  }
  // The first eager_commit_delay segments of a thread commit page by page, so
  // short-lived threads stay small; large segments always commit. A huge
  // segment commits its one page when it is claimed: its own size, not that
  // of the memory around it.
  bool eager_delay = tld->eager_delay_left > 0;
  bool commit = (kind == PageKind::large) ||
                (kind != PageKind::huge && !eager_delay && option_is_enabled(mi_option_eager_commit));
  MemId memid;
  // Pinned (huge page) memory is committed anyway: every segment may use it.
  void* p = arena_alloc(segment_size, SEGMENT_SIZE, commit, true, heap->arena_id, heap->numa_node, &memid);
  if (p == nullptr) return nullptr;
  segment_place_thp(p, segment_size, kind, memid);  // before the header's first touch
  Segment* s = static_cast<Segment*>(p);
  size_t tail_protected = 0;
  const bool keep_tail = kind == PageKind::huge && huge_keeps_tail(memid, tld);
  if (kind == PageKind::huge && !memid.is_pinned && !memid.is_large) {
    tail_protected = huge_segment_trim(s, segment_size, memid, keep_tail);
  }
  if (memid.kind == MemKind::arena && !memid.initially_committed && !memid.initially_zero && kind != PageKind::huge &&
      !memid.is_pinned) {
    // Used before, handed out uncommitted: it may still hold resident pages.
    // The arena forgets what a range freed partly committed had committed
    // (arena_free) while its purge waits, and this claim cancelled that
    // purge; committed page by page, the pages this segment never used stayed
    // resident for its life, where no purge could reach them (a new thread
    // over a freed huge block's memory: 4 MiB). Committed whole instead, so
    // that they are purged with the rest of its unused pages (below).
    if (!arena_commit_held(&memid)) {
      arena_free(p, segment_size, 0, memid);
      return nullptr;
    }
  }
  if (!memid.initially_committed) {
    // commit the header now; pages are committed when handed out, but for a
    // huge segment's one page: all of it at once (one system call)
    bool zero = false;
    size_t header = (kind == PageKind::huge) ? segment_size : header_commit_size(info_size, guard);
    if (memid.is_accessible) {
      os_stat_committed(static_cast<int64_t>(header), memid.account);
    } else if (!os_commit(s, header, &zero, memid.account)) {
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
  s->guard_size = guard;
  s->blocks_start = (guard > 0) ? header_commit_size(info_size, guard) : info_size;
  // mprotect cannot split a 2 MiB or 1 GiB page: no guards in such memory (its layout keeps their room)
  s->guard_protect = guard > 0 && !memid.is_pinned && !memid.is_large;
  s->guard_mask = 0;
  if (s->guard_protect)
    (void)os_protect(reinterpret_cast<uint8_t*>(s) + align_up(info_size, os_page_size()), guard, true);
  arena_memid_ids(memid, &s->arena_id, &s->exclusive_arena);
  s->free_mask = all_pages_mask(capacity);
  s->dirty_mask = memid.initially_zero ? 0 : all_pages_mask(capacity);
  s->tail_protected = tail_protected;
  s->hole_offset = 0;
  s->hole_size = 0;
  s->fork_orphan = false;
  if (memid.initially_committed) {
    commit_mask_set(s, all_pages_mask(capacity));
    // (pinned memory: all of it, a huge segment's reach included; so where
    // a huge segment keeps what lies past its end committed: huge_segment_trim)
    s->committed_bytes =
        (kind == PageKind::huge && (memid.is_pinned || keep_tail)) ? memid_reach(memid, segment_size) : segment_size;
  } else if (kind == PageKind::huge) {
    commit_mask_set(s, all_pages_mask(capacity));  // committed above
    s->committed_bytes = segment_size;
  } else {
    commit_mask_set(s, 0);
    s->committed_bytes = header_commit_size(info_size, guard);
  }
  for (size_t i = 0; i < capacity; i++) {
    s->pages[i].segment_idx = static_cast<uint8_t>(i);
    page_flags_not_in_use(&s->pages[i]);
  }
  if (kind == PageKind::large && guard > 0) guard_protect(s, capacity - 1);  // the segment's end (committed: large)
  s->thread_id.store(thread_id(), std::memory_order_release);
  segmap_register(s);
  all_add(s);

  if (kind != PageKind::huge && !memid.initially_zero && !memid.is_pinned) {
    // Memory used before: its pages hold the old owner's data, resident until
    // purged. Those this segment does not take within the purge delay are
    // purged as freed pages are (a page claimed before cancels its part).
    segment_lock(s);
    page_schedule_purge(s, 0, capacity);
    segment_unlock(s);
  }
  if (tld->eager_delay_left > 0) tld->eager_delay_left--;
  tld->count++;
  if (tld->count > tld->peak_count) tld->peak_count = tld->count;
  tld->current_size += segment_size;
  if (tld->current_size > tld->peak_size) tld->peak_size = tld->current_size;
  stat_increase(stats_global.segments, 1);
  return s;
}

// tld: the owner's, or null for a segment of no live thread (a fork() child's).
void segment_free(Segment* s, SegmentsTld* tld) {
  MI_ASSERT(s->used == 0);
  if (tld != nullptr) free_queue_remove(s, tld);
  test_point(TestPoint::segment_freeing);  // (tests/unit/segment_test.cpp: a purge takes the lock here)
  // Off the purge list under the segment's lock: a purge another thread runs
  // on it (segments_try_purge) took it off the list and puts it back at the
  // end if pages stay to purge, holding the lock; taken off before the lock,
  // it came back after, and its memory, handed out again as a new segment,
  // stayed on the list (a walk read the new header as a new segment's
  // memset wrote it: ThreadSanitizer, then a crash, in the tsan suite's
  // alloc_stress).
  segment_lock(s);  // wait for a purge another thread may be running on it
  purge_list_remove(s);
  segment_unlock(s);
  all_remove(s);  // and for a statistics walk
  segmap_unregister(s);
  if (tld != nullptr) {
    tld->count--;
    tld->current_size -= s->segment_size;
  }
  stat_decrease(stats_global.segments, 1);
  s->thread_id.store(0, std::memory_order_relaxed);
  if (s->guard_protect && s->memid.kind != MemKind::os) {
    // the arena may hand this memory out again, as committed memory: no guard may stay
    (void)os_protect(reinterpret_cast<uint8_t*>(s) + align_up(s->segment_info_size, os_page_size()), s->guard_size,
                     false);
    for (uint64_t m = s->guard_mask; m != 0; m &= m - 1) guard_unprotect(s, bit_scan_forward(m));
    if (s->guard_mask != 0) {
      // mprotect failed (out of memory for the kernel's mapping records):
      // keep the memory from being handed out with an inaccessible page in it
      warning_message("segment at %p: a guard page could not be lifted; its %zu bytes are not reused",
                      static_cast<void*>(s), s->segment_size);
      return;
    }
  }
  if (s->tail_protected > 0 && s->memid.kind != MemKind::os) {
    // readable and writable again, as the arena handed it out
    uint8_t* tail = reinterpret_cast<uint8_t*>(s) + align_up(s->segment_size, os_page_size());
    if (!os_protect(tail, s->tail_protected, false)) {
      warning_message(
          "segment at %p: the end of a huge block's memory could not be made accessible again; its %zu bytes "
          "are not reused",
          static_cast<void*>(s), s->segment_size);
      return;
    }
  }
#if MI_DEBUG
  if (s->hole_size > 0 && s->memid.kind != MemKind::os) {
    // os_decommit protects in debug builds: readable and writable again, as the arena handed it out
    (void)os_protect(reinterpret_cast<uint8_t*>(s) + s->hole_offset, s->hole_size, false);
  }
#endif
  MemId memid = s->memid;  // the header goes away with the memory
  if (memid.kind == MemKind::os && !memid.initially_committed && !memid.is_pinned && s->committed_bytes > 0) {
    // committed here page by page (os_free uncounts only a mapping that came committed)
    os_stat_committed(-static_cast<int64_t>(s->committed_bytes), memid.account);
  }
  arena_free(s, s->segment_size, s->committed_bytes, memid);
}

// Sets up page i of s, spanning n slices (large pages; else n = 1), for
// blocks of block_size (or one huge block).
Page* segment_page_claim(Segment* s, size_t i, size_t n, size_t block_size) {
  MI_ASSERT(i + n <= s->capacity && (s->free_mask & bits(i, n)) == bits(i, n));  // free slices only
  MI_ASSERT(s->thread_id.load(std::memory_order_relaxed) == thread_id());
  const uint64_t mask = bits(i, n);
  segment_lock(s);
  // (a large page's slices are mostly all committed: one test for the span)
  for (uint64_t todo = mask & ~commit_mask_of(s); todo != 0; todo &= todo - 1) {
    if (!page_ensure_committed(s, bit_scan_forward(todo))) {
      segment_unlock(s);
      return nullptr;
    }
  }
  Page* page = &s->pages[i];
  s->free_mask &= ~mask;
  s->purge_mask &= ~mask;  // reused before its purge: cancel it
  s->purge_aged_mask &= ~mask;
  s->used++;
  bool zero = (s->dirty_mask & mask) == 0;
  s->dirty_mask |= mask;
  segment_unlock(s);

  uint8_t* base = reinterpret_cast<uint8_t*>(s);
  uint8_t* start = base + i * segment_page_size(s);
  uint8_t* end = start + n * segment_page_size(s);
  if (i == 0) start = base + page0_start_offset(s, block_size);
  // the blocks end at the page's guard (a large page: at the segment's, if it reaches it)
  const size_t tail_guard = (s->page_kind == PageKind::large && i + n < s->capacity) ? 0 : s->guard_size;
  const size_t page_size = static_cast<size_t>(end - start) - tail_guard;
  if (tail_guard > 0) guard_protect(s, i + n - 1);
  page->page_start = start;
  page->is_zero_init = zero ? 1 : 0;
  page->slice_count = static_cast<uint8_t>(n);
  page->slice_offset = 0;
  if (s->page_kind == PageKind::huge) {
    page->block_size = page_size;
    page->reserved = 1;
  } else {
    MI_ASSERT(page_size >= block_size);
    page->block_size = block_size;
    if (s->page_kind != PageKind::large) page->last_block_size = static_cast<uint32_t>(block_size);
    // a large page holds one block, which may grow into the page's slack and
    // the free slices after it (segment_large_page_try_grow); a medium block
    // realloc grows may be a third of its first slice
    page->reserved = (s->page_kind == PageKind::large) ? 1 : static_cast<uint16_t>(page_size / block_size);
  }
  page_capacity_set(page, 0);
  page->free = nullptr;
  page->local_free = nullptr;
  page->used = 0;
  // ours (the claiming thread owns s): frees take the fast path, but for a
  // large or huge page, which holds one block: its frees are checked (api/free.cpp)
  const uintptr_t checked =
      (s->page_kind == PageKind::large || s->page_kind == PageKind::huge) ? uintptr_t{PAGE_FREE_CHECKED} : 0;
  page->xowner.store(s->thread_id.load(std::memory_order_relaxed) | checked, std::memory_order_release);
  page->free_is_zero = 0;
  page->retire_expire = 0;
  page->xthread_free.store(static_cast<uintptr_t>(Delayed::no_delayed_free), std::memory_order_relaxed);
  page->xheap.store(nullptr, std::memory_order_relaxed);
  page->next = page->prev = nullptr;
  // The other slices of a large page point back to it; their flags send the
  // free fast path (which indexes by slice) to the slow path, which follows them.
  for (size_t k = 1; k < n; k++) {
    Page* inner = &s->pages[i + k];
    inner->slice_offset = static_cast<uint8_t>(k);
    page_flags_not_in_use(inner, PAGE_INNER_SLICE);
  }
  // In use once set up: a fork() child finds the pages of a thread that did
  // not come along either in use and whole, or not in use (segments_fork_child
  // gives the latter back to the segment).
  page_in_use_set(page, true);
  stat_increase(stats_global.pages, 1);
  return page;
}

// The first of the candidate runs (bit i: a run of n slices from i, or of n0
// from 0); false if none.
MI_ALWAYS_INLINE bool span_pick(const Segment* s, uint64_t candidates, size_t n, size_t n0, size_t* index,
                                size_t* count) {
  if (candidates == 0) return false;
  *index = bit_scan_forward(candidates);
  *count = (*index == 0) ? n0 : n;
  return *index + *count <= s->capacity;
}

// Secure mode: span_pick, of the candidate runs that leave room for the
// segment's guard page where they reach the last slice. Out of line (a tail
// call): the common case needs no stack frame.
MI_NOINLINE bool span_leaving_the_guard(const Segment* s, uint64_t candidates, size_t n, size_t n0, size_t block_size,
                                        size_t* index, size_t* count) {
  const size_t slice = size_t{1} << s->page_shift;
  const size_t last = s->capacity - n;
  if (last > 0 && last < 64 && large_span_need(s, last, n, block_size) > n * slice) candidates &= ~bit(last);
  if (n0 == s->capacity && large_span_need(s, 0, n0, block_size) > n0 * slice) candidates &= ~uint64_t{1};
  return span_pick(s, candidates, n, n0, index, count);
}

// A run of slices for a large page of block_size in s among the slices of
// `usable` (free ones, or free and committed ones); false if none.
bool segment_find_span_in(const Segment* s, uint64_t usable, size_t block_size, size_t* index, size_t* count) {
  const size_t slice = size_t{1} << s->page_shift;
  const size_t n = (block_size + slice - 1) >> s->page_shift;  // (a shift: a division cost 2x this search's time)
  uint64_t candidates = runs_of(usable, n);
  size_t n0 = n;
  if ((candidates & 1) != 0) {
    // slice 0 holds the header: a run from it needs n0 >= n slices (so only
    // where a run of n starts there; most searches skip this)
    n0 = divide_up(page0_start_offset(s, block_size) + block_size, slice);
    if (n0 > n && (n0 > s->capacity || (runs_of(usable, n0) & 1) == 0)) candidates &= ~uint64_t{1};
  }
  // a run must end inside the segment
  candidates &= (n >= 64) ? 0 : (~uint64_t{0} >> (n - 1));
  if (MI_UNLIKELY(s->guard_size > 0)) return span_leaving_the_guard(s, candidates, n, n0, block_size, index, count);
  return span_pick(s, candidates, n, n0, index, count);
}

// A free run of slices for a large page of block_size in s; false if none.
bool segment_find_span(const Segment* s, size_t block_size, size_t* index, size_t* count) {
  return segment_find_span_in(s, s->free_mask, block_size, index, count);
}

// Every page in use is abandoned: the segment leaves this thread. It must not
// keep this thread's id: a thread created later may get the same thread
// pointer and would take the segment for its own.
void segment_abandon(Segment* s, SegmentsTld* tld) {
  MI_ASSERT(s->abandoned == s->used && s->used > 0);
  free_queue_remove(s, tld);
  if (option_is_enabled(mi_option_abandoned_page_purge)) {
    purge_list_remove(s);
    segment_lock(s);
    segment_purge_due_pages(s, true, 0);
    segment_unlock(s);
  }  // else (the default) its pending purges stay on the purge list: any thread
     // does them when due, unless the next thread takes the pages first
  tld->count--;
  tld->current_size -= s->segment_size;
  stat_increase(stats_global.segments_abandoned, 1);
  s->thread_id.store(0, std::memory_order_release);
  // (not before: a segment held for a moment to free its empty pages,
  // heap/reclaim.cpp's foreign collect, was never queued)
  MI_ASSERT_EXPENSIVE(segment_is_valid(s));
  abandoned_push(s);
}

// Segments a large-page search looks at before it settles for a span that
// needs a commit (or for a new segment): the search stays short however many
// large segments the thread has.
constexpr int LARGE_SEARCH_MAX = 8;
// The same for a small or medium page (free_segment_find).
constexpr int FREE_SEARCH_MAX = 8;

// A span for a large page of block_size in one of the thread's large
// segments that the heap may use; nullptr if none has room. Looks at the
// bins whose longest run may hold the page, the shortest first (the fullest
// segments: the others stay free for larger pages and to be released), and
// prefers a span whose slices are all still committed: taking a purged one
// while committed ones wait for their purge means a purge and page faults
// for nothing (mixed_bench faulted 1.5-2.5x as often as mimalloc without it).
Segment* large_segment_find(const Heap* heap, size_t block_size, SegmentsTld* tld, size_t* index, size_t* count) {
  const size_t n = divide_up(block_size, SMALL_PAGE_SIZE);  // slices: a run from slice 0 needs more (the header)
  if (n > LARGE_FREE_BINS) return nullptr;
  uint64_t bins = tld->large_free_bins & (~uint64_t{0} << (n - 1));
  Segment* fallback = nullptr;
  size_t fb_index = 0, fb_count = 0;
  int looked = 0;
  while (bins != 0) {
    const size_t b = bit_scan_forward(bins);
    bins &= bins - 1;
    for (Segment* s = tld->large_free[b].first; s != nullptr; s = s->next) {
      if (++looked > LARGE_SEARCH_MAX && fallback != nullptr) break;
      if (!segment_is_suitable(s, heap)) continue;
      const uint64_t committed = s->free_mask & commit_mask_of(s);  // (a purge may clear bits meanwhile: claim commits)
      if (committed != 0 && segment_find_span_in(s, committed, block_size, index, count)) return s;
      if (fallback == nullptr && committed != s->free_mask && segment_find_span(s, block_size, &fb_index, &fb_count)) {
        fallback = s;
      }
    }
    if (looked > LARGE_SEARCH_MAX && fallback != nullptr) break;
  }
  if (fallback != nullptr) {
    *index = fb_index;
    *count = fb_count;
  }
  return fallback;
}

// The free page of s (small or medium pages) to take for blocks of
// block_size: a page still committed first (taking a purged one while
// committed ones wait for their purge means a purge and page faults for
// nothing), of those the one that held blocks of this size last, else the
// lowest. A page's resident memory is what the sizes that used it touched:
// taken by its own size again, a page needs no more of it; taken by
// another, it touches its own extent too, and when pages go back to the
// segment and are taken again often (a producer whose blocks a consumer
// frees: each page emptied, given back, taken again), every page ends up
// resident to the extent of the largest user it had (xthread_bench, 32 B -
// 4 KiB blocks: peak RSS 4952 -> 4124 KiB, medians of 11 alternated runs,
// mimalloc 2.0.9 4316).
size_t free_page_pick(const Segment* s, size_t block_size) {
  const uint64_t committed_free = s->free_mask & commit_mask_of(s);
  if (committed_free == 0) return bit_scan_forward(s->free_mask);
  for (uint64_t m = committed_free; m != 0; m &= m - 1) {
    const size_t i = bit_scan_forward(m);
    if (s->pages[i].last_block_size == block_size) return i;
  }
  return bit_scan_forward(committed_free);
}

// The segment of q (small or medium pages) to take a page from: of the
// first FREE_SEARCH_MAX that the heap may use, the one at the lowest address
// with a free page still committed; else the first it may use (nullptr:
// none). With the lowest page of the lowest segment first, a working set
// that moves (blocks freed in the order they were allocated, as by a
// consumer thread) stays in the fewest pages: the queue's order (a segment
// goes to its back when a page of it is freed) let a producer fill the next
// segment's untouched pages while the pages emptied behind it waited, and
// both segments ended up touched whole: shape-churn, one producer on this
// host, peak 10.3 MiB and 2215 page faults against 6.7 and 1287 this way
// (mimalloc 2.0.9: 6.6 and 1318).
Segment* free_segment_find(const Heap* heap, SegmentQueue* q) {
  Segment* fallback = nullptr;
  Segment* best = nullptr;
  int looked = 0;
  for (Segment* s = q->first; s != nullptr; s = s->next) {
    if (++looked > FREE_SEARCH_MAX && (best != nullptr || fallback != nullptr)) break;
    if (!segment_is_suitable(s, heap)) continue;
    if (fallback == nullptr) fallback = s;
    // (a purge may clear the bit meanwhile: claim commits)
    if ((s->free_mask & commit_mask_of(s)) == 0) continue;
    if (best == nullptr || reinterpret_cast<uintptr_t>(s) < reinterpret_cast<uintptr_t>(best)) best = s;
  }
  return best != nullptr ? best : fallback;
}

}  // namespace

size_t segment_huge_usable_size(size_t size) noexcept {
  const size_t info = segment_info_size(1);
  const size_t guard = segment_guard_size();
  const size_t header = (guard > 0) ? header_commit_size(info, guard) : info;
  return align_up(header + align_up(size, WORD_SIZE) + guard, os_page_size()) - header - guard;
}

int segment_node_for(const Heap* heap) noexcept {
  if (heap->numa_node >= 0) return heap->numa_node;
  return (numa_node_count() > 1) ? numa_current_node() : -1;
}

bool segment_is_suitable(const Segment* segment, const Heap* heap) noexcept {
  // exclusive_arena: the arena id if the segment is in an exclusive arena, else 0
  if (heap->arena_id != 0 ? segment->arena_id != heap->arena_id : segment->exclusive_arena != 0) return false;
  // A heap takes pages only from segments of its node (a default heap: of the
  // node its thread runs on), so a thread's memory stays local.
  // Unbound segments (memory bound to no node) are local by first touch for
  // a thread's own heap, never for a heap that asked for a node.
  if (heap->numa_node >= 0) return segment->numa_node == heap->numa_node || numa_node_count() <= 1;
  if (segment->numa_node >= 0) {
    int want = segment_node_for(heap);
    if (want >= 0 && segment->numa_node != want) return false;
  }
  return true;
}

Page* segment_page_alloc(Heap* heap, size_t block_size, size_t huge_alignment, bool allow_new,
                         SegmentsTld* tld) noexcept {
  PageKind kind = page_kind_of(block_size);
  Page* page = nullptr;
  if (kind == PageKind::small || kind == PageKind::medium) {
    SegmentQueue* q = (kind == PageKind::small) ? &tld->small_free : &tld->medium_free;
    Segment* s = free_segment_find(heap, q);
    if (s == nullptr) {
      if (!allow_new) return nullptr;
      s = segment_alloc(heap, kind, 0, 0, tld);
      if (s == nullptr) return nullptr;
      free_queue_push(s, tld);
    }
    MI_ASSERT(s->free_mask != 0);
    page = segment_page_claim(s, free_page_pick(s, block_size), 1, block_size);
    if (page != nullptr && s->free_mask == 0) free_queue_remove(s, tld);
    MI_ASSERT_EXPENSIVE(segment_is_valid(s));
    return page;
  }
  if (kind == PageKind::large) return segment_large_page_alloc(heap, block_size, allow_new, tld);
  if (!allow_new) return nullptr;
  Segment* s = segment_alloc(heap, kind, block_size, huge_alignment, tld);
  if (s == nullptr) return nullptr;
  page = segment_page_claim(s, 0, 1, block_size);
  if (page == nullptr) {
    segment_free(s, tld);
    return nullptr;
  }
  return page;
}

Page* segment_large_page_alloc(Heap* heap, size_t block_size, bool allow_new, SegmentsTld* tld) noexcept {
  MI_ASSERT(block_size <= LARGE_OBJ_SIZE_MAX);
  size_t index = 0, count = 0;
  Segment* s = large_segment_find(heap, block_size, tld, &index, &count);
  if (s == nullptr) {
    if (!allow_new) return nullptr;
    s = segment_alloc(heap, PageKind::large, 0, 0, tld);
    if (s == nullptr) return nullptr;
    free_queue_push(s, tld);
    if (!segment_find_span(s, block_size, &index, &count)) {  // cannot happen: block_size <= LARGE_OBJ_SIZE_MAX
      segment_free(s, tld);
      return nullptr;
    }
  }
  Page* page = segment_page_claim(s, index, count, block_size);
  free_queue_push(s, tld);  // to the bin of what is left free
  MI_ASSERT_EXPENSIVE(segment_is_valid(s));
  return page;
}

// The empty segments of one kind a thread keeps: one, or a sixteenth of
// all its segments when it has more than 32. A freed segment goes back to
// its arena, which purges it whole after purge_delay * arena_purge_mult
// whether or not the thread is about to need a segment again; a kept one
// has its pages purged as any free page is, after the segment's interval,
// which backs off when purged pages come back soon (purge_backoff_adapt).
// A thread whose working set moves across many segments empties and needs
// segments all the time: mixed 8 B - 512 KiB (tools/bench/mixed_log.c, 2 M
// steps, ~155 segments) made 252 segments for a peak of 155 with one kept,
// and its arena purged 33 of them after they were freed (132 MiB faulted in
// again).
constexpr unsigned KEEP_EMPTY_SHARE_SHIFT = 4;
size_t keep_empty_max(const SegmentsTld* tld) {
  const size_t share = tld->count >> KEEP_EMPTY_SHARE_SHIFT;
  return (share > 1) ? share : 1;
}

// Whether s, now empty, is one of the empty segments of its kind the thread
// keeps (keep_empty_max). pre: s->used == 0
bool segment_keep_when_empty(Segment* s, SegmentsTld* tld) {
  if (s->page_kind == PageKind::huge || s->abandoned > 0) return false;
  // an exclusive arena is often small and shared by the heaps of several threads
  if (s->exclusive_arena != 0) return false;
  if (s->thread_id.load(std::memory_order_relaxed) != thread_id()) return false;
  // (an empty large segment is in the bin of a run of all its slices; s may still be in another)
  SegmentQueue* q = (s->page_kind == PageKind::large) ? &tld->large_free[large_bin_of(all_pages_mask(s->capacity))]
                                                      : free_queue_of(s, tld);
  if (q == nullptr) return false;
  const size_t keep = keep_empty_max(tld);
  size_t empty = 0;
  for (Segment* other = q->first; other != nullptr; other = other->next) {
    if (other != s && other->used == 0 && ++empty >= keep) return false;
  }
  return true;
}

bool segment_page_free(Page* page, SegmentsTld* tld, bool keep_if_empty) noexcept {
  Segment* s = page_segment(page);
  const size_t i = page->segment_idx;
  const size_t n = (page->slice_count > 0) ? page->slice_count : 1;
  MI_ASSERT(page->segment_in_use && s->used > 0);
  MI_ASSERT(!page->free_parked);  // unparked by whoever took the abandoned segment (heap/abandoned_purge)
  asan_page_release(page);
  for (size_t k = 1; k < n; k++) {
    s->pages[i + k].slice_offset = 0;
    page_flags_not_in_use(&s->pages[i + k]);
  }
  test_point(TestPoint::page_slices_released);  // (tests/unit/fork_test.cpp forks here)
  page->slice_count = 0;
  page_in_use_set(page, false);
  page->block_size = 0;
  page_capacity_set(page, 0);
  page->reserved = 0;
  page->used = 0;
  page->free = nullptr;
  page->local_free = nullptr;
  page_flags_not_in_use(page);  // no owner: frees of its pointers take the slow path, which reports them
  page->xheap.store(nullptr, std::memory_order_relaxed);
  page->xthread_free.store(static_cast<uintptr_t>(Delayed::no_delayed_free), std::memory_order_relaxed);
  // (here, the page is neither in use nor free yet: the lock may be a purge's
  // for a while; tests/unit/fork_test.cpp forks at this point)
  test_point(TestPoint::segment_page_free);
  segment_lock(s);
  MI_ASSERT((s->free_mask & bits(i, n)) == 0);  // a page freed twice would count used down twice
  s->free_mask |= bits(i, n);
  s->used--;
  const bool keep = (s->used == 0) && keep_if_empty && segment_keep_when_empty(s, tld);
  if (s->used > 0 || keep) page_schedule_purge(s, i, n);
  segment_unlock(s);
  stat_decrease(stats_global.pages, 1);
  if (s->used == 0 && !keep) {
    segment_free(s, tld);
    return true;
  }
  free_queue_push(s, tld);
  MI_ASSERT_EXPENSIVE(segment_is_valid(s));
  // The thread is leaving and this was the last page not yet abandoned. Once
  // abandoned, another thread may take the segment at once: do not touch it.
  if (s->abandoned > 0 && s->abandoned == s->used) segment_abandon(s, tld);
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
  MI_ASSERT(s->thread_id.load(std::memory_order_relaxed) == 0);  // abandoned, taken off the list by the caller
  s->thread_id.store(thread_id(), std::memory_order_release);
  s->abandoned = 0;
  s->in_free_queue = false;
  s->next = s->prev = nullptr;
  tld->count++;
  if (tld->count > tld->peak_count) tld->peak_count = tld->count;
  tld->current_size += s->segment_size;
  stat_decrease(stats_global.segments_abandoned, 1);
  stat_counter(stats_global.segments_reclaimed, 1);
}

void segment_reclaim_end(Segment* s, SegmentsTld* tld) noexcept {
  if (s->free_mask != 0) free_queue_push(s, tld);
  segment_lock(s);
  if ((s->purge_mask | s->purge_aged_mask) != 0) {
    if (purge_expire_of(s) == 0) purge_expire_set(s, os_clock_ms());
    purge_list_add(s);
  }
  segment_unlock(s);
  MI_ASSERT_EXPENSIVE(segment_is_valid(s));
}

void segments_release_empty(SegmentsTld* tld) noexcept {
  SegmentQueue* queues[2 + LARGE_FREE_BINS] = {&tld->small_free, &tld->medium_free};
  for (size_t b = 0; b < LARGE_FREE_BINS; b++) queues[2 + b] = &tld->large_free[b];
  for (SegmentQueue* q : queues) {
    Segment* s = q->first;
    while (s != nullptr) {
      Segment* next = s->next;
      if (s->used == 0) segment_free(s, tld);
      s = next;
    }
  }
}

void segments_fork_prepare() noexcept {
  purge_list_fork_prepare();
  pthread_mutex_lock(&all_lock);
}
void segments_fork_parent() noexcept {
  pthread_mutex_unlock(&all_lock);
  purge_list_fork_parent();
}
namespace {

// A fork() child: the segment lock was held when the process forked, by a
// thread that is not here. If that was a purge, a page may be decommitted
// (inaccessible in debug builds) while its commit bit is still set: every
// free page marked committed is made accessible again (the commit's own
// call, without counting it: the bit says it was counted).
void fork_child_recommit_free(Segment* s) {
  if (s->memid.is_pinned) return;
  for (uint64_t m = s->free_mask & commit_mask_of(s); m != 0; m &= m - 1) {
    const size_t i = bit_scan_forward(m);
    size_t size;
    uint8_t* start = page_range(s, i, &size);
    if (size > 0 && os_protect(start, size, false)) s->guard_mask &= ~bit(i);  // as page_ensure_committed
  }
}

// A fork() child: s belongs to no thread of the child (its owner did not
// come along, or it was between the abandoned list and a thread). Its owner
// may have stopped half-way through claiming or freeing a page: such a page
// is not in use (segment_page_claim marks it in use last) but is neither
// free in free_mask nor left out of `used`. Its slices are given back, and
// those of a page in use that its heap had not set up yet; then
// every page in use is abandoned as page_abandon would (no heap, no owner,
// cross-thread frees to its own list), and the segment goes on the abandoned
// list, or back to its arena when no page is in use.
void fork_child_abandon(Segment* s, bool owned) {
  const uint64_t all = all_pages_mask(s->capacity);
  uint64_t taken = 0;
  size_t in_use = 0;
  for (size_t i = 0; i < s->capacity; i++) {
    Page* page = &s->pages[i];
    if (!page_is_in_use(page)) continue;
    if (page_capacity(page) == 0) {
      // In transit: taken from the segment (segment_page_alloc) by a thread
      // that stopped before its heap set it up (page_init: its bin, heap and
      // first blocks). None of its blocks was handed out, and its bin may be
      // another size's, the slot's last use: the thread that reclaimed the
      // segment queued it by that bin (fork_stress's child: "blocks of 114688
      // bytes in the queue of 65536"). Back to the segment, as a stray page
      // (below).
      asan_page_release(page);
      page_in_use_set(page, false);
      page->block_size = 0;
      page->reserved = 0;
      page->used = 0;
      page->free = nullptr;
      page->local_free = nullptr;
      page->xheap.store(nullptr, std::memory_order_relaxed);
      page->xthread_free.store(static_cast<uintptr_t>(Delayed::no_delayed_free), std::memory_order_relaxed);
      stat_decrease(stats_global.pages, 1);
      continue;
    }
    in_use++;
    const size_t n = (page->slice_count > 0) ? page->slice_count : 1;
    taken |= bits(i, n);
    // a thread that stopped while freeing the page may have cleared its
    // inner slices already (segment_page_free clears them first): they
    // point back to it again (fork_stress's child, debug build: "slice 28 of
    // page 27 is in use itself or does not point back")
    for (size_t k = 1; k < n && i + k < s->capacity; k++) {
      s->pages[i + k].slice_offset = static_cast<uint8_t>(k);
      page_flags_not_in_use(&s->pages[i + k], PAGE_INNER_SLICE);
    }
    page->xheap.store(nullptr, std::memory_order_relaxed);
    page_set_owner(page, 0);
    // in no queue now: its links led into the vanished thread's queues
    // (page_queue_push expects a page in none)
    page->next = page->prev = nullptr;
    // never_delayed_free, with the blocks other threads freed kept (a
    // thread stopped in delayed_freeing left its block on no list: it stays
    // in use, a leak of one block)
    const uintptr_t tf = page->xthread_free.load(std::memory_order_relaxed);
    page->xthread_free.store((tf & ~DELAYED_MASK) | static_cast<uintptr_t>(Delayed::never_delayed_free),
                             std::memory_order_relaxed);
  }
  const uint64_t stray = all & ~taken & ~s->free_mask;
  for (uint64_t m = stray; m != 0; m &= m - 1) {
    Page* page = &s->pages[bit_scan_forward(m)];
    page->slice_count = 0;
    page->slice_offset = 0;
    page_flags_not_in_use(page);
  }
  s->free_mask = all & ~taken;
  s->purge_mask &= s->free_mask;
  s->purge_aged_mask &= s->free_mask;
  s->used = in_use;
  s->abandoned = in_use;
  if (owned && in_use > 0) s->fork_orphan = true;  // (its owner stopped wherever it was)
  s->in_free_queue = false;
  s->next = s->prev = nullptr;
  const bool listed = abandoned_contains(s);
  s->thread_id.store(0, std::memory_order_release);
  if (in_use == 0) {
    if (listed) abandoned_remove(s);
    segment_free(s, nullptr);
  } else if (!listed) {
    if (owned) stat_increase(stats_global.segments_abandoned, 1);  // (else counted when it was abandoned)
    abandoned_push(s);
  }
}

}  // namespace

void segments_fork_child(uintptr_t self) noexcept {
  purge_list_fork_child();
  pthread_mutex_t fresh_all = PTHREAD_MUTEX_INITIALIZER;
  all_lock = fresh_all;
  const uint32_t parent_epoch = fork_epoch.fetch_add(1, std::memory_order_relaxed) & 0x7fffffff;
  // Every segment (the list is whole: all_lock was held across the fork).
  // Only this thread came along; the others stopped wherever they were.
  for (Segment* s = all_first; s != nullptr;) {
    Segment* next = s->all_next;
    const uint32_t lock = s->state_lock.load(std::memory_order_relaxed);
    if ((lock & 1) != 0 && (lock >> 1) == parent_epoch) {
      s->state_lock.store(0, std::memory_order_relaxed);
      fork_child_recommit_free(s);
    }
    const uintptr_t owner = s->thread_id.load(std::memory_order_relaxed);
    if (owner == self) {
      // ours, whole (this thread was in fork()); a thread that stopped in the
      // middle of a cross-thread free into a full page left it in
      // delayed_freeing, which no thread would leave: back to use_delayed_free
      // (the state that thread found), so that the next such free tells us.
      // (Any thread may have been freeing, one that never allocated too.)
      for (size_t i = 0; i < s->capacity; i++) {
        Page* page = &s->pages[i];
        const uintptr_t tf = page->xthread_free.load(std::memory_order_relaxed);
        if (page_is_in_use(page) && static_cast<Delayed>(tf & DELAYED_MASK) == Delayed::delayed_freeing) {
          page->xthread_free.store((tf & ~DELAYED_MASK) | static_cast<uintptr_t>(Delayed::use_delayed_free),
                                   std::memory_order_relaxed);
        }
      }
    } else if (owner != 0 || !abandoned_contains(s)) {
      fork_child_abandon(s, owner != 0);
    }
    s = next;
  }
}

bool segment_large_page_try_grow(Page* page, size_t new_block_size, SegmentsTld* tld) noexcept {
  Segment* s = page_segment(page);
  if (s->page_kind != PageKind::large || !page->segment_in_use) return false;
  const size_t slice = size_t{1} << s->page_shift;
  const size_t i = page->segment_idx;
  const size_t n = page->slice_count;
  const size_t offset = static_cast<size_t>(page->page_start - (reinterpret_cast<uint8_t*>(s) + i * slice));
  size_t n2 = divide_up(offset + new_block_size, slice);
  if (s->guard_size > 0 && i + n2 == s->capacity) n2 = divide_up(offset + new_block_size + s->guard_size, slice);
  if (n2 <= n) {
    page->block_size = new_block_size;  // fits the span already
    return true;
  }
  if (i + n2 > s->capacity) return false;
  const uint64_t more = bits(i + n, n2 - n);
  if ((s->free_mask & more) != more) return false;
  segment_lock(s);
  for (size_t k = i + n; k < i + n2; k++) {
    if (!page_ensure_committed(s, k)) {
      segment_unlock(s);
      return false;
    }
  }
  s->free_mask &= ~more;
  s->purge_mask &= ~more;
  s->purge_aged_mask &= ~more;
  if ((s->dirty_mask & more) != more) page->is_zero_init = 0;  // only the old part was known zero anyway
  s->dirty_mask |= more;
  segment_unlock(s);
  for (size_t k = n; k < n2; k++) {
    Page* inner = &s->pages[i + k];
    inner->slice_offset = static_cast<uint8_t>(k);
    page_flags_not_in_use(inner, PAGE_INNER_SLICE);
  }
  if (s->guard_size > 0 && i + n2 == s->capacity) guard_protect(s, i + n2 - 1);  // (again, if a commit lifted it)
  page->slice_count = static_cast<uint8_t>(n2);
  page->block_size = new_block_size;
  free_queue_push(s, tld);  // to the bin of what is left free
  MI_ASSERT_EXPENSIVE(segment_is_valid(s));
  return true;
}

bool segment_huge_page_try_grow(Page* page, size_t new_block_size, SegmentsTld* tld) noexcept {
  Segment* s = page_segment(page);
  // Secure mode's guard (the segment's last OS page) would have to move, and
  // 2 MiB or 1 GiB pages cannot be split by mprotect: those blocks move.
  if (s->page_kind != PageKind::huge || !page->segment_in_use || s->guard_size > 0) return false;
  if (s->memid.is_pinned || s->memid.is_large) return false;
  uint8_t* base = reinterpret_cast<uint8_t*>(s);
  const size_t offset = static_cast<size_t>(page->page_start - base);
  const size_t old_end = s->segment_size;  // a multiple of the OS page (segment_alloc)
  size_t new_end;
  if (__builtin_add_overflow(offset, new_block_size, &new_end)) return false;
  new_end = align_up(new_end, os_page_size());
  if (new_end <= old_end) return false;
  // The memory the segment came in reaches further (arena blocks and OS
  // mappings are whole SEGMENT_SIZE units): grow into it.
  const size_t reach = memid_reach(s->memid, old_end);
  if (new_end > reach) return false;
  const size_t grow = new_end - old_end;
  const bool readable = s->memid.initially_committed || s->memid.is_accessible;
  const size_t tail_end = old_end + s->tail_protected;
  // The protected tail (huge_segment_trim) becomes block, as far as needed.
  if (s->tail_protected > 0) {
    const size_t lift = (new_end < tail_end) ? new_end : tail_end;
    if (!os_protect(base + old_end, lift - old_end, false)) return false;
  }
  // committed_bytes: how far from the segment's start its memory is
  // committed (to its end, or to its reach when it came committed)
  const size_t committed_end = s->committed_bytes;
  const size_t commit_from = (committed_end > old_end) ? committed_end : old_end;
  size_t commit = 0;
  if (new_end > commit_from) {
    commit = new_end - commit_from;
    bool zero = false;
    if (s->memid.is_accessible) {
      os_stat_committed(static_cast<int64_t>(commit), s->memid.account);  // mapped read-write already: accounting only
    } else if (!os_commit(base + commit_from, commit, &zero, s->memid.account)) {
      // (as it was: the lifted part of the tail protected again)
      if (s->tail_protected > 0) (void)os_protect(base + old_end, s->tail_protected, true);
      return false;
    }
  }
  // A new protected tail, to the 2 MiB boundary the block now ends in, where
  // the old one does not cover it (transparent huge pages: huge_segment_trim).
  size_t new_tail = 0;
  if (new_end < tail_end) {
    new_tail = tail_end - new_end;
  } else if (readable && thp_may_back_huge_segments()) {
    size_t end2m = align_up(new_end, os_large_page_size());
    if (end2m > reach) end2m = reach;
    if (end2m > new_end && os_protect(base + new_end, end2m - new_end, true)) new_tail = end2m - new_end;
  }
  const size_t old_units = divide_up(old_end, SEGMENT_SIZE);
  // under the list lock: a statistics walk reads segment_size
  pthread_mutex_lock(&all_lock);
  s->segment_size = new_end;
  s->committed_bytes += commit;
  s->tail_protected = new_tail;
  page->block_size = new_end - offset;
  pthread_mutex_unlock(&all_lock);
  if (divide_up(new_end, SEGMENT_SIZE) != old_units) segmap_register(s);  // its further units
  tld->current_size += grow;
  if (tld->current_size > tld->peak_size) tld->peak_size = tld->current_size;
  return true;
}

void segment_huge_page_fit(Page* page, size_t block_start, size_t block_end, SegmentsTld* tld) noexcept {
  Segment* s = page_segment(page);
  if (s->page_kind != PageKind::huge || s->memid.is_pinned || s->memid.is_large) return;
  // Secure mode: the guard, the segment's last OS page (guard_of(s, 0)),
  // moves to the new end; one that could not be protected stays as it is.
  const size_t guard = s->guard_size;
  if (guard > 0 && (s->guard_mask & 1) == 0) return;
  uint8_t* base = reinterpret_cast<uint8_t*>(s);
  const size_t offset = static_cast<size_t>(page->page_start - base);
  const size_t old_end = s->segment_size;
  // (a segment that keeps its tail committed, huge_keeps_tail, is a realloc's: not aligned)
  if (s->committed_bytes != old_end) return;
  const size_t new_end = align_up(offset + block_end, os_page_size()) + guard;
  if (new_end < old_end) {
    const size_t cut = old_end - new_end;
    // Protected first (the new guard and the cut, up to the old guard), then
    // decommitted: the protected tail (huge_segment_trim) stays one range
    // from the segment's end, as segment_free lifts it; past the block no
    // 2 MiB page may be faulted in either.
    if (!os_protect(base + new_end - guard, cut, true)) return;
    if (!os_decommit(base + new_end, cut, true, s->memid.account)) {
      (void)os_protect(base + new_end - guard, cut, false);
      return;
    }
    pthread_mutex_lock(&all_lock);  // a statistics walk reads segment_size
    s->segment_size = new_end;
    s->committed_bytes = new_end;
    s->tail_protected += cut;
    page->block_size = new_end - guard - offset;
    pthread_mutex_unlock(&all_lock);
    segmap_unregister_tail(s, old_end);
    tld->current_size -= cut;
  }
  // The room before the block: never touched by the block (2 MiB-aligned
  // buffers of 2 MiB counted twice their size committed without this), but
  // for its first word: a free links the block through its start, the page
  // start (page_ptr_unalign), so the OS page holding that word stays.
  const size_t hole_from = align_up(offset + WORD_SIZE, os_page_size());
  const size_t hole_to = align_down(offset + block_start, os_page_size());
  if (hole_to > hole_from && os_decommit(base + hole_from, hole_to - hole_from, true, s->memid.account)) {
    pthread_mutex_lock(&all_lock);
    s->hole_offset = hole_from;
    s->hole_size = hole_to - hole_from;
    s->committed_bytes -= s->hole_size;
    pthread_mutex_unlock(&all_lock);
  }
}

void segments_visit(void (*fn)(const Segment* segment, void* arg), void* arg) noexcept {
  pthread_mutex_lock(&all_lock);
  for (const Segment* s = all_first; s != nullptr; s = s->all_next) fn(s, arg);
  pthread_mutex_unlock(&all_lock);
}

void segment_huge_block_reset(Segment* segment, Page* page, void* block) noexcept {
  if (segment->memid.is_pinned) return;
  size_t keep = os_page_size();  // the block's first page holds its free-list link
  uint8_t* start = static_cast<uint8_t*>(block) + keep;
  uint8_t* end = page->page_start + page->block_size;
  if (end > start + keep) os_reset(start, static_cast<size_t>(end - start), segment->memid.account);
}

bool segment_is_valid(const Segment* s, Invalid* why) noexcept {
  if (s == nullptr) return invalid(why, "segment: null");
  const void* sp = static_cast<const void*>(s);
  if (s->page_kind > PageKind::huge || s->capacity != segment_capacity(s->page_kind) ||
      s->page_shift != segment_page_shift(s->page_kind)) {
    return invalid(why, "segment %p: kind %d with %zu pages of shift %zu", sp, static_cast<int>(s->page_kind),
                   s->capacity, s->page_shift);
  }
  if (s->segment_size < SEGMENT_SIZE && s->page_kind != PageKind::huge) {
    return invalid(why, "segment %p: %zu bytes", sp, s->segment_size);
  }
  if (segmap_segment_of(reinterpret_cast<const uint8_t*>(s) + 1) != s) {
    return invalid(why, "segment %p: not in the segment map", sp);
  }
  if (!arena_memory_is_held(s, s->memid, why)) return false;
  const uint8_t* base = reinterpret_cast<const uint8_t*>(s);
  size_t in_use = 0;
  uint64_t taken = 0;  // slices covered by pages in use
  for (size_t i = 0; i < s->capacity; i++) {
    const Page* p = &s->pages[i];
    if (p->segment_idx != i) return invalid(why, "segment %p: page %zu says it is page %u", sp, i, p->segment_idx);
    if (!p->segment_in_use) continue;
    in_use++;
    const size_t n = (p->slice_count > 0) ? p->slice_count : 1;
    if (i + n > s->capacity || (taken & bits(i, n)) != 0) {
      return invalid(why, "segment %p: page %zu spans slices %zu..%zu, beyond the segment or over another page", sp, i,
                     i, i + n);
    }
    taken |= bits(i, n);
    for (size_t k = 1; k < n; k++) {
      if (s->pages[i + k].segment_in_use || s->pages[i + k].slice_offset != k) {
        return invalid(why, "segment %p: slice %zu of page %zu is in use itself or does not point back", sp, i + k, i);
      }
    }
    if (p->reserved == 0 || p->capacity > p->reserved || p->block_size == 0 || p->page_start == nullptr) {
      return invalid(why, "segment %p: page %zu: %u of %u blocks made, of %zu bytes, at %p", sp, i, p->capacity,
                     p->reserved, p->block_size, static_cast<const void*>(p->page_start));
    }
    // The blocks lie in the page's slices (a huge page: in the segment).
    const uint8_t* lo = (i == 0) ? base + s->blocks_start : base + (i << s->page_shift);
    const uint8_t* hi = (s->page_kind == PageKind::huge) ? base + s->segment_size : base + ((i + n) << s->page_shift);
    if (p->page_start < lo || static_cast<size_t>(hi - p->page_start) / p->block_size < p->reserved) {
      return invalid(why, "segment %p: page %zu: %u blocks of %zu bytes at %p do not fit its slices", sp, i,
                     p->reserved, p->block_size, static_cast<const void*>(p->page_start));
    }
  }
  if (in_use != s->used) return invalid(why, "segment %p: %zu pages in use, but used says %zu", sp, in_use, s->used);
  if ((taken | s->free_mask) != all_pages_mask(s->capacity) || (taken & s->free_mask) != 0) {
    return invalid(why, "segment %p: free mask 0x%llx is not the complement of the pages in use 0x%llx", sp,
                   static_cast<unsigned long long>(s->free_mask), static_cast<unsigned long long>(taken));
  }
  if (s->abandoned > s->used) {
    return invalid(why, "segment %p: %zu pages abandoned of %zu in use", sp, s->abandoned, s->used);
  }
  // the purge and commit masks under the lock: a purge in another thread changes them
  Segment* locked = const_cast<Segment*>(s);
  segment_lock(locked);
  const uint64_t purging = s->purge_mask | s->purge_aged_mask;
  const uint64_t committed = commit_mask_of(s);
  segment_unlock(locked);
  if ((purging & ~s->free_mask) != 0) {  // a claim cancels its purge
    return invalid(why, "segment %p: pages 0x%llx in use wait for a purge", sp,
                   static_cast<unsigned long long>(purging & ~s->free_mask));
  }
  if ((taken & ~committed) != 0) {
    return invalid(why, "segment %p: pages 0x%llx in use are not committed", sp,
                   static_cast<unsigned long long>(taken & ~committed));
  }
  // The owner's free queues (SegmentsTld): only the owner reads them.
  if (s->thread_id.load(std::memory_order_relaxed) == thread_id()) {
    const bool queued = s->page_kind != PageKind::huge && s->free_mask != 0;
    if (s->in_free_queue != queued) {
      return invalid(why, "segment %p: %s a free queue with free mask 0x%llx", sp, s->in_free_queue ? "in" : "not in",
                     static_cast<unsigned long long>(s->free_mask));
    }
    if (queued && s->page_kind == PageKind::large && s->free_run_bin != large_bin_of(s->free_mask)) {
      return invalid(why, "segment %p: in the queue of free runs of %u slices, its longest is %zu", sp,
                     s->free_run_bin + 1, longest_run(s->free_mask));
    }
  }
  return true;
}

namespace {

// One free queue of the thread's segments: linked both ways, each segment
// the thread's, of the queue's kind and bin, with a free page.
bool free_queue_is_valid(const SegmentQueue* q, PageKind kind, size_t bin, size_t limit, size_t* count, Invalid* why) {
  const Segment* prev = nullptr;
  for (const Segment* s = q->first; s != nullptr; s = s->next) {
    const void* sp = static_cast<const void*>(s);
    if (++*count > limit) return invalid(why, "free queues: more segments than the thread's %zu", limit);
    if (s->prev != prev) return invalid(why, "segment %p: its prev link is not the one before it in its queue", sp);
    if (s->page_kind != kind || !s->in_free_queue || s->free_mask == 0) {
      return invalid(why, "segment %p: in the free queue of kind %d, kind %d, marked %d, free mask 0x%llx", sp,
                     static_cast<int>(kind), static_cast<int>(s->page_kind), s->in_free_queue,
                     static_cast<unsigned long long>(s->free_mask));
    }
    if (s->thread_id.load(std::memory_order_relaxed) != thread_id()) {
      return invalid(why, "segment %p: in this thread's free queue but owned by 0x%lx", sp,
                     static_cast<unsigned long>(s->thread_id.load(std::memory_order_relaxed)));
    }
    if (kind == PageKind::large && (s->free_run_bin != bin || large_bin_of(s->free_mask) != bin)) {
      return invalid(why, "segment %p: in free-run bin %zu, marked %u, its longest free run %zu", sp, bin,
                     s->free_run_bin, longest_run(s->free_mask));
    }
    prev = s;
  }
  if (q->last != prev)
    return invalid(why, "free queue of kind %d: last is not its last segment", static_cast<int>(kind));
  return true;
}

}  // namespace

bool segments_tld_is_valid(const SegmentsTld* tld, Invalid* why) noexcept {
  size_t count = 0;
  if (!free_queue_is_valid(&tld->small_free, PageKind::small, 0, tld->count, &count, why)) return false;
  if (!free_queue_is_valid(&tld->medium_free, PageKind::medium, 0, tld->count, &count, why)) return false;
  for (size_t b = 0; b < LARGE_FREE_BINS; b++) {
    const bool listed = (tld->large_free_bins >> b) & 1;
    if (listed != (tld->large_free[b].first != nullptr)) {
      return invalid(why, "large free-run bin %zu is %s but marked %s in the bitmap of bins", b,
                     listed ? "empty" : "not empty", listed ? "not empty" : "empty");
    }
    if (!free_queue_is_valid(&tld->large_free[b], PageKind::large, b, tld->count, &count, why)) return false;
  }
  return true;
}

}  // namespace mi
