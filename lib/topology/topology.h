// topology.h: NUMA nodes, as the allocator sees them.
//
// Owns: the node count the allocator uses and the calling thread's current
// node. At boot the view is read from /sys without allocating (node count from
// /sys/devices/system/node/online, the current node from getcpu); the
// use_numa_nodes option caps it.
// Thread-safe: the node count is written once at process init; the current
// node is cached per thread and refreshed at most every few milliseconds.
#pragma once

#include <cstddef>

namespace mi {

constexpr int NUMA_MAX_NODES = 64;

// Reads the kernel's node list; called once from process init.
void topology_init() noexcept;
// Nodes in use (>= 1), after the use_numa_nodes cap.
int numa_node_count() noexcept;
// Node of the CPU the calling thread runs on (0 .. numa_node_count()-1).
int numa_current_node() noexcept;

}  // namespace mi
