// API conformance: the parts of the mimalloc 2.1 API that Debian's mimalloc
// 2.0.9 lacks (so this file only links against mimalloc-numa):
// mi_heap_new_ex and heap tags, mi_heap_zalloc_small, mi_option_get_size and
// the arena_reserve option, mi_options_print, and mi_version matching the header.
// Written from mimalloc 2.1's documented behaviour.
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kMiB = size_t{1} << 20;

bool all_zero(const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

struct AreaInfo {
  size_t blocks = 0;
  size_t areas = 0;
  bool tags_match = true;
  int tag = 0;
};

AreaInfo visit_tags(const mi_heap_t* heap, int tag) {
  AreaInfo info;
  info.tag = tag;
  mi_heap_visit_blocks(
      heap, true,
      [](const mi_heap_t*, const mi_heap_area_t* area, void* block, size_t, void* arg) {
        AreaInfo* i = static_cast<AreaInfo*>(arg);
        if (block == nullptr) {
          i->areas++;
          if (area->heap_tag != i->tag) i->tags_match = false;
        } else {
          i->blocks++;
        }
        return true;
      },
      &info);
  return info;
}

char g_out[1 << 17];
size_t g_out_len = 0;
void capture_output(const char* msg, void*) {
  const size_t n = std::strlen(msg);
  const size_t room = sizeof(g_out) - 1 - g_out_len;
  const size_t k = n < room ? n : room;
  std::memcpy(g_out + g_out_len, msg, k);
  g_out_len += k;
  g_out[g_out_len] = 0;
}

class OptionRestore {
 public:
  explicit OptionRestore(mi_option_t o) : option_(o), value_(mi_option_get(o)) {}
  ~OptionRestore() { mi_option_set(option_, value_); }
  OptionRestore(const OptionRestore&) = delete;
  OptionRestore& operator=(const OptionRestore&) = delete;

 private:
  mi_option_t option_;
  long value_;
};

}  // namespace

TEST(ApiV21, VersionMatchesHeader) {
  EXPECT_EQ(mi_version(), MI_MALLOC_VERSION);
  EXPECT_GE(mi_version(), 210) << "the API level is mimalloc 2.1";
}

TEST(ApiV21, HeapZallocSmall) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  // dirty some small blocks of the heap first
  std::vector<void*> dirty;
  for (size_t n = 8; n <= MI_SMALL_SIZE_MAX; n += 8) {
    void* p = mi_heap_malloc_small(heap, n);
    std::memset(p, 0xAB, n);
    dirty.push_back(p);
  }
  for (void* p : dirty) mi_free(p);
  for (size_t n = 0; n <= MI_SMALL_SIZE_MAX; n += 8) {
    void* z = mi_heap_zalloc_small(heap, n);
    ASSERT_NE(z, nullptr) << n;
    EXPECT_TRUE(mi_heap_contains_block(heap, z));
    EXPECT_GE(mi_usable_size(z), n);
    EXPECT_TRUE(all_zero(z, n)) << n;
    mi_free(z);
  }
  mi_heap_delete(heap);
}

TEST(ApiV21, HeapNewExWithTag) {
  mi_heap_t* a = mi_heap_new_ex(3, false, 0);
  mi_heap_t* b = mi_heap_new_ex(5, true, 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<void*> va, vb;
  for (size_t i = 0; i < 200; i++) {
    va.push_back(mi_heap_malloc(a, 16 + (i % 20) * 16));
    vb.push_back(mi_heap_malloc(b, 16 + (i % 20) * 16));
  }
  for (void* p : va) EXPECT_TRUE(mi_heap_contains_block(a, p));
  for (void* p : vb) EXPECT_TRUE(mi_heap_contains_block(b, p));
  const AreaInfo ia = visit_tags(a, 3);
  const AreaInfo ib = visit_tags(b, 5);
  EXPECT_EQ(ia.blocks, 200u);
  EXPECT_EQ(ib.blocks, 200u);
  EXPECT_TRUE(ia.tags_match) << "areas of a heap report its tag";
  EXPECT_TRUE(ib.tags_match);
  for (void* p : va) mi_free(p);
  mi_heap_delete(a);
  mi_heap_destroy(b);  // allowed: created with allow_destroy
}

TEST(ApiV21, DestroyOfHeapWithoutAllowDestroyActsAsDelete) {
  // mimalloc: mi_heap_destroy on a heap created without allow_destroy warns and
  // deletes it instead, so its live blocks survive in the backing heap.
  mi_heap_t* heap = mi_heap_new_ex(0, false, 0);
  ASSERT_NE(heap, nullptr);
  char* p = static_cast<char*>(mi_heap_malloc(heap, 300));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x33, 300);
  mi_heap_destroy(heap);
  bool intact = true;
  for (size_t i = 0; i < 300; i++) intact = intact && p[i] == 0x33;
  EXPECT_TRUE(intact);
  EXPECT_TRUE(mi_heap_contains_block(mi_heap_get_backing(), p));
  mi_free(p);
}

