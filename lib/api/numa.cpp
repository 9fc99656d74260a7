// numa.cpp: the topology functions of mimalloc-numa.h (mi_numa_version,
// mi_numa_node_count, mi_numa_current_node, mi_numa_node_os_index,
// mi_numa_node_distance): the public face of topology/topology.h.
#include "../../include/mimalloc-numa.h"
#include "../topology/topology.h"

extern "C" {

int mi_numa_version(void) noexcept { return MI_NUMA_VERSION; }

int mi_numa_node_count(void) noexcept { return mi::numa_node_count(); }

int mi_numa_current_node(void) noexcept { return mi::numa_current_node(); }

int mi_numa_node_os_index(int node) noexcept {
  const mi::Topology& t = mi::topology();
  if (node < 0 || node >= t.node_count) return -1;
  return t.nodes[node].os_index;
}

int mi_numa_node_distance(int from, int to) noexcept {
  const mi::Topology& t = mi::topology();
  if (from < 0 || to < 0 || from >= t.node_count || to >= t.node_count) return -1;
  return t.nodes[from].distance[to];
}

}  // extern "C"
