// topology.cpp: see topology.h.
#include "topology.h"

#include <dlfcn.h>
#include <hwloc.h>
#include <sched.h>
#include <string.h>

#include <atomic>

#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../os/os.h"

namespace mi {

std::atomic<int> numa_nodes_in_use{1};

namespace {

// Published tables: the boot view, the hwloc view, a test's view. Each is
// filled completely before the pointer moves to it. Page-aligned: what a
// machine of a few nodes writes, its first 3 KiB (topology.h), is then one
// page resident, not the two it straddled.
alignas(4096) constinit Topology table_boot{};
constinit Topology table_hwloc{};
constinit Topology table_test{};
std::atomic<const Topology*> published{nullptr};

constexpr uint8_t DISTANCE_LOCAL = 10;
constexpr uint8_t DISTANCE_REMOTE = 20;

void set_bit(uint64_t* set, int i) { set[i / 64] |= uint64_t{1} << (i % 64); }
bool has_bit(const uint64_t* set, int i) { return (set[i / 64] >> (i % 64)) & 1; }

const char* skip_spaces(const char* s) {
  while (*s == ' ' || *s == '\t' || *s == '\n') s++;
  return s;
}

// The kernel's online nodes (bit set over os indexes).
uint64_t kernel_nodes[NUMA_MAX_NODES / 64 + 1];
int kernel_node_total = 0;

// Fills fallback orders and the CPU map, applies use_numa_nodes. pre: nodes,
// node_count and distance filled in.
void topology_finish(Topology* t) {
  int n = t->node_count;
  if (n < 1) n = 1;
  for (int i = 0; i < n; i++) {
    // insertion sort of the other nodes by distance (ties: lower index first)
    int count = 0;
    t->nodes[i].fallback[count++] = static_cast<int8_t>(i);
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      int k = count++;
      while (k > 1 && t->nodes[i].distance[t->nodes[i].fallback[k - 1]] > t->nodes[i].distance[j]) {
        t->nodes[i].fallback[k] = t->nodes[i].fallback[k - 1];
        k--;
      }
      t->nodes[i].fallback[k] = static_cast<int8_t>(j);
    }
    for (int j = n; j < NUMA_MAX_NODES; j++) t->nodes[i].fallback[j] = -1;
  }
  for (int c = 0; c < NUMA_MAX_CPUS; c++) t->cpu_node[c] = -1;
  for (int i = 0; i < n; i++) {
    for (int c = 0; c < NUMA_MAX_CPUS; c++) {
      if (has_bit(t->nodes[i].cpus, c)) t->cpu_node[c] = static_cast<int16_t>(i);
    }
  }
  // use_numa_nodes: keep the first N nodes; the CPUs of the others count as
  // belonging to their nearest kept node.
  long limit = option_get(mi_option_use_numa_nodes);
  if (limit > 0 && limit < n) {
    int keep = static_cast<int>(limit);
    for (int c = 0; c < NUMA_MAX_CPUS; c++) {
      int node = t->cpu_node[c];
      if (node < keep) continue;
      for (int k = 0; k < n; k++) {
        int cand = t->nodes[node].fallback[k];
        if (cand >= 0 && cand < keep) {
          t->cpu_node[c] = static_cast<int16_t>(cand);
          break;
        }
      }
    }
    t->node_count = keep;
    for (int i = 0; i < keep; i++) {  // fallback orders without the dropped nodes
      int w = 0;
      for (int k = 0; k < n; k++) {
        int cand = t->nodes[i].fallback[k];
        if (cand >= 0 && cand < keep) t->nodes[i].fallback[w++] = static_cast<int8_t>(cand);
      }
      for (int k = w; k < NUMA_MAX_NODES; k++) t->nodes[i].fallback[k] = -1;
    }
  }
  // binding needs every node to be a node of the running kernel
  t->binding_possible = t->node_count > 1;
  for (int i = 0; i < t->node_count; i++) {
    int os = t->nodes[i].os_index;
    if (os < 0 || os >= NUMA_MAX_NODES || !has_bit(kernel_nodes, os)) t->binding_possible = false;
  }
}

void publish(const Topology* t) {
  published.store(t, std::memory_order_release);
  numa_nodes_in_use.store(t->node_count, std::memory_order_relaxed);
}

// Parses "Node 0 MemTotal:   123456 kB" out of a node's meminfo.
uint64_t parse_memtotal(const char* s) {
  const char* p = strstr(s, "MemTotal:");
  if (p == nullptr) return 0;
  p = skip_spaces(p + 9);
  uint64_t kb = 0;
  while (*p >= '0' && *p <= '9') kb = kb * 10 + static_cast<uint64_t>(*p++ - '0');
  return kb * 1024;
}

void boot_view(Topology* t) {
  // The first view fills a table that is still zero (.bss): clearing it
  // would write all of its 19 KiB, 5 pages resident in every process where
  // a one-node machine writes 1 (the node count, the CPU map, node 0:
  // topology.h). A view read again (topology() before process init, then
  // topology_init) starts clean.
  if (t->node_count != 0) memset(static_cast<void*>(t), 0, sizeof(*t));
  char buf[4096];
  char path[96];
  memset(kernel_nodes, 0, sizeof(kernel_nodes));
  kernel_node_total = 0;
  if (os_read_file("/sys/devices/system/node/online", buf, sizeof(buf)) > 0) {
    kernel_node_total = topology_parse_list(buf, kernel_nodes, NUMA_MAX_NODES / 64);
  }
  int n = 0;
  for (int os = 0; os < NUMA_MAX_NODES && n < NUMA_MAX_NODES; os++) {
    if (!has_bit(kernel_nodes, os)) continue;
    NodeInfo& node = t->nodes[n];
    node.os_index = os;
    format(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", os);
    if (os_read_file(path, buf, sizeof(buf)) > 0)
      node.cpu_count = topology_parse_list(buf, node.cpus, NUMA_MAX_CPUS / 64);
    format(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", os);
    if (os_read_file(path, buf, sizeof(buf)) > 0) node.memory_bytes = parse_memtotal(buf);
    n++;
  }
  if (n == 0) {  // no NUMA in the kernel: one node with every CPU
    n = 1;
    t->nodes[0].os_index = 0;
    for (int c = 0; c < NUMA_MAX_CPUS; c++) set_bit(t->nodes[0].cpus, c);
    t->nodes[0].cpu_count = NUMA_MAX_CPUS;
    set_bit(kernel_nodes, 0);
    kernel_node_total = 1;
  }
  t->node_count = n;
  // distances: row i lists the distance to every online node, in order
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) t->nodes[i].distance[j] = (i == j) ? DISTANCE_LOCAL : DISTANCE_REMOTE;
    format(path, sizeof(path), "/sys/devices/system/node/node%d/distance", t->nodes[i].os_index);
    if (os_read_file(path, buf, sizeof(buf)) <= 0) continue;
    const char* p = buf;
    for (int j = 0; j < n; j++) {
      p = skip_spaces(p);
      if (*p < '0' || *p > '9') break;
      unsigned v = 0;
      while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<unsigned>(*p++ - '0');
      t->nodes[i].distance[j] = static_cast<uint8_t>(v > 255 ? 255 : v);
    }
  }
  t->from_hwloc = false;
  topology_finish(t);
}

// ---------------------------------------------------------------------------
// hwloc, through dlopen
// ---------------------------------------------------------------------------
struct HwlocApi {
  void* handle;
  unsigned (*get_api_version)();
  int (*topology_init)(hwloc_topology_t*);
  int (*topology_set_xml)(hwloc_topology_t, const char*);
  int (*topology_set_synthetic)(hwloc_topology_t, const char*);
  int (*topology_load)(hwloc_topology_t);
  void (*topology_destroy)(hwloc_topology_t);
  int (*get_nbobjs_by_depth)(hwloc_topology_t, int);
  hwloc_obj_t (*get_obj_by_depth)(hwloc_topology_t, int, unsigned);
  int (*bitmap_first)(hwloc_const_bitmap_t);
  int (*bitmap_next)(hwloc_const_bitmap_t, int);
  int (*distances_get_by_type)(hwloc_topology_t, hwloc_obj_type_t, unsigned*, struct hwloc_distances_s**, unsigned long,
                               unsigned long);
  void (*distances_release)(hwloc_topology_t, struct hwloc_distances_s*);
};

bool hwloc_open(HwlocApi* api) {
  memset(static_cast<void*>(api), 0, sizeof(*api));
  api->handle = dlopen("libhwloc.so.15", RTLD_NOW | RTLD_LOCAL);
  if (api->handle == nullptr) return false;
  auto sym = [&](const char* name) { return dlsym(api->handle, name); };
  api->get_api_version = reinterpret_cast<unsigned (*)()>(sym("hwloc_get_api_version"));
  api->topology_init = reinterpret_cast<int (*)(hwloc_topology_t*)>(sym("hwloc_topology_init"));
  api->topology_set_xml = reinterpret_cast<int (*)(hwloc_topology_t, const char*)>(sym("hwloc_topology_set_xml"));
  api->topology_set_synthetic =
      reinterpret_cast<int (*)(hwloc_topology_t, const char*)>(sym("hwloc_topology_set_synthetic"));
  api->topology_load = reinterpret_cast<int (*)(hwloc_topology_t)>(sym("hwloc_topology_load"));
  api->topology_destroy = reinterpret_cast<void (*)(hwloc_topology_t)>(sym("hwloc_topology_destroy"));
  api->get_nbobjs_by_depth = reinterpret_cast<int (*)(hwloc_topology_t, int)>(sym("hwloc_get_nbobjs_by_depth"));
  api->get_obj_by_depth =
      reinterpret_cast<hwloc_obj_t (*)(hwloc_topology_t, int, unsigned)>(sym("hwloc_get_obj_by_depth"));
  api->bitmap_first = reinterpret_cast<int (*)(hwloc_const_bitmap_t)>(sym("hwloc_bitmap_first"));
  api->bitmap_next = reinterpret_cast<int (*)(hwloc_const_bitmap_t, int)>(sym("hwloc_bitmap_next"));
  api->distances_get_by_type =
      reinterpret_cast<int (*)(hwloc_topology_t, hwloc_obj_type_t, unsigned*, struct hwloc_distances_s**, unsigned long,
                               unsigned long)>(sym("hwloc_distances_get_by_type"));
  api->distances_release =
      reinterpret_cast<void (*)(hwloc_topology_t, struct hwloc_distances_s*)>(sym("hwloc_distances_release"));
  bool ok = api->get_api_version != nullptr && api->topology_init != nullptr && api->topology_load != nullptr &&
            api->topology_destroy != nullptr && api->get_nbobjs_by_depth != nullptr &&
            api->get_obj_by_depth != nullptr && api->bitmap_first != nullptr && api->bitmap_next != nullptr &&
            api->topology_set_xml != nullptr;
  if (ok && (api->get_api_version() >> 16) != (HWLOC_API_VERSION >> 16)) ok = false;  // another major version
  if (!ok) {
    dlclose(api->handle);
    api->handle = nullptr;
  }
  return ok;
}

// Builds *t from hwloc: the XML file `xml`, or the synthetic description
// `synthetic`, or (both null) what hwloc's own environment variables say.
// An XML file or description hwloc cannot read is an error here (hwloc would
// otherwise quietly read this machine instead).
bool hwloc_view(Topology* t, const char* xml, const char* synthetic = nullptr) {
  HwlocApi api;
  if (!hwloc_open(&api)) {
    verbose_message("topology: hwloc (libhwloc.so.15) is not available; using the kernel's view");
    return false;
  }
  hwloc_topology_t topo;
  bool ok = false;
  if (api.topology_init(&topo) == 0) {
    bool source_ok = true;
    if (xml != nullptr) source_ok = api.topology_set_xml(topo, xml) == 0;
    else if (synthetic != nullptr)
      source_ok = api.topology_set_synthetic != nullptr && api.topology_set_synthetic(topo, synthetic) == 0;
    if (source_ok && api.topology_load(topo) == 0) {
      memset(static_cast<void*>(t), 0, sizeof(*t));
      int depth = HWLOC_TYPE_DEPTH_NUMANODE;
      int n = api.get_nbobjs_by_depth(topo, depth);
      if (n > NUMA_MAX_NODES) n = NUMA_MAX_NODES;
      hwloc_obj_t objs[NUMA_MAX_NODES];
      for (int i = 0; i < n; i++) {
        hwloc_obj_t obj = api.get_obj_by_depth(topo, depth, static_cast<unsigned>(i));
        objs[i] = obj;
        NodeInfo& node = t->nodes[i];
        node.os_index = (obj != nullptr) ? static_cast<int>(obj->os_index) : i;
        if (obj == nullptr) continue;
        node.memory_bytes = obj->attr != nullptr ? obj->attr->numanode.local_memory : 0;
        // hwloc gives a node the CPUs of the object it is attached to, so a
        // memory-only node (CXL, HBM) next to a regular one shares its
        // package's CPUs: a CPU belongs to the first node that has it.
        if (obj->cpuset != nullptr) {
          for (int c = api.bitmap_first(obj->cpuset); c >= 0 && c < NUMA_MAX_CPUS;
               c = api.bitmap_next(obj->cpuset, c)) {
            bool taken = false;
            for (int k = 0; k < i && !taken; k++) taken = has_bit(t->nodes[k].cpus, c);
            if (taken) continue;
            set_bit(node.cpus, c);
            node.cpu_count++;
          }
        }
      }
      t->node_count = (n > 0) ? n : 1;
      if (n <= 0) {
        t->nodes[0].os_index = 0;
        for (int c = 0; c < NUMA_MAX_CPUS; c++) set_bit(t->nodes[0].cpus, c);
      }
      for (int i = 0; i < t->node_count; i++) {
        for (int j = 0; j < t->node_count; j++) t->nodes[i].distance[j] = (i == j) ? DISTANCE_LOCAL : DISTANCE_REMOTE;
      }
      // hwloc's latency distances between NUMA nodes, when the firmware gives them
      if (api.distances_get_by_type != nullptr && api.distances_release != nullptr && n > 1) {
        unsigned nr = 1;
        struct hwloc_distances_s* dist = nullptr;
        if (api.distances_get_by_type(topo, HWLOC_OBJ_NUMANODE, &nr, &dist, HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) ==
                0 &&
            nr >= 1 && dist != nullptr) {
          for (unsigned a = 0; a < dist->nbobjs; a++) {
            for (unsigned b = 0; b < dist->nbobjs; b++) {
              int ia = -1, ib = -1;
              for (int k = 0; k < n; k++) {
                if (objs[k] == dist->objs[a]) ia = k;
                if (objs[k] == dist->objs[b]) ib = k;
              }
              if (ia < 0 || ib < 0) continue;
              uint64_t v = dist->values[a * dist->nbobjs + b];
              t->nodes[ia].distance[ib] = static_cast<uint8_t>(v > 255 ? 255 : v);
            }
          }
          api.distances_release(topo, dist);
        }
      }
      t->from_hwloc = true;
      topology_finish(t);
      ok = true;
    }
    api.topology_destroy(topo);
  }
  // hwloc stays loaded: unloading it from inside a process is not worth the risk
  return ok;
}

void describe(const Topology& t, const char* source) {
  if (!option_is_enabled(mi_option_verbose)) return;
  verbose_message(
      "topology (%s): %d NUMA node(s)%s", source, t.node_count,
      t.binding_possible ? "" : (t.node_count > 1 ? ", binding skipped: the kernel does not have these nodes" : ""));
  for (int i = 0; i < t.node_count; i++) {
    char row[256];
    size_t len = 0;
    for (int j = 0; j < t.node_count && len + 8 < sizeof(row); j++) {
      len += format(row + len, sizeof(row) - len, "%s%u", j == 0 ? "" : " ",
                    static_cast<unsigned>(t.nodes[i].distance[j]));
    }
    char mem[32];
    verbose_message("  node %d (os %d): %d cpu(s), %s, distances %s", i, t.nodes[i].os_index, t.nodes[i].cpu_count,
                    format_bytes(mem, sizeof(mem), static_cast<int64_t>(t.nodes[i].memory_bytes)), row);
  }
}

struct NodeCache {
  int node;
  int64_t refreshed_ms;
};
__thread NodeCache node_cache __attribute__((tls_model("initial-exec"))) = {-1, 0};

constexpr int64_t NODE_REFRESH_MS = 4;

}  // namespace

