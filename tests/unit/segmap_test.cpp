// Unit tests of lib/segment/segmap: address -> segment for our blocks of every
// kind (including the interior units of huge and over-aligned segments),
// foreign and out-of-range pointers, and clearing when a segment goes away.
#include "segment/segmap.h"

#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

#include "heap/heap.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using mi::segmap_byte;
using mi::segmap_segment_of;
using mi::Segment;
using mi::SEGMENT_SIZE;

uint8_t* at(const void* p, size_t offset) { return const_cast<uint8_t*>(static_cast<const uint8_t*>(p)) + offset; }

size_t units_of(const Segment* s) { return (s->segment_size + SEGMENT_SIZE - 1) / SEGMENT_SIZE; }

// Every address of every unit of s (first, middle, last byte) maps to s, and
// the map byte says "first unit" exactly for the first.
void expect_all_units(const Segment* s) {
  const size_t units = units_of(s);
  for (size_t u = 0; u < units; u++) {
    for (size_t off : {size_t{0}, SEGMENT_SIZE / 2, SEGMENT_SIZE - 1}) {
      const uint8_t* q = at(s, u * SEGMENT_SIZE + off);
      ASSERT_EQ(segmap_segment_of(q), s) << "unit " << u << " offset " << off;
    }
    const uint8_t b = segmap_byte(at(s, u * SEGMENT_SIZE));
    if (u == 0) {
      EXPECT_EQ(b, s->page_shift);
      EXPECT_GE(b, mi::SEGMAP_FIRST_MIN);
    } else {
      EXPECT_GE(b, 1u) << "unit " << u;
      EXPECT_LT(b, mi::SEGMAP_FIRST_MIN) << "unit " << u;
      // the walk-back steps at most 2^(b-1) units and never before the start
      EXPECT_LE(size_t{1} << (b - 1), u) << "unit " << u;
    }
  }
}

void expect_all_units_cleared(const void* start, size_t units) {
  for (size_t u = 0; u < units; u++) {
    EXPECT_EQ(segmap_byte(at(start, u * SEGMENT_SIZE)), 0u) << "unit " << u;
    EXPECT_EQ(segmap_segment_of(at(start, u * SEGMENT_SIZE + 123)), nullptr) << "unit " << u;
  }
}

struct KindCase {
  size_t size;
  mi::PageKind kind;
  unsigned shift;
};

TEST(Segmap, BlocksOfEveryKind) {
  const KindCase cases[] = {
      {8, mi::PageKind::small, mi::SMALL_PAGE_SHIFT},
      {1000, mi::PageKind::small, mi::SMALL_PAGE_SHIFT},
      {mi::SMALL_OBJ_SIZE_MAX, mi::PageKind::small, mi::SMALL_PAGE_SHIFT},
      {20 * 1024, mi::PageKind::medium, mi::MEDIUM_PAGE_SHIFT},
      {mi::MEDIUM_OBJ_SIZE_MAX, mi::PageKind::medium, mi::MEDIUM_PAGE_SHIFT},
      // large segments are 64 slices of 64 KiB; a large page spans several
      {300 * 1024, mi::PageKind::large, mi::SMALL_PAGE_SHIFT},
      {mi::LARGE_OBJ_SIZE_MAX, mi::PageKind::large, mi::SMALL_PAGE_SHIFT},
      {mi::LARGE_OBJ_SIZE_MAX + 1, mi::PageKind::huge, mi::SEGMENT_SHIFT},
      {9 * 1024 * 1024, mi::PageKind::huge, mi::SEGMENT_SHIFT},
  };
  for (const KindCase& c : cases) {
    SCOPED_TRACE(c.size);
    uint8_t* p = static_cast<uint8_t*>(mi_malloc(c.size));
    ASSERT_NE(p, nullptr);
    Segment* s = segmap_segment_of(p);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s, mi::ptr_segment(p)) << "blocks lie in the first unit of their segment";
    EXPECT_EQ(s->page_kind, c.kind);
    EXPECT_EQ(s->page_shift, c.shift);
    EXPECT_EQ(segmap_byte(p), c.shift);
    EXPECT_TRUE(mi::segment_is_valid(s));
    EXPECT_EQ(s->thread_id.load(), mi::thread_id());
    // the whole block, and the header, map to the segment
    EXPECT_EQ(segmap_segment_of(p + c.size - 1), s);
    EXPECT_EQ(segmap_segment_of(s), s);
    EXPECT_EQ(segmap_segment_of(at(s, sizeof(Segment))), s);
    EXPECT_TRUE(mi_is_in_heap_region(p));
    EXPECT_GE(s->segment_size, static_cast<size_t>(p + c.size - reinterpret_cast<uint8_t*>(s)));
    expect_all_units(s);
    // one past the segment's units is another segment or nothing (a huge
    // segment, sized to its block, ends inside its last unit)
    EXPECT_NE(segmap_segment_of(at(s, mi::align_up(s->segment_size, mi::SEGMENT_SIZE))), s);
    EXPECT_NE(segmap_segment_of(at(s, 0) - 1), s);
    mi_free(p);
  }
}

