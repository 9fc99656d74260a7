/* fork_stress -- fork() while other threads allocate; the child must work.

   What it checks:
     Several worker threads allocate, free, realloc and swap blocks (sizes from
     8 B to 4 MiB) with a shared pool, without pause.  Meanwhile the main
     thread forks repeatedly.  Each child, which has only the forking thread
     and a snapshot of the allocator's state taken at an arbitrary moment of
     the workers' activity:
       - verifies and frees every block it inherited in the shared pool
         (allocated by worker threads that do not exist in the child) and the
         blocks the main thread allocated before the fork;
       - allocates and frees many blocks of all sizes (8 B..32 MiB);
       - starts new threads that allocate, free and free each other's blocks,
         and joins them;
       - exits with status 0 (alternately through exit() and _exit()).
     The parent checks every child's exit status.  A child that hangs (for
     example on a lock a worker held at the time of the fork) is killed by its
     own alarm() watchdog and reported; the parent has a second watchdog.

   Why: programs fork from multi-threaded processes (servers spawning
   helpers, test runners, language runtimes).  Allocator locks held by other
   threads at fork time, per-thread state of threads that vanish in the child,
   and thread ids reused by the child's new threads all break allocators in
   ways no single-process test finds.

   usage: fork_stress [workers=3] [forks=16] [scale=5]
     child work: 200 * scale operations on the main thread and on each of 2
     new threads. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "stress_common.h"

using namespace stress;

namespace {

constexpr size_t kMaxSize = size_t{64} << 20;
constexpr unsigned kChildTimeout = 60;  // seconds, per child
constexpr size_t kPool = 256;

std::mutex g_pool_mutex;
void* g_pool[kPool];  // guarded by g_pool_mutex

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_worker_ops{0};

/* Sizes over powers of two: 8 B..1 KiB (90%), 1..128 KiB, and for `big`
   (children) also 1% 128 KiB..4 MiB and 0.1% 4..32 MiB.  The parent's
   workers stay mostly small (0.1% large) so that they spend their time in
   the allocator rather than in page faults. */
size_t pick_size(Rng& rng, bool big) {
  const uint64_t u = rng.below(10000);
  const uint64_t large_from = big ? 9900 : 9990;
  unsigned lo, hi;
  if (u < 9000) {
    lo = 3;
    hi = 9;
  } else if (u < large_from) {
    lo = 10;
    hi = 16;
  } else if (u < 9990 || !big) {
    lo = 17;
    hi = 21;
  } else {
    lo = 22;
    hi = 24;
  }
  const size_t base = size_t{1} << rng.range(lo, hi);
  return base + rng.below(base);
}

void* new_block(Rng& rng, bool big) {
  const size_t size = pick_size(rng, big);
  bool zeroed = false;
  void* p = xalloc(rng, size, &zeroed);
  if (zeroed) check_zero_or_die("fork_stress: fresh zeroed block", p, size);
  fill_self(p, size);
  return p;
}

void free_block(Rng& rng, void* p, const char* what) {
  check_self_or_die(what, p, kMaxSize);
  xfree(rng, p);
}

/* One random operation on a private set of live blocks; optionally swaps a
   block with a slot of `xfer` (atomic slots shared between threads). */
void churn_step(Rng& rng, std::vector<void*>& live, size_t cap, bool big, std::atomic<void*>* xfer, size_t nxfer) {
  const uint64_t r = rng.below(100);
  if (live.empty() || (r < 50 && live.size() < cap)) {
    live.push_back(new_block(rng, big));
  } else if (r < 80 || live.size() >= cap) {
    const size_t i = rng.below(live.size());
    free_block(rng, live[i], "fork_stress: free");
    live[i] = live.back();
    live.pop_back();
  } else if (r < 90) {
    const size_t i = rng.below(live.size());
    const size_t old = check_self_or_die("fork_stress: before realloc", live[i], kMaxSize);
    const uint64_t old_key = key_for(live[i], old);
    const uint64_t how = rng.below(3);
    size_t now = how == 0 ? old / 2 + 8 : how == 1 ? old + rng.below(old / 4 + 16) + 1 : pick_size(rng, big);
    if (now > kMaxSize / 2) now = kMaxSize / 2;
    void* q = xrealloc(rng, live[i], now);
    check_or_die("fork_stress: contents after realloc", q, old, old_key, old < now ? old : now);
    fill_self(q, now);
    live[i] = q;
  } else if (xfer != nullptr) {
    const size_t i = rng.below(live.size());
    void* got = xfer[rng.below(nxfer)].exchange(live[i], std::memory_order_acq_rel);
    if (got != nullptr) {
      check_self_or_die("fork_stress: block from another thread", got, kMaxSize);
      live[i] = got;
    } else {
      live[i] = live.back();
      live.pop_back();
    }
  } else {
    check_self_or_die("fork_stress: live block", live[rng.below(live.size())], kMaxSize);
  }
}

