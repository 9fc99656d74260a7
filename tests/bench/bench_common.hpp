// bench_common.hpp -- shared helpers for the benchmark workloads in tests/bench.
//
// The workloads are plain C++20 programs that only use malloc/free/realloc and
// new/delete: tools/bench/run_bench.py runs each of them under glibc and, via
// LD_PRELOAD, under mimalloc, jemalloc, tcmalloc and libmimalloc-numa.  They must
// never call mi_* functions nor link an allocator.
//
// Conventions shared by every workload:
//   * deterministic: all randomness comes from Rng (splitmix64) seeded by --seed;
//   * the amount of work is set by arguments (--name=value or --name value);
//   * --smoke runs a tiny amount of work (well under a second) for `meson test --suite bench`;
//   * one result line on stdout: "<name> key=value ..." (ops, elapsed_ms, checksum, ...),
//     exit status 0; any failure (allocation failure, corrupted data) aborts with a message;
//   * BENCH_EXPECT_MALLOC_IN=TEXT in the environment: the program exits 1 unless the
//     shared object that serves its malloc has TEXT in its path (the smoke tests
//     preload libmimalloc-numa and set it, so that a run that silently fell back to
//     glibc -- preload dropped, library not found -- fails instead of passing).
#pragma once

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

// ---------------------------------------------------------------------------
// Deterministic random numbers: splitmix64.
// ---------------------------------------------------------------------------
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n) (n > 0); multiply-shift, bias is negligible for our n.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

  // Uniform in [lo, hi] (inclusive).
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }

  // Approximately log-uniform in [lo, hi] (inclusive), 1 <= lo <= hi: a power-of-two
  // bucket is chosen uniformly, then a value uniformly inside it (rejecting values
  // outside [lo, hi]).  Cheap: no log/exp in the hot loops.
  uint64_t log_uniform(uint64_t lo, uint64_t hi) {
    const int lb = 63 - __builtin_clzll(lo);
    const int hb = 63 - __builtin_clzll(hi);
    for (;;) {
      const int e = lb + static_cast<int>(below(static_cast<uint64_t>(hb - lb + 1)));
      const uint64_t base = uint64_t{1} << e;
      const uint64_t v = base + below(base);
      if (v >= lo && v <= hi) return v;
    }
  }

  // Derive an independent seed (for per-thread generators).
  static uint64_t mix(uint64_t seed, uint64_t stream) {
    Rng r(seed ^ (0xd1b54a32d192ed03ULL * (stream + 1)));
    return r.next();
  }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------------------
// Command line: --smoke, --name=value, --name value.  Values accept a binary
// K/M/G suffix (4K = 4096).  Unknown options are an error (exit 2).
// ---------------------------------------------------------------------------
inline void expect_allocator(const char* prog);

class Args {
 public:
  Args(int argc, char** argv, const char* prog, const char* usage) : prog_(prog), usage_(usage) {
    expect_allocator(prog);
    for (int i = 1; i < argc; i++) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        std::printf("usage: %s [--smoke] [options]\n%s", prog_, usage_);
        std::exit(0);
      }
      if (a == "--smoke") {
        smoke_ = true;
        continue;
      }
      if (a.size() < 3 || a[0] != '-' || a[1] != '-') fail("unexpected argument", a.c_str());
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        opts_.push_back({a.substr(2, eq - 2), a.substr(eq + 1)});
      } else {
        if (i + 1 >= argc) fail("missing value for", a.c_str());
        opts_.push_back({a.substr(2), argv[++i]});
      }
      used_.push_back(false);
    }
  }

  bool smoke() const { return smoke_; }

  // The value of --name, or `def` (`smoke_def` under --smoke) when not given.
  uint64_t u64(const char* name, uint64_t def, uint64_t smoke_def) {
    for (size_t i = 0; i < opts_.size(); i++) {
      if (opts_[i].first == name) {
        used_[i] = true;
        return parse(opts_[i].second, name);
      }
    }
    return smoke_ ? smoke_def : def;
  }

  // Call after every option was read: rejects unknown options and bad values.
  void finish() const {
    for (size_t i = 0; i < opts_.size(); i++) {
      if (!used_[i]) fail("unknown option --", opts_[i].first.c_str());
    }
  }

  [[noreturn]] void fail(const char* what, const char* arg) const {
    std::fprintf(stderr, "%s: %s %s\nusage: %s [--smoke] [options]\n%s", prog_, what, arg, prog_, usage_);
    std::exit(2);
  }

 private:
  uint64_t parse(const std::string& s, const char* name) const {
    char* end = nullptr;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (end == s.c_str()) fail("bad value for", name);
    uint64_t mult = 1;
    if (*end == 'k' || *end == 'K') mult = uint64_t{1} << 10, end++;
    else if (*end == 'm' || *end == 'M') mult = uint64_t{1} << 20, end++;
    else if (*end == 'g' || *end == 'G') mult = uint64_t{1} << 30, end++;
    if (*end != '\0') fail("bad value for", name);
    return static_cast<uint64_t>(v) * mult;
  }

  const char* prog_;
  const char* usage_;
  bool smoke_ = false;
  std::vector<std::pair<std::string, std::string>> opts_;
  std::vector<bool> used_;
};

