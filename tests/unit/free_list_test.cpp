// Unit tests of lib/heap/free_list: the divisibility test of PageBlocks
// against a real division, the links (plain in the default build, encoded
// with the page's keys in the secure build: a pointer written into a freed
// block does not decode to a block), the bounded walks (a loop or a link out
// of the page ends them), the page of a block, and the thread's random numbers.
#include "heap/free_list.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "heap/heap.h"
#include "heap/size_class.h"
#include "heap_util.h"
#include "segment/segment.h"

namespace {

using mi::Block;
using mi::Page;

using unit::OwnHeap;

// --- the divisibility test ----------------------------------------------------

TEST(PageBlocks, DivisorTestsMultiplesLikeADivision) {
  std::mt19937_64 rng(42);
  std::vector<size_t> sizes;
  for (size_t bin = 1; bin <= mi::BIN_LARGE_MAX; bin++) sizes.push_back(mi::bin_block_sizes[bin]);
  for (size_t bs : {size_t{24}, size_t{40}, size_t{3000}, size_t{65536}, size_t{1} << 22}) sizes.push_back(bs);
  for (size_t bs : sizes) {
    const uint64_t d = mi::block_size_divisor(bs);
    auto multiple = [&](uint64_t off) { return off * d <= d - 1; };
    // every offset of the first 64 KiB, then every block boundary and its
    // neighbours up to 4 MiB (a segment), then random offsets below 2^32
    for (uint64_t off = 0; off < 65536; off++) ASSERT_EQ(multiple(off), off % bs == 0) << bs << " " << off;
    for (uint64_t off = 0; off < (uint64_t{4} << 20); off += bs) {
      ASSERT_TRUE(multiple(off)) << bs << " " << off;
      if (off > 0) {
        ASSERT_FALSE(multiple(off - 1)) << bs << " " << off;
      }
      ASSERT_EQ(multiple(off + 1), bs == 1) << bs << " " << off;
    }
    for (int i = 0; i < 100000; i++) {
      const uint64_t off = rng() & 0xffffffffu;
      ASSERT_EQ(multiple(off), off % bs == 0) << bs << " " << off;
    }
  }
  // a block of 4 GiB or more is alone in its page: offset 0 only
  const uint64_t d = mi::block_size_divisor(size_t{5} << 30);
  const uint64_t zero = 0, eight = 8;
  EXPECT_TRUE(zero * d <= d - 1);
  EXPECT_FALSE(eight * d <= d - 1);
}

TEST(PageBlocks, OfAPage) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  uint8_t* p = static_cast<uint8_t*>(mi_heap_malloc(h.heap, 48));
  ASSERT_NE(p, nullptr);
  Page* page = mi::block_page(reinterpret_cast<Block*>(p));
  const mi::PageBlocks blocks = mi::page_blocks(page);
  EXPECT_EQ(blocks.start, reinterpret_cast<uintptr_t>(page->page_start));
  EXPECT_EQ(blocks.span, static_cast<uint64_t>(page->capacity) * page->block_size);
  EXPECT_TRUE(blocks.has_block(p));
  EXPECT_TRUE(blocks.contains(p + 16));
  EXPECT_FALSE(blocks.has_block(p + 16)) << "inside a block";
  EXPECT_FALSE(blocks.has_block(page->page_start + blocks.span)) << "past the blocks made available";
  EXPECT_FALSE(blocks.contains(page->page_start - 8));
  EXPECT_FALSE(blocks.has_block(nullptr));
  mi_free(p);
}

// --- links -----------------------------------------------------------------------

TEST(Links, RoundTrip) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  Block* a = static_cast<Block*>(mi_heap_malloc(h.heap, 64));
  Block* b = static_cast<Block*>(mi_heap_malloc(h.heap, 64));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Page* page = mi::block_page(a);
  ASSERT_EQ(mi::block_page(b), page);
  mi::block_set_next(page, a, b);
  EXPECT_EQ(mi::block_next(page, a), b);
  EXPECT_EQ(mi::block_next_any(a), b);
  mi::block_set_next(page, a, nullptr);
  EXPECT_EQ(mi::block_next(page, a), nullptr);
#if MI_SECURE
  // the secure build: neither the pointer nor the end of the list is stored as itself
  mi::block_set_next(page, a, b);
  EXPECT_NE(a->link, reinterpret_cast<uintptr_t>(b));
  mi::block_set_next(page, a, nullptr);
  EXPECT_NE(a->link, 0u);
  // a pointer written in by the program decodes outside the page's blocks
  static char target[64];
  a->link = reinterpret_cast<uintptr_t>(target);
  EXPECT_FALSE(mi::page_blocks(page).has_block(mi::block_next(page, a)));
