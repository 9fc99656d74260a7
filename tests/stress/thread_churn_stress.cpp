/* thread_churn_stress -- memory must not grow when threads come and go.

   What it checks:
     Phase 1 (churn): thousands of short-lived threads, started in batches
       (8 at a time by default).  Each allocates a few hundred blocks (mostly
       16 B..1 KiB, some up to 32 KiB and 256 KiB), frees about 90% of them in
       random order and hands the survivors to the main thread through a
       mutex-protected list, then exits.  While the next batch runs, the main
       thread verifies and frees the survivors of the batch before last -- so
       it frees into pages of threads that have exited (abandoned segments)
       while new threads may be reclaiming those very segments.
     Phase 2 (free-only threads): an allocating thread fills an array with
       blocks and exits; then several threads that never allocate anything
       each verify and free a slice of them (pthread_create'd directly, their
       body only reads and frees).  Repeated many times.
     In both phases the resident set size (/proc/self/statm) is sampled after
     a warm-up and after every batch/round; it must never exceed the warm-up
     value by more than a generous bound (64 MiB by default).

   Why: a per-thread-heap allocator must give the memory of exited threads
   back to the threads that come later (abandon + reclaim), and blocks freed
   by threads that never allocate must become reusable even though no heap of
   the freeing thread ever collects them.  Failing either, memory grows with
   every thread: each round here allocates far more than the bound in total
   (phase 1: ~1 MiB per thread; phase 2: ~3 MiB per round), so a leak of
   even a fraction of it per thread/round fails clearly.

   usage: thread_churn_stress [threads=2000] [batch=8] [objects=300] [rounds=150] [bound_mib=64] */
#include <pthread.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "stress_common.h"

using namespace stress;

