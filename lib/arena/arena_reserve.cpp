// arena_reserve.cpp: reserving arenas at start-up (the options
// reserve_huge_os_pages, reserve_huge_os_pages_at, reserve_os_memory and the
// [node.N] tables of the configuration file: arena.h arenas_init_reserve) and
// on request (mi_reserve_os_memory*, mi_reserve_huge_os_pages*), with the
// fallback to 2 MiB and regular pages when the kernel has too few 1 GiB pages.
#include <errno.h>

#include "../common/config.h"
#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../os/os.h"
#include "../topology/topology.h"
#include "arena.h"
#include "arena_internal.h"

namespace mi {

namespace {

// Reserves `pages` 1 GiB pages for `numa_node`; returns how many it got.
size_t reserve_huge_pages_at(size_t pages, int numa_node, size_t timeout_ms, bool exclusive, int* arena_id) {
  if (arena_id != nullptr) *arena_id = 0;
  if (pages == 0) return 0;
  size_t mapped = 0;
  MemId memid;
  const Topology& t = topology();
  int os_node = -1;
  int policy = static_cast<int>(option_get(mi_option_numa_bind));
  if (numa_node >= 0 && numa_node < t.node_count && t.binding_possible && policy != 0) {
    os_node = t.nodes[numa_node].os_index;
    policy = 2;  // 1 GiB pages are bound strictly: each is reserved where it is asked for
  }
  void* p = os_alloc_huge_pages(pages, static_cast<int64_t>(timeout_ms), &mapped, &memid, os_node, policy,
                                account_of_node(numa_node));
  if (p == nullptr || mapped == 0) return 0;
  memid.numa_node = numa_node;
  int id = arena_add(p, mapped * HUGE_OS_PAGE_SIZE, true, true, true, numa_node, exclusive, memid, true);
  if (id == 0) {
    os_free(p, mapped * HUGE_OS_PAGE_SIZE, memid);
    return 0;
  }
  verbose_message("numa node %d: reserved %zu GiB huge pages (of the %zu GiB requested)", numa_node, mapped, pages);
  if (arena_id != nullptr) *arena_id = id;
  return mapped;
}

}  // namespace

namespace {

// Replaces `missing` bytes of 1 GiB pages that node `node` (-1: unbound) did
// not get: 2 MiB pages if the kernel has them, else regular pages, bound to
// the node like the huge pages would have been. Adds to *large / *regular.
void reserve_fallback(size_t missing, int node, size_t* large, size_t* regular) {
  if (missing == 0) return;
  const Topology& t = topology();
  long policy = option_get(mi_option_numa_bind);
  bool bind = node >= 0 && t.binding_possible && policy != 0;
  MemId memid;
  void* p = os_alloc_large_pages(missing, &memid, 0, account_of_node(node));
  if (p != nullptr && bind && !(os_numa_bind(p, missing, t.nodes[node].os_index, 2) && os_populate(p, missing))) {
    os_free(p, missing, memid);  // that node has no 2 MiB pages left
    p = nullptr;
  }
  if (p != nullptr) {
    memid.numa_node = node;
    if (arena_add(p, missing, true, true, true, node, false, memid, true) != 0) {
      *large += missing;
      return;
    }
    os_free(p, missing, memid);
  }
  p = os_alloc_aligned(missing, ARENA_BLOCK_SIZE, true, false, &memid, MI_DEBUG != 0, account_of_node(node));
  if (p == nullptr) return;
  if (bind) os_numa_bind(p, missing, t.nodes[node].os_index, static_cast<int>(policy));
  memid.numa_node = node;
  if (arena_add(p, missing, true, false, true, node, false, memid, memid.is_accessible) != 0) {
    *regular += missing;
  } else {
    os_free(p, missing, memid);
  }
}

}  // namespace

void arenas_init_reserve() noexcept {
  long pages = option_get(mi_option_reserve_huge_os_pages);
  const int nodes = numa_node_count();
  size_t asked = 0, got = 0, large = 0, regular = 0;
  // one node's reservation, with its fallback
  auto reserve_on = [&](int node, size_t want) {
    if (want == 0) return;
    asked += want;
    size_t k = reserve_huge_pages_at(want, node, want * 500, false, nullptr);
    got += k;
    reserve_fallback((want - k) * HUGE_OS_PAGE_SIZE, node, &large, &regular);
  };
  long at = option_get(mi_option_reserve_huge_os_pages_at);
  if (config_any_node_huge_pages()) {
    // [node.N] reserve_huge_os_pages: that many on node N; the [options]
    // count is spread over the nodes without one
    int others = 0;
    for (int n = 0; n < nodes; n++) {
      if (config_node_huge_pages(n) < 0) others++;
    }
    size_t share = (others > 0 && pages > 0) ? static_cast<size_t>(pages) / static_cast<size_t>(others) : 0;
    size_t rem = (others > 0 && pages > 0) ? static_cast<size_t>(pages) % static_cast<size_t>(others) : 0;
    for (int n = 0; n < nodes; n++) {
      long explicit_pages = config_node_huge_pages(n);
      size_t want = (explicit_pages >= 0) ? static_cast<size_t>(explicit_pages) : share + (rem > 0 ? 1 : 0);
      if (explicit_pages < 0 && rem > 0) rem--;
      reserve_on(nodes > 1 ? n : -1, want);
    }
  } else if (pages > 0 && at >= 0) {
    reserve_on(static_cast<int>(at) % nodes, static_cast<size_t>(pages));
  } else if (pages > 0) {
    // interleaved: the same number on each node (the remainder on the lowest nodes)
    size_t per = static_cast<size_t>(pages) / static_cast<size_t>(nodes);
    size_t rem = static_cast<size_t>(pages) % static_cast<size_t>(nodes);
    for (int n = 0; n < nodes; n++) reserve_on(nodes > 1 ? n : -1, per + (static_cast<size_t>(n) < rem ? 1 : 0));
  }
  if (got < asked) {
    stat_counter(stats_global.huge_page_fallbacks, static_cast<int64_t>(asked - got));
    if (once(Once::huge_fallback)) {
      warning_message(
          "reserve_huge_os_pages: the kernel gave %zu of the %zu pages of 1 GiB asked for; reserved %zu MiB in "
          "2 MiB pages and %zu MiB in regular pages instead (reserve them at boot with mi-reserve, or in "
          "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)",
          got, asked, large / MiB, regular / MiB);
    }
  }
  size_t reserve = option_get_size(mi_option_reserve_os_memory);
  if (reserve > 0) {
    long eager = option_get(mi_option_arena_eager_commit);
    bool commit = (eager == 1) || (eager == 2 && os_has_overcommit());
    mi_reserve_os_memory(reserve, commit, true);
  }
}
}  // namespace mi