#else
  mi::block_set_next(page, a, b);
  EXPECT_EQ(a->link, reinterpret_cast<uintptr_t>(b)) << "the default build stores the pointer";
#endif
  a->link = 0;
  mi_free(a);
  mi_free(b);
}

#if MI_SECURE
TEST(Links, SecureBuildClearsTheLinkOfABlockHandedOut) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  for (int i = 0; i < 100; i++) {
    uintptr_t* p = static_cast<uintptr_t*>(mi_heap_malloc(h.heap, 32));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 0u) << "an encoded link would tell the program something about the keys";
  }
}

TEST(Links, EveryPageHasItsOwnKeys) {
  OwnHeap h;
  ASSERT_NE(h.heap, nullptr);
  std::set<uintptr_t> keys;
  for (size_t size : {16, 32, 48, 64, 80, 96, 112, 128}) {
    Page* page = mi::block_page(static_cast<Block*>(mi_heap_malloc(h.heap, size)));
    EXPECT_TRUE(keys.insert(page->keys[0]).second);
    EXPECT_EQ(page->keys[1] & 1, 1u) << "an odd rotation";
  }
}
#endif

// --- walks ---------------------------------------------------------------------------

// Blocks of one page (a heap of its own), linked by hand.
struct Chain {
  OwnHeap h;
  std::vector<Block*> b;
  Page* page = nullptr;
  explicit Chain(size_t n) {
    for (size_t i = 0; i < n; i++) b.push_back(static_cast<Block*>(mi_heap_malloc(h.heap, 64)));
    page = mi::block_page(b[0]);
    for (size_t i = 0; i + 1 < n; i++) mi::block_set_next(page, b[i], b[i + 1]);
    mi::block_set_next(page, b[n - 1], nullptr);
  }
  ~Chain() {
    for (Block* x : b) x->link = 0;
  }
};

TEST(Walks, CountAndTail) {
  Chain c(10);
  const Block* tail = nullptr;
  EXPECT_EQ(mi::free_list_count(c.page, c.b[0], 100, &tail), 10u);
  EXPECT_EQ(tail, c.b[9]);
  EXPECT_EQ(mi::free_list_count(c.page, c.b[0], 10), 10u);
  EXPECT_EQ(mi::free_list_count(c.page, c.b[0], 9), mi::LIST_BAD) << "longer than the limit";
  EXPECT_EQ(mi::free_list_count(c.page, nullptr, 0), 0u);
  EXPECT_TRUE(mi::free_list_contains(c.page, c.b[0], c.b[7], 100));
  EXPECT_FALSE(mi::free_list_contains(c.page, c.b[3], c.b[1], 100));
}

TEST(Walks, ALoopEndsTheWalk) {
  Chain c(10);
  mi::block_set_next(c.page, c.b[9], c.b[4]);  // what a double free makes
  EXPECT_EQ(mi::free_list_count(c.page, c.b[0], c.page->capacity), mi::LIST_BAD);
  EXPECT_FALSE(mi::free_list_contains(c.page, c.b[0], reinterpret_cast<Block*>(c.page->page_start + 8), 1000));
  mi::block_set_next(c.page, c.b[0], c.b[0]);  // free(p); free(p)
  EXPECT_EQ(mi::free_list_count(c.page, c.b[0], c.page->capacity), mi::LIST_BAD);
}

TEST(Walks, ALinkOutOfThePageEndsTheWalk) {
  Chain c(10);
  static char elsewhere[64];
  mi::block_set_next(c.page, c.b[5], reinterpret_cast<Block*>(elsewhere));
  const Block* tail = nullptr;
  EXPECT_EQ(mi::free_list_count(c.page, c.b[0], 100, &tail), mi::LIST_BAD);
  EXPECT_EQ(tail, c.b[5]) << "the last good block";
  EXPECT_FALSE(mi::free_list_contains(c.page, c.b[0], reinterpret_cast<Block*>(elsewhere), 100));
  mi::block_set_next(c.page, c.b[5],
                     reinterpret_cast<Block*>(reinterpret_cast<uint8_t*>(c.b[6]) + 8));  // inside a block
  EXPECT_EQ(mi::free_list_count(c.page, c.b[0], 100), mi::LIST_BAD);
}

// --- random numbers ----------------------------------------------------------------

TEST(Random, ThreadNumbersDiffer) {
  mi::Heap* heap = mi::heap_get_default_init();
  ASSERT_NE(heap, nullptr);
  std::set<uint64_t> seen;
  int ones = 0;
  for (int i = 0; i < 10000; i++) {
    const uint64_t r = mi::tld_random(heap->tld);
    EXPECT_TRUE(seen.insert(r).second);
    ones += __builtin_popcountll(r);
  }
  EXPECT_NEAR(ones / 10000.0, 32.0, 1.0) << "about half the bits set";
}

}  // namespace
