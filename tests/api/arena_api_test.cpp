// API conformance: arenas (mi_reserve_os_memory[_ex], mi_manage_os_memory[_ex],
// mi_arena_area, mi_heap_new_in_arena, huge OS pages, mi_debug_show_arenas).
//
// Written for mimalloc-numa (2.1 signatures, e.g. mi_debug_show_arenas with
// three flags).  Debian's mimalloc 2.0.9 passes it too, except that its
// mi_debug_show_arenas takes no arguments (the call still links and prints).
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kMiB = size_t{1} << 20;

bool inside(const void* p, size_t n, const void* start, size_t size) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t s = reinterpret_cast<uintptr_t>(start);
  return a >= s && a + n <= s + size;
}

// A fresh anonymous mapping of `size` bytes aligned to `align`; never unmapped
// (an arena handed to the allocator stays in use for the life of the process).
void* map_aligned(size_t size, size_t align) {
  const size_t total = size + align;
  void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(m);
  const uintptr_t aligned = (base + align - 1) & ~(static_cast<uintptr_t>(align) - 1);
  // give back the slack on both sides
  if (aligned > base) munmap(m, aligned - base);
  const uintptr_t end = aligned + size;
  if (base + total > end) munmap(reinterpret_cast<void*>(end), base + total - end);
  return reinterpret_cast<void*>(aligned);
}

char g_out[1 << 16];
size_t g_out_len = 0;
void capture_output(const char* msg, void*) {
  const size_t n = std::strlen(msg);
  const size_t room = sizeof(g_out) - 1 - g_out_len;
  const size_t k = n < room ? n : room;
  std::memcpy(g_out + g_out_len, msg, k);
  g_out_len += k;
  g_out[g_out_len] = 0;
}

// Allocates from `heap` blocks of several sizes and checks each lies in [start, start+size).
void expect_heap_allocates_inside(mi_heap_t* heap, void* start, size_t size) {
  std::vector<void*> blocks;
  for (size_t n : {size_t{8}, size_t{100}, size_t{1000}, size_t{10000}, size_t{100000}, kMiB}) {
    for (int k = 0; k < 4; k++) {
      void* p = mi_heap_malloc(heap, n);
      ASSERT_NE(p, nullptr) << n;
      EXPECT_TRUE(inside(p, n, start, size)) << "block of " << n << " bytes at " << p << " outside the arena";
      std::memset(p, 0x5C, n);
      blocks.push_back(p);
    }
  }
  void* a = mi_heap_malloc_aligned(heap, 3000, 4096);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(inside(a, 3000, start, size));
  blocks.push_back(a);
  for (void* p : blocks) mi_free(p);
}

}  // namespace

TEST(ArenaApi, ReserveOsMemory) {
  EXPECT_EQ(mi_reserve_os_memory(64 * kMiB, false /*commit*/, true /*allow_large*/), 0);
  EXPECT_EQ(mi_reserve_os_memory(64 * kMiB, true /*commit*/, false /*allow_large*/), 0);
  // the process keeps allocating normally (possibly from those arenas)
  std::vector<void*> v;
  for (int i = 0; i < 100; i++) v.push_back(mi_malloc(100000));
  for (void* p : v) {
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, 100000);
    mi_free(p);
  }
}

TEST(ArenaApi, ReserveOsMemoryExExclusive) {
  mi_arena_id_t id = -12345;
  ASSERT_EQ(mi_reserve_os_memory_ex(64 * kMiB, true, false, true /*exclusive*/, &id), 0);
  EXPECT_NE(id, -12345);
  size_t size = 0;
  void* start = mi_arena_area(id, &size);
  ASSERT_NE(start, nullptr);
  EXPECT_GE(size, 64 * kMiB);

  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  expect_heap_allocates_inside(heap, start, size);
  mi_heap_delete(heap);

  // a second exclusive arena has another id and another area
  mi_arena_id_t id2 = id;
  ASSERT_EQ(mi_reserve_os_memory_ex(64 * kMiB, false, false, true, &id2), 0);
  EXPECT_NE(id2, id);
  size_t size2 = 0;
  void* start2 = mi_arena_area(id2, &size2);
  ASSERT_NE(start2, nullptr);
  EXPECT_GE(size2, 64 * kMiB);
  EXPECT_FALSE(inside(start2, 1, start, size));
}

TEST(ArenaApi, ExclusiveArenaHeapNeverLeavesItsArena) {
  mi_arena_id_t id = 0;
  ASSERT_EQ(mi_reserve_os_memory_ex(64 * kMiB, true, false, true, &id), 0);
  size_t size = 0;
  void* start = mi_arena_area(id, &size);
  ASSERT_NE(start, nullptr);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  // fill the arena with 1 MiB blocks: every block is inside, and it runs out
  // instead of spilling into other memory
  std::vector<void*> blocks;
  bool ran_out = false;
  for (size_t i = 0; i < 2 * size / kMiB + 8; i++) {
    void* p = mi_heap_malloc(heap, kMiB);
    if (p == nullptr) {
      ran_out = true;
      break;
    }
    EXPECT_TRUE(inside(p, kMiB, start, size)) << "block " << i << " outside its exclusive arena";
    blocks.push_back(p);
  }
  EXPECT_TRUE(ran_out) << "a heap bound to an exclusive arena must not take memory elsewhere";
  EXPECT_GE(blocks.size(), 16u);
  for (void* p : blocks) mi_free(p);
  mi_heap_delete(heap);
}

