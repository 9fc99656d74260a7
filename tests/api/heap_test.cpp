// API conformance: first-class heaps (mi_heap_*), ownership queries and
// mi_heap_visit_blocks.
//
// Validated against Debian's mimalloc 2.0.9: every test here describes its
// behaviour.  (mi_heap_new_ex and mi_heap_zalloc_small, which 2.0.9 lacks,
// are tested in api_v21_test.cpp.)
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "opaque.h"

namespace {

size_t too_large() { return opaque(static_cast<size_t>(PTRDIFF_MAX) + 1); }

bool is_aligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) % a) == 0; }

bool all_bytes(const void* p, size_t n, unsigned char v) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != v) return false;
  }
  return true;
}

void fill_pattern(void* p, size_t n, unsigned seed) {
  unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>((i * 17u + seed) & 0xFF);
}

bool check_pattern(const void* p, size_t n, unsigned seed) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != static_cast<unsigned char>((i * 17u + seed) & 0xFF)) return false;
  }
  return true;
}

struct Visit {
  size_t areas = 0;
  size_t blocks = 0;
  size_t block_bytes = 0;        // sum of the block_size argument over visited blocks
  size_t used_in_areas = 0;      // sum of area->used
  bool bad_area = false;         // an area with block_size == 0, or a block outside its area
  std::map<void*, size_t> seen;  // block -> size
};

bool visitor(const mi_heap_t*, const mi_heap_area_t* area, void* block, size_t block_size, void* arg) {
  Visit* v = static_cast<Visit*>(arg);
  if (area == nullptr || area->block_size == 0) v->bad_area = true;
  if (block == nullptr) {
    v->areas++;
    if (area != nullptr) v->used_in_areas += area->used;
  } else {
    v->blocks++;
    v->block_bytes += block_size;
    v->seen[block] = block_size;
    if (block_size == 0) v->bad_area = true;
  }
  return true;
}

// (the result of mi_heap_visit_blocks is not checked here: mimalloc returns
// false for a heap that has no pages at all)
Visit visit(const mi_heap_t* heap) {
  Visit v;
  mi_heap_visit_blocks(heap, true, &visitor, &v);
  return v;
}

size_t count_blocks(const mi_heap_t* heap) {
  size_t n = 0;
  mi_heap_visit_blocks(
      heap, true,
      [](const mi_heap_t*, const mi_heap_area_t*, void* block, size_t, void* arg) {
        if (block != nullptr) ++*static_cast<size_t*>(arg);
        return true;
      },
      &n);
  return n;
}

int g_static_object = 42;

}  // namespace

TEST(Heap, NewAllocateDelete) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  void* p = mi_heap_malloc(heap, 100);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, 100);
  EXPECT_TRUE(mi_heap_contains_block(heap, p));
  mi_free(p);
  mi_heap_delete(heap);
}

TEST(Heap, TwoHeapsAreDistinct) {
  mi_heap_t* a = mi_heap_new();
  mi_heap_t* b = mi_heap_new();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_NE(a, mi_heap_get_backing());
  void* pa = mi_heap_malloc(a, 64);
  void* pb = mi_heap_malloc(b, 64);
  ASSERT_NE(pa, nullptr);
  ASSERT_NE(pb, nullptr);
  EXPECT_TRUE(mi_heap_contains_block(a, pa));
  EXPECT_FALSE(mi_heap_contains_block(a, pb));
  EXPECT_TRUE(mi_heap_contains_block(b, pb));
  EXPECT_FALSE(mi_heap_contains_block(b, pa));
  EXPECT_TRUE(mi_heap_check_owned(a, pa));
  EXPECT_FALSE(mi_heap_check_owned(a, pb));
  EXPECT_TRUE(mi_heap_check_owned(b, pb));
  EXPECT_FALSE(mi_heap_check_owned(b, pa));
  mi_free(pa);
  mi_free(pb);
  mi_heap_delete(a);
  mi_heap_delete(b);
}

