// Unit tests of lib/topology with fake NUMA topologies: hwloc XML fixtures
// (tests/fixtures/topology) and HWLOC_SYNTHETIC, read at start-up from the
// environment (HWLOC_XMLFILE) or loaded by a test (topology_load_hwloc_xml),
// and tables built by a test (topology_set_for_test).
//
// Checked: node count, os indexes, each node's CPUs and memory, the distance
// matrix (row = from; asymmetric; 10/20 when the firmware gives none), the
// fallback order of each node (nearest first, ties by lower index), the CPU ->
// node map, the current node of threads pinned to a CPU, a memory-only node
// (no CPUs: never a thread's node, but in every fallback order),
// use_numa_nodes on a topology with more nodes, binding_possible, and the
// one verbose message about binding being skipped.
//
// Every topology is looked at in a child process (unit_util.h run_child): the
// topology is read once at start-up, and a swapped topology would change
// where the rest of this binary's memory goes.
#include <gtest/gtest.h>
#include <mimalloc-numa.h>
#include <mimalloc.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/options.h"
#include "numa_util.h"
#include "topology/topology.h"
#include "unit_util.h"

namespace {

using numa_test::cpus_of;
using numa_test::fallback_of;
using numa_test::MiB;
using V = std::vector<int>;

// Runs a child test; it must pass and print nothing on stderr: hwloc loads
// the fixtures without a warning, the library has nothing to complain about.
void expect_child_passes(const std::string& test, const std::vector<std::string>& env) {
  unit::ChildResult r = unit::run_child("NumaTopologyChild." + test, env);
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.err, "") << "stderr not empty\n" << r.describe();
}

// The current node of a fresh thread pinned to `cpu` (-2 if it cannot run there).
int current_node_on(int cpu) {
  int node = -2;
  numa_test::on_cpu(cpu, [&] {
    // The thread may have read its node before it was pinned (under ASan
    // its set-up allocates with us, and that reads the node); the cached
    // node is read again after 4 ms (topology.cpp: NODE_REFRESH_MS).
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    node = mi_numa_current_node();
  });
  return node;
}

// --- four-nodes-asymmetric.xml ---------------------------------------------
// Distances (row = from):     order (nearest first, ties by index)
//   0: 10 40 20 30            0 2 3 1
//   1: 25 10 35 25            1 0 3 2   (0 and 3 tie at 25)
//   2: 20 30 10 45            2 0 1 3
//   3: 35 20 30 10            3 1 2 0
// CPUs: node i has 2i and 2i+1; memory: node 0 128 MiB, the others 64 MiB.
constexpr int kFour[4][4] = {{10, 40, 20, 30}, {25, 10, 35, 25}, {20, 30, 10, 45}, {35, 20, 30, 10}};

void check_four_nodes(const mi::Topology& t) {
  ASSERT_TRUE(t.from_hwloc);
  ASSERT_EQ(t.node_count, 4);
  EXPECT_EQ(mi_numa_node_count(), 4);
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ(t.nodes[i].os_index, i);
    EXPECT_EQ(mi_numa_node_os_index(i), i);
    EXPECT_EQ(cpus_of(t.nodes[i]), (V{2 * i, 2 * i + 1})) << "node " << i;
    EXPECT_EQ(t.nodes[i].cpu_count, 2) << "node " << i;
    EXPECT_EQ(t.nodes[i].memory_bytes, (i == 0 ? 128 : 64) * MiB) << "node " << i;
    for (int j = 0; j < 4; j++) {
      EXPECT_EQ(t.nodes[i].distance[j], kFour[i][j]) << "distance " << i << " -> " << j;
      EXPECT_EQ(mi_numa_node_distance(i, j), kFour[i][j]) << "distance " << i << " -> " << j;
    }
  }
  // asymmetric: the row is the node asking
  EXPECT_EQ(mi_numa_node_distance(0, 1), 40);
  EXPECT_EQ(mi_numa_node_distance(1, 0), 25);
  EXPECT_EQ(fallback_of(t, 0), (V{0, 2, 3, 1}));
  EXPECT_EQ(fallback_of(t, 1), (V{1, 0, 3, 2})) << "ties go to the lower index";
  EXPECT_EQ(fallback_of(t, 2), (V{2, 0, 1, 3}));
  EXPECT_EQ(fallback_of(t, 3), (V{3, 1, 2, 0}));
  for (int c = 0; c < 8; c++) EXPECT_EQ(mi::numa_node_of_cpu(c), c / 2) << "cpu " << c;
  EXPECT_EQ(mi::numa_node_of_cpu(8), -1);
  EXPECT_EQ(mi::numa_node_of_cpu(-1), -1);
  EXPECT_EQ(mi::numa_node_of_cpu(mi::NUMA_MAX_CPUS), -1);
  // invalid nodes
  EXPECT_EQ(mi_numa_node_distance(0, 4), -1);
  EXPECT_EQ(mi_numa_node_distance(-1, 0), -1);
  EXPECT_EQ(mi_numa_node_os_index(4), -1);
  EXPECT_EQ(mi_numa_node_os_index(-1), -1);
  // binding only onto nodes the kernel has (on a 1-node kernel: never)
  EXPECT_EQ(t.binding_possible, numa_test::kernel_has_all({0, 1, 2, 3}));
  if (numa_test::kernel_online_nodes().size() == 1) {
    EXPECT_FALSE(mi::numa_binding_possible());
  }
}

