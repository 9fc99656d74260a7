// API conformance: the standard malloc family of mimalloc.h
// (mi_malloc, mi_calloc, mi_realloc, mi_expand, mi_str*dup, mi_usable_size, ...).
//
// Validated against Debian's mimalloc 2.0.9: every test here describes its behaviour.
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "opaque.h"

namespace {

// A request no allocator can satisfy (above PTRDIFF_MAX).
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
  for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>((i * 31u + seed) & 0xFF);
}

bool check_pattern(const void* p, size_t n, unsigned seed) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != static_cast<unsigned char>((i * 31u + seed) & 0xFF)) return false;
  }
  return true;
}

// Counts the live blocks of a heap with mi_heap_visit_blocks.
struct BlockCount {
  size_t blocks = 0;
  size_t bytes = 0;
};

bool count_visitor(const mi_heap_t*, const mi_heap_area_t*, void* block, size_t block_size, void* arg) {
  if (block != nullptr) {
    BlockCount* c = static_cast<BlockCount*>(arg);
    c->blocks++;
    c->bytes += block_size;
  }
  return true;
}

BlockCount count_blocks(mi_heap_t* heap) {
  BlockCount c;
  mi_heap_visit_blocks(heap, true, &count_visitor, &c);
  return c;
}

}  // namespace

TEST(Malloc, BasicAllocateWriteFree) {
  void* p = mi_malloc(100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 100u);
  std::memset(p, 0x5A, 100);
  EXPECT_TRUE(all_bytes(p, 100, 0x5A));
  mi_free(p);
}

void append_output(const char* msg, void* arg) { static_cast<std::string*>(arg)->append(msg); }

// free(NULL) is not a foreign pointer: nothing is said (a foreign pointer's
// free prints a warning, once), errno is left alone, and nothing is freed.
TEST(Malloc, FreeNullIsNoop) {
  void* live = mi_malloc(24);
  ASSERT_NE(live, nullptr);
  std::string said;
  mi_register_output(&append_output, &said);
  errno = 4711;
  mi_free(nullptr);
  mi_free(opaque<void*>(nullptr));
  const int err = errno;
  mi_register_output(nullptr, nullptr);
  EXPECT_EQ(err, 4711);
  EXPECT_EQ(said, "");
  EXPECT_GE(mi_usable_size(live), 24u);  // still ours, still live
  mi_free(live);
}