TEST(Heap, DeleteMigratesLiveBlocksToBackingHeap) {
  mi_heap_t* backing = mi_heap_get_backing();
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  for (size_t i = 0; i < 500; i++) {
    const size_t n = 16 + (i * 97) % 20000;
    void* p = mi_heap_malloc(heap, n);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, n, static_cast<unsigned>(i));
    blocks.push_back(p);
  }
  void* big = mi_heap_malloc(heap, 5u << 20);
  ASSERT_NE(big, nullptr);
  fill_pattern(big, 5u << 20, 99);

  mi_heap_delete(heap);

  // the blocks are still valid, now belong to the backing heap, and can be freed
  for (size_t i = 0; i < blocks.size(); i++) {
    const size_t n = 16 + (i * 97) % 20000;
    EXPECT_TRUE(check_pattern(blocks[i], n, static_cast<unsigned>(i))) << i;
    EXPECT_TRUE(mi_heap_contains_block(backing, blocks[i])) << i;
    EXPECT_TRUE(mi_heap_check_owned(backing, blocks[i])) << i;
  }
  EXPECT_TRUE(check_pattern(big, 5u << 20, 99));
  EXPECT_TRUE(mi_heap_contains_block(backing, big));
  // the backing heap is the default heap here, so mi_check_owned sees them too
  ASSERT_EQ(mi_heap_get_default(), backing);
  EXPECT_TRUE(mi_check_owned(blocks[0]));
  for (void* p : blocks) mi_free(p);
  mi_free(big);
}

TEST(Heap, DestroyFreesAllBlocks) {
  mi_heap_t* backing = mi_heap_get_backing();
  for (int round = 0; round < 3; round++) {
    mi_heap_t* heap = mi_heap_new();
    ASSERT_NE(heap, nullptr);
    void* blocks[1000];
    for (size_t i = 0; i < 1000; i++) {
      blocks[i] = mi_heap_malloc(heap, 8 + (i * 131) % 9000);
      ASSERT_NE(blocks[i], nullptr);
    }
    void* big = mi_heap_malloc(heap, 3u << 20);
    ASSERT_NE(big, nullptr);
    void* aligned = mi_heap_malloc_aligned(heap, 100, 4096);
    ASSERT_NE(aligned, nullptr);
    EXPECT_EQ(count_blocks(heap), 1002u);

    mi_heap_destroy(heap);

    // unlike mi_heap_delete, nothing migrated to the backing heap
    // (mi_heap_check_owned only compares addresses against the heap's pages)
    bool any_owned = false;
    for (void* p : blocks) any_owned = any_owned || mi_heap_check_owned(backing, p);
    any_owned = any_owned || mi_heap_check_owned(backing, big);
    EXPECT_FALSE(any_owned) << "blocks of a destroyed heap must not move to the backing heap";
  }
  // the process keeps working
  void* p = mi_malloc(1000);
  ASSERT_NE(p, nullptr);
  mi_free(p);
}

TEST(Heap, DefaultAndBacking) {
  mi_heap_t* backing = mi_heap_get_backing();
  ASSERT_NE(backing, nullptr);
  EXPECT_EQ(mi_heap_get_default(), backing);

  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  mi_heap_t* prev = mi_heap_set_default(heap);
  mi_heap_t* now_default = mi_heap_get_default();
  mi_heap_t* now_backing = mi_heap_get_backing();
  void* p = mi_malloc(77);  // goes to the new default heap
  void* z = mi_zalloc(500);
  const bool p_in_heap = mi_heap_contains_block(heap, p);
  const bool z_in_heap = mi_heap_contains_block(heap, z);
  const bool p_owned = mi_check_owned(p);  // mi_check_owned looks at the default heap
  mi_heap_t* restored_prev = mi_heap_set_default(prev);

  EXPECT_EQ(prev, backing);
  EXPECT_EQ(now_default, heap);
  EXPECT_EQ(now_backing, backing) << "the backing heap never changes";
  EXPECT_EQ(restored_prev, heap);
  EXPECT_EQ(mi_heap_get_default(), backing);
  EXPECT_TRUE(p_in_heap);
  EXPECT_TRUE(z_in_heap);
  EXPECT_TRUE(p_owned);
  EXPECT_FALSE(mi_heap_contains_block(backing, p));
  mi_free(p);
  mi_free(z);
  mi_heap_delete(heap);
}

TEST(Heap, BackingHeapIsPerThread) {
  mi_heap_t* main_backing = mi_heap_get_backing();
  mi_heap_t* thread_backing = nullptr;
  mi_heap_t* thread_default = nullptr;
  std::thread t([&] {
    thread_backing = mi_heap_get_backing();
    thread_default = mi_heap_get_default();
    void* p = mi_malloc(10);
    mi_free(p);
  });
  t.join();
  EXPECT_NE(thread_backing, nullptr);
  EXPECT_NE(thread_backing, main_backing);
  EXPECT_EQ(thread_default, thread_backing);
}