int topology_parse_list(const char* s, uint64_t* set, int words) noexcept {
  int count = 0;
  const int limit = words * 64;
  while (*s != 0) {
    s = skip_spaces(s);
    if (*s < '0' || *s > '9') break;
    int a = 0;
    while (*s >= '0' && *s <= '9') a = a * 10 + (*s++ - '0');
    int b = a;
    if (*s == '-') {
      s++;
      b = 0;
      while (*s >= '0' && *s <= '9') b = b * 10 + (*s++ - '0');
    }
    for (int i = a; i <= b && i < limit; i++) {
      if (!has_bit(set, i)) count++;
      set_bit(set, i);
    }
    if (*s == ',') s++;
  }
  return count;
}

void topology_init() noexcept {
  boot_view(&table_boot);
  publish(&table_boot);
}

bool topology_refine_with_hwloc() noexcept {
  static char xml[4096];  // written once, from the constructor
  static char synthetic[1024];
  char fsroot[8];
  bool has_xml = os_getenv("HWLOC_XMLFILE", xml, sizeof(xml)) && xml[0] != 0;
  bool has_synthetic = !has_xml && os_getenv("HWLOC_SYNTHETIC", synthetic, sizeof(synthetic)) && synthetic[0] != 0;
  bool has_fsroot = os_getenv("HWLOC_FSROOT", fsroot, sizeof(fsroot));
  if ((has_xml || has_synthetic || has_fsroot) && os_is_secure()) {
    // files named by a less privileged user (see os_is_secure), which hwloc
    // would also read from the environment by itself: hwloc is not loaded
    warning_message(
        "topology: HWLOC_XMLFILE, HWLOC_SYNTHETIC and HWLOC_FSROOT are ignored: this program runs "
        "set-user-ID or set-group-ID (AT_SECURE); using the kernel's view");
    has_xml = has_synthetic = has_fsroot = false;
  }
  if (!has_xml && !has_synthetic && !has_fsroot) {
    describe(topology(), "kernel");
    return false;
  }
  if (!hwloc_view(&table_hwloc, has_xml ? xml : nullptr, has_synthetic ? synthetic : nullptr)) {
    warning_message("topology: %s%s describes a topology but hwloc could not load it; using the kernel's view",
                    has_xml ? "HWLOC_XMLFILE=" : (has_synthetic ? "HWLOC_SYNTHETIC=" : "HWLOC_FSROOT"),
                    has_xml ? xml : (has_synthetic ? synthetic : ""));
    return false;
  }
  publish(&table_hwloc);
  describe(table_hwloc, "hwloc");
  return true;
}

