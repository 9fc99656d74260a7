// Overflow-safe size computations: every allocation function of mimalloc.h
// that takes a size, a count, an alignment or an offset, called with the edge
// values of each (0, 1, around an alignment, around the line where requests
// become impossible, PTRDIFF_MAX, SIZE_MAX - k). Each call either returns
// NULL with the documented errno, or a block that really holds the request:
// usable size >= size, aligned at the offset, every byte writable. Never a
// short block (issue 10: mi_malloc_aligned_at(64, 64, SIZE_MAX - 62) returned
// a block of 1 usable byte, and `alignment - 1 + offset` wrapped).
//
// Requests that are small enough (up to 64 MiB with an alignment up to 4 MiB)
// must succeed whatever the offset; larger possible ones may fail for want of
// memory; impossible ones (count * size overflows, or more than the address
// space could give) fail with ENOMEM, an alignment that is not a power of two
// with EINVAL.
// Ours: mimalloc 2.0.9 fails the offset cases and mi_good_size(SIZE_MAX).
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "opaque.h"

namespace {

void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

constexpr size_t KiB = 1024, MiB = KiB * KiB;
// lib/common/types.h ALLOC_SIZE_MAX: 64 TiB - 4 MiB; beyond it a request is
// impossible (its segment would be larger than any mapping we ask for).
constexpr size_t kLine = (size_t{1} << 46) - 4 * MiB;
constexpr size_t kSmall = 64 * MiB;  // requests up to this must succeed (and are written)
constexpr size_t kPtrdiffMax = static_cast<size_t>(PTRDIFF_MAX);

const std::vector<size_t>& edge_sizes() {
  static const std::vector<size_t> v = {0,
                                        1,
                                        7,
                                        8,
                                        63,
                                        64,
                                        65,
                                        1000,
                                        4095,
                                        4096,
                                        4097,
                                        65535,
                                        65536,
                                        65537,
                                        2 * MiB,
                                        2 * MiB + 1,
                                        5 * MiB,
                                        kLine - 4097,
                                        kLine,
                                        kLine + 1,
                                        size_t{1} << 46,
                                        kPtrdiffMax,
                                        kPtrdiffMax + 1,
                                        SIZE_MAX / 2 + 2,
                                        SIZE_MAX - 65536,
                                        SIZE_MAX - 4096,
                                        SIZE_MAX - 64,
                                        SIZE_MAX - 63,
                                        SIZE_MAX - 62,
                                        SIZE_MAX - 1,
                                        SIZE_MAX};
  return v;
}

const std::vector<size_t>& edge_alignments() {
  static const std::vector<size_t> v = {
      1, 2, 8, 16, 64, 4096, 65536, 131072, 4 * MiB, size_t{1} << 45, size_t{1} << 62, size_t{1} << 63};
  return v;
}

const std::vector<size_t>& edge_offsets() {
  static const std::vector<size_t> v = {
      0, 1, 8, 63, 64, 65, 4096, kPtrdiffMax, kPtrdiffMax + 1, SIZE_MAX - 62, SIZE_MAX - 63, SIZE_MAX - 64, SIZE_MAX};
  return v;
}

std::string describe(const char* fn, size_t size, size_t align, size_t offset) {
  return std::string(fn) + "(size " + std::to_string(size) + ", alignment " + std::to_string(align) + ", offset " +
         std::to_string(offset) + ")";
}

// A call's result and what it left in errno (cleared before it).
struct Result {
  void* p;
  int err;
};
template <class F>
Result call(F f) {
  errno = 0;
  void* p = f();
  return Result{p, errno};
}

bool must_succeed(size_t size, size_t align) { return size <= kSmall && align <= 4 * MiB; }
bool impossible(size_t size, size_t align) { return size > kLine || align > kLine - size; }

// The outcome of a request of `size` bytes at `align` (0: none) and `offset`:
// a block that holds it, or NULL with ENOMEM where that is allowed. Frees it.
void expect_holds(Result r, size_t size, size_t align, size_t offset, const std::string& what) {
  void* p = r.p;
  const int err = r.err;
  if (p == nullptr) {
    EXPECT_FALSE(must_succeed(size, align)) << what << " failed";
    EXPECT_EQ(err, ENOMEM) << what;
    return;
  }
  EXPECT_FALSE(impossible(size, align)) << what << " succeeded";
  const size_t usable = mi_usable_size(p);
  EXPECT_GE(usable, size) << what << ": a short block";
  if (align > 0) {
    EXPECT_EQ((reinterpret_cast<uintptr_t>(p) + offset) % align, 0u) << what << ": not aligned";
  }
  if (size <= kSmall) std::memset(p, 0xA5, size);  // ASan/valgrind builds: the bytes are there
  mi_free(p);
}

}  // namespace

