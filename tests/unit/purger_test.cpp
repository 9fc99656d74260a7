// Unit tests of lib/segment/purger: the background purge thread (option
// purge_thread) returns freed arena memory of an idle process — one that
// makes no allocator call — after the purge delay, and comes back in a fork()
// child. The option is read at start-up, so the thread is tested in child
// processes (unit_util.h); this process, without it, is the control.
#include "segment/purger.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "arena/arena.h"
#include "common/options.h"
#include "os/os.h"
#include "segment/segmap.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

constexpr size_t MiB = 1024 * 1024;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

// ThreadSanitizer runs a thread of its own in every process.
#if defined(__SANITIZE_THREAD__)
constexpr int RUNTIME_THREADS = 1;
#else
constexpr int RUNTIME_THREADS = 0;
#endif

// Threads of this process, from /proc/self/status (no allocation), but a
// sanitizer's own.
int thread_count() {
  char buf[4096];
  if (mi::os_read_file("/proc/self/status", buf, sizeof(buf)) <= 0) return -1;
  const char* t = strstr(buf, "Threads:");
  return (t != nullptr) ? atoi(t + 8) - RUNTIME_THREADS : -1;
}

// Frees a touched huge block and, making no allocator call, waits for its
// memory to leave the resident set. Returns ms from the free to the purge,
// or -1 if it stayed resident for `limit_ms`.
// The resident OS pages of [p, p+len) that no live segment uses: a page of
// it may be taken again by a segment made after the free (under ASan, the
// purge thread allocates when it starts: pthread_getattr_np), whose header
// and pages in use are resident and are nobody's leftovers.
size_t resident_pages_unused(const uint8_t* p, size_t len) {
  const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t n = 0;
  const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + ps - 1) & ~(ps - 1);  // (whole pages, as resident_pages)
  for (const uint8_t* q = reinterpret_cast<const uint8_t*>(first); q + ps <= p + len; q += ps) {
    if (unit::resident_pages(q, ps) == 0) continue;
    const mi::Segment* seg = mi::segmap_segment_of(q);
    if (seg != nullptr) {
      const uint8_t* base = reinterpret_cast<const uint8_t*>(seg);
      if (q < base + seg->blocks_start ||
          mi::page_is_in_use(mi::segment_page_of_any(const_cast<mi::Segment*>(seg), q))) {
        continue;
      }
    }
    n++;
  }
  return n;
}

int64_t idle_purge_time(size_t size, int64_t limit_ms) {
  uint8_t* p = static_cast<uint8_t*>(mi_malloc(size));
  if (p == nullptr) return -2;
  memset(p, 0x5a, size);
  const uint8_t* range = p + 64 * 1024;  // (past the header and the free-list link)
  const size_t len = size - 128 * 1024;
  size_t total = 0;
  if (unit::resident_pages(range, len, &total) != total) return -3;
  const int64_t t0 = now_ms();
  mi_free(p);
  for (;;) {
    const int64_t t = now_ms();
    if (resident_pages_unused(range, len) == 0) return t - t0;
    if (t - t0 > limit_ms) return -1;
    sleep_ms(2);
  }
}

// --- without the thread (this process) ----------------------------------------------

TEST(Purger, OffByDefault) {
  EXPECT_FALSE(mi_option_is_enabled(mi_option_purge_thread));
  EXPECT_FALSE(mi::purger_running());
  mi::purger_poll();  // nothing to restart
  EXPECT_FALSE(mi::purger_running());
}

TEST(Purger, WithoutTheThreadAnIdleProcessKeepsFreedMemory) {
  // The control: with no allocator call after the free, nothing purges.
  const long delay = mi::option_get(mi_option_purge_delay), mult = mi::option_get(mi_option_arena_purge_mult);
  const mi::OptionSource sd = mi::option_source(mi_option_purge_delay, nullptr, nullptr);
  const mi::OptionSource sm = mi::option_source(mi_option_arena_purge_mult, nullptr, nullptr);
  mi_collect(true);
  mi_option_set(mi_option_purge_delay, 10);
  mi_option_set(mi_option_arena_purge_mult, 1);
  const int64_t t = idle_purge_time(6 * MiB, 150);
  EXPECT_EQ(t, -1) << "purged after " << t << " ms with no purge thread and no allocator call";
  mi_collect(true);  // (purges it now)
  mi::option_set_from(mi_option_purge_delay, delay, sd, nullptr, 0);
  mi::option_set_from(mi_option_arena_purge_mult, mult, sm, nullptr, 0);
}

