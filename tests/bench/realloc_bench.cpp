// realloc_bench: realloc growth, like string builders and vectors.
//
// --buffers buffers are grown interleaved (a random buffer per step) by realloc,
// starting at 8 B, each step either appending 16-256 B (string builder) or
// growing by x1.1-x1.5 (vector), up to a per-buffer target size that is
// log-uniform in [--min-target, --max-target].  Appended bytes are written,
// preserved contents are verified.  A buffer that reached its target is freed
// and a new one started; --steps realloc calls in total, then all are freed.
#include "bench_common.hpp"

namespace {

struct Buf {
  unsigned char* p;
  size_t n;
  size_t target;
  unsigned char fillc;
};

const char* const kUsage =
    "  --buffers N      buffers grown concurrently (default 32; smoke 16)\n"
    "  --steps N        realloc calls in total (default 300000; smoke 20000)\n"
    "  --min-target N   smallest final size in bytes (default 4096)\n"
    "  --max-target N   largest final size in bytes (default 4M; smoke 1M)\n"
    "  --seed S         RNG seed (default 1)\n";

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "realloc_bench", kUsage);
  const uint64_t nbuf = args.u64("buffers", 32, 16);
  const uint64_t steps = args.u64("steps", 300'000, 20'000);
  const uint64_t min_target = args.u64("min-target", 4096, 4096);
  const uint64_t max_target = args.u64("max-target", uint64_t{4} << 20, uint64_t{1} << 20);
  const uint64_t seed = args.u64("seed", 1, 1);
  args.finish();
  if (nbuf == 0 || min_target < 16 || min_target > max_target || max_target > (uint64_t{1} << 34)) {
    args.fail("bad", "parameters");
  }

  bench::Rng rng(seed);
  bench::Timer timer;
  uint64_t checksum = 0;
  uint64_t completed = 0;
  unsigned gen = 0;

  auto start = [&](Buf& b) {
    b.n = 8;
    b.target = rng.log_uniform(min_target, max_target);
    b.fillc = static_cast<unsigned char>(++gen | 1u);
    b.p = static_cast<unsigned char*>(bench::xmalloc(b.n));
    std::memset(b.p, b.fillc, b.n);
  };
  auto finish = [&](Buf& b) {
    if (b.p[0] != b.fillc || b.p[b.n / 2] != b.fillc || b.p[b.n - 1] != b.fillc) bench::die("realloc lost data");
    checksum = checksum * 31 + b.n + b.fillc;
    std::free(b.p);
    b.p = nullptr;
  };

  auto* bufs = static_cast<Buf*>(bench::xmalloc(nbuf * sizeof(Buf)));
  for (uint64_t i = 0; i < nbuf; i++) start(bufs[i]);

  for (uint64_t s = 0; s < steps; s++) {
    Buf& b = bufs[rng.below(nbuf)];
    size_t add;
    if (rng.below(2) == 0) {
      add = 16 + rng.below(241);  // append 16..256 bytes
    } else {
      add = b.n * (10 + rng.below(41)) / 100 + 16;  // grow by x1.1 .. x1.5
    }
    const size_t old_n = b.n;
    const size_t new_n = old_n + add < b.target ? old_n + add : b.target;
    b.p = static_cast<unsigned char*>(bench::xrealloc(b.p, new_n));
    if (b.p[0] != b.fillc || b.p[old_n - 1] != b.fillc) bench::die("realloc lost data");
    std::memset(b.p + old_n, b.fillc, new_n - old_n);
    b.n = new_n;
    if (b.n >= b.target) {
      finish(b);
      start(b);
      completed++;
    }
  }
  for (uint64_t i = 0; i < nbuf; i++) finish(bufs[i]);
  std::free(bufs);

  char extra[64];
  std::snprintf(extra, sizeof extra, "completed=%llu", static_cast<unsigned long long>(completed));
  bench::report("realloc", steps, timer.elapsed_ms(), checksum, extra);
  return 0;
}