TEST(Heap, MallocZallocCallocMallocn) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  for (size_t n : {1u, 100u, 4000u, 70000u, 1u << 20}) {
    void* d = mi_heap_malloc(heap, n);
    ASSERT_NE(d, nullptr);
    EXPECT_GE(mi_usable_size(d), n);
    std::memset(d, 0xEE, mi_usable_size(d));
    EXPECT_TRUE(mi_heap_contains_block(heap, d));
    mi_free(d);

    void* z = mi_heap_zalloc(heap, n);
    ASSERT_NE(z, nullptr);
    EXPECT_TRUE(all_bytes(z, n, 0)) << n;
    EXPECT_TRUE(mi_heap_contains_block(heap, z));
    mi_free(z);

    void* c = mi_heap_calloc(heap, n, 3);
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(all_bytes(c, 3 * n, 0)) << n;
    EXPECT_TRUE(mi_heap_contains_block(heap, c));
    mi_free(c);

    void* m = mi_heap_mallocn(heap, n, 2);
    ASSERT_NE(m, nullptr);
    EXPECT_GE(mi_usable_size(m), 2 * n);
    EXPECT_TRUE(mi_heap_contains_block(heap, m));
    mi_free(m);
  }
  EXPECT_EQ(mi_heap_calloc(heap, opaque(SIZE_MAX / 2), 4), nullptr);
  EXPECT_EQ(mi_heap_mallocn(heap, opaque(SIZE_MAX / 2), 4), nullptr);
  EXPECT_EQ(mi_heap_malloc(heap, too_large()), nullptr);
  EXPECT_EQ(count_blocks(heap), 0u);
  mi_heap_delete(heap);
}

TEST(Heap, MallocSmall) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  for (size_t n = 0; n <= MI_SMALL_SIZE_MAX; n += 8) {
    void* p = mi_heap_malloc_small(heap, n);
    ASSERT_NE(p, nullptr);
    EXPECT_GE(mi_usable_size(p), n);
    EXPECT_TRUE(mi_heap_contains_block(heap, p));
    mi_free(p);
  }
  mi_heap_delete(heap);
}

TEST(Heap, ReallocFamily) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  void* p = mi_heap_realloc(heap, nullptr, 40);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(mi_heap_contains_block(heap, p));
  fill_pattern(p, 40, 3);
  p = mi_heap_realloc(heap, p, 100000);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(check_pattern(p, 40, 3));
  EXPECT_TRUE(mi_heap_contains_block(heap, p));

  void* q = mi_heap_reallocn(heap, p, 1000, 200);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(check_pattern(q, 40, 3));
  EXPECT_GE(mi_usable_size(q), 200000u);
  EXPECT_TRUE(mi_heap_contains_block(heap, q));
  EXPECT_EQ(mi_heap_reallocn(heap, q, opaque(SIZE_MAX / 2), 4), nullptr);
  EXPECT_TRUE(check_pattern(q, 40, 3)) << "failed reallocn must leave the block";

  void* r = mi_heap_reallocf(heap, q, 64);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(check_pattern(r, 40, 3));
  EXPECT_EQ(count_blocks(heap), 1u);
  EXPECT_EQ(mi_heap_reallocf(heap, r, too_large()), nullptr);
  EXPECT_EQ(count_blocks(heap), 0u) << "mi_heap_reallocf must free the block on failure";
  mi_heap_delete(heap);
}

TEST(Heap, StrdupStrndupRealpath) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  char* s = mi_heap_strdup(heap, "heap string");
  ASSERT_NE(s, nullptr);
  EXPECT_STREQ(s, "heap string");
  EXPECT_TRUE(mi_heap_contains_block(heap, s));

  char* n = mi_heap_strndup(heap, "heap string", 4);
  ASSERT_NE(n, nullptr);
  EXPECT_STREQ(n, "heap");
  EXPECT_TRUE(mi_heap_contains_block(heap, n));

  char expected[PATH_MAX];
  ASSERT_NE(::realpath("/tmp/./../tmp", expected), nullptr);
  char* r = mi_heap_realpath(heap, "/tmp/./../tmp", nullptr);
  ASSERT_NE(r, nullptr);
  EXPECT_STREQ(r, expected);
  EXPECT_TRUE(mi_heap_contains_block(heap, r));
  EXPECT_EQ(mi_heap_realpath(heap, "/no/such/mimalloc-numa/path", nullptr), nullptr);

  EXPECT_EQ(count_blocks(heap), 3u);
  mi_free(s);
  mi_free(n);
  mi_free(r);
  mi_heap_delete(heap);
}

