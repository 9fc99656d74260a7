// larson_bench: a larson-like server workload.
//
// --threads worker threads each work on an array of --slots objects, replacing
// random slots with new objects of random size in [--min, --max].  After every
// --epoch-ops replacements a thread hands its array over: it swaps it (one atomic
// exchange, never waiting) with the spare array in a shared hand-over slot, so
// it continues on an array last filled by another thread and most of its frees
// are of objects allocated by a different thread.  Every --thread-epochs epochs
// the worker threads exit and fresh threads take over (as in the original larson
// benchmark), which also exercises the allocator's thread-exit / abandoned-memory
// paths.  No barrier or lock: a thread never waits for another, so a noisy
// machine slows the run down but does not serialise it.
//
// Deterministic: every thread's sizes, tags and slot choices come from its own
// seeded RNG, each object is freed exactly once, and the checksum is a sum over
// all objects, so it does not depend on which thread freed what.
#include "bench_common.hpp"

namespace {

struct Slot {
  void* p;
  size_t n;
  uint64_t tag;
};

const char* const kUsage =
    "  --threads N        worker threads (default 2)\n"
    "  --slots N          objects per array (default 8000; smoke 2000)\n"
    "  --min N --max N    object sizes in bytes (default 16..1024)\n"
    "  --epochs N         epochs per thread (default 1000; smoke 40)\n"
    "  --epoch-ops N      replacements per epoch (default 8000; smoke 2000)\n"
    "  --thread-epochs N  epochs before the threads are replaced (default 100; smoke 10)\n"
    "  --seed S           RNG seed (default 1)\n";

struct Shared {
  uint64_t nthreads, nslots, min_size, max_size, epoch_ops, seed;
  std::atomic<Slot*> spare{nullptr};  // the hand-over slot
  std::atomic<uint64_t> checksum{0};
  std::atomic<uint64_t> allocs{0};
};

void fill_slot(Slot& s, bench::Rng& rng, const Shared& sh, uint64_t tag) {
  s.n = rng.range(sh.min_size, sh.max_size);
  s.p = bench::xmalloc(s.n);
  s.tag = tag;
  bench::fill(s.p, s.n, s.tag, 64);
}

// Runs epochs [first_epoch, last_epoch) of worker t; `arr` is its array in and out.
void worker(Shared& sh, Slot*& arr, uint64_t t, uint64_t first_epoch, uint64_t last_epoch) {
  bench::Rng rng(bench::Rng::mix(sh.seed, t * 1'000'003 + first_epoch));
  uint64_t checksum = 0;
  uint64_t allocs = 0;
  uint64_t tag = ((t + 1) << 48) | (first_epoch << 24);
  Slot* a = arr;
  for (uint64_t e = first_epoch; e < last_epoch; e++) {
    for (uint64_t i = 0; i < sh.epoch_ops; i++) {
      Slot& s = a[rng.below(sh.nslots)];
      checksum += bench::check(s.p, s.n, s.tag);
      std::free(s.p);
      fill_slot(s, rng, sh, ++tag);
      allocs++;
    }
    a = sh.spare.exchange(a, std::memory_order_acq_rel);  // hand the array over
  }
  arr = a;
  sh.checksum.fetch_add(checksum, std::memory_order_relaxed);
  sh.allocs.fetch_add(allocs, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "larson_bench", kUsage);
  Shared sh;
  sh.nthreads = args.u64("threads", 2, 2);
  sh.nslots = args.u64("slots", 8'000, 2'000);
  sh.min_size = args.u64("min", 16, 16);
  sh.max_size = args.u64("max", 1024, 1024);
  const uint64_t epochs = args.u64("epochs", 1'000, 40);
  sh.epoch_ops = args.u64("epoch-ops", 8'000, 2'000);
  const uint64_t thread_epochs = args.u64("thread-epochs", 100, 10);
  sh.seed = args.u64("seed", 1, 1);
  args.finish();
  if (sh.nthreads == 0 || sh.nslots == 0 || sh.min_size == 0 || sh.min_size > sh.max_size || thread_epochs == 0) {
    args.fail("bad", "parameters");
  }

  bench::Timer timer;
  // nthreads + 1 arrays: one per thread plus the spare in the hand-over slot.
  // They are first filled by the main thread (freed by the workers: one more
  // cross-thread pattern).
  bench::Rng init_rng(sh.seed);
  uint64_t init_tag = 0;
  std::vector<Slot*> arrays;
  for (uint64_t t = 0; t <= sh.nthreads; t++) {
    auto* arr = static_cast<Slot*>(bench::xmalloc(sh.nslots * sizeof(Slot)));
    for (uint64_t i = 0; i < sh.nslots; i++) fill_slot(arr[i], init_rng, sh, ++init_tag);
    arrays.push_back(arr);
  }
  sh.spare.store(arrays[sh.nthreads]);
  arrays.pop_back();

  for (uint64_t first = 0; first < epochs; first += thread_epochs) {
    const uint64_t last = first + thread_epochs < epochs ? first + thread_epochs : epochs;
    std::vector<std::thread> threads;
    threads.reserve(sh.nthreads);
    for (uint64_t t = 0; t < sh.nthreads; t++) {
      threads.emplace_back(worker, std::ref(sh), std::ref(arrays[t]), t, first, last);
    }
    for (auto& th : threads) th.join();
  }
  arrays.push_back(sh.spare.load());

  uint64_t checksum = sh.checksum.load();
  for (Slot* arr : arrays) {
    for (uint64_t i = 0; i < sh.nslots; i++) {
      checksum += bench::check(arr[i].p, arr[i].n, arr[i].tag);
      std::free(arr[i].p);
    }
    std::free(arr);
  }
  const double ms = timer.elapsed_ms();
  char extra[96];
  std::snprintf(extra, sizeof extra, "threads=%llu epochs=%llu", static_cast<unsigned long long>(sh.nthreads),
                static_cast<unsigned long long>(epochs));
  bench::report("larson", sh.allocs.load(), ms, checksum, extra);
  return 0;
}
