// Unit tests of 1 GiB huge pages (lib/arena reserve_huge_os_pages, lib/os
// os_alloc_huge_pages) with real pages of the kernel's pool:
//  - MIMALLOC_RESERVE_HUGE_OS_PAGES=1 at start-up: one pinned 1 GiB arena,
//    mi_numa_stats(0).huge_pages_reserved == 1, the pool's free pages drop by
//    one while the process runs, and its segments are carved from that arena;
//  - mi_reserve_huge_os_pages_at(1, 0, 1000) at run time: the same, on node 0;
//  - when the kernel has no 1 GiB page: one warning with the numbers, 2 MiB or
//    regular pages reserved instead, and the program runs on;
//  - MIMALLOC_DESTROY_ON_EXIT=1 on a 1 GiB page with threads still allocating
//    at exit: the process exits 0 with its buffered output whole.
//
// Reserving pages needs root (writing
// /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages); those tests skip
// otherwise, and when the kernel cannot find 1 GiB of contiguous memory. The
// pool is ALWAYS given back: an RAII guard in each test, and a global test
// environment that restores the value found at start-up when the binary ends.
// The pool's 1 GiB pages are counted in that directory's free_hugepages and
// resv_hugepages (/proc/meminfo's HugePages_* count only the default 2 MiB
// size).
#include <gtest/gtest.h>
#include <mimalloc-numa.h>
#include <mimalloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "arena/arena.h"
#include "common/stats.h"
#include "numa_util.h"
#include "os/os.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using numa_test::GiB;
using numa_test::KiB;
using numa_test::MiB;

const std::string kPool = "/sys/kernel/mm/hugepages/hugepages-1048576kB/";

long pool_nr() { return numa_test::read_long(kPool + "nr_hugepages"); }
long pool_free() { return numa_test::read_long(kPool + "free_hugepages"); }
long pool_resv() { return numa_test::read_long(kPool + "resv_hugepages"); }
bool pool_exists() { return pool_nr() >= 0; }
bool pool_set(long n) { return numa_test::write_long(kPool + "nr_hugepages", n); }

// Restores nr_hugepages when the test ends, however it ends.
class PoolGuard {
 public:
  PoolGuard() : saved_(pool_nr()) {}
  ~PoolGuard() {
    if (changed_ && pool_nr() != saved_) pool_set(saved_);
  }
  PoolGuard(const PoolGuard&) = delete;
  PoolGuard& operator=(const PoolGuard&) = delete;
  // Sets the pool size; returns what the kernel gave.
  long set(long n) {
    changed_ = true;
    pool_set(n);
    return pool_nr();
  }
  long saved() const { return saved_; }

 private:
  long saved_;
  bool changed_ = false;
};

// Second net: whatever happens in the tests, the pool size found at start-up
// is written back when the (parent) test binary ends.
class PoolEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!unit::is_child()) saved_ = pool_nr();
  }
  void TearDown() override {
    if (unit::is_child() || saved_ < 0) return;
    if (pool_nr() != saved_ && !pool_set(saved_)) {
      fprintf(stderr, "hugepage_test: could not give the 1 GiB pages back: write %ld to %snr_hugepages\n", saved_,
              kPool.c_str());
    }
  }

 private:
  long saved_ = -1;
};
::testing::Environment* const pool_environment = ::testing::AddGlobalTestEnvironment(new PoolEnvironment);