TEST(ArenaApi, ManageOsMemoryEx) {
  const size_t size = 64 * kMiB;
  void* region = map_aligned(size, 64 * kMiB);
  ASSERT_NE(region, nullptr);
  mi_arena_id_t id = -1;
  ASSERT_TRUE(mi_manage_os_memory_ex(region, size, true /*committed*/, false /*large*/, true /*zero*/, -1 /*numa*/,
                                     true /*exclusive*/, &id));
  size_t area_size = 0;
  void* area = mi_arena_area(id, &area_size);
  ASSERT_NE(area, nullptr);
  EXPECT_TRUE(inside(area, area_size, region, size)) << "the arena lies inside the memory we gave";

  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  expect_heap_allocates_inside(heap, region, size);
  void* z = mi_heap_zalloc(heap, 500000);
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(inside(z, 500000, region, size));
  const unsigned char* zb = static_cast<const unsigned char*>(z);
  bool zero = true;
  for (size_t i = 0; i < 500000; i++) zero = zero && zb[i] == 0;
  EXPECT_TRUE(zero);
  mi_free(z);
  mi_heap_delete(heap);
}

TEST(ArenaApi, ManageOsMemoryShared) {
  const size_t size = 64 * kMiB;
  void* region = map_aligned(size, 64 * kMiB);
  ASSERT_NE(region, nullptr);
  EXPECT_TRUE(mi_manage_os_memory(region, size, true, false, true, -1));
  void* p = mi_malloc(1000);  // allocation keeps working, from wherever
  ASSERT_NE(p, nullptr);
  mi_free(p);
}

TEST(ArenaApi, ManageOsMemoryRejectsTooSmall) {
  void* region = map_aligned(64 * 1024, 64 * 1024);
  ASSERT_NE(region, nullptr);
  mi_arena_id_t id = 0;
  EXPECT_FALSE(mi_manage_os_memory_ex(region, 4096, true, false, true, -1, true, &id));
  munmap(region, 64 * 1024);
}

TEST(ArenaApi, HugeOsPagesAt) {
  const int rc = mi_reserve_huge_os_pages_at(1, 0, 500);
  EXPECT_TRUE(rc == 0 || rc == ENOMEM) << rc;
  if (rc == ENOMEM) GTEST_SKIP() << "no 1 GiB huge pages available on this machine (ENOMEM, as expected)";
  void* p = mi_malloc(1000);
  ASSERT_NE(p, nullptr);
  mi_free(p);
}

TEST(ArenaApi, HugeOsPagesAtEx) {
  mi_arena_id_t id = -1;
  const int rc = mi_reserve_huge_os_pages_at_ex(1, 0, 500, true, &id);
  EXPECT_TRUE(rc == 0 || rc == ENOMEM) << rc;
  if (rc == ENOMEM) GTEST_SKIP() << "no 1 GiB huge pages available on this machine (ENOMEM, as expected)";
  size_t size = 0;
  void* start = mi_arena_area(id, &size);
  ASSERT_NE(start, nullptr);
  EXPECT_GE(size, size_t{1} << 30);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  expect_heap_allocates_inside(heap, start, size);
  mi_heap_delete(heap);
}

TEST(ArenaApi, HugeOsPagesInterleave) {
  const int rc = mi_reserve_huge_os_pages_interleave(1, 0, 500);
  EXPECT_TRUE(rc == 0 || rc == ENOMEM) << rc;
  if (rc == ENOMEM) GTEST_SKIP() << "no 1 GiB huge pages available on this machine (ENOMEM, as expected)";
}

TEST(ArenaApi, HugeOsPagesDeprecated) {
  size_t reserved = 12345;
  const int rc = mi_reserve_huge_os_pages(1, 0.5, &reserved);
  EXPECT_TRUE(rc == 0 || rc == ENOMEM) << rc;
  EXPECT_LE(reserved, 1u);
  if (rc == ENOMEM) GTEST_SKIP() << "no 1 GiB huge pages available on this machine (ENOMEM, as expected)";
  EXPECT_EQ(reserved, 1u);
}

TEST(ArenaApi, DebugShowArenasPrintsThroughTheOutput) {
  mi_arena_id_t id = 0;
  ASSERT_EQ(mi_reserve_os_memory_ex(64 * kMiB, false, false, true, &id), 0);  // at least one arena exists
  const long verbose = mi_option_get(mi_option_verbose);
  mi_option_enable(mi_option_verbose);  // mimalloc prints the arena map as verbose messages
  g_out_len = 0;
  g_out[0] = 0;
  mi_register_output(&capture_output, nullptr);
  g_out_len = 0;
  mi_debug_show_arenas(true, true, true);
  mi_register_output(nullptr, nullptr);
  mi_option_set(mi_option_verbose, verbose);
  const std::string text(g_out, g_out_len);
  EXPECT_FALSE(text.empty());
  EXPECT_NE(text.find("arena"), std::string::npos) << text;
}
