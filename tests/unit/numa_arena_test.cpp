// Unit tests of NUMA placement in lib/arena on fake topologies (hwloc XML
// fixtures of tests/fixtures/topology, in child processes with HWLOC_XMLFILE
// and MIMALLOC_ARENA_RESERVE=16MiB):
//  - the segments of a mi_heap_new_on_node(n) heap (and of mi_malloc_on_node,
//    from any thread) come from node n's arenas: mi_numa_node_of(block) == n,
//    for small, medium, large and huge blocks;
//  - a default heap allocates on the node of the CPU its thread runs on;
//  - when a node's memory (its size in the XML) is used up by our arenas,
//    further segments go to the other nodes nearest first BY DISTANCE (not by
//    index), each until it is full, then to plain OS memory; one warning;
//    mi_numa_stats counts fallbacks and remote segments on the asking node;
//  - a memory-only node (no CPUs) gives memory, and overflows by distance too;
//  - a huge block that does not fit its node's remaining memory goes whole to
//    the nearest node with room, while smaller blocks still go home.
//
// The fixtures' nodes are small (64 MiB, node 0 of the 4-node fixture 128 MiB):
// 3 MiB blocks take one 4 MiB arena block each, so 16 fill a node.
//
// Arenas reserved before the hwloc topology is published (the allocations of
// start-up and of hwloc itself, on the kernel's 1-node view) are bound to no
// node. The fallback tests first take every free block of those, so that what
// they see is the order of the node arenas alone; HeapOnNode* checks where
// a node heap's segments come from without that help.
#include <gtest/gtest.h>
#include <mimalloc-numa.h>
#include <mimalloc.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "arena/arena.h"
#include "common/options.h"
#include "numa_util.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "topology/topology.h"
#include "unit_util.h"

namespace {

using numa_test::MiB;

constexpr int kUnbound = -1;  // an arena bound to no node
constexpr int kOs = -9;       // plain OS memory (no arena)

// Where a block's segment came from: its arena's node, kUnbound, or kOs.
int where(const void* p) {
  mi::Segment* s = mi::segmap_segment_of(p);
  if (s == nullptr) return -100;
  if (s->memid.kind != mi::MemKind::arena) return kOs;
  return s->memid.numa_node < 0 ? kUnbound : s->memid.numa_node;
}

std::string where_name(int w) {
  if (w == kOs) return "OS";
  if (w == kUnbound) return "U";
  return std::to_string(w);
}

std::string describe(const std::vector<int>& seq) {
  std::ostringstream s;
  for (size_t i = 0; i < seq.size(); i++) s << (i ? " " : "") << where_name(seq[i]);
  return s.str();
}

struct Run {
  int where;
  size_t count;
};

std::vector<Run> runs_of(const std::vector<int>& seq) {
  std::vector<Run> r;
  for (int w : seq) {
    if (!r.empty() && r.back().where == w) r.back().count++;
    else r.push_back(Run{w, 1});
  }
  return r;
}

struct Expect {
  int where;
  size_t min, max;
};

// seq must be exactly these runs, in this order, with counts in range.
void expect_runs(const std::vector<int>& seq, const std::vector<Expect>& want) {
  std::vector<Run> got = runs_of(seq);
  SCOPED_TRACE("placement sequence: " + describe(seq));
  ASSERT_EQ(got.size(), want.size()) << "runs of nodes differ";
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(where_name(got[i].where), where_name(want[i].where)) << "run " << i;
    EXPECT_GE(got[i].count, want[i].min) << "run " << i << " (" << where_name(want[i].where) << ")";
    EXPECT_LE(got[i].count, want[i].max) << "run " << i << " (" << where_name(want[i].where) << ")";
  }
}

using numa_test::drain_unbound_arenas;

