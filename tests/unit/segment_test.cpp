// Unit tests of lib/segment (segment.cpp, abandon.cpp): the layout of small,
// medium, large (spans of slices) and huge segments, pages claimed lowest
// first and given back, segments freed with their last page, delayed purge of
// freed pages, and segments abandoned by an exiting thread and reclaimed by
// another (by allocation, and by a free into them).
//
// Tests that need segments of their own use a heap bound to an exclusive
// arena: no other heap of the thread (gtest's allocations) shares them.
#include "segment/segment.h"

#include <gtest/gtest.h>
#include <mimalloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "common/options.h"
#include "common/stats.h"
#include "common/test_point.h"
#include "heap/heap.h"
#include "heap/page.h"
#include "heap/size_class.h"
#include "numa_util.h"
#include "option_guard.h"
#include "os/os.h"
#include "segment/abandon.h"
#include "segment/purge_list.h"
#include "segment/segment_internal.h"
#include "unit_util.h"

namespace {

using mi::Page;
using mi::Segment;
constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * 1024;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Segment* seg(const void* p) { return mi::segmap_segment_of(p); }
Page* page_of(const void* p) {
  Segment* s = seg(p);
  return (s->capacity == 1) ? &s->pages[0] : mi::segment_page_of(s, p);
}
uint8_t* base(const Segment* s) { return reinterpret_cast<uint8_t*>(const_cast<Segment*>(s)); }

// A heap bound to an exclusive arena of its own: its segments are its alone.
struct OwnArena {
  mi_arena_id_t id = 0;
  mi_heap_t* heap = nullptr;
  uint8_t* start = nullptr;
  size_t size = 0;
  explicit OwnArena(size_t bytes = 64 * MiB) {
    if (mi_reserve_os_memory_ex(bytes, true, false, true, &id) != 0) return;
    start = static_cast<uint8_t*>(mi_arena_area(id, &size));
    heap = mi_heap_new_in_arena(id);
  }
  ~OwnArena() {
    if (heap != nullptr) {
      mi_heap_collect(heap, true);
      mi_heap_delete(heap);
    }
  }
};

using unit::OptionGuard;

// --- layout --------------------------------------------------------------------

TEST(Segment, SmallSegmentLayout) {
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  void* p = mi_heap_malloc(a.heap, 64);
  ASSERT_NE(p, nullptr);
  Segment* s = seg(p);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(base(s), a.start) << "first segment of the arena";
  EXPECT_EQ(s->page_kind, mi::PageKind::small);
  EXPECT_EQ(s->capacity, mi::SMALL_PAGES_PER_SEGMENT);
  EXPECT_EQ(s->page_shift, mi::SMALL_PAGE_SHIFT);
  EXPECT_EQ(s->segment_size, mi::SEGMENT_SIZE);
  EXPECT_GE(s->segment_info_size, offsetof(Segment, pages) + 64 * sizeof(Page));
  EXPECT_EQ(s->segment_info_size % MI_CACHE_LINE, 0u);
  EXPECT_EQ(s->used, 1u);
  EXPECT_EQ(s->free_mask, ~uint64_t{1});
  EXPECT_EQ(s->abandoned, 0u);
  EXPECT_EQ(s->thread_id.load(), mi::thread_id());
  EXPECT_EQ(s->memid.kind, mi::MemKind::arena);
  EXPECT_TRUE(s->in_free_queue);
  EXPECT_TRUE(mi::segment_is_valid(s));
  Page* pg = page_of(p);
  EXPECT_EQ(pg, &s->pages[0]);
  EXPECT_EQ(pg->segment_idx, 0u);
  // secure mode: the header's guard page after it, a guard page at each page's end
  const size_t g = s->guard_size;
  const size_t page0 = (g > 0) ? mi::align_up(s->segment_info_size, mi::os_page_size()) + g : s->segment_info_size;
  EXPECT_EQ(g, mi::secure_enabled() ? mi::os_page_size() : 0u);
  EXPECT_EQ(pg->page_start, base(s) + page0) << "page 0 starts right after the header (and its guard)";
  if (!mi::secure_enabled()) {  // (secure mode: a random one)
    EXPECT_EQ(static_cast<uint8_t*>(p), pg->page_start) << "the first block of a fresh page";
  }
  EXPECT_EQ(pg->reserved, (mi::SMALL_PAGE_SIZE - page0 - g) / 64);
  EXPECT_TRUE(mi::page_is_valid(pg));

  // each new size class takes the lowest free page
  std::vector<void*> blocks{p};
  const size_t sizes[] = {1100, 1300, 1600, 2000, 2500};
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    void* q = mi_heap_malloc(a.heap, sizes[k]);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(seg(q), s);
    Page* pq = page_of(q);
    EXPECT_EQ(pq->segment_idx, k + 1);
    EXPECT_EQ(pq->page_start, base(s) + (k + 1) * mi::SMALL_PAGE_SIZE);
    EXPECT_EQ(pq->block_size, mi::good_block_size(sizes[k]));
    EXPECT_EQ(pq->reserved, (mi::SMALL_PAGE_SIZE - g) / pq->block_size);
    EXPECT_EQ(s->used, k + 2);
    blocks.push_back(q);
  }
  EXPECT_EQ(s->free_mask, ~uint64_t{0} << 6);
  EXPECT_TRUE(mi::segment_is_valid(s));

  // free page 2's only block: the only page of its bin is kept (retired)
  // until the heap is collected, then it goes back to the segment
  mi_free(blocks[2]);
  mi_heap_collect(a.heap, false);
  EXPECT_EQ(s->used, 5u);
  EXPECT_EQ(s->free_mask & 0x3f, uint64_t{1} << 2);
  EXPECT_FALSE(s->pages[2].segment_in_use);
  EXPECT_TRUE(mi::segment_is_valid(s));
  // the next page claimed is the lowest free one again
  void* r = mi_heap_malloc(a.heap, 3000);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(page_of(r), &s->pages[2]);
  blocks[2] = r;
  for (void* b : blocks) mi_free(b);
}

// A freed page goes back to the size that used it last before the lowest
// free page (segment.cpp, free_page_pick): its memory is resident as far as
// that size touched it, where another size would touch its own extent too.
TEST(Segment, AFreedPageIsTakenAgainByTheSizeThatUsedItLast) {
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  void* p0 = mi_heap_malloc(a.heap, 64);
  ASSERT_NE(p0, nullptr);
  Segment* s = seg(p0);
  void* p1 = mi_heap_malloc(a.heap, 1100);
  void* p2 = mi_heap_malloc(a.heap, 1300);
  void* p3 = mi_heap_malloc(a.heap, 1600);
  ASSERT_TRUE(p1 != nullptr && p2 != nullptr && p3 != nullptr);
  ASSERT_EQ(page_of(p1), &s->pages[1]);
  ASSERT_EQ(page_of(p2), &s->pages[2]);
  ASSERT_EQ(page_of(p3), &s->pages[3]);
  mi_free(p1);
  mi_free(p2);
  mi_heap_collect(a.heap, false);  // the retired (emptied) pages go back to the segment
  ASSERT_EQ(s->free_mask & 0xf, uint64_t{0x6}) << "pages 1 and 2 free";
  EXPECT_EQ(s->pages[2].last_block_size, mi::good_block_size(1300)) << "a freed page keeps its last block size";
  void* q2 = mi_heap_malloc(a.heap, 1300);
  ASSERT_NE(q2, nullptr);
  EXPECT_EQ(page_of(q2), &s->pages[2]) << "its own last page, not the lowest free one (1)";
  void* q = mi_heap_malloc(a.heap, 2000);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(page_of(q), &s->pages[1]) << "a size with no page of its own: the lowest free page";
  EXPECT_EQ(s->pages[1].last_block_size, mi::good_block_size(2000));
  EXPECT_TRUE(mi::segment_is_valid(s));
  for (void* b : {p0, p3, q2, q}) mi_free(b);
}

