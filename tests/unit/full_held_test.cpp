// Unit tests of lib/heap/full_held: a block freed by its owner into one of its
// heap's full pages, of the sizes above the direct ones (1 KiB - 128 KiB), is
// held for the heap's next allocation of its size: the page stays in the
// full queue with the block counted in use, and the next allocation of that
// size hands the block out again (calloc's cleared); at most FULL_HELD_BYTES
// per heap, past that a free takes the page out of the full queue as before;
// a collect, mi_heap_delete and mi_heap_visit_blocks give the blocks back;
// the direct sizes, other heaps and the hardened build hold none; a block
// freed twice in a row is reported and held once. On two nodes (a synthetic
// topology, in a child): held and handed out the same way while the thread
// stays on its CPU, not handed out once it moved to the other node.
#include "heap/full_held.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "common/options.h"
#include "heap/free_list.h"
#include "heap/heap.h"
#include "heap/heap_check.h"
#include "heap/page.h"
#include "heap_util.h"
#include "numa_util.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using mi::Block;
using mi::Page;

using unit::fill_page;
using unit::OwnHeap;
using unit::page_of;

// Allocates from `heap` until a page of `size` is full and found full by a
// search (in the full queue): its blocks, the page in *page_out; the block
// that made the search (of the next page) in *next_out.
std::vector<void*> fill_page_to_full_queue(mi_heap_t* heap, size_t size, Page** page_out, void** next_out) {
  std::vector<void*> blocks = fill_page(heap, size, page_out);
  *next_out = mi_heap_malloc(heap, size);  // finds the page full: to the full queue
  return blocks;
}

// A heap of its own whose page P of `size` blocks (`blocks`) is in the full
// queue, found full by the allocation of `next` (from the next page).
struct HeapWithFullPage {
  OwnHeap h;
  Page* P = nullptr;
  void* next = nullptr;
  std::vector<void*> blocks;
  explicit HeapWithFullPage(size_t size) {
    if (h.heap != nullptr) blocks = fill_page_to_full_queue(h.heap, size, &P, &next);
  }
};

size_t held_bytes(const mi_heap_t* heap) {
  size_t bytes = 0;
  for (size_t i = 0; i < mi::FULL_HELD_BINS; i++) {
    for (const Block* b = heap->full_held[i]; b != nullptr; b = reinterpret_cast<const Block*>(b->link)) {
      bytes += mi::bin_block_sizes[mi::FULL_HELD_BIN0 + i];
    }
  }
  EXPECT_EQ(bytes, heap->full_held_max - heap->full_held_room);
  return bytes;
}

#define SKIP_IF_SECURE()                                                                                       \
  do {                                                                                                         \
    if (MI_SECURE) GTEST_SKIP() << "the hardened build holds no block (its frees are checked, lists encoded)"; \
  } while (0)

TEST(FullHeld, ABlockFreedIntoAFullPageIsHeldAndHandedOutNext) {
  SKIP_IF_SECURE();
  const size_t size = 4096;
  HeapWithFullPage f(size);
  auto& [h, P, next, blocks] = f;
  ASSERT_NE(h.heap, nullptr);
  ASSERT_TRUE(mi::page_in_full(P));
  const uint32_t used = P->used;

  void* b = blocks[3];
  mi_free(b);
  EXPECT_TRUE(mi::page_in_full(P)) << "the page stays in the full queue";
  EXPECT_EQ(P->used, used) << "a held block stays counted in use in its page";
  EXPECT_EQ(P->local_free, nullptr);
  EXPECT_EQ(held_bytes(h.heap), mi::bin_block_sizes[mi::bin_of_size(size)]);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));

  // the next allocation of its size class (any size of it) takes it back
  void* again = mi_heap_malloc(h.heap, size - 100);
  EXPECT_EQ(again, b);
  EXPECT_EQ(held_bytes(h.heap), 0u);
  EXPECT_EQ(P->used, used);
  EXPECT_TRUE(mi::page_in_full(P));
  blocks[3] = again;

  // last in, first out; calloc's are cleared
  mi_free(blocks[5]);
  mi_free(blocks[7]);
  void* c = mi_heap_calloc(h.heap, 1, size);
  EXPECT_EQ(c, blocks[7]);
  const unsigned char* bytes = static_cast<const unsigned char*>(c);
  for (size_t i = 0; i < size; i++) ASSERT_EQ(bytes[i], 0) << "byte " << i << " of a held block calloc'd";
  EXPECT_EQ(mi_heap_malloc(h.heap, size), blocks[5]);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  for (void* p : blocks) mi_free(p);
  mi_free(next);
}