// Allocates 3 MiB blocks from `heap` until `os_wanted` came from plain OS
// memory (every node full) or `limit` blocks; returns where each came from.
std::vector<int> fill(mi_heap_t* heap, std::vector<void*>* blocks, int os_wanted, size_t limit) {
  std::vector<int> seq;
  int os = 0;
  while (os < os_wanted && blocks->size() < limit) {
    void* p = mi_heap_malloc(heap, 3 * MiB);
    if (p == nullptr) break;
    blocks->push_back(p);
    int w = where(p);
    EXPECT_EQ(mi_numa_node_of(p), w >= 0 ? w : -1) << "block " << blocks->size();
    seq.push_back(w);
    if (w == kOs) os++;
  }
  return seq;
}

size_t count_in(const std::vector<int>& seq, std::initializer_list<int> nodes) {
  size_t n = 0;
  for (int w : seq) {
    for (int k : nodes) n += (w == k);
  }
  return n;
}

mi_numa_stats_t stats(int node) {
  mi_numa_stats_t st;
  memset(&st, 0, sizeof(st));
  EXPECT_EQ(mi_numa_stats(node, &st), 0) << "node " << node;
  return st;
}

void run_child_ok(const std::string& test, const std::string& xml, std::vector<std::string> env,
                  unit::ChildResult* out = nullptr) {
  env.push_back(numa_test::xml_env(xml));
  env.push_back("MIMALLOC_ARENA_RESERVE=16MiB");
  unit::ChildResult r = unit::run_child("NumaArenaChild." + test, env);
  EXPECT_EQ(r.status, 0) << r.describe();
  if (out != nullptr) *out = r;
}

// The library's warnings in a child's stderr.
std::vector<std::string> warnings_in(const std::string& err) {
  std::vector<std::string> w;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("mimalloc-numa: warning: ", 0) == 0) w.push_back(line);
  }
  return w;
}

// --- a node heap's segments come from that node -------------------------------
const size_t kSizes[] = {16, 1000, 40 * 1024, 100 * 1024, 1 * MiB, 3 * MiB, 9 * MiB};