TEST(Segment, PageZeroIsAlignedForPowerOfTwoMultiples) {
  // blocks of 8 KiB in page 0 start 8 KiB aligned, behind the header
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  void* p = mi_heap_malloc(a.heap, 8 * KiB);
  ASSERT_NE(p, nullptr);
  Page* pg = page_of(p);
  EXPECT_EQ(pg->segment_idx, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pg->page_start) % (8 * KiB), 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (8 * KiB), 0u);
  EXPECT_GE(pg->page_start, base(seg(p)) + seg(p)->segment_info_size);
  mi_free(p);
}

TEST(Segment, MediumSegmentLayout) {
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  void* p = mi_heap_malloc(a.heap, 20 * KiB);
  void* q = mi_heap_malloc(a.heap, 100 * KiB);
  ASSERT_NE(p, nullptr);
  ASSERT_NE(q, nullptr);
  Segment* s = seg(p);
  EXPECT_EQ(seg(q), s) << "one medium segment holds both pages";
  EXPECT_EQ(s->page_kind, mi::PageKind::medium);
  EXPECT_EQ(s->capacity, mi::MEDIUM_PAGES_PER_SEGMENT);
  EXPECT_EQ(s->page_shift, mi::MEDIUM_PAGE_SHIFT);
  EXPECT_EQ(page_of(q)->segment_idx, 1u);
  EXPECT_EQ(page_of(q)->page_start, base(s) + mi::MEDIUM_PAGE_SIZE);
  EXPECT_EQ(s->used, 2u);
  EXPECT_TRUE(mi::segment_is_valid(s));
  mi_free(p);
  mi_free(q);
}

TEST(Segment, LargePagesSpanSlices) {
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  const size_t sizes[] = {200 * KiB, 500 * KiB, mi::LARGE_OBJ_SIZE_MAX};
  std::vector<void*> blocks;
  Segment* s = nullptr;
  uint64_t taken = 0;
  for (size_t sz : sizes) {
    SCOPED_TRACE(sz);
    uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));
    ASSERT_NE(p, nullptr);
    memset(p, 0x5a, sz);
    if (s == nullptr) s = seg(p);
    ASSERT_EQ(seg(p), s) << "large pages share a large segment";
    EXPECT_EQ(s->page_kind, mi::PageKind::large);
    EXPECT_EQ(s->capacity, 64u);
    EXPECT_EQ(s->page_shift, mi::SMALL_PAGE_SHIFT);
    Page* pg = page_of(p);
    const size_t bs = mi::good_block_size(sz);
    EXPECT_EQ(pg->block_size, bs);
    EXPECT_EQ(pg->reserved, 1u);
    const size_t first = pg->segment_idx;
    const size_t n = pg->slice_count;
    const size_t slice = mi::SMALL_PAGE_SIZE;
    // (secure mode: page 0 starts after the header's guard page, and a page
    // that reaches the segment's last slice ends before its guard page)
    const size_t g = (first + n == s->capacity) ? s->guard_size : 0;
    const size_t head = (first == 0) ? static_cast<size_t>(pg->page_start - base(s)) : 0;
    EXPECT_GE(n * slice, head + bs + g) << "the span holds the block";
    EXPECT_LT((n - 1) * slice, head + bs + g) << "no more slices than needed";
    const uint64_t mask = (n >= 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1)) << first;
    EXPECT_EQ(taken & mask, 0u) << "spans overlap";
    taken |= mask;
    EXPECT_EQ(s->free_mask & mask, 0u);
    // every slice of the span points back to the page
    for (size_t k = 1; k < n; k++) {
      EXPECT_EQ(s->pages[first + k].slice_offset, k);
      EXPECT_FALSE(s->pages[first + k].segment_in_use);
    }
    for (size_t off = 0; off < sz; off += 16 * KiB) ASSERT_EQ(mi::segment_page_of(s, p + off), pg) << off;
    EXPECT_EQ(mi_usable_size(p), bs);
    blocks.push_back(p);
    EXPECT_TRUE(mi::segment_is_valid(s));
  }
  EXPECT_EQ(s->free_mask, ~taken) << "the free mask is the complement of the spans";
  // first fit: the spans follow each other
  EXPECT_EQ(page_of(blocks[0])->segment_idx, 0u);
  EXPECT_EQ(page_of(blocks[1])->segment_idx, page_of(blocks[0])->slice_count);

  // freeing the middle one gives its slices back at once (large pages are not kept)
  Page* mid = page_of(blocks[1]);
  const size_t mid_first = mid->segment_idx, mid_n = mid->slice_count;
  mi_free(blocks[1]);
  const uint64_t mid_mask = ((uint64_t{1} << mid_n) - 1) << mid_first;
  EXPECT_EQ(s->free_mask & mid_mask, mid_mask);
  for (size_t k = 0; k < mid_n; k++) {
    EXPECT_EQ(s->pages[mid_first + k].slice_offset, 0u);
    // free slices: no owner, and a free of a pointer into one is checked (and reported)
    EXPECT_EQ(s->pages[mid_first + k].xowner.load(), mi::PAGE_FREE_CHECKED);
  }
  EXPECT_TRUE(mi::segment_is_valid(s));
  // a smaller large object fits the hole
  void* again = mi_heap_malloc(a.heap, 150 * KiB);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(page_of(again)->segment_idx, mid_first);
  mi_free(again);
  mi_free(blocks[0]);
  mi_free(blocks[2]);
  // (a segment of an exclusive arena is not kept when empty: Segment.KeepsOneEmptySegmentPerKind)
  EXPECT_EQ(mi::segmap_byte(s), 0u) << "the last large page freed its segment";
}

// A run of free slices from slice 0 holds less: the segment's header comes
// first. The span search looks at slice 0's run only where a run of the
// page's slices starts there (segment_find_span_in), and must then still
// leave it out when the header does not fit too.
TEST(Segment, ALargePageFromSliceZeroLeavesRoomForTheHeader) {
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  void* head = mi_heap_malloc(a.heap, 192 * KiB);  // 3 slices of blocks, 4 with the header
  ASSERT_NE(head, nullptr);
  Segment* s = seg(head);
  ASSERT_EQ(page_of(head)->segment_idx, 0u);
  const size_t run = page_of(head)->slice_count;
  ASSERT_EQ(run, 4u) << "the header is shorter than a slice";
  void* next = mi_heap_malloc(a.heap, 256 * KiB);
  ASSERT_EQ(seg(next), s);
  ASSERT_EQ(page_of(next)->segment_idx, run);
  mi_free(head);  // slices 0 .. run-1 free: a run of `run` slices, the header in its first
  // a block of exactly `run` slices: too long for that run with the header
  void* p = mi_heap_malloc(a.heap, run * mi::SMALL_PAGE_SIZE);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(seg(p), s);
  EXPECT_EQ(page_of(p)->segment_idx, run + page_of(next)->slice_count) << "the first run that holds it";
  EXPECT_TRUE(mi::segment_is_valid(s));
  // one slice shorter: slice 0's run holds it with the header (first fit)
  void* q = mi_heap_malloc(a.heap, 192 * KiB);
  ASSERT_EQ(seg(q), s);
  EXPECT_EQ(page_of(q)->segment_idx, 0u);
  EXPECT_TRUE(mi::segment_is_valid(s));
  for (void* b : {next, p, q}) mi_free(b);
}

