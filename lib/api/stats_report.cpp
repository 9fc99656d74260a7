// stats_report.cpp: the statistics report (MIMALLOC_SHOW_STATS=1 at exit,
// mi_stats_print) and the statistics API of mimalloc.h (mi_stats_*,
// mi_process_info). Here, above every layer, because the report reads all of
// them; its memory figures come from api/stats_snapshot.h, like those of
// mi_numa_stats and the glibc functions.
//
// A report is made to be read from the log of a forking server, where many
// processes write at once: every line starts with the pid ("[4711] "), and
// the whole report is built in a buffer of its own mapping (not malloc) and
// written with one write(2) (one call of a registered output function), so
// that two processes exiting together give two intact reports. (A pipe
// keeps writes whole only up to 4 KiB: there the pid tags sort the lines.)
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../arena/arena.h"
#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../heap/heap.h"
#include "../heap/heap_stats.h"
#include "../heap/page.h"
#include "../heap/size_class.h"
#include "../os/os.h"
#include "../topology/topology.h"
#include "stats_file.h"
#include "stats_report.h"
#include "stats_snapshot.h"

namespace mi {

namespace {

int64_t load(const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); }

constexpr size_t REPORT_BUFFER = 128 * KiB;  // a report of 64 nodes and every size class fits

// Lines of a report, collected in one buffer and written in one piece.
class Report {
 public:
  // out == nullptr && fd < 0: the registered output (stderr by default)
  Report(mi_output_fun* out, void* arg, int fd) : out_(out), arg_(arg), fd_(fd) {
    buf_ = static_cast<char*>(os_map_scratch(REPORT_BUFFER));
    cap_ = (buf_ != nullptr) ? REPORT_BUFFER : sizeof(fallback_);
    if (buf_ == nullptr) buf_ = fallback_;  // no memory for the buffer: written in pieces
    format(prefix_, sizeof(prefix_), "[%ld] ", static_cast<long>(getpid()));
  }
  ~Report() {
    flush();
    if (buf_ != fallback_) os_unmap(buf_, REPORT_BUFFER);
  }
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;

  void line(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char text[MESSAGE_MAX];
    size_t n = format(text, sizeof(text), "%s", prefix_);
    va_list args;
    va_start(args, fmt);
    n += format_v(text + n, sizeof(text) - n, fmt, args);
    va_end(args);
    if (n == 0 || text[n - 1] != '\n') {  // a line cut at MESSAGE_MAX still ends
      if (n + 1 >= sizeof(text)) n = sizeof(text) - 2;
      text[n++] = '\n';
      text[n] = 0;
    }
    if (len_ + n + 1 > cap_) flush();
    memcpy(buf_ + len_, text, n);
    len_ += n;
  }