TEST(Heap, AlignedVariants) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  for (size_t align : {16u, 64u, 512u, 4096u, 1u << 16, 1u << 20}) {
    void* a = mi_heap_malloc_aligned(heap, 300, align);
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(is_aligned(a, align));
    EXPECT_TRUE(mi_heap_contains_block(heap, a));

    unsigned char* at = static_cast<unsigned char*>(mi_heap_malloc_aligned_at(heap, 300, align, 8));
    ASSERT_NE(at, nullptr);
    EXPECT_TRUE(is_aligned(at + 8, align));
    EXPECT_TRUE(mi_heap_contains_block(heap, at));

    void* z = mi_heap_zalloc_aligned(heap, 300, align);
    ASSERT_NE(z, nullptr);
    EXPECT_TRUE(is_aligned(z, align));
    EXPECT_TRUE(all_bytes(z, 300, 0));

    unsigned char* zat = static_cast<unsigned char*>(mi_heap_zalloc_aligned_at(heap, 300, align, 16));
    ASSERT_NE(zat, nullptr);
    EXPECT_TRUE(is_aligned(zat + 16, align));
    EXPECT_TRUE(all_bytes(zat, 300, 0));

    void* c = mi_heap_calloc_aligned(heap, 30, 10, align);
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(is_aligned(c, align));
    EXPECT_TRUE(all_bytes(c, 300, 0));

    unsigned char* cat = static_cast<unsigned char*>(mi_heap_calloc_aligned_at(heap, 30, 10, align, 24));
    ASSERT_NE(cat, nullptr);
    EXPECT_TRUE(is_aligned(cat + 24, align));
    EXPECT_TRUE(all_bytes(cat, 300, 0));

    fill_pattern(a, 300, 8);
    void* ra = mi_heap_realloc_aligned(heap, a, 5000, align);
    ASSERT_NE(ra, nullptr);
    EXPECT_TRUE(is_aligned(ra, align));
    EXPECT_TRUE(check_pattern(ra, 300, 8));
    EXPECT_TRUE(mi_heap_contains_block(heap, ra));

    fill_pattern(at, 300, 9);
    unsigned char* rat = static_cast<unsigned char*>(mi_heap_realloc_aligned_at(heap, at, 5000, align, 8));
    ASSERT_NE(rat, nullptr);
    EXPECT_TRUE(is_aligned(rat + 8, align));
    EXPECT_TRUE(check_pattern(rat, 300, 9));
    EXPECT_TRUE(mi_heap_contains_block(heap, rat));

    EXPECT_EQ(count_blocks(heap), 6u) << align;
    for (void* p : {ra, static_cast<void*>(rat), z, static_cast<void*>(zat), c, static_cast<void*>(cat)}) mi_free(p);
    EXPECT_EQ(count_blocks(heap), 0u) << align;
  }
  EXPECT_EQ(mi_heap_malloc_aligned(heap, 16, opaque(size_t{24})), nullptr);
  mi_heap_delete(heap);
}

TEST(Heap, ContainsBlockAndCheckOwned) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  char* p = static_cast<char*>(mi_heap_malloc(heap, 256));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(mi_heap_contains_block(heap, p));
  EXPECT_TRUE(mi_heap_check_owned(heap, p));
  EXPECT_TRUE(mi_heap_check_owned(heap, p + 128));  // interior (word-aligned) pointers are owned too
  EXPECT_FALSE(mi_heap_contains_block(mi_heap_get_backing(), p));
  EXPECT_FALSE(mi_heap_check_owned(mi_heap_get_backing(), p));
  int local = 0;
  EXPECT_FALSE(mi_heap_check_owned(heap, &local));
  EXPECT_FALSE(mi_heap_check_owned(heap, &g_static_object));
  EXPECT_FALSE(mi_heap_check_owned(heap, nullptr));
  EXPECT_FALSE(mi_heap_contains_block(heap, nullptr));
  mi_free(p);
  mi_heap_delete(heap);
}

TEST(Heap, CheckOwnedUsesDefaultHeap) {
  void* p = mi_malloc(64);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(mi_check_owned(p));
  int local = 0;
  EXPECT_FALSE(mi_check_owned(&local));
  EXPECT_FALSE(mi_check_owned(&g_static_object));
  EXPECT_FALSE(mi_check_owned(nullptr));
  // a block of another heap is not owned by the default heap
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  void* q = mi_heap_malloc(heap, 64);
  ASSERT_NE(q, nullptr);
  EXPECT_FALSE(mi_check_owned(q));
  EXPECT_TRUE(mi_is_in_heap_region(q));
  mi_free(q);
  mi_heap_delete(heap);
  mi_free(p);
}

