// pools.cpp: see pools.h.
#include "pools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

#include "plan.h"

namespace mireserve {

namespace {

int compactions = 0;

std::string node_dir(const Roots& r) { return r.sys + "/devices/system/node"; }
std::string global_dir(const Roots& r) { return r.sys + "/kernel/mm/hugepages"; }

// The page sizes of the hugepages-<n>kB directories in `dir`, ascending.
std::vector<long> sizes_in(const std::string& dir) {
  std::vector<long> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const char* name = e->d_name;
    if (strncmp(name, "hugepages-", 10) != 0) continue;
    char* end = nullptr;
    long kib = strtol(name + 10, &end, 10);
    if (kib > 0 && end != nullptr && strcmp(end, "kB") == 0) out.push_back(kib);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// A write of a whole small file: the kernel's files take one write.
int file_write(const std::string& path, const std::string& text, int flags) {
  int fd;
  do {
    fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  int err = 0;
  ssize_t n;
  do {
    n = write(fd, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) err = errno;
  else if (static_cast<size_t>(n) != text.size()) err = EIO;
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

// The fake kernel's cap of a pool: fake_max's numbers, indexed by the
// compactions done so far (the last one holds); -1 when there is none.
long fake_cap(const std::string& dir) {
  std::string text;
  if (file_read(dir + "/fake_max", &text) != 0) return -1;
  std::istringstream in(text);
  long cap = -1, v;
  for (int i = 0; i <= compactions && (in >> v); i++) cap = v;
  return cap;
}

}  // namespace

std::string errno_text(int err) {
  char buf[128];
  return std::string(strerror_r(err, buf, sizeof(buf)));
}

int file_read(const std::string& path, std::string* text) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  text->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return err;
    }
    if (n == 0) break;
    text->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return 0;
}

bool file_read_long(const std::string& path, long* value) {
  std::string text;
  if (file_read(path, &text) != 0) return false;
  errno = 0;
  char* end = nullptr;
  long v = strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || errno != 0) return false;
  while (*end == ' ' || *end == '\n' || *end == '\t') end++;
  if (*end != 0) return false;
  *value = v;
  return true;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void roots_detect_fake(Roots* roots) {
  struct statfs fs;
  roots->fake_sys = !(statfs(roots->sys.c_str(), &fs) == 0 && fs.f_type == SYSFS_MAGIC);
  roots->fake_proc = !(statfs(roots->proc.c_str(), &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC);
}

bool Machine::has_node(int node) const { return std::find(nodes.begin(), nodes.end(), node) != nodes.end(); }

bool Machine::has_pool(int node, long size_kib) const {
  auto it = sizes_kib.find(node);
  return it != sizes_kib.end() && std::find(it->second.begin(), it->second.end(), size_kib) != it->second.end();
}

std::vector<long> Machine::all_sizes() const {
  std::set<long> all;
  for (const auto& [node, sizes] : sizes_kib) all.insert(sizes.begin(), sizes.end());
  return {all.begin(), all.end()};
}

std::string Machine::pool_dir(int node, long size_kib) const {
  if (!numa_sysfs) return global_dir(roots) + "/" + pool_dir_name(size_kib);
  return node_dir(roots) + "/node" + std::to_string(node) + "/hugepages/" + pool_dir_name(size_kib);
}

std::string Machine::pools_where() const {
  return numa_sysfs ? node_dir(roots) + "/node*/hugepages" : global_dir(roots);
}

bool machine_discover(const Roots& roots, Machine* m, std::string* why) {
  *m = Machine{};
  m->roots = roots;
  // the kernel's nodes: its online list, else the nodeN directories there are
  std::vector<int> nodes;
  std::string online;
  if (file_read(node_dir(roots) + "/online", &online) == 0) {
    while (!online.empty() && (online.back() == '\n' || online.back() == ' ')) online.pop_back();
    bool all = false;
    if (!parse_node_list(online, &nodes, &all) || all) nodes.clear();
  }
  if (nodes.empty()) {
    if (DIR* d = opendir(node_dir(roots).c_str())) {
      while (dirent* e = readdir(d)) {
        char* end = nullptr;
        if (strncmp(e->d_name, "node", 4) != 0 || !isdigit(static_cast<unsigned char>(e->d_name[4]))) continue;
        long n = strtol(e->d_name + 4, &end, 10);
        if (*end == 0 && n < 4096) nodes.push_back(static_cast<int>(n));
      }
      closedir(d);
      std::sort(nodes.begin(), nodes.end());
    }
  }
  // only nodes whose directory is there (online may list more than sysfs shows)
  std::vector<int> present;
  for (int n : nodes) {
    if (is_directory(node_dir(roots) + "/node" + std::to_string(n))) present.push_back(n);
  }
  if (!present.empty()) {
    m->numa_sysfs = true;
    m->nodes = present;
    for (int n : present) {
      std::vector<long> sizes = sizes_in(node_dir(roots) + "/node" + std::to_string(n) + "/hugepages");
      if (!sizes.empty()) m->sizes_kib[n] = sizes;
    }
  } else {
    // no NUMA in sysfs: the global pools, as node 0
    m->numa_sysfs = false;
    m->nodes = {0};
    std::vector<long> sizes = sizes_in(global_dir(roots));
    if (!sizes.empty()) m->sizes_kib[0] = sizes;
  }
  if (m->sizes_kib.empty()) {
    *why = "the kernel has no huge page pools (no hugepages-<size>kB directory under " + m->pools_where() +
           "; a kernel without CONFIG_HUGETLBFS?)";
    return false;
  }
  return true;
}

PoolCounts pool_read(const Machine& m, int node, long size_kib) {
  PoolCounts c;
  const std::string dir = m.pool_dir(node, size_kib);
  if (!file_read_long(dir + "/nr_hugepages", &c.total)) c.total = -1;
  if (!file_read_long(dir + "/free_hugepages", &c.free)) c.free = -1;
  if (!file_read_long(dir + "/surplus_hugepages", &c.surplus)) c.surplus = -1;
  return c;
}

int pool_check_writable(const Machine& m, int node, long size_kib) {
  if (faccessat(AT_FDCWD, m.nr_path(node, size_kib).c_str(), W_OK, AT_EACCESS) != 0) return errno;
  return 0;
}

int pool_write_nr(const Machine& m, int node, long size_kib, long target) {
  const std::string dir = m.pool_dir(node, size_kib);
  if (!m.roots.fake_sys) return file_write(dir + "/nr_hugepages", std::to_string(target) + "\n", 0);
  // the fake kernel (pools.h)
  PoolCounts c = pool_read(m, node, size_kib);
  long total = c.total < 0 ? 0 : c.total;
  long free = c.free < 0 ? total : c.free;
  long surplus = c.surplus < 0 ? 0 : c.surplus;
  long new_total;
  if (target >= total) {
    long cap = fake_cap(dir);
    new_total = (cap >= 0) ? std::max(total, std::min(target, cap)) : target;
    free += new_total - total;
  } else {
    long drop = total - target;
    long freed = std::min(free, drop);
    new_total = target;
    free -= freed;
    surplus += drop - freed;
  }
  int err = file_write(dir + "/nr_hugepages", std::to_string(new_total) + "\n", O_TRUNC);
  if (err != 0) return err;
  if (c.free >= 0) file_write(dir + "/free_hugepages", std::to_string(free) + "\n", O_TRUNC);
  if (c.surplus >= 0) file_write(dir + "/surplus_hugepages", std::to_string(surplus) + "\n", O_TRUNC);
  return 0;
}

bool memory_compact(const Machine& m, std::string* why) {
  const std::string path = m.roots.proc + "/sys/vm/compact_memory";
  if (!path_exists(path)) {
    *why = "the kernel cannot compact memory (no " + path + ": a kernel without CONFIG_COMPACTION?)";
    return false;
  }
  // procfs takes a plain write; the fake file keeps a line per compaction
  int err = file_write(path, "1\n", m.roots.fake_proc ? O_APPEND : 0);
  if (err != 0) {
    *why = "cannot write " + path + ": " + errno_text(err);
    return false;
  }
  compactions++;
  return true;
}

int memory_compactions() { return compactions; }

std::vector<std::string> hwloc_cross_check(const Machine& m, std::string* note) {
  std::vector<std::string> diffs;
  for (const char* var : {"HWLOC_XMLFILE", "HWLOC_SYNTHETIC", "HWLOC_FSROOT"}) {
    if (getenv(var) != nullptr) {
      *note = std::string("hwloc not consulted: ") + var + " is set (it would describe another machine)";
      return diffs;
    }
  }
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) {
    *note = "hwloc not consulted: hwloc_topology_init failed";
    return diffs;
  }
  if (hwloc_topology_load(topo) != 0) {
    hwloc_topology_destroy(topo);
    *note = "hwloc not consulted: hwloc_topology_load failed";
    return diffs;
  }
  // hwloc's NUMA nodes by kernel number, each with its huge page sizes
  std::map<int, std::set<long>> hw;
  const long base_kib = sysconf(_SC_PAGESIZE) / 1024;
  const int count = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < count; i++) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    if (obj == nullptr) continue;
    std::set<long>& sizes = hw[static_cast<int>(obj->os_index)];
    for (unsigned j = 0; j < obj->attr->numanode.page_types_len; j++) {
      long kib = static_cast<long>(obj->attr->numanode.page_types[j].size / 1024);
      if (kib > base_kib) sizes.insert(kib);
    }
  }
  hwloc_topology_destroy(topo);
  // Compare where the kernel has pools: memory-less nodes (no pools) may or
  // may not be hwloc NUMA nodes, depending on the hwloc version.
  for (const auto& [node, sizes] : m.sizes_kib) {
    auto it = hw.find(node);
    if (it == hw.end()) {
      diffs.push_back("hwloc has no NUMA node " + std::to_string(node) + ", where the kernel has huge page pools");
      continue;
    }
    if (it->second.empty()) continue;  // hwloc found no page types: it cannot tell
    for (long kib : sizes) {
      if (it->second.count(kib) == 0) {
        diffs.push_back("hwloc lists no " + page_size_text(kib) + " pages on node " + std::to_string(node) +
                        ", where the kernel has a pool of them");
      }
    }
  }
  for (const auto& [node, sizes] : hw) {
    if (!m.has_node(node))
      diffs.push_back("hwloc has NUMA node " + std::to_string(node) + ", which the kernel does not list");
  }
  std::vector<int> hw_nodes;
  for (const auto& entry : hw) hw_nodes.push_back(entry.first);
  *note = "hwloc " + std::string(HWLOC_VERSION) + " sees NUMA node(s) " + node_list_text(hw_nodes) +
          (diffs.empty() ? ": agrees with the kernel" : "");
  return diffs;
}

}  // namespace mireserve
