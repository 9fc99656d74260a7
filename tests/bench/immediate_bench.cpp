// immediate_bench: allocate, touch, free at once, in a loop.
//
//   for (...) { p = malloc(n); *p = 1; free(p); }
//
// The only live block is freed right away, so its page empties on every free:
// an allocator that retires an empty page on the free path pays for that every
// iteration (issue 12).  The sizes double from --min to --max (16, 32, 64, 128
// by default; one size with --min = --max), each run --ops times in a row: the
// "immediate" pattern of tests/bench/instruction_count.py.
#include "bench_common.hpp"

namespace {

const char* const kUsage =
    "  --ops N          malloc/free pairs per size (default 25000000; smoke 200000)\n"
    "  --min N --max N  sizes, doubling from min to max (default 16..128)\n";

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "immediate_bench", kUsage);
  const uint64_t ops = args.u64("ops", 25'000'000, 200'000);
  const uint64_t min_size = args.u64("min", 16, 16);
  const uint64_t max_size = args.u64("max", 128, 128);
  args.finish();
  if (min_size == 0 || min_size > max_size || max_size > (uint64_t{1} << 30)) args.fail("bad", "sizes");

  bench::Timer timer;
  uint64_t total = 0, checksum = 0;
  for (uint64_t n = min_size; n <= max_size; n *= 2) {
    for (uint64_t i = 0; i < ops; i++) {
      auto* p = static_cast<unsigned char*>(bench::xmalloc(n));
      *p = 1;
      // The compiler may not drop the pair (GCC removes malloc+free of an
      // unused block): the block escapes into an empty asm.
      asm volatile("" : : "r"(p) : "memory");
      checksum += *p;
      std::free(p);
    }
    total += ops;
  }
  const double ms = timer.elapsed_ms();
  char extra[64];
  std::snprintf(extra, sizeof extra, "ns_per_pair=%.2f", ms * 1e6 / static_cast<double>(total));
  bench::report("immediate", total, ms, checksum, extra);
  return 0;
}
