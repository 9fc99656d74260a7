/* alloc_stress -- multi-threaded allocate/free/realloc stress with cross-thread frees.

   What it checks:
     N threads per round, each running a random mix of operations over a
     private set of live blocks: allocate (sizes over powers of two: mostly
     8 B..1 KiB, some 1..128 KiB, rare 128 KiB..4 MiB, a few 4..32 MiB; through
     malloc/calloc/posix_memalign and, with mimalloc, mi_malloc/mi_zalloc/
     mi_malloc_aligned), free, realloc (prefix must survive), and exchange of
     blocks with a shared array of atomic slots ("transfer" array), so that
     blocks are freed, realloc'd or passed on by threads other than the one
     that allocated them.  Threads end and new ones start every round; the
     transfer array keeps its blocks across rounds, so blocks outlive their
     allocating thread and are freed into abandoned pages/segments that other
     threads reclaim.

   Why: this is the allocator's hardest path mix -- thread-local free lists,
   the atomic thread_free list of each page, delayed frees for full pages,
   thread exit (abandon) and reclaim -- under real concurrency.  Every block
   is filled with a pattern derived from its address and size, and the whole
   pattern is verified before every free/realloc and when a block changes
   hands: overlapping blocks, a block handed out twice or a free-list pointer
   written into a live block all show up as a corrupted block, reported with
   its address and the offset of the first bad word.

   usage: alloc_stress [threads=4] [scale=50] [rounds=10]
     ops per thread per round = 100 * scale.  Exit 0 on success; on
     corruption it prints the address and aborts. */
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <thread>
#include <vector>

#include "stress_common.h"

using namespace stress;

