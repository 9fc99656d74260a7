// Unit tests of segment/thp: where the kernel gives transparent huge pages
// to every anonymous mapping ("always", Debian's default), the segments of
// small, medium and large blocks and the segment map are advised
// MADV_NOHUGEPAGE (smaps VmFlags "nh"), so that the kernel does not fault a
// whole 2 MiB page where we touch 4 KiB (issue 13, gap 3). With the option
// allow_thp they are not (the operator asked for huge pages).
//
// Skipped where the setting is "madvise" or "never" (nothing to place: no
// anonymous memory gets huge pages unasked). In child processes: the advice
// is given once per segment and once for the map, as the process starts.
//
// A huge block's protected tail (the rest of the 2 MiB range it ends in):
// there only where a huge page could back it ("always", or allow_thp), on
// every host.
#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "os/os.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "segment/thp.h"
#include "unit_util.h"

namespace {

// The VmFlags line of the /proc/self/smaps mapping that holds `p` ("" if none).
std::string vm_flags_of(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    // a mapping's first line: "lo-hi perms offset dev inode [path]"
    if (sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && strlen(perms) == 4) {
      inside = (a >= lo && a < hi);
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

bool has_nh(const std::string& flags) { return flags.find(" nh") != std::string::npos; }

void check(bool expect_nh) {
  ASSERT_TRUE(mi::os_thp_always());
  // on a fresh thread: new segments of each kind but huge
  std::thread t([&] {
    void* small = mi_malloc(64);
    void* medium = mi_malloc(64 * 1024);
    void* large = mi_malloc(512 * 1024);
    ASSERT_NE(small, nullptr);
    ASSERT_NE(medium, nullptr);
    ASSERT_NE(large, nullptr);
    for (void* p : {small, medium, large}) {
      const std::string flags = vm_flags_of(mi::ptr_segment(p));
      ASSERT_FALSE(flags.empty()) << "no smaps entry for the segment at " << mi::ptr_segment(p);
      EXPECT_EQ(has_nh(flags), expect_nh) << "segment of a " << mi_usable_size(p) << "-byte block: " << flags;
    }
    mi_free(small);
    mi_free(medium);
    mi_free(large);
  });
  t.join();
  const std::string map_flags = vm_flags_of(&mi::segmap[mi::SEGMAP_ENTRIES / 2]);
  EXPECT_EQ(has_nh(map_flags), expect_nh) << "the segment map: " << map_flags;
}

TEST(ThpChild, DISABLED_Placed) { check(true); }
TEST(ThpChild, DISABLED_AllowThp) { check(false); }

void run(const std::string& test, const std::vector<std::string>& env) {
  std::string mode;
  std::getline(std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"), mode);
  if (mode.find("[always]") == std::string::npos) {
    GTEST_SKIP() << "transparent huge pages are not \"always\" here (" << (mode.empty() ? "no THP" : mode)
                 << "): no anonymous memory gets huge pages unasked";
  }
  unit::ChildResult r = unit::run_child("ThpChild." + test, env);
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(Thp, SegmentsOfSmallBlocksAndTheSegmentMapAreKeptOffHugePages) { run("DISABLED_Placed", {}); }
TEST(Thp, AllowThpLeavesThemToTheKernel) { run("DISABLED_AllowThp", {"MIMALLOC_ALLOW_THP=1"}); }

// A reservation aligned to 2 MiB or more keeps a page below it where THP is
// "always" (os.cpp alloc_aligned): the kernel maps the next mapping (a
// thread's stack) right below the lowest one, and one that ended on a 2 MiB
// boundary had its top faulted as a whole huge page (tests/numa-vm
// thread-stacks sees the stacks). Freed with the reservation.
bool page_is_mapped(const void* p) {
  unsigned char v = 0;
  return mincore(const_cast<void*>(p), mi::os_page_size(), &v) == 0;  // ENOMEM: not mapped
}

TEST(Thp, AnAlignedReservationKeepsAPageBelowItWhereHugePagesAreAlways) {
  const size_t size = 8 * 1024 * 1024, alignment = 4 * 1024 * 1024;
  mi::MemId memid;
  uint8_t* p = static_cast<uint8_t*>(mi::os_alloc_aligned(size, alignment, false, false, &memid));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignment, 0u);
  uint8_t* below = p - mi::os_page_size();
  if (mi::os_thp_always()) {
    EXPECT_EQ(memid.os_pad, mi::os_page_size());
    EXPECT_TRUE(page_is_mapped(below)) << "the page below the reservation is ours";
  } else {
    EXPECT_EQ(memid.os_pad, 0u) << "no huge page comes unasked here: nothing to keep";
  }
  mi::os_free(p, size, memid);
  EXPECT_FALSE(page_is_mapped(p)) << "the reservation is unmapped";
  if (memid.os_pad != 0) {
    EXPECT_FALSE(page_is_mapped(below)) << "and its pad with it";
  }
}

TEST(Thp, HugeBlockTailIsProtectedOnlyWhereHugePagesMayBackIt) {
  // 3 MiB and a bit: a huge segment ending inside a 2 MiB range, in an
  // arena block that reaches past it; then grown in place by realloc
  const size_t size = 3 * 1024 * 1024 + 12345;
  uint8_t* p = static_cast<uint8_t*>(mi_malloc(size));
  ASSERT_NE(p, nullptr);
  memset(p, 0x6c, size);
  mi::Segment* s = mi::segmap_segment_of(p);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->page_kind, mi::PageKind::huge);
  if (s->memid.is_pinned || s->memid.is_large || s->memid.kind != mi::MemKind::arena) {
    mi_free(p);
    GTEST_SKIP() << "the block is not in regular arena memory";
  }
  const size_t span = mi::align_up(s->segment_size, mi::os_page_size());
  const bool readable = s->memid.initially_committed || s->memid.is_accessible;
  if (!mi::thp_may_back_huge_segments()) {
    EXPECT_EQ(s->tail_protected, 0u) << "no huge page can back it here: nothing to protect (an mprotect per "
                                        "segment and two per growth, for nothing)";
  } else if (readable) {
    EXPECT_EQ(s->tail_protected, mi::align_up(span, 2 * 1024 * 1024) - span);
  }
  uint8_t* q = static_cast<uint8_t*>(mi_realloc(p, size + 300 * 1024));
  ASSERT_NE(q, nullptr);
  if (q == p && !mi::thp_may_back_huge_segments()) {
    EXPECT_EQ(s->tail_protected, 0u) << "grown in place: still nothing protected";
  }
  for (size_t i = 0; i < size; i += 4096) ASSERT_EQ(q[i], 0x6c) << i;
  mi_free(q);
}

}  // namespace