TEST(Malloc, ZeroSizeReturnsUniqueFreeablePointers) {
  void* a = mi_malloc(0);
  void* b = mi_malloc(0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  // (compared as integers: the compiler may assume two `malloc` results differ)
  EXPECT_NE(opaque(reinterpret_cast<uintptr_t>(a)), opaque(reinterpret_cast<uintptr_t>(b)));
  EXPECT_TRUE(is_aligned(a, sizeof(void*)));
  // usable size of a zero-size block may be anything (mimalloc gives 8), but the block is ours
  EXPECT_TRUE(mi_is_in_heap_region(a));
  mi_free(a);
  mi_free(b);
}

TEST(Malloc, DistinctLiveBlocksDoNotOverlap) {
  std::vector<char*> blocks;
  for (size_t i = 0; i < 256; i++) {
    size_t sz = 1 + (i * 37) % 700;
    char* p = static_cast<char*>(mi_malloc(sz));
    ASSERT_NE(p, nullptr);
    std::memset(p, static_cast<int>(i & 0xFF), sz);
    blocks.push_back(p);
  }
  for (size_t i = 0; i < blocks.size(); i++) {
    size_t sz = 1 + (i * 37) % 700;
    EXPECT_TRUE(all_bytes(blocks[i], sz, static_cast<unsigned char>(i & 0xFF))) << "block " << i;
  }
  for (char* p : blocks) mi_free(p);
}

TEST(Malloc, CallocZeroes) {
  for (size_t n : {1u, 7u, 16u, 100u, 1000u, 4096u, 65536u, 300000u, 4u << 20}) {
    // dirty a block of the same size first so that calloc is likely to reuse dirty memory
    void* d = mi_malloc(n);
    ASSERT_NE(d, nullptr);
    std::memset(d, 0xCD, mi_usable_size(d));
    mi_free(d);
    unsigned char* p = static_cast<unsigned char*>(mi_calloc(n, 1));
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(all_bytes(p, n, 0)) << "calloc(" << n << ",1) not zeroed";
    mi_free(p);
    p = static_cast<unsigned char*>(mi_calloc(1, n));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(all_bytes(p, n, 0));
    mi_free(p);
  }
  void* q = mi_calloc(100, 8);
  ASSERT_NE(q, nullptr);
  EXPECT_GE(mi_usable_size(q), 800u);
  EXPECT_TRUE(all_bytes(q, 800, 0));
  mi_free(q);
}

TEST(Malloc, CallocZeroCountOrSize) {
  void* a = mi_calloc(0, 16);
  void* b = mi_calloc(16, 0);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  mi_free(a);
  mi_free(b);
}

TEST(Malloc, CallocOverflowReturnsNull) {
  EXPECT_EQ(mi_calloc(opaque(SIZE_MAX / 2), 4), nullptr);
  EXPECT_EQ(mi_calloc(4, opaque(SIZE_MAX / 2)), nullptr);
  EXPECT_EQ(mi_calloc(opaque(SIZE_MAX), opaque(SIZE_MAX)), nullptr);
  EXPECT_EQ(mi_calloc(opaque(static_cast<size_t>(1) << 33), opaque(static_cast<size_t>(1) << 33)), nullptr);
}

TEST(Malloc, TooLargeReturnsNull) {
  EXPECT_EQ(mi_malloc(too_large()), nullptr);
  EXPECT_EQ(mi_malloc(opaque(SIZE_MAX)), nullptr);
  EXPECT_EQ(mi_zalloc(too_large()), nullptr);
  EXPECT_EQ(mi_malloc(opaque(SIZE_MAX / 2)), nullptr);
}

TEST(Malloc, ZallocZeroes) {
  for (size_t n : {0u, 1u, 24u, 513u, 8000u, 70000u, 2u << 20}) {
    void* d = mi_malloc(n);
    ASSERT_NE(d, nullptr);
    std::memset(d, 0xEE, mi_usable_size(d));
    mi_free(d);
    void* p = mi_zalloc(n);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(all_bytes(p, n, 0)) << n;
    mi_free(p);
  }
}

TEST(Malloc, MallocSmallAndZallocSmall) {
  for (size_t n = 0; n <= MI_SMALL_SIZE_MAX; n += (n < 64 ? 1 : 29)) {
    void* p = mi_malloc_small(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_GE(mi_usable_size(p), n);
    std::memset(p, 0xAA, mi_usable_size(p));
    mi_free(p);
    unsigned char* z = static_cast<unsigned char*>(mi_zalloc_small(n));
    ASSERT_NE(z, nullptr) << n;
    EXPECT_GE(mi_usable_size(z), n);
    EXPECT_TRUE(all_bytes(z, n, 0)) << n;
    mi_free(z);
  }
  EXPECT_EQ(MI_SMALL_SIZE_MAX, 128 * sizeof(void*));
}

TEST(Malloc, MallocnMultipliesAndChecksOverflow) {
  void* p = mi_mallocn(10, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 1000u);
  std::memset(p, 1, 1000);
  mi_free(p);
  EXPECT_EQ(mi_mallocn(opaque(SIZE_MAX / 2), 3), nullptr);
  EXPECT_EQ(mi_mallocn(3, opaque(SIZE_MAX / 2)), nullptr);
}

TEST(Malloc, ReallocGrowKeepsContents) {
  size_t n = 10;
  unsigned char* p = static_cast<unsigned char*>(mi_malloc(n));
  ASSERT_NE(p, nullptr);
  fill_pattern(p, n, 7);
  for (size_t next : {17u, 100u, 1000u, 5000u, 70000u, 1u << 20, 9u << 20}) {
    unsigned char* q = static_cast<unsigned char*>(mi_realloc(p, next));
    ASSERT_NE(q, nullptr) << next;
    EXPECT_TRUE(check_pattern(q, n, 7)) << "contents lost growing " << n << " -> " << next;
    EXPECT_GE(mi_usable_size(q), next);
    fill_pattern(q, next, 7);
    p = q;
    n = next;
  }
  mi_free(p);
}

// A seeded random sequence of reallocs over a few live buffers (appends,
// growth by a factor, shrinks, jumps across the small, medium, large and
// huge sizes, to 6 MiB), each buffer's contents checked after every step:
// in-place growth and shrinking (large slices, a huge block's arena memory)
// and the moves must all keep the bytes.
TEST(Malloc, ReallocRandomSequenceKeepsContents) {
  struct Buf {
    unsigned char* p = nullptr;
    size_t n = 0;
    unsigned seed = 0;
  };
  Buf bufs[6];
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  auto next = [&rng](uint64_t bound) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % bound;
  };
  const size_t max_size = size_t{6} << 20;
  size_t moved = 0, in_place = 0;
  for (int step = 0; step < 1500; step++) {
    Buf& b = bufs[next(6)];
    size_t n;
    switch (next(5)) {
      case 0: n = b.n + 1 + next(300); break;                    // append
      case 1: n = b.n + b.n / 4 + 1 + next(b.n / 2 + 1); break;  // grow by x1.25 .. x1.75
      case 2: n = (b.n > 1) ? 1 + next(b.n) : 1; break;          // shrink
      case 3: n = size_t{1} << next(23); break;                  // a power of two to 4 MiB
      default: {                                                 // anywhere (log-uniform)
        const size_t p2 = size_t{1} << next(23);
        n = p2 + next(p2);
      }
    }
    if (n > max_size) n = max_size;
    if (n == 0) n = 1;
    unsigned char* q = static_cast<unsigned char*>(mi_realloc(b.p, n));
    ASSERT_NE(q, nullptr) << "step " << step << ": " << b.n << " -> " << n;
    const size_t kept = (b.n < n) ? b.n : n;
    ASSERT_TRUE(check_pattern(q, kept, b.seed)) << "step " << step << ": contents lost " << b.n << " -> " << n;
    ASSERT_GE(mi_usable_size(q), n);
    if (b.p != nullptr) (q == b.p ? in_place : moved)++;
    b.p = q;
    b.n = n;
    b.seed = static_cast<unsigned>(next(256));
    fill_pattern(b.p, b.n, b.seed);
  }
  for (Buf& b : bufs) {
    EXPECT_TRUE(check_pattern(b.p, b.n, b.seed));
    mi_free(b.p);
  }
  EXPECT_GT(in_place, 0u);
  EXPECT_GT(moved, 0u);
}

TEST(Malloc, ReallocShrinkKeepsPrefix) {
  size_t n = 3u << 20;
  unsigned char* p = static_cast<unsigned char*>(mi_malloc(n));
  ASSERT_NE(p, nullptr);
  fill_pattern(p, n, 3);
  for (size_t next : {1u << 20, 100000u, 4000u, 300u, 20u, 1u}) {
    unsigned char* q = static_cast<unsigned char*>(mi_realloc(p, next));
    ASSERT_NE(q, nullptr) << next;
    EXPECT_TRUE(check_pattern(q, next, 3)) << "prefix lost shrinking to " << next;
    EXPECT_GE(mi_usable_size(q), next);
    p = q;
  }
  mi_free(p);
}

TEST(Malloc, ReallocSameSizeKeepsBlock) {
  void* p = mi_malloc(200);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 200, 1);
  void* q = mi_realloc(p, 200);
  EXPECT_EQ(q, p);
  EXPECT_TRUE(check_pattern(q, 200, 1));
  mi_free(q);
}