// Skips unless this process may change the pool; makes `want_free` pages
// free (at most 2 added). Returns false (after GTEST_SKIP) if it cannot.
#define NEED_FREE_HUGE_PAGES(guard, want_free)                                                                \
  do {                                                                                                        \
    if (!pool_exists()) GTEST_SKIP() << "the kernel has no 1 GiB page pool (" << kPool << ")";                \
    if (geteuid() != 0) GTEST_SKIP() << "needs root to reserve 1 GiB pages in " << kPool << "nr_hugepages";   \
    long missing_ = (want_free)-pool_free();                                                                  \
    if (missing_ > 0) {                                                                                       \
      if (missing_ > 2) missing_ = 2;                                                                         \
      (guard).set((guard).saved() + missing_);                                                                \
    }                                                                                                         \
    if (pool_free() < (want_free))                                                                            \
      GTEST_SKIP() << "the kernel gave no 1 GiB page (nr_hugepages " << pool_nr() << ", free " << pool_free() \
                   << "): not enough contiguous free memory";                                                 \
  } while (0)

// Whether the mapping holding p is of 1 GiB pages (/proc/self/smaps).
bool mapped_with_1gib_pages(const void* p) {
  FILE* f = fopen("/proc/self/smaps", "r");
  if (f == nullptr) return false;
  char line[512];
  bool in_vma = false, huge = false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  while (fgets(line, sizeof(line), f) != nullptr) {
    unsigned long lo = 0, hi = 0;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      if (in_vma) break;  // past the one we wanted
      in_vma = a >= lo && a < hi;
    } else if (in_vma && strncmp(line, "KernelPageSize:", 15) == 0) {
      huge = strtoul(line + 15, nullptr, 10) == 1048576;
    }
  }
  fclose(f);
  return huge;
}

// The arena of exactly 1 GiB, aligned to 1 GiB, on 1 GiB pages (0 if none):
// the default arena of regular pages is 1 GiB too, and now and then 1 GiB
// aligned (a flaky failure of ReserveAtRunTime took it for the huge one).
mi_arena_id_t find_huge_arena(uint8_t** start) {
  for (mi_arena_id_t id = 1; id <= static_cast<mi_arena_id_t>(mi::ARENA_MAX_COUNT); id++) {
    size_t size = 0;
    void* p = mi_arena_area(id, &size);
    if (p == nullptr) break;
    if (size == GiB && reinterpret_cast<uintptr_t>(p) % GiB == 0 && mapped_with_1gib_pages(p)) {
      *start = static_cast<uint8_t*>(p);
      return id;
    }
  }
  return 0;
}

bool inside(const void* p, const uint8_t* start, size_t size) {
  return static_cast<const uint8_t*>(p) >= start && static_cast<const uint8_t*>(p) < start + size;
}

// --- at start-up -------------------------------------------------------------------
// Run with MIMALLOC_RESERVE_HUGE_OS_PAGES=1 and MI_HUGE_FREE_BEFORE = the
// pool's free pages before the child started.
TEST(HugePageChild, DISABLED_ReservedAtStartup) {
  const long before = atol(getenv("MI_HUGE_FREE_BEFORE"));
  // mapped and reserved (resv), not necessarily faulted in yet
  EXPECT_EQ(pool_free() - pool_resv(), before - 1) << "free " << pool_free() << ", resv " << pool_resv();
  mi_numa_stats_t st;
  ASSERT_EQ(mi_numa_stats(0, &st), 0);
  EXPECT_EQ(st.huge_pages_reserved, 1u);
  EXPECT_EQ(mi::os_counters.huge_pages_reserved.load(), 1);
  EXPECT_EQ(mi::stats_global.huge_page_fallbacks.load(), 0);
  uint8_t* start = nullptr;
  const mi_arena_id_t id = find_huge_arena(&start);
  ASSERT_NE(id, 0) << "no 1 GiB arena";
  // segments are carved from it: small, large and huge blocks
  std::vector<void*> blocks = {mi_malloc(100), mi_malloc(1 * MiB), mi_malloc(8 * MiB)};
  for (void* p : blocks) {
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(inside(p, start, GiB)) << p << " is not in the 1 GiB arena at " << static_cast<void*>(start);
    mi::Segment* s = mi::segmap_segment_of(p);
    EXPECT_TRUE(s->memid.is_pinned && s->memid.is_large);
    EXPECT_LE(s->memid.numa_node, 0) << "one node here: node 0, or -1 (not bound)";
    EXPECT_EQ(mi_numa_node_of(p), 0) << "one node here: every block is node 0's";
  }
  EXPECT_EQ(pool_free(), before - 1) << "the page is in use";
  ASSERT_EQ(mi_numa_stats(0, &st), 0);
  EXPECT_GE(st.in_use, 16 * MiB) << "the segments count as in use";
  EXPECT_EQ(st.huge_pages_in_use, 1u);
  EXPECT_EQ(mi_arena_area(id + 1, nullptr), nullptr) << "no other arena was needed";
  for (void* p : blocks) mi_free(p);
}

