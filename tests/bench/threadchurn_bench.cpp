// threadchurn_bench: short-lived threads, two at a time, handing blocks on.
//
// Two lanes; in each of --generations generations one new thread per lane
// starts (so two threads run at a time), takes over what the lane's previous
// thread left -- verifies and frees those blocks (frees of blocks another,
// already exited thread allocated) --, allocates --blocks blocks of
// log-uniform sizes in [--min, --max], frees a random --free-pct percent of
// them and leaves the rest to the lane's next thread, then exits.  The
// allocator's costs of a thread's start and exit (heap set-up, abandoned pages,
// purging what the dead thread held, page faults after a purge) dominate.
#include "bench_common.hpp"

namespace {

struct Block {
  void* p;
  size_t n;
  uint64_t tag;
};

// What a lane's thread leaves to the next one: its surviving blocks.  The
// arrays are the driver's (allocated once), so only the workload's blocks go
// through the allocator during the run.
struct Lane {
  Block* kept;
  uint64_t nkept = 0;
  uint64_t checksum = 0;
};

const char* const kUsage =
    "  --generations N  threads started per lane (default 1500; smoke 100)\n"
    "  --blocks N       blocks each thread allocates (default 4000; smoke 2000)\n"
    "  --free-pct N     percent of them it frees itself (default 50)\n"
    "  --min N --max N  block sizes in bytes, log-uniform (default 16..512)\n"
    "  --seed S         RNG seed (default 1)\n";

struct Params {
  uint64_t blocks, free_pct, min_size, max_size, seed;
};

void generation(const Params& prm, Lane& lane, uint64_t lane_id, uint64_t gen, Block* scratch) {
  for (uint64_t i = 0; i < lane.nkept; i++) {
    const Block& b = lane.kept[i];
    lane.checksum += bench::check(b.p, b.n, b.tag);
    std::free(b.p);
  }
  lane.nkept = 0;
  bench::Rng rng(bench::Rng::mix(prm.seed, gen * 2 + lane_id));
  uint64_t tag = ((lane_id + 1) << 56) | (gen << 20);
  for (uint64_t i = 0; i < prm.blocks; i++) {
    Block& b = scratch[i];
    b.n = rng.log_uniform(prm.min_size, prm.max_size);
    b.p = bench::xmalloc(b.n);
    b.tag = ++tag;
    bench::fill(b.p, b.n, b.tag, 64);
  }
  for (uint64_t i = 0; i < prm.blocks; i++) {
    const Block& b = scratch[i];
    if (rng.below(100) < prm.free_pct) {
      lane.checksum += bench::check(b.p, b.n, b.tag);
      std::free(b.p);
    } else {
      lane.kept[lane.nkept++] = b;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "threadchurn_bench", kUsage);
  const uint64_t generations = args.u64("generations", 1500, 100);
  Params prm;
  prm.blocks = args.u64("blocks", 4000, 2000);
  prm.free_pct = args.u64("free-pct", 50, 50);
  prm.min_size = args.u64("min", 16, 16);
  prm.max_size = args.u64("max", 512, 512);
  prm.seed = args.u64("seed", 1, 1);
  args.finish();
  if (prm.blocks == 0 || prm.free_pct > 100 || prm.min_size == 0 || prm.min_size > prm.max_size ||
      prm.max_size > (uint64_t{1} << 30)) {
    args.fail("bad", "parameters");
  }

  Lane lanes[2];
  Block* scratch[2];
  for (int l = 0; l < 2; l++) {
    lanes[l].kept = static_cast<Block*>(bench::xmalloc(prm.blocks * sizeof(Block)));
    scratch[l] = static_cast<Block*>(bench::xmalloc(prm.blocks * sizeof(Block)));
  }
  bench::Timer timer;
  for (uint64_t g = 0; g < generations; g++) {
    std::thread a(generation, std::cref(prm), std::ref(lanes[0]), 0, g, scratch[0]);
    std::thread b(generation, std::cref(prm), std::ref(lanes[1]), 1, g, scratch[1]);
    a.join();
    b.join();
  }
  uint64_t sum = 0;
  for (int l = 0; l < 2; l++) {  // the last generation's blocks, freed by the main thread
    for (uint64_t i = 0; i < lanes[l].nkept; i++) {
      const Block& b = lanes[l].kept[i];
      lanes[l].checksum += bench::check(b.p, b.n, b.tag);
      std::free(b.p);
    }
    sum += lanes[l].checksum;
    std::free(lanes[l].kept);
    std::free(scratch[l]);
  }
  char extra[64];
  std::snprintf(extra, sizeof extra, "threads=%llu", static_cast<unsigned long long>(2 * generations));
  bench::report("threadchurn", 2 * generations * prm.blocks, timer.elapsed_ms(), sum, extra);
  return 0;
}