TEST(FullHeld, AtMostTheBoundThenFreesGoToThePage) {
  SKIP_IF_SECURE();
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  const size_t size = 16 * 1024;  // 4 per 64 KiB page: the bound (256 KiB) is 16 blocks
  const size_t bsize = mi::bin_block_sizes[mi::bin_of_size(size)];
  std::vector<void*> blocks;
  std::vector<Page*> pages;
  // pages filled one after the other, each found full by the next one's first allocation
  for (int i = 0; i < 12; i++) {
    Page* P = nullptr;
    void* next = nullptr;
    std::vector<void*> b = fill_page_to_full_queue(h.heap, size, &P, &next);
    blocks.insert(blocks.end(), b.begin(), b.end());
    blocks.push_back(next);
  }
  // free the blocks of pages in the full queue until the bound is reached
  size_t held_count = 0;
  size_t passed = 0;
  for (void* p : blocks) {
    Page* pg = page_of(p);
    if (!mi::page_in_full(pg)) continue;
    const size_t before = held_bytes(h.heap);
    const uint32_t used = pg->used;
    mi_free(p);
    if (held_bytes(h.heap) > before) {
      held_count++;
      EXPECT_EQ(pg->used, used);
    } else {
      passed++;
      EXPECT_EQ(pg->used, used - 1u) << "past the bound a free goes to its page";
      EXPECT_FALSE(mi::page_in_full(pg)) << "and takes the page out of the full queue";
      EXPECT_EQ(h.heap->full_held_room, h.heap->full_held_max % bsize);
    }
    EXPECT_LE(held_bytes(h.heap), h.heap->full_held_max);
  }
  EXPECT_EQ(held_count, mi::FULL_HELD_BYTES / bsize);
  EXPECT_GT(passed, 0u);
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  // (mi_heap_destroy drops the held blocks with the pages)
}

TEST(FullHeld, ACollectGivesTheBlocksBackToTheirPages) {
  SKIP_IF_SECURE();
  const size_t size = 3000;
  HeapWithFullPage f(size);
  auto& [h, P, next, blocks] = f;
  ASSERT_NE(h.heap, nullptr);
  const uint32_t used = P->used;
  mi_free(blocks[0]);
  mi_free(blocks[1]);
  ASSERT_GT(held_bytes(h.heap), 0u);
  mi_heap_collect(h.heap, false);
  EXPECT_EQ(held_bytes(h.heap), 0u);
  EXPECT_EQ(P->used, used - 2u);
  EXPECT_FALSE(mi::page_in_full(P));
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  for (size_t i = 2; i < blocks.size(); i++) mi_free(blocks[i]);
  mi_free(next);
}