  void flush() {
    if (len_ == 0) return;
    buf_[len_] = 0;
    if (fd_ >= 0) {
      const char* p = buf_;
      size_t left = len_;
      while (left > 0) {  // one write, unless the kernel takes less (a full disk)
        ssize_t w = write(fd_, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        p += w;
        left -= static_cast<size_t>(w);
      }
    } else {
      output_to(out_, arg_, buf_);
    }
    len_ = 0;
  }

 private:
  mi_output_fun* out_;
  void* arg_;
  int fd_;
  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  char prefix_[32];
  char fallback_[4 * KiB];
};

struct Bytes {
  char s[32];
  explicit Bytes(int64_t v) { format_bytes(s, sizeof(s), v); }
};
struct Count {
  char s[32];
  explicit Count(int64_t v) { format_count(s, sizeof(s), v); }
};

void print_gauge_row(Report& r, const char* name, const StatGauge& g) {
  r.line("  %-22s %14s %14s %16s", name, Count(load(g.current)).s, Count(load(g.peak)).s, Count(load(g.total)).s);
}

void print_memory_row(Report& r, const char* name, const MemoryRow& m) {
  r.line("  %-16s %12s %12s %12s %12s %12s", name, Bytes(m.reserved).s, Bytes(m.committed).s, Bytes(m.segments).s,
         Bytes(m.blocks).s, Bytes(m.purged).s);
}

bool row_is_empty(const MemoryRow& m) { return m.reserved == 0 && m.committed == 0 && m.purged == 0; }

void print_memory(Report& r, const MemorySnapshot& snap) {
  r.line("%-18s %12s %12s %12s %12s %12s", "memory", "reserved", "committed", "segments", "blocks", "purged");
  for (int n = 0; n < snap.node_count && n < NUMA_MAX_NODES; n++) {
    char name[24];
    format(name, sizeof(name), "node %d", n);
    print_memory_row(r, name, snap.rows[n]);
  }
  if (!row_is_empty(snap.rows[ROW_UNBOUND])) print_memory_row(r, "unbound arenas", snap.rows[ROW_UNBOUND]);
  print_memory_row(r, "outside arenas", snap.rows[ROW_OUTSIDE]);
  print_memory_row(r, "metadata", snap.rows[ROW_META]);
  const MemoryRow& t = snap.rows[ROW_TOTAL];
  print_memory_row(r, "total", t);
  r.line("  %-16s %12s %12s", "peak", Bytes(snap.reserved_peak).s, Bytes(snap.committed_peak).s);
  r.line("  (segments: the committed memory of live segments; blocks: the program's %s live blocks)",
         Count(t.block_count).s);
  r.line("  free in pages %s (%s blocks); waiting for a purge %s; blocks over 2 MiB: %s live, %s (peak %s)",
         Bytes(t.free_block_bytes).s, Count(t.free_blocks).s, Bytes(t.purge_pending).s, Count(t.big_blocks).s,
         Bytes(t.big_block_bytes).s, Bytes(snap.big_block_bytes_peak).s);
}

void print_numa(Report& r, const MemorySnapshot& snap) {
  const Topology& topo = topology();
  r.line("numa nodes: %d%s", topo.node_count,
         (topo.node_count > 1 && !topo.binding_possible) ? " (memory not bound: the kernel does not have these nodes)"
                                                         : "");
  r.line("  %4s %4s %9s %9s %9s %10s", "node", "os", "local", "remote", "fallbacks", "1G pages");
  for (int n = 0; n < snap.node_count && n < NUMA_MAX_NODES; n++) {
    const MemoryRow& m = snap.rows[n];
    char huge[32];
    format(huge, sizeof(huge), "%lld/%lld", static_cast<long long>(m.huge_pages_in_use),
           static_cast<long long>(m.huge_pages));
    r.line("  %4d %4d %9s %9s %9s %10s", n, topo.nodes[n].os_index, Count(m.local_segments).s,
           Count(m.remote_segments).s, Count(m.fallbacks).s, huge);
  }
}

void print_size_classes(Report& r) {
  int64_t total = 0;
  for (size_t bin = 1; bin <= BIN_HUGE; bin++) total += load(stats_global.bin_malloc[bin]);
  r.line("allocations by size class (%s in all):", Count(total).s);
  r.line("  %6s %12s %14s %8s", "bin", "block size", "allocations", "share");
  for (size_t bin = 1; bin <= BIN_LARGE_MAX; bin++) {
    int64_t n = load(stats_global.bin_malloc[bin]);
    if (n == 0) continue;
    int64_t permille = (total > 0) ? n * 1000 / total : 0;
    r.line("  %6zu %12s %14s %5lld.%lld%%", bin, Bytes(static_cast<int64_t>(bin_block_sizes[bin])).s, Count(n).s,
           static_cast<long long>(permille / 10), static_cast<long long>(permille % 10));
  }
  int64_t big_n = load(stats_global.bin_malloc[BIN_HUGE]);
  if (big_n > 0) {
    int64_t avg = load(stats_global.huge_alloc_bytes) / big_n;
    int64_t permille = (total > 0) ? big_n * 1000 / total : 0;
    r.line("  %6s %12s %14s %5lld.%lld%%  (average %s)", "big", "> 2 MiB", Count(big_n).s,
           static_cast<long long>(permille / 10), static_cast<long long>(permille % 10), Bytes(avg).s);
  }
}

void print_report(Report& r) {
  MemorySnapshot snap;
  stats_snapshot(&snap);
  char name[64];
  stats_program_name(name, sizeof(name));
  r.line("mimalloc-numa %s statistics of %s (pid %ld)", "0.1.0", name, static_cast<long>(getpid()));
  print_memory(r, snap);
  r.line("%-24s %14s %14s %16s", "objects", "current", "peak", "total");
  print_gauge_row(r, "segments", stats_global.segments);
  print_gauge_row(r, "pages", stats_global.pages);
  print_gauge_row(r, "abandoned segments", stats_global.segments_abandoned);
  print_gauge_row(r, "threads", stats_global.threads);
  r.line("  %-22s %14s", "segments reclaimed", Count(load(stats_global.segments_reclaimed)).s);
  r.line("  %-22s %14s", "thread node moves", Count(load(stats_global.node_moves)).s);
  const MemoryRow& t = snap.rows[ROW_TOTAL];
  r.line(
      "arenas: %lld; 1 GiB pages: %lld reserved, %lld in use, %lld asked for but not given; "
      "2 MiB-page fallbacks to 4 KiB: %lld",
      static_cast<long long>(t.arenas), static_cast<long long>(t.huge_pages),
      static_cast<long long>(t.huge_pages_in_use), static_cast<long long>(load(stats_global.huge_page_fallbacks)),
      static_cast<long long>(load(stats_global.large_page_fallbacks)));
  const int64_t searches = load(stats_global.page_searches);
  const int64_t steps = load(stats_global.page_search_steps);
  r.line(
      "os calls: mmap %lld, commit %lld, purge %lld; page searches %lld (avg %lld.%02lld steps), "
      "free-list extensions %lld",
      static_cast<long long>(load(os_counters.mmap_calls)), static_cast<long long>(load(os_counters.commit_calls)),
      static_cast<long long>(load(os_counters.purge_calls)), static_cast<long long>(searches),
      static_cast<long long>(searches ? steps / searches : 0),
      static_cast<long long>(searches ? (steps * 100 / searches) % 100 : 0),
      static_cast<long long>(load(stats_global.pages_extended)));
  if (snap.node_count > 1 || t.arenas > 0) print_numa(r, snap);
  print_size_classes(r);

  size_t rss = 0, peak_rss = 0;
  os_process_rss(&rss, &peak_rss);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const int64_t elapsed = stats_elapsed_ms();
  r.line(
      "process: resident %s, peak resident %s, elapsed %lld.%03lld s (since this process started), "
      "user %ld.%03ld s, system %ld.%03ld s, page faults %ld",
      Bytes(static_cast<int64_t>(rss)).s, Bytes(static_cast<int64_t>(peak_rss)).s,
      static_cast<long long>(elapsed / 1000), static_cast<long long>(elapsed % 1000),
      static_cast<long>(ru.ru_utime.tv_sec), static_cast<long>(ru.ru_utime.tv_usec / 1000),
      static_cast<long>(ru.ru_stime.tv_sec), static_cast<long>(ru.ru_stime.tv_usec / 1000),
      static_cast<long>(ru.ru_majflt + ru.ru_minflt));
}

}  // namespace

void stats_print(mi_output_fun* out, void* arg) noexcept {
  Report r(out, arg, -1);
  print_report(r);
}

void stats_print_at_exit() noexcept {
  const int fd = stats_file_open();
  {
    Report r(nullptr, nullptr, fd);
    print_report(r);
  }
  if (fd >= 0) close(fd);
}

}  // namespace mi

