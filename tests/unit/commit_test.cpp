// Unit tests of when memory is committed (lib/arena, lib/segment, lib/os):
//  - arena_eager_commit 0: an arena is reserved PROT_NONE and its blocks are
//    committed (mprotect, counted in os_counters.commit_calls) when handed out;
//    1: the whole arena is read-write at once, handing out a block costs no
//    system call; 2: as 1 where the kernel overcommits
//    (/proc/sys/vm/overcommit_memory != 2), else as 0. Both for arenas
//    reserved on demand and for the start-up reservation (reserve_os_memory).
//  - eager_commit / eager_commit_delay: the first N segments of a thread are
//    committed page by page, the later ones at once (eager_commit=1); with
//    eager_commit=0 every small/medium segment is committed page by page.
// Observed through /proc/self/maps (protections), the segments' own commit
// state and mi::os_counters, in child processes with the options set in the
// environment (they are read at start-up). Purging is off in the children
// (purge_delay=-1), so protections change only by committing.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <string>
#include <thread>
#include <vector>

#include "arena/arena.h"
#include "common/options.h"
#include "numa_util.h"
#include "os/os.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "segment/thp.h"
#include "unit_util.h"

namespace {

using numa_test::MiB;

int64_t commit_calls() { return mi::os_counters.commit_calls.load(); }

// The bytes of [p, p + size) that /proc/self/maps shows with `perms`, read
// into a static buffer: nothing is allocated from the time the kernel lists
// the mappings to the count of guard pages taken right after
// (guard_bytes_in), so no page (and no guard page) is claimed in between.
size_t bytes_with_perms_now(const void* p, size_t size, const char* perms) {
  static char buf[1 << 20];
  const int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return 0;
  size_t n = 0;
  for (ssize_t r; n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0;) n += static_cast<size_t>(r);
  close(fd);
  buf[n] = 0;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + size;
  size_t total = 0;
  for (char* line = buf; line != nullptr && *line != 0;) {
    char* end = strchr(line, '\n');
    if (end != nullptr) *end = 0;
    unsigned long a = 0, b = 0;
    char pr[8] = {};
    if (sscanf(line, "%lx-%lx %7s", &a, &b, pr) == 3 && strcmp(pr, perms) == 0 && b > lo && a < hi) {
      total += (b < hi ? b : hi) - (a > lo ? a : lo);
    }
    line = (end != nullptr) ? end + 1 : nullptr;
  }
  return total;
}

// Bytes of guard pages (secure mode: PROT_NONE inside committed memory, see
// segment.cpp) of the live segments that start in [p, p + size).
size_t guard_bytes_in(const void* p, size_t size) {
  struct Range {
    uintptr_t lo, hi;
    size_t bytes;
  } range{reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + size, 0};
  mi::segments_visit(
      [](const mi::Segment* s, void* arg) {
        Range* r = static_cast<Range*>(arg);
        const uintptr_t x = reinterpret_cast<uintptr_t>(s);
        if (x >= r->lo && x < r->hi && s->guard_protect) {
          r->bytes +=
              s->guard_size * (1 + static_cast<size_t>(__builtin_popcountll(s->guard_mask)));  // header's + pages'
        }
      },
      &range);
  return range.bytes;
}

std::string perms_of(const void* p, size_t size) {
  std::string s;
  for (const numa_test::MapPiece& m : numa_test::mapping_perms(p, size)) {
    s += " " + m.perms + ":" + std::to_string((m.end - m.start) / MiB) + "MiB";
  }
  return s;
}

// The arena a block's segment lives in: start and size (nullptr if none).
uint8_t* arena_of(const void* p, size_t* size) {
  mi::Segment* s = mi::segmap_segment_of(p);
  if (s == nullptr || s->memid.kind != mi::MemKind::arena) return nullptr;
  return static_cast<uint8_t*>(mi_arena_area(static_cast<mi_arena_id_t>(s->memid.arena_index + 1), size));
}

// Does arena_eager_commit (as set in this process) commit arenas at once?
bool arenas_commit_at_once() {
  const long mode = mi_option_get(mi_option_arena_eager_commit);
  return mode == 1 || (mode == 2 && mi::os_has_overcommit());
}

// --- arena_eager_commit ---------------------------------------------------------
// Run with MIMALLOC_ARENA_EAGER_COMMIT=0|1|2, MIMALLOC_RESERVE_OS_MEMORY=32MiB,
// MIMALLOC_ARENA_RESERVE=64MiB, MIMALLOC_PURGE_DELAY=-1.
TEST(CommitChild, DISABLED_ArenaEagerCommit) {
  const bool at_once = arenas_commit_at_once();
  // 1. the start-up reservation: arena 1, 32 MiB; start-up allocations use its first blocks
  size_t size1 = 0;
  uint8_t* a1 = static_cast<uint8_t*>(mi_arena_area(1, &size1));
  ASSERT_NE(a1, nullptr);
  ASSERT_EQ(size1, 32 * MiB);
  const uint8_t* last1 = a1 + size1 - mi::ARENA_BLOCK_SIZE;  // not handed out yet
  if (at_once) {
    const size_t rw = bytes_with_perms_now(a1, size1, "rw-p");
    EXPECT_EQ(rw, size1 - guard_bytes_in(a1, size1)) << "arena 1:" << perms_of(a1, size1);
  } else {
    EXPECT_EQ(numa_test::bytes_with_perms(last1, mi::ARENA_BLOCK_SIZE, "---p"), mi::ARENA_BLOCK_SIZE)
        << "arena 1:" << perms_of(a1, size1);
  }

  // 2. an arena reserved on demand: take arena 1's blocks, then one more
  std::vector<void*> blocks;
  uint8_t* area = nullptr;
  size_t area_size = 0;
  int64_t calls_before = 0, calls_after = 0;
  for (int i = 0; i < 20 && area == nullptr; i++) {
    calls_before = commit_calls();
    void* p =
        mi_malloc(3 * MiB);  // one arena block (a huge segment of 3 MiB and its header, committed when handed out)
    calls_after = commit_calls();
    ASSERT_NE(p, nullptr);
    blocks.push_back(p);
    size_t sz = 0;
    uint8_t* a = arena_of(p, &sz);
    ASSERT_NE(a, nullptr);
    if (a != a1) {
      area = a;
      area_size = sz;
    }
  }
  ASSERT_NE(area, nullptr) << "no arena was reserved beyond the start-up one";
  EXPECT_EQ(area_size, 64 * MiB);
  void* first = blocks.back();
  mi::Segment* seg = mi::segmap_segment_of(first);
  const size_t seg_rw = bytes_with_perms_now(seg, seg->segment_size, "rw-p");
  EXPECT_EQ(seg_rw, seg->segment_size - guard_bytes_in(seg, seg->segment_size))
      << "the block handed out is committed (but its guard pages)";
  EXPECT_EQ(seg->committed_bytes, seg->segment_size) << "committed at its size";
  EXPECT_LT(seg->segment_size, 3 * MiB + 64 * 1024) << "a huge segment is sized to its block";
  const size_t seg_span = mi::align_up(seg->segment_size, mi::os_page_size());
  if (at_once) {
    const size_t rw = bytes_with_perms_now(area, area_size, "rw-p");
    // (but the rest of the 2 MiB the huge block ends in, where transparent
    // huge pages may back it: no huge page across its end; in debug builds
    // all of its arena block past its end, decommitted and so protected: os_decommit)
    const size_t reach = size_t{seg->memid.block_count} * mi::ARENA_BLOCK_SIZE;
    const size_t not_rw = MI_DEBUG ? reach - seg_span : seg->tail_protected;
    EXPECT_EQ(rw, area_size - guard_bytes_in(area, area_size) - not_rw) << "new arena:" << perms_of(area, area_size);
    EXPECT_EQ(seg->tail_protected,
              mi::thp_may_back_huge_segments() ? mi::align_up(seg_span, 2 * MiB) - seg_span : size_t{0});
    EXPECT_EQ(calls_after - calls_before, 0) << "a committed arena hands out blocks without a system call";
  } else {
    const size_t none = bytes_with_perms_now(area, area_size, "---p");
    EXPECT_EQ(none, area_size - seg_span + guard_bytes_in(area, area_size))
        << "only the block handed out is committed (not the rest of its arena block); new arena:"
        << perms_of(area, area_size);
    EXPECT_EQ(calls_after - calls_before, 1) << "the block is committed when handed out";
    // the next block: one more commit, one block less PROT_NONE
    int64_t c0 = commit_calls();
    int64_t committed0 = mi::os_counters.committed.load();
    void* q = mi_malloc(3 * MiB);
    ASSERT_NE(q, nullptr);
    blocks.push_back(q);
    size_t sz = 0;
    EXPECT_EQ(arena_of(q, &sz), area);
    EXPECT_EQ(commit_calls() - c0, 1);
    EXPECT_GE(mi::os_counters.committed.load() - committed0, static_cast<int64_t>(3 * MiB));
    EXPECT_LE(mi::os_counters.committed.load() - committed0, static_cast<int64_t>(seg_span));
    const size_t none2 = bytes_with_perms_now(area, area_size, "---p");
    EXPECT_EQ(none2, area_size - 2 * seg_span + guard_bytes_in(area, area_size)) << perms_of(area, area_size);
  }
  for (void* p : blocks) mi_free(p);
}

std::vector<std::string> arena_env(const char* mode) {
  return {std::string("MIMALLOC_ARENA_EAGER_COMMIT=") + mode, "MIMALLOC_RESERVE_OS_MEMORY=32MiB",
          "MIMALLOC_ARENA_RESERVE=64MiB", "MIMALLOC_PURGE_DELAY=-1"};
}

TEST(Commit, ArenaEagerCommit0ReservesAndCommitsPerBlock) {
  unit::ChildResult r = unit::run_child("CommitChild.DISABLED_ArenaEagerCommit", arena_env("0"));
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(Commit, ArenaEagerCommit1CommitsAtOnce) {
  unit::ChildResult r = unit::run_child("CommitChild.DISABLED_ArenaEagerCommit", arena_env("1"));
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(Commit, ArenaEagerCommit2FollowsTheKernelsOvercommit) {
  const long overcommit = numa_test::read_long("/proc/sys/vm/overcommit_memory", 0);
  EXPECT_EQ(mi::os_has_overcommit(), overcommit != 2) << "overcommit_memory = " << overcommit;
  // the child checks against os_has_overcommit(): as mode 1 here unless overcommit_memory is 2
  unit::ChildResult r = unit::run_child("CommitChild.DISABLED_ArenaEagerCommit", arena_env("2"));
  EXPECT_EQ(r.status, 0) << r.describe();
}

// --- eager_commit / eager_commit_delay ---------------------------------------------
// Run with MIMALLOC_ARENA_EAGER_COMMIT=0 (so that arena blocks are committed
// only when a segment asks), MIMALLOC_PURGE_DELAY=-1 and the eager_commit
// options to check. A fresh thread allocates medium blocks (32 per 4 MiB
// segment) until it has 4 segments; each segment is looked at when it appears.
struct SegSeen {
  mi::Segment* seg;
  bool initially_committed;
  size_t committed_bytes;
  uint64_t commit_mask;
  int64_t commit_calls;  // when it appeared
};

TEST(CommitChild, DISABLED_EagerCommitDelay) {
  const bool eager = mi_option_is_enabled(mi_option_eager_commit);
  const long delay = mi_option_get(mi_option_eager_commit_delay);
  ASSERT_EQ(mi_option_get(mi_option_arena_eager_commit), 0);
  std::vector<SegSeen> seen;
  std::vector<void*> blocks;
  seen.reserve(16);
  blocks.reserve(1024);
  int64_t calls_end = 0;
  std::thread([&] {
    while (seen.size() < 4 && blocks.size() < 1000) {
      void* p = mi_malloc(120 * 1024);
      if (p == nullptr) break;
      blocks.push_back(p);
      mi::Segment* s = mi::segmap_segment_of(p);
      if (seen.empty() || seen.back().seg != s) {
        seen.push_back(
            SegSeen{s, s->memid.initially_committed, s->committed_bytes, s->commit_mask.load(), commit_calls()});
      }
    }
    calls_end = commit_calls();
    for (void* p : blocks) mi_free(p);
  }).join();
  ASSERT_EQ(seen.size(), 4u);
  for (size_t k = 0; k < seen.size(); k++) {
    const SegSeen& s = seen[k];
    const bool want_at_once = eager && static_cast<long>(k) >= delay;
    SCOPED_TRACE("segment " + std::to_string(k + 1) + " of the thread (eager_commit " + std::to_string(eager) +
                 ", eager_commit_delay " + std::to_string(delay) + ")");
    EXPECT_EQ(s.initially_committed, want_at_once);
    if (want_at_once) {
      EXPECT_EQ(s.committed_bytes, mi::SEGMENT_SIZE);
    } else {
      EXPECT_LT(s.committed_bytes, mi::SEGMENT_SIZE / 2) << "page by page: the header and the first page";
    }
    // commits while the segment filled up (until the next one appeared; that
    // one's own first commit included): 8 pages one by one, or none
    const int64_t next = (k + 1 < seen.size()) ? seen[k + 1].commit_calls : calls_end;
    const int64_t calls = next - s.commit_calls;
    if (k + 1 < seen.size()) {
      if (want_at_once) {
        EXPECT_EQ(calls, 1) << "a committed segment needs no commit per page (1: the next segment's block)";
      } else {
        EXPECT_GE(calls, 7) << "a segment committed page by page commits each page when it is used";
      }
    }
  }
}

std::vector<std::string> eager_env(const char* eager, const char* delay) {
  return {"MIMALLOC_ARENA_EAGER_COMMIT=0", "MIMALLOC_PURGE_DELAY=-1", std::string("MIMALLOC_EAGER_COMMIT=") + eager,
          std::string("MIMALLOC_EAGER_COMMIT_DELAY=") + delay};
}

TEST(Commit, EagerCommitDelayCommitsTheFirstSegmentsPageByPage) {
  MI_SKIP_IF_ASAN_STARTS_THREADS();  // counts the segments of a fresh thread from its first allocation
  for (const char* delay : {"0", "1", "2"}) {
    unit::ChildResult r = unit::run_child("CommitChild.DISABLED_EagerCommitDelay", eager_env("1", delay));
    EXPECT_EQ(r.status, 0) << "eager_commit_delay=" << delay << "\n" << r.describe();
  }
}

TEST(Commit, EagerCommitOffCommitsEverySegmentPageByPage) {
  unit::ChildResult r = unit::run_child("CommitChild.DISABLED_EagerCommitDelay", eager_env("0", "1"));
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