TEST(Overflow, AlignedAtEveryEdge) {
  for (size_t size : edge_sizes()) {
    for (size_t align : edge_alignments()) {
      for (size_t offset : edge_offsets()) {
        Result r = call([&] { return mi_malloc_aligned_at(opaque(size), opaque(align), opaque(offset)); });
        expect_holds(r, size, align, offset, describe("mi_malloc_aligned_at", size, align, offset));
        r = call([&] { return mi_zalloc_aligned_at(opaque(size), opaque(align), opaque(offset)); });
        if (r.p != nullptr && size <= kSmall) {
          const unsigned char* b = static_cast<const unsigned char*>(r.p);
          size_t nonzero = 0;
          for (size_t i = 0; i < size; i++) nonzero += (b[i] != 0);
          EXPECT_EQ(nonzero, 0u) << describe("mi_zalloc_aligned_at", size, align, offset);
        }
        expect_holds(r, size, align, offset, describe("mi_zalloc_aligned_at", size, align, offset));
      }
    }
  }
}

TEST(Overflow, TheReportedCase) {
  // issue 10, defect 1: 64 bytes at an offset that wraps alignment - 1 + offset
  unsigned char* p = static_cast<unsigned char*>(mi_malloc_aligned_at(64, 64, opaque(SIZE_MAX - 62)));
  ASSERT_NE(p, nullptr);
  EXPECT_GE(mi_usable_size(p), 64u);
  EXPECT_EQ((reinterpret_cast<uintptr_t>(p) + (SIZE_MAX - 62)) % 64, 0u);
  void* q = mi_malloc(64);  // often the next block: the write must not reach it
  std::memset(q, 0x5A, 64);
  std::memset(p, 0xA5, 64);
  const unsigned char* b = static_cast<const unsigned char*>(q);
  for (size_t i = 0; i < 64; i++) ASSERT_EQ(b[i], 0x5A) << "the neighbour was overwritten at " << i;
  mi_free(q);
  mi_free(p);
}

TEST(Overflow, AlignedHeapFormsAtEveryEdge) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  for (size_t size : edge_sizes()) {
    for (size_t align : {size_t{16}, size_t{4096}, size_t{1} << 20, size_t{1} << 62}) {
      for (size_t offset : {size_t{0}, size_t{24}, SIZE_MAX - 62, SIZE_MAX}) {
        Result r = call([&] { return mi_heap_malloc_aligned_at(heap, opaque(size), opaque(align), opaque(offset)); });
        if (r.p != nullptr) {
          EXPECT_TRUE(mi_heap_contains_block(heap, r.p));
        }
        expect_holds(r, size, align, offset, describe("mi_heap_malloc_aligned_at", size, align, offset));
        r = call([&] { return mi_heap_zalloc_aligned_at(heap, opaque(size), opaque(align), opaque(offset)); });
        expect_holds(r, size, align, offset, describe("mi_heap_zalloc_aligned_at", size, align, offset));
      }
    }
  }
  mi_heap_delete(heap);
}

TEST(Overflow, BadAlignmentIsEinval) {
  for (size_t align : {size_t{0}, size_t{3}, size_t{24}, size_t{65535}, SIZE_MAX}) {
    for (size_t size : {size_t{0}, size_t{64}, SIZE_MAX}) {
      Result r = call([&] { return mi_malloc_aligned_at(size, opaque(align), 0); });
      EXPECT_EQ(r.p, nullptr) << align;
      EXPECT_EQ(r.err, EINVAL) << align;
    }
  }
  // also when the block would fit in place (it was kept, "aligned" by a wrong mask)
  for (size_t align : {size_t{24}, size_t{65535}, SIZE_MAX}) {
    // a block of 128 bytes whose address the wrong mask (align - 1) passes
    std::vector<void*> tried;
    void* p = nullptr;
    while (p == nullptr && tried.size() < 100000) {
      void* q = mi_malloc(128);
      ASSERT_NE(q, nullptr);
      if ((reinterpret_cast<uintptr_t>(q) & (align - 1)) == 0 ||
          ((reinterpret_cast<uintptr_t>(q) + 8) & (align - 1)) == 0) {
        p = q;
      } else {
        tried.push_back(q);
      }
    }
    for (void* q : tried) mi_free(q);
    if (p == nullptr) continue;  // (SIZE_MAX - 1 as a mask: no address passes)
    for (auto f : {mi_realloc_aligned, mi_rezalloc_aligned}) {
      Result r = call([&] { return f(p, 100, opaque(align)); });
      EXPECT_EQ(r.p, nullptr) << align;
      EXPECT_EQ(r.err, EINVAL) << align;
    }
    Result r = call([&] { return mi_realloc_aligned_at(p, 90, opaque(align), 8); });
    EXPECT_EQ(r.p, nullptr) << align;
    EXPECT_EQ(r.err, EINVAL) << align;
    mi_free(p);
  }
}

