// numa_shapes.cpp: workload shapes of issue 13, measured in the numa-vm guest.
//
// Each mode (one process, started by the guest's init.sh) runs its workload
// in fresh child processes of this program: once with the library under
// test preloaded (LD_PRELOAD=/t/lib/libmimalloc-numa.so.*, as an operator
// switches a server), once with glibc's malloc (the peer the bounds that are
// ratios refer to) and, where run-numa-vm.sh found Debian's mimalloc 2.0.9
// on the host (it copies it to /t/lib/libmimalloc.so.2), once with that
// (issue 13 gap 4's target: its throughput in shape-churn; no bound but that
// one refers to it). The program itself is not linked with
// the library: it uses malloc/free only, so what is measured is the public
// path. The child's own bookkeeping uses mmap, not malloc, so that it does
// not count in the figures it measures.
//
// Every mode prints one line of figures per allocator,
//   @@ SHAPE <mode> nodes=N alloc=ours|glibc|mimalloc locality=..% small=..% peak=..MiB ops=..M/s ...
// and one verdict, @@ RESULT <mode> PASS|FAIL <summary>. A mode that runs
// each allocator several times in turn (Shape::rounds: shape-churn, whose
// throughput is judged, shape-reuse-*, whose peaks have little room under
// their bounds, and shape-steady and shape-db, whose single runs were 2-5 MiB
// high in some boots) prints each run as an @@ ROUND line first; its SHAPE
// lines are the medians.
//
// The shapes (all threads pinned with sched_setaffinity to a node's CPUs;
// locality = pages of the blocks that move_pages finds on the thread's node):
//   shape-steady        a thread per node allocates 64 B - 4 MiB blocks, frees
//                       every other, allocates again: locality >= 99%;
//                       peak <= 1.03 x glibc's (issue 13 gap 3's target)
//   shape-reuse-exit    a thread on node 0 allocates 64 MiB of 16 B - 64 KiB
//   shape-reuse-live    blocks, frees all of them (-exit) or 90% (-live) and
//                       exits; a thread on node 1 then allocates the same:
//                       its locality >= 99%; peak <= 1.05 x glibc's (gap 2);
//                       -live prints nodes 0 and 1's anonymous memory at the end
//   shape-migrate-alt   a thread allocates 32 MiB on node 0, is re-pinned to
//   shape-migrate-old   the last node, frees every other block (-alt) or the
//                       older half (-old) and allocates 32 MiB more: >= 99%
//                       of the new blocks' pages (and of the pages of blocks
//                       under 1 KiB) on the new node (gap 1); peak <= 1.05 x
//                       glibc's + the bytes freed before the move (left in
//                       the old node's pages: the move's accepted cost)
//   shape-churn         producers on the first half of the nodes allocate
//                       32 B - 4 KiB blocks that consumers on the other half
//                       free; per-node totals of the process's anonymous
//                       memory from /proc/self/numa_maps at four moments:
//                       <= 1% on the consumers' nodes (no drift; 256 KiB
//                       per consumer, its stack and TLS, not counted); peak
//                       <= 2 x glibc's + 16 MiB (against growth); blocks/s
//                       >= mimalloc 2.0.9's (gap 4's target: reported while
//                       open, fails only with NUMA_SHAPES_STRICT=1)
//   shape-blocks256k    a thread per node allocates 64 MiB of 256 KiB blocks
//                       and keeps them: locality >= 99%; peak <= 1.03 x
//                       glibc's (gap 3's target, met: a hard bound)
//   shape-db            a database-like workload on 4 threads (nodes 0-3, or
//                       modulo the node count): each builds a table of rows
//                       (48 B - 1 KiB) and an index grown by realloc, then
//                       updates rows (free + malloc of another size), scans
//                       and deletes: locality >= 99%; peak <= 1.03 x glibc's
//                       (gap 3's target for this workload)
//
// Exit status: 0 if the mode's check passed, 1 if not.
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;
constexpr size_t PAGE = 4096;

// ---------------------------------------------------------------------------
// Bookkeeping outside the allocator under test
// ---------------------------------------------------------------------------
void* map(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "numa_shapes: mmap %zu: %s\n", bytes, strerror(errno));
    exit(2);
  }
  // 4 KiB pages, as touched: with transparent huge pages "always" (the
  // guest) the kernel backs a written 2 MiB range of an anonymous mapping
  // with a huge page when the range lies wholly in the mapping, and whether
  // it does depends on where the mapping lands, which depends on the
  // allocator's own mappings (ours reserves its arenas aligned, and the
  // kernel places the next mappings against them, aligned too). Seen in
  // shape-reuse-*: the block lists (16 MiB each, 142 KiB written) took a
  // 2 MiB huge page on each thread's node under our library, on one under
  // glibc: 1.9 MiB of the shape's own bookkeeping counted against ours.
  (void)madvise(p, bytes, MADV_NOHUGEPAGE);
  return p;
}

struct Blk {
  char* p;
  size_t n;
};

