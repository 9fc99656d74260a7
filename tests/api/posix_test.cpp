// API conformance: the mi_-prefixed POSIX / BSD / Windows-style wrappers
// (mi_cfree, mi__expand, mi_malloc_size, mi_reallocarray, mi_reallocarr,
// mi_*dupenv_s, mi_free_size, ...).
//
// Validated against Debian's mimalloc 2.0.9: every test here describes its behaviour.
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "opaque.h"

namespace {

bool is_aligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) % a) == 0; }

bool all_zero(const void* p, size_t from, size_t to) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = from; i < to; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

void fill_pattern(void* p, size_t n, unsigned seed) {
  unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>(1 + (i * 11u + seed) % 250);
}

bool check_pattern(const void* p, size_t n, unsigned seed) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != static_cast<unsigned char>(1 + (i * 11u + seed) % 250)) return false;
  }
  return true;
}

size_t count_blocks(mi_heap_t* heap) {
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

int g_static = 0;

}  // namespace

TEST(Posix, CfreeFreesOurBlocksAndIgnoresOthers) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  void* p = mi_heap_malloc(heap, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(count_blocks(heap), 1u);
  mi_cfree(p);
  EXPECT_EQ(count_blocks(heap), 0u);
  mi_heap_delete(heap);
  // pointers that are not ours are ignored
  int local = 0;
  mi_cfree(&local);
  mi_cfree(&g_static);
  mi_cfree(nullptr);
  SUCCEED();
}

TEST(Posix, UnderscoreExpand) {
  void* p = mi_malloc(100);
  ASSERT_NE(p, nullptr);
  const size_t u = mi_usable_size(p);
  EXPECT_EQ(mi__expand(p, u), p);
  EXPECT_EQ(mi__expand(p, 10), p);
  void* r = mi__expand(p, 10u << 20);
  EXPECT_TRUE(r == nullptr || r == p);
  EXPECT_EQ(mi__expand(p, opaque(static_cast<size_t>(PTRDIFF_MAX) + 1)), nullptr);
  mi_free(p);
}

TEST(Posix, MallocSizeAndUsableSizeAndGoodSize) {
  EXPECT_EQ(mi_malloc_size(nullptr), 0u);
  EXPECT_EQ(mi_malloc_usable_size(nullptr), 0u);
  for (size_t n : {1u, 33u, 1000u, 50000u, 1u << 20}) {
    void* p = mi_malloc(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(mi_malloc_size(p), mi_usable_size(p));
    EXPECT_EQ(mi_malloc_usable_size(p), mi_usable_size(p));
    EXPECT_GE(mi_malloc_size(p), n);
    EXPECT_EQ(mi_malloc_good_size(n), mi_good_size(n));
    mi_free(p);
  }
}

TEST(Posix, Reallocarray) {
  void* p = mi_reallocarray(nullptr, 10, 10);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 100u);
  fill_pattern(p, 100, 1);
  void* q = mi_reallocarray(p, 1000, 10);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(check_pattern(q, 100, 1));
  EXPECT_GE(mi_usable_size(q), 10000u);

  errno = 0;
  EXPECT_EQ(mi_reallocarray(q, opaque(SIZE_MAX / 2), 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(check_pattern(q, 100, 1)) << "a failed reallocarray leaves the block";
  errno = 0;
  EXPECT_EQ(mi_reallocarray(nullptr, 3, opaque(SIZE_MAX / 2)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  mi_free(q);
}

TEST(Posix, Reallocarr) {
  void* p = nullptr;
  ASSERT_EQ(mi_reallocarr(&p, 10, 8), 0);  // from NULL
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 80u);
  fill_pattern(p, 80, 2);
  ASSERT_EQ(mi_reallocarr(&p, 5000, 8), 0);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(check_pattern(p, 80, 2));
  EXPECT_GE(mi_usable_size(p), 40000u);

  void* const before = p;
  errno = 0;
  EXPECT_EQ(mi_reallocarr(&p, opaque(SIZE_MAX / 2), 4), ENOMEM);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(p, before) << "on failure the pointer is left unchanged";
  EXPECT_TRUE(check_pattern(p, 80, 2));

  EXPECT_EQ(mi_reallocarr(nullptr, 1, 1), EINVAL);
  mi_free(p);
}

TEST(Posix, AlignedRecalloc) {
  for (size_t align : {16u, 64u, 4096u}) {
    void* p = mi_calloc_aligned(4, 4, align);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, 16, 3);
    void* q = mi_aligned_recalloc(p, 1000, 4, align);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(is_aligned(q, align));
    EXPECT_TRUE(check_pattern(q, 16, 3));
    EXPECT_TRUE(all_zero(q, 16, 4000));
    mi_free(q);

    unsigned char* r = static_cast<unsigned char*>(mi_calloc_aligned_at(4, 4, align, 8));
    ASSERT_NE(r, nullptr);
    fill_pattern(r, 16, 4);
    unsigned char* s = static_cast<unsigned char*>(mi_aligned_offset_recalloc(r, 1000, 4, align, 8));
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(is_aligned(s + 8, align));
    EXPECT_TRUE(check_pattern(s, 16, 4));
    EXPECT_TRUE(all_zero(s, 16, 4000));
    mi_free(s);
  }
  EXPECT_EQ(mi_aligned_recalloc(nullptr, opaque(SIZE_MAX / 2), 4, 64), nullptr);
}

TEST(Posix, Wcsdup) {
  const unsigned short src[] = {'w', 'i', 'd', 'e', 0x263A, 0};
  unsigned short* d = mi_wcsdup(src);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d, src);
  EXPECT_EQ(std::memcmp(d, src, sizeof(src)), 0);
  EXPECT_GE(mi_usable_size(d), sizeof(src));
  mi_free(d);
  const unsigned short empty[] = {0};
  unsigned short* e = mi_wcsdup(empty);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e[0], 0);
  mi_free(e);
  EXPECT_EQ(mi_wcsdup(opaque<const unsigned short*>(nullptr)), nullptr);
}