// ---------------------------------------------------------------------------
// Public API (mimalloc.h)
// ---------------------------------------------------------------------------
using namespace mi;

extern "C" {

int mi_reserve_os_memory_ex(size_t size, bool commit, bool allow_large, bool exclusive,
                            mi_arena_id_t* arena_id) mi_attr_noexcept {
  if (arena_id != nullptr) *arena_id = 0;
  size = align_up(size, ARENA_BLOCK_SIZE);
  MemId memid;
  void* p = os_alloc_aligned(size, ARENA_BLOCK_SIZE, commit, allow_large, &memid, MI_DEBUG != 0, ACCOUNT_UNBOUND);
  if (p == nullptr) return ENOMEM;
  int id = arena_add(p, size, memid.initially_committed, memid.is_pinned, memid.initially_zero, -1, exclusive, memid,
                     memid.is_accessible);
  if (id == 0) {
    os_free(p, size, memid);
    return ENOMEM;
  }
  verbose_message("reserved %zu KiB memory%s", size / KiB, memid.is_large ? " (in large OS pages)" : "");
  if (arena_id != nullptr) *arena_id = id;
  return 0;
}

int mi_reserve_os_memory(size_t size, bool commit, bool allow_large) mi_attr_noexcept {
  return mi_reserve_os_memory_ex(size, commit, allow_large, false, nullptr);
}

int mi_reserve_huge_os_pages_at_ex(size_t pages, int numa_node, size_t timeout_msecs, bool exclusive,
                                   mi_arena_id_t* arena_id) mi_attr_noexcept {
  if (arena_id != nullptr) *arena_id = 0;
  if (pages == 0) return 0;
  if (numa_node < -1) numa_node = -1;
  if (numa_node >= 0) numa_node = numa_node % numa_node_count();
  size_t got = reserve_huge_pages_at(pages, numa_node, timeout_msecs, exclusive, arena_id);
  if (got == 0) {
    warning_message(
        "failed to reserve %zu GiB of huge (1 GiB) pages on node %d: the kernel has none free "
        "(reserve them with mi-reserve or /sys/kernel/mm/hugepages)",
        pages, numa_node);
    return ENOMEM;
  }
  if (got < pages) {
    warning_message("reserved %zu of the %zu 1 GiB pages asked for on node %d", got, pages, numa_node);
  }
  return 0;
}

int mi_reserve_huge_os_pages_at(size_t pages, int numa_node, size_t timeout_msecs) mi_attr_noexcept {
  return mi_reserve_huge_os_pages_at_ex(pages, numa_node, timeout_msecs, false, nullptr);
}

int mi_reserve_huge_os_pages_interleave(size_t pages, size_t numa_nodes, size_t timeout_msecs) mi_attr_noexcept {
  if (pages == 0) return 0;
  size_t nodes = (numa_nodes > 0) ? numa_nodes : static_cast<size_t>(numa_node_count());
  if (nodes == 0) nodes = 1;
  size_t per = pages / nodes;
  size_t rem = pages % nodes;
  size_t per_timeout = timeout_msecs / nodes + 50;
  int result = 0;
  for (size_t n = 0; n < nodes; n++) {
    size_t want = per + (n < rem ? 1 : 0);
    if (want == 0) continue;
    int err = mi_reserve_huge_os_pages_at(want, static_cast<int>(n), per_timeout);
    if (err != 0) result = err;
  }
  return result;
}

int mi_reserve_huge_os_pages(size_t pages, double max_secs, size_t* pages_reserved) mi_attr_noexcept {
  if (pages_reserved != nullptr) *pages_reserved = 0;
  size_t got = reserve_huge_pages_at(pages, -1, static_cast<size_t>(max_secs * 1000.0), false, nullptr);
  if (pages_reserved != nullptr) *pages_reserved = got;
  return (got == 0 && pages > 0) ? ENOMEM : 0;
}
}  // extern "C"