// A list of blocks in an mmap'd array (capacity fixed at creation).
struct Blocks {
  Blk* b = nullptr;
  size_t count = 0, cap = 0;
  void init(size_t capacity) {
    cap = capacity;
    count = 0;
    b = static_cast<Blk*>(map(cap * sizeof(Blk)));
  }
  void add(char* p, size_t n) {
    if (count < cap) b[count++] = Blk{p, n};
  }
};

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------------------
// Topology, pinning, measuring
// ---------------------------------------------------------------------------
int g_nodes = 1;
cpu_set_t g_node_cpus[64];

int parse_list(const char* s, cpu_set_t* set) {
  CPU_ZERO(set);
  int n = 0;
  while (*s) {
    if (*s < '0' || *s > '9') break;
    int a = static_cast<int>(strtol(s, const_cast<char**>(&s), 10)), b = a;
    if (*s == '-') b = static_cast<int>(strtol(s + 1, const_cast<char**>(&s), 10));
    for (int i = a; i <= b && i < CPU_SETSIZE; i++, n++) CPU_SET(i, set);
    if (*s == ',') s++;
  }
  return n;
}

bool read_line(const char* path, char* buf, size_t size) {
  FILE* f = fopen(path, "r");
  if (f == nullptr) return false;
  bool ok = fgets(buf, static_cast<int>(size), f) != nullptr;
  fclose(f);
  return ok;
}

void read_topology() {
  char buf[512], path[128];
  g_nodes = 0;
  for (int n = 0; n < 64; n++) {
    snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", n);
    if (!read_line(path, buf, sizeof(buf))) break;
    parse_list(buf, &g_node_cpus[n]);
    g_nodes = n + 1;
  }
  if (g_nodes == 0) g_nodes = 1;
}

bool pin_to_node(int node) { return sched_setaffinity(0, sizeof(cpu_set_t), &g_node_cpus[node % g_nodes]) == 0; }

// Pages of the blocks (those of size < max_size) on `node`: {on, all}.
struct Share {
  size_t on = 0, all = 0;
  double pct() const { return all ? 100.0 * static_cast<double>(on) / static_cast<double>(all) : 100.0; }
  void add(Share s) {
    on += s.on;
    all += s.all;
  }
};

Share pages_on(const Blocks& bl, int node, size_t max_size = SIZE_MAX) {
  size_t pages = 0;
  for (size_t i = 0; i < bl.count; i++) {
    if (bl.b[i].p == nullptr || bl.b[i].n >= max_size) continue;
    uintptr_t a = reinterpret_cast<uintptr_t>(bl.b[i].p) & ~(PAGE - 1);
    uintptr_t e = reinterpret_cast<uintptr_t>(bl.b[i].p) + bl.b[i].n;
    pages += (e - a + PAGE - 1) / PAGE;
  }
  Share s;
  if (pages == 0) return s;
  uintptr_t* list = static_cast<uintptr_t*>(map(pages * sizeof(uintptr_t)));
  size_t k = 0;
  for (size_t i = 0; i < bl.count; i++) {
    if (bl.b[i].p == nullptr || bl.b[i].n >= max_size) continue;
    uintptr_t a = reinterpret_cast<uintptr_t>(bl.b[i].p) & ~(PAGE - 1);
    uintptr_t e = reinterpret_cast<uintptr_t>(bl.b[i].p) + bl.b[i].n;
    for (; a < e; a += PAGE) list[k++] = a;
  }
  std::sort(list, list + k);
  k = static_cast<size_t>(std::unique(list, list + k) - list);
  int* status = static_cast<int*>(map(k * sizeof(int)));
  constexpr size_t CHUNK = 4096;
  for (size_t i = 0; i < k; i += CHUNK) {
    size_t n = std::min(CHUNK, k - i);
    if (move_pages(0, n, reinterpret_cast<void**>(list + i), nullptr, status + i, 0) != 0) {
      fprintf(stderr, "numa_shapes: move_pages: %s\n", strerror(errno));
      exit(2);
    }
  }
  for (size_t i = 0; i < k; i++) {
    s.all++;
    s.on += (status[i] == node);
  }
  munmap(list, pages * sizeof(uintptr_t));
  munmap(status, k * sizeof(int));
  return s;
}

double peak_mib() {
  char buf[256];
  FILE* f = fopen("/proc/self/status", "r");
  double kib = 0;
  while (f != nullptr && fgets(buf, sizeof(buf), f) != nullptr) {
    if (strncmp(buf, "VmHWM:", 6) == 0) kib = strtod(buf + 6, nullptr);
  }
  if (f != nullptr) fclose(f);
  return kib / 1024.0;
}

// Calls f(line) for each line of /proc/self/numa_maps, read with read(2)
// into an mmap'd buffer: stdio would allocate, on the reading thread's node,
// through the allocator being measured.
template <class F>
void for_each_numa_maps_line(F f) {
  constexpr size_t SIZE = 4 * MiB;
  char* buf = static_cast<char*>(map(SIZE));
  int fd = open("/proc/self/numa_maps", O_RDONLY);
  size_t len = 0;
  ssize_t r;
  while (fd >= 0 && len < SIZE - 1 && (r = read(fd, buf + len, SIZE - 1 - len)) > 0) len += static_cast<size_t>(r);
  if (fd >= 0) close(fd);
  buf[len] = 0;
  for (char* line = buf; line != nullptr && *line != 0;) {
    char* end = strchr(line, '\n');
    if (end != nullptr) *end = 0;
    f(line);
    line = (end != nullptr) ? end + 1 : nullptr;
  }
  munmap(buf, SIZE);
}