TEST(Segmap, HugeBlockIsClearedWhenFreed) {
  const size_t size = 13 * 1024 * 1024;
  uint8_t* p = static_cast<uint8_t*>(mi_malloc(size));
  ASSERT_NE(p, nullptr);
  Segment* s = segmap_segment_of(p);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->page_kind, mi::PageKind::huge);
  const size_t units = units_of(s);
  EXPECT_GE(units, 4u);
  expect_all_units(s);
  memset(p, 1, size);
  mi_free(p);
  // no allocation in between: the segment is gone and its units are cleared
  expect_all_units_cleared(s, units);
  EXPECT_FALSE(mi_is_in_heap_region(p));
  EXPECT_FALSE(mi_is_in_heap_region(p + size - 1));
}

TEST(Segmap, HugeBlockWith32MiBAlignment) {
  const size_t align = 32u << 20;
  const size_t size = 40u << 20;
  uint8_t* p = static_cast<uint8_t*>(mi_malloc_aligned(size, align));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
  Segment* s = segmap_segment_of(p);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->page_kind, mi::PageKind::huge);
  EXPECT_TRUE(mi::segment_is_valid(s));
  // The block starts beyond the first unit: its map byte says "a later unit".
  const size_t block_unit = static_cast<size_t>(p - reinterpret_cast<uint8_t*>(s)) / SEGMENT_SIZE;
  if (block_unit > 0) {
    EXPECT_LT(segmap_byte(p), mi::SEGMAP_FIRST_MIN);
    EXPECT_NE(mi::ptr_segment(p), s);
  }
  EXPECT_GE(s->segment_size, static_cast<size_t>(p + size - reinterpret_cast<uint8_t*>(s)));
  expect_all_units(s);
  EXPECT_EQ(segmap_segment_of(p + size - 1), s);
  EXPECT_GE(mi_usable_size(p), size);
  memset(p, 7, size);
  const size_t units = units_of(s);
  mi_free(p);
  expect_all_units_cleared(s, units);
}

TEST(Segmap, VeryLargeHugeBlockFromTheOS) {
  // Beyond the arena limit (256 MiB): a direct OS mapping of many units; the
  // walk back from the last unit takes several steps. Not touched: no RSS.
  const size_t size = 300u << 20;
  uint8_t* p = static_cast<uint8_t*>(mi_malloc(size));
  ASSERT_NE(p, nullptr);
  Segment* s = segmap_segment_of(p);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->memid.kind, mi::MemKind::os);
  EXPECT_GE(units_of(s), 76u);
  expect_all_units(s);
  p[0] = 1;
  p[size - 1] = 2;
  const size_t units = units_of(s);
  mi_free(p);
  expect_all_units_cleared(s, units);
}

