// Unit tests of lib/heap/heap (and the page queues of page_queue.h): heaps as
// objects — creation, the direct table, collect, delete (pages move to the
// backing heap), destroy (everything freed), tags, ownership queries — with
// heap_is_valid checking the queue invariants throughout.
//
// Checks of a thread's backing heap run in a thread of their own: the main
// thread's heap is covered by thread_test.cpp.
#include "heap/heap.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "common/stats.h"
#include "heap/page.h"
#include "heap/page_queue.h"
#include "heap/size_class.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using mi::Page;
constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

Page* page_of(const void* p) {
  mi::Segment* s = mi::segmap_segment_of(p);
  return (s->capacity == 1) ? &s->pages[0] : mi::segment_page_of(s, p);
}

// Is `heap` in the list of heaps of `any`'s thread? (`heap` may be freed.)
bool listed(const mi::Heap* any, const void* heap) {
  for (const mi::Heap* h = any->tld->heaps; h != nullptr; h = h->next) {
    if (h == heap) return true;
  }
  return false;
}

// Runs f in a new thread and waits for it.
template <class F>
void in_thread(F&& f) {
  std::thread(std::forward<F>(f)).join();
}

TEST(Heap, NewHeap) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  mi_heap_t* backing = mi_heap_get_backing();
  EXPECT_TRUE(mi::heap_is_initialized(heap));
  EXPECT_TRUE(mi::heap_is_valid(heap));
  EXPECT_EQ(heap->tld, backing->tld);
  EXPECT_NE(heap, backing);
  EXPECT_EQ(heap->thread_id, mi::thread_id());
  EXPECT_EQ(heap->page_count, 0u);
  EXPECT_EQ(heap->arena_id, 0);
  EXPECT_TRUE(heap->no_reclaim) << "a destroyable heap must not take other threads' segments";
  EXPECT_TRUE(listed(backing, heap));
  for (size_t s = 0; s < mi::PAGES_DIRECT; s++) {
    EXPECT_EQ(mi::heap_direct_page(heap, s), &mi::page_empty);
    EXPECT_EQ(heap->direct_bin[s], mi::bin_of_size(s)) << s;
  }
  for (size_t b = 1; b <= mi::BIN_LARGE_MAX; b++) EXPECT_EQ(heap->pages[b].block_size, mi::bin_block_sizes[b]);
  EXPECT_TRUE(mi::page_queue_is_huge(&heap->pages[mi::BIN_HUGE]));
  EXPECT_TRUE(mi::page_queue_is_full(&heap->pages[mi::BIN_FULL]));
  mi_heap_delete(heap);
  EXPECT_FALSE(listed(backing, heap)) << "a deleted heap is still in its thread's list";
}

TEST(Heap, DirectTablePointsAtTheFirstPageOfEachSmallBin) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  for (size_t size = 1; size <= mi::SMALL_SIZE_MAX; size += 7) blocks.push_back(mi_heap_malloc(heap, size));
  EXPECT_TRUE(mi::heap_is_valid(heap));
  for (size_t size = 0; size <= mi::SMALL_SIZE_MAX; size++) {
    const size_t bin = mi::bin_of_size(size);
    const Page* first = heap->pages[bin].first;
    EXPECT_EQ(mi::heap_direct_page(heap, size), first != nullptr ? first : &mi::page_empty) << "size " << size;
  }
  // the fast path serves from the direct page
  const size_t w = 5;
  Page* direct = mi::heap_direct_page(heap, w * 8);
  ASSERT_NE(direct, &mi::page_empty);
  mi::Block* expect = direct->free;
  if (expect != nullptr) {
    void* p = mi_heap_malloc(heap, w * 8);
    EXPECT_EQ(p, expect);
    blocks.push_back(p);
  }
  for (void* p : blocks) mi_free(p);
  mi_heap_collect(heap, false);
  for (size_t s = 0; s < mi::PAGES_DIRECT; s++) EXPECT_EQ(mi::heap_direct_page(heap, s), &mi::page_empty) << s;
  EXPECT_TRUE(mi::heap_is_valid(heap));
  mi_heap_delete(heap);
}

TEST(Heap, CollectFreesEmptyPagesAndKeepsLiveOnes) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  const size_t sizes[] = {8, 24, 72, 200, 500, 900, 1500, 3000, 7000, 12000, 20000, 60000};
  for (size_t sz : sizes) {
    for (int i = 0; i < 5; i++) blocks.push_back(mi_heap_malloc(heap, sz));
  }
  const size_t npages = heap->page_count;
  EXPECT_EQ(npages, sizeof(sizes) / sizeof(sizes[0]));
  void* live = mi_heap_malloc(heap, 100);  // one more bin, stays live
  const int64_t pages0 = mi::stats_global.pages.current.load();
  for (void* p : blocks) mi_free(p);
  // each page was its bin's only one: kept (retired), not freed yet
  EXPECT_EQ(heap->page_count, npages + 1);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0);
  mi_heap_collect(heap, false);
  EXPECT_EQ(heap->page_count, 1u) << "only the page with a live block stays";
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0 - static_cast<int64_t>(npages));
  EXPECT_EQ(page_of(live)->xheap.load(), heap);
  EXPECT_TRUE(mi::heap_is_valid(heap));
  mi_free(live);
  mi_heap_collect(heap, true);
  EXPECT_EQ(heap->page_count, 0u);
  mi_heap_delete(heap);
}

