// Tests of the published statistics area (lib/api/stats_area, stats_publish)
// from the inside: the layout of include/mimalloc-numa-stats.h, the sequence
// lock under a writer (read with tests/api/publish/area_reader.h, the
// header-only reader a monitoring tool uses), and the figures against the
// snapshot the exit report reads and the counters kept for it. The program's
// view (the file, stale files, fork, set-user-ID) is tests/api/publish.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "../../include/mimalloc-numa-stats.h"
#include "../../include/mimalloc.h"
#include "../api/publish/area_reader.h"
#include "api/stats_area.h"
#include "api/stats_publish.h"
#include "api/stats_snapshot.h"
#include "heap/heap.h"
#include "heap/heap_stats.h"
#include "heap/page.h"
#include "heap/size_class.h"

namespace {

// The layout is a contract with readers built separately (mi-stat, agents):
// the header's fields sit where version 1 put them.
static_assert(offsetof(mi_stats_area_t, magic) == 0);
static_assert(offsetof(mi_stats_area_t, version) == 8);
static_assert(offsetof(mi_stats_area_t, size) == 12);
static_assert(offsetof(mi_stats_area_t, seq) == 16);
static_assert(offsetof(mi_stats_area_t, pid) == 24);
static_assert(offsetof(mi_stats_area_t, program) == 72);
static_assert(offsetof(mi_stats_area_t, threads) == 136);
static_assert(offsetof(mi_stats_area_t, totals) == 232);
static_assert(offsetof(mi_stats_area_t, node_count) == 312);
static_assert(offsetof(mi_stats_area_t, nodes) == 328);
static_assert(sizeof(mi_stats_area_memory_t) == 80 && sizeof(mi_stats_area_bin_t) == 32);
static_assert(offsetof(mi_stats_area_t, bins) == 328 + 80 * MI_STATS_AREA_NODES_MAX);
static_assert(sizeof(mi_stats_area_t) == 328 + 80 * MI_STATS_AREA_NODES_MAX + 32 * MI_STATS_AREA_BINS_MAX);
static_assert(sizeof(mi_stats_area_t) % 8 == 0, "copied as 8-byte words");
static_assert(MI_STATS_AREA_MAGIC == 0x3154415453494d4dULL && MI_STATS_AREA_VERSION == 1);

TEST(StatsArea, FillSetsTheHeader) {
  static mi_stats_area_t a;
  mi::stats_area_fill(&a, 7, 250);
  EXPECT_EQ(a.magic, MI_STATS_AREA_MAGIC);
  EXPECT_EQ(a.version, static_cast<uint32_t>(MI_STATS_AREA_VERSION));
  EXPECT_EQ(a.size, sizeof(mi_stats_area_t));
  EXPECT_EQ(a.nodes_offset, offsetof(mi_stats_area_t, nodes));
  EXPECT_EQ(a.bins_offset, offsetof(mi_stats_area_t, bins));
  EXPECT_EQ(a.seq, 0u);
  EXPECT_EQ(a.pid, static_cast<int64_t>(getpid()));
  EXPECT_EQ(a.start_ticks, mi::stats_start_ticks());
  EXPECT_GT(a.start_ticks, 0u);
  EXPECT_EQ(a.updates, 7);
  EXPECT_EQ(a.interval_ms, 250);
  EXPECT_STREQ(a.program, "unit_stats_publ");  // comm: 15 bytes of unit_stats_publish
  EXPECT_GE(a.node_count, 1u);
  EXPECT_EQ(a.bin_count, static_cast<uint32_t>(mi::BIN_HUGE + 1));
  EXPECT_LE(a.start_unix_ms, a.updated_unix_ms);
}

// The allocations of a size class as this thread would count them exactly:
// the area's figure less the blocks waiting in this thread's free lists of
// that class, which the area counts ahead (only the owner may walk them).
int64_t exact_allocations(const mi_stats_area_t& a, size_t bin) {
  int64_t in_free[mi::BIN_HUGE + 1];
  mi::heap_stats_settle(mi::heap_get_default()->tld, in_free);
  return a.bins[bin].allocations - in_free[bin];
}

// A quiet program: the area has the snapshot's figures, and the size class's
// live blocks and allocations count what this test did.
TEST(StatsArea, FiguresAgreeWithTheSnapshot) {
  std::vector<void*> v;
  v.reserve(5000);
  const size_t bin = mi::bin_of_size(200);
  static mi_stats_area_t a;
  mi::stats_area_fill(&a, 1, 0);
  const int64_t before = a.bins[bin].allocations;
  const int64_t before_exact = exact_allocations(a, bin);
  for (int i = 0; i < 5000; i++) v.push_back(mi_malloc(200));
  mi::stats_area_fill(&a, 1, 0);
  mi::MemorySnapshot snap;
  mi::stats_snapshot(&snap);
  EXPECT_EQ(a.totals.in_use, snap.rows[mi::ROW_TOTAL].blocks);
  EXPECT_EQ(a.totals.committed, snap.rows[mi::ROW_TOTAL].committed);
  EXPECT_EQ(a.totals.reserved, snap.rows[mi::ROW_TOTAL].reserved);
  EXPECT_EQ(a.nodes[0].in_use, snap.rows[0].blocks);
  EXPECT_EQ(a.metadata_committed, snap.rows[mi::ROW_META].committed);
  EXPECT_GE(a.bins[bin].live_blocks, 5000);
  EXPECT_EQ(a.bins[bin].live_bytes, a.bins[bin].live_blocks * a.bins[bin].block_size);
  // Counted by the thread itself, not merged yet: the publisher reads them
  // live, counted when the slow path filled a free list (docs/stats-json.md):
  // at least the allocations, ahead by the blocks still in the free lists.
  EXPECT_GE(a.bins[bin].allocations - before, 5000);
  EXPECT_EQ(exact_allocations(a, bin) - before_exact, 5000);
  // a page of 200-byte blocks holds some 320: never ahead by more than a few pages
  EXPECT_LE(a.bins[bin].allocations - before, 5000 + 4 * static_cast<int64_t>(mi::SMALL_PAGE_SIZE / 200));
  for (void* p : v) mi_free(p);
}

// A thread that exits leaves exact figures: the blocks counted ahead in its
// free lists are taken back when its pages leave it.
TEST(StatsArea, AllocationsAreExactAtThreadExit) {
  const size_t bin = mi::bin_of_size(200);
  static mi_stats_area_t a;
  mi::stats_area_fill(&a, 1, 0);
  const int64_t before_exact = exact_allocations(a, bin);
  std::thread([] {
    std::vector<void*> v;
    v.reserve(777);
    for (int i = 0; i < 777; i++) v.push_back(mi_malloc(200));
    for (void* p : v) mi_free(p);
  }).join();
  mi::stats_area_fill(&a, 1, 0);
  EXPECT_EQ(exact_allocations(a, bin) - before_exact, 777);
}

// Blocks freed by another thread count as remote frees of the node their
// segment is on once the owner collects them: those in its pages'
// thread-free lists, and the first of each full page, which comes through
// the heap's delayed list (20000 blocks fill some 15 pages).
TEST(StatsArea, RemoteFreesAreCounted) {
  static mi_stats_area_t a;
  mi::stats_area_fill(&a, 1, 0);
  const int64_t before = a.totals.remote_frees;
  std::vector<void*> v;
  v.reserve(20000);
  for (int i = 0; i < 20000; i++) v.push_back(mi_malloc(48));
  std::thread([&] {
    for (void* p : v) mi_free(p);
  }).join();
  mi_collect(true);  // the owner takes the other thread's frees
  mi::stats_area_fill(&a, 1, 0);
  EXPECT_GE(a.totals.remote_frees - before, 20000);
  EXPECT_LE(a.totals.remote_frees - before, 20010);  // and a block or two of std::thread's
  if (a.node_count == 1) {
    EXPECT_EQ(a.totals.remote_frees, a.nodes[0].remote_frees);
  }
}

// With statistics published, blocks the owner frees count as local frees
// once their page's local free list is collected (here: by the allocations
// that reuse them, and mi_collect). Not remote ones.
TEST(StatsArea, LocalFreesAreCountedWhilePublishing) {
  mi::heap_count_local_frees(true);
  static mi_stats_area_t a;
  mi::stats_area_fill(&a, 1, 0);
  const int64_t local = a.totals.local_frees, remote = a.totals.remote_frees;
  std::vector<void*> v;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 3000; i++) v.push_back(mi_malloc(72));
    for (void* p : v) mi_free(p);
    v.clear();
  }
  mi_collect(true);
  mi::stats_area_fill(&a, 1, 0);
  // 12000 freed, and a few blocks of the vector's and the test framework's
  EXPECT_GE(a.totals.local_frees - local, 12000);
  EXPECT_LE(a.totals.local_frees - local, 12500);
  EXPECT_EQ(a.totals.remote_frees, remote);
  mi::heap_count_local_frees(false);
}

