// area.cpp: reading a published statistics area (see area.h).
#include "area.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <map>
#include <thread>

namespace mistat {

void memory_add(mi_stats_area_memory_t* into, const mi_stats_area_memory_t& m) {
  into->reserved += m.reserved;
  into->committed += m.committed;
  into->in_use += m.in_use;
  into->purgeable += m.purgeable;
  into->huge_1g += m.huge_1g;
  into->large_2m += m.large_2m;
  into->local_frees += m.local_frees;
  into->remote_frees += m.remote_frees;
  into->fallbacks += m.fallbacks;
  into->purged += m.purged;
}

void Figures::add(const Figures& o) {
  threads += o.threads;
  segments += o.segments;
  segments_abandoned += o.segments_abandoned;
  purges += o.purges;
  purge_ns += o.purge_ns;
  os_mmap_calls += o.os_mmap_calls;
  os_commit_calls += o.os_commit_calls;
  os_purge_calls += o.os_purge_calls;
  page_faults_minor += o.page_faults_minor;
  page_faults_major += o.page_faults_major;
  rss += o.rss;
  metadata_committed += o.metadata_committed;
  memory_add(&totals, o.totals);
  if (nodes.size() < o.nodes.size()) nodes.resize(o.nodes.size(), mi_stats_area_memory_t{});
  for (size_t i = 0; i < o.nodes.size(); i++) memory_add(&nodes[i], o.nodes[i]);
  // Size classes by block size: two processes of the same library have the
  // same classes, but a process that reports fewer (or another version) must
  // not shift the others' rows.
  std::map<int64_t, mi_stats_area_bin_t> merged;
  for (const std::vector<mi_stats_area_bin_t>* v :
       {static_cast<const std::vector<mi_stats_area_bin_t>*>(&bins), &o.bins}) {
    for (const auto& b : *v) {
      auto& m = merged[b.block_size];
      m.block_size = b.block_size;
      m.live_blocks += b.live_blocks;
      m.live_bytes += b.live_bytes;
      m.allocations += b.allocations;
    }
  }
  bins.clear();
  for (const auto& [size, b] : merged) bins.push_back(b);
}

namespace {

constexpr size_t HEADER_END = offsetof(mi_stats_area_t, pid);   // magic, version, size, seq
constexpr size_t FIXED_END = offsetof(mi_stats_area_t, nodes);  // everything before the arrays
constexpr size_t AREA_SIZE_MAX = size_t(1) << 20;               // far above any version's area
static_assert(offsetof(mi_stats_area_t, seq) == 16 && HEADER_END == 24, "the header's layout never changes");

bool ranges_ok(uint32_t offset, uint32_t count, size_t elem, size_t size, const char* what, std::string* problem) {
  const uint64_t end = uint64_t(offset) + uint64_t(count) * elem;
  if (offset < FIXED_END || offset % 8 != 0 || end > size) {
    *problem = std::string(what) + " at offset " + std::to_string(offset) + " (" + std::to_string(count) +
               " entries) lies outside the area of " + std::to_string(size) + " bytes";
    return false;
  }
  return true;
}

}  // namespace

bool area_parse(const unsigned char* bytes, size_t size, Snapshot* snap, std::string* problem) {
  if (size < HEADER_END) {
    *problem = "too short for a statistics area (" + std::to_string(size) + " bytes)";
    return false;
  }
  mi_stats_area_t a;
  std::memset(&a, 0, sizeof a);
  std::memcpy(&a, bytes, std::min(size, FIXED_END));
  if (a.magic != MI_STATS_AREA_MAGIC) {
    *problem = "not a mimalloc-numa statistics area (bad magic)";
    return false;
  }
  if (a.version != AREA_VERSION_KNOWN) {
    *problem = "area version " + std::to_string(a.version) + ", this mi-stat reads version " +
               std::to_string(AREA_VERSION_KNOWN) + " (a newer mimalloc-numa-tools reads it)";
    return false;
  }
  if (a.size < FIXED_END || a.size > size) {
    *problem = "the area says it holds " + std::to_string(a.size) + " bytes; the file has " + std::to_string(size) +
               " and version 1 needs at least " + std::to_string(FIXED_END);
    return false;
  }
  if (a.node_count > MI_STATS_AREA_NODES_MAX || a.bin_count > MI_STATS_AREA_BINS_MAX) {
    *problem = "counts out of range (" + std::to_string(a.node_count) + " nodes, " + std::to_string(a.bin_count) +
               " size classes)";
    return false;
  }
  if (!ranges_ok(a.nodes_offset, a.node_count, sizeof(mi_stats_area_memory_t), a.size, "nodes[]", problem) ||
      !ranges_ok(a.bins_offset, a.bin_count, sizeof(mi_stats_area_bin_t), a.size, "bins[]", problem)) {
    return false;
  }
  if (std::memchr(a.program, 0, sizeof a.program) == nullptr) {
    *problem = "the program's name is not NUL-terminated";
    return false;
  }
  snap->version = a.version;
  snap->pid = a.pid;
  snap->start_ticks = a.start_ticks;
  snap->start_unix_ms = a.start_unix_ms;
  snap->updated_unix_ms = a.updated_unix_ms;
  snap->updates = a.updates;
  snap->interval_ms = a.interval_ms;
  snap->program = a.program;
  Figures& f = snap->fig;
  f = Figures{};
  f.threads = a.threads;
  f.segments = a.segments;
  f.segments_abandoned = a.segments_abandoned;
  f.purges = a.purges;
  f.purge_ns = a.purge_ns;
  f.os_mmap_calls = a.os_mmap_calls;
  f.os_commit_calls = a.os_commit_calls;
  f.os_purge_calls = a.os_purge_calls;
  f.page_faults_minor = a.page_faults_minor;
  f.page_faults_major = a.page_faults_major;
  f.rss = a.rss;
  f.metadata_committed = a.metadata_committed;
  f.totals = a.totals;
  f.nodes.resize(a.node_count);
  if (a.node_count) std::memcpy(f.nodes.data(), bytes + a.nodes_offset, a.node_count * sizeof(mi_stats_area_memory_t));
  f.bins.resize(a.bin_count);
  if (a.bin_count) std::memcpy(f.bins.data(), bytes + a.bins_offset, a.bin_count * sizeof(mi_stats_area_bin_t));
  std::stable_sort(f.bins.begin(), f.bins.end(), [](const mi_stats_area_bin_t& x, const mi_stats_area_bin_t& y) {
    return x.block_size < y.block_size;
  });
  return true;
}

namespace {

// A mapping that unmaps itself.
struct Mapping {
  void* addr = MAP_FAILED;
  size_t len = 0;
  ~Mapping() {
    if (addr != MAP_FAILED) munmap(addr, len);
  }
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

ReadResult area_read(const std::string& path, int64_t expect_pid, uint64_t expect_ticks) {
  ReadResult r;
  r.snap.path = path;
  Fd f;
  f.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (f.fd < 0) {
    if (errno == EACCES || errno == EPERM) {
      r.status = ReadStatus::unreadable;
    } else if (errno == ENOENT) {
      r.status = ReadStatus::vanished;
    } else {
      r.status = ReadStatus::invalid;
      r.problem = std::string("cannot open: ") + strerror(errno);
    }
    return r;
  }
  struct stat st;
  if (fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    r.problem = "not a regular file";
    return r;
  }
  size_t len = std::min<size_t>(size_t(st.st_size), AREA_SIZE_MAX) & ~size_t(7);
  if (len < HEADER_END) {
    r.problem = "too short for a statistics area (" + std::to_string(st.st_size) + " bytes)";
    return r;
  }
  Mapping m;
  m.len = len;
  m.addr = mmap(nullptr, len, PROT_READ, MAP_SHARED, f.fd, 0);
  if (m.addr == MAP_FAILED) {
    r.problem = std::string("cannot map: ") + strerror(errno);
    return r;
  }
  const uint64_t* words = static_cast<const uint64_t*>(m.addr);
  // The magic never changes once written: a file that is not an area is
  // refused at once instead of waiting out the retries on its "seq".
  if (__atomic_load_n(&words[0], __ATOMIC_RELAXED) != MI_STATS_AREA_MAGIC) {
    r.problem = "not a mimalloc-numa statistics area (bad magic)";
    return r;
  }
  const uint64_t* seq = &words[offsetof(mi_stats_area_t, seq) / 8];
  std::vector<uint64_t> copy(len / 8);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(READ_RETRY_MS);
  for (int attempt = 1;; attempt++) {
    const uint64_t before = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
    if ((before & 1) == 0) {
      // Word by word, each an atomic load: the publisher writes while we copy,
      // and a plain memcpy of memory being written is a data race.
      for (size_t i = 0; i < copy.size(); i++) copy[i] = __atomic_load_n(&words[i], __ATOMIC_RELAXED);
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      const uint64_t after = __atomic_load_n(seq, __ATOMIC_RELAXED);
      if (before == after) break;
    }
    if (attempt >= READ_RETRY_MAX || std::chrono::steady_clock::now() >= deadline) {
      r.status = ReadStatus::busy;
      r.problem = "no consistent copy after " + std::to_string(attempt) + " tries in " + std::to_string(READ_RETRY_MS) +
                  " ms (the area stays mid-update: seq " + std::to_string(__atomic_load_n(seq, __ATOMIC_RELAXED)) + ")";
      return r;
    }
    // A publisher updates in microseconds: spin briefly, then yield the CPU
    // to it (on a busy machine it may be waiting for ours).
    if (attempt > 16) {
      if (attempt > 1000) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      } else {
        sched_yield();
      }
    }
  }
  if (!area_parse(reinterpret_cast<const unsigned char*>(copy.data()), len, &r.snap, &r.problem)) return r;
  if ((expect_pid != 0 && r.snap.pid != expect_pid) || (expect_ticks != 0 && r.snap.start_ticks != expect_ticks)) {
    r.problem = "the file's name says pid " + std::to_string(expect_pid) + " started at tick " +
                std::to_string(expect_ticks) + ", the area says pid " + std::to_string(r.snap.pid) + " at tick " +
                std::to_string(r.snap.start_ticks);
    return r;
  }
  r.status = ReadStatus::ok;
  return r;
}

}  // namespace mistat