// A thread keeps one empty segment of each page kind (segment_page_free) so
// that memory use hovering at a segment boundary does not make and free
// segments all the time; its pages are purged like any free page, and thread
// exit or mi_collect(true) frees it.
// Large segments with free slices are queued by their longest run of free
// slices (types.h: SegmentsTld::large_free): a large page looks only at the
// bins that may hold it, the shortest first, so it goes into the fullest
// segment with room, however many segments have less room.
TEST(Segment, LargeSegmentsAreQueuedByTheirLongestFreeRun) {
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  mi::SegmentsTld* tld = &a.heap->tld->segments;
  auto queued_in = [&](const Segment* s) {
    for (size_t b = 0; b < mi::LARGE_FREE_BINS; b++) {
      for (const Segment* q = tld->large_free[b].first; q != nullptr; q = q->next) {
        if (q == s) return static_cast<int>(b);
      }
    }
    return -1;
  };
  // 1 MiB blocks: 17 slices at slice 0 (the header), 16 elsewhere
  void* b1 = mi_heap_malloc(a.heap, MiB);
  void* b2 = mi_heap_malloc(a.heap, MiB);
  void* b3 = mi_heap_malloc(a.heap, MiB);
  ASSERT_TRUE(b1 != nullptr && b2 != nullptr && b3 != nullptr);
  Segment* full = seg(b1);
  ASSERT_EQ(seg(b3), full);
  EXPECT_EQ(queued_in(full), 14) << "15 slices left: bin 14";
  EXPECT_NE(tld->large_free_bins & (uint64_t{1} << 14), 0u);
  // a second segment with much room (31 slices): a block of 14 slices (896
  // KiB, a size class) goes into the fuller one all the same
  void* other = mi_heap_malloc(a.heap, 2 * MiB);
  ASSERT_NE(other, nullptr);
  Segment* roomy = seg(other);
  ASSERT_NE(roomy, full);
  EXPECT_EQ(queued_in(roomy), 30);
  void* fit = mi_heap_malloc(a.heap, 14 * 64 * KiB);
  ASSERT_NE(fit, nullptr);
  EXPECT_EQ(seg(fit), full) << "the fullest segment with room first";
  EXPECT_EQ(queued_in(full), 0) << "one slice left: bin 0";
  EXPECT_EQ(tld->large_free_bins & (uint64_t{1} << 14), 0u) << "an empty bin leaves the bitmap";
  EXPECT_EQ(__builtin_popcountll(full->free_mask), 1);
  // freeing the middle block: a run of 16 slices, bin 15
  mi_free(b2);
  EXPECT_EQ(queued_in(full), 15);
  EXPECT_TRUE(mi::segment_is_valid(full));
  // and a block of 16 slices takes it back (not the roomy segment)
  void* again = mi_heap_malloc(a.heap, MiB);
  EXPECT_EQ(seg(again), full);
  for (void* p : {b1, b3, other, fit, again}) mi_free(p);
}

TEST(Segment, KeepsOneEmptySegmentPerKind) {
  std::thread t([] {
    // two large segments of this (fresh) thread, emptied one after the other
    void* a = mi_malloc(1536 * KiB);
    void* b = mi_malloc(1536 * KiB);
    void* c = mi_malloc(1536 * KiB);
    ASSERT_TRUE(a != nullptr && b != nullptr && c != nullptr);
    Segment* sa = seg(a);
    Segment* sc = seg(c);
    ASSERT_NE(sa, sc) << "three 1.5 MiB pages do not fit one 4 MiB segment";
    ASSERT_EQ(sa->page_kind, mi::PageKind::large);
    mi_free(c);
    EXPECT_EQ(sc->used, 0u);
    EXPECT_NE(mi::segmap_byte(sc), 0u) << "the first empty large segment is kept";
    mi_free(a);
    mi_free(b);
    EXPECT_EQ(mi::segmap_byte(sa), 0u) << "a second empty one of the same kind is freed";
    EXPECT_NE(mi::segmap_byte(sc), 0u);
    // reused before a new segment is made
    void* d = mi_malloc(1536 * KiB);
    EXPECT_EQ(seg(d), sc);
    mi_free(d);
    mi_collect(true);
    EXPECT_EQ(mi::segmap_byte(sc), 0u) << "mi_collect(true) frees the kept segment";
  });
  t.join();
}

// A thread with many segments keeps a sixteenth of them when they empty
// (segment_keep_when_empty): its working set moving across its segments
// would otherwise free segments and make new ones all the time, the freed
// ones purged whole by the arena and faulted in again.
TEST(Segment, KeepsASixteenthOfManySegmentsEmpty) {
  std::thread t([] {
    // 2 MiB blocks: one large segment each (slice 0 holds the header); not
    // touched, so they cost address space only
    constexpr size_t kSegments = 40;  // 40 / 16: two empty ones kept
    std::vector<void*> blocks;
    for (size_t i = 0; i < kSegments; i++) {
      void* p = mi_malloc(mi::LARGE_OBJ_SIZE_MAX);
      ASSERT_NE(p, nullptr);
      if (!blocks.empty()) {
        ASSERT_NE(seg(p), seg(blocks.back())) << "one 2 MiB block per segment";
      }
      blocks.push_back(p);
    }
    Segment* s0 = seg(blocks[0]);
    Segment* s1 = seg(blocks[1]);
    Segment* s2 = seg(blocks[2]);
    mi_free(blocks[0]);
    mi_free(blocks[1]);
    EXPECT_NE(mi::segmap_byte(s0), 0u) << "the first empty segment is kept";
    EXPECT_NE(mi::segmap_byte(s1), 0u) << "so is a second, with 40 segments";
    mi_free(blocks[2]);
    EXPECT_EQ(mi::segmap_byte(s2), 0u) << "a third is freed";
    for (size_t i = 3; i < kSegments; i++) mi_free(blocks[i]);
    mi_collect(true);
    EXPECT_EQ(mi::segmap_byte(s0), 0u) << "mi_collect(true) frees the kept segments";
    EXPECT_EQ(mi::segmap_byte(s1), 0u);
  });
  t.join();
}

TEST(Segment, HugeSegmentLayout) {
  const size_t sz = 5 * MiB + 123;
  void* p = mi_malloc(sz);
  ASSERT_NE(p, nullptr);
  Segment* s = seg(p);
  EXPECT_EQ(s->page_kind, mi::PageKind::huge);
  EXPECT_EQ(s->capacity, 1u);
  // sized to the block, to the OS page (not to SEGMENT_SIZE: a 4 MiB block took 8 MiB)
  EXPECT_EQ(s->segment_size % mi::os_page_size(), 0u);
  // secure mode: the header's guard page after it, a guard page at the end
  const size_t g = s->guard_size;
  const size_t head = (g > 0) ? mi::align_up(s->segment_info_size, mi::os_page_size()) + g : s->segment_info_size;
  EXPECT_EQ(s->segment_size, mi::align_up(head + sz + g, mi::os_page_size()));
  EXPECT_EQ(mi_usable_size(p), mi::segment_huge_usable_size(sz));
  EXPECT_EQ(mi_usable_size(p), s->segment_size - head - g);
  EXPECT_EQ(static_cast<uint8_t*>(p), base(s) + head);
  EXPECT_TRUE(mi::segment_is_valid(s));
  EXPECT_EQ(s->pages[0].reserved, 1u);
  mi_free(p);
}

