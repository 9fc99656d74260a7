// glibc_introspection.cpp: see glibc_introspection.h.
#include "glibc_introspection.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "../../include/mimalloc.h"
#include "../arena/arena.h"
#include "../common/format.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../heap/size_class.h"
#include "../os/os.h"
#include "../segment/segment.h"
#include "stats_snapshot.h"

namespace mi {

namespace {

size_t z(int64_t v) { return v > 0 ? static_cast<size_t>(v) : 0; }

// Text collected in a buffer of the caller's stack and handed on when full:
// to a FILE* (malloc_info) or to stderr (malloc_stats). The formatting never
// allocates; fwrite may (a FILE's buffer), with no lock of ours held.
class Text {
 public:
  explicit Text(FILE* fp) : fp_(fp) {}  // null: stderr
  Text(const Text&) = delete;
  Text& operator=(const Text&) = delete;
  ~Text() { flush(); }

  void put(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char line[512];
    va_list args;
    va_start(args, fmt);
    const size_t n = format_v(line, sizeof(line), fmt, args);
    va_end(args);
    if (len_ + n > sizeof(buf_)) flush();
    memcpy(buf_ + len_, line, n);
    len_ += n;
  }

  void flush() {
    if (len_ == 0) return;
    if (fp_ != nullptr) {
      if (fwrite(buf_, 1, len_, fp_) != len_) failed_ = true;
    } else {
      os_write_stderr(buf_, len_);
    }
    len_ = 0;
  }

  bool failed() const { return failed_; }