TEST(NumaTopologyChild, DISABLED_FourNodesAsymmetric) {
  check_four_nodes(mi::topology());
  for (int i = 0; i < 4; i++) {
    mi_numa_stats_t st;
    ASSERT_EQ(mi_numa_stats(i, &st), 0);
    EXPECT_EQ(st.node, i);
    EXPECT_EQ(st.os_index, i);
  }
  // this machine's CPUs 0 and 1 are node 0's in the fixture
  for (int cpu : {0, 1}) {
    int node = current_node_on(cpu);
    if (node == -2) continue;  // no such CPU here
    EXPECT_EQ(node, 0) << "thread on cpu " << cpu;
  }
}

TEST(NumaTopology, FourNodesAsymmetricFromXml) {
  MI_SKIP_WITHOUT_HWLOC();
  expect_child_passes("DISABLED_FourNodesAsymmetric", {numa_test::xml_env("four-nodes-asymmetric.xml")});
}

// --- one-node.xml: one node, CPUs 0-3, 128 MiB --------------------------------
TEST(NumaTopologyChild, DISABLED_OneNode) {
  const mi::Topology& t = mi::topology();
  ASSERT_TRUE(t.from_hwloc);
  ASSERT_EQ(t.node_count, 1);
  EXPECT_EQ(mi_numa_node_count(), 1);
  EXPECT_EQ(t.nodes[0].os_index, 0);
  EXPECT_EQ(cpus_of(t.nodes[0]), (V{0, 1, 2, 3}));
  EXPECT_EQ(t.nodes[0].memory_bytes, 128 * MiB);
  EXPECT_EQ(mi_numa_node_distance(0, 0), 10);
  EXPECT_EQ(fallback_of(t, 0), (V{0}));
  for (int c = 0; c < 4; c++) EXPECT_EQ(mi::numa_node_of_cpu(c), 0);
  EXPECT_EQ(mi::numa_node_of_cpu(4), -1);
  EXPECT_FALSE(t.binding_possible) << "one node: nothing to bind";
  EXPECT_EQ(mi_numa_current_node(), 0);
}

TEST(NumaTopology, OneNodeFromXml) {
  MI_SKIP_WITHOUT_HWLOC();
  expect_child_passes("DISABLED_OneNode", {numa_test::xml_env("one-node.xml")});
}

// --- two-nodes.xml: no distance matrix; CPUs interleaved (0,2 | 1,3) --------
TEST(NumaTopologyChild, DISABLED_TwoNodesWithoutDistances) {
  const mi::Topology& t = mi::topology();
  ASSERT_TRUE(t.from_hwloc);
  ASSERT_EQ(t.node_count, 2);
  EXPECT_EQ(cpus_of(t.nodes[0]), (V{0, 2}));
  EXPECT_EQ(cpus_of(t.nodes[1]), (V{1, 3}));
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(t.nodes[i].os_index, i);
    EXPECT_EQ(t.nodes[i].memory_bytes, 64 * MiB);
  }
  // no matrix in the XML: 10 local, 20 remote
  EXPECT_EQ(mi_numa_node_distance(0, 0), 10);
  EXPECT_EQ(mi_numa_node_distance(1, 1), 10);
  EXPECT_EQ(mi_numa_node_distance(0, 1), 20);
  EXPECT_EQ(mi_numa_node_distance(1, 0), 20);
  EXPECT_EQ(fallback_of(t, 0), (V{0, 1}));
  EXPECT_EQ(fallback_of(t, 1), (V{1, 0}));
  EXPECT_EQ(mi::numa_node_of_cpu(0), 0);
  EXPECT_EQ(mi::numa_node_of_cpu(1), 1);
  EXPECT_EQ(mi::numa_node_of_cpu(2), 0);
  EXPECT_EQ(mi::numa_node_of_cpu(3), 1);
  EXPECT_EQ(t.binding_possible, numa_test::kernel_has_all({0, 1}));
  // a thread's current node is the node of its CPU
  int ran = 0;
  for (int cpu : {0, 1}) {
    int node = current_node_on(cpu);
    if (node == -2) continue;
    ran++;
    EXPECT_EQ(node, cpu) << "thread pinned to cpu " << cpu;
  }
  EXPECT_GT(ran, 0) << "no thread could be pinned to cpu 0 or 1";
}