// --- with the thread (child processes) ----------------------------------------------

// MIMALLOC_PURGE_THREAD=1, MIMALLOC_PURGE_DELAY=20, MIMALLOC_ARENA_PURGE_MULT=1
TEST(PurgerChild, DISABLED_IdleProcessIsPurged) {
  ASSERT_TRUE(mi_option_is_enabled(mi_option_purge_thread));
  EXPECT_TRUE(mi::purger_running());
  EXPECT_EQ(thread_count(), 2) << "the main thread and the purge thread";
  const int64_t t = idle_purge_time(6 * MiB, 5000);
  EXPECT_GE(t, 0) << "freed memory of an idle process was not purged within 5 s";
  EXPECT_GE(t, 19) << "purged before the 20 ms delay";
}

// The purge thread blocks every signal, so that a signal sent to the process
// reaches the program's own threads (PostgreSQL's postmaster hung when its
// SIGCHLD went to ours); the main thread's mask is as it was.
TEST(PurgerChild, DISABLED_BlocksEverySignal) {
  ASSERT_TRUE(mi::purger_running());
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/self/task/%d/status", static_cast<int>(getpid()));
  ASSERT_GT(mi::os_read_file(path, buf, sizeof(buf)), 0);
  const char* main_blocked = strstr(buf, "SigBlk:");
  ASSERT_NE(main_blocked, nullptr);
  EXPECT_EQ(strtoull(main_blocked + 7, nullptr, 16), 0u) << "the main thread's mask changed";
  int others = 0;
  DIR* tasks = opendir("/proc/self/task");
  ASSERT_NE(tasks, nullptr);
  while (const struct dirent* e = readdir(tasks)) {  // the other task of this process
    const int tid = atoi(e->d_name);
    if (tid <= 0 || tid == getpid()) continue;
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
    if (mi::os_read_file(path, buf, sizeof(buf)) <= 0) continue;
    others++;
    const char* blocked = strstr(buf, "SigBlk:");
    ASSERT_NE(blocked, nullptr);
    // every signal but SIGKILL and SIGSTOP (the kernel never blocks those) and
    // glibc's internal ones (32, 33: pthread_sigmask leaves them unblocked)
    const unsigned long long mask = strtoull(blocked + 7, nullptr, 16);
    for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGURG, SIGWINCH,
                    SIGRTMIN, SIGRTMAX}) {
      EXPECT_NE(mask & (1ull << (sig - 1)), 0u)
          << "signal " << sig << " not blocked in the purge thread (SigBlk " << std::hex << mask << ")";
    }
  }
  closedir(tasks);
  // (TSan's own thread is one of the others; it blocks every signal too)
  EXPECT_EQ(others, 1 + RUNTIME_THREADS) << "the purge thread was not found";
}