bool topology_load_hwloc_xml(const char* path) noexcept {
  if (path == nullptr || !hwloc_view(&table_test, path)) return false;
  publish(&table_test);
  return true;
}

bool topology_set_for_test(const Topology& t) noexcept {
  if (t.node_count < 1 || t.node_count > NUMA_MAX_NODES) return false;
  if (&t != &table_test) table_test = t;
  topology_finish(&table_test);
  publish(&table_test);
  return true;
}

const Topology& topology() noexcept {
  const Topology* t = published.load(std::memory_order_acquire);
  if (t == nullptr) {  // before process init: the kernel's view
    boot_view(&table_boot);
    publish(&table_boot);
    t = &table_boot;
  }
  return *t;
}

int numa_node_count() noexcept { return topology().node_count; }

bool numa_binding_possible() noexcept { return topology().binding_possible; }

int numa_node_of_cpu(int cpu) noexcept {
  if (cpu < 0 || cpu >= NUMA_MAX_CPUS) return -1;
  return topology().cpu_node[cpu];
}

int numa_current_node() noexcept {
  const Topology& t = topology();
  if (t.node_count <= 1) return 0;
  int64_t now = os_clock_ms();
  if (node_cache.node >= 0 && node_cache.node < t.node_count && now - node_cache.refreshed_ms < NODE_REFRESH_MS) {
    return node_cache.node;
  }
  int cpu = sched_getcpu();
  int node = numa_node_of_cpu(cpu);
  if (node < 0 || node >= t.node_count) node = 0;
  node_cache = NodeCache{node, now};
  return node;
}

int numa_node_at_cpu(int cpu) noexcept {
  const Topology& t = topology();
  if (t.node_count <= 1) return 0;
  int node = numa_node_of_cpu(cpu);
  if (node < 0 || node >= t.node_count) node = 0;
  if (node != node_cache.node) node_cache = NodeCache{node, os_clock_ms()};
  return node;
}

}  // namespace mi