TEST(FullHeld, VisitingTheHeapListsHeldBlocksAsFree) {
  SKIP_IF_SECURE();
  const size_t size = 2048;
  HeapWithFullPage f(size);
  auto& [h, P, next, blocks] = f;
  ASSERT_NE(h.heap, nullptr);
  void* freed = blocks[4];
  mi_free(freed);
  ASSERT_GT(held_bytes(h.heap), 0u);
  std::set<void*> live;
  auto visit = [](const mi_heap_t*, const mi_heap_area_t*, void* block, size_t, void* arg) {
    if (block != nullptr) static_cast<std::set<void*>*>(arg)->insert(block);
    return true;
  };
  ASSERT_TRUE(mi_heap_visit_blocks(h.heap, true, visit, &live));
  EXPECT_EQ(live.count(freed), 0u) << "a freed block listed as live";
  EXPECT_EQ(live.size(), blocks.size()) << "the program's blocks: the page's others and the next page's one";
  EXPECT_EQ(held_bytes(h.heap), 0u);
  for (void* p : blocks) {
    if (p != freed) mi_free(p);
  }
  mi_free(next);
}

TEST(FullHeld, DeletingTheHeapGivesTheBlocksBack) {
  SKIP_IF_SECURE();
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  const size_t size = 5000;
  Page* P = nullptr;
  void* next = nullptr;
  std::vector<void*> blocks = fill_page_to_full_queue(heap, size, &P, &next);
  const uint32_t used = P->used;
  mi_free(blocks[0]);
  ASSERT_GT(held_bytes(heap), 0u);
  mi_heap_delete(heap);  // its pages go to the backing heap, without the held block
  EXPECT_EQ(P->used, used - 1u);
  mi::Heap* backing = mi::heap_get_default();
  EXPECT_EQ(P->xheap.load(), backing);
  EXPECT_TRUE(mi::heap_is_valid(backing));
  for (size_t i = 1; i < blocks.size(); i++) mi_free(blocks[i]);
  mi_free(next);
}

TEST(FullHeld, TheDirectSizesAndOtherHeapsHoldNone) {
  SKIP_IF_SECURE();
  OwnHeap h, other;
  ASSERT_NE(h.heap, nullptr);
  ASSERT_NE(other.heap, nullptr);
  // 1 KiB, a direct size: its page leaves the full queue at once
  {
    Page* P = nullptr;
    void* next = nullptr;
    std::vector<void*> blocks = fill_page_to_full_queue(h.heap, 1024, &P, &next);
    mi_free(blocks[0]);
    EXPECT_EQ(held_bytes(h.heap), 0u);
    EXPECT_FALSE(mi::page_in_full(P));
    for (size_t i = 1; i < blocks.size(); i++) mi_free(blocks[i]);
    mi_free(next);
  }
  // a held block of h is not handed to another heap's allocation
  Page* P = nullptr;
  void* next = nullptr;
  std::vector<void*> blocks = fill_page_to_full_queue(h.heap, 8192, &P, &next);
  mi_free(blocks[1]);
  ASSERT_GT(held_bytes(h.heap), 0u);
  void* o = mi_heap_malloc(other.heap, 8192);
  EXPECT_NE(o, blocks[1]);
  EXPECT_NE(page_of(o)->xheap.load(), h.heap);
  EXPECT_GT(held_bytes(h.heap), 0u);
  mi_free(o);
  EXPECT_EQ(held_bytes(other.heap), 0u);
  for (size_t i = 0; i < blocks.size(); i++) {
    if (i != 1) mi_free(blocks[i]);
  }
  mi_free(next);
}

std::string g_out;
void capture(const char* msg, void*) { g_out += msg; }

TEST(FullHeldChild, DISABLED_ABlockFreedTwiceInARowIsReportedAndHeldOnce) {
  mi_register_output(capture, nullptr);
  OwnHeap h;
  Page* P = nullptr;
  void* next = nullptr;
  std::vector<void*> blocks = fill_page_to_full_queue(h.heap, 4096, &P, &next);
  void* b = blocks[2];
  mi_free(b);
  mi_free(unit::opaque(b));
  char expect[64];
  snprintf(expect, sizeof expect, "free(%p): double free", b);
  EXPECT_NE(g_out.find(expect), std::string::npos) << g_out;
  EXPECT_EQ(held_bytes(h.heap), mi::bin_block_sizes[mi::bin_of_size(4096)]);
  void* x = mi_heap_malloc(h.heap, 4096);
  void* y = mi_heap_malloc(h.heap, 4096);
  EXPECT_EQ(x, b);
  EXPECT_NE(y, b) << "a block freed twice was handed out twice";
  EXPECT_TRUE(mi::heap_is_valid(h.heap));
  mi_register_output(nullptr, nullptr);
}