// Anonymous memory of the process per node (MiB), from /proc/self/numa_maps.
void anon_per_node(double* mib) {
  for (int n = 0; n < g_nodes; n++) mib[n] = 0;
  for_each_numa_maps_line([&](char* line) {
    if (strstr(line, "file=") != nullptr || strstr(line, "anon=") == nullptr) return;
    double page_kib = 4;
    if (const char* k = strstr(line, "kernelpagesize_kB=")) page_kib = strtod(k + 18, nullptr);
    for (char* t = strstr(line, " N"); t != nullptr; t = strstr(t + 1, " N")) {
      int node;
      long pages;
      if (sscanf(t + 1, "N%d=%ld", &node, &pages) == 2 && node >= 0 && node < g_nodes)
        mib[node] += pages * page_kib / 1024.0;
    }
  });
}

// Prints (to stderr: the guest's console) the lines of /proc/self/numa_maps
// with pages on nodes first..last-1: where a failed churn's memory is.
void dump_mappings_on(int first, int last) {
  for_each_numa_maps_line([&](const char* line) {
    for (int n = first; n < last; n++) {
      char key[16];
      snprintf(key, sizeof(key), " N%d=", n);
      if (strstr(line, key) != nullptr) {
        fprintf(stderr, "numa_shapes: on node %d: %s\n", n, line);
        break;
      }
    }
  });
}

inline uint64_t rnd(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

char* alloc_touch(size_t n) {
  char* p = static_cast<char*>(malloc(n));
  if (p == nullptr) {
    fprintf(stderr, "numa_shapes: malloc(%zu) failed\n", n);
    exit(2);
  }
  memset(p, 0x5a, n);
  return p;
}

template <class F>
void run_threads(int count, F f) {
  struct Arg {
    F* f;
    int i;
  };
  pthread_t t[64];
  Arg a[64];
  // 1 MiB stacks: an 8 MiB one may get a transparent huge page (2 MiB on the
  // node the thread first ran on), which would count in the per-node totals
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 * MiB);
  for (int i = 0; i < count; i++) {
    a[i] = Arg{&f, i};
    pthread_create(
        &t[i], &attr,
        [](void* p) -> void* {
          Arg* x = static_cast<Arg*>(p);
          (*x->f)(x->i);
          return nullptr;
        },
        &a[i]);
  }
  for (int i = 0; i < count; i++) pthread_join(t[i], nullptr);
  pthread_attr_destroy(&attr);
}

// ---------------------------------------------------------------------------
// The child's results (one line on stdout, read by the parent)
// ---------------------------------------------------------------------------
struct Figures {
  double locality = 100, small = 100, peak = 0, ops = 0, secs = 0;
  double moved_free = 0;  // MiB freed in the old node's pages at a move (shape-migrate-*)
  double peak_at = -1;    // the peak taken before a reading that allocates (numa_maps' buffer); -1: at the end
  char extra[512] = "";
};

// The figures of a shape that measured one set of blocks: the time since
// t0, the share of its pages (all, and of its small blocks) on their node,
// and `ops` blocks per second.
Figures figures_of(double t0, const Share& share, const Share& small, double ops) {
  Figures f;
  f.secs = now_s() - t0;
  f.locality = share.pct();
  f.small = small.pct();
  f.ops = ops / f.secs;
  return f;
}

void print_figures(const Figures& f) {
  printf("FIG %.2f %.2f %.1f %.0f %.3f %.1f %s\n", f.locality, f.small, f.peak_at >= 0 ? f.peak_at : peak_mib(), f.ops,
         f.secs, f.moved_free, f.extra);
  fflush(stdout);
}

// ---------------------------------------------------------------------------
// The shapes (child side)
// ---------------------------------------------------------------------------
const size_t kSteadySizes[] = {64, 256, 1024, 8 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB};
const size_t kSmallSizes[] = {16, 32, 48, 64, 128, 256, 512, 1000, 2 * KiB, 4 * KiB, 16 * KiB, 64 * KiB};

void fill(Blocks* bl, const size_t* sizes, size_t nsizes, size_t bytes, uint64_t seed) {
  size_t total = 0;
  uint64_t s = seed | 1;
  while (total < bytes) {
    size_t n = sizes[rnd(s) % nsizes];
    bl->add(alloc_touch(n), n);
    total += n;
  }
}