TEST(ApiV21, HeapNewExInExclusiveArena) {
  mi_arena_id_t id = 0;
  ASSERT_EQ(mi_reserve_os_memory_ex(64 * kMiB, true, false, true, &id), 0);
  size_t size = 0;
  char* start = static_cast<char*>(mi_arena_area(id, &size));
  ASSERT_NE(start, nullptr);
  mi_heap_t* heap = mi_heap_new_ex(7, true, id);
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  for (size_t n : {size_t{16}, size_t{5000}, size_t{200000}, kMiB}) {
    char* p = static_cast<char*>(mi_heap_malloc(heap, n));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p >= start && p + n <= start + size) << n;
    blocks.push_back(p);
  }
  EXPECT_TRUE(visit_tags(heap, 7).tags_match);
  mi_heap_destroy(heap);
}

TEST(ApiV21, OptionGetSizeIsInKiB) {
  OptionRestore r1(mi_option_arena_reserve);
  mi_option_set(mi_option_arena_reserve, 64 * 1024);  // KiB
  EXPECT_EQ(mi_option_get(mi_option_arena_reserve), 64 * 1024);
  EXPECT_EQ(mi_option_get_size(mi_option_arena_reserve), 64 * kMiB);
  mi_option_set(mi_option_arena_reserve, 1);
  EXPECT_EQ(mi_option_get_size(mi_option_arena_reserve), 1024u);

  OptionRestore r2(mi_option_reserve_os_memory);
  const long before = mi_option_get(mi_option_reserve_os_memory);
  EXPECT_EQ(mi_option_get_size(mi_option_reserve_os_memory), static_cast<size_t>(before < 0 ? 0 : before) * 1024);
  mi_option_set(mi_option_reserve_os_memory, 2048);
  EXPECT_EQ(mi_option_get_size(mi_option_reserve_os_memory), 2 * kMiB);
}

TEST(ApiV21, ArenaReserveDefaultIsPositive) {
  EXPECT_GT(mi_option_get(mi_option_arena_reserve), 0);
  EXPECT_EQ(mi_option_get_size(mi_option_arena_reserve),
            static_cast<size_t>(mi_option_get(mi_option_arena_reserve)) * 1024);
}

TEST(ApiV21, ArenaReserveAffectsOnlyLaterReservationsAndAllocationWorks) {
  OptionRestore r(mi_option_arena_reserve);
  mi_option_set(mi_option_arena_reserve, 32 * 1024);  // 32 MiB arenas
  std::vector<void*> v;
  for (int i = 0; i < 50; i++) {
    void* p = mi_malloc(1 * kMiB);
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, kMiB);
    v.push_back(p);
  }
  for (void* p : v) mi_free(p);
}

TEST(ApiV21, OptionsPrintUsesTheRegisteredOutput) {
  g_out_len = 0;
  g_out[0] = 0;
  mi_register_output(&capture_output, nullptr);
  g_out_len = 0;
  mi_options_print();
  mi_register_output(nullptr, nullptr);
  const std::string text(g_out, g_out_len);
  EXPECT_FALSE(text.empty());
  EXPECT_NE(text.find("verbose"), std::string::npos) << text;
}