// The local frees of a page freed as it empties (page_free, not kept for
// reuse: other pages of the size class remain) are counted without walking
// its local free list, from the blocks in use and in its free list; the
// pages here hold both lists (the free list extended but not used up) when
// they are freed. Exact: a thread of its own, no other frees meanwhile.
TEST(StatsArea, LocalFreesOfFreedPagesAreExact) {
  mi::heap_count_local_frees(true);
  int64_t counted = -1;
  std::thread([&counted] {
    static mi_stats_area_t a;
    static void* blocks[400];
    mi_free(mi_malloc(1000));  // the thread's heap set up
    mi_collect(true);
    mi::stats_area_fill(&a, 1, 0);
    const int64_t before = a.totals.local_frees;
    for (int round = 0; round < 3; round++) {
      for (void*& p : blocks) p = mi_malloc(1000);          // some 7 pages of 64 KiB
      for (int i = 0; i < 400; i += 2) mi_free(blocks[i]);  // in a different order: pages empty at the end
      for (int i = 1; i < 400; i += 2) mi_free(blocks[i]);
    }
    mi_collect(true);
    mi::stats_area_fill(&a, 1, 0);
    counted = a.totals.local_frees - before;
  }).join();
  EXPECT_EQ(counted, 1200);
  mi::heap_count_local_frees(false);
}