Figures shape_steady() {
  const int threads = g_nodes;
  Blocks bl[64];
  Share share[64];
  double t0 = now_s();
  std::atomic<size_t> ops{0};
  run_threads(threads, [&](int i) {
    pin_to_node(i);
    bl[i].init(1 << 16);
    fill(&bl[i], kSteadySizes, 4, 8 * MiB, 11 + i);      // 64 B - 8 KiB
    fill(&bl[i], kSteadySizes + 4, 4, 8 * MiB, 21 + i);  // 64 KiB - 4 MiB
    for (size_t k = 1; k < bl[i].count; k += 2) {
      free(bl[i].b[k].p);
      bl[i].b[k].p = nullptr;
    }
    size_t before = bl[i].count;
    fill(&bl[i], kSteadySizes, 4, 4 * MiB, 101 + i);
    fill(&bl[i], kSteadySizes + 4, 4, 4 * MiB, 111 + i);
    ops += bl[i].count + before / 2;
    share[i] = pages_on(bl[i], i);
  });
  Figures f;
  f.secs = now_s() - t0;
  Share all;
  int len = 0;
  for (int i = 0; i < threads; i++) {
    all.add(share[i]);
    len += snprintf(f.extra + len, sizeof(f.extra) - len, "node%d=%.1f%% ", i, share[i].pct());
  }
  f.locality = all.pct();
  f.small = f.locality;
  f.ops = ops / f.secs;
  return f;
}

Figures shape_reuse(bool keep_live) {
  Blocks first, second;
  first.init(1 << 20);
  second.init(1 << 20);
  double t0 = now_s();
  run_threads(1, [&](int) {
    pin_to_node(0);
    fill(&first, kSmallSizes, 12, 64 * MiB, 7);
    for (size_t k = 0; k < first.count; k++) {
      if (keep_live && k % 10 == 0) continue;  // 10% stay live
      free(first.b[k].p);
      first.b[k].p = nullptr;
    }
  });
  Share share, small;
  run_threads(1, [&](int) {
    const int node = 1 % g_nodes;
    pin_to_node(node);
    fill(&second, kSmallSizes, 12, 64 * MiB, 8);
    share = pages_on(second, node);
    small = pages_on(second, node, 1024);
  });
  Figures f = figures_of(t0, share, small, static_cast<double>(first.count + second.count));
  // where the resident memory is at the end (the peak): the first thread's
  // node keeps what its live blocks hold (issue 13 gap 2's remainder); the
  // peak first: numa_maps is read into a buffer of its own
  f.peak_at = peak_mib();
  double mib[64];
  anon_per_node(mib);
  int len = 0;
  for (int n = 0; n < g_nodes && n < 2; n++)
    len += snprintf(f.extra + len, sizeof(f.extra) - len, "node%d=%.1fMiB ", n, mib[n]);
  return f;
}

Figures shape_migrate(bool alternate) {
  Blocks first, second;
  first.init(1 << 20);
  second.init(1 << 20);
  const int to = g_nodes - 1;
  Share share, small;
  size_t freed = 0;
  double t0 = now_s();
  run_threads(1, [&](int) {
    pin_to_node(0);
    fill(&first, kSmallSizes, 12, 32 * MiB, 21);
    pin_to_node(to);
    sched_yield();
    for (size_t k = 0; k < first.count; k++) {
      if (alternate ? (k % 2 == 1) : (k < first.count / 2)) {
        freed += first.b[k].n;
        free(first.b[k].p);
        first.b[k].p = nullptr;
      }
    }
    fill(&second, kSmallSizes, 12, 32 * MiB, 22);
    share = pages_on(second, to);
    small = pages_on(second, to, 1024);
  });
  Figures f = figures_of(t0, share, small, static_cast<double>(first.count + first.count / 2 + second.count));
  f.moved_free = static_cast<double>(freed) / MiB;
  snprintf(f.extra, sizeof(f.extra), "to-node=%d freed-before-move=%.1fMiB", to, f.moved_free);
  return f;
}

// A single-producer single-consumer ring of block pointers (mmap'd).
struct Ring {
  static constexpr size_t N = 4096;
  char** slot;
  alignas(64) std::atomic<size_t> head{0};
  alignas(64) std::atomic<size_t> tail{0};
};