namespace {

struct CountSize {
  size_t count, size;
};

// count * size: exact overflows, products on either side of the line, zeros
const std::vector<CountSize>& edge_counts() {
  static const std::vector<CountSize> v = {{0, SIZE_MAX},
                                           {SIZE_MAX, 0},
                                           {1, 1},
                                           {3, 21},
                                           {1000, 1000},
                                           {SIZE_MAX, 1},
                                           {1, SIZE_MAX},
                                           {SIZE_MAX, 2},
                                           {2, SIZE_MAX},
                                           {SIZE_MAX / 2 + 1, 2},
                                           {SIZE_MAX / 2, 2},
                                           {size_t{1} << 32, size_t{1} << 32},
                                           {size_t{1} << 23, size_t{1} << 23},
                                           {kLine / 8, 8},
                                           {kLine / 8 + 1, 8},
                                           {kPtrdiffMax, 3},
                                           {SIZE_MAX / 3 + 1, 3}};
  return v;
}

bool overflows(CountSize cs) {
  size_t total;
  return __builtin_mul_overflow(cs.count, cs.size, &total);
}

std::string describe_n(const char* fn, CountSize cs) {
  return std::string(fn) + "(" + std::to_string(cs.count) + ", " + std::to_string(cs.size) + ")";
}

// A count * size request: an overflow is ENOMEM; else as for its product.
void expect_holds_n(Result r, CountSize cs, size_t align, const std::string& what) {
  void* p = r.p;
  const int err = r.err;
  if (overflows(cs)) {
    EXPECT_EQ(p, nullptr) << what << " overflows but succeeded";
    EXPECT_EQ(err, ENOMEM) << what;
    if (p != nullptr) mi_free(p);
    return;
  }
  expect_holds(r, cs.count * cs.size, align, 0, what);
}

}  // namespace

TEST(Overflow, CountTimesSizeEveryForm) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  for (CountSize cs : edge_counts()) {
    const size_t c = opaque(cs.count), s = opaque(cs.size);
    expect_holds_n(call([&] { return mi_calloc(c, s); }), cs, 0, describe_n("mi_calloc", cs));
    expect_holds_n(call([&] { return mi_mallocn(c, s); }), cs, 0, describe_n("mi_mallocn", cs));
    expect_holds_n(call([&] { return mi_heap_calloc(heap, c, s); }), cs, 0, describe_n("mi_heap_calloc", cs));
    expect_holds_n(call([&] { return mi_heap_mallocn(heap, c, s); }), cs, 0, describe_n("mi_heap_mallocn", cs));
    expect_holds_n(call([&] { return mi_calloc_aligned(c, s, 64); }), cs, 64, describe_n("mi_calloc_aligned", cs));
    expect_holds_n(call([&] { return mi_calloc_aligned_at(c, s, 4096, 8); }), cs, 0,
                   describe_n("mi_calloc_aligned_at", cs));
    expect_holds_n(call([&] { return mi_heap_calloc_aligned(heap, c, s, 128); }), cs, 128,
                   describe_n("mi_heap_calloc_aligned", cs));
    expect_holds_n(call([&] { return mi_heap_calloc_aligned_at(heap, c, s, 128, 16); }), cs, 0,
                   describe_n("mi_heap_calloc_aligned_at", cs));
  }
  mi_heap_delete(heap);
}

