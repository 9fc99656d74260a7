// pools.h: the kernel's huge page pools, per NUMA node, as files.
//
// Owns: finding the nodes and their page sizes (the kernel's node list and
// the hugepages-<size>kB directories of each node), reading a pool's counts,
// writing its nr_hugepages, compacting memory, and the cross-check with hwloc.
//
// Where the files are (Roots::sys stands for /sys, Roots::proc for /proc):
//   sys/devices/system/node/online                         the kernel's nodes
//   sys/devices/system/node/nodeN/hugepages/hugepages-<size>kB/
//       nr_hugepages (read, written), free_hugepages, surplus_hugepages
//   sys/kernel/mm/hugepages/hugepages-<size>kB/            when the kernel has
//       no node directories (no NUMA): one pool, shown as node 0
//   proc/sys/vm/compact_memory                             written 1 to compact
//
// The fake kernel. A test points Roots at a directory of plain files
// (--sysfs-root). A plain file only keeps what is written to it, so when a
// root is not the real file system (sysfs, procfs; checked with statfs), this
// layer also plays the kernel's part, in pool_write_nr and memory_compact:
//   - a pool grows to what is asked, but to no more than the cap in its
//     `fake_max` file, if the pool directory has one: whitespace-separated
//     numbers, the cap before any compaction, after the first, after the
//     second, ... (the last one holds from then on). "1" makes a node that
//     never gives more than 1 page; "1 3" one that gives 3 once compacted;
//   - free_hugepages follows: pages added are free; a pool that shrinks loses
//     free pages first, and pages in use (nr - free) beyond the new size
//     become surplus_hugepages, as the kernel does;
//   - compaction appends a line "1" to proc/sys/vm/compact_memory (if that
//     file exists; otherwise there is no compaction, as on a kernel without
//     CONFIG_COMPACTION), so a test can count them.
// File permissions apply to the fake files as to the real ones.
//
// Thread-safety: single-threaded tool; the compaction count is per process.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace mireserve {

struct Roots {
  std::string sys = "/sys";
  std::string proc = "/proc";
  bool fake_sys = false;   // sys is not sysfs: play the kernel's part (above)
  bool fake_proc = false;  // proc is not procfs
};

// Sets fake_sys / fake_proc from the file systems the roots are on.
void roots_detect_fake(Roots* roots);

struct Machine {
  Roots roots;
  bool numa_sysfs = false;                     // the kernel has node directories; else one node 0 (the global pools)
  std::vector<int> nodes;                      // the kernel's online nodes, ascending
  std::map<int, std::vector<long>> sizes_kib;  // node -> page sizes it has pools of, ascending

  bool has_node(int node) const;
  bool has_pool(int node, long size_kib) const;
  // Every page size any node has, ascending.
  std::vector<long> all_sizes() const;
  // The pool's directory (…/hugepages-<size>kB).
  std::string pool_dir(int node, long size_kib) const;
  std::string nr_path(int node, long size_kib) const { return pool_dir(node, size_kib) + "/nr_hugepages"; }
  // Where pool directories are looked for (for messages).
  std::string pools_where() const;
};

// Reads the nodes and page sizes. false (with *why) when the kernel has no
// huge page pools at all.
bool machine_discover(const Roots& roots, Machine* m, std::string* why);

struct PoolCounts {
  long total = -1;    // nr_hugepages: the persistent pool (-1: unreadable)
  long free = -1;     // free_hugepages
  long surplus = -1;  // surplus_hugepages (-1: the file is missing)
};
PoolCounts pool_read(const Machine& m, int node, long size_kib);

// 0 if this process may write the pool's nr_hugepages, else the errno.
int pool_check_writable(const Machine& m, int node, long size_kib);

// Asks the kernel for `target` pages in the pool (and plays the kernel under
// a fake root). Returns 0 or the errno of the write; read the pool to see
// what the kernel gave.
int pool_write_nr(const Machine& m, int node, long size_kib, long target);

// Compacts memory (writes 1 to proc/sys/vm/compact_memory) so that the
// kernel finds contiguous pages. false (with *why) when it cannot.
bool memory_compact(const Machine& m, std::string* why);
int memory_compactions();  // how many this process did

// Compares the nodes and page sizes with hwloc's view of this machine.
// Returns the differences (empty: they agree, or hwloc cannot tell; *note
// says which).
std::vector<std::string> hwloc_cross_check(const Machine& m, std::string* note);

// Small file helpers: a whole file / a number in it; 0 or the errno.
int file_read(const std::string& path, std::string* text);
bool file_read_long(const std::string& path, long* value);
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);

// strerror, without the locale's surprises.
std::string errno_text(int err);

}  // namespace mireserve
