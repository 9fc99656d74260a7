// stats_report.cpp: the statistics report (MIMALLOC_SHOW_STATS=1, mi_stats_print)
// and the statistics API of mimalloc.h (mi_stats_*, mi_process_info).
// Here, above every layer, because the report reads all of them.
#include <stdarg.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../arena/arena.h"
#include "../common/format.h"
#include "../common/messages.h"
#include "../common/stats.h"
#include "../heap/heap.h"
#include "../heap/size_class.h"
#include "../os/os.h"
#include "../topology/topology.h"

namespace mi {

namespace {

int64_t load(const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); }

// Output through a callback, a line at a time.
struct Printer {
  mi_output_fun* out;
  void* arg;
  void line(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char buf[MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    format_v(buf, sizeof(buf), fmt, args);
    va_end(args);
    output_to(out, arg, buf);
  }
};

void print_memory_row(Printer& p, const char* name, int64_t current, int64_t peak) {
  char c[32], k[32];
  p.line("  %-22s %14s %14s\n", name, format_bytes(c, sizeof(c), current), format_bytes(k, sizeof(k), peak));
}

void print_gauge_row(Printer& p, const char* name, const StatGauge& g) {
  char c[32], k[32], t[32];
  p.line("  %-22s %14s %14s %16s\n", name, format_count(c, sizeof(c), load(g.current)),
         format_count(k, sizeof(k), load(g.peak)), format_count(t, sizeof(t), load(g.total)));
}

}  // namespace

void stats_print(mi_output_fun* out, void* arg) noexcept {
  Printer p{out, arg};
  char a[32], b[32], c[32];
  p.line("mimalloc-numa %s statistics (pid %ld)\n", "0.1.0", static_cast<long>(getpid()));
  p.line("  %-22s %14s %14s %16s\n", "memory", "current", "peak", "");
  print_memory_row(p, "reserved", load(os_counters.reserved), load(os_counters.reserved_peak));
  print_memory_row(p, "committed", load(os_counters.committed), load(os_counters.committed_peak));
  print_memory_row(p, "huge blocks", load(stats_global.huge_bytes.current), load(stats_global.huge_bytes.peak));
  p.line("  %-22s %14s %14s\n", "purged (total)", format_bytes(a, sizeof(a), load(os_counters.purged)),
         "");
  p.line("  %-22s %14s %14s %16s\n", "objects", "current", "peak", "total");
  print_gauge_row(p, "segments", stats_global.segments);
  print_gauge_row(p, "pages", stats_global.pages);
  print_gauge_row(p, "abandoned segments", stats_global.segments_abandoned);
  print_gauge_row(p, "threads", stats_global.threads);
  p.line("  %-22s %14s\n", "segments reclaimed", format_count(a, sizeof(a), load(stats_global.segments_reclaimed)));

  size_t arena_n, arena_reserved, arena_used, huge_pages;
  arenas_stats(&arena_n, &arena_reserved, &arena_used, &huge_pages);
  p.line("arenas: %zu, %s reserved, %s in use, %zu huge (1 GiB) pages (%lld asked for but not given); "
         "2 MiB-page fallbacks to 4 KiB: %lld\n",
         arena_n, format_bytes(a, sizeof(a), static_cast<int64_t>(arena_reserved)),
         format_bytes(b, sizeof(b), static_cast<int64_t>(arena_used)), huge_pages,
         static_cast<long long>(load(stats_global.huge_page_fallbacks)),
         static_cast<long long>(load(stats_global.large_page_fallbacks)));
  p.line("os calls: mmap %lld, commit %lld, purge %lld; page searches %lld (avg %lld.%02lld steps), free-list extensions %lld\n",
         static_cast<long long>(load(os_counters.mmap_calls)), static_cast<long long>(load(os_counters.commit_calls)),
         static_cast<long long>(load(os_counters.purge_calls)), static_cast<long long>(load(stats_global.page_searches)),
         static_cast<long long>(load(stats_global.page_searches) ? load(stats_global.page_search_steps) / load(stats_global.page_searches) : 0),
         static_cast<long long>(load(stats_global.page_searches) ? (load(stats_global.page_search_steps) * 100 / load(stats_global.page_searches)) % 100 : 0),
         static_cast<long long>(load(stats_global.pages_extended)));

  // NUMA nodes
  const Topology& topo = topology();
  if (topo.node_count > 1 || arena_n > 0) {
    p.line("numa nodes: %d%s\n", topo.node_count,
           (topo.node_count > 1 && !topo.binding_possible) ? " (memory not bound: the kernel does not have these nodes)" : "");
    p.line("  %4s %4s %12s %12s %12s %12s %6s %9s %9s %9s\n", "node", "os", "reserved", "committed", "in use", "purged",
           "huge", "local", "remote", "fallbacks");
    for (int n = 0; n < topo.node_count; n++) {
      NodeArenaStats ns;
      if (!arenas_node_stats(n, &ns)) continue;
      char r[24], c[24], u[24], g[24], l[24], rm[24], f[24];
      p.line("  %4d %4d %12s %12s %12s %12s %2zu/%-3zu %9s %9s %9s\n", n, topo.nodes[n].os_index,
             format_bytes(r, sizeof(r), static_cast<int64_t>(ns.reserved)), format_bytes(c, sizeof(c), static_cast<int64_t>(ns.committed)),
             format_bytes(u, sizeof(u), static_cast<int64_t>(ns.in_use)), format_bytes(g, sizeof(g), static_cast<int64_t>(ns.purged)),
             ns.huge_pages_in_use, ns.huge_pages_reserved, format_count(l, sizeof(l), static_cast<int64_t>(ns.local_segments)),
             format_count(rm, sizeof(rm), static_cast<int64_t>(ns.remote_segments)),
             format_count(f, sizeof(f), static_cast<int64_t>(ns.fallbacks)));
    }
  }

  // allocations by size class
  int64_t total = 0;
  for (size_t bin = 1; bin <= BIN_HUGE; bin++) total += load(stats_global.bin_malloc[bin]);
  p.line("allocations by size class (%s in all):\n", format_count(a, sizeof(a), total));
  p.line("  %6s %12s %14s %8s\n", "bin", "block size", "allocations", "share");
  for (size_t bin = 1; bin <= BIN_LARGE_MAX; bin++) {
    int64_t n = load(stats_global.bin_malloc[bin]);
    if (n == 0) continue;
    int64_t permille = (total > 0) ? n * 1000 / total : 0;
    p.line("  %6zu %12s %14s %5lld.%lld%%\n", bin, format_bytes(b, sizeof(b), static_cast<int64_t>(bin_block_sizes[bin])),
           format_count(c, sizeof(c), n), static_cast<long long>(permille / 10), static_cast<long long>(permille % 10));
  }
  int64_t huge_n = load(stats_global.bin_malloc[BIN_HUGE]);
  if (huge_n > 0) {
    int64_t avg = load(stats_global.huge_alloc_bytes) / huge_n;
    int64_t permille = (total > 0) ? huge_n * 1000 / total : 0;
    p.line("  %6s %12s %14s %5lld.%lld%%  (average %s)\n", "huge", "> 2 MiB", format_count(c, sizeof(c), huge_n),
           static_cast<long long>(permille / 10), static_cast<long long>(permille % 10),
           format_bytes(b, sizeof(b), avg));
  }

  // the process
  size_t rss = 0, peak_rss = 0;
  os_process_rss(&rss, &peak_rss);
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  int64_t elapsed = stats_elapsed_ms();
  p.line("process: resident %s, peak resident %s, elapsed %lld.%03lld s, user %ld.%03ld s, system %ld.%03ld s, "
         "page faults %ld\n",
         format_bytes(a, sizeof(a), static_cast<int64_t>(rss)), format_bytes(b, sizeof(b), static_cast<int64_t>(peak_rss)),
         static_cast<long long>(elapsed / 1000), static_cast<long long>(elapsed % 1000), static_cast<long>(ru.ru_utime.tv_sec),
         static_cast<long>(ru.ru_utime.tv_usec / 1000), static_cast<long>(ru.ru_stime.tv_sec),
         static_cast<long>(ru.ru_stime.tv_usec / 1000), static_cast<long>(ru.ru_majflt + ru.ru_minflt));
}


}  // namespace mi