namespace {

// The re-allocation forms: from a live block of 100 patterned bytes. A
// failure keeps the block (and its bytes); a success holds the new size and
// the old bytes.
using Realloc = void* (*)(void* p, CountSize cs, size_t align, size_t offset);

void check_realloc(const char* name, Realloc f, CountSize cs, size_t align, size_t offset, bool counted) {
  unsigned char* p = static_cast<unsigned char*>(mi_malloc(100));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 100; i++) p[i] = static_cast<unsigned char>(i + 1);
  const Result r = call([&] { return f(p, cs, align, offset); });
  void* q = r.p;
  const std::string what =
      describe_n(name, cs) + " alignment " + std::to_string(align) + " offset " + std::to_string(offset);
  const size_t total = cs.count * cs.size;
  if (q == nullptr) {
    for (size_t i = 0; i < 100; i++)
      ASSERT_EQ(p[i], static_cast<unsigned char>(i + 1)) << what << ": the failed call changed the block";
    mi_free(p);
    if (counted && overflows(cs)) {
      EXPECT_EQ(r.err, ENOMEM) << what;
    } else {
      expect_holds(r, total, align, offset, what);
    }
    return;
  }
  ASSERT_FALSE(counted && overflows(cs)) << what << " overflows but succeeded";
  const unsigned char* b = static_cast<const unsigned char*>(q);
  for (size_t i = 0; i < 100 && i < total; i++) ASSERT_EQ(b[i], static_cast<unsigned char>(i + 1)) << what;
  expect_holds(r, total, align, offset, what);
}

}  // namespace

TEST(Overflow, ReallocFormsKeepTheBlockOnFailure) {
  struct Form {
    const char* name;
    Realloc f;
    bool counted;  // takes count and size (else cs.size is the new size, cs.count 1)
    bool aligned;
  };
  static const Form forms[] = {
      {"mi_realloc", [](void* p, CountSize cs, size_t, size_t) { return mi_realloc(p, cs.size); }, false, false},
      {"mi_rezalloc", [](void* p, CountSize cs, size_t, size_t) { return mi_rezalloc(p, cs.size); }, false, false},
      {"mi_reallocn", [](void* p, CountSize cs, size_t, size_t) { return mi_reallocn(p, cs.count, cs.size); }, true,
       false},
      {"mi_recalloc", [](void* p, CountSize cs, size_t, size_t) { return mi_recalloc(p, cs.count, cs.size); }, true,
       false},
      {"mi_reallocarray", [](void* p, CountSize cs, size_t, size_t) { return mi_reallocarray(p, cs.count, cs.size); },
       true, false},
      {"mi_realloc_aligned_at",
       [](void* p, CountSize cs, size_t a, size_t o) { return mi_realloc_aligned_at(p, cs.size, a, o); }, false, true},
      {"mi_rezalloc_aligned_at",
       [](void* p, CountSize cs, size_t a, size_t o) { return mi_rezalloc_aligned_at(p, cs.size, a, o); }, false, true},
      {"mi_recalloc_aligned_at",
       [](void* p, CountSize cs, size_t a, size_t o) { return mi_recalloc_aligned_at(p, cs.count, cs.size, a, o); },
       true, true},
  };
  for (const Form& form : forms) {
    if (form.counted) {
      for (CountSize cs : edge_counts()) check_realloc(form.name, form.f, cs, form.aligned ? 64 : 0, 0, true);
    }
    for (size_t size : edge_sizes()) {
      if (!form.aligned) {
        check_realloc(form.name, form.f, {1, size}, 0, 0, form.counted);
        continue;
      }
      for (size_t align : {size_t{16}, size_t{4096}, size_t{1} << 20, size_t{1} << 62}) {
        for (size_t offset : {size_t{0}, size_t{8}, SIZE_MAX - 62})
          check_realloc(form.name, form.f, {1, size}, align, offset, form.counted);
      }
    }
  }
}

