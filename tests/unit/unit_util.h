// unit_util.h: helpers shared by the unit tests (tests/unit).
//
//  - run_child(): re-runs the test binary itself as a child process with one
//    test selected (a DISABLED_ helper test, run with
//    --gtest_also_run_disabled_tests) and extra environment variables, and
//    returns its exit status and what it printed. Used for what happens only
//    once per process: reading MIMALLOC_* variables at start-up, one-time
//    warnings, the process-wide warning/error counters.
//  - opaque(): hides a value from the optimiser (no constant folding, no
//    warnings about freeing non-heap objects).
//  - resident_pages(): mincore() over a range, rounded inward to OS pages.
//  - Signal: a one-way signal between two threads.
#pragma once

#include <fcntl.h>
#include <mimalloc.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

// ASan's runtime sets every new thread up, before the thread's function runs,
// with a call that allocates (pthread_getattr_np: realloc, free) and so
// initialises the thread with us: a test of what a thread is before its first
// allocation cannot hold under ASan.
#if defined(__SANITIZE_ADDRESS__)
#define MI_SKIP_IF_ASAN_STARTS_THREADS() \
  GTEST_SKIP() << "under ASan a new thread has allocated (ASan's own set-up) before its function runs"
#else
#define MI_SKIP_IF_ASAN_STARTS_THREADS() \
  do {                                   \
  } while (0)
#endif

namespace unit {

// A one-way signal between two threads.
struct Signal {
  std::atomic<bool> set{false};
  void raise() { set.store(true, std::memory_order_release); }
  void wait() const {
    while (!set.load(std::memory_order_acquire)) std::this_thread::yield();
  }
};

// A thread's first allocation sets its heap up (a thread with no heap yet
// frees another thread's blocks singly: it keeps none and batches none).
inline void init_thread() { mi_free(mi_malloc(8)); }

template <class T>
inline T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

struct ChildResult {
  int status = -1;  // exit code, or 128 + signal; -2: the selected test did not run
  std::string out;
  std::string err;
  std::string describe() const {
    return "child exit status " + std::to_string(status) + "\n--- child stdout ---\n" + out +
           "\n--- child stderr ---\n" + err;
  }
};

inline std::string read_fd_all(int fd) {
  std::string s;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  return s;
}

inline int make_temp_file() {
  const char* dir = getenv("TMPDIR");
  std::string path = std::string((dir != nullptr && dir[0] != 0) ? dir : "/tmp") + "/mi-unit-XXXXXX";
  std::vector<char> p(path.begin(), path.end());
  p.push_back(0);
  int fd = mkstemp(p.data());
  if (fd >= 0) unlink(p.data());
  return fd;
}

// Runs this test binary with only `gtest_filter` selected. The child gets the
// parent's environment without any MIMALLOC_* or GTEST_* variable, plus
// `env` ("NAME=value" entries) and MI_UNIT_CHILD=1.
inline ChildResult run_child(const std::string& gtest_filter, const std::vector<std::string>& env) {
  ChildResult r;
  std::vector<std::string> envs;
  for (char** e = environ; e != nullptr && *e != nullptr; e++) {
    if (strncasecmp(*e, "MIMALLOC_", 9) == 0 || strncmp(*e, "GTEST_", 6) == 0) continue;
    envs.emplace_back(*e);
  }
  for (const std::string& e : env) envs.push_back(e);
  envs.emplace_back("MI_UNIT_CHILD=1");
  std::vector<char*> envp;
  for (std::string& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::string arg0 = "/proc/self/exe";
  std::string arg1 = "--gtest_filter=" + gtest_filter;
  std::string arg2 = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv = {arg0.data(), arg1.data(), arg2.data(), nullptr};

  int out_fd = make_temp_file();
  int err_fd = make_temp_file();
  if (out_fd < 0 || err_fd < 0) {
    r.err = "cannot create temporary files";
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = std::string("posix_spawn failed: ") + strerror(rc);
    close(out_fd);
    close(err_fd);
    return r;
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus)) r.status = WEXITSTATUS(wstatus);
  else if (WIFSIGNALED(wstatus)) r.status = 128 + WTERMSIG(wstatus);
  r.out = read_fd_all(out_fd);
  r.err = read_fd_all(err_fd);
  close(out_fd);
  close(err_fd);
  // A filter that matches nothing passes vacuously: make that a failure.
  if (r.out.find("[ RUN      ] " + gtest_filter) == std::string::npos) {
    r.status = -2;
    r.err += "\n(unit_util: the child did not run " + gtest_filter + ")";
  }
  return r;
}

inline bool is_child() { return getenv("MI_UNIT_CHILD") != nullptr; }

inline size_t os_page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// Number of resident OS pages in [p, p+size) (rounded inward), or SIZE_MAX
// if mincore fails. *total gets the number of pages looked at.
inline size_t resident_pages(const void* p, size_t size, size_t* total = nullptr) {
  const uintptr_t ps = os_page();
  uintptr_t start = (reinterpret_cast<uintptr_t>(p) + ps - 1) & ~(ps - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(p) + size) & ~(ps - 1);
  if (total != nullptr) *total = (end > start) ? (end - start) / ps : 0;
  if (end <= start) return 0;
  // No allocation here: the purge tests watch the allocator while they poll.
  // A static buffer (tests call this from one thread at a time), not a
  // thread_local: 64 KiB of static TLS would not fit the 64 KiB stack of the
  // purge thread (lib/arena/purger.cpp), which then cannot start.
  static unsigned char vec[1 << 16];  // 256 MiB of 4 KiB pages
  const size_t pages = (end - start) / ps;
  if (pages > sizeof(vec)) return SIZE_MAX;
  if (mincore(reinterpret_cast<void*>(start), end - start, vec) != 0) return SIZE_MAX;
  size_t n = 0;
  for (size_t i = 0; i < pages; i++) n += (vec[i] & 1);
  return n;
}

}  // namespace unit
