// churn_bench: single-thread small-object churn (16-512 B).
//
// A working set of --slots live objects; each op frees a random slot and
// allocates a new object of random size in [--min, --max] into it.  Every
// --burst-every ops comes a burst: --burst objects allocated all at once, then
// all freed (alternately in allocation order and in reverse order), like a
// request that builds a temporary structure and drops it.
#include "bench_common.hpp"

namespace {

struct Slot {
  void* p;
  size_t n;
  uint64_t tag;
};

const char* const kUsage =
    "  --ops N          slot replacements (default 10000000; smoke 200000)\n"
    "  --slots N        live working set (default 20000; smoke 2000)\n"
    "  --min N --max N  object sizes in bytes (default 16..512)\n"
    "  --burst-every N  ops between bursts (default 50000; smoke 20000)\n"
    "  --burst N        objects per burst (default 20000; smoke 5000)\n"
    "  --seed S         RNG seed (default 1)\n";

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "churn_bench", kUsage);
  const uint64_t ops = args.u64("ops", 10'000'000, 200'000);
  const uint64_t nslots = args.u64("slots", 20'000, 2'000);
  const uint64_t min_size = args.u64("min", 16, 16);
  const uint64_t max_size = args.u64("max", 512, 512);
  const uint64_t burst_every = args.u64("burst-every", 50'000, 20'000);
  const uint64_t burst = args.u64("burst", 20'000, 5'000);
  const uint64_t seed = args.u64("seed", 1, 1);
  args.finish();
  if (nslots == 0 || min_size == 0 || min_size > max_size || burst_every == 0) args.fail("bad", "sizes");

  bench::Rng rng(seed);
  bench::Timer timer;
  uint64_t checksum = 0;
  uint64_t allocs = 0;
  uint64_t next_tag = seed * 0x100000001b3ULL;

  auto alloc = [&](Slot& s) {
    s.n = rng.range(min_size, max_size);
    s.p = bench::xmalloc(s.n);
    s.tag = ++next_tag;
    bench::fill(s.p, s.n, s.tag, 64);
    allocs++;
  };
  auto release = [&](Slot& s) {
    checksum += bench::check(s.p, s.n, s.tag);
    std::free(s.p);
    s.p = nullptr;
  };

  auto* slots = static_cast<Slot*>(bench::xmalloc(nslots * sizeof(Slot)));
  for (uint64_t i = 0; i < nslots; i++) alloc(slots[i]);
  auto* tmp = static_cast<Slot*>(bench::xmalloc((burst > 0 ? burst : 1) * sizeof(Slot)));

  for (uint64_t i = 0; i < ops; i++) {
    Slot& s = slots[rng.below(nslots)];
    release(s);
    alloc(s);
    if (burst > 0 && (i + 1) % burst_every == 0) {
      for (uint64_t j = 0; j < burst; j++) alloc(tmp[j]);
      if (((i + 1) / burst_every) % 2 == 0) {
        for (uint64_t j = 0; j < burst; j++) release(tmp[j]);
      } else {
        for (uint64_t j = burst; j-- > 0;) release(tmp[j]);
      }
    }
  }
  for (uint64_t i = 0; i < nslots; i++) release(slots[i]);
  std::free(tmp);
  std::free(slots);

  bench::report("churn", allocs, timer.elapsed_ms(), checksum);
  return 0;
}