TEST(Posix, Mbsdup) {
  const unsigned char src[] = {'m', 'b', 0xC3, 0xA9, 's', 0};
  unsigned char* d = mi_mbsdup(src);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(std::memcmp(d, src, sizeof(src)), 0);
  mi_free(d);
  EXPECT_EQ(mi_mbsdup(opaque<const unsigned char*>(nullptr)), nullptr);
}

TEST(Posix, DupenvS) {
  ASSERT_EQ(setenv("MIMALLOC_NUMA_API_TEST_VAR", "some value", 1), 0);
  char* buf = nullptr;
  size_t size = 12345;
  EXPECT_EQ(mi_dupenv_s(&buf, &size, "MIMALLOC_NUMA_API_TEST_VAR"), 0);
  ASSERT_NE(buf, nullptr);
  EXPECT_STREQ(buf, "some value");
  EXPECT_EQ(size, std::strlen("some value"));  // mimalloc reports the length, not counting the NUL
  EXPECT_TRUE(mi_is_in_heap_region(buf));
  mi_free(buf);

  buf = nullptr;
  EXPECT_EQ(mi_dupenv_s(&buf, nullptr, "MIMALLOC_NUMA_API_TEST_VAR"), 0);  // size is optional
  ASSERT_NE(buf, nullptr);
  EXPECT_STREQ(buf, "some value");
  mi_free(buf);
  unsetenv("MIMALLOC_NUMA_API_TEST_VAR");

  // missing variable: success with a NULL buffer
  buf = reinterpret_cast<char*>(0x1);
  size = 12345;
  EXPECT_EQ(mi_dupenv_s(&buf, &size, "MIMALLOC_NUMA_API_TEST_SURELY_NOT_SET"), 0);
  EXPECT_EQ(buf, nullptr);
  EXPECT_EQ(size, 0u);

  // invalid arguments
  EXPECT_EQ(mi_dupenv_s(nullptr, &size, "PATH"), EINVAL);
  buf = nullptr;
  EXPECT_EQ(mi_dupenv_s(&buf, &size, nullptr), EINVAL);
}

TEST(Posix, WdupenvS) {
  // mimalloc implements mi_wdupenv_s only on Windows (EINVAL elsewhere); ours
  // works on Linux too: the name is narrowed, the value widened (Latin-1).
  const unsigned short name[] = {'M', 'I', '_', 'W', 'D', 'U', 'P', 0};
  ASSERT_EQ(setenv("MI_WDUP", "value-1", 1), 0);
  unsigned short* buf = reinterpret_cast<unsigned short*>(0x1);
  size_t size = 12345;
  ASSERT_EQ(mi_wdupenv_s(&buf, &size, name), 0);
  ASSERT_NE(buf, nullptr);
  EXPECT_EQ(size, 7u);
  const char* expect = "value-1";
  for (size_t i = 0; i <= 7; i++) EXPECT_EQ(buf[i], static_cast<unsigned short>(static_cast<unsigned char>(expect[i])));
  mi_free(buf);
  const unsigned short missing[] = {'M', 'I', '_', 'N', 'O', 'N', 'E', 0};
  unsetenv("MI_NONE");
  EXPECT_EQ(mi_wdupenv_s(&buf, &size, missing), 0);
  EXPECT_EQ(buf, nullptr);
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(mi_wdupenv_s(nullptr, &size, name), EINVAL);
  EXPECT_EQ(mi_wdupenv_s(&buf, &size, nullptr), EINVAL);
}

TEST(Posix, FreeSizeAndFreeAligned) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);

  void* a = mi_heap_malloc(heap, 200);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(count_blocks(heap), 1u);
  mi_free_size(a, 200);
  EXPECT_EQ(count_blocks(heap), 0u);

  for (size_t align : {16u, 256u, 4096u, 1u << 16}) {
    void* b = mi_heap_malloc_aligned(heap, 300, align);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(count_blocks(heap), 1u);
    mi_free_size_aligned(b, 300, align);
    EXPECT_EQ(count_blocks(heap), 0u) << align;

    void* c = mi_heap_malloc_aligned(heap, 50, align);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(count_blocks(heap), 1u);
    mi_free_aligned(c, align);
    EXPECT_EQ(count_blocks(heap), 0u) << align;
  }
  mi_heap_delete(heap);
}