TEST(Segment, SegmentFreedWithItsLastPage) {
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  const int64_t segs0 = mi::stats_global.segments.current.load();
  const int64_t pages0 = mi::stats_global.pages.current.load();
  const size_t count0 = a.heap->tld->segments.count;
  void* p = mi_heap_malloc(a.heap, 100);
  void* q = mi_heap_malloc(a.heap, 5000);
  ASSERT_NE(p, nullptr);
  Segment* s = seg(p);
  ASSERT_EQ(seg(q), s);
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs0 + 1);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0 + 2);
  EXPECT_EQ(a.heap->tld->segments.count, count0 + 1);
  mi_free(p);
  mi_free(q);
  mi_heap_collect(a.heap, false);  // the retired pages go, and the segment (of an exclusive arena) with them
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs0);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0);
  EXPECT_EQ(a.heap->tld->segments.count, count0);
  EXPECT_EQ(mi::segmap_segment_of(p), nullptr);
  // the arena's first block is free again: the next segment takes it
  void* r = mi_heap_malloc(a.heap, 100);
  EXPECT_EQ(base(seg(r)), a.start);
  mi_free(r);
}

// Pages emptied by another thread's frees (a producer's blocks freed by a
// consumer) are taken again before the untouched pages of the thread's next
// segment: the lowest page of the lowest segment first. Taken in the order of
// the segment queue (the emptied segment goes to its back), the producer
// filled the next segment whole first: shape-churn touched twice the memory
// of its live blocks (tests/numa-vm, issue 13 gap 4).
TEST(Segment, PagesEmptiedByRemoteFreesAreReusedBeforeUntouchedOnes) {
  OptionGuard g1(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 60000);  // placement, not purging, is what is tested
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  // 16 KiB blocks, four to a 64 KiB small page: enough for the first segment
  // and a few pages of a second
  const size_t bsize = 16 * KiB;
  const size_t most_per_page = mi::SMALL_PAGE_SIZE / bsize;
  std::vector<void*> blocks;
  Segment* first = nullptr;
  Segment* second = nullptr;
  while (second == nullptr || blocks.size() < 8 * most_per_page + (first->capacity * most_per_page)) {
    void* p = mi_heap_malloc(a.heap, bsize);
    ASSERT_NE(p, nullptr);
    blocks.push_back(p);
    if (first == nullptr) first = seg(p);
    if (seg(p) != first) second = seg(p);
  }
  // blocks per page past the segment's header: four, or three in the secure
  // build, whose pages end in a guard page
  size_t per_page = 0;
  for (void* p : blocks) {
    if (seg(p) == first && page_of(p)->segment_idx == 8) per_page = page_of(p)->reserved;
  }
  ASSERT_GE(per_page, 3u);
  ASSERT_EQ(first->page_kind, mi::PageKind::small);
  ASSERT_EQ(base(first), a.start) << "the arena's first segment";
  ASSERT_EQ(base(second), a.start + mi::SEGMENT_SIZE);
  ASSERT_EQ(first->free_mask, 0u) << "the first segment is full";
  ASSERT_NE(second->free_mask, 0u) << "the second has untouched pages";
  const uint64_t second_free = second->free_mask;
  // another thread frees every block of 8 pages of the first segment
  std::vector<void*> theirs, ours;
  for (void* p : blocks) {
    const size_t idx = page_of(p)->segment_idx;
    (seg(p) == first && idx >= 8 && idx < 16 ? theirs : ours).push_back(p);
  }
  ASSERT_EQ(theirs.size(), 8 * per_page);
  std::thread([&] {
    for (void* p : theirs) mi_free(p);
  }).join();
  mi_heap_collect(a.heap, false);  // the owner takes the frees in: the 8 emptied pages go back to their segment
  EXPECT_EQ(first->free_mask & ~uint64_t{0xff00}, 0u);
  ASSERT_NE(first->free_mask, 0u) << "emptied pages given back to the first segment";
  // 8 pages' worth of new blocks: in the emptied pages, none in the second segment's untouched ones
  for (size_t i = 0; i < 8 * per_page; i++) {
    void* p = mi_heap_malloc(a.heap, bsize);
    ASSERT_NE(p, nullptr);
    ours.push_back(p);
    // (the first few may fill the page the second segment had in use)
    const bool in_untouched = seg(p) == second && (second_free >> page_of(p)->segment_idx & 1) != 0;
    EXPECT_FALSE(in_untouched) << "block " << i << " in an untouched page of the second segment";
  }
  EXPECT_EQ(second->free_mask, second_free) << "no untouched page of the second segment taken";
  for (void* p : ours) mi_free(p);
}

TEST(Segment, FreedPagesArePurgedAfterTheDelay) {
  OptionGuard g1(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 20);
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  // a large object: its page is freed (and scheduled for purge) with it
  const size_t sz = 600 * KiB;
  uint8_t* keep = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 300 * KiB));  // keeps the large segment alive
  ASSERT_NE(keep, nullptr);
  uint8_t* big = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));
  ASSERT_NE(big, nullptr);
  Segment* s = seg(big);
  ASSERT_EQ(s->page_kind, mi::PageKind::large);
  ASSERT_EQ(seg(keep), s);
  memset(big, 0x66, sz);
  const uint8_t* range = big + 4 * KiB;  // past the page that holds free-list links
  const size_t range_len = sz - 8 * KiB;
  size_t total = 0;
  ASSERT_EQ(unit::resident_pages(range, range_len, &total), total);
  const int64_t t_free = now_ms();
  mi_free(big);
  EXPECT_NE(s->purge_mask, 0u) << "the freed slices wait for their purge";
  EXPECT_TRUE(s->in_purge_queue);
  int64_t t_purged = -1;
  while (now_ms() < t_free + 5000) {
    mi_heap_collect(a.heap, false);
    if (unit::resident_pages(range, range_len) == 0) {
      t_purged = now_ms();
      break;
    }
    usleep(1000);
  }
  ASSERT_GE(t_purged, 0) << "the freed large page was not purged within 5 s";
  EXPECT_GE(t_purged - t_free, 19) << "purged before the delay";
  EXPECT_EQ(s->purge_mask, 0u);
  EXPECT_TRUE(mi::segment_is_valid(s));
  // its slices are used again (and recommitted)
  uint8_t* again = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(seg(again), s);
  memset(again, 1, sz);
  mi_free(again);
  mi_free(keep);
}

#if MI_FAULT_INJECTION
namespace {
// The owner standing in segment_free while another thread's purge walk
// (segments_try_purge) runs on the segment: stage 1, the owner is there; 2,
// the walker has the segment off the list and holds its lock.
std::atomic<int> free_walk_stage{0};
void stand_at_segment_freeing(mi::TestPoint point) {
  if (point != mi::TestPoint::segment_freeing) return;
  free_walk_stage.store(1);
  while (free_walk_stage.load() != 2) sched_yield();
}
}  // namespace
#endif