TEST(HugePage, ReserveOneGiBPageAtStartup) {
  PoolGuard guard;
  NEED_FREE_HUGE_PAGES(guard, 1);
  const long before = pool_free();
  unit::ChildResult r =
      unit::run_child("HugePageChild.DISABLED_ReservedAtStartup",
                      {"MIMALLOC_RESERVE_HUGE_OS_PAGES=1", "MI_HUGE_FREE_BEFORE=" + std::to_string(before)});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.err, "") << "no warning when the page is there";
  EXPECT_EQ(pool_free(), before) << "the page went back to the pool when the child ended";
}

// --- at run time: mi_reserve_huge_os_pages_at ------------------------------------
TEST(HugePageChild, DISABLED_ReservedAtRunTime) {
  const long before = atol(getenv("MI_HUGE_FREE_BEFORE"));
  mi_numa_stats_t st;
  ASSERT_EQ(mi_numa_stats(0, &st), 0);
  EXPECT_EQ(st.huge_pages_reserved, 0u);
  ASSERT_EQ(mi_reserve_huge_os_pages_at(1, 0, 1000), 0);
  ASSERT_EQ(mi_numa_stats(0, &st), 0);
  EXPECT_EQ(st.huge_pages_reserved, 1u);
  EXPECT_EQ(pool_free() - pool_resv(), before - 1);
  uint8_t* start = nullptr;
  ASSERT_NE(find_huge_arena(&start), 0);
  // a new segment comes from it (pinned arenas first), bound to node 0
  void* p = mi_malloc(8 * MiB);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(inside(p, start, GiB));
  EXPECT_EQ(mi_numa_node_of(p), 0);
  EXPECT_EQ(pool_free(), before - 1);
  ASSERT_EQ(mi_numa_stats(0, &st), 0);
  EXPECT_EQ(st.huge_pages_in_use, 1u);
  EXPECT_GE(st.in_use, 12 * MiB);
  // no more pages: ENOMEM, nothing reserved (one warning)
  if (before == 1) {
    EXPECT_EQ(mi_reserve_huge_os_pages_at(1, 0, 100), ENOMEM);
    ASSERT_EQ(mi_numa_stats(0, &st), 0);
    EXPECT_EQ(st.huge_pages_reserved, 1u);
  }
  mi_free(p);
}

TEST(HugePage, ReserveAtRunTime) {
  PoolGuard guard;
  NEED_FREE_HUGE_PAGES(guard, 1);
  const long before = pool_free();
  unit::ChildResult r =
      unit::run_child("HugePageChild.DISABLED_ReservedAtRunTime", {"MI_HUGE_FREE_BEFORE=" + std::to_string(before)});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(pool_free(), before);
}