TEST(Overflow, PosixForms) {
  const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t size : edge_sizes()) {
    for (size_t align : {size_t{8}, size_t{64}, size_t{4096}, size_t{1} << 21, size_t{1} << 62}) {
      void* p = reinterpret_cast<void*>(uintptr_t{1});
      errno = 1234;
      const int rc = mi_posix_memalign(&p, align, opaque(size));
      EXPECT_EQ(errno, 1234) << "posix_memalign leaves errno alone";
      if (rc != 0) {
        EXPECT_EQ(rc, ENOMEM) << size << " " << align;
        EXPECT_EQ(p, reinterpret_cast<void*>(uintptr_t{1})) << "posix_memalign changed *p on failure";
        expect_holds(Result{nullptr, ENOMEM}, size, align, 0, describe("mi_posix_memalign", size, align, 0));
      } else {
        expect_holds(Result{p, 0}, size, align, 0, describe("mi_posix_memalign", size, align, 0));
      }
      expect_holds(call([&] { return mi_memalign(align, opaque(size)); }), size, align, 0,
                   describe("mi_memalign", size, align, 0));
      expect_holds(call([&] { return mi_aligned_alloc(align, opaque(size)); }), size, align, 0,
                   describe("mi_aligned_alloc", size, align, 0));
    }
    expect_holds(call([&] { return mi_valloc(opaque(size)); }), size, ps, 0, describe("mi_valloc", size, ps, 0));
    // pvalloc rounds up to whole pages: the rounded size must not wrap to a small one
    const Result r = call([&] { return mi_pvalloc(opaque(size)); });
    const size_t rounded = (size > SIZE_MAX - (ps - 1)) ? SIZE_MAX : (size + ps - 1) / ps * ps;
    expect_holds(r, rounded, ps, 0, describe("mi_pvalloc", size, ps, 0));
  }
}

TEST(Overflow, ReallocarrReturnsItsOwnError) {
  for (CountSize cs : edge_counts()) {
    void* p = mi_malloc(16);
    void* before = p;
    errno = EINVAL;  // an earlier error is not this call's result
    const int rc = mi_reallocarr(&p, opaque(cs.count), opaque(cs.size));
    EXPECT_EQ(errno, rc != 0 ? ENOMEM : EINVAL) << describe_n("mi_reallocarr", cs) << ": errno as mimalloc's";
    size_t total;
    const bool overflow = __builtin_mul_overflow(cs.count, cs.size, &total);
    if (rc != 0) {
      EXPECT_EQ(rc, ENOMEM) << describe_n("mi_reallocarr", cs);
      EXPECT_EQ(p, before);
      EXPECT_FALSE(must_succeed(overflow ? SIZE_MAX : total, 0)) << describe_n("mi_reallocarr", cs);
    } else {
      EXPECT_FALSE(overflow);
      EXPECT_GE(mi_usable_size(p), total);
    }
    mi_free(p);
  }
}

TEST(Overflow, GoodSizeIsNeverSmallerThanTheRequest) {
  for (size_t size : edge_sizes()) {
    EXPECT_GE(mi_good_size(opaque(size)), size) << size;
    EXPECT_GE(mi_malloc_good_size(opaque(size)), size) << size;
  }
}

TEST(Overflow, ExpandNeverGrowsPastTheBlock) {
  void* p = mi_malloc(100);
  const size_t usable = mi_usable_size(p);
  for (size_t size : edge_sizes()) {
    void* q = mi_expand(p, opaque(size));
    EXPECT_EQ(q, size <= usable ? p : nullptr) << size;
  }
  mi_free(p);
}

TEST(Overflow, CxxFormsThrowOrHold) {
  for (size_t size : edge_sizes()) {
    void* p = nullptr;
    bool threw = false;
    try {
      p = mi_new(opaque(size));
      escape(p);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    if (threw) {
      EXPECT_FALSE(must_succeed(size, 0)) << size;
    } else {
      expect_holds(Result{p, 0}, size, 0, 0, "mi_new(" + std::to_string(size) + ")");
    }
    for (size_t align : {size_t{64}, size_t{1} << 20, size_t{1} << 62}) {
      p = mi_new_aligned_nothrow(opaque(size), align);
      if (p == nullptr) {
        EXPECT_FALSE(must_succeed(size, align)) << size << " " << align;
      } else {
        expect_holds(Result{p, 0}, size, align, 0, describe("mi_new_aligned_nothrow", size, align, 0));
      }
    }
  }
  for (CountSize cs : edge_counts()) {
    bool threw = false;
    void* p = nullptr;
    try {
      p = mi_new_n(opaque(cs.count), opaque(cs.size));
      escape(p);
    } catch (const std::bad_array_new_length&) {
      threw = true;
      EXPECT_TRUE(overflows(cs)) << describe_n("mi_new_n", cs) << " threw bad_array_new_length";
    } catch (const std::bad_alloc&) {
      threw = true;
      EXPECT_FALSE(overflows(cs)) << describe_n("mi_new_n", cs) << ": an overflow is bad_array_new_length";
    }
    if (!threw) expect_holds(Result{p, 0}, cs.count * cs.size, 0, 0, describe_n("mi_new_n", cs));
  }
}
