/* bench_rand.h: the random numbers of the purge workloads (stranded.c,
   thread_churn.c): a seeded splitmix64, so that a run is the same sequence
   of sizes and frees under every allocator compared, and log-uniform sizes
   (as many blocks of 16-31 bytes as of 512-1023 ...). */
#pragma once

#include <stddef.h>
#include <stdint.h>

static inline uint64_t next_rand(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* A size of one of `logs` doublings from 2^first_log: 2^e plus a uniform part
   of 0 .. 2^e - 1, or 0 .. 2^e with `inclusive` (the top size 2^(e+1) too). */
static inline size_t log_uniform_size(uint64_t* s, unsigned first_log, unsigned logs, int inclusive) {
  unsigned e = first_log + (unsigned)(next_rand(s) % logs);
  size_t base = (size_t)1 << e;
  return base + (size_t)(next_rand(s) % (base + (inclusive ? 1 : 0)));
}