// The largest segment segment_alloc makes (2^46 bytes: a huge block aligned
// to 2^45, mi_malloc_aligned(200, 2^45), lies up to 32 TiB into it; under
// ASan's address layout one did, and the walk back gave up after 64 steps
// (4 TiB): malloc_usable_size said "not allocated by mimalloc-numa" and
// free leaked it). Reserved PROT_NONE with MAP_NORESERVE; skipped where the
// address space has no such hole.
TEST(Segmap, UnitsOfTheLargestSegmentWalkBackToItsStart) {
  const size_t fake_size = size_t{1} << 46;
  const size_t reserve = fake_size + SEGMENT_SIZE;
  void* base = mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) GTEST_SKIP() << "no 64 TiB hole in the address space: " << strerror(errno);
  uint8_t* start = static_cast<uint8_t*>(mi::align_up_ptr(base, SEGMENT_SIZE));
  ASSERT_EQ(mprotect(start, unit::os_page(), PROT_READ | PROT_WRITE), 0);
  Segment* s = reinterpret_cast<Segment*>(start);
  memset(static_cast<void*>(start), 0, unit::os_page());
  s->segment_size = fake_size;
  s->page_shift = mi::SEGMENT_SHIFT;
  s->capacity = 1;
  mi::segmap_register(s);
  const size_t units = fake_size / SEGMENT_SIZE;
  for (size_t u = 1; u < units; u = u * 3 + 1) {
    EXPECT_EQ(segmap_segment_of(start + u * SEGMENT_SIZE + 5), s) << "unit " << u;
  }
  EXPECT_EQ(segmap_segment_of(start + (units / 2) * SEGMENT_SIZE), s) << "half way (32 TiB in)";
  EXPECT_EQ(segmap_segment_of(start + (units - 1) * SEGMENT_SIZE), s) << "the last unit";
  EXPECT_NE(segmap_segment_of(start + fake_size), s);
  mi::segmap_unregister(s);
  EXPECT_EQ(segmap_byte(start + (units - 1) * SEGMENT_SIZE), 0u);
  munmap(base, reserve);
}

// A fake segment header in address space we reserved ourselves, registered
// as a 100 GiB segment: units far beyond 2^14 use the capped map byte 15 and
// still walk back to the start; unregistering clears them all.
TEST(Segmap, RegisterUnregisterVeryLargeSegment) {
  const size_t fake_size = size_t{100} << 30;
  const size_t reserve = fake_size + SEGMENT_SIZE;
  void* base = mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(base, MAP_FAILED);
  uint8_t* start = static_cast<uint8_t*>(mi::align_up_ptr(base, SEGMENT_SIZE));
  ASSERT_EQ(mprotect(start, unit::os_page(), PROT_READ | PROT_WRITE), 0);
  // nothing of ours here yet
  expect_all_units_cleared(start, 64);
  Segment* s = reinterpret_cast<Segment*>(start);
  memset(static_cast<void*>(start), 0, unit::os_page());
  s->segment_size = fake_size;
  s->page_shift = mi::SEGMENT_SHIFT;
  s->capacity = 1;
  mi::segmap_register(s);
  const size_t units = fake_size / SEGMENT_SIZE;  // 25600
  for (size_t u : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{1000}, size_t{16383}, size_t{16384},
                   size_t{20000}, units - 1}) {
    EXPECT_EQ(segmap_segment_of(start + u * SEGMENT_SIZE + 5), s) << "unit " << u;
  }
  EXPECT_EQ(segmap_byte(start + 20000 * SEGMENT_SIZE), 15u) << "capped";
  EXPECT_EQ(segmap_byte(start + 16383 * SEGMENT_SIZE), 14u);
  // every unit (cheap: one map byte each)
  for (size_t u = 0; u < units; u++) {
    if (segmap_segment_of(start + u * SEGMENT_SIZE) != s) {
      ADD_FAILURE() << "unit " << u << " does not map to the segment";
      break;
    }
  }
  EXPECT_NE(segmap_segment_of(start + fake_size), s);
  mi::segmap_unregister(s);
  for (size_t u = 0; u < units; u++) {
    if (segmap_byte(start + u * SEGMENT_SIZE) != 0) {
      ADD_FAILURE() << "unit " << u << " not cleared";
      break;
    }
  }
  munmap(base, reserve);
}