// A segment freed while a purge runs on it leaves the purge list. The walk
// takes a segment off the list, purges it holding its lock and puts it back
// if pages still wait; segment_free took it off the list before it waited for
// the lock, so the walk put it back after, and the freed memory, handed out
// again as a new segment, stayed on the list: a later walk read the new
// segment's header while it was written (ThreadSanitizer in the tsan suite's
// alloc_stress), then crashed.
TEST(Segment, ASegmentFreedWhileAPurgeRunsOnItLeavesThePurgeList) {
#if !MI_FAULT_INJECTION
  GTEST_SKIP() << "needs the test points of a -Dfault_injection=true build (tools/dev's debug build)";
#else
  OptionGuard g1(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 60000);  // nothing purges on its own meanwhile
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  void* p = mi_heap_malloc(a.heap, 100);
  void* q = mi_heap_malloc(a.heap, 5000);
  ASSERT_NE(p, nullptr);
  Segment* s = seg(p);
  ASSERT_EQ(seg(q), s);
  mi_free(q);
  mi_heap_collect(a.heap, false);  // q's page is free, its purge waits: the segment is on the list
  ASSERT_TRUE(mi::purge_list_contains(s));
  free_walk_stage.store(0);
  std::thread walker([s] {
    while (free_walk_stage.load() != 1) sched_yield();
    mi::segment_lock(s);  // as the walk: the segment's lock, the segment off the list
    mi::purge_list_remove(s);
    free_walk_stage.store(2);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the owner goes on meanwhile
    mi::purge_list_add(s);                                       // pages still wait: back on the list
    mi::segment_unlock(s);
  });
  mi::test_point_hook.store(&stand_at_segment_freeing);
  mi_free(p);
  mi_heap_collect(a.heap, false);  // the last page goes, and the segment (of an exclusive arena) with it
  mi::test_point_hook.store(nullptr);
  if (free_walk_stage.load() != 2) free_walk_stage.store(1);  // (segment_free not reached: let the walker end)
  walker.join();
  EXPECT_EQ(mi::segmap_segment_of(p), nullptr) << "the segment was not freed";
  EXPECT_FALSE(mi::purge_list_contains(s)) << "freed, the segment stayed on the purge list";
#endif
}

// A thread's exit purges only what is due: pages another thread freed a
// moment ago wait for their delay (forcing every pending purge of the
// process at each exit made thread churn fault them in again at once).
TEST(Segment, AThreadExitDoesNotPurgePagesBeforeTheirDelay) {
  OptionGuard g1(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 60000);
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  uint8_t* keep = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 300 * KiB));  // keeps the large segment alive
  uint8_t* big = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 600 * KiB));
  ASSERT_TRUE(keep != nullptr && big != nullptr);
  Segment* s = seg(big);
  ASSERT_EQ(seg(keep), s);
  memset(big, 0x66, 600 * KiB);
  mi_free(big);
  const uint64_t pending = s->purge_mask;
  ASSERT_NE(pending, 0u) << "the freed slices wait for their purge";
  const int64_t purged0 = mi::os_counters.purged.load();
  std::thread([] {
    void* p = mi_malloc(100);
    mi_free(p);
  }).join();
  EXPECT_EQ(s->purge_mask & pending, pending) << "another thread's exit purged the pages before their delay";
  EXPECT_EQ(s->commit_mask & pending, pending);
  EXPECT_EQ(mi::os_counters.purged.load(), purged0) << "the exit purged memory that was not due";
  mi_collect(true);  // an explicit forced collect still purges everything pending
  EXPECT_EQ(s->purge_mask, 0u);
  EXPECT_EQ(s->commit_mask & pending, 0u);
  mi_free(keep);
}

TEST(Segment, PendingPagePurgeIsPutOffOnlyUpToTheDeadline) {
  // More frees put a pending page purge off by purge_extend_delay, but never
  // past purge_delay * arena_purge_mult from its first scheduling.
  OptionGuard g1(mi_option_purge_delay);
  OptionGuard g2(mi_option_purge_extend_delay);
  OptionGuard g3(mi_option_arena_purge_mult);
  const long delay = 30, mult = 2;
  mi_option_set(mi_option_purge_delay, delay);
  mi_option_set(mi_option_arena_purge_mult, mult);
  mi_option_set(mi_option_purge_extend_delay, 10000);  // each free would put it off by 10 s
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  const size_t sz = 300 * KiB;
  uint8_t* keep = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));
  uint8_t* b1 = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));
  uint8_t* b2 = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));
  ASSERT_NE(b2, nullptr);
  Segment* s = seg(b1);
  ASSERT_EQ(seg(keep), s);
  ASSERT_EQ(seg(b2), s);
  memset(b1, 1, sz);
  memset(b2, 2, sz);
  const int64_t t0 = now_ms();
  mi_free(b1);
  mi_free(b2);  // more pages of the same segment: the purge is put off, capped
  // (a large segment: its times are 2^LARGE_PURGE_SHIFT longer)
  const int64_t cap = (delay * mult) << mi::LARGE_PURGE_SHIFT;
  EXPECT_LE(s->purge_expire_ms.load(), s->purge_deadline_ms);
  EXPECT_LE(s->purge_deadline_ms - t0, cap + 1);
  EXPECT_GE(s->purge_deadline_ms - t0, cap - 1);
  int64_t t_purged = -1;
  while (now_ms() < t0 + 5000) {
    mi_heap_collect(a.heap, false);
    if (unit::resident_pages(b1 + 4 * KiB, sz - 8 * KiB) == 0 &&
        unit::resident_pages(b2 + 4 * KiB, sz - 8 * KiB) == 0) {
      t_purged = now_ms();
      break;
    }
    usleep(1000);
  }
  ASSERT_GE(t_purged, 0) << "not purged within 5 s: the purge was put off by the full extension";
  EXPECT_GE(t_purged - t0, cap - 1) << "the pending purge was not put off (up to its deadline)";
  mi_free(keep);
}

TEST(Segment, LargeSegmentPurgeWaitsLonger) {
  // A large segment's free runs wait 2^LARGE_PURGE_SHIFT purge delays (the
  // next large page that spans them would fault them in again: mixed 8 B -
  // 512 KiB refaulted 700 MiB per million steps).
  OptionGuard g1(mi_option_purge_delay);
  OptionGuard g2(mi_option_purge_extend_delay);
  const long delay = 1000;  // long: the test reads when the purge is due, it does not wait for it
  mi_option_set(mi_option_purge_delay, delay);
  mi_option_set(mi_option_purge_extend_delay, 0);
  ASSERT_GE(mi::LARGE_PURGE_SHIFT, 1u);
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);
  const size_t sz = 300 * KiB;
  uint8_t* keep = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));  // keeps the large segment alive
  uint8_t* big = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sz));
  ASSERT_NE(big, nullptr);
  Segment* s = seg(big);
  ASSERT_EQ(s->page_kind, mi::PageKind::large);
  ASSERT_EQ(seg(keep), s);
  ASSERT_EQ(s->purge_backoff, 0);
  memset(big, 1, sz);
  const int64_t t0 = now_ms();
  mi_free(big);
  ASSERT_NE(s->purge_mask, 0u);
  const int64_t due = s->purge_expire_ms.load() - t0;
  EXPECT_GE(due, (delay << mi::LARGE_PURGE_SHIFT) - 1) << "a large segment's free run is purged after one delay";
  EXPECT_LE(due, (delay << mi::LARGE_PURGE_SHIFT) + 1);
  mi_free(keep);
}

TEST(Segment, LazyCommitOfPages) {
  // Segments whose memory came uncommitted commit page by page.
  OptionGuard g(mi_option_eager_commit);
  mi_option_set(mi_option_eager_commit, 0);
  mi_arena_id_t id = 0;
  ASSERT_EQ(mi_reserve_os_memory_ex(16 * MiB, false, false, true, &id), 0);  // not committed
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  void* p = mi_heap_malloc(heap, 64);
  ASSERT_NE(p, nullptr);
  Segment* s = seg(p);
  EXPECT_FALSE(s->memid.initially_committed);
  EXPECT_EQ(s->commit_mask.load(), 1u) << "only the page in use is committed";
  const size_t committed0 = s->committed_bytes;
  EXPECT_LT(committed0, mi::SEGMENT_SIZE / 8);
  void* q = mi_heap_malloc(heap, 3000);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(s->commit_mask.load(), 3u);
  EXPECT_EQ(s->committed_bytes, committed0 + mi::SMALL_PAGE_SIZE);
  memset(q, 1, 3000);
  mi_free(p);
  mi_free(q);
  mi_heap_collect(heap, true);
  mi_heap_delete(heap);
}

