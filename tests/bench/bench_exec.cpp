// bench_exec: run a program (optionally N times) and report its wall time and
// peak RSS.  Used by tools/bench/run_bench.py for every benchmark run.
//
// Why a helper: on Linux a child's ru_maxrss (wait4/getrusage) is at least the
// resident size of the process that forked it, because the forked (or vfork'ed)
// address space's high-water mark is carried over exec.  Spawned from the Python
// driver, every workload would report >= the driver's ~10 MiB, hiding the peak
// RSS of the small workloads and of /bin/true.  This helper is a small process,
// so the floor it adds is about a MiB of shared libc pages, the same for every
// allocator.  It also times each exec precisely (start-up cost is ~1 ms).
//
// The helper itself always runs on glibc's malloc: LD_PRELOAD is set only in the
// environment of the program it starts (--preload).
//
// usage: bench_exec [--preload LIB] [--repeat N] [--report FILE] -- PROG [ARGS...]
// Report (one line, to FILE or stdout, after the runs):
//   bench_exec runs=N status=exit:0 wall_ns_median=.. wall_ns_min=.. wall_ns_max=..
//              wall_ns_total=.. cpu_ns_median=.. maxrss_kb=.. maxrss_kb_median=..
// (cpu = user + system time of the program, all its threads.)
// Exit status: 0 if every run exited 0, 1 otherwise (status= names the first
// failure: exit:N, signal:N or spawn:ERRNO), 2 on bad usage.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern char** environ;

namespace {

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "bench_exec: %s\nusage: bench_exec [--preload LIB] [--repeat N] [--report FILE] -- PROG [ARGS...]\n",
               msg);
  std::exit(2);
}

template <typename T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* preload = nullptr;
  const char* report_path = nullptr;
  long repeat = 1;
  int i = 1;
  for (; i < argc; i++) {
    if (std::strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) usage("missing value or program");
    if (std::strcmp(argv[i], "--preload") == 0) {
      preload = argv[++i];
    } else if (std::strcmp(argv[i], "--repeat") == 0) {
      repeat = std::strtol(argv[++i], nullptr, 10);
      if (repeat < 1) usage("--repeat must be >= 1");
    } else if (std::strcmp(argv[i], "--report") == 0) {
      report_path = argv[++i];
    } else {
      usage("unknown option");
    }
  }
  if (i >= argc) usage("no program given");
  char** child_argv = argv + i;

  if (preload != nullptr && preload[0] != '\0') {
    if (setenv("LD_PRELOAD", preload, 1) != 0) usage("setenv failed");
  } else {
    unsetenv("LD_PRELOAD");
  }

  std::vector<int64_t> wall;
  std::vector<int64_t> cpu;
  std::vector<long> rss;
  cpu.reserve(static_cast<size_t>(repeat));
  wall.reserve(static_cast<size_t>(repeat));
  rss.reserve(static_cast<size_t>(repeat));
  char status[48] = "exit:0";
  bool failed = false;

  for (long r = 0; r < repeat && !failed; r++) {
    const int64_t t0 = now_ns();
    pid_t pid = 0;
    const int err = posix_spawnp(&pid, child_argv[0], nullptr, nullptr, child_argv, environ);
    if (err != 0) {
      std::snprintf(status, sizeof status, "spawn:%d", err);
      std::fprintf(stderr, "bench_exec: cannot run %s: %s\n", child_argv[0], std::strerror(err));
      failed = true;
      break;
    }
    int wstatus = 0;
    rusage ru;
    std::memset(&ru, 0, sizeof ru);
    pid_t w;
    do {
      w = wait4(pid, &wstatus, 0, &ru);
    } while (w < 0 && errno == EINTR);
    const int64_t t1 = now_ns();
    if (w < 0) {
      std::snprintf(status, sizeof status, "wait:%d", errno);
      failed = true;
      break;
    }
    wall.push_back(t1 - t0);
    cpu.push_back((static_cast<int64_t>(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1'000'000'000 +
                  (static_cast<int64_t>(ru.ru_utime.tv_usec) + ru.ru_stime.tv_usec) * 1'000);
    rss.push_back(ru.ru_maxrss);
    if (WIFEXITED(wstatus)) {
      if (WEXITSTATUS(wstatus) != 0) {
        std::snprintf(status, sizeof status, "exit:%d", WEXITSTATUS(wstatus));
        failed = true;
      }
    } else if (WIFSIGNALED(wstatus)) {
      std::snprintf(status, sizeof status, "signal:%d", WTERMSIG(wstatus));
      failed = true;
    } else {
      std::snprintf(status, sizeof status, "unknown:%d", wstatus);
      failed = true;
    }
  }

  FILE* out = stdout;
  if (report_path != nullptr) {
    out = std::fopen(report_path, "w");
    if (out == nullptr) {
      std::perror("bench_exec: cannot open report file");
      return 2;
    }
  }
  if (wall.empty()) {
    std::fprintf(out, "bench_exec runs=0 status=%s\n", status);
  } else {
    int64_t total = 0;
    for (int64_t w : wall) total += w;
    std::fprintf(out,
                 "bench_exec runs=%zu status=%s wall_ns_median=%lld wall_ns_min=%lld wall_ns_max=%lld "
                 "wall_ns_total=%lld cpu_ns_median=%lld maxrss_kb=%ld maxrss_kb_median=%ld\n",
                 wall.size(), status, static_cast<long long>(median(wall)),
                 static_cast<long long>(*std::min_element(wall.begin(), wall.end())),
                 static_cast<long long>(*std::max_element(wall.begin(), wall.end())), static_cast<long long>(total),
                 static_cast<long long>(median(cpu)), *std::max_element(rss.begin(), rss.end()), median(rss));
  }
  if (out != stdout) std::fclose(out);
  return failed ? 1 : 0;
}