void worker(unsigned tid) {
  Rng rng(0xF0A4ull * 131ull + tid);
  std::vector<void*> live;
  live.reserve(256);
  uint64_t ops = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    if (rng.chance(1, 8) && !live.empty()) {
      // swap a block with the shared pool (what the children inherit)
      const size_t i = rng.below(live.size());
      check_self_or_die("fork_stress: block put into the pool", live[i], kMaxSize);
      std::lock_guard<std::mutex> lock(g_pool_mutex);
      void*& slot = g_pool[rng.below(kPool)];
      void* got = slot;
      slot = live[i];
      if (got != nullptr) {
        live[i] = got;
      } else {
        live[i] = live.back();
        live.pop_back();
      }
    } else {
      churn_step(rng, live, 200, false, nullptr, 0);
    }
    ops++;
  }
  for (void* p : live) free_block(rng, p, "fork_stress: worker exit");
  g_worker_ops.fetch_add(ops, std::memory_order_relaxed);
}

/* ---------------- the child ---------------- */
void on_child_alarm(int) {
  static const char msg[] = "fork_stress: FAIL: child hung: watchdog alarm fired\n";
  ssize_t n = write(2, msg, sizeof msg - 1);
  (void)n;
  _exit(3);
}

[[noreturn]] void child_main(unsigned fork_no, uint64_t scale, std::vector<void*>& main_blocks) {
  signal(SIGALRM, on_child_alarm);
  alarm(kChildTimeout);
  Rng rng(0xC41Dull * 977ull + fork_no);

  // Blocks inherited from the parent: the pool (allocated by workers that do
  // not exist here; the pool mutex is held by this thread since before the
  // fork, so the pool is consistent) and the main thread's own blocks.
  size_t inherited = 0;
  for (void*& p : g_pool) {
    if (p != nullptr) {
      free_block(rng, p, "fork_stress: child freeing a worker's block from the pool");
      p = nullptr;
      inherited++;
    }
  }
  for (void* p : main_blocks) free_block(rng, p, "fork_stress: child freeing a main-thread block");
  inherited += main_blocks.size();
  main_blocks.clear();

  // Work on the only thread the child has.
  const uint64_t ops = 200 * scale;
  std::vector<void*> live;
  live.reserve(128);
  for (uint64_t i = 0; i < ops; i++) churn_step(rng, live, 100, true, nullptr, 0);

  // New threads in the child, passing blocks to each other.
  std::atomic<void*> xfer[16];
  for (auto& s : xfer) s.store(nullptr, std::memory_order_relaxed);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 2; t++) {
    ts.emplace_back([&xfer, ops, fork_no, t] {
      Rng trng(0xC41Eull * 1009ull + fork_no * 2 + t);
      std::vector<void*> mine;
      mine.reserve(128);
      for (uint64_t i = 0; i < ops; i++) churn_step(trng, mine, 100, true, xfer, 16);
      for (void* p : mine) free_block(trng, p, "fork_stress: child thread exit");
    });
  }
  for (auto& t : ts) t.join();
  for (auto& s : xfer) {
    void* p = s.exchange(nullptr);
    if (p != nullptr) free_block(rng, p, "fork_stress: child freeing a block of an exited child thread");
  }
  for (void* p : live) free_block(rng, p, "fork_stress: child");
  live.clear();
  check_invariants("in a fork child, its threads joined");
  if (inherited == 0) {
    static const char msg[] = "fork_stress: FAIL: child inherited no blocks\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(4);
  }
  alarm(0);
  if (fork_no % 2 == 0) std::exit(0);  // atexit handlers, static destructors, allocator shutdown
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t workers = 3, forks = 16, scale = 5;
  parse_args(argc, argv,
             "fork() while worker threads allocate; children free inherited blocks and allocate, also in new threads.",
             {{"workers", &workers, 0, 256, "busy worker threads in the parent"},
              {"forks", &forks, 1, 1000000, "number of forks"},
              {"scale", &scale, 1, 1000000, "child work (200*scale ops per child thread)"}});
  const bool verbose = std::getenv("STRESS_VERBOSE") != nullptr;
  Timer timer;
  Rng rng(0xFA7Eull);
  std::vector<void*> main_blocks;
  {
    // seed the pool so that every child inherits worker-made and main-made blocks
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    for (size_t i = 0; i < kPool / 4; i++) g_pool[i] = new_block(rng, true);
  }
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < workers; t++) ts.emplace_back(worker, t);

  uint64_t children_ok = 0;
  for (unsigned f = 0; f < forks; f++) {
    // let the workers run; renew some of the main thread's own blocks
    for (int i = 0; i < 50; i++) {
      if (main_blocks.size() >= 64) {
        const size_t k = rng.below(main_blocks.size());
        free_block(rng, main_blocks[k], "fork_stress: main");
        main_blocks[k] = main_blocks.back();
        main_blocks.pop_back();
      }
      main_blocks.push_back(new_block(rng, false));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + rng.below(5)));

    std::fflush(stdout);
    std::fflush(stderr);
    g_pool_mutex.lock();
    Timer fork_timer;
    const pid_t pid = fork();
    const double t_fork = fork_timer.seconds();
    if (pid == 0) child_main(f, scale, main_blocks);
    g_pool_mutex.unlock();
    STRESS_CHECK(pid > 0, "fork %u failed", f);

    // wait for the child, with a watchdog of our own
    int status = 0;
    Timer wait_timer;
    for (;;) {
      const pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      STRESS_CHECK(w == 0 || (w < 0 && errno == EINTR), "waitpid failed for child %d", static_cast<int>(pid));
      if (wait_timer.seconds() > kChildTimeout + 30) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail("child %d of fork %u did not finish in %u s (its own watchdog did not fire either)", static_cast<int>(pid),
             f, kChildTimeout + 30);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (WIFSIGNALED(status)) {
      fail("child %d of fork %u was killed by signal %d (%s)", static_cast<int>(pid), f, WTERMSIG(status),
           strsignal(WTERMSIG(status)));
    }
    STRESS_CHECK(WIFEXITED(status), "child %d of fork %u: unexpected wait status 0x%x", static_cast<int>(pid), f,
                 status);
    if (WEXITSTATUS(status) != 0) {
      fail("child %d of fork %u exited with status %d%s", static_cast<int>(pid), f, WEXITSTATUS(status),
           WEXITSTATUS(status) == 3 ? " (hung: its watchdog fired)" : "");
    }
    children_ok++;
    if (verbose) {
      std::printf("fork %u: fork() %.1f ms, child ran %.1f ms, RSS %.1f MiB\n", f, t_fork * 1e3,
                  wait_timer.seconds() * 1e3, static_cast<double>(rss_bytes()) / (1 << 20));
    }
  }

  g_stop.store(true);
  for (auto& t : ts) t.join();
  check_invariants("at the end, the threads joined");
  size_t pooled = 0;
  for (void*& p : g_pool) {
    if (p != nullptr) {
      free_block(rng, p, "fork_stress: main freeing the pool");
      p = nullptr;
      pooled++;
    }
  }
  for (void* p : main_blocks) free_block(rng, p, "fork_stress: main");
  std::printf("fork_stress: %" PRIu64 " workers, %" PRIu64 " forks (all children exited 0), %" PRIu64
              " worker ops during the forks, %zu pool blocks at the end, child scale %" PRIu64 ", %.2f s: OK\n",
              workers, children_ok, g_worker_ops.load(), pooled, scale, timer.seconds());
  return 0;
}