char g_static_bytes[4096];

TEST(Segmap, ForeignPointers) {
  int on_stack = 0;
  EXPECT_EQ(segmap_segment_of(&on_stack), nullptr);
  EXPECT_EQ(segmap_segment_of(g_static_bytes), nullptr);
  EXPECT_EQ(segmap_segment_of(g_static_bytes + sizeof(g_static_bytes) - 1), nullptr);
  EXPECT_EQ(segmap_segment_of(reinterpret_cast<void*>(&mi_malloc)), nullptr) << "code";
  EXPECT_EQ(segmap_segment_of(nullptr), nullptr);
  EXPECT_EQ(segmap_byte(nullptr), 0u);
  EXPECT_EQ(segmap_segment_of(reinterpret_cast<void*>(uintptr_t{1})), nullptr);
  EXPECT_EQ(segmap_segment_of(reinterpret_cast<void*>(uintptr_t{4096})), nullptr);

  const size_t len = 16u << 20;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  for (size_t off = 0; off < len; off += 1u << 20) EXPECT_EQ(segmap_segment_of(at(m, off)), nullptr) << off;
  EXPECT_FALSE(mi_is_in_heap_region(m));
  munmap(m, len);
}

TEST(Segmap, AddressesAtTheTopOfTheAddressSpace) {
  const uintptr_t top47 = uintptr_t{1} << 47;
  const uintptr_t addrs[] = {top47 - 1,
                             top47 - 4096,
                             top47 - SEGMENT_SIZE,
                             top47,
                             top47 + 12345,
                             uintptr_t{0xffff800000000000ULL},
                             ~uintptr_t{0},
                             ~uintptr_t{0} - SEGMENT_SIZE};
  for (uintptr_t a : addrs) {
    EXPECT_EQ(segmap_segment_of(reinterpret_cast<void*>(a)), nullptr) << std::hex << a;
    (void)segmap_byte(reinterpret_cast<void*>(a));  // wraps around; must not fault
  }
}

TEST(Segmap, NonCanonicalAliasOfOurSegmentIsNotOurs) {
  // An address with bit 47 set wraps onto the same map byte as one of our
  // segments in segmap_byte(); segmap_segment_of must still reject it.
  void* p = mi_malloc(64);
  ASSERT_NE(p, nullptr);
  ASSERT_NE(segmap_segment_of(p), nullptr);
  const uintptr_t alias = reinterpret_cast<uintptr_t>(p) | (uintptr_t{1} << 47);
  EXPECT_EQ(segmap_segment_of(reinterpret_cast<void*>(alias)), nullptr);
  const uintptr_t kernel = reinterpret_cast<uintptr_t>(p) | 0xffff800000000000ULL;
  EXPECT_EQ(segmap_segment_of(reinterpret_cast<void*>(kernel)), nullptr);
  mi_free(p);
}

TEST(Segmap, FreedSmallSegmentIsCleared) {
  // A heap in its own arena gets a segment of its own; when its last block is
  // freed and the heap collected, the segment goes away.
  mi_arena_id_t id = 0;
  ASSERT_EQ(mi_reserve_os_memory_ex(16u << 20, true, false, true, &id), 0);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  void* p = mi_heap_malloc(heap, 100);
  ASSERT_NE(p, nullptr);
  Segment* s = segmap_segment_of(p);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->page_kind, mi::PageKind::small);
  EXPECT_EQ(s->used, 1u);
  mi_free(p);
  mi_heap_collect(heap, true);  // frees the retired page, and with it the segment
  EXPECT_EQ(segmap_byte(s), 0u);
  EXPECT_EQ(segmap_segment_of(p), nullptr);
  mi_heap_delete(heap);
}

}  // namespace
