// Unit tests of lib/common/stats: gauges (current / peak / total), the
// per-thread counters merged into the process totals (at thread exit and on
// mi_stats_merge), reset, and the printed report.
#include "common/stats.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "heap/heap.h"
#include "heap/size_class.h"
#include "os/os.h"
#include "unit_util.h"

namespace {

constexpr size_t MiB = 1024 * 1024;

TEST(Stats, GaugeCurrentPeakTotal) {
  mi::StatGauge g{};
  mi::stat_increase(g, 5);
  mi::stat_increase(g, 3);
  EXPECT_EQ(g.current.load(), 8);
  EXPECT_EQ(g.peak.load(), 8);
  EXPECT_EQ(g.total.load(), 8);
  mi::stat_decrease(g, 6);
  EXPECT_EQ(g.current.load(), 2);
  EXPECT_EQ(g.peak.load(), 8) << "the peak stays";
  EXPECT_EQ(g.total.load(), 8) << "the total counts increases only";
  mi::stat_increase(g, 4);
  EXPECT_EQ(g.current.load(), 6);
  EXPECT_EQ(g.peak.load(), 8);
  EXPECT_EQ(g.total.load(), 12);
  mi::stat_increase(g, 10);
  EXPECT_EQ(g.peak.load(), 16);
  std::atomic<int64_t> c{0};
  mi::stat_counter(c, 7);
  mi::stat_counter(c, -2);
  EXPECT_EQ(c.load(), 5);
}

TEST(Stats, GaugePeakUnderConcurrency) {
  mi::StatGauge g{};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; i++) {
        mi::stat_increase(g, 1);
        mi::stat_decrease(g, 1);
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(g.current.load(), 0);
  EXPECT_EQ(g.total.load(), 40000);
  EXPECT_GE(g.peak.load(), 1);
  EXPECT_LE(g.peak.load(), 4);
}

TEST(Stats, ThreadCountersAreMergedAtExit) {
  const size_t bin_small = mi::bin_of_size(48);    // a direct size: counted per heap by word size
  const size_t bin_mid = mi::bin_of_size(3000);    // counted in the thread's stats by bin
  const int64_t small0 = mi::stats_global.bin_malloc[bin_small].load();
  const int64_t mid0 = mi::stats_global.bin_malloc[bin_mid].load();
  const int64_t huge0 = mi::stats_global.bin_malloc[mi::BIN_HUGE].load();
  const int64_t huge_allocs0 = mi::stats_global.huge_allocs.load();
  const int64_t huge_bytes0 = mi::stats_global.huge_alloc_bytes.load();
  const int64_t extended0 = mi::stats_global.pages_extended.load();
  std::thread([] {
    std::vector<void*> v;
    for (int i = 0; i < 100; i++) v.push_back(mi_malloc(48));
    for (int i = 0; i < 30; i++) v.push_back(mi_malloc(3000));
    v.push_back(mi_malloc(5 * MiB));
    for (void* p : v) mi_free(p);
  }).join();
  EXPECT_EQ(mi::stats_global.bin_malloc[bin_small].load() - small0, 100);
  EXPECT_EQ(mi::stats_global.bin_malloc[bin_mid].load() - mid0, 30);
  EXPECT_EQ(mi::stats_global.bin_malloc[mi::BIN_HUGE].load() - huge0, 1);
  EXPECT_EQ(mi::stats_global.huge_allocs.load() - huge_allocs0, 1);
  EXPECT_EQ(mi::stats_global.huge_alloc_bytes.load() - huge_bytes0, static_cast<int64_t>(5 * MiB));
  EXPECT_GE(mi::stats_global.pages_extended.load() - extended0, 3);
}

TEST(Stats, MergeOnDemand) {
  mi::Heap* heap = mi::heap_get_default();
  const size_t bin = mi::bin_of_size(72);
  mi_stats_merge();
  const int64_t before = mi::stats_global.bin_malloc[bin].load();
  std::vector<void*> v;
  v.reserve(20);
  for (int i = 0; i < 20; i++) v.push_back(mi_malloc(72));
  EXPECT_GE(heap->malloc_count_direct[mi::wsize_of(72)], 20) << "counted per word size until merged";
  mi_stats_merge();
  EXPECT_EQ(heap->malloc_count_direct[mi::wsize_of(72)], 0) << "zeroed by the merge";
  EXPECT_EQ(mi::stats_global.bin_malloc[bin].load() - before, 20);
  for (void* p : v) mi_free(p);
}

TEST(Stats, SegmentAndPageGauges) {
  const int64_t segs = mi::stats_global.segments.current.load();
  const int64_t segs_total = mi::stats_global.segments.total.load();
  const int64_t huge = mi::stats_global.huge_bytes.current.load();
  void* p = mi_malloc(9 * MiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs + 1);
  EXPECT_EQ(mi::stats_global.segments.total.load(), segs_total + 1);
  EXPECT_GE(mi::stats_global.segments.peak.load(), segs + 1);
  EXPECT_GE(mi::stats_global.huge_bytes.current.load() - huge, static_cast<int64_t>(9 * MiB));
  mi_free(p);
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs);
  EXPECT_EQ(mi::stats_global.huge_bytes.current.load(), huge);
}

TEST(Stats, ResetKeepsCurrentValues) {
  void* p = mi_malloc(6 * MiB);
  mi_stats_merge();
  const int64_t segs = mi::stats_global.segments.current.load();
  const int64_t pages = mi::stats_global.pages.current.load();
  mi_stats_reset();
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs);
  EXPECT_EQ(mi::stats_global.segments.peak.load(), segs) << "the peak restarts from the current value";
  EXPECT_EQ(mi::stats_global.segments.total.load(), 0);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages);
  EXPECT_EQ(mi::stats_global.pages.total.load(), 0);
  for (size_t b = 0; b <= mi::BIN_HUGE; b++) EXPECT_EQ(mi::stats_global.bin_malloc[b].load(), 0) << b;
  EXPECT_EQ(mi::stats_global.huge_allocs.load(), 0);
  EXPECT_EQ(mi::os_counters.committed_peak.load(), mi::os_counters.committed.load());
  mi_free(p);
}

struct Text {
  std::string s;
};
void collect(const char* msg, void* arg) { static_cast<Text*>(arg)->s += msg; }

TEST(Stats, Report) {
  void* p = mi_malloc(5 * MiB);
  std::vector<void*> v;
  for (int i = 0; i < 10; i++) v.push_back(mi_malloc(200));
  mi_stats_merge();
  Text t;
  t.s.reserve(1 << 16);
  mi::stats_print(&collect, &t);
  for (const char* needle : {"mimalloc-numa 0.1.0 statistics", "reserved", "committed", "huge blocks", "segments",
                             "pages", "threads", "arenas:", "os calls:", "allocations by size class", "process:"}) {
    EXPECT_NE(t.s.find(needle), std::string::npos) << needle << " missing from:\n" << t.s;
  }
  EXPECT_NE(t.s.find("huge"), std::string::npos);
  // every line ends with a newline, nothing is cut
  EXPECT_EQ(t.s.back(), '\n');
  for (void* q : v) mi_free(q);
  mi_free(p);
}

TEST(Stats, ElapsedSinceStart) {
  const int64_t a = mi::stats_elapsed_ms();
  EXPECT_GE(a, 0);
  mi::stats_set_process_start();  // only the first call counts
  EXPECT_GE(mi::stats_elapsed_ms(), a);
}

}  // namespace