// --- abandon and reclaim -----------------------------------------------------------

struct Pattern {
  static uint64_t of(size_t i) { return 0x9e3779b97f4a7c15ULL * (i + 1); }
  static void fill(void* p, size_t size, size_t i) {
    uint64_t* w = static_cast<uint64_t*>(p);
    for (size_t k = 0; k < size / 8; k++) w[k] = of(i) + k;
  }
  static bool check(const void* p, size_t size, size_t i) {
    const uint64_t* w = static_cast<const uint64_t*>(p);
    for (size_t k = 0; k < size / 8; k++) {
      if (w[k] != of(i) + k) return false;
    }
    return true;
  }
};

struct Block {
  void* p;
  size_t size;
};

// A thread allocates blocks (filled with a pattern) and exits without freeing them.
std::vector<Block> exit_with_live_blocks(size_t small_count, size_t mid_count) {
  std::vector<Block> blocks;
  blocks.reserve(small_count + mid_count);  // allocated by the caller's thread
  std::thread t([&] {
    for (size_t i = 0; i < small_count; i++) blocks.push_back({mi_malloc(48), 48});
    for (size_t i = 0; i < mid_count; i++) blocks.push_back({mi_malloc(3000), 3000});
    for (size_t i = 0; i < blocks.size(); i++) Pattern::fill(blocks[i].p, blocks[i].size, i);
  });
  t.join();
  return blocks;
}

TEST(SegmentAbandon, ExitingThreadAbandonsAndAnotherReclaimsByAllocating) {
  mi_collect(true);  // the main heap takes whatever was abandoned before
  ASSERT_EQ(mi::abandoned_count(), 0u);
  const int64_t abandoned0 = mi::stats_global.segments_abandoned.current.load();
  const int64_t reclaimed0 = mi::stats_global.segments_reclaimed.load();

  std::vector<Block> blocks = exit_with_live_blocks(100, 10);
  ASSERT_EQ(blocks.size(), 110u);
  Segment* s = seg(blocks[0].p);
  ASSERT_NE(s, nullptr);
  for (const Block& b : blocks) ASSERT_EQ(seg(b.p), s) << "one segment holds them all";
  EXPECT_EQ(s->thread_id.load(), 0u) << "abandoned: no owner";
  EXPECT_EQ(s->abandoned, s->used);
  EXPECT_EQ(mi::abandoned_count(), 1u);
  EXPECT_EQ(mi::stats_global.segments_abandoned.current.load(), abandoned0 + 1);
  EXPECT_EQ(page_of(blocks[0].p)->xheap.load(), nullptr) << "abandoned pages have no heap";
  for (size_t i = 0; i < blocks.size(); i++) ASSERT_TRUE(Pattern::check(blocks[i].p, blocks[i].size, i)) << i;
  EXPECT_TRUE(mi::segment_is_valid(s));

  // Another thread's allocation of the same size takes the segment over.
  bool took_over = false, contents_ok = true, same_segment = false, valid = false;
  uintptr_t owner_in_thread = 0, tid = 0;
  std::thread t2([&] {
    void* mine = mi_malloc(48);
    same_segment = (seg(mine) == s);
    owner_in_thread = s->thread_id.load();
    tid = mi::thread_id();
    took_over = (owner_in_thread == tid);
    valid = mi::segment_is_valid(s);
    for (size_t i = 0; i < blocks.size(); i++) {
      if (!Pattern::check(blocks[i].p, blocks[i].size, i)) contents_ok = false;
    }
    for (const Block& b : blocks) mi_free(b.p);  // local frees now
    mi_free(mine);
  });
  t2.join();
  EXPECT_TRUE(same_segment) << "the allocation did not come from the abandoned segment";
  EXPECT_TRUE(took_over) << "owner " << owner_in_thread << ", thread " << tid;
  EXPECT_TRUE(valid);
  EXPECT_TRUE(contents_ok) << "blocks changed while abandoned";
  EXPECT_GE(mi::stats_global.segments_reclaimed.load(), reclaimed0 + 1);
  EXPECT_EQ(mi::abandoned_count(), 0u);
  EXPECT_EQ(mi::stats_global.segments_abandoned.current.load(), abandoned0);
}

// An exiting thread's free pages wait for their purge delay like any other
// with abandoned_page_purge off (the default is on, for the memory of a node
// whose threads exited: README, Tune): the next thread that takes the
// segment over reuses them still committed, without a purge and the page
// faults after it (thread churn: 10-12 K faults per 2000 threads with the
// purge at exit, 1.6 K without; mimalloc 2.0.9: 1.5-2 K).
TEST(SegmentAbandon, AnExitedThreadsFreePagesAreReusedUnpurged) {
  OptionGuard g1(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 60000);
  OptionGuard g2(mi_option_abandoned_page_purge);
  mi_option_set(mi_option_abandoned_page_purge, 0);
  mi_collect(true);
  ASSERT_EQ(mi::abandoned_count(), 0u);
  // A thread fills four small pages with 1 KiB blocks, frees all but one
  // block of the first page and exits: three free pages, one abandoned.
  void* survivor = nullptr;
  std::thread([&] {
    std::vector<void*> v;
    for (size_t i = 0; i < 4 * 64; i++) {
      v.push_back(mi_malloc(1000));
      memset(v.back(), 0x33, 1000);
    }
    survivor = v[0];
    for (size_t i = 1; i < v.size(); i++) mi_free(v[i]);
  }).join();
  Segment* s = seg(survivor);
  ASSERT_EQ(s->thread_id.load(), 0u) << "abandoned";
  const uint64_t pending = s->purge_mask;
  EXPECT_GE(__builtin_popcountll(pending), 3) << "the emptied pages wait for their purge";
  EXPECT_EQ(s->commit_mask & pending, pending) << "purged at the exit";
  const int64_t purged0 = mi::os_counters.purged.load();
  // the next thread allocates the same: it takes the segment over and fills
  // the free pages, still committed
  bool same = true;
  std::thread([&] {
    std::vector<void*> v;
    for (size_t i = 0; i < 3 * 64; i++) {
      v.push_back(mi_malloc(1000));
      if (seg(v.back()) != s) same = false;
    }
    for (void* p : v) mi_free(p);
  }).join();
  EXPECT_TRUE(same) << "the next thread did not take the abandoned segment's pages";
  EXPECT_EQ(mi::os_counters.purged.load(), purged0) << "pages were purged before the delay";
  mi_free(survivor);
  mi_collect(true);
}