// --- fork() with the page in use ------------------------------------------------------
// The child of a process holding a private 1 GiB page may read and write its
// heap: without the copy to regular pages (lib/arena: fork) its first write
// needs a second free 1 GiB page, and with none the kernel kills it (SIGBUS);
// even reads failed now and then on the 6.18 kernel here.
// Run with MIMALLOC_RESERVE_HUGE_OS_PAGES=1 and exactly one free page.
TEST(HugePageChild, DISABLED_ForkedChildWritesToTheHeap) {
  uint8_t* start = nullptr;
  ASSERT_NE(find_huge_arena(&start), 0) << "no 1 GiB arena";
  EXPECT_EQ(pool_free() - pool_resv(), 0) << "the pool has no page left for a copy-on-write of the 1 GiB page";
  std::vector<char*> blocks;
  for (size_t size : {size_t{100}, size_t{5000}, 200 * KiB, 6 * MiB}) {
    char* p = static_cast<char*>(mi_malloc(size));
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(inside(p, start, GiB));
    memset(p, 'p', size);
    blocks.push_back(p);
  }
  fflush(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) {
    // the child: the parent's blocks are there, and it can write, free and allocate
    int bad = 0;
    for (char* p : blocks) bad += (p[0] != 'p') ? 1 : 0;
    for (char* p : blocks) p[0] = 'c';
    for (char* p : blocks) mi_free(p);
    for (int i = 0; i < 1000; i++) {
      char* q = static_cast<char*>(mi_malloc(static_cast<size_t>(16 + i * 97)));
      if (q == nullptr) bad++;
      else memset(q, 'c', static_cast<size_t>(16 + i * 97));
      mi_free(q);
    }
    mi_numa_stats_t st;
    if (mi_numa_stats(0, &st) != 0 || st.huge_pages_reserved != 0) bad += 100;  // the arena is on regular pages now
    _exit(bad == 0 ? 0 : 10 + (bad > 100 ? 100 : bad));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_FALSE(WIFSIGNALED(status)) << "the child died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  // the parent's pages are its own: untouched by the child's writes, still the 1 GiB page
  for (char* p : blocks) EXPECT_EQ(p[0], 'p');
  mi_numa_stats_t st;
  ASSERT_EQ(mi_numa_stats(0, &st), 0);
  EXPECT_EQ(st.huge_pages_reserved, 1u);
  for (char* p : blocks) mi_free(p);
}

TEST(HugePage, ForkedChildWritesToTheHeap) {
  PoolGuard guard;
  NEED_FREE_HUGE_PAGES(guard, 1);
  if (pool_free() > 1) guard.set(pool_nr() - (pool_free() - 1));  // exactly one free: the one the process takes
  if (pool_free() != 1) GTEST_SKIP() << "could not leave exactly one free 1 GiB page (free " << pool_free() << ")";
  const long before = pool_free();
  unit::ChildResult r = unit::run_child("HugePageChild.DISABLED_ForkedChildWritesToTheHeap",
                                        {"MIMALLOC_RESERVE_HUGE_OS_PAGES=1", "MIMALLOC_VERBOSE=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.err.find("is on regular pages in the child"), std::string::npos) << r.err;
  EXPECT_EQ(pool_free(), before);
}

// --- too few pages --------------------------------------------------------------------
TEST(HugePageChild, DISABLED_Shortfall) {
  mi_numa_stats_t st;
  ASSERT_EQ(mi_numa_stats(0, &st), 0);
  EXPECT_EQ(st.huge_pages_reserved, 0u);
  EXPECT_EQ(mi::os_counters.huge_pages_reserved.load(), 0);
  EXPECT_EQ(mi::stats_global.huge_page_fallbacks.load(), 1) << "one page asked for and not given";
  // the replacement: 1 GiB of 2 MiB or regular pages in an arena
  size_t size1 = 0;
  ASSERT_NE(mi_arena_area(1, &size1), nullptr);
  EXPECT_EQ(size1, GiB);
  EXPECT_GE(st.reserved, GiB);
  // the program runs on
  std::vector<void*> blocks;
  for (size_t size : {size_t{16}, size_t{5000}, 300 * KiB, 3 * MiB}) {
    void* p = mi_malloc(size);
    ASSERT_NE(p, nullptr);
    memset(p, 7, size);
    blocks.push_back(p);
  }
  for (void* p : blocks) mi_free(p);
}

TEST(HugePage, ShortfallWarnsOnceAndUsesOtherPages) {
  PoolGuard guard;
  if (pool_exists() && pool_free() != 0) {
    if (geteuid() != 0) GTEST_SKIP() << "the pool has free 1 GiB pages and only root can empty it";
    guard.set(pool_nr() - pool_free());  // no free page left
    if (pool_free() != 0) GTEST_SKIP() << "could not empty the 1 GiB page pool";
  }
  unit::ChildResult r = unit::run_child("HugePageChild.DISABLED_Shortfall", {"MIMALLOC_RESERVE_HUGE_OS_PAGES=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
  // exactly one warning, with the numbers
  std::vector<std::string> warnings;
  size_t pos = 0;
  while ((pos = r.err.find("mimalloc-numa: warning: ", pos)) != std::string::npos) {
    size_t end = r.err.find('\n', pos);
    warnings.push_back(r.err.substr(pos, end - pos));
    pos = end;
  }
  ASSERT_EQ(warnings.size(), 1u) << r.err;
  const std::string& w = warnings[0];
  const char* head = "reserve_huge_os_pages: the kernel gave 0 of the 1 pages of 1 GiB asked for; reserved ";
  size_t at = w.find(head);
  ASSERT_NE(at, std::string::npos) << w;
  unsigned long large = 0, regular = 0;
  const char* numbers = w.c_str() + at + strlen(head);
  ASSERT_EQ(sscanf(numbers, "%lu MiB in 2 MiB pages and %lu MiB in regular pages", &large, &regular), 2) << w;
  EXPECT_EQ(large + regular, 1024u) << "1 GiB replaced in all: " << w;
}

// --- destroy_on_exit on a 1 GiB page, threads still running at exit -------------
// Run with MIMALLOC_RESERVE_HUGE_OS_PAGES=1 and MIMALLOC_DESTROY_ON_EXIT=1.
// Prints "huge arena: yes|no", then 1000 lines through stdio (stdout is a file
// here: they sit in stdio's buffer, our memory, until exit() flushes it after
// every destructor), and leaves 4 threads allocating when the process exits.
TEST(HugePageChild, DISABLED_DestroyOnExitWithThreads) {
  uint8_t* start = nullptr;
  printf("huge arena: %s\n", find_huge_arena(&start) != 0 ? "yes" : "no");
  static std::atomic<int> started{0};
  for (int t = 0; t < 4; t++) {
    std::thread([] {
      started.fetch_add(1);
      for (unsigned i = 0;; i++) {
        void* v[32];
        for (size_t k = 0; k < 32; k++) v[k] = mi_malloc(16 + (i * 7919 + k * 104729) % 30000);
        for (void* p : v) mi_free(p);
      }
    }).detach();
  }
  while (started.load() < 4) {
  }
  for (int i = 0; i < 1000; i++) printf("line %d of the buffered output\n", i);
}

// The child ends whole: exit status 0, every line out, and the page is back
// in the pool. destroy_on_exit crashed every program at exit (SIGSEGV), and
// with that fixed, unmapping the arenas in the destructor lost the buffered
// output and crashed the threads (tests/programs/destroy_on_exit.sh runs the
// same with programs under LD_PRELOAD, on these pages where the pool has them).
TEST(HugePage, DestroyOnExitWithThreadsOnAOneGiBPage) {
  PoolGuard guard;
  NEED_FREE_HUGE_PAGES(guard, 1);
  const long before = pool_free();
  unit::ChildResult r = unit::run_child("HugePageChild.DISABLED_DestroyOnExitWithThreads",
                                        {"MIMALLOC_RESERVE_HUGE_OS_PAGES=1", "MIMALLOC_DESTROY_ON_EXIT=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.out.find("huge arena: yes\n"), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("line 999 of the buffered output\n"), std::string::npos) << "output lost\n" << r.describe();
  EXPECT_EQ(pool_free(), before) << "the page went back to the pool when the child ended";
}

}  // namespace
