// publisher.cpp: a stand-in for a process on the allocator, for mi-stat's
// tests before the library publishes: it keeps a statistics area for its own
// pid, laid out by the public header <mimalloc-numa-stats.h> alone (as any
// other publisher or reader would compile it), and updates it in a loop.
//
// usage: mi-stat-publisher --dir DIR --value V [--nodes K] [--children N]
//                          [--program NAME] [--interval-ms MS] [--torn]
//
// Figures (all exact, so that a test can add them up):
//   node i, the memory struct's field j (reserved = 0 ... purged = 9):
//       V * 1000000 + i * 1000 + j + 1
//   totals: the sum over the nodes, field by field
//   threads V, segments 2V, segments_abandoned V % 3, purges 5V,
//   purge_ns 1000V, os_mmap_calls 3V, os_commit_calls 4V, os_purge_calls 5V,
//   page_faults_minor 100V, page_faults_major V % 2, rss 4096V,
//   metadata_committed 65536 + V
//   bins: block sizes 16, 32, 64, 128: live_blocks V * (b+1),
//       live_bytes live_blocks * size, allocations 10V * (b+1)
// Every MS ms (default 100) it takes them again: `updates` and
// `updated_unix_ms` move, the figures stay.
// --children N: forks N children first; child c publishes with value V+1+c
// (its own pid and file); they end with the parent (PR_SET_PDEATHSIG).
// --torn: updates back to back (10 us apart); update k sets every figure from
// `threads` to the end of the nodes' array to k: half of them, a pause, the
// other half. A reader that ignored the sequence lock would see two values
// in one copy.
// SIGTERM/SIGINT: removes the file and ends (children first).
#include <fcntl.h>
#include <mimalloc-numa-stats.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t stop = 0;
void on_stop(int) { stop = 1; }

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

uint64_t self_start_ticks() {
  FILE* f = fopen("/proc/self/stat", "r");
  char line[4096] = {0};
  if (!f || !fgets(line, sizeof line, f)) {
    perror("publisher: /proc/self/stat");
    exit(1);
  }
  fclose(f);
  const char* p = strrchr(line, ')');
  unsigned long long ticks = 0;
  // fields 3..22 after the name: skip 19, the 20th is starttime
  for (int field = 3; p && field <= 22; field++) {
    p = strchr(p + 1, ' ');
    if (field == 22 && p) ticks = strtoull(p + 1, nullptr, 10);
  }
  return ticks;
}

template <class T>
void put(T* field, T value) {
  __atomic_store_n(field, value, __ATOMIC_RELAXED);
}

void fill(mi_stats_area_t* a, int64_t v, int nodes) {
  put(&a->threads, v);
  put(&a->segments, 2 * v);
  put(&a->segments_abandoned, v % 3);
  put(&a->purges, 5 * v);
  put(&a->purge_ns, 1000 * v);
  put(&a->os_mmap_calls, 3 * v);
  put(&a->os_commit_calls, 4 * v);
  put(&a->os_purge_calls, 5 * v);
  put(&a->page_faults_minor, 100 * v);
  put(&a->page_faults_major, v % 2);
  put(&a->rss, 4096 * v);
  put(&a->metadata_committed, 65536 + v);
  int64_t totals[10] = {0};
  for (int i = 0; i < nodes; i++) {
    int64_t* f = reinterpret_cast<int64_t*>(&a->nodes[i]);
    for (int j = 0; j < 10; j++) {
      const int64_t x = v * 1000000 + i * 1000 + j + 1;
      put(&f[j], x);
      totals[j] += x;
    }
  }
  int64_t* t = reinterpret_cast<int64_t*>(&a->totals);
  for (int j = 0; j < 10; j++) put(&t[j], totals[j]);
  const int64_t sizes[] = {16, 32, 64, 128};
  for (int b = 0; b < 4; b++) {
    put(&a->bins[b].block_size, sizes[b]);
    put(&a->bins[b].live_blocks, v * (b + 1));
    put(&a->bins[b].live_bytes, v * (b + 1) * sizes[b]);
    put(&a->bins[b].allocations, 10 * v * (b + 1));
  }
}

