// numa_util.h: helpers shared by the NUMA unit tests (numa_topology_test,
// numa_arena_test, commit_test, hugepage_test).
//
//  - fixture(): the path of an hwloc XML topology under tests/fixtures/topology
//    (MI_FIXTURES in the environment, else the directory meson compiled in).
//  - hwloc_loadable(), MI_SKIP_WITHOUT_HWLOC(): can the library dlopen hwloc
//    (the fake topologies need it)?
//  - pin_to() / repin_to() / on_cpu(): pins the calling thread (repin_to:
//    whatever its current mask) / runs a function on a fresh thread pinned
//    to one CPU.
//  - kernel_online_nodes(): the kernel's online node numbers.
//  - mapping_perms(): the protections /proc/self/maps shows over a range.
//  - read_long() / write_long(): small /proc and /sys files.
//  - drain_unbound_arenas(): takes every free block of the arenas bound to
//    no node, so that a test's blocks come from node arenas.
// These allocate freely: they run in the test children, not inside the allocator.
#pragma once

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <mimalloc-numa.h>
#include <mimalloc.h>

#include "arena/arena.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "topology/topology.h"

#ifndef MI_FIXTURES_DIR
#define MI_FIXTURES_DIR "tests/fixtures/topology"
#endif

// In a test body (gtest included): skips when the fake topologies cannot work.
#define MI_SKIP_WITHOUT_HWLOC()                                                                            \
  do {                                                                                                     \
    if (!numa_test::hwloc_loadable()) GTEST_SKIP() << "libhwloc.so.15 cannot be loaded: no fake topology"; \
  } while (0)

namespace numa_test {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;
constexpr size_t GiB = 1024 * MiB;

inline std::string fixture(const std::string& name) {
  const char* env = getenv("MI_FIXTURES");
  std::string dir = (env != nullptr && env[0] != 0) ? env : MI_FIXTURES_DIR;
  return dir + "/" + name;
}

inline std::string xml_env(const std::string& name) { return "HWLOC_XMLFILE=" + fixture(name); }

inline bool file_exists(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return false;
  fclose(f);
  return true;
}

// The library loads hwloc with dlopen("libhwloc.so.15") (topology.cpp).
inline bool hwloc_loadable() {
  static const bool ok = [] {
    void* h = dlopen("libhwloc.so.15", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) return false;
    dlclose(h);
    return true;
  }();
  return ok;
}

inline bool cpu_allowed(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return false;
  return cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set);
}

// Pins the calling thread to `cpu` (false if it cannot run there).
inline bool pin_to(int cpu) {
  if (!cpu_allowed(cpu)) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// Pins the calling thread to `cpu` whatever CPUs it may run on now (pin_to
// asks that mask, which an earlier pin narrowed) and yields: true when it
// then runs there.
inline bool repin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) return false;
  sched_yield();
  return sched_getcpu() == cpu;
}

// Runs f() on a new thread pinned to `cpu` (so its node cache starts empty).
// False if the thread could not be pinned there.
template <class F>
bool on_cpu(int cpu, F f) {
  if (!cpu_allowed(cpu)) return false;
  bool pinned = false;
  std::thread t([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) return;
    sched_yield();
    if (sched_getcpu() != cpu) return;
    pinned = true;
    f();
  });
  t.join();
  return pinned;
}

inline std::vector<int> kernel_online_nodes() {
  std::vector<int> nodes;
  std::ifstream in("/sys/devices/system/node/online");
  std::string s;
  if (!std::getline(in, s)) return {0};
  uint64_t set[mi::NUMA_MAX_NODES / 64 + 1] = {};
  mi::topology_parse_list(s.c_str(), set, mi::NUMA_MAX_NODES / 64);
  for (int i = 0; i < mi::NUMA_MAX_NODES; i++) {
    if ((set[i / 64] >> (i % 64)) & 1) nodes.push_back(i);
  }
  if (nodes.empty()) nodes.push_back(0);
  return nodes;
}