TEST(Heap, Collect) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  std::vector<void*> v;
  for (size_t i = 0; i < 2000; i++) v.push_back(mi_heap_malloc(heap, 32 + (i % 50) * 16));
  void* keep = mi_heap_malloc(heap, 100);
  for (void* p : v) mi_free(p);
  mi_heap_collect(heap, false);
  mi_heap_collect(heap, true);
  EXPECT_EQ(count_blocks(heap), 1u);
  EXPECT_TRUE(mi_heap_contains_block(heap, keep));
  mi_free(keep);
  mi_heap_collect(heap, true);
  EXPECT_EQ(count_blocks(heap), 0u);
  // collecting the default heap works too
  mi_heap_collect(mi_heap_get_default(), true);
  mi_heap_delete(heap);
}

TEST(Heap, VisitBlocksReportsExactlyTheLiveBlocks) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  Visit empty = visit(heap);
  EXPECT_EQ(empty.blocks, 0u);
  EXPECT_EQ(empty.used_in_areas, 0u);

  std::map<void*, size_t> live;  // block -> requested size
  const size_t sizes[] = {1, 8, 16, 24, 100, 1000, 4096, 10000, 70000, 300000, 2u << 20};
  for (size_t i = 0; i < 300; i++) {
    const size_t n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
    void* p = mi_heap_malloc(heap, n);
    ASSERT_NE(p, nullptr);
    live[p] = n;
  }
  Visit v;
  EXPECT_TRUE(mi_heap_visit_blocks(heap, true, &visitor, &v)) << "a completed visit returns true";
  EXPECT_FALSE(v.bad_area) << "areas must have block_size > 0";
  EXPECT_EQ(v.blocks, live.size());
  EXPECT_EQ(v.used_in_areas, live.size());
  EXPECT_GT(v.areas, 0u);
  size_t usable_total = 0;
  for (const auto& [p, n] : live) {
    auto it = v.seen.find(p);
    ASSERT_NE(it, v.seen.end()) << "block " << p << " of size " << n << " not visited";
    EXPECT_GE(it->second, n);
    EXPECT_EQ(it->second, mi_usable_size(p)) << n;
    usable_total += mi_usable_size(p);
  }
  EXPECT_EQ(v.block_bytes, usable_total);

  // visiting areas only
  size_t areas_only = 0, blocks_only = 0;
  struct Cnt {
    size_t* areas;
    size_t* blocks;
  } cnt{&areas_only, &blocks_only};
  EXPECT_TRUE(mi_heap_visit_blocks(
      heap, false,
      [](const mi_heap_t*, const mi_heap_area_t*, void* block, size_t, void* arg) {
        Cnt* c = static_cast<Cnt*>(arg);
        if (block == nullptr) {
          ++*c->areas;
        } else {
          ++*c->blocks;
        }
        return true;
      },
      &cnt));
  EXPECT_EQ(areas_only, v.areas);
  EXPECT_EQ(blocks_only, 0u);

  // free half, visit again
  size_t i = 0;
  for (auto it = live.begin(); it != live.end();) {
    if (i++ % 2 == 0) {
      mi_free(it->first);
      it = live.erase(it);
    } else {
      ++it;
    }
  }
  Visit v2 = visit(heap);
  EXPECT_EQ(v2.blocks, live.size());
  for (const auto& [p, n] : live) EXPECT_EQ(v2.seen.count(p), 1u);
  for (const auto& [p, n] : live) mi_free(p);
  EXPECT_EQ(visit(heap).blocks, 0u);
  mi_heap_delete(heap);
}

TEST(Heap, VisitBlocksStopsWhenVisitorReturnsFalse) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  std::vector<void*> v;
  for (size_t i = 0; i < 100; i++) v.push_back(mi_heap_malloc(heap, 48));
  size_t calls = 0;
  const bool completed = mi_heap_visit_blocks(
      heap, true,
      [](const mi_heap_t*, const mi_heap_area_t*, void* block, size_t, void* arg) {
        if (block == nullptr) return true;
        ++*static_cast<size_t*>(arg);
        return false;  // stop at the first block
      },
      &calls);
  EXPECT_FALSE(completed);
  EXPECT_EQ(calls, 1u);
  for (void* p : v) mi_free(p);
  mi_heap_delete(heap);
}