Figures shape_churn() {
  const int pairs = g_nodes / 2 > 0 ? g_nodes / 2 : 1;
  const size_t per_producer = 80000;
  Ring* rings = static_cast<Ring*>(map(sizeof(Ring) * pairs));
  for (int i = 0; i < pairs; i++) {
    new (&rings[i]) Ring();
    rings[i].slot = static_cast<char**>(map(Ring::N * sizeof(char*)));
  }
  std::atomic<size_t> produced{0};
  std::atomic<bool> done{false};
  double samples[4][64];
  int nsamples = 0;
  double t0 = now_s();
  // threads 0..pairs-1: producers on nodes 0..; pairs..2*pairs-1: consumers on the upper nodes; the last: sampler
  run_threads(2 * pairs + 1, [&](int i) {
    if (i == 2 * pairs) {
      pin_to_node(0);  // the sampler's own memory (its stack) counts on a producer's node
      for (int k = 0; k < 4; k++) {
        size_t want = (k + 1) * pairs * per_producer / 5;
        while (produced.load() < want && !done.load()) usleep(2000);
        anon_per_node(samples[nsamples++]);
      }
      return;
    }
    const bool producer = i < pairs;
    const int pair = producer ? i : i - pairs;
    pin_to_node(producer ? pair : pairs + pair);
    Ring& r = rings[pair];
    uint64_t s = 31 + pair;
    if (producer) {
      for (size_t k = 0; k < per_producer; k++) {
        size_t n = 32 << (rnd(s) % 8);  // 32 B - 4 KiB
        char* p = alloc_touch(n);
        size_t h = r.head.load(std::memory_order_relaxed);
        while (h - r.tail.load(std::memory_order_acquire) >= Ring::N) sched_yield();
        r.slot[h % Ring::N] = p;
        r.head.store(h + 1, std::memory_order_release);
        produced.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      for (size_t k = 0; k < per_producer; k++) {
        size_t t = r.tail.load(std::memory_order_relaxed);
        while (r.head.load(std::memory_order_acquire) == t) sched_yield();
        free(r.slot[t % Ring::N]);
        r.tail.store(t + 1, std::memory_order_release);
      }
    }
  });
  done = true;
  Figures f;
  f.secs = now_s() - t0;
  f.ops = static_cast<double>(pairs * per_producer) / f.secs;
  // locality: the share of anonymous memory on the producers' nodes, worst sample
  double worst = 100;
  int len = 0;
  // a consumer thread's own stack and TLS pages are on its node whatever the
  // allocator does (0.1 MiB was seen with glibc and with ours): not counted
  const double own_pages_mib = 0.25 * pairs;
  for (int k = 0; k < nsamples; k++) {
    double prod = 0, all = 0;
    len += snprintf(f.extra + len, sizeof(f.extra) - len, "t%d:", k);
    for (int n = 0; n < g_nodes; n++) {
      all += samples[k][n];
      if (n < pairs) prod += samples[k][n];
      len += snprintf(f.extra + len, sizeof(f.extra) - len, "%s%.1f", n ? "/" : "", samples[k][n]);
    }
    len += snprintf(f.extra + len, sizeof(f.extra) - len, "MiB ");
    const double on_consumers = std::max(0.0, all - prod - own_pages_mib);
    if (all > 0) worst = std::min(worst, 100.0 - 100.0 * on_consumers / all);
  }
  f.locality = f.small = worst;
  if (worst < 99) dump_mappings_on(pairs, g_nodes);  // what lies on the consumers' nodes (to the console)
  return f;
}

Figures shape_db() {
  const int threads = 4;
  Blocks rows[4];
  Share share[4];
  std::atomic<size_t> ops{0};
  double t0 = now_s();
  run_threads(threads, [&](int i) {
    pin_to_node(i % g_nodes);
    uint64_t s = 77 + i;
    const size_t nrows = 30000;
    rows[i].init(nrows);
    // the table: rows of 48 B - 1 KiB and an index grown by realloc
    size_t cap = 16;
    char** index = static_cast<char**>(malloc(cap * sizeof(char*)));
    for (size_t k = 0; k < nrows; k++) {
      size_t n = 48 + rnd(s) % 977;
      char* p = alloc_touch(n);
      rows[i].add(p, n);
      if (k == cap) {
        cap *= 2;
        index = static_cast<char**>(realloc(index, cap * sizeof(char*)));
      }
      index[k] = p;
    }
    size_t done_ops = nrows;
    // updates: a row replaced by one of another size; scans; deletes and inserts
    for (size_t k = 0; k < 2 * nrows; k++) {
      size_t r = rnd(s) % nrows;
      uint64_t op = rnd(s) % 10;
      if (op < 6) {
        size_t n = 48 + rnd(s) % 977;
        char* p = alloc_touch(n);
        memcpy(p, rows[i].b[r].p, std::min(n, rows[i].b[r].n));
        free(rows[i].b[r].p);
        rows[i].b[r] = Blk{p, n};
        index[r] = p;
      } else if (op < 9) {
        volatile char sink = 0;
        for (size_t j = 0; j < 64; j++) sink = sink + index[(r + j) % nrows][0];
      } else {
        free(rows[i].b[r].p);
        size_t n = 48 + rnd(s) % 977;
        rows[i].b[r] = Blk{alloc_touch(n), n};
        index[r] = rows[i].b[r].p;
      }
      done_ops++;
    }
    ops += done_ops;
    rows[i].add(reinterpret_cast<char*>(index), cap * sizeof(char*));
    share[i] = pages_on(rows[i], i % g_nodes);
  });
  Figures f;
  f.secs = now_s() - t0;
  Share all;
  for (int i = 0; i < threads; i++) all.add(share[i]);
  f.locality = f.small = all.pct();
  f.ops = ops / f.secs;
  return f;
}

// Issue 13 gap 3's 256 KiB case: a thread per node allocates 64 MiB of
// 256 KiB blocks and keeps them (large pages, several to a segment: with
// transparent huge pages "always" the kernel faulted each segment's partly
// used 2 MiB in full, 296-299 MiB against glibc's 267 for 4 nodes).
Figures shape_blocks256k() {
  const int threads = g_nodes;
  Blocks bl[64];
  Share share[64];
  double t0 = now_s();
  run_threads(threads, [&](int i) {
    pin_to_node(i);
    bl[i].init(1024);
    for (int k = 0; k < 256; k++) bl[i].add(alloc_touch(256 * KiB), 256 * KiB);
    share[i] = pages_on(bl[i], i);
  });
  Figures f;
  f.secs = now_s() - t0;
  Share all;
  for (int i = 0; i < threads; i++) all.add(share[i]);
  f.locality = f.small = all.pct();
  f.ops = 256.0 * threads / f.secs;
  return f;
}

struct Shape {
  const char* name;
  Figures (*run)();
  double min_locality;  // %, of all pages and of small-block pages
  double peak_factor;   // peak <= factor x glibc's peak + peak_slack_mib (+ the MiB freed before a move)
  double peak_slack_mib;
  const char* bound_why;
  const char* target_open;  // the issue-13 gap whose target the peak bound is, while open; nullptr: a hard bound
  // throughput >= this x mimalloc 2.0.9's (0: no bound), and the gap it is the
  // target of while open (nullptr: a hard bound)
  double ops_vs_mimalloc;
  const char* ops_target_open;
  // runs of each allocator, in turn; the figures judged are each one's
  // medians (a throughput of a TCG guest on a shared host: one run of each
  // made ratios of 0.5 to 1.6 from boot to boot; a peak with little room
  // under its bound: one run in a boot can be 2 MiB high)
  int rounds;
};

const Shape kShapes[] = {
    // open: its peak spreads from run to run (66.9 and 70.3 MiB against
    // glibc's 68.1 and 67.9 in two boots of the same build, session 7; 65.9 -
    // 71.1 in session 5): not a hard bound until that is understood
    // (three runs each, as the reuse shapes below: a CI boot's single run
    // peaked at 70.6 MiB against 65.1-65.8 in the other boots)
    {"shape-steady", shape_steady, 99, 1.03, 0, "gap 3 (huge-block sizing) target", "issue 13 gap 3", 0, nullptr, 3},
    // three runs each, judged on the median peak: the bound leaves 1.3-1.7 MiB
    // over our usual peak, and one run in a CI boot (95874cd's library, which
    // had passed at 72.8 MiB) peaked 2 MiB higher on node 0 (74.8 against
    // 74.1), the size of one 2 MiB huge page (THP "always"; the cause was not
    // caught); the next boot gave 72.8 again
    {"shape-reuse-exit", [] { return shape_reuse(false); }, 99, 1.05, 0, "gap 2 (stranded memory) target", nullptr, 0,
     nullptr, 3},
    {"shape-reuse-live", [] { return shape_reuse(true); }, 99, 1.05, 0, "gap 2 (stranded memory) target", nullptr, 0,
     nullptr, 3},
    // a moved thread no longer refills the old node's free slots: those
    // bytes are the move's accepted cost, on top of gaps 2/3's 1.05
    {"shape-migrate-alt", [] { return shape_migrate(true); }, 99, 1.05, 0,
     "gap 2/3's 1.05 + the bytes freed in the old node's pages", nullptr, 0, nullptr, 1},
    {"shape-migrate-old", [] { return shape_migrate(false); }, 99, 1.05, 0,
     "gap 2/3's 1.05 + the bytes freed in the old node's pages", nullptr, 0, nullptr, 1},
    // peak: no target, catches growth (80 K blocks of 32 B - 4 KiB per
    // producer, if never reused); throughput: gap 4's target, the medians of
    // three runs each (0.2-0.5 s a run)
    {"shape-churn", shape_churn, 99, 2, 16, "a sanity bound against growth", nullptr, 1.0, "issue 13 gap 4", 3},
    // open: 71.8 MiB against glibc's 68.1 (4 nodes). What the 3.7 MiB are
    // (library statistics at exit, host): the blocks hold 65.5 MiB for 62.3
    // asked (size-class rounding) and each class keeps the freed blocks of
    // its own highest count, 2-3 MiB resident in all (a row replaced by one
    // of another size frees into one class and allocates from another);
    // glibc's boundary tags (8 B a row) cost it 1.8 MiB, and it reuses a
    // freed row for any size. The other segregated allocators do worse
    // (host, same shape: ours 72.5, glibc 70.0, mimalloc 2.0.9 75.4,
    // jemalloc 76.6, tcmalloc 78.9 MiB).
    // Three runs each: single runs of ours were 2 MiB high now and then
    // (73.7 and 73.9 MiB in CI boots against 71.6-71.9 in the others).
    {"shape-db", shape_db, 99, 1.03, 0, "gap 3 (huge-block sizing) target for a database-like workload",
     "issue 13 gap 3", 0, nullptr, 3},
    {"shape-blocks256k", shape_blocks256k, 99, 1.03, 0, "gap 3's target for 256 KiB blocks", nullptr, 0, nullptr, 1},
};

// Is our library loaded (mimalloc.h's mi_version resolves, and our own
// mi_numa_node_count)? Is Debian's mimalloc (mi_version without it)?
bool preload_is(const char* who) {
  const bool mi = dlsym(RTLD_DEFAULT, "mi_version") != nullptr;
  const bool numa = dlsym(RTLD_DEFAULT, "mi_numa_node_count") != nullptr;
  return strcmp(who, "ours") == 0 ? (mi && numa) : strcmp(who, "mimalloc") == 0 ? (mi && !numa) : true;
}

// ---------------------------------------------------------------------------
// The parent: runs the child with each allocator and judges
// ---------------------------------------------------------------------------
bool find_library(char* out, size_t size) {
  const char* env = getenv("NUMA_SHAPES_LIB");
  if (env != nullptr && env[0] != 0) {
    snprintf(out, size, "%s", env);
    return true;
  }
  DIR* d = opendir("/t/lib");
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (strncmp(e->d_name, "libmimalloc-numa.so", 19) == 0) {
      snprintf(out, size, "/t/lib/%s", e->d_name);
      found = true;
      break;
    }
  }
  closedir(d);
  return found;
}