// Would the library bind to these kernel node numbers (all online, more than one)?
inline bool kernel_has_all(const std::vector<int>& os_indexes) {
  if (os_indexes.size() < 2) return false;
  std::vector<int> online = kernel_online_nodes();
  for (int os : os_indexes) {
    bool found = false;
    for (int k : online) found = found || (k == os);
    if (!found) return false;
  }
  return true;
}

inline bool has_cpu(const mi::NodeInfo& n, int cpu) { return (n.cpus[cpu / 64] >> (cpu % 64)) & 1; }

inline std::vector<int> cpus_of(const mi::NodeInfo& n) {
  std::vector<int> v;
  for (int c = 0; c < mi::NUMA_MAX_CPUS; c++) {
    if (has_cpu(n, c)) v.push_back(c);
  }
  return v;
}

inline std::vector<int> fallback_of(const mi::Topology& t, int node) {
  std::vector<int> v;
  for (int k = 0; k < mi::NUMA_MAX_NODES && t.nodes[node].fallback[k] >= 0; k++) v.push_back(t.nodes[node].fallback[k]);
  return v;
}

template <class T>
std::string to_string(const std::vector<T>& v) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < v.size(); i++) s << (i ? " " : "") << v[i];
  s << "]";
  return s.str();
}

// One piece of a mapping in /proc/self/maps overlapping a range.
struct MapPiece {
  uintptr_t start, end;
  std::string perms;  // "rw-p", "---p", ...
};

// The pieces of /proc/self/maps that overlap [p, p+size), clipped to it.
inline std::vector<MapPiece> mapping_perms(const void* p, size_t size) {
  std::vector<MapPiece> out;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + size;
  std::ifstream in("/proc/self/maps");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long a = 0, b = 0;
    char perms[8] = {};
    if (sscanf(line.c_str(), "%lx-%lx %7s", &a, &b, perms) != 3) continue;
    if (b <= lo || a >= hi) continue;
    out.push_back(MapPiece{a < lo ? lo : a, b > hi ? hi : b, perms});
  }
  return out;
}

// Bytes of [p, p+size) mapped with exactly these permissions.
inline size_t bytes_with_perms(const void* p, size_t size, const char* perms) {
  size_t n = 0;
  for (const MapPiece& m : mapping_perms(p, size)) {
    if (m.perms == perms) n += m.end - m.start;
  }
  return n;
}

inline long read_long(const std::string& path, long fallback = -1) {
  std::ifstream in(path);
  long v = fallback;
  if (!(in >> v)) return fallback;
  return v;
}

inline bool write_long(const std::string& path, long v) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = fprintf(f, "%ld\n", v) > 0;
  ok = (fclose(f) == 0) && ok;
  return ok;
}

// Lines of `text` that contain `needle`.
inline int count_lines_with(const std::string& text, const std::string& needle) {
  int n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) n++;
  }
  return n;
}

// Takes every free block of the arenas bound to no node (reserved at
// start-up, before a fake topology was published), 3 MiB blocks, one arena
// block each, with errors about a full arena not shown; the test's blocks
// then come from node arenas, whose segments have a node. Returns them (the
// caller frees them).
inline std::vector<void*> drain_unbound_arenas() {
  std::vector<void*> held;
  const long show = mi_option_get(mi_option_show_errors);
  mi_option_set(mi_option_show_errors, 0);
  for (mi_arena_id_t id = 1; id <= static_cast<mi_arena_id_t>(mi::ARENA_MAX_COUNT); id++) {
    size_t size = 0;
    if (mi_arena_area(id, &size) == nullptr) break;
    mi_heap_t* h = mi_heap_new_in_arena(id);
    if (h == nullptr) continue;
    for (;;) {
      void* p = mi_heap_malloc(h, 3 * MiB);
      if (p == nullptr) break;
      const mi::Segment* s = mi::segmap_segment_of(p);
      if (s == nullptr || s->memid.kind != mi::MemKind::arena || s->memid.numa_node >= 0) {
        mi_free(p);  // a node's arena (or none): leave it alone
        break;
      }
      held.push_back(p);
    }
  }
  mi_option_set(mi_option_show_errors, show);
  return held;
}

}  // namespace numa_test