// A thread hands pages to the next one: another thread frees every block
// of two of them while they are abandoned (the third keeps the segment
// abandoned). The next thread's allocations of those sizes land in the
// pages that held them, within what they touched, before any other page is
// made: given back to the segment at the reclaim, the pages were taken
// again for whatever size came first: the 200 B blocks took the 48 B page,
// the 48 B blocks the 1000 B page (heap/reclaim.cpp, keep_empty: threadchurn's peak 7.2 -> 6.0 MiB).
// An empty page the thread does not use goes back to the segment at its
// next collect.
TEST(SegmentAbandon, PagesEmptiedWhileAbandonedServeTheirSizeInTheNextThread) {
  OptionGuard g1(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 60000);  // no purge of the abandoned pages meanwhile
  OptionGuard g2(mi_option_abandoned_reclaim_on_free);
  mi_option_set(mi_option_abandoned_reclaim_on_free, 0);
  mi_collect(true);
  ASSERT_EQ(mi::abandoned_count(), 0u);
  constexpr size_t kBig = 40, kSmall = 600;  // each part of a page
  std::vector<void*> big, small;
  big.reserve(kBig);
  small.reserve(kSmall);
  void* keeper = nullptr;
  std::thread([&] {
    for (size_t i = 0; i < kSmall; i++) small.push_back(mi_malloc(48));
    for (size_t i = 0; i < kBig; i++) big.push_back(mi_malloc(1000));
    keeper = mi_malloc(3000);
    for (void* p : big) memset(p, 0x11, 1000);
    for (void* p : small) memset(p, 0x22, 48);
  }).join();
  Segment* s = seg(keeper);
  ASSERT_EQ(s->thread_id.load(), 0u) << "abandoned";
  Page* big_page = page_of(big[0]);
  Page* small_page = page_of(small[0]);
  ASSERT_NE(big_page, small_page);
  ASSERT_LT(small_page, big_page) << "the first size of a new segment is in its first page";
  for (void* p : big) ASSERT_EQ(page_of(p), big_page);
  for (void* p : small) ASSERT_EQ(page_of(p), small_page);
  const size_t small_capacity = small_page->capacity;
  // freed by this thread: onto the abandoned pages' thread-free lists
  for (void* p : big) mi_free(p);
  for (void* p : small) mi_free(p);
  ASSERT_EQ(s->thread_id.load(), 0u);

  size_t in_small_page = 0, outside = 0;
  size_t capacity_after = 0;
  bool big_page_freed = false;
  std::thread([&] {
    std::vector<void*> v;
    v.reserve(kSmall + 1);
    v.push_back(mi_malloc(200));  // a size the exited thread had no page of: a page of its own
    for (size_t i = 0; i < kSmall; i++) {
      void* p = mi_malloc(48);
      v.push_back(p);
      if (page_of(p) == small_page) in_small_page++;
      else outside++;
    }
    capacity_after = small_page->capacity;
    mi_collect(false);  // the 1000 B page, unused, goes back to the segment
    big_page_freed = !big_page->segment_in_use || big_page->block_size != 1000;
    for (void* p : v) mi_free(p);
  }).join();
  EXPECT_EQ(in_small_page, kSmall) << outside << " of the next thread's 48 B blocks were not in the page that "
                                   << "held the exited thread's 48 B blocks";
  EXPECT_EQ(capacity_after, small_capacity) << "the page was extended while its freed blocks waited";
  EXPECT_TRUE(big_page_freed) << "an empty page the thread did not use stayed in its heap";
  mi_free(keeper);
  mi_collect(true);
}

// The same with pages left half live: the next thread's blocks of that size
// fill the freed half of the handed-over page before it is extended or
// another page is made.
TEST(SegmentAbandon, HalfLivePagesOfAnExitedThreadServeTheirSizeFirst) {
  OptionGuard g1(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 60000);
  OptionGuard g2(mi_option_abandoned_reclaim_on_free);
  mi_option_set(mi_option_abandoned_reclaim_on_free, 0);
  mi_collect(true);
  ASSERT_EQ(mi::abandoned_count(), 0u);
  constexpr size_t kBlocks = 600;
  std::vector<void*> blocks;
  blocks.reserve(kBlocks);
  std::thread([&] {
    for (size_t i = 0; i < kBlocks; i++) blocks.push_back(mi_malloc(48));
    for (void* p : blocks) memset(p, 0x22, 48);
  }).join();
  Page* page = page_of(blocks[0]);
  for (void* p : blocks) ASSERT_EQ(page_of(p), page);
  ASSERT_EQ(page_segment(page)->thread_id.load(), 0u) << "abandoned";
  const size_t capacity = page->capacity;
  for (size_t i = 0; i < kBlocks; i += 2) mi_free(blocks[i]);  // half, while abandoned

  size_t in_page = 0;
  size_t capacity_after = 0;
  std::thread([&] {
    std::vector<void*> v;
    v.reserve(kBlocks / 2);
    for (size_t i = 0; i < kBlocks / 2; i++) {
      v.push_back(mi_malloc(48));
      if (page_of(v.back()) == page) in_page++;
    }
    capacity_after = page->capacity;
    for (void* p : v) mi_free(p);
  }).join();
  EXPECT_EQ(in_page, kBlocks / 2) << "the next thread's 48 B blocks went elsewhere while the page had room";
  EXPECT_EQ(capacity_after, capacity) << "the page was extended while its freed blocks waited";
  for (size_t i = 1; i < kBlocks; i += 2) mi_free(blocks[i]);
  mi_collect(true);
}

TEST(SegmentAbandon, AFreeReclaimsTheSegment) {
  OptionGuard g(mi_option_abandoned_reclaim_on_free);
  mi_option_set(mi_option_abandoned_reclaim_on_free, 1);
  mi_collect(true);
  ASSERT_EQ(mi::abandoned_count(), 0u);
  const int64_t reclaimed0 = mi::stats_global.segments_reclaimed.load();
  std::vector<Block> blocks = exit_with_live_blocks(50, 5);
  Segment* s = seg(blocks[0].p);
  ASSERT_EQ(s->thread_id.load(), 0u);
  ASSERT_EQ(mi::abandoned_count(), 1u);
  // Another thread (with a heap: it allocated before) frees one block: it
  // takes the segment over and frees the block locally.
  std::thread([&] {
    void* own = mi_malloc(16);  // initialises the thread
    mi_free(blocks[7].p);
    EXPECT_EQ(s->thread_id.load(), mi::thread_id());
    EXPECT_EQ(mi::abandoned_count(), 0u);
    EXPECT_EQ(mi::stats_global.segments_reclaimed.load(), reclaimed0 + 1);
    EXPECT_TRUE(mi::segment_is_valid(s));
    Page* pg = page_of(blocks[0].p);
    EXPECT_EQ(pg->xheap.load(), mi::heap_get_default());
    EXPECT_EQ(pg->used, 49u);
    for (size_t i = 0; i < blocks.size(); i++) {
      if (i != 7) {
        EXPECT_TRUE(Pattern::check(blocks[i].p, blocks[i].size, i)) << i;
      }
    }
    EXPECT_TRUE(mi::heap_is_valid(mi::heap_get_default()));
    for (size_t i = 0; i < blocks.size(); i++) {
      if (i != 7) mi_free(blocks[i].p);
    }
    mi_free(own);
    EXPECT_TRUE(mi::heap_is_valid(mi::heap_get_default()));
  }).join();
  EXPECT_EQ(mi::abandoned_count(), 0u);
}

TEST(SegmentAbandon, FreeWithoutReclaimGoesToTheThreadFreeList) {
  OptionGuard g(mi_option_abandoned_reclaim_on_free);
  mi_option_set(mi_option_abandoned_reclaim_on_free, 0);
  mi_collect(true);
  ASSERT_EQ(mi::abandoned_count(), 0u);
  std::vector<Block> blocks = exit_with_live_blocks(20, 0);
  Segment* s = seg(blocks[0].p);
  Page* pg = page_of(blocks[0].p);
  ASSERT_EQ(s->thread_id.load(), 0u);
  for (size_t i = 0; i < 10; i++) mi_free(blocks[i].p);
  EXPECT_EQ(s->thread_id.load(), 0u) << "reclaimed although abandoned_reclaim_on_free is off";
  EXPECT_EQ(mi::abandoned_count(), 1u);
  const uintptr_t tf = pg->xthread_free.load();
  EXPECT_EQ(tf & mi::DELAYED_MASK, static_cast<uintptr_t>(mi::Delayed::never_delayed_free));
  EXPECT_EQ(mi::block_list_length(mi::thread_free_block(tf), 100), 10u);
  EXPECT_EQ(mi::thread_free_count(tf), 10u) << "the count kept with the list";
  // the rest is freed too: the segment, now holding no live block, is reclaimed
  // by the next collect and freed
  for (size_t i = 10; i < blocks.size(); i++) mi_free(blocks[i].p);
  mi_collect(true);
  EXPECT_EQ(mi::abandoned_count(), 0u);
  EXPECT_EQ(mi::segmap_segment_of(blocks[0].p), nullptr) << "the empty segment was not freed";
}