// Debian's mimalloc 2.0.9 (libmimalloc.so.2), the peer of gap 4's target:
// NUMA_SHAPES_MIMALLOC, else /t/lib/libmimalloc.so.2 (run-numa-vm.sh copies
// it there when the host has it); false when absent (not measured, said so).
bool find_mimalloc(char* out, size_t size) {
  const char* env = getenv("NUMA_SHAPES_MIMALLOC");
  snprintf(out, size, "%s", (env != nullptr && env[0] != 0) ? env : "/t/lib/libmimalloc.so.2");
  return access(out, R_OK) == 0;
}

// Runs `self --child mode who` with LD_PRELOAD=lib (or none); false if it failed.
bool run_child(const char* self, const char* mode, const char* who, const char* lib, Figures* f, char* why,
               size_t why_size) {
  int fd[2];
  if (pipe(fd) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    // the whole child on node 0 from its start: the library's start-up
    // allocations (and glibc's) land there, not on whichever node the
    // child happened to start (1.8 MiB seen on the last node, counted by
    // shape-churn as the consumers')
    pin_to_node(0);
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    if (lib != nullptr) setenv("LD_PRELOAD", lib, 1);
    else unsetenv("LD_PRELOAD");
    execl(self, self, "--child", mode, who, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fd[1]);
  char buf[2048];
  size_t len = 0;
  ssize_t r;
  while ((r = read(fd[0], buf + len, sizeof(buf) - 1 - len)) > 0) len += static_cast<size_t>(r);
  buf[len] = 0;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  char* line = strstr(buf, "FIG ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || line == nullptr) {
    snprintf(why, why_size, "child (%s) failed: status %d, output: %.200s", who, status, buf);
    return false;
  }
  int n = 0;
  sscanf(line, "FIG %lf %lf %lf %lf %lf %lf %n", &f->locality, &f->small, &f->peak, &f->ops, &f->secs, &f->moved_free,
         &n);
  snprintf(f->extra, sizeof(f->extra), "%s", line + n);
  if (char* nl = strchr(f->extra, '\n')) *nl = 0;
  return true;
}

// One line of figures: "SHAPE" for what is judged (run-numa-vm.sh's table),
// "ROUND" for one of several runs.
void shape_line(const char* kind, const char* mode, const char* alloc, const Figures& f) {
  printf("@@ %s %s nodes=%d alloc=%s locality=%.1f%% small=%.1f%% peak=%.1fMiB ops=%.3fM/s time=%.2fs %s\n", kind, mode,
         g_nodes, alloc, f.locality, f.small, f.peak, f.ops / 1e6, f.secs, f.extra);
}

constexpr int ROUNDS_MAX = 5;

// The figures of n runs of one allocator: the median throughput, time and
// peak, the worst locality, the most freed before a move; the extra text of
// the run of the median throughput.
Figures median_of(const Figures* runs, int n) {
  auto median = [&](double Figures::*field) {
    double v[ROUNDS_MAX];
    for (int i = 0; i < n; i++) {  // (insertion sort: std::sort trips -Warray-bounds on so few)
      int k = i;
      for (; k > 0 && v[k - 1] > runs[i].*field; k--) v[k] = v[k - 1];
      v[k] = runs[i].*field;
    }
    return v[n / 2];
  };
  Figures m;
  m.ops = median(&Figures::ops);
  m.secs = median(&Figures::secs);
  m.peak = median(&Figures::peak);
  for (int i = 0; i < n; i++) {
    m.locality = std::min(m.locality, runs[i].locality);
    m.small = std::min(m.small, runs[i].small);
    m.moved_free = std::max(m.moved_free, runs[i].moved_free);
    if (runs[i].ops == m.ops) snprintf(m.extra, sizeof(m.extra), "%s", runs[i].extra);
  }
  return m;
}

int parent(const char* self, const Shape& shape) {
  char lib[512], why[512] = "";
  if (!find_library(lib, sizeof(lib))) {
    printf("@@ RESULT %s FAIL no libmimalloc-numa.so* in /t/lib (NUMA_SHAPES_LIB unset)\n", shape.name);
    return 1;
  }
  char mimlib[512];
  const bool have_mim = find_mimalloc(mimlib, sizeof(mimlib));
  const int rounds = std::clamp(shape.rounds, 1, ROUNDS_MAX);
  Figures ours_runs[ROUNDS_MAX], peer_runs[ROUNDS_MAX], mim_runs[ROUNDS_MAX];
  for (int r = 0; r < rounds; r++) {
    if (!run_child(self, shape.name, "ours", lib, &ours_runs[r], why, sizeof(why)) ||
        !run_child(self, shape.name, "glibc", nullptr, &peer_runs[r], why, sizeof(why)) ||
        (have_mim && !run_child(self, shape.name, "mimalloc", mimlib, &mim_runs[r], why, sizeof(why)))) {
      printf("@@ RESULT %s FAIL %s\n", shape.name, why);
      return 1;
    }
    if (rounds > 1) {
      shape_line("ROUND", shape.name, "ours", ours_runs[r]);
      shape_line("ROUND", shape.name, "glibc", peer_runs[r]);
      if (have_mim) shape_line("ROUND", shape.name, "mimalloc", mim_runs[r]);
    }
  }
  const Figures ours = median_of(ours_runs, rounds);
  const Figures peer = median_of(peer_runs, rounds);
  const Figures mim = have_mim ? median_of(mim_runs, rounds) : Figures{};
  shape_line("SHAPE", shape.name, "ours", ours);
  shape_line("SHAPE", shape.name, "glibc", peer);
  if (have_mim) shape_line("SHAPE", shape.name, "mimalloc", mim);
  const double bound = shape.peak_factor * peer.peak + shape.peak_slack_mib + ours.moved_free;
  bool ok = true;
  char text[1024];
  int len = snprintf(text, sizeof(text),
                     "locality %.1f%% (small blocks %.1f%%, need >= %.0f%%), peak %.1f MiB (bound %.1f = %.2f x "
                     "glibc's %.1f + %.1f: %s), %.3f M ops/s (glibc %.3f)%s",
                     ours.locality, ours.small, shape.min_locality, ours.peak, bound, shape.peak_factor, peer.peak,
                     shape.peak_slack_mib + ours.moved_free, shape.bound_why, ours.ops / 1e6, peer.ops / 1e6,
                     rounds > 1 ? " (medians of alternated runs)" : "");
  if (have_mim) {
    len += snprintf(text + len, sizeof(text) - len, ", mimalloc 2.0.9 %.3f M ops/s peak %.1f MiB", mim.ops / 1e6,
                    mim.peak);
  } else {
    len += snprintf(text + len, sizeof(text) - len, ", mimalloc 2.0.9 not measured (%s absent)", mimlib);
  }
  if (ours.locality < shape.min_locality || ours.small < shape.min_locality) {
    ok = false;
    len += snprintf(text + len, sizeof(text) - len, "; LOCALITY below the bound");
  }
  const char* strict = getenv("NUMA_SHAPES_STRICT");
  const bool strict_on = strict != nullptr && strcmp(strict, "1") == 0;
  // Throughput against mimalloc 2.0.9 (gap 4): timings of a TCG guest on a
  // shared host; while the gap is open a miss is reported, and fails only
  // with NUMA_SHAPES_STRICT=1
  if (shape.ops_vs_mimalloc > 0 && have_mim && ours.ops < shape.ops_vs_mimalloc * mim.ops) {
    if (shape.ops_target_open == nullptr || strict_on) {
      ok = false;
      len +=
          snprintf(text + len, sizeof(text) - len, "; THROUGHPUT below %.2f x mimalloc 2.0.9's", shape.ops_vs_mimalloc);
    } else {
      len += snprintf(text + len, sizeof(text) - len, "; TARGET MISSED (%s, open: %.2f x mimalloc 2.0.9's ops/s)",
                      shape.ops_target_open, ours.ops / mim.ops);
    }
  }
  // A peak bound that is an open gap's target (issue 13: stranded memory,
  // huge-block sizing) is reported when missed, and fails the shape only
  // with NUMA_SHAPES_STRICT=1, until the gap is closed; the shape always
  // fails past the guard against growth (2 x glibc's + 16 MiB + the bytes
  // freed before a move), so a regression of the peak still fails the suite.
  const double guard = 2 * peer.peak + 16 + ours.moved_free;
  if (ours.peak > bound && (shape.target_open == nullptr || strict_on)) {
    ok = false;
    snprintf(text + len, sizeof(text) - len, "; PEAK above the bound");
  } else if (ours.peak > guard) {
    ok = false;
    snprintf(text + len, sizeof(text) - len, "; PEAK above the guard against growth (%.1f MiB)", guard);
  } else if (ours.peak > bound) {
    snprintf(text + len, sizeof(text) - len, "; TARGET MISSED (%s, open), within the guard of %.1f MiB",
             shape.target_open, guard);
  }
  printf("@@ RESULT %s %s %s\n", shape.name, ok ? "PASS" : "FAIL", text);
  fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  read_topology();
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc >= 4 && strcmp(argv[1], "--child") == 0) {
    for (const Shape& s : kShapes) {
      if (strcmp(s.name, argv[2]) != 0) continue;
      // the preload must have taken: our library defines mi_version
      if (!preload_is(argv[3])) {
        fprintf(stderr, "numa_shapes: LD_PRELOAD did not load the library (%s)\n", argv[3]);
        return 3;
      }
      print_figures(s.run());  // (pinned to node 0 by the parent since exec)
      return 0;
    }
    return 2;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: numa_shapes MODE (");
    for (const Shape& s : kShapes) fprintf(stderr, " %s", s.name);
    fprintf(stderr, " )\n");
    return 2;
  }
  for (const Shape& s : kShapes) {
    if (strcmp(s.name, argv[1]) == 0) return parent("/proc/self/exe", s);
  }
  printf("@@ RESULT %s FAIL unknown mode\n", argv[1]);
  return 1;
}