namespace {

constexpr size_t kMaxSize = 1 << 20;

uint64_t g_objects = 300;

std::mutex g_survivor_mutex;
std::vector<void*> g_survivors;  // guarded by g_survivor_mutex

std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_frees{0};
std::atomic<uint64_t> g_bytes{0};

size_t churn_size(Rng& rng) {
  const uint64_t u = rng.below(100);
  if (u < 89) return 16 + rng.below(1024 - 16 + 1);
  if (u < 99) return 1024 + rng.below(31 * 1024 + 1);
  return 32 * 1024 + rng.below(224 * 1024 + 1);
}

void churn_thread(uint64_t id) {
  Rng rng(0xC4D2ull * 1000003ull + id);
  std::vector<void*> mine;
  mine.reserve(g_objects);
  for (uint64_t i = 0; i < g_objects; i++) {
    const size_t size = churn_size(rng);
    bool zeroed = false;
    void* p = xalloc(rng, size, &zeroed);
    if (zeroed) check_zero_or_die("thread_churn: fresh zeroed block", p, size);
    fill_self(p, size);
    mine.push_back(p);
    g_bytes.fetch_add(size, std::memory_order_relaxed);
    // interleave some frees so pages get partially reused inside the thread
    if (mine.size() > 16 && rng.chance(1, 4)) {
      const size_t k = rng.below(mine.size());
      check_self_or_die("thread_churn: free (own)", mine[k], kMaxSize);
      xfree(rng, mine[k]);
      mine[k] = mine.back();
      mine.pop_back();
      g_frees.fetch_add(1, std::memory_order_relaxed);
    }
  }
  g_allocs.fetch_add(g_objects, std::memory_order_relaxed);
  // keep ~10% of what was allocated as survivors; free the rest in random order
  const size_t keep = static_cast<size_t>(g_objects / 10);
  while (mine.size() > keep) {
    const size_t k = rng.below(mine.size());
    check_self_or_die("thread_churn: free (own)", mine[k], kMaxSize);
    xfree(rng, mine[k]);
    mine[k] = mine.back();
    mine.pop_back();
    g_frees.fetch_add(1, std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(g_survivor_mutex);
  g_survivors.insert(g_survivors.end(), mine.begin(), mine.end());
}

void free_all(Rng& rng, std::vector<void*>& v, const char* what) {
  for (void* p : v) {
    check_self_or_die(what, p, kMaxSize);
    xfree(rng, p);
  }
  g_frees.fetch_add(v.size(), std::memory_order_relaxed);
  v.clear();
}

/* ---------------- phase 2: free-only threads ---------------- */
struct FreeSlice {
  void** blocks;
  size_t count;
};

void* free_only_thread(void* arg) {
  // Only reads and frees: no allocation on this thread.
  const FreeSlice* s = static_cast<const FreeSlice*>(arg);
  for (size_t i = 0; i < s->count; i++) {
    check_self_or_die("thread_churn: free-only thread", s->blocks[i], kMaxSize);
    libc_free(s->blocks[i]);
  }
  return nullptr;
}

double mib(size_t b) { return static_cast<double>(b) / (1 << 20); }

}  // namespace

int main(int argc, char** argv) {
  uint64_t total_threads = 2000, batch = 8, rounds = 150, bound_mib = 64;
  parse_args(argc, argv, "Thread creation/exit churn and free-only threads; RSS must stay bounded.",
             {{"threads", &total_threads, 1, 100000000, "short-lived threads in phase 1"},
              {"batch", &batch, 1, 1024, "threads running at once in phase 1"},
              {"objects", &g_objects, 10, 1000000, "blocks allocated per thread in phase 1"},
              {"rounds", &rounds, 1, 100000000, "allocate/free-only rounds in phase 2"},
              {"bound_mib", &bound_mib, 1, 1 << 20, "allowed RSS growth over the warm-up value (MiB)"}});
  const size_t bound = static_cast<size_t>(bound_mib) << 20;
  const bool verbose = std::getenv("STRESS_VERBOSE") != nullptr;
  STRESS_CHECK(rss_bytes() != 0, "cannot read /proc/self/statm");
  Timer timer;
  Rng rng(0x3A1Bull);

  /* ---------------- phase 1 ---------------- */
  const uint64_t batches = (total_threads + batch - 1) / batch;
  const uint64_t warm_batches = batches / 10 > 4 ? batches / 10 : (batches > 4 ? 4 : 0);
  std::deque<std::vector<void*>> pending;  // survivors per finished batch, oldest first
  size_t warm_rss = 0, max_rss = 0;
  uint64_t started = 0;
  for (uint64_t b = 0; b < batches; b++) {
    std::vector<std::thread> ts;
    for (uint64_t i = 0; i < batch && started < total_threads; i++, started++) ts.emplace_back(churn_thread, started);
    // free the survivors of the batch before last while this batch runs
    if (pending.size() >= 2) {
      free_all(rng, pending.front(), "thread_churn: free of a survivor (main thread)");
      pending.pop_front();
    }
    for (auto& t : ts) t.join();
    check_invariants("after a batch of threads");
    {
      std::lock_guard<std::mutex> lock(g_survivor_mutex);
      pending.emplace_back();
      pending.back().swap(g_survivors);
    }
    const size_t rss = rss_bytes();
    if (verbose && (b + 1) % 50 == 0) std::printf("phase 1: batch %" PRIu64 ": RSS %.1f MiB\n", b + 1, mib(rss));
    if (b + 1 == warm_batches || (warm_batches == 0 && b == 0)) warm_rss = rss;
    if (b + 1 >= warm_batches && rss > max_rss) max_rss = rss;
    if (warm_rss != 0 && rss > warm_rss + bound) {
      fail("phase 1: RSS grew from %.1f MiB (after %" PRIu64 " warm-up batches) to %.1f MiB after batch %" PRIu64
           " (%" PRIu64 " threads so far), more than the %" PRIu64 " MiB bound: memory of exited threads is not reused",
           mib(warm_rss), warm_batches, mib(rss), b + 1, started, bound_mib);
    }
  }
  while (!pending.empty()) {
    free_all(rng, pending.front(), "thread_churn: free of a survivor (main thread)");
    pending.pop_front();
  }
  const size_t end1_rss = rss_bytes();
  STRESS_CHECK(end1_rss <= warm_rss + bound, "phase 1: RSS at the end %.1f MiB > warm-up %.1f MiB + %" PRIu64 " MiB",
               mib(end1_rss), mib(warm_rss), bound_mib);
  const double t1 = timer.seconds();

  /* ---------------- phase 2 ---------------- */
  constexpr unsigned kFreers = 4;
  constexpr size_t kBlocks = 1200;
  std::vector<void*> blocks(kBlocks, nullptr);  // allocated here, by main, once
  const uint64_t warm_rounds = rounds / 10 > 4 ? rounds / 10 : (rounds > 4 ? 4 : 0);
  size_t warm2_rss = 0, max2_rss = 0;
  uint64_t p2_allocs = 0;
  for (uint64_t r = 0; r < rounds; r++) {
    std::thread allocator([&blocks, r] {
      Rng arng(0xA11Cull * 7919ull + r);
      for (size_t i = 0; i < kBlocks; i++) {
        const size_t size = (i % 64 == 0) ? 16 * 1024 + arng.below(48 * 1024) : 16 + arng.below(4 * 1024);
        bool zeroed = false;
        void* p = xalloc(arng, size, &zeroed);
        fill_self(p, size);
        blocks[i] = p;
      }
    });
    allocator.join();  // the allocating thread has exited before anyone frees
    p2_allocs += kBlocks;
    pthread_t tids[kFreers];
    FreeSlice slices[kFreers];
    for (unsigned f = 0; f < kFreers; f++) {
      const size_t lo = kBlocks * f / kFreers, hi = kBlocks * (f + 1) / kFreers;
      slices[f] = FreeSlice{blocks.data() + lo, hi - lo};
      const int err = pthread_create(&tids[f], nullptr, free_only_thread, &slices[f]);
      STRESS_CHECK(err == 0, "pthread_create failed: %d", err);
    }
    for (unsigned f = 0; f < kFreers; f++) pthread_join(tids[f], nullptr);
    check_invariants("after a round of phase 2");
    const size_t rss = rss_bytes();
    if (verbose && (r + 1) % 25 == 0) std::printf("phase 2: round %" PRIu64 ": RSS %.1f MiB\n", r + 1, mib(rss));
    if (r + 1 == warm_rounds || (warm_rounds == 0 && r == 0)) warm2_rss = rss;
    if (r + 1 >= warm_rounds && rss > max2_rss) max2_rss = rss;
    if (warm2_rss != 0 && rss > warm2_rss + bound) {
      fail("phase 2: RSS grew from %.1f MiB (after %" PRIu64 " warm-up rounds) to %.1f MiB after round %" PRIu64
           ", more than the %" PRIu64 " MiB bound: blocks freed by threads that never allocate are not reused",
           mib(warm2_rss), warm_rounds, mib(rss), r + 1, bound_mib);
    }
  }
  const double t2 = timer.seconds() - t1;

  const uint64_t allocs = g_allocs.load(), frees = g_frees.load();
  STRESS_CHECK(allocs == frees, "phase 1: %" PRIu64 " allocations but %" PRIu64 " frees", allocs, frees);
  std::printf("thread_churn_stress: phase 1: %" PRIu64 " threads in batches of %" PRIu64 ", %" PRIu64
              " allocs (%.1f MiB), RSS warm-up %.1f MiB, max %.1f MiB, end %.1f MiB, %.2f s; phase 2: %" PRIu64
              " rounds x %u free-only threads, %" PRIu64
              " blocks, RSS warm-up %.1f MiB, max %.1f MiB, %.2f s; "
              "bound +%" PRIu64 " MiB, %.2f s: OK\n",
              started, batch, allocs, mib(g_bytes.load()), mib(warm_rss), mib(max_rss), mib(end1_rss), t1, rounds,
              kFreers, p2_allocs, mib(warm2_rss), mib(max2_rss), t2, bound_mib, timer.seconds());
  return 0;
}