TEST(Malloc, ReallocNullAllocates) {
  void* p = mi_realloc(nullptr, 123);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 123u);
  std::memset(p, 3, 123);
  mi_free(p);
}

TEST(Malloc, ReallocToZeroReturnsValidSmallBlock) {
  // mimalloc: realloc(p, 0) is not a free; it returns a fresh (minimal) block and frees p
  void* p = mi_malloc(100);
  ASSERT_NE(p, nullptr);
  void* q = mi_realloc(p, 0);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(mi_is_in_heap_region(q));
  EXPECT_LT(mi_usable_size(q), 100u);
  mi_free(q);

  void* z = mi_realloc(nullptr, 0);
  ASSERT_NE(z, nullptr);
  mi_free(z);
}

TEST(Malloc, ReallocTooLargeFailsAndKeepsBlock) {
  void* p = mi_malloc(64);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 64, 9);
  EXPECT_EQ(mi_realloc(p, too_large()), nullptr);
  EXPECT_TRUE(check_pattern(p, 64, 9));
  mi_free(p);
}

TEST(Malloc, ReallocnChecksOverflowAndKeepsBlock) {
  void* p = mi_reallocn(nullptr, 4, 25);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 100u);
  fill_pattern(p, 100, 11);
  void* q = mi_reallocn(p, 100, 40);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(check_pattern(q, 100, 11));
  EXPECT_GE(mi_usable_size(q), 4000u);
  EXPECT_EQ(mi_reallocn(q, opaque(SIZE_MAX / 2), 3), nullptr);
  EXPECT_TRUE(check_pattern(q, 100, 11)) << "failed reallocn must leave the block untouched";
  mi_free(q);
}