TEST(FullHeld, ABlockFreedTwiceInARowIsReportedAndHeldOnce) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode aborts on a double free (tests/api/misuse_test.cpp)";
  SKIP_IF_SECURE();
  unit::ChildResult r = unit::run_child("FullHeldChild.DISABLED_ABlockFreedTwiceInARowIsReportedAndHeldOnce", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// Two nodes of one CPU each (CPU 0: node 0, CPU 1: node 1; hwloc's
// synthetic topology, binding skipped). The held block is handed out by the
// allocation's own path (malloc_queue_first: the CPU read from the rseq area,
// or asked of sched_getcpu where there is none), as on one node; after the
// thread moved to CPU 1 the next allocation moves it to node 1 first, which
// gives the held blocks back to their page before anything is handed out.
TEST(FullHeldChild, DISABLED_HeldOnTwoNodesUntilTheThreadMoves) {
  ASSERT_EQ(mi::numa_nodes_in_use.load(), 2);
  ASSERT_TRUE(numa_test::repin_to(0));
  const int rseq = mi::rseq_cpu();
  EXPECT_TRUE(rseq == 0 || rseq == -1) << "the rseq area's CPU is the thread's, or there is none: " << rseq;
  // the thread's default heap: it follows its thread (heap/migrate.cpp; a
  // heap of mi_heap_new keeps its pages where they are)
  mi_heap_t* heap = mi_heap_get_default();
  const size_t size = 4096;
  Page* P = nullptr;
  void* next = nullptr;
  std::vector<void*> blocks = fill_page_to_full_queue(heap, size, &P, &next);
  ASSERT_TRUE(mi::page_in_full(P));
  EXPECT_EQ(heap->tld->node, 0);

  mi_free(blocks[3]);
  EXPECT_EQ(held_bytes(heap), mi::bin_block_sizes[mi::bin_of_size(size)]);
  void* again = mi_malloc(size);
  EXPECT_EQ(again, blocks[3]) << "held and handed out next on the thread's own CPU";
  blocks[3] = again;

  mi_free(blocks[5]);
  EXPECT_EQ(held_bytes(heap), mi::bin_block_sizes[mi::bin_of_size(size)]);
  ASSERT_TRUE(numa_test::repin_to(1));
  void* moved = mi_malloc(size);
  EXPECT_EQ(heap->tld->node, 1);
  EXPECT_EQ(held_bytes(heap), 0u) << "the move gave the held blocks back to their page";
  // (the kernel has no node 1 here: the arenas are bound to no node, their
  // pages stay with the thread, and `moved` may well be blocks[5] again, from
  // its page; the numa-vm suite checks where the blocks lie on real nodes)
  EXPECT_TRUE(mi::heap_is_valid(heap));
  blocks[5] = nullptr;
  for (void* p : blocks) mi_free(p);
  mi_free(next);
  mi_free(moved);
}

TEST(FullHeld, HeldOnTwoNodesUntilTheThreadMoves) {
  SKIP_IF_SECURE();
  MI_SKIP_WITHOUT_HWLOC();
  if (!numa_test::cpu_allowed(0) || !numa_test::cpu_allowed(1)) GTEST_SKIP() << "needs CPUs 0 and 1";
  unit::ChildResult r = unit::run_child("FullHeldChild.DISABLED_HeldOnTwoNodesUntilTheThreadMoves",
                                        {"HWLOC_SYNTHETIC=node:2 core:1 pu:1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
