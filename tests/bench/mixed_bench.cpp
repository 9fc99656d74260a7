// mixed_bench: mixed sizes up to 1 MiB, multi-threaded.
//
// --threads threads each hold a working set of --slots objects whose sizes are
// log-uniform in [--min, --max] (8 B .. 1 MiB by default: mostly small, a long
// tail of large ones) and replace random slots --ops times.  Small objects are
// written once per cache line, large ones once per page, so the allocator's
// reuse (or release and re-fault) of large blocks shows in time and RSS.
#include "bench_common.hpp"

namespace {

struct Slot {
  void* p;
  size_t n;
  uint64_t tag;
};

const char* const kUsage =
    "  --threads N      threads (default 2)\n"
    "  --slots N        live objects per thread (default 600; smoke 200)\n"
    "  --ops N          replacements per thread (default 800000; smoke 5000)\n"
    "  --min N --max N  object sizes in bytes, log-uniform (default 8..1M)\n"
    "  --seed S         RNG seed (default 1)\n";

struct Params {
  uint64_t nslots, ops, min_size, max_size, seed;
};

void worker(const Params& prm, uint64_t id, std::atomic<uint64_t>& sum) {
  bench::Rng rng(bench::Rng::mix(prm.seed, id));
  uint64_t checksum = 0;
  uint64_t tag = (id + 1) << 40;
  auto* slots = static_cast<Slot*>(bench::xmalloc(prm.nslots * sizeof(Slot)));
  auto alloc = [&](Slot& s) {
    s.n = rng.log_uniform(prm.min_size, prm.max_size);
    s.p = bench::xmalloc(s.n);
    s.tag = ++tag;
    bench::fill(s.p, s.n, s.tag, bench::touch_stride(s.n));
  };
  for (uint64_t i = 0; i < prm.nslots; i++) alloc(slots[i]);
  for (uint64_t i = 0; i < prm.ops; i++) {
    Slot& s = slots[rng.below(prm.nslots)];
    checksum += bench::check(s.p, s.n, s.tag);
    std::free(s.p);
    alloc(s);
  }
  for (uint64_t i = 0; i < prm.nslots; i++) {
    checksum += bench::check(slots[i].p, slots[i].n, slots[i].tag);
    std::free(slots[i].p);
  }
  std::free(slots);
  sum.fetch_add(checksum, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "mixed_bench", kUsage);
  const uint64_t nthreads = args.u64("threads", 2, 2);
  Params prm;
  prm.nslots = args.u64("slots", 600, 200);
  prm.ops = args.u64("ops", 800'000, 5'000);
  prm.min_size = args.u64("min", 8, 8);
  prm.max_size = args.u64("max", uint64_t{1} << 20, uint64_t{1} << 20);
  prm.seed = args.u64("seed", 1, 1);
  args.finish();
  if (nthreads == 0 || prm.nslots == 0 || prm.min_size == 0 || prm.min_size > prm.max_size ||
      prm.max_size > (uint64_t{1} << 34)) {
    args.fail("bad", "parameters");
  }

  bench::Timer timer;
  std::atomic<uint64_t> sum{0};
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < nthreads; t++) threads.emplace_back(worker, std::cref(prm), t, std::ref(sum));
  for (auto& t : threads) t.join();

  char extra[64];
  std::snprintf(extra, sizeof extra, "threads=%llu", static_cast<unsigned long long>(nthreads));
  bench::report("mixed", nthreads * (prm.ops + prm.nslots), timer.elapsed_ms(), sum.load(), extra);
  return 0;
}