// Which directories the file may go in: a directory of ours must be ours
// and 0700 (root's own too: $XDG_RUNTIME_DIR of root), the shared one root's
// and sticky when world-writable; never a symbolic link.
TEST(StatsPublishDir, OwnerModeAndLinks) {
  char tmpl[] = "/tmp/stats-publish-dir-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string base = tmpl;
  auto usable = [](const std::string& path, bool ours) {
    const int fd = mi::stats_publish_open_dir(path.c_str(), ours);
    const int err = errno;
    if (fd >= 0) close(fd);
    return fd >= 0 ? 0 : err;
  };
  const std::string mine = base + "/mine";
  ASSERT_EQ(mkdir(mine.c_str(), 0700), 0);
  EXPECT_EQ(usable(mine, true), 0);  // ours, 0700 (as root: root's own)
  chmod(mine.c_str(), 0750);
  EXPECT_EQ(usable(mine, true), EPERM);  // others may look in
  chmod(mine.c_str(), 0700);
  const std::string link = base + "/link";
  ASSERT_EQ(symlink(mine.c_str(), link.c_str()), 0);
  EXPECT_EQ(usable(link, true), ENOTDIR);  // a symbolic link, even to a good directory
  const std::string file = base + "/file";
  close(open(file.c_str(), O_CREAT | O_WRONLY, 0600));
  EXPECT_EQ(usable(file, true), ENOTDIR);
  if (geteuid() == 0) {
    const std::string shared = base + "/shared";
    ASSERT_EQ(mkdir(shared.c_str(), 0755), 0);
    chmod(shared.c_str(), 01777);
    EXPECT_EQ(usable(shared, false), 0);  // root's, 1777
    chmod(shared.c_str(), 0777);
    EXPECT_EQ(usable(shared, false), EPERM);  // world-writable without the sticky bit
    ASSERT_EQ(chown(shared.c_str(), 65534, 65534), 0);
    chmod(shared.c_str(), 01777);
    EXPECT_EQ(usable(shared, false), EPERM);  // not root's
    ASSERT_EQ(chown(mine.c_str(), 65534, 65534), 0);
    EXPECT_EQ(usable(mine, true), EPERM);  // someone else's
    rmdir(shared.c_str());
  }
  unlink(file.c_str());
  unlink(link.c_str());
  rmdir(mine.c_str());
  rmdir(base.c_str());
}

// The sequence lock: a reader that follows the header's protocol never
// accepts a copy with words of two different writes. Every word of write k
// (but seq) is k.
TEST(StatsArea, ReaderNeverSeesATornArea) {
  static mi_stats_area_t shared;  // the "mapping"
  static mi_stats_area_t src;
  auto pattern = [](mi_stats_area_t* a, uint64_t k) {
    uint64_t* w = reinterpret_cast<uint64_t*>(a);
    for (size_t i = 0; i < sizeof(*a) / 8; i++) w[i] = k;
    a->magic = MI_STATS_AREA_MAGIC;  // so that area_copy takes it
    a->version = MI_STATS_AREA_VERSION;
    a->size = sizeof(*a);
    a->nodes_offset = offsetof(mi_stats_area_t, nodes);
    a->bins_offset = offsetof(mi_stats_area_t, bins);
    a->node_count = 1;
    a->bin_count = 1;
  };
  pattern(&src, 1);
  mi::stats_area_write(&shared, &src);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t k = 2; !stop.load(std::memory_order_relaxed); k++) {
      pattern(&src, k);
      mi::stats_area_write(&shared, &src);
    }
  });
  static mi_stats_area_t copy;
  long accepted = 0, torn = 0;
  const size_t seq_word = offsetof(mi_stats_area_t, seq) / 8;
  const size_t pid_word = offsetof(mi_stats_area_t, pid) / 8;
  for (int i = 0; i < 20000; i++) {
    if (area_copy(&shared, sizeof(shared), &copy, 1000000) != 0) continue;
    accepted++;
    const uint64_t* w = reinterpret_cast<const uint64_t*>(&copy);
    const uint64_t k = w[pid_word];
    for (size_t j = pid_word; j < sizeof(copy) / 8; j++) {
      if (j != seq_word && j != offsetof(mi_stats_area_t, node_count) / 8 &&
          j != offsetof(mi_stats_area_t, nodes_offset) / 8 && w[j] != k) {
        torn++;
        break;
      }
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(torn, 0);
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(shared.seq % 2, 0u);
}

}  // namespace