TEST(PurgerThread, BlocksEverySignal) {
  unit::ChildResult r = unit::run_child("PurgerChild.DISABLED_BlocksEverySignal", {"MIMALLOC_PURGE_THREAD=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(PurgerThread, IdleProcessIsPurged) {
  unit::ChildResult r =
      unit::run_child("PurgerChild.DISABLED_IdleProcessIsPurged",
                      {"MIMALLOC_PURGE_THREAD=1", "MIMALLOC_PURGE_DELAY=20", "MIMALLOC_ARENA_PURGE_MULT=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// The thread runs on a small stack (256 KiB), not the default 8 MiB of
// address space in every process (stats_publish starts the thread too):
// the mapping that holds a local of the thread's task is at most 512 KiB.
std::atomic<uintptr_t> task_local_address{0};
int64_t record_stack_address() noexcept {
  volatile char here = 0;
  task_local_address.store(reinterpret_cast<uintptr_t>(&here));
  return -1;
}

TEST(PurgerChild, DISABLED_SmallStack) {
  ASSERT_TRUE(mi::purger_running());
  mi::purger_set_task(&record_stack_address);
  for (int i = 0; i < 300 && task_local_address.load() == 0; i++) sleep_ms(10);
  const uintptr_t a = task_local_address.load();
  ASSERT_NE(a, 0u) << "the thread did not run the task";
  FILE* f = fopen("/proc/self/maps", "r");
  ASSERT_NE(f, nullptr);
  char line[512];
  uintptr_t size = 0;
  while (fgets(line, sizeof(line), f) != nullptr) {
    unsigned long lo = 0, hi = 0;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) size = hi - lo;
  }
  fclose(f);
  EXPECT_GT(size, 0u);
  EXPECT_LE(size, 512u * 1024) << "the background thread's stack mapping is " << size / 1024 << " KiB";
}

TEST(PurgerThread, SmallStack) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's pthread_create gives the thread a larger stack than it asks for (900 KiB here)";
#endif
  unit::ChildResult r = unit::run_child("PurgerChild.DISABLED_SmallStack", {"MIMALLOC_PURGE_THREAD=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// MIMALLOC_PURGE_DELAY=-1 with the thread: it never purges.
TEST(PurgerChild, DISABLED_NeverPurgesWithDelayMinusOne) {
  EXPECT_TRUE(mi::purger_running());
  const int64_t t = idle_purge_time(6 * MiB, 150);
  EXPECT_EQ(t, -1) << "purged after " << t << " ms although purge_delay is -1";
}

TEST(PurgerThread, NeverPurgesWithDelayMinusOne) {
  unit::ChildResult r = unit::run_child("PurgerChild.DISABLED_NeverPurgesWithDelayMinusOne",
                                        {"MIMALLOC_PURGE_THREAD=1", "MIMALLOC_PURGE_DELAY=-1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// The thread does not survive fork(): the child's first allocator slow paths
// start a new one, which then purges the child's freed memory.
TEST(PurgerChild, DISABLED_RestartsAfterFork) {
  ASSERT_TRUE(mi::purger_running());
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // the forked process: report by exit code (no gtest here)
    int code = 0;
    if (thread_count() != 1) code |= 1;
    if (mi::purger_running()) code |= 2;  // the thread did not come along
    // allocator slow paths (sizes beyond the direct table take it every time)
    void* ps[64];
    for (int i = 0; i < 64; i++) ps[i] = mi_malloc(2000 + static_cast<size_t>(i) * 16);
    for (int i = 0; i < 64; i++) mi_free(ps[i]);
    if (!mi::purger_running()) code |= 4;
    if (thread_count() != 2) code |= 8;
    const int64_t t = idle_purge_time(6 * MiB, 5000);
    if (t < 0) code |= 16;
    else if (t < 19) code |= 32;
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  const int code = WEXITSTATUS(status);
  EXPECT_EQ(code & 1, 0) << "the fork child has more than one thread at first";
  EXPECT_EQ(code & 2, 0) << "the fork child believes the purge thread runs";
  EXPECT_EQ(code & 4, 0) << "the fork child's slow paths did not restart the purge thread";
  EXPECT_EQ(code & 8, 0) << "no purge thread in the fork child";
  EXPECT_EQ(code & 16, 0) << "the fork child's freed memory was not purged while idle";
  EXPECT_EQ(code & 32, 0) << "the fork child purged before the delay";
  // the parent's thread is unaffected
  EXPECT_TRUE(mi::purger_running());
}

TEST(PurgerThread, RestartsAfterFork) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot start a thread in the child of a multi-threaded fork";
#endif
  unit::ChildResult r =
      unit::run_child("PurgerChild.DISABLED_RestartsAfterFork",
                      {"MIMALLOC_PURGE_THREAD=1", "MIMALLOC_PURGE_DELAY=20", "MIMALLOC_ARENA_PURGE_MULT=1"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