TEST(Heap, CrossThreadFreeIntoHeap) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  constexpr size_t kCount = 3000;
  std::vector<void*> blocks(kCount);
  for (size_t i = 0; i < kCount; i++) {
    blocks[i] = mi_heap_malloc(heap, 16 + (i % 100) * 24);
    ASSERT_NE(blocks[i], nullptr);
    fill_pattern(blocks[i], 16, static_cast<unsigned>(i));
  }
  ASSERT_EQ(count_blocks(heap), kCount);
  // another thread frees the first two thirds (it never allocates from `heap`)
  std::thread t([&] {
    for (size_t i = 0; i < 2 * kCount / 3; i++) mi_free(blocks[i]);
  });
  t.join();
  // the remaining blocks are intact
  for (size_t i = 2 * kCount / 3; i < kCount; i++) {
    EXPECT_TRUE(check_pattern(blocks[i], 16, static_cast<unsigned>(i))) << i;
  }
  // after collection the heap sees exactly the remaining blocks
  mi_heap_collect(heap, true);
  EXPECT_EQ(count_blocks(heap), kCount - 2 * kCount / 3);
  // and it can reuse the memory
  for (size_t i = 0; i < 2 * kCount / 3; i++) {
    blocks[i] = mi_heap_malloc(heap, 16 + (i % 100) * 24);
    ASSERT_NE(blocks[i], nullptr);
  }
  std::thread t2([&] {
    for (void* p : blocks) mi_free(p);
  });
  t2.join();
  mi_heap_collect(heap, true);
  EXPECT_EQ(count_blocks(heap), 0u);
  mi_heap_delete(heap);
}

TEST(Heap, FreeBlocksOfAnotherLiveThreadsHeap) {
  // thread B allocates, main frees while B is still alive, then B exits
  std::vector<void*> blocks;
  std::mutex m;
  std::condition_variable cv;
  bool allocated = false, freed = false;
  size_t remaining = SIZE_MAX;
  std::thread b([&] {
    mi_heap_t* heap = mi_heap_new();
    for (size_t i = 0; i < 1000; i++) blocks.push_back(mi_heap_malloc(heap, 64 + i % 300));
    {
      std::lock_guard<std::mutex> g(m);
      allocated = true;
    }
    cv.notify_all();
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, [&] { return freed; });
    mi_heap_collect(heap, true);
    remaining = count_blocks(heap);
    mi_heap_delete(heap);
  });
  {
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, [&] { return allocated; });
  }
  for (void* p : blocks) mi_free(p);
  {
    std::lock_guard<std::mutex> g(m);
    freed = true;
  }
  cv.notify_all();
  b.join();
  EXPECT_EQ(remaining, 0u);
}

TEST(Heap, FreeBlocksOfAnExitedThread) {
  std::vector<void*> blocks;
  std::thread t([&] {
    for (size_t i = 0; i < 2000; i++) {
      void* p = mi_malloc(32 + (i % 200) * 8);
      std::memset(p, 0x6B, 32);
      blocks.push_back(p);
    }
  });
  t.join();
  for (void* p : blocks) {
    EXPECT_TRUE(all_bytes(p, 32, 0x6B));
    mi_free(p);
  }
}

TEST(Heap, NewInExclusiveArena) {
  mi_arena_id_t arena_id = 0;
  const size_t request = size_t{64} << 20;
  ASSERT_EQ(mi_reserve_os_memory_ex(request, true /*commit*/, false /*allow_large*/, true /*exclusive*/, &arena_id), 0);
  size_t arena_size = 0;
  char* start = static_cast<char*>(mi_arena_area(arena_id, &arena_size));
  ASSERT_NE(start, nullptr);
  ASSERT_GE(arena_size, request);

  mi_heap_t* heap = mi_heap_new_in_arena(arena_id);
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  for (size_t n : {8u, 100u, 1000u, 10000u, 100000u, 1u << 20}) {
    for (int k = 0; k < 4; k++) {
      char* p = static_cast<char*>(mi_heap_malloc(heap, n));
      ASSERT_NE(p, nullptr) << n;
      EXPECT_TRUE(p >= start && p + n <= start + arena_size) << "block of " << n << " bytes outside the arena";
      std::memset(p, 1, n);
      blocks.push_back(p);
    }
  }
  for (void* p : blocks) mi_free(p);
  mi_heap_delete(heap);
}