 private:
  FILE* fp_;
  char buf_[8 * KiB];
  size_t len_ = 0;
  bool failed_ = false;
};

// The rows malloc_info and malloc_stats show as glibc's heaps/arenas: every
// node, then the unbound arenas (several nodes) and the segments outside
// arenas where they hold memory. The metadata holds no block: it is in the
// totals only.
int heap_rows(const MemorySnapshot& snap, int* rows) {
  int n = 0;
  for (int node = 0; node < snap.node_count && node < NUMA_MAX_NODES; node++) rows[n++] = node;
  if (snap.rows[ROW_UNBOUND].reserved > 0) rows[n++] = ROW_UNBOUND;
  if (snap.rows[ROW_OUTSIDE].reserved > 0) rows[n++] = ROW_OUTSIDE;
  return n;
}

const char* heap_kind(int row) {
  if (row == ROW_UNBOUND) return "unbound-arenas";
  if (row == ROW_OUTSIDE) return "outside-arenas";
  return "node";
}

// M_TRIM_THRESHOLD -1 turns purging off; the purge_delay it replaced comes
// back with any other value.
std::atomic<long> purge_delay_before_mallopt{LONG_MIN};

}  // namespace

struct mallinfo2 glibc_mallinfo2() noexcept {
  MemorySnapshot snap;
  stats_snapshot(&snap);
  const MemoryRow& t = snap.rows[ROW_TOTAL];
  struct mallinfo2 mi2;
  memset(&mi2, 0, sizeof(mi2));
  const size_t hblkhd = z(t.big_committed);
  mi2.arena = z(t.committed - t.big_committed);
  mi2.ordblks = z(t.free_blocks);
  mi2.smblks = 0;
  mi2.hblks = z(t.big_blocks);
  mi2.hblkhd = hblkhd;
  mi2.usmblks = 0;
  mi2.fsmblks = 0;
  mi2.uordblks = z(t.blocks - t.big_block_bytes);
  mi2.fordblks = (mi2.arena > mi2.uordblks) ? mi2.arena - mi2.uordblks : 0;
  mi2.keepcost = z(t.purge_pending);
  return mi2;
}

struct mallinfo glibc_mallinfo() noexcept {
  const struct mallinfo2 m = glibc_mallinfo2();
  auto sat = [](size_t v) { return v > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(v); };
  struct mallinfo r;
  memset(&r, 0, sizeof(r));
  r.arena = sat(m.arena);
  r.ordblks = sat(m.ordblks);
  r.smblks = sat(m.smblks);
  r.hblks = sat(m.hblks);
  r.hblkhd = sat(m.hblkhd);
  r.usmblks = sat(m.usmblks);
  r.fsmblks = sat(m.fsmblks);
  r.uordblks = sat(m.uordblks);
  r.fordblks = sat(m.fordblks);
  r.keepcost = sat(m.keepcost);
  return r;
}

void glibc_malloc_stats() noexcept {
  MemorySnapshot snap;
  stats_snapshot(&snap);
  int rows[NUMA_MAX_NODES + 2];
  const int n = heap_rows(snap, rows);
  Text out(nullptr);
  // glibc's shape, "Arena N" being NUMA node N (then the other rows), in
  // one write when it fits the buffer
  for (int i = 0; i < n; i++) {
    const MemoryRow& r = snap.rows[rows[i]];
    if (rows[i] < NUMA_MAX_NODES) out.put("Arena %d:\n", rows[i]);
    else out.put("Arena %d (%s):\n", i, heap_kind(rows[i]));
    out.put("system bytes     = %10zu\n", z(r.committed - r.big_committed));
    out.put("in use bytes     = %10zu\n", z(r.blocks - r.big_block_bytes));
  }
  const MemoryRow& t = snap.rows[ROW_TOTAL];
  out.put("Total (incl. mmap):\n");
  out.put("system bytes     = %10zu\n", z(t.committed));
  out.put("in use bytes     = %10zu\n", z(t.blocks));
  out.put("max mmap regions = %10zu\n", z(stats_global.huge_blocks.peak.load(std::memory_order_relaxed)));
  out.put("max mmap bytes   = %10zu\n", z(snap.big_block_bytes_peak));
}

namespace {

// The <total>, <system> and <aspace> elements of a heap or of the whole
// process (whose peak is the process's, not the sum of its rows').
void put_totals(Text& out, const MemoryRow& r, int64_t committed_peak) {
  out.put("<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  out.put("<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", z(r.free_blocks), z(r.free_block_bytes));
  out.put("<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", z(r.big_blocks), z(r.big_committed));
  out.put("<system type=\"current\" size=\"%zu\"/>\n", z(r.committed));
  out.put("<system type=\"max\" size=\"%zu\"/>\n", z(committed_peak));
  out.put("<aspace type=\"total\" size=\"%zu\"/>\n", z(r.reserved));
  out.put("<aspace type=\"mprotect\" size=\"%zu\"/>\n", z(r.committed));
}

}  // namespace

int glibc_malloc_info(int options, FILE* fp) noexcept {
  if (options != 0 || fp == nullptr) {
    errno = EINVAL;
    return -1;
  }
  MemorySnapshot snap;
  stats_snapshot(&snap);
  int rows[NUMA_MAX_NODES + 2];
  const int n = heap_rows(snap, rows);
  Text out(fp);
  out.put("<malloc version=\"1\">\n");
  for (int i = 0; i < n; i++) {
    const int row = rows[i];
    const MemoryRow& r = snap.rows[row];
    if (row < NUMA_MAX_NODES) out.put("<heap nr=\"%d\" node=\"%d\">\n<sizes>\n", i, row);
    else out.put("<heap nr=\"%d\" memory=\"%s\">\n<sizes>\n", i, heap_kind(row));
    // per size class: glibc's count/total are free blocks; live ones in our own attributes
    BinFigures bins[BIN_HUGE + 1];
    stats_bins(row, snap.node_count, bins);
    for (size_t b = 1; b <= BIN_LARGE_MAX; b++) {
      const BinFigures& f = bins[b];
      if (f.pages == 0) continue;
      out.put(
          "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\" inuse_total=\"%zu\" inuse_count=\"%zu\" "
          "pages=\"%zu\"/>\n",
          (b == 1) ? size_t{1} : bin_block_sizes[b - 1] + 1, bin_block_sizes[b], z(f.free_bytes), z(f.free_blocks),
          z(f.bytes), z(f.blocks), z(f.pages));
    }
    out.put("</sizes>\n");
    put_totals(out, r, r.committed_peak);
    out.put("</heap>\n");
  }
  put_totals(out, snap.rows[ROW_TOTAL], snap.committed_peak);
  out.put("</malloc>\n");
  out.flush();
  if (out.failed()) {
    errno = EIO;
    return -1;
  }
  return 0;
}

int glibc_mallopt(int param, int value) noexcept {
  if (param != M_TRIM_THRESHOLD) return 0;
  if (value < 0) {
    // glibc: -1 turns trimming off. Here: free memory is never purged.
    long before = LONG_MIN;
    purge_delay_before_mallopt.compare_exchange_strong(before, option_get(mi_option_purge_delay));
    option_set_from(mi_option_purge_delay, -1, OptionSource::runtime, nullptr, 0);
  } else {
    // a threshold: trimming on. Memory goes back after purge_delay, as
    // configured; the byte count itself has no equivalent here.
    const long before = purge_delay_before_mallopt.exchange(LONG_MIN);
    if (before != LONG_MIN) option_set_from(mi_option_purge_delay, before, OptionSource::runtime, nullptr, 0);
  }
  return 1;
}

int glibc_malloc_trim(size_t pad) noexcept {
  (void)pad;  // everything free is given back: no pad is kept at a top
  auto given_back = [] {
    return os_counters.purged.load(std::memory_order_relaxed) + os_counters.reset.load(std::memory_order_relaxed);
  };
  const int64_t before = given_back();
  mi_collect(true);
  segments_try_purge(true);
  arenas_try_purge(true);
  return given_back() > before ? 1 : 0;
}

}  // namespace mi