TEST(Malloc, ReallocfKeepsContentsOnSuccess) {
  void* p = mi_malloc(50);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 50, 5);
  void* q = mi_reallocf(p, 5000);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(check_pattern(q, 50, 5));
  mi_free(q);
}

TEST(Malloc, ReallocfFreesOnFailure) {
  // Route mi_malloc/mi_reallocf to a private heap so that we can count its live blocks.
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  mi_heap_t* old = mi_heap_set_default(heap);
  void* p = mi_malloc(48);
  const size_t before = count_blocks(heap).blocks;
  void* q = mi_reallocf(p, too_large());
  const size_t after = count_blocks(heap).blocks;
  mi_heap_set_default(old);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(before, 1u);
  EXPECT_EQ(q, nullptr);
  EXPECT_EQ(after, 0u) << "mi_reallocf must free the block when it fails";
  mi_heap_delete(heap);
}

TEST(Malloc, ExpandInPlaceOrNull) {
  char* p = static_cast<char*>(mi_malloc(100));
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 100, 2);
  const size_t usable = mi_usable_size(p);
  // Within the usable size expansion always succeeds in place.
  EXPECT_EQ(mi_expand(p, 50), p);
  EXPECT_EQ(mi_expand(p, usable), p);
  EXPECT_TRUE(check_pattern(p, 100, 2));
  // Beyond it: either in place (same pointer, now usable that far) or NULL; never a move.
  void* r = mi_expand(p, 1u << 20);
  if (r != nullptr) {
    EXPECT_EQ(r, p);
    EXPECT_GE(mi_usable_size(p), 1u << 20);
  }
  EXPECT_TRUE(check_pattern(p, 100, 2));
  EXPECT_EQ(mi_expand(p, too_large()), nullptr);
  mi_free(p);
}

TEST(Malloc, Strdup) {
  const char* s = "hello, mimalloc";
  char* d = mi_strdup(s);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d, s);
  EXPECT_STREQ(d, s);
  EXPECT_GE(mi_usable_size(d), std::strlen(s) + 1);
  mi_free(d);

  char* e = mi_strdup("");
  ASSERT_NE(e, nullptr);
  EXPECT_STREQ(e, "");
  mi_free(e);

  EXPECT_EQ(mi_strdup(opaque<const char*>(nullptr)), nullptr);

  std::string big(100000, 'x');
  char* b = mi_strdup(big.c_str());
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(std::string(b), big);
  mi_free(b);
}

TEST(Malloc, Strndup) {
  const char* s = "abcdefgh";
  char* a = mi_strndup(s, 3);
  ASSERT_NE(a, nullptr);
  EXPECT_STREQ(a, "abc");
  mi_free(a);

  char* b = mi_strndup(s, 100);  // n beyond the string: whole string
  ASSERT_NE(b, nullptr);
  EXPECT_STREQ(b, s);
  mi_free(b);

  char* c = mi_strndup(s, 0);
  ASSERT_NE(c, nullptr);
  EXPECT_STREQ(c, "");
  mi_free(c);

  char* d = mi_strndup(s, 8);
  ASSERT_NE(d, nullptr);
  EXPECT_STREQ(d, s);
  mi_free(d);

  EXPECT_EQ(mi_strndup(opaque<const char*>(nullptr), 4), nullptr);
}

TEST(Malloc, Realpath) {
  char expected[PATH_MAX];
  ASSERT_NE(::realpath("/tmp/../tmp/.", expected), nullptr);

  char* r = mi_realpath("/tmp/../tmp/.", nullptr);
  ASSERT_NE(r, nullptr);
  EXPECT_STREQ(r, expected);
  EXPECT_TRUE(mi_is_in_heap_region(r)) << "mi_realpath(.., NULL) must return a block of ours";
  mi_free(r);

  // With a caller buffer the result is that buffer.  (mi_realpath is declared
  // `malloc`, so the compiler may assume the result aliases nothing: compare
  // the addresses as integers after hiding them from the optimiser.)
  char buf[PATH_MAX];
  char* r2 = mi_realpath("/tmp/../tmp/.", buf);
  EXPECT_EQ(opaque(reinterpret_cast<uintptr_t>(r2)), reinterpret_cast<uintptr_t>(&buf[0]));
  EXPECT_STREQ(buf, expected);

  errno = 0;
  EXPECT_EQ(mi_realpath("/nonexistent-mimalloc-numa-test/x/y", nullptr), nullptr);
  EXPECT_EQ(errno, ENOENT);
}