TEST(Heap, DestroyFreesEverything) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  blocks.reserve(4000);  // (from the default heap: before counting)
  const int64_t pages0 = mi::stats_global.pages.current.load();
  const int64_t segs0 = mi::stats_global.segments.current.load();
  const int64_t huge0 = mi::stats_global.huge_bytes.current.load();
  for (int i = 0; i < 3000; i++) blocks.push_back(mi_heap_malloc(heap, static_cast<size_t>(8 + (i * 37) % 2000)));
  for (int i = 0; i < 40; i++) blocks.push_back(mi_heap_malloc(heap, static_cast<size_t>(20000 + i * 1000)));
  void* large = mi_heap_malloc(heap, 700 * KiB);
  void* huge = mi_heap_malloc(heap, 6 * MiB);
  ASSERT_NE(large, nullptr);
  ASSERT_NE(huge, nullptr);
  for (void* p : blocks) ASSERT_NE(p, nullptr);
  EXPECT_GT(mi::stats_global.pages.current.load(), pages0);
  EXPECT_GT(mi::stats_global.huge_bytes.current.load(), huge0);
  mi::Segment* huge_seg = mi::segmap_segment_of(huge);
  mi::Segment* large_seg = mi::segmap_segment_of(large);
  mi_heap_t* backing = mi_heap_get_backing();
  EXPECT_TRUE(mi::heap_is_valid(heap));

  mi_heap_destroy(heap);  // no frees: all of it goes at once
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages0);
  EXPECT_EQ(mi::stats_global.huge_bytes.current.load(), huge0);
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs0) << "segments of the heap's pages stayed";
  EXPECT_EQ(mi::segmap_segment_of(huge), nullptr);
  EXPECT_EQ(mi::segmap_byte(huge_seg), 0u);
  if (mi::segmap_segment_of(large) == large_seg) {
    EXPECT_FALSE(mi::segment_page_of(large_seg, large)->segment_in_use) << "the large page stayed";
  }
  EXPECT_FALSE(listed(backing, heap));
  // the memory is used again
  void* again = mi_malloc(6 * MiB);
  ASSERT_NE(again, nullptr);
  mi_free(again);
}

TEST(Heap, DeleteMovesLivePagesToTheBackingHeap) {
  in_thread([] {
    mi_heap_t* backing = mi_heap_get_backing();
    mi_heap_t* heap = mi_heap_new();
    ASSERT_NE(heap, nullptr);
    std::vector<uint8_t*> blocks;
    for (int i = 0; i < 200; i++) {
      const size_t sz = static_cast<size_t>(16 + (i % 10) * 300);
      uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(heap, sz));
      ASSERT_NE(p, nullptr);
      memset(p, i & 0xff, sz);
      blocks.push_back(p);
    }
    const size_t moved = heap->page_count;
    const size_t backing_pages = backing->page_count;
    mi_heap_delete(heap);
    // the heap's own struct was a block of the backing heap: freeing it may
    // free its page (when a moved page of its size class keeps the queue)
    EXPECT_GE(backing->page_count, backing_pages + moved - 1);
    EXPECT_LE(backing->page_count, backing_pages + moved);
    for (uint8_t* p : blocks) {
      ASSERT_EQ(page_of(p)->xheap.load(), backing);
      ASSERT_TRUE(mi_heap_contains_block(backing, p));
    }
    EXPECT_TRUE(mi::heap_is_valid(backing));
    for (size_t i = 0; i < blocks.size(); i++) {
      ASSERT_EQ(blocks[i][0], static_cast<uint8_t>(i & 0xff)) << "block changed by the move";
    }
    for (uint8_t* p : blocks) mi_free(p);
    EXPECT_TRUE(mi::heap_is_valid(backing));
  });
}

