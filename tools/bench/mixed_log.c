/* mixed_log.c: the "mixed sizes 8 B - 512 KiB" shape of issue 12.
 *
 * One thread keeps --live blocks (default 10000) whose sizes are
 * log-uniform in [--min, --max] (default 8 .. 524288 bytes: every power of
 * two as likely as the next, uniform inside it); each step frees a random
 * live block and allocates a new one in its place, --steps times (default
 * 2000000). Every block is written once per 4 KiB page and at both ends
 * when it is made and read back when it is freed, as a program that uses its
 * memory would, so re-faulting purged memory shows in the time.
 *
 * Plain C and libc only, so that any allocator can be measured by
 * LD_PRELOAD (or by linking) without our build:
 *
 *   cc -O2 -o mixed_log tools/bench/mixed_log.c
 *   /usr/bin/time -f '%U %S %M' ./mixed_log                     # glibc
 *   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ./mixed_log
 *   LD_PRELOAD=build/lib/libmimalloc-numa.so ./mixed_log
 *
 * Options: --live N, --steps N, --min BYTES, --max BYTES, --seed S, --quiet.
 * Prints one line: steps, wall seconds, user and system CPU seconds, peak
 * RSS (KiB) and a checksum of the data read back (equal under every
 * allocator for the same arguments: a wrong block content shows as a
 * different checksum). Exits 1 if a block reads back wrong, 2 on bad
 * arguments, 3 when malloc fails.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct slot {
  unsigned char* p;
  size_t n;
  uint64_t tag;
};

/* splitmix64: fast, good enough, and the same sequence everywhere */
static uint64_t rng_state;
static size_t touch_stride = 4096; /* --touch pages; --touch ends: none between the ends */
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
/* uniform in [0, n), n > 0 (Lemire's multiply, bias negligible for these n) */
static uint64_t rng_below(uint64_t n) { return (uint64_t)(((unsigned __int128)rng_next() * n) >> 64); }

/* log-uniform in [lo, hi]: a power-of-two range [2^e, 2^(e+1)) picked
 * uniformly among those that meet [lo, hi], then a size uniform inside it */
static size_t log_uniform(size_t lo, size_t hi) {
  const int lb = 63 - __builtin_clzll(lo);
  const int hb = 63 - __builtin_clzll(hi);
  for (;;) {
    const int e = lb + (int)rng_below((uint64_t)(hb - lb + 1));
    const uint64_t base = (uint64_t)1 << e;
    const uint64_t v = base + rng_below(base);
    if (v >= lo && v <= hi) return (size_t)v;
  }
}

static void fill(struct slot* s) {
  unsigned char* b = s->p;
  const unsigned char t = (unsigned char)s->tag;
  if (s->n >= 16) memcpy(b, &s->tag, sizeof s->tag);
  else b[0] = t;
  for (size_t off = touch_stride; off + 1 < s->n; off += touch_stride) b[off] = t;
  b[s->n - 1] = (unsigned char)(t ^ 0x5a);
}

/* reads back what fill wrote; returns a checksum, or sets *bad */
static uint64_t check(const struct slot* s, int* bad) {
  const unsigned char* b = s->p;
  const unsigned char t = (unsigned char)s->tag;
  uint64_t sum = 0;
  if (s->n >= 16) {
    uint64_t w;
    memcpy(&w, b, sizeof w);
    if (w != s->tag) *bad = 1;
    sum += w;
  } else if (s->n > 1) {
    if (b[0] != t) *bad = 1;
    sum += b[0];
  }
  for (size_t off = touch_stride; off + 1 < s->n; off += touch_stride) {
    if (b[off] != t) *bad = 1;
    sum += b[off];
  }
  if (b[s->n - 1] != (unsigned char)(t ^ 0x5a)) *bad = 1;
  return sum + b[s->n - 1];
}

static int parse_u64(const char* s, uint64_t* out) {
  char* end;
  if (s == NULL || *s == '\0' || *s == '-') return 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0') return 0;
  *out = v;
  return 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  uint64_t live = 10000, steps = 2000000, lo = 8, hi = 512 * 1024, seed = 1;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    uint64_t* target = NULL;
    if (strcmp(argv[i], "--live") == 0) target = &live;
    else if (strcmp(argv[i], "--steps") == 0) target = &steps;
    else if (strcmp(argv[i], "--min") == 0) target = &lo;
    else if (strcmp(argv[i], "--max") == 0) target = &hi;
    else if (strcmp(argv[i], "--seed") == 0) target = &seed;
    else if (strcmp(argv[i], "--quiet") == 0) {
      quiet = 1;
      continue;
    } else if (strcmp(argv[i], "--touch") == 0 && i + 1 < argc && strcmp(argv[i + 1], "pages") == 0) {
      touch_stride = 4096;
      i++;
      continue;
    } else if (strcmp(argv[i], "--touch") == 0 && i + 1 < argc && strcmp(argv[i + 1], "ends") == 0) {
      touch_stride = SIZE_MAX / 2;
      i++;
      continue;
    }
    if (target == NULL || i + 1 >= argc || !parse_u64(argv[i + 1], target)) {
      fprintf(stderr,
              "mixed_log: bad argument '%s'\nusage: mixed_log [--live N] [--steps N] [--min BYTES] [--max BYTES] "
              "[--seed S] [--touch pages|ends] [--quiet]\n",
              argv[i]);
      return 2;
    }
    i++;
  }
  if (live == 0 || lo == 0 || lo > hi || hi > ((uint64_t)1 << 40)) {
    fprintf(stderr, "mixed_log: need --live > 0 and 0 < --min <= --max <= 2^40\n");
    return 2;
  }
  rng_state = seed;
  const double t0 = now_s();
  struct slot* slots = calloc(live, sizeof *slots);
  if (slots == NULL) return 3;
  uint64_t tag = 0, sum = 0;
  int bad = 0;
  for (uint64_t i = 0; i < live; i++) {
    slots[i].n = log_uniform(lo, hi);
    slots[i].p = malloc(slots[i].n);
    if (slots[i].p == NULL) return 3;
    slots[i].tag = ++tag;
    fill(&slots[i]);
  }
  for (uint64_t k = 0; k < steps; k++) {
    struct slot* s = &slots[rng_below(live)];
    sum += check(s, &bad);
    free(s->p);
    s->n = log_uniform(lo, hi);
    s->p = malloc(s->n);
    if (s->p == NULL) return 3;
    s->tag = ++tag;
    fill(s);
  }
  for (uint64_t i = 0; i < live; i++) {
    sum += check(&slots[i], &bad);
    free(slots[i].p);
  }
  free(slots);
  const double wall = now_s() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (!quiet || bad) {
    printf("mixed_log steps=%llu live=%llu wall=%.3f user=%.3f sys=%.3f maxrss_kib=%ld checksum=%016llx%s\n",
           (unsigned long long)steps, (unsigned long long)live, wall,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, ru.ru_maxrss, (unsigned long long)sum,
           bad ? " BAD" : "");
  }
  return bad ? 1 : 0;
}
