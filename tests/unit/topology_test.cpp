// Unit tests of lib/topology: the node count (from the kernel's node list,
// capped by use_numa_nodes) and the calling thread's current node.
#include "topology/topology.h"

#include <gtest/gtest.h>
#include <mimalloc-numa.h>
#include <mimalloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "common/options.h"
#include "os/os.h"
#include "unit_util.h"

namespace {

// Highest node number + 1 in the kernel's list ("0", "0-3", "0,2-5"), or 1.
int kernel_nodes() {
  char buf[256];
  if (mi::os_read_file("/sys/devices/system/node/online", buf, sizeof(buf)) <= 0) return 1;
  int highest = -1, cur = 0;
  bool have = false;
  for (const char* s = buf;; s++) {
    if (*s >= '0' && *s <= '9') {
      cur = cur * 10 + (*s - '0');
      have = true;
    } else {
      if (have && cur > highest) highest = cur;
      cur = 0;
      have = false;
      if (*s == 0) break;
    }
  }
  return (highest < 0) ? 1 : (highest + 1 > mi::NUMA_MAX_NODES ? mi::NUMA_MAX_NODES : highest + 1);
}

TEST(Topology, NodeCountFromTheKernel) {
  const int n = mi::numa_node_count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, mi::NUMA_MAX_NODES);
  const long cap = mi_option_get(mi_option_use_numa_nodes);
  int expect = kernel_nodes();
  if (cap > 0 && cap < expect) expect = static_cast<int>(cap);
  EXPECT_EQ(n, expect);
  EXPECT_EQ(mi_numa_node_count(), n);
}

TEST(Topology, CurrentNodeIsInRangeOnEveryThread) {
  const int n = mi::numa_node_count();
  std::vector<int> seen(8, -1);
  std::vector<std::thread> ts;
  for (size_t t = 0; t < seen.size(); t++) {
    ts.emplace_back([&, t] {
      int node = -1;
      for (int i = 0; i < 100; i++) node = mi::numa_current_node();
      seen[t] = node;
    });
  }
  for (auto& th : ts) th.join();
  for (int node : seen) {
    EXPECT_GE(node, 0);
    EXPECT_LT(node, n);
  }
  const int here = mi::numa_current_node();
  EXPECT_GE(here, 0);
  EXPECT_LT(here, n);
  EXPECT_EQ(mi_numa_current_node() >= 0 && mi_numa_current_node() < n, true);
}

TEST(Topology, InitAgainGivesTheSameCount) {
  const int n = mi::numa_node_count();
  mi::topology_init();
  EXPECT_EQ(mi::numa_node_count(), n);
}

// MIMALLOC_USE_NUMA_NODES=1: one node, always node 0.
TEST(TopologyChild, DISABLED_CappedToOneNode) {
  EXPECT_EQ(mi_option_get(mi_option_use_numa_nodes), 1);
  EXPECT_EQ(mi::numa_node_count(), 1);
  EXPECT_EQ(mi::numa_current_node(), 0);
}

TEST(Topology, UseNumaNodesCaps) {
  unit::ChildResult r = unit::run_child("TopologyChild.DISABLED_CappedToOneNode", {"MIMALLOC_USE_NUMA_NODES=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
