// Unit tests of heap/migrate: a thread that moves to another NUMA node
// allocates on its new node from its next slow path on, and the pages it
// held on the old node are handed to that node's threads.
//
// In child processes on the fake topology two-nodes.xml (node 0: CPUs 0 and
// 2, node 1: CPUs 1 and 3; this machine's CPUs 0 and 1 fall in nodes 0 and
// 1), with MIMALLOC_ARENA_RESERVE=16MiB: the thread allocates 8 MiB of
// 16 B - 70 KiB blocks on CPU 0, is re-pinned to CPU 1 (sched_setaffinity),
// frees every other block (or the older half) and allocates 8 MiB more.
// mi_numa_node_of (the node of the block's segment's arena) must be 1 for
// >= 99% of the new blocks, and >= 99% of those under 1 KiB. Without the
// move handling, the new blocks refill the free slots of node-0 pages (every
// other block freed: about half of them).
#include <gtest/gtest.h>
#include <mimalloc-numa.h>
#include <mimalloc.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/stats.h"
#include "numa_util.h"
#include "segment/abandon.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using numa_test::MiB;

const size_t kSizes[] = {16, 48, 64, 200, 1000, 4000, 20000, 70000};

using numa_test::drain_unbound_arenas;

struct Blocks {
  std::vector<void*> p;
  std::vector<size_t> size;
};

void allocate(Blocks* b, size_t bytes) {
  size_t total = 0;
  for (size_t i = 0; total < bytes; i++) {
    size_t n = kSizes[i % (sizeof(kSizes) / sizeof(kSizes[0]))];
    void* p = mi_malloc(n);
    ASSERT_NE(p, nullptr);
    memset(p, static_cast<int>(n & 0xff), n);
    b->p.push_back(p);
    b->size.push_back(n);
    total += n;
  }
}

struct Share {
  size_t on = 0, all = 0, small_on = 0, small_all = 0;
  double pct() const { return all ? 100.0 * on / all : 0; }
  double small_pct() const { return small_all ? 100.0 * small_on / small_all : 0; }
};

Share share_on(const Blocks& b, int node) {
  Share s;
  for (size_t i = 0; i < b.p.size(); i++) {
    bool on = mi_numa_node_of(b.p[i]) == node;
    s.all++;
    s.on += on;
    if (b.size[i] < 1024) {
      s.small_all++;
      s.small_on += on;
    }
  }
  return s;
}

// numa_test::pin_to looks at the thread's current affinity, which excludes
// the other CPU once pinned.
bool repin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// The moving thread's work; pattern "alternate" or "older".
void move_and_allocate(const std::string& pattern) {
  ASSERT_TRUE(repin(0));
  sched_yield();
  ASSERT_EQ(sched_getcpu(), 0);
  Blocks first;
  allocate(&first, 8 * MiB);
  Share before = share_on(first, 0);
  ASSERT_GE(before.pct(), 99.0) << "before the move, on node 0";
  const int64_t moves_before = mi::stats_global.node_moves.load();

  ASSERT_TRUE(repin(1));
  sched_yield();
  ASSERT_EQ(sched_getcpu(), 1);
  std::vector<bool> kept(first.p.size(), true);
  for (size_t i = 0; i < first.p.size(); i++) {
    bool drop = (pattern == "alternate") ? (i % 2 == 1) : (i < first.p.size() / 2);
    if (drop) {
      mi_free(first.p[i]);
      kept[i] = false;
    }
  }
  Blocks second;
  allocate(&second, 8 * MiB);
  Share after = share_on(second, 1);
  EXPECT_GE(after.pct(), 99.0) << pattern << ": " << after.on << " of " << after.all << " blocks on node 1";
  EXPECT_GE(after.small_pct(), 99.0) << pattern << ": " << after.small_on << " of " << after.small_all
                                     << " blocks under 1 KiB on node 1";
  EXPECT_EQ(mi::stats_global.node_moves.load() - moves_before, 1);
  // the old node's pages with live blocks were abandoned to node 0's threads
  EXPECT_GT(mi::abandoned_count(), 0u);
  // ... and a thread on node 0 takes them over
  const size_t abandoned = mi::abandoned_count();
  std::vector<void*> other;
  size_t abandoned_then = abandoned;
  std::thread node0([&] {
    ASSERT_TRUE(repin(0));
    sched_yield();
    ASSERT_EQ(sched_getcpu(), 0);
    for (int i = 0; i < 4000; i++) other.push_back(mi_malloc(kSizes[i % 8]));
    abandoned_then = mi::abandoned_count();  // before this thread's exit abandons its own
  });
  node0.join();
  EXPECT_LT(abandoned_then, abandoned) << "no node-0 segment was reclaimed by a thread on node 0";
  // the blocks kept their contents, and all of them can be freed from here
  for (size_t i = 0; i < first.p.size(); i++) {
    if (!kept[i]) continue;
    const unsigned char* c = static_cast<const unsigned char*>(first.p[i]);
    ASSERT_EQ(c[0], first.size[i] & 0xff);
    ASSERT_EQ(c[first.size[i] - 1], first.size[i] & 0xff);
    mi_free(first.p[i]);
  }
  for (void* p : second.p) mi_free(p);
  for (void* p : other) mi_free(p);
}

void child(const std::string& pattern) {
  ASSERT_EQ(mi_numa_node_count(), 2);
  if (!numa_test::cpu_allowed(0) || !numa_test::cpu_allowed(1)) GTEST_SKIP() << "needs CPUs 0 and 1";
  std::vector<void*> held = drain_unbound_arenas();
  std::thread t([&] { move_and_allocate(pattern); });
  t.join();
  for (void* p : held) mi_free(p);
}

TEST(NumaMigrateChild, DISABLED_FreeEveryOther) { child("alternate"); }
TEST(NumaMigrateChild, DISABLED_FreeOlderHalf) { child("older"); }

void run(const std::string& test) {
  if (!numa_test::hwloc_loadable()) GTEST_SKIP() << "libhwloc.so.15 cannot be loaded: no fake topology";
  if (!numa_test::cpu_allowed(0) || !numa_test::cpu_allowed(1)) GTEST_SKIP() << "needs CPUs 0 and 1";
  unit::ChildResult r = unit::run_child("NumaMigrateChild." + test,
                                        {numa_test::xml_env("two-nodes.xml"), "MIMALLOC_ARENA_RESERVE=16MiB"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(NumaMigrate, MovedThreadAllocatesOnItsNewNodeAfterFreeingEveryOther) { run("DISABLED_FreeEveryOther"); }
TEST(NumaMigrate, MovedThreadAllocatesOnItsNewNodeAfterFreeingTheOlderHalf) { run("DISABLED_FreeOlderHalf"); }

}  // namespace