using namespace mi;

extern "C" {

void mi_stats_merge(void) mi_attr_noexcept {
  Heap* heap = heap_get_default();
  if (heap_is_initialized(heap)) stats_merge_thread(heap->tld);
}

void mi_stats_print_out(mi_output_fun* out, void* arg) mi_attr_noexcept {
  mi_stats_merge();
  stats_print(out, arg);
}

void mi_stats_print(void* out) mi_attr_noexcept {
  (void)out;  // mimalloc 2.x documents `out` as ignored (it was a FILE* once)
  mi_stats_print_out(nullptr, nullptr);
}

void mi_stats_reset(void) mi_attr_noexcept {
  mi_stats_merge();
  stats_reset();
}

void mi_thread_stats_print_out(mi_output_fun* out, void* arg) mi_attr_noexcept {
  Heap* heap = heap_get_default();
  Printer p{out, arg};
  if (!heap_is_initialized(heap)) {
    p.line("thread statistics: this thread has not allocated\n");
    return;
  }
  int64_t total = 0;
  int64_t by_bin[BIN_HUGE + 1] = {};
  for (Heap* h = heap->tld->heaps; h != nullptr; h = h->next) {
    for (size_t w = 0; w < PAGES_DIRECT; w++) by_bin[bin_of_wsize(w)] += h->malloc_count_direct[w];
  }
  for (size_t b = 0; b <= BIN_HUGE; b++) {
    by_bin[b] += heap->tld->stats.bin_malloc[b];
    total += by_bin[b];
  }
  char a[32], c[32];
  p.line("thread statistics (since the last merge): %s allocations, %lld free-list extensions, %lld page searches\n",
         format_count(a, sizeof(a), total), static_cast<long long>(heap->tld->stats.pages_extended),
         static_cast<long long>(heap->tld->stats.page_searches));
  for (size_t b = 1; b <= BIN_HUGE; b++) {
    if (by_bin[b] == 0) continue;
    p.line("  bin %3zu %12s %14s\n", b, b == BIN_HUGE ? "huge" : format_bytes(a, sizeof(a), static_cast<int64_t>(bin_block_sizes[b])),
           format_count(c, sizeof(c), by_bin[b]));
  }
}

void mi_process_info(size_t* elapsed_msecs, size_t* user_msecs, size_t* system_msecs, size_t* current_rss,
                     size_t* peak_rss, size_t* current_commit, size_t* peak_commit, size_t* page_faults) mi_attr_noexcept {
  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  size_t rss = 0, peak = 0;
  os_process_rss(&rss, &peak);
  if (elapsed_msecs != nullptr) *elapsed_msecs = static_cast<size_t>(stats_elapsed_ms());
  if (user_msecs != nullptr) *user_msecs = static_cast<size_t>(ru.ru_utime.tv_sec) * 1000 + static_cast<size_t>(ru.ru_utime.tv_usec) / 1000;
  if (system_msecs != nullptr) *system_msecs = static_cast<size_t>(ru.ru_stime.tv_sec) * 1000 + static_cast<size_t>(ru.ru_stime.tv_usec) / 1000;
  if (current_rss != nullptr) *current_rss = rss;
  if (peak_rss != nullptr) *peak_rss = peak;
  int64_t committed = os_counters.committed.load(std::memory_order_relaxed);
  int64_t committed_peak = os_counters.committed_peak.load(std::memory_order_relaxed);
  if (current_commit != nullptr) *current_commit = committed > 0 ? static_cast<size_t>(committed) : 0;
  if (peak_commit != nullptr) *peak_commit = committed_peak > 0 ? static_cast<size_t>(committed_peak) : 0;
  if (page_faults != nullptr) *page_faults = static_cast<size_t>(ru.ru_majflt);
}

int mi_version(void) mi_attr_noexcept { return MI_MALLOC_VERSION; }

}  // extern "C"