TEST(NumaTopology, MissingDistanceMatrixGives10And20) {
  MI_SKIP_WITHOUT_HWLOC();
  expect_child_passes("DISABLED_TwoNodesWithoutDistances", {numa_test::xml_env("two-nodes.xml")});
}

// --- HWLOC_SYNTHETIC: 8 nodes of one CPU each, no distances ----------------
TEST(NumaTopologyChild, DISABLED_SyntheticEightNodes) {
  const mi::Topology& t = mi::topology();
  ASSERT_TRUE(t.from_hwloc);
  ASSERT_EQ(t.node_count, 8);
  for (int i = 0; i < 8; i++) {
    EXPECT_EQ(t.nodes[i].os_index, i);
    EXPECT_EQ(cpus_of(t.nodes[i]), (V{i}));
    EXPECT_EQ(t.nodes[i].memory_bytes, 64 * MiB);
    EXPECT_EQ(mi::numa_node_of_cpu(i), i);
    for (int j = 0; j < 8; j++) EXPECT_EQ(mi_numa_node_distance(i, j), i == j ? 10 : 20);
  }
  // all at 20: the others in index order
  EXPECT_EQ(fallback_of(t, 0), (V{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(fallback_of(t, 5), (V{5, 0, 1, 2, 3, 4, 6, 7}));
  EXPECT_EQ(fallback_of(t, 7), (V{7, 0, 1, 2, 3, 4, 5, 6}));
}

TEST(NumaTopology, SyntheticEightNodes) {
  MI_SKIP_WITHOUT_HWLOC();
  expect_child_passes("DISABLED_SyntheticEightNodes", {"HWLOC_SYNTHETIC=pack:8 [numa(memory=64MiB)] core:1 pu:1"});
}

// --- memory-only-node.xml ----------------------------------------------------
// Node 0 (os 0): CPUs 0,2; node 1 (os 1): CPUs 1,3; node 2 (os 4, "CXL-DRAM"):
// memory only, attached to node 1's package (hwloc gives it that package's
// cpuset, as it does for CPU-less nodes on real machines). Distances:
//   0: 10 21 24   order 0 1 2
//   1: 21 10 14   order 1 2 0
//   2: 24 14 10   order 2 1 0
TEST(NumaTopologyChild, DISABLED_MemoryOnlyNode) {
  const mi::Topology& t = mi::topology();
  ASSERT_TRUE(t.from_hwloc);
  ASSERT_EQ(t.node_count, 3);
  EXPECT_EQ(t.nodes[0].os_index, 0);
  EXPECT_EQ(t.nodes[1].os_index, 1);
  EXPECT_EQ(t.nodes[2].os_index, 4);
  EXPECT_EQ(mi_numa_node_os_index(2), 4);
  for (int i = 0; i < 3; i++) EXPECT_EQ(t.nodes[i].memory_bytes, 64 * MiB) << "node " << i;
  EXPECT_EQ(cpus_of(t.nodes[0]), (V{0, 2}));
  EXPECT_EQ(cpus_of(t.nodes[1]), (V{1, 3}));
  EXPECT_EQ(cpus_of(t.nodes[2]), (V{})) << "the memory-only node has no CPU of its own";
  EXPECT_EQ(t.nodes[2].cpu_count, 0);
  // no CPU maps to it
  for (int c = 0; c < mi::NUMA_MAX_CPUS; c++) EXPECT_NE(mi::numa_node_of_cpu(c), 2) << "cpu " << c;
  EXPECT_EQ(mi::numa_node_of_cpu(0), 0);
  EXPECT_EQ(mi::numa_node_of_cpu(1), 1);
  EXPECT_EQ(mi::numa_node_of_cpu(2), 0);
  EXPECT_EQ(mi::numa_node_of_cpu(3), 1);
  // but it is in every fallback order, by distance
  EXPECT_EQ(fallback_of(t, 0), (V{0, 1, 2}));
  EXPECT_EQ(fallback_of(t, 1), (V{1, 2, 0}));
  EXPECT_EQ(fallback_of(t, 2), (V{2, 1, 0}));
  EXPECT_EQ(mi_numa_node_distance(2, 1), 14);
  EXPECT_EQ(t.binding_possible, numa_test::kernel_has_all({0, 1, 4}));
  // never a thread's current node
  int ran = 0;
  for (int cpu = 0; cpu < 4; cpu++) {
    int node = current_node_on(cpu);
    if (node == -2) continue;
    ran++;
    EXPECT_NE(node, 2) << "a thread on cpu " << cpu << " has the memory-only node as its node";
    EXPECT_EQ(node, cpu % 2) << "thread on cpu " << cpu;
  }
  EXPECT_GT(ran, 0);
  EXPECT_NE(mi_numa_current_node(), 2);
  // memory can still be asked of it
  mi_heap_t* h = mi_heap_new_on_node(2);
  EXPECT_NE(h, nullptr);
  if (h != nullptr) mi_heap_delete(h);
}

TEST(NumaTopology, MemoryOnlyNode) {
  MI_SKIP_WITHOUT_HWLOC();
  expect_child_passes("DISABLED_MemoryOnlyNode", {numa_test::xml_env("memory-only-node.xml")});
}

// --- use_numa_nodes on the 4-node fixture --------------------------------------
// Keeps the first N nodes; the CPUs of the others go to their nearest kept
// node (by their own distance row); fallback orders lose the dropped nodes.
TEST(NumaTopologyChild, DISABLED_FourNodesCapped) {
  const long keep = mi_option_get(mi_option_use_numa_nodes);
  const mi::Topology& t = mi::topology();
  ASSERT_TRUE(t.from_hwloc);
  ASSERT_EQ(t.node_count, keep);
  EXPECT_EQ(mi_numa_node_count(), keep);
  if (keep == 2) {
    // node 2's row: 20 to node 0, 30 to node 1 -> 0; node 3's: 35 / 20 -> 1
    const V expect_cpu = {0, 0, 1, 1, 0, 0, 1, 1};
    for (int c = 0; c < 8; c++) EXPECT_EQ(mi::numa_node_of_cpu(c), expect_cpu[static_cast<size_t>(c)]) << "cpu " << c;
    EXPECT_EQ(fallback_of(t, 0), (V{0, 1}));
    EXPECT_EQ(fallback_of(t, 1), (V{1, 0}));
  } else if (keep == 3) {
    // node 3's row: 35 / 20 / 30 -> node 1
    const V expect_cpu = {0, 0, 1, 1, 2, 2, 1, 1};
    for (int c = 0; c < 8; c++) EXPECT_EQ(mi::numa_node_of_cpu(c), expect_cpu[static_cast<size_t>(c)]) << "cpu " << c;
    EXPECT_EQ(fallback_of(t, 0), (V{0, 2, 1}));
    EXPECT_EQ(fallback_of(t, 1), (V{1, 0, 2}));
    EXPECT_EQ(fallback_of(t, 2), (V{2, 0, 1}));
  } else {
    FAIL() << "unexpected use_numa_nodes " << keep;
  }
  for (int i = 0; i < keep; i++) {
    EXPECT_EQ(t.nodes[i].os_index, i);
    EXPECT_EQ(t.nodes[i].memory_bytes, (i == 0 ? 128 : 64) * MiB);
    for (int j = 0; j < keep; j++) EXPECT_EQ(mi_numa_node_distance(i, j), kFour[i][j]);
  }
  EXPECT_EQ(mi_numa_node_distance(0, static_cast<int>(keep)), -1);
  errno = 0;
  EXPECT_EQ(mi_heap_new_on_node(static_cast<int>(keep)), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(mi_malloc_on_node(16, static_cast<int>(keep)), nullptr);
  mi_numa_stats_t st;
  EXPECT_EQ(mi_numa_stats(static_cast<int>(keep), &st), EINVAL);
}

TEST(NumaTopology, UseNumaNodesKeepsTheFirstNodes) {
  MI_SKIP_WITHOUT_HWLOC();
  expect_child_passes("DISABLED_FourNodesCapped",
                      {numa_test::xml_env("four-nodes-asymmetric.xml"), "MIMALLOC_USE_NUMA_NODES=2"});
  expect_child_passes("DISABLED_FourNodesCapped",
                      {numa_test::xml_env("four-nodes-asymmetric.xml"), "MIMALLOC_USE_NUMA_NODES=3"});
}

// --- loading XML and installing tables from a test ---------------------------
TEST(NumaTopologyChild, DISABLED_LoadXmlAndSetForTest) {
  const mi::Topology* boot = &mi::topology();
  ASSERT_FALSE(boot->from_hwloc) << "no HWLOC_* variable: the kernel's view";
  const int kernel_count = boot->node_count;

  // failures leave the published topology alone
  EXPECT_FALSE(mi::topology_load_hwloc_xml(nullptr));
  EXPECT_FALSE(mi::topology_load_hwloc_xml(numa_test::fixture("no-such-file.xml").c_str()));
  EXPECT_EQ(&mi::topology(), boot);
  EXPECT_EQ(mi::numa_node_count(), kernel_count);

  ASSERT_TRUE(mi::topology_load_hwloc_xml(numa_test::fixture("four-nodes-asymmetric.xml").c_str()));
  check_four_nodes(mi::topology());
  ASSERT_TRUE(mi::topology_load_hwloc_xml(numa_test::fixture("memory-only-node.xml").c_str()));
  EXPECT_EQ(mi::numa_node_count(), 3);
  EXPECT_EQ(mi_numa_node_os_index(2), 4);

  // a table built by hand: fallback orders and the CPU map are filled in
  // (whatever the caller left in them), ties by index
  static mi::Topology t;  // large: not on the stack
  memset(static_cast<void*>(&t), 0x55, sizeof(t));
  t.node_count = 3;
  t.from_hwloc = false;
  const int d[3][3] = {{10, 30, 30}, {25, 10, 15}, {12, 12, 10}};
  for (int i = 0; i < 3; i++) {
    memset(t.nodes[i].cpus, 0, sizeof(t.nodes[i].cpus));
    t.nodes[i].os_index = 40 + i;  // not nodes of this kernel
    t.nodes[i].memory_bytes = 0;
    for (int j = 0; j < 3; j++) t.nodes[i].distance[j] = static_cast<uint8_t>(d[i][j]);
  }
  t.nodes[0].cpus[0] = 0x3;               // cpus 0, 1
  t.nodes[1].cpus[0] = 0xc;               // cpus 2, 3
  t.nodes[2].cpus[1] = uint64_t{1} << 6;  // cpu 70
  t.nodes[0].cpu_count = 2;
  t.nodes[1].cpu_count = 2;
  t.nodes[2].cpu_count = 1;
  ASSERT_TRUE(mi::topology_set_for_test(t));
  const mi::Topology& p = mi::topology();
  EXPECT_EQ(p.node_count, 3);
  EXPECT_EQ(fallback_of(p, 0), (V{0, 1, 2})) << "tie at 30: lower index first";
  EXPECT_EQ(fallback_of(p, 1), (V{1, 2, 0}));
  EXPECT_EQ(fallback_of(p, 2), (V{2, 0, 1})) << "tie at 12: lower index first";
  for (int k = 3; k < mi::NUMA_MAX_NODES; k++) EXPECT_EQ(p.nodes[0].fallback[k], -1);
  EXPECT_EQ(mi::numa_node_of_cpu(0), 0);
  EXPECT_EQ(mi::numa_node_of_cpu(3), 1);
  EXPECT_EQ(mi::numa_node_of_cpu(70), 2);
  EXPECT_EQ(mi::numa_node_of_cpu(4), -1) << "CPUs of no node map to -1";
  EXPECT_EQ(mi::numa_node_of_cpu(69), -1);
  EXPECT_FALSE(p.binding_possible) << "os nodes 40-42 are not this kernel's";
  EXPECT_EQ(mi_numa_node_os_index(1), 41);
  EXPECT_EQ(mi_numa_node_distance(2, 0), 12);

  // inconsistent tables are refused; the published one stays
  static mi::Topology bad;
  bad = t;
  bad.node_count = 0;
  EXPECT_FALSE(mi::topology_set_for_test(bad));
  bad.node_count = mi::NUMA_MAX_NODES + 1;
  EXPECT_FALSE(mi::topology_set_for_test(bad));
  EXPECT_EQ(mi::numa_node_count(), 3);

  // back to the kernel's view
  mi::topology_init();
  EXPECT_FALSE(mi::topology().from_hwloc);
  EXPECT_EQ(mi::numa_node_count(), kernel_count);
}

TEST(NumaTopology, LoadXmlAndSetForTest) {
  MI_SKIP_WITHOUT_HWLOC();
  expect_child_passes("DISABLED_LoadXmlAndSetForTest", {});
}

// --- start-up: what is published, and what is said ---------------------------
// Asks for more memory on two nodes than the arenas reserved before the
// topology was read can hold, so that arenas are reserved on those nodes
// (where binding is decided). Run with MIMALLOC_ARENA_RESERVE=16MiB.
TEST(NumaTopologyChild, DISABLED_StartupWithHwloc) {
  const mi::Topology& t = mi::topology();
  ASSERT_TRUE(t.from_hwloc) << "HWLOC_XMLFILE is set: hwloc's topology is published";
  ASSERT_EQ(t.node_count, 4);
  EXPECT_FALSE(mi::numa_binding_possible());
  void* a = mi_malloc_on_node(24 * MiB, 1);
  void* b = mi_malloc_on_node(24 * MiB, 2);
  void* c = mi_malloc_on_node(100, 3);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_NE(c, nullptr);
  mi_numa_stats_t st;
  ASSERT_EQ(mi_numa_stats(1, &st), 0);
  EXPECT_GE(st.reserved, 24 * MiB) << "no arena was reserved on node 1";
  mi_free(a);
  mi_free(b);
  mi_free(c);
}

// Lines of the library's own messages (not the statistics) that contain `what`.
int messages_with(const std::string& err, const std::string& what) {
  int n = 0;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("mimalloc-numa: ", 0) == 0 && line.find(what) != std::string::npos) n++;
  }
  return n;
}

TEST(NumaTopology, StartupWithHwlocXmlfileSaysOnceThatBindingIsSkipped) {
  MI_SKIP_WITHOUT_HWLOC();
  if (numa_test::kernel_has_all({0, 1, 2, 3})) GTEST_SKIP() << "the kernel has nodes 0-3: binding is possible here";
  const std::string xml = numa_test::xml_env("four-nodes-asymmetric.xml");
  // quiet without verbose
  expect_child_passes("DISABLED_StartupWithHwloc", {xml, "MIMALLOC_ARENA_RESERVE=16MiB"});
  // verbose: the topology is described, and binding being skipped is said once
  unit::ChildResult r = unit::run_child("NumaTopologyChild.DISABLED_StartupWithHwloc",
                                        {xml, "MIMALLOC_ARENA_RESERVE=16MiB", "MIMALLOC_VERBOSE=1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(messages_with(r.err, "topology (hwloc): 4 NUMA node(s)"), 1) << r.err;
  const int said = messages_with(r.err, "not bound") + messages_with(r.err, "binding skipped");
  EXPECT_EQ(said, 1) << "one verbose message about binding being skipped, not " << said << "\n" << r.err;
  EXPECT_EQ(messages_with(r.err, "warning:"), 0) << r.err;
}

TEST(NumaTopologyChild, DISABLED_KernelViewWhenHwlocFails) {
  EXPECT_FALSE(mi::topology().from_hwloc);
  EXPECT_EQ(mi::numa_node_count(), static_cast<int>(numa_test::kernel_online_nodes().size()));
  void* p = mi_malloc(100);
  EXPECT_NE(p, nullptr);
  mi_free(p);
}

TEST(NumaTopology, UnreadableXmlfileFallsBackToTheKernelView) {
  MI_SKIP_WITHOUT_HWLOC();
  unit::ChildResult r =
      unit::run_child("NumaTopologyChild.DISABLED_KernelViewWhenHwlocFails", {numa_test::xml_env("no-such-file.xml")});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(messages_with(r.err, "could not load it; using the kernel's view"), 1)
      << "a topology file hwloc cannot read is reported (hwloc itself falls back to this machine silently)\n"
      << r.err;
}

}  // namespace