// Every int64 from `threads` to the end of nodes[]: one value.
void fill_torn(mi_stats_area_t* a, int64_t k) {
  int64_t* first = &a->threads;
  int64_t* last = reinterpret_cast<int64_t*>(&a->nodes[a->node_count]);
  int64_t* mid = first + (last - first) / 2;
  // `totals` and the counts and offsets lie between: skip the 4 uint32 fields
  int64_t* counts = reinterpret_cast<int64_t*>(&a->node_count);
  for (int64_t* p = first; p < last; p++) {
    if (p == counts || p == counts + 1) continue;
    put(p, k);
    if (p == mid) {
      for (int spin = 0; spin < 20000; spin++) asm volatile("" ::: "memory");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, program;
  int64_t value = 1;
  int nodes = 2, children = 0, interval_ms = 100;
  bool torn = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fprintf(stderr, "publisher: %s needs a value\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir") dir = next();
    else if (a == "--value") value = atoll(next().c_str());
    else if (a == "--nodes") nodes = atoi(next().c_str());
    else if (a == "--children") children = atoi(next().c_str());
    else if (a == "--program") program = next();
    else if (a == "--interval-ms") interval_ms = atoi(next().c_str());
    else if (a == "--torn") torn = true;
    else {
      fprintf(stderr, "publisher: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (dir.empty() || nodes < 1 || nodes > MI_STATS_AREA_NODES_MAX) {
    fprintf(stderr, "publisher: --dir DIR --value V [--nodes 1..64] ...\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  std::vector<pid_t> kids;
  for (int c = 0; c < children; c++) {
    const pid_t pid = fork();
    if (pid < 0) {
      perror("publisher: fork");
      return 1;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      kids.clear();
      children = 0;
      value = value + 1 + c;
      break;
    }
    kids.push_back(pid);
  }

  const int64_t pid = getpid();
  const uint64_t ticks = self_start_ticks();
  const std::string path = dir + "/" + std::to_string(pid) + "-" + std::to_string(ticks) + MI_STATS_AREA_SUFFIX;
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, sizeof(mi_stats_area_t)) != 0) {
    perror(("publisher: " + tmp).c_str());
    return 1;
  }
  auto* a =
      static_cast<mi_stats_area_t*>(mmap(nullptr, sizeof(mi_stats_area_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (a == MAP_FAILED) {
    perror("publisher: mmap");
    return 1;
  }
  close(fd);
  a->magic = MI_STATS_AREA_MAGIC;
  a->version = MI_STATS_AREA_VERSION;
  a->size = sizeof(mi_stats_area_t);
  a->pid = pid;
  a->start_ticks = ticks;
  a->start_unix_ms = now_ms();
  a->interval_ms = interval_ms;
  if (program.empty()) program = "mi-stat-publisher";
  snprintf(a->program, sizeof a->program, "%s", program.c_str());
  a->node_count = uint32_t(nodes);
  a->bin_count = 4;
  a->nodes_offset = offsetof(mi_stats_area_t, nodes);
  a->bins_offset = offsetof(mi_stats_area_t, bins);
  fill(a, value, nodes);
  a->updated_unix_ms = now_ms();
  // Complete before it has its name: a reader never sees a half-made area.
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    perror("publisher: rename");
    return 1;
  }
  uint64_t seq = 0;
  for (int64_t k = 1; !stop; k++) {
    __atomic_store_n(&a->seq, ++seq, __ATOMIC_RELAXED);  // odd: being written
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (torn) {
      fill_torn(a, k);
    } else {
      fill(a, value, nodes);
    }
    put(&a->updates, k);
    put(&a->updated_unix_ms, now_ms());
    __atomic_store_n(&a->seq, ++seq, __ATOMIC_RELEASE);  // even: complete
    // --torn: a short gap (tens of microseconds) in which a copy can be
    // consistent; the updates themselves take about as long.
    timespec ts = torn ? timespec{0, 10000L} : timespec{interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    nanosleep(&ts, nullptr);
  }
  for (pid_t k : kids) kill(k, SIGTERM);
  for (pid_t k : kids) waitpid(k, nullptr, 0);
  unlink(path.c_str());
  return 0;
}