// ---------------------------------------------------------------------------
// Allocation helpers.
// ---------------------------------------------------------------------------
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "bench: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

inline void* xmalloc(size_t n) {
  void* p = std::malloc(n);
  if (p == nullptr) die("malloc returned NULL");
  return p;
}

inline void* xrealloc(void* p, size_t n) {
  void* q = std::realloc(p, n);
  if (q == nullptr) die("realloc returned NULL");
  return q;
}

// BENCH_EXPECT_MALLOC_IN (see the top of this file): which object the dynamic
// linker resolved `malloc` to, the way the program's own calls resolve it.
inline void expect_allocator(const char* prog) {
  const char* want = std::getenv("BENCH_EXPECT_MALLOC_IN");
  if (want == nullptr || want[0] == '\0') return;
  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info{};
  const char* from = (sym != nullptr && dladdr(sym, &info) != 0 && info.dli_fname != nullptr) ? info.dli_fname : "?";
  if (std::strstr(from, want) == nullptr) {
    std::fprintf(stderr, "%s: malloc is served by %s, not by %s (BENCH_EXPECT_MALLOC_IN): preload not in effect\n",
                 prog, from, want);
    std::exit(1);
  }
}

// Write to an object like a program initialising it: an 8-byte tag at the start,
// one byte every `stride` bytes, and the last byte.  Returns nothing; check() reads
// back what was written so neither the stores nor the allocation can be elided.
inline void fill(void* p, size_t n, uint64_t tag, size_t stride) {
  auto* b = static_cast<unsigned char*>(p);
  if (n >= sizeof tag) {
    std::memcpy(b, &tag, sizeof tag);
  } else {
    for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>(tag >> (8 * i));
  }
  for (size_t off = stride; off < n; off += stride) b[off] = static_cast<unsigned char>(tag);
  if (n > sizeof tag) b[n - 1] = static_cast<unsigned char>(tag >> 8);
}

// Verify the tag written by fill() (aborts on a mismatch) and return a checksum term.
inline uint64_t check(const void* p, size_t n, uint64_t tag) {
  const auto* b = static_cast<const unsigned char*>(p);
  uint64_t got = 0;
  if (n >= sizeof got) {
    std::memcpy(&got, b, sizeof got);
    if (got != tag) die("heap corruption: object tag mismatch");
  } else {
    for (size_t i = 0; i < n; i++) {
      if (b[i] != static_cast<unsigned char>(tag >> (8 * i))) die("heap corruption: small object mismatch");
    }
  }
  if (n > sizeof got && b[n - 1] != static_cast<unsigned char>(tag >> 8)) {
    die("heap corruption: last byte mismatch");
  }
  return (tag * 0x9e3779b97f4a7c15ULL) ^ n;
}

// Stride used by the workloads: a byte per cache line for small objects, a byte
// per page for large ones (what matters there is which pages become resident).
inline size_t touch_stride(size_t n) { return n <= 4096 ? 64 : 4096; }

// ---------------------------------------------------------------------------
// Timing and reporting.
// ---------------------------------------------------------------------------
class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  double elapsed_ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// VmHWM of this process in KiB (0 if unavailable); informational only, the
// driver measures the peak RSS itself.
inline long vm_hwm_kb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  long kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) {
      kb = std::strtol(line + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb;
}

// Print the one result line: "<name> ops=N elapsed_ms=X mops_per_s=Y checksum=C <extra> vm_hwm_kb=K".
inline void report(const char* name, uint64_t ops, double elapsed_ms, uint64_t checksum, const char* extra = "") {
  const double mops = elapsed_ms > 0 ? static_cast<double>(ops) / (elapsed_ms * 1000.0) : 0.0;
  std::printf("%s ops=%llu elapsed_ms=%.1f mops_per_s=%.3f checksum=%016llx%s%s vm_hwm_kb=%ld\n", name,
              static_cast<unsigned long long>(ops), elapsed_ms, mops, static_cast<unsigned long long>(checksum),
              extra[0] != '\0' ? " " : "", extra, vm_hwm_kb());
  std::fflush(stdout);
}

// Spin-wait hint.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Back-off used by the spinning queues: spin a little, then yield the CPU (the
// benchmark machine has 2 cores, often shared).
class Backoff {
 public:
  void pause() {
    if (++n_ < 64) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  void reset() { n_ = 0; }

 private:
  unsigned n_ = 0;
};

}  // namespace bench
