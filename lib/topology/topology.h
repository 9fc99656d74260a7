// topology.h: NUMA nodes, their CPUs, memory and distances, as the allocator sees them.
//
// Owns: the published topology (a read-only table; replaced as a whole, never
// modified in place), the CPU -> node map, each node's fallback order (the
// other nodes by distance, nearest first), and the calling thread's current
// node (cached per thread, refreshed every few milliseconds).
//
// Where it comes from:
//   - at boot, from the kernel's /sys/devices/system/node (online nodes, each
//     node's cpulist, distance row and MemTotal), read into fixed buffers
//     without allocating. On Linux this is the data hwloc itself reads.
//   - from hwloc (loaded with dlopen, so that the library does not depend on
//     it and a process's start-up stays cheap) when the environment describes
//     a topology for hwloc (HWLOC_XMLFILE, HWLOC_SYNTHETIC, HWLOC_FSROOT):
//     tests pretend to run on 2, 4 or 8 nodes that way. hwloc allocates, so
//     this runs after process init, from the library constructor.
//   - from a test, with topology_set_for_test().
// The use_numa_nodes option caps the node count. Distances missing from the
// firmware are 10 (local) and 20 (remote).
// Binding memory to a node is possible only when the node is one the kernel
// has (binding_possible); otherwise it is skipped, with one verbose message.
// Thread-safety: readers load the published pointer (acquire); publishing
// happens at init (and in tests) and swaps the whole table.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../common/defines.h"  // NUMA_MAX_NODES

// glibc 2.35+: where each thread's rseq area lies from its thread pointer, and
// its size (0: not registered). Weak: absent from an older glibc.
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace mi {

constexpr int NUMA_MAX_CPUS = 1024;

// A node's row of the distances and fallback order lies with the rest of
// what is known of it, and the CPU map and the nodes right after the node
// count: what a machine of a few nodes reads and writes is in the table's
// first page or two (the process's table is in .bss, resident by the page it
// is written in: 4 pages of 5 for one node when the rows were arrays of
// their own, 1 now).
struct NodeInfo {
  int os_index;  // the kernel's node number
  int cpu_count;
  uint64_t memory_bytes;              // local memory (0 if unknown)
  uint8_t distance[NUMA_MAX_NODES];   // to each node (by index in nodes[])
  int8_t fallback[NUMA_MAX_NODES];    // [0] = this node, then the others nearest first (-1: none)
  uint64_t cpus[NUMA_MAX_CPUS / 64];  // CPU set
};

struct Topology {
  int node_count;  // nodes in use (>= 1)
  bool from_hwloc;
  bool binding_possible;            // every node is a node of the running kernel
  int16_t cpu_node[NUMA_MAX_CPUS];  // CPU number -> node (-1: none)
  NodeInfo nodes[NUMA_MAX_NODES];
};

// Reads the kernel's view; called once from process init (does not allocate).
void topology_init() noexcept;
// From the library constructor (after init): switch to hwloc's view when the
// environment describes a topology for hwloc. Returns true if it did.
bool topology_refine_with_hwloc() noexcept;

// The published topology (never null after topology_init).
const Topology& topology() noexcept;
// Installs a topology built by a test (copied); fills fallback orders and the
// CPU map from nodes/distance. Returns false if it is inconsistent.
bool topology_set_for_test(const Topology& t) noexcept;
// Loads a topology from an hwloc XML file (tests); false if hwloc or the file fails.
bool topology_load_hwloc_xml(const char* path) noexcept;

int numa_node_count() noexcept;
// The published topology's node count, for the allocation slow path's test
// "more than one node?" (one load, no call).
extern MI_HIDDEN std::atomic<int> numa_nodes_in_use;
// Node of the CPU the calling thread runs on (0 .. numa_node_count()-1),
// cached per thread for a few milliseconds.
int numa_current_node() noexcept;
// The node of `cpu`, the CPU the calling thread runs on now (sched_getcpu:
// glibc 2.35+ reads it from the thread's rseq area, older ones from the
// vDSO, no system call either way), with the per-thread cache refreshed:
// the slow path's test whether its thread moved to another node (heap/migrate).
int numa_node_at_cpu(int cpu) noexcept;
// The CPU the calling thread runs on, from the rseq area glibc registers for
// each thread (the kernel keeps its cpu_id current): a few loads, no call,
// for the allocation slow paths' test whether the thread moved (several
// nodes). -1 where the thread has none (an older glibc; a kernel or a tool
// that refused the registration, such as valgrind): ask sched_getcpu then.
MI_ALWAYS_INLINE int rseq_cpu() noexcept {
  if (&__rseq_size == nullptr || __rseq_size == 0) return -1;
  // struct rseq: u32 cpu_id_start, then u32 cpu_id (negative: not registered)
  const char* area = static_cast<const char*>(__builtin_thread_pointer()) + __rseq_offset;
  return *reinterpret_cast<const volatile int32_t*>(area + 4);
}
// Node of a CPU (-1 if unknown).
int numa_node_of_cpu(int cpu) noexcept;
// Does the kernel have NUMA nodes to bind to (and more than one)?
bool numa_binding_possible() noexcept;

// Parses a kernel cpulist/nodelist ("0-3,8,10-11") into a bit set of
// `words` 64-bit words; returns the number of bits set.
int topology_parse_list(const char* s, uint64_t* set, int words) noexcept;

}  // namespace mi
