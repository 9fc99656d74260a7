// topology.cpp: see topology.h.
#include "topology.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "../common/options.h"
#include "../../include/mimalloc-numa.h"
#include "../os/os.h"

namespace mi {

namespace {

std::atomic<int> node_count{1};
std::atomic<int> kernel_node_count{1};

// Parses a kernel cpulist/nodelist ("0-3,5") and returns the highest number + 1.
int list_span(const char* s) {
  int highest = -1;
  int cur = 0;
  bool have = false;
  for (; *s != 0; s++) {
    if (*s >= '0' && *s <= '9') {
      cur = cur * 10 + (*s - '0');
      have = true;
    } else {
      if (have && cur > highest) highest = cur;
      cur = 0;
      have = false;
    }
  }
  if (have && cur > highest) highest = cur;
  return highest + 1;
}

struct NodeCache {
  int node;
  int64_t refreshed_ms;
};
__thread NodeCache node_cache __attribute__((tls_model("initial-exec"))) = {-1, 0};

constexpr int64_t NODE_REFRESH_MS = 4;

}  // namespace

void topology_init() noexcept {
  char buf[256];
  int n = 1;
  if (os_read_file("/sys/devices/system/node/online", buf, sizeof(buf)) > 0) {
    n = list_span(buf);
    if (n < 1) n = 1;
    if (n > NUMA_MAX_NODES) n = NUMA_MAX_NODES;
  }
  kernel_node_count.store(n, std::memory_order_relaxed);
  long limit = option_get(mi_option_use_numa_nodes);
  if (limit > 0 && limit < n) n = static_cast<int>(limit);
  node_count.store(n, std::memory_order_relaxed);
}

int numa_node_count() noexcept { return node_count.load(std::memory_order_relaxed); }

int numa_current_node() noexcept {
  int count = numa_node_count();
  if (count <= 1) return 0;
  int64_t now = os_clock_ms();
  if (node_cache.node >= 0 && now - node_cache.refreshed_ms < NODE_REFRESH_MS) return node_cache.node;
  unsigned cpu = 0, node = 0;
  if (syscall(SYS_getcpu, &cpu, &node, nullptr) != 0) node = 0;
  int n = static_cast<int>(node) % count;
  node_cache = NodeCache{n, now};
  return n;
}

}  // namespace mi

// ---------------------------------------------------------------------------
// Public API (mimalloc-numa.h)
// ---------------------------------------------------------------------------
extern "C" {

__attribute__((visibility("default"))) int mi_numa_version(void) noexcept { return MI_NUMA_VERSION; }

__attribute__((visibility("default"))) int mi_numa_node_count(void) noexcept { return mi::numa_node_count(); }

__attribute__((visibility("default"))) int mi_numa_current_node(void) noexcept { return mi::numa_current_node(); }

}  // extern "C"