TEST(Malloc, UsableSize) {
  EXPECT_EQ(mi_usable_size(nullptr), 0u);
  for (size_t n : {1u, 8u, 15u, 16u, 100u, 1000u, 12345u, 100000u, 1u << 20, (5u << 20) + 3}) {
    void* p = mi_malloc(n);
    ASSERT_NE(p, nullptr);
    const size_t u = mi_usable_size(p);
    EXPECT_GE(u, n);
    std::memset(p, 0x77, u);  // whole usable size is writable
    EXPECT_EQ(mi_usable_size(p), u);
    mi_free(p);
  }
}

TEST(Malloc, GoodSize) {
  for (size_t n = 0; n <= 140000; n += (n < 1100 ? 1 : 97)) {
    const size_t g = mi_good_size(n);
    EXPECT_GE(g, n);
    void* p = mi_malloc(n);
    ASSERT_NE(p, nullptr);
    const size_t u = mi_usable_size(p);
    EXPECT_GE(u, g) << n;
    if (n <= 128 * 1024) {  // small and medium sizes: good size is exactly the size class
      EXPECT_EQ(u, g) << "mi_good_size(" << n << ") differs from the usable size of mi_malloc(" << n << ")";
    }
    // allocating the good size lands in the same size class
    void* q = mi_malloc(g);
    ASSERT_NE(q, nullptr);
    if (n <= 128 * 1024) {
      EXPECT_EQ(mi_usable_size(q), g) << n;
    }
    mi_free(q);
    mi_free(p);
  }
  for (size_t n : {200000u, 1u << 20, (1u << 20) + 1, 10u << 20}) {
    EXPECT_GE(mi_good_size(n), n);
    void* p = mi_malloc(n);
    ASSERT_NE(p, nullptr);
    EXPECT_GE(mi_usable_size(p), mi_good_size(n));
    mi_free(p);
  }
}

TEST(Malloc, EverySizeUpTo70000) {
  size_t n = 0;
  while (n <= 70000) {
    unsigned char* p = static_cast<unsigned char*>(mi_malloc(n));
    ASSERT_NE(p, nullptr) << n;
    const size_t u = mi_usable_size(p);
    ASSERT_GE(u, n);
    EXPECT_TRUE(is_aligned(p, 8)) << n;
    if (n >= 16 && n % 16 == 0) {
      EXPECT_TRUE(is_aligned(p, 16)) << n;
    }
    std::memset(p, static_cast<int>(n & 0xFF), u);
    p[0] = 1;
    if (u > 0) p[u - 1] = 2;
    mi_free(p);
    n += (n < 2048 ? 1 : (n < 16384 ? 7 : 61));
  }
}

TEST(Malloc, PowersOfTwoUpTo64MiB) {
  for (size_t n = 1; n <= (size_t{64} << 20); n *= 2) {
    for (size_t sz : {n - 1, n, n + 1}) {
      unsigned char* p = static_cast<unsigned char*>(mi_malloc(sz));
      ASSERT_NE(p, nullptr) << sz;
      const size_t u = mi_usable_size(p);
      ASSERT_GE(u, sz);
      EXPECT_TRUE(is_aligned(p, 8)) << sz;
      if (sz >= 16 && sz % 16 == 0) {
        EXPECT_TRUE(is_aligned(p, 16)) << sz;
      }
      std::memset(p, 0xA5, u);
      EXPECT_EQ(p[u - 1], 0xA5);
      mi_free(p);
    }
  }
}

TEST(Malloc, ManyLiveBlocksThenFree) {
  constexpr size_t kCount = 20000;
  std::vector<void*> v(kCount);
  for (size_t i = 0; i < kCount; i++) {
    v[i] = mi_malloc(8 + (i % 64) * 8);
    ASSERT_NE(v[i], nullptr);
    *static_cast<size_t*>(v[i]) = i;
  }
  for (size_t i = 0; i < kCount; i++) EXPECT_EQ(*static_cast<size_t*>(v[i]), i);
  for (size_t i = 0; i < kCount; i += 2) mi_free(v[i]);
  for (size_t i = 1; i < kCount; i += 2) mi_free(v[i]);
}