TEST(Heap, DeleteWhileAnotherThreadFreesIntoIt) {
  // Blocks of a full page freed by another thread go to the heap's delayed
  // list; deleting the heap hands those to the backing heap too.
  in_thread([] {
    mi_heap_t* backing = mi_heap_get_backing();
    mi_heap_t* heap = mi_heap_new();
    ASSERT_NE(heap, nullptr);
    std::vector<void*> blocks;
    void* first = mi_heap_malloc(heap, 2048);
    Page* pg = page_of(first);
    blocks.push_back(first);
    while (pg->used < pg->reserved) blocks.push_back(mi_heap_malloc(heap, 2048));
    blocks.push_back(mi_heap_malloc(heap, 2048));  // pg -> full queue
    ASSERT_TRUE(mi::page_in_full(pg));
    std::thread([&] { mi_free(blocks[1]); }).join();
    ASSERT_NE(heap->thread_delayed_free.load(), nullptr);
    mi_heap_delete(heap);
    EXPECT_EQ(pg->xheap.load(), backing);
    EXPECT_EQ(pg->used, pg->reserved - 1u) << "the delayed free was processed";
    EXPECT_TRUE(mi::heap_is_valid(backing));
    for (size_t i = 0; i < blocks.size(); i++) {
      if (i != 1) mi_free(blocks[i]);
    }
    EXPECT_TRUE(mi::heap_is_valid(backing));
  });
}

TEST(Heap, Tags) {
  mi_heap_t* backing = mi_heap_get_backing();
  mi_heap_t* tagged = mi_heap_new_ex(7, true, 0);
  ASSERT_NE(tagged, nullptr);
  EXPECT_EQ(tagged->tag, 7u);
  EXPECT_EQ(mi::heap_by_tag(backing, 7), tagged);
  EXPECT_EQ(mi::heap_by_tag(tagged, 7), tagged);
  EXPECT_EQ(mi::heap_by_tag(backing, 0), backing);
  EXPECT_EQ(mi::heap_by_tag(backing, 99), nullptr);
  void* p = mi_heap_malloc(tagged, 100);
  EXPECT_EQ(page_of(p)->heap_tag, 7u);
  mi_free(p);
  mi_heap_destroy(tagged);
  EXPECT_EQ(mi::heap_by_tag(backing, 7), nullptr);
}

TEST(Heap, OwnershipQueries) {
  mi_heap_t* h1 = mi_heap_new();
  mi_heap_t* h2 = mi_heap_new();
  ASSERT_NE(h1, nullptr);
  ASSERT_NE(h2, nullptr);
  void* a = mi_heap_malloc(h1, 64);
  void* b = mi_heap_malloc(h2, 64);
  void* big = mi_heap_malloc(h1, 5 * MiB);
  EXPECT_TRUE(mi_heap_contains_block(h1, a));
  EXPECT_FALSE(mi_heap_contains_block(h2, a));
  EXPECT_TRUE(mi_heap_contains_block(h2, b));
  EXPECT_TRUE(mi_heap_contains_block(h1, big));
  EXPECT_TRUE(mi_heap_contains_block(h1, static_cast<uint8_t*>(big) + 4 * MiB)) << "a later unit of a huge block";
  EXPECT_TRUE(mi_heap_check_owned(h1, a));
  EXPECT_FALSE(mi_heap_check_owned(h1, b));
  EXPECT_FALSE(mi_heap_check_owned(h1, static_cast<uint8_t*>(a) + 1)) << "not word aligned";
  int local = 0;
  EXPECT_FALSE(mi_heap_contains_block(h1, &local));
  EXPECT_FALSE(mi_heap_check_owned(h1, &local));
  EXPECT_FALSE(mi_heap_contains_block(h1, nullptr));
  mi_free(a);
  mi_free(b);
  mi_free(big);
  mi_heap_destroy(h1);
  mi_heap_destroy(h2);
}

TEST(Heap, SetDefault) {
  in_thread([] {
    mi_heap_t* heap = mi_heap_new();
    ASSERT_NE(heap, nullptr);
    mi_heap_t* old = mi_heap_set_default(heap);
    EXPECT_EQ(old, mi_heap_get_backing());
    EXPECT_EQ(mi::heap_get_default(), heap);
    void* p = mi_malloc(40);
    EXPECT_EQ(page_of(p)->xheap.load(), heap);
    mi_free(p);
    EXPECT_EQ(mi_heap_set_default(old), heap);
    // deleting the default heap falls back to the backing heap
    mi_heap_set_default(heap);
    mi_heap_delete(heap);
    EXPECT_EQ(mi::heap_get_default(), mi_heap_get_backing());
    EXPECT_EQ(mi_heap_set_default(nullptr), nullptr);
  });
}

TEST(Heap, BackingHeapDeleteAbandonsItsPages) {
  // mi_heap_delete of the backing heap gives its pages away (as at thread exit).
  std::vector<void*> blocks;
  in_thread([&] {
    for (int i = 0; i < 30; i++) blocks.push_back(mi_malloc(100));
    mi_heap_t* backing = mi_heap_get_backing();
    mi_heap_delete(backing);  // backing heaps are not freed, their pages are abandoned
    EXPECT_EQ(backing->page_count, 0u);
    EXPECT_EQ(page_of(blocks[0])->xheap.load(), nullptr);
    EXPECT_EQ(mi::segmap_segment_of(blocks[0])->thread_id.load(), 0u);
  });
  for (void* p : blocks) mi_free(p);
  mi_collect(true);
}

}  // namespace