namespace {

constexpr size_t kTransfers = 1000;
constexpr size_t kMaxSize = size_t{32} << 20;

std::atomic<void*> g_transfer[kTransfers];

std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_frees{0};
std::atomic<uint64_t> g_foreign_frees{0};  // frees of blocks taken from the transfer array
std::atomic<uint64_t> g_exchanges{0};
std::atomic<uint64_t> g_reallocs{0};
std::atomic<uint64_t> g_bytes{0};

uint64_t g_scale = 50;

size_t pick_size(Rng& rng) {
  const uint64_t u = rng.below(10000);
  unsigned lo, hi;
  if (u < 9000) {  // small: 8 B .. 1 KiB
    lo = 3;
    hi = 9;
  } else if (u < 9900) {  // medium: 1 KiB .. 128 KiB
    lo = 10;
    hi = 16;
  } else if (u < 9995) {  // large: 128 KiB .. 4 MiB
    lo = 17;
    hi = 21;
  } else {  // huge: 4 MiB .. 32 MiB
    lo = 22;
    hi = 24;
  }
  const size_t base = size_t{1} << rng.range(lo, hi);
  return base + rng.below(base);  // [base, 2*base)
}

void* alloc_block(Rng& rng) {
  const size_t size = pick_size(rng);
  bool zeroed = false;
  void* p = xalloc(rng, size, &zeroed);
  if (zeroed) check_zero_or_die("alloc_stress: fresh zeroed block", p, size);
  if (rng.chance(1, 64)) {
    const size_t us = usable_size(p);
    STRESS_CHECK(us >= size, "usable size of %p is %zu < requested %zu", p, us, size);
  }
  fill_self(p, size);
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(size, std::memory_order_relaxed);
  return p;
}

void free_block(Rng& rng, void* p, const char* what) {
  check_self_or_die(what, p, kMaxSize * 2);
  xfree(rng, p);
  g_frees.fetch_add(1, std::memory_order_relaxed);
}

void* realloc_block(Rng& rng, void* p) {
  const size_t old_size = check_self_or_die("alloc_stress: before realloc", p, kMaxSize * 2);
  const uint64_t old_key = key_for(p, old_size);
  size_t new_size;
  switch (rng.below(4)) {
    case 0:  // shrink
      new_size = 8 + rng.below(old_size - 7);
      break;
    case 1:  // grow a little (often in place)
      new_size = old_size + 1 + rng.below(old_size / 4 + 16);
      break;
    case 2:  // grow a lot
      new_size = old_size * 2 + rng.below(64);
      break;
    default:  // anything
      new_size = pick_size(rng);
      break;
  }
  if (new_size > kMaxSize) new_size = kMaxSize;
  const uintptr_t old = reinterpret_cast<uintptr_t>(p);
  void* q = xrealloc(rng, p, new_size);
  const size_t keep = old_size < new_size ? old_size : new_size;
  uint64_t e = 0, a = 0;
  const size_t off = check(q, old_size, old_key, keep, &e, &a);
  if (off != kNoError) {
    fail("alloc_stress: realloc(0x%" PRIxPTR ", %zu -> %zu) = %p lost contents at offset %zu: expected 0x%016" PRIx64
         " found 0x%016" PRIx64,
         old, old_size, new_size, q, off, e, a);
  }
  fill_self(q, new_size);
  g_reallocs.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(new_size, std::memory_order_relaxed);
  return q;
}

void worker(unsigned round, unsigned tid) {
  Rng rng(0xA110C000ull + round * 1000003ull + tid);
  const uint64_t ops = 100 * g_scale;
  const size_t max_live = static_cast<size_t>(20 * g_scale + 16);
  std::vector<void*> live;
  std::vector<bool> foreign;  // parallel to `live`: came from the transfer array
  live.reserve(max_live + 1);
  foreign.reserve(max_live + 1);

  auto remove_at = [&](size_t i) {
    void* p = live[i];
    live[i] = live.back();
    live.pop_back();
    foreign[i] = foreign.back();
    foreign.pop_back();
    return p;
  };

  for (uint64_t op = 0; op < ops; op++) {
    const uint64_t r = rng.below(100);
    if (live.empty() || r < 45) {
      if (live.size() >= max_live) {
        const size_t i = rng.below(live.size());
        const bool f = foreign[i];
        free_block(rng, remove_at(i), "alloc_stress: free (set full)");
        if (f) g_foreign_frees.fetch_add(1, std::memory_order_relaxed);
      }
      live.push_back(alloc_block(rng));
      foreign.push_back(false);
    } else if (r < 70) {
      const size_t i = rng.below(live.size());
      const bool f = foreign[i];
      free_block(rng, remove_at(i), f ? "alloc_stress: free of a transferred block" : "alloc_stress: free");
      if (f) g_foreign_frees.fetch_add(1, std::memory_order_relaxed);
    } else if (r < 82) {
      // exchange one of ours with a slot; adopt what was there
      const size_t i = rng.below(live.size());
      void* mine = remove_at(i);
      check_self_or_die("alloc_stress: before transfer", mine, kMaxSize * 2);
      void* got = g_transfer[rng.below(kTransfers)].exchange(mine, std::memory_order_acq_rel);
      g_exchanges.fetch_add(1, std::memory_order_relaxed);
      if (got != nullptr) {
        check_self_or_die("alloc_stress: block taken from the transfer array", got, kMaxSize * 2);
        live.push_back(got);
        foreign.push_back(true);
      }
    } else if (r < 88) {
      // take a block out of the transfer array and free it here
      void* got = g_transfer[rng.below(kTransfers)].exchange(nullptr, std::memory_order_acq_rel);
      if (got != nullptr) {
        free_block(rng, got, "alloc_stress: free of a transferred block");
        g_foreign_frees.fetch_add(1, std::memory_order_relaxed);
      }
    } else if (r < 95) {
      const size_t i = rng.below(live.size());
      live[i] = realloc_block(rng, live[i]);
      // a realloc'd foreign block is now (possibly) a block of this thread; keep the flag
    } else {
      check_self_or_die("alloc_stress: live block", live[rng.below(live.size())], kMaxSize * 2);
    }
  }

  // Leave some blocks behind in the transfer array for the next round's threads.
  while (!live.empty()) {
    const size_t i = rng.below(live.size());
    const bool f = foreign[i];
    void* p = remove_at(i);
    if (rng.chance(1, 4)) {
      void* got = g_transfer[rng.below(kTransfers)].exchange(p, std::memory_order_acq_rel);
      if (got == nullptr) continue;
      p = got;
      free_block(rng, p, "alloc_stress: free of a transferred block (thread exit)");
      g_foreign_frees.fetch_add(1, std::memory_order_relaxed);
    } else {
      free_block(rng, p, "alloc_stress: free (thread exit)");
      if (f) g_foreign_frees.fetch_add(1, std::memory_order_relaxed);
    }
  }
#if STRESS_HAVE_MIMALLOC
  if (rng.chance(1, 4)) mi_collect(rng.chance(1, 4));
#endif
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t threads = 4, rounds = 10;
  parse_args(argc, argv, "Multi-threaded alloc/free/realloc with cross-thread frees through a transfer array.",
             {{"threads", &threads, 1, 1024, "threads per round"},
              {"scale", &g_scale, 1, 1000000, "work per thread (100*scale ops per round)"},
              {"rounds", &rounds, 1, 1000000, "rounds (threads are recreated every round)"}});
  for (auto& slot : g_transfer) slot.store(nullptr, std::memory_order_relaxed);

  Timer timer;
  size_t max_rss = 0;
  for (unsigned round = 0; round < rounds; round++) {
    std::vector<std::thread> ts;
    ts.reserve(threads);
    for (unsigned t = 0; t < threads; t++) ts.emplace_back(worker, round, t);
    for (auto& t : ts) t.join();
    check_invariants("after a round");
    const size_t rss = rss_bytes();
    if (rss > max_rss) max_rss = rss;
  }

  // Everything still in the transfer array is freed by the main thread.
  Rng rng(0xF1A1ull);
  size_t left = 0;
  for (auto& slot : g_transfer) {
    void* p = slot.exchange(nullptr, std::memory_order_acq_rel);
    if (p != nullptr) {
      free_block(rng, p, "alloc_stress: free of a transferred block (end)");
      g_foreign_frees.fetch_add(1, std::memory_order_relaxed);
      left++;
    }
  }
  const uint64_t allocs = g_allocs.load(), frees = g_frees.load();
  STRESS_CHECK(allocs == frees, "allocations (%" PRIu64 ") != frees (%" PRIu64 ")", allocs, frees);

  std::printf("alloc_stress: threads=%" PRIu64 " scale=%" PRIu64 " rounds=%" PRIu64 ": %" PRIu64 " allocs, %" PRIu64
              " frees (%" PRIu64 " of transferred blocks, %zu at exit), %" PRIu64 " exchanges, %" PRIu64
              " reallocs, %.1f MiB allocated, max RSS %.1f MiB, %.2f s: OK\n",
              threads, g_scale, rounds, allocs, frees, g_foreign_frees.load(), left, g_exchanges.load(),
              g_reallocs.load(), static_cast<double>(g_bytes.load()) / (1 << 20),
              static_cast<double>(max_rss) / (1 << 20), timer.seconds());
  return 0;
}