using namespace mi;

extern "C" {

void mi_stats_merge(void) mi_attr_noexcept {
  Heap* heap = heap_get_default();
  if (heap_is_initialized(heap)) heap_stats_merge(heap->tld);
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
  os_counters_reset_peaks();
}

void mi_thread_stats_print_out(mi_output_fun* out, void* arg) mi_attr_noexcept {
  Heap* heap = heap_get_default();
  Report r(out, arg, -1);
  if (!heap_is_initialized(heap)) {
    r.line("thread statistics: this thread has not allocated");
    return;
  }
  int64_t total = 0;
  int64_t by_bin[BIN_HUGE + 1];
  heap_stats_settle(heap->tld, by_bin);  // blocks counted ahead of their allocation
  for (size_t b = 0; b <= BIN_HUGE; b++) {
    by_bin[b] = heap->tld->stats.bin_malloc[b] - by_bin[b];
    total += by_bin[b];
  }
  r.line("thread statistics (since the last merge): %s allocations, %lld free-list extensions, %lld page searches",
         Count(total).s, static_cast<long long>(heap->tld->stats.pages_extended),
         static_cast<long long>(heap->tld->stats.page_searches));
  for (size_t b = 1; b <= BIN_HUGE; b++) {
    if (by_bin[b] == 0) continue;
    r.line("  bin %3zu %12s %14s", b, b == BIN_HUGE ? "> 2 MiB" : Bytes(static_cast<int64_t>(bin_block_sizes[b])).s,
           Count(by_bin[b]).s);
  }
}

void mi_process_info(size_t* elapsed_msecs, size_t* user_msecs, size_t* system_msecs, size_t* current_rss,
                     size_t* peak_rss, size_t* current_commit, size_t* peak_commit,
                     size_t* page_faults) mi_attr_noexcept {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  size_t rss = 0, peak = 0;
  os_process_rss(&rss, &peak);
  if (elapsed_msecs != nullptr) *elapsed_msecs = static_cast<size_t>(stats_elapsed_ms());
  if (user_msecs != nullptr)
    *user_msecs = static_cast<size_t>(ru.ru_utime.tv_sec) * 1000 + static_cast<size_t>(ru.ru_utime.tv_usec) / 1000;
  if (system_msecs != nullptr)
    *system_msecs = static_cast<size_t>(ru.ru_stime.tv_sec) * 1000 + static_cast<size_t>(ru.ru_stime.tv_usec) / 1000;
  if (current_rss != nullptr) *current_rss = rss;
  if (peak_rss != nullptr) *peak_rss = peak;
  // the committed bytes of the statistics: the sum of the memory accounts
  const int64_t committed = stats_committed_now();
  const int64_t committed_peak = os_counters.committed_peak.load(std::memory_order_relaxed);
  if (current_commit != nullptr) *current_commit = committed > 0 ? static_cast<size_t>(committed) : 0;
  if (peak_commit != nullptr) *peak_commit = committed_peak > 0 ? static_cast<size_t>(committed_peak) : 0;
  if (page_faults != nullptr) *page_faults = static_cast<size_t>(ru.ru_majflt);
}

int mi_version(void) mi_attr_noexcept { return MI_MALLOC_VERSION; }

}  // extern "C"