// CORE BUG (fails): lib/heap/reclaim.cpp:32 frees a reclaimed page whose
// blocks were all freed with segment_page_free() directly, bypassing
// page_free() (lib/heap/page.cpp:403), which is what decreases
// stats_global.huge_bytes for huge pages: the gauge keeps the block's size.
TEST(SegmentAbandon, FreedAbandonedHugeBlockLeavesTheStatistics) {
  // A huge block of an exited thread, freed without reclaim-on-free (it
  // waits on the page's thread-free list), is released when its segment is
  // reclaimed; the huge-bytes gauge goes back down with it.
  OptionGuard g(mi_option_abandoned_reclaim_on_free);
  mi_option_set(mi_option_abandoned_reclaim_on_free, 0);
  mi_collect(true);
  ASSERT_EQ(mi::abandoned_count(), 0u);
  const int64_t huge0 = mi::stats_global.huge_bytes.current.load();
  const int64_t pages0 = mi::stats_global.pages.current.load();
  void* p = nullptr;
  std::thread([&] {
    p = mi_malloc(6 * MiB);
    memset(p, 1, 4096);
  }).join();
  ASSERT_NE(p, nullptr);
  Segment* s = seg(p);
  ASSERT_EQ(s->thread_id.load(), 0u);
  EXPECT_GT(mi::stats_global.huge_bytes.current.load(), huge0);
  mi_free(p);  // onto the abandoned page's thread-free list
  EXPECT_EQ(seg(p), s);
  mi_collect(true);  // reclaims the segment: its page is empty, the segment goes
  EXPECT_EQ(mi::segmap_segment_of(p), nullptr);
  EXPECT_EQ(mi::abandoned_count(), 0u);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0);
  EXPECT_EQ(mi::stats_global.huge_bytes.current.load(), huge0) << "the freed huge block is still counted";
}

// --- guard pages (secure mode) --------------------------------------------------------
// The secure build, or the secure option (a child with MIMALLOC_SECURE=1):
// the OS page after a segment's header and the last OS page of each page are
// inaccessible; a large page's guard follows it when it grows, stays when it
// is freed and goes when a longer page is claimed over it; no guard is left
// when the segment goes back to its arena.

bool is_guard(const void* p) {
  return numa_test::bytes_with_perms(p, mi::os_page_size(), "---p") == mi::os_page_size();
}
bool is_open(const void* p) { return numa_test::bytes_with_perms(p, mi::os_page_size(), "rw-p") == mi::os_page_size(); }

// Whether a write to p kills a process (a forked one) with SIGSEGV.
bool write_faults(void* p) {
  const pid_t pid = fork();
  if (pid == 0) {
    *static_cast<volatile char*>(p) = 1;
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

TEST(SegmentChild, DISABLED_GuardPages) {
  ASSERT_TRUE(mi::secure_enabled());
  const size_t ps = mi::os_page_size();
  OwnArena a;
  ASSERT_NE(a.heap, nullptr);

  // a small page: its guard, the header's guard, the blocks before the guard
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 64));
  Segment* s = seg(p);
  Page* pg = page_of(p);
  ASSERT_EQ(s->guard_size, ps);
  ASSERT_TRUE(s->guard_protect);
  uint8_t* header_guard = base(s) + mi::align_up(s->segment_info_size, ps);
  uint8_t* page_guard = base(s) + (pg->segment_idx + 1) * mi::SMALL_PAGE_SIZE - ps;
  EXPECT_TRUE(is_guard(header_guard));
  EXPECT_TRUE(is_guard(page_guard));
  EXPECT_TRUE(write_faults(page_guard));
  EXPECT_TRUE(write_faults(header_guard));
  EXPECT_LE(pg->page_start + pg->reserved * pg->block_size, page_guard) << "the blocks end at the guard";
  EXPECT_TRUE(is_open(page_guard - ps));

  // large pages: one guard, at the segment's end; a page that reaches the
  // last slice ends before it (every block is written all through: a guard
  // inside one would kill this process)
  const size_t sizes[] = {130 * KiB, 200 * KiB, 260 * KiB,  300 * KiB, 450 * KiB,
                          700 * KiB, 900 * KiB, 1200 * KiB, 2 * MiB};
  std::vector<uint8_t*> large;
  std::set<Segment*> large_segments;
  size_t reaching_end = 0;
  for (size_t k = 0; k < 54; k++) {  // about 36 MiB of the arena's 64
    uint8_t* q = static_cast<uint8_t*>(mi_heap_malloc(a.heap, sizes[k % 9]));
    ASSERT_NE(q, nullptr);
    Segment* ls = seg(q);
    ASSERT_EQ(ls->page_kind, mi::PageKind::large);
    Page* qp = page_of(q);
    memset(q, 7, mi_usable_size(q));
    uint8_t* end_guard = base(ls) + mi::SEGMENT_SIZE - ps;
    EXPECT_LE(q + mi_usable_size(q), end_guard);
    if (qp->segment_idx + qp->slice_count == ls->capacity) reaching_end++;
    large_segments.insert(ls);
    large.push_back(q);
  }
  EXPECT_GT(reaching_end, 0u) << "no page reached a segment's last slice: the case is not exercised";
  for (Segment* ls : large_segments) {
    EXPECT_TRUE(is_guard(base(ls) + mi::SEGMENT_SIZE - ps));
    EXPECT_TRUE(is_guard(base(ls) + mi::align_up(ls->segment_info_size, ps)));
  }
  // grown in place up to the segment's end: the block stops before the guard
  for (uint8_t* q : large) mi_free(q);
  uint8_t* keep = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 2 * MiB));  // slices 0..32 of a segment
  uint8_t* q = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 200 * KiB));
  ASSERT_EQ(seg(q), seg(keep));
  uint8_t* q2 = static_cast<uint8_t*>(mi_heap_realloc(a.heap, q, 1900 * KiB));
  if (q2 == q) {
    EXPECT_LE(q + mi_usable_size(q), base(seg(q)) + mi::SEGMENT_SIZE - ps);
    memset(q, 7, mi_usable_size(q));
  }
  mi_free(q2);
  mi_free(keep);

  // a huge block: the guard right after it; none left once it is freed
  uint8_t* h = static_cast<uint8_t*>(mi_heap_malloc(a.heap, 9 * MiB));
  Segment* hs = seg(h);
  ASSERT_EQ(hs->page_kind, mi::PageKind::huge);
  EXPECT_TRUE(is_guard(h + mi_usable_size(h)));
  EXPECT_EQ(h + mi_usable_size(h), base(hs) + hs->segment_size - ps);
  const size_t hsize = hs->segment_size;
  mi_free(h);
  EXPECT_EQ(numa_test::bytes_with_perms(hs, hsize, "---p"), 0u) << "the arena gets its memory back without guards";
  mi_free(p);
}

TEST(SegmentSecure, GuardPages) {
  unit::ChildResult r =
      unit::run_child("SegmentChild.DISABLED_GuardPages", {"MIMALLOC_SECURE=1", "MIMALLOC_PURGE_DELAY=-1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(Segment, NoGuardPagesByDefault) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode";
  void* p = mi_malloc(64);
  EXPECT_EQ(seg(p)->guard_size, 0u);
  EXPECT_EQ(seg(p)->guard_mask, 0u);
  mi_free(p);
}

}  // namespace