TEST(NumaArenaChild, DISABLED_HeapOnNodeAllocatesOnThatNode) {
  ASSERT_EQ(mi_numa_node_count(), 4);
  std::vector<void*> blocks;
  // where each size came from, per node: one line per node and API, so a
  // failure shows the whole picture ("U": an arena bound to no node)
  for (int n = 0; n < 4; n++) {
    mi_heap_t* h = mi_heap_new_on_node(n);
    ASSERT_NE(h, nullptr);
    std::string want_heap, got_heap, want_api, got_api;
    for (size_t size : kSizes) {
      void* p = mi_heap_malloc(h, size);
      void* q = mi_malloc_on_node(size, n);
      ASSERT_NE(p, nullptr);
      ASSERT_NE(q, nullptr);
      memset(p, 1, size);
      blocks.push_back(p);
      blocks.push_back(q);
      const std::string item = " " + std::to_string(size) + ":";
      want_heap += item + std::to_string(n);
      got_heap += item + (mi_numa_node_of(p) >= 0 ? std::to_string(mi_numa_node_of(p)) : where_name(where(p)));
      want_api += item + std::to_string(n);
      got_api += item + (mi_numa_node_of(q) >= 0 ? std::to_string(mi_numa_node_of(q)) : where_name(where(q)));
    }
    EXPECT_EQ(got_heap, want_heap) << "mi_heap_new_on_node(" << n << "): size:node of each block";
    EXPECT_EQ(got_api, want_api) << "mi_malloc_on_node(size, " << n << "): size:node of each block";
    void* z = mi_zalloc_on_node(5000, n);
    ASSERT_NE(z, nullptr);
    for (size_t i = 0; i < 5000; i++) ASSERT_EQ(static_cast<unsigned char*>(z)[i], 0);
    blocks.push_back(z);
  }
  // from another thread, freed here
  for (int n = 0; n < 4; n++) {
    void* p = nullptr;
    std::thread([&] { p = mi_malloc_on_node(2000, n); }).join();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(mi_numa_node_of(p), n) << "another thread's mi_malloc_on_node(2000, " << n << ")";
    blocks.push_back(p);
  }
  // arena_alloc itself
  for (int n = 0; n < 4; n++) {
    mi::MemId memid;
    void* p = mi::arena_alloc(mi::ARENA_BLOCK_SIZE, mi::ARENA_BLOCK_SIZE, true, false, 0, n, &memid);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(memid.numa_node, n) << "arena_alloc for node " << n;
    mi::arena_free(p, mi::ARENA_BLOCK_SIZE, mi::ARENA_BLOCK_SIZE, memid);
  }
  for (int n = 0; n < 4; n++) {
    mi_numa_stats_t st = stats(n);
    EXPECT_GT(st.reserved, 0u) << "node " << n;
    EXPECT_GT(st.in_use, 0u) << "node " << n;
    EXPECT_EQ(st.fallbacks, 0u) << "node " << n;
    EXPECT_EQ(st.remote_segments, 0u) << "node " << n;
  }
  for (void* p : blocks) mi_free(p);
  // invalid nodes
  errno = 0;
  EXPECT_EQ(mi_heap_new_on_node(4), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(mi_heap_new_on_node(-1), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(mi_malloc_on_node(8, 4), nullptr);
  EXPECT_EQ(errno, EINVAL);
  mi_numa_stats_t st;
  EXPECT_EQ(mi_numa_stats(4, &st), EINVAL);
  EXPECT_EQ(mi_numa_stats(0, nullptr), EINVAL);
  EXPECT_EQ(mi_numa_node_of(nullptr), -1);
  int local = 0;
  EXPECT_EQ(mi_numa_node_of(&local), -1);
}

TEST(NumaArena, HeapOnNodeAllocatesOnThatNode) {
  MI_SKIP_WITHOUT_HWLOC();
  run_child_ok("DISABLED_HeapOnNodeAllocatesOnThatNode", "four-nodes-asymmetric.xml", {});
}

// --- a default heap allocates on its thread's node ----------------------------
// two-nodes.xml: node 0 has CPUs 0 and 2, node 1 CPUs 1 and 3.
TEST(NumaArenaChild, DISABLED_DefaultHeapFollowsTheThreadsNode) {
  ASSERT_EQ(mi_numa_node_count(), 2);
  std::vector<void*> held = drain_unbound_arenas();
  int ran = 0;
  for (int cpu : {0, 1}) {
    numa_test::on_cpu(cpu, [&] {
      ran++;
      EXPECT_EQ(mi_numa_current_node(), cpu);
      void* small = mi_malloc(100);
      void* huge = mi_malloc(3 * MiB);
      EXPECT_EQ(mi_numa_node_of(small), cpu) << "thread on cpu " << cpu << ": from " << where_name(where(small));
      EXPECT_EQ(mi_numa_node_of(huge), cpu) << "thread on cpu " << cpu << ": from " << where_name(where(huge));
      // and the other node on request
      void* other = mi_malloc_on_node(100, 1 - cpu);
      EXPECT_EQ(mi_numa_node_of(other), 1 - cpu);
      mi_free(small);
      mi_free(huge);
      mi_free(other);
    });
  }
  EXPECT_GT(ran, 0) << "no thread could be pinned to cpu 0 or 1";
  for (void* p : held) mi_free(p);
}

TEST(NumaArena, DefaultHeapFollowsTheThreadsNode) {
  MI_SKIP_WITHOUT_HWLOC();
  MI_SKIP_IF_ASAN_STARTS_THREADS();  // the thread's node is read when it starts, before on_cpu pins it
  run_child_ok("DISABLED_DefaultHeapFollowsTheThreadsNode", "two-nodes.xml", {});
}

// --- fallback by distance: four-nodes-asymmetric.xml ---------------------------
// Node 3's order: 3, 1 (20), 2 (30), 0 (35); by index it would be 0, 1, 2.
TEST(NumaArenaChild, DISABLED_FallbackByDistance) {
  ASSERT_EQ(mi_numa_node_count(), 4);
  numa_test::pin_to(0);  // this thread's own memory on node 0 from here on
  std::vector<void*> held = drain_unbound_arenas();
  mi_heap_t* h = mi_heap_new_on_node(3);
  ASSERT_NE(h, nullptr);
  std::vector<void*> blocks;
  std::vector<int> seq = fill(h, &blocks, 3, 200);
  // 16 on node 3 (64 MiB), 16 on node 1, 16 on node 2, then node 0 (128 MiB,
  // some of it used by this thread's default heap), then the OS.
  expect_runs(seq, {{3, 16, 16}, {1, 16, 16}, {2, 16, 16}, {0, 1, 32}, {kOs, 3, 3}});

  mi_numa_stats_t s3 = stats(3);
  EXPECT_EQ(s3.reserved, 64 * MiB) << "node 3's arenas stop at its memory size";
  // the committed bytes of its 16 huge segments, each sized to its 3 MiB block
  EXPECT_EQ(s3.in_use, 16 * mi::segmap_segment_of(blocks[0])->segment_size);
  EXPECT_EQ(s3.fallbacks, count_in(seq, {0, 1, 2, kOs})) << "each segment node 3 could not give is a fallback";
  EXPECT_EQ(s3.remote_segments, count_in(seq, {0, 1, 2})) << "segments node 3 asked for and another node gave";
  EXPECT_GE(s3.local_segments, 16u);
  EXPECT_EQ(stats(1).reserved, 64 * MiB);
  EXPECT_EQ(stats(2).reserved, 64 * MiB);
  EXPECT_EQ(stats(0).reserved, 128 * MiB);
  for (int n : {0, 1, 2}) {
    EXPECT_EQ(stats(n).fallbacks, 0u) << "node " << n << " was not asked";
    EXPECT_EQ(stats(n).remote_segments, 0u) << "node " << n;
  }

  // freed memory goes back to its arenas: node 3 gives memory again
  for (void* p : blocks) mi_free(p);
  blocks.clear();
  void* p = mi_heap_malloc(h, 3 * MiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(mi_numa_node_of(p), 3);
  mi_free(p);
  EXPECT_EQ(stats(3).fallbacks, s3.fallbacks);
  for (void* q : held) mi_free(q);
}

TEST(NumaArena, FallbackIsNearestFirstByDistance) {
  MI_SKIP_WITHOUT_HWLOC();
  unit::ChildResult r;
  run_child_ok("DISABLED_FallbackByDistance", "four-nodes-asymmetric.xml", {}, &r);
  // one warning, naming the nearest node
  std::vector<std::string> w = warnings_in(r.err);
  ASSERT_EQ(w.size(), 1u) << r.err;
  EXPECT_NE(w[0].find("node 3 cannot give more memory"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("(1, distance 20)"), std::string::npos) << w[0];
}

// --- a memory-only node: memory-only-node.xml -----------------------------------
// Node 2 (os 4) has no CPUs; its order: 2, 1 (14), 0 (24).
TEST(NumaArenaChild, DISABLED_MemoryOnlyNodeGivesMemoryAndOverflowsByDistance) {
  ASSERT_EQ(mi_numa_node_count(), 3);
  numa_test::pin_to(0);  // this thread's own memory on node 0 from here on
  std::vector<void*> held = drain_unbound_arenas();
  mi_heap_t* h = mi_heap_new_on_node(2);
  ASSERT_NE(h, nullptr);
  std::vector<void*> blocks;
  std::vector<int> seq = fill(h, &blocks, 2, 200);
  expect_runs(seq, {{2, 16, 16}, {1, 1, 16}, {0, 1, 16}, {kOs, 2, 2}});
  mi_numa_stats_t s2 = stats(2);
  EXPECT_EQ(s2.reserved, 64 * MiB);
  EXPECT_EQ(s2.os_index, 4);
  EXPECT_EQ(s2.fallbacks, count_in(seq, {0, 1, kOs}));
  EXPECT_EQ(s2.remote_segments, count_in(seq, {0, 1}));
  EXPECT_EQ(stats(1).reserved, 64 * MiB);
  EXPECT_EQ(stats(0).reserved, 64 * MiB);
  for (void* p : blocks) mi_free(p);
  for (void* q : held) mi_free(q);
}

TEST(NumaArena, MemoryOnlyNodeGivesMemoryAndOverflowsByDistance) {
  MI_SKIP_WITHOUT_HWLOC();
  unit::ChildResult r;
  run_child_ok("DISABLED_MemoryOnlyNodeGivesMemoryAndOverflowsByDistance", "memory-only-node.xml", {}, &r);
  std::vector<std::string> w = warnings_in(r.err);
  ASSERT_EQ(w.size(), 1u) << r.err;
  EXPECT_NE(w[0].find("node 2 cannot give more memory"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("(1, distance 14)"), std::string::npos) << w[0];
}

// --- huge blocks ------------------------------------------------------------------
// Node 2 of the 4-node fixture (64 MiB = 16 arena blocks; order 2, 0, 1, 3):
// 10 MiB (3 blocks) and 30 MiB (8 blocks) fit; then 20 MiB (6 blocks) does not
// fit the 5 blocks left and goes whole to node 0; five 3 MiB blocks still fit
// at home, the sixth goes to node 0.
TEST(NumaArenaChild, DISABLED_HugeBlocks) {
  ASSERT_EQ(mi_numa_node_count(), 4);
  numa_test::pin_to(0);  // this thread's own memory on node 0 from here on
  std::vector<void*> held = drain_unbound_arenas();
  mi_heap_t* h = mi_heap_new_on_node(2);
  ASSERT_NE(h, nullptr);
  struct Ask {
    size_t size;
    int node;
  };
  const Ask asks[] = {{10 * MiB, 2}, {30 * MiB, 2}, {20 * MiB, 0}, {3 * MiB, 2}, {3 * MiB, 2},
                      {3 * MiB, 2},  {3 * MiB, 2},  {3 * MiB, 2},  {3 * MiB, 0}};
  std::vector<void*> blocks;
  size_t i = 0;
  for (const Ask& a : asks) {
    void* p = mi_heap_malloc(h, a.size);
    ASSERT_NE(p, nullptr);
    blocks.push_back(p);
    EXPECT_EQ(mi_numa_node_of(p), a.node)
        << "block " << i << " of " << a.size / MiB << " MiB: from " << where_name(where(p));
    EXPECT_EQ(mi_usable_size(p) >= a.size, true);
    i++;
  }
  mi_numa_stats_t s2 = stats(2);
  EXPECT_EQ(s2.reserved, 64 * MiB);
  // the committed bytes of its segments: each sized to its block (to the OS page)
  size_t on_node2 = 0;
  for (size_t k = 0; k < blocks.size(); k++) {
    if (asks[k].node == 2) on_node2 += mi::segmap_segment_of(blocks[k])->segment_size;
  }
  EXPECT_EQ(s2.in_use, on_node2);
  EXPECT_EQ(s2.fallbacks, 2u);
  EXPECT_EQ(s2.remote_segments, 2u);
  EXPECT_EQ(s2.local_segments, 7u);
  for (void* p : blocks) mi_free(p);
  for (void* q : held) mi_free(q);
}

TEST(NumaArena, HugeBlocksArePlacedByTheSameRules) {
  MI_SKIP_WITHOUT_HWLOC();
  run_child_ok("DISABLED_HugeBlocks", "four-nodes-asymmetric.xml", {});
}

}  // namespace
