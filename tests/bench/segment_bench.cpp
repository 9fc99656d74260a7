// segment_bench: segment-sized and huge objects, allocated and freed repeatedly.
//
// --threads threads each keep a small live set of --live objects and replace a
// random one --ops times with a new object of log-uniform size in
// [--min-mib, --max-mib] MiB (1..64 MiB by default), writing a byte in every
// 4 KiB page of it.  Exercises the allocator's arena claim/release, huge-object
// and purge (decommit/reset) paths: what is kept, what is returned to the OS and
// how often pages are faulted in again shows in time and peak RSS.
#include "bench_common.hpp"

namespace {

struct Slot {
  void* p;
  size_t n;
  uint64_t tag;
};

const char* const kUsage =
    "  --threads N      threads (default 2)\n"
    "  --live N         live objects per thread (default 2)\n"
    "  --ops N          replacements per thread (default 120; smoke 12)\n"
    "  --min-mib N      smallest size in MiB (default 1)\n"
    "  --max-mib N      largest size in MiB (default 64; smoke 16)\n"
    "  --seed S         RNG seed (default 1)\n";

struct Params {
  uint64_t live, ops, min_size, max_size, seed;
};

void worker(const Params& prm, uint64_t id, std::atomic<uint64_t>& sum, std::atomic<uint64_t>& bytes) {
  bench::Rng rng(bench::Rng::mix(prm.seed, id));
  uint64_t checksum = 0;
  uint64_t total = 0;
  uint64_t tag = (id + 1) << 40;
  Slot* slots = new Slot[prm.live];
  auto alloc = [&](Slot& s) {
    s.n = rng.log_uniform(prm.min_size, prm.max_size);
    s.p = bench::xmalloc(s.n);
    s.tag = ++tag;
    bench::fill(s.p, s.n, s.tag, 4096);
    total += s.n;
  };
  for (uint64_t i = 0; i < prm.live; i++) alloc(slots[i]);
  for (uint64_t i = 0; i < prm.ops; i++) {
    Slot& s = slots[rng.below(prm.live)];
    checksum += bench::check(s.p, s.n, s.tag);
    std::free(s.p);
    alloc(s);
  }
  for (uint64_t i = 0; i < prm.live; i++) {
    checksum += bench::check(slots[i].p, slots[i].n, slots[i].tag);
    std::free(slots[i].p);
  }
  delete[] slots;
  sum.fetch_add(checksum, std::memory_order_relaxed);
  bytes.fetch_add(total, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "segment_bench", kUsage);
  const uint64_t nthreads = args.u64("threads", 2, 2);
  Params prm;
  prm.live = args.u64("live", 2, 2);
  prm.ops = args.u64("ops", 120, 12);
  const uint64_t min_mib = args.u64("min-mib", 1, 1);
  const uint64_t max_mib = args.u64("max-mib", 64, 16);
  prm.seed = args.u64("seed", 1, 1);
  args.finish();
  if (nthreads == 0 || prm.live == 0 || min_mib == 0 || min_mib > max_mib || max_mib > 4096) {
    args.fail("bad", "parameters");
  }
  prm.min_size = min_mib << 20;
  prm.max_size = max_mib << 20;

  bench::Timer timer;
  std::atomic<uint64_t> sum{0}, bytes{0};
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < nthreads; t++) {
    threads.emplace_back(worker, std::cref(prm), t, std::ref(sum), std::ref(bytes));
  }
  for (auto& t : threads) t.join();

  char extra[96];
  std::snprintf(extra, sizeof extra, "threads=%llu mib_allocated=%llu", static_cast<unsigned long long>(nthreads),
                static_cast<unsigned long long>(bytes.load() >> 20));
  bench::report("segment", nthreads * (prm.ops + prm.live), timer.elapsed_ms(), sum.load(), extra);
  return 0;
}
