/* thread_churn.c: the "thread churn" shape of issue 12, for measuring the
   allocator's kernel time when threads come and go.

   `threads` threads at a time (default 2), each short-lived: it first frees
   the blocks its predecessor in the same slot handed over (blocks of an
   exited thread: frees into abandoned memory), then allocates `blocks`
   blocks of mixed small sizes (16 B - 1 KiB, log-uniform) and writes them,
   frees half of them in random order, hands the other half to its successor
   and exits. Repeated `rounds` times. Prints one line with wall, user and
   system time, peak RSS and page faults of the whole process.

   Build: cc -O2 -pthread -o thread_churn thread_churn.c
   Run:   LD_PRELOAD=build/lib/libmimalloc-numa.so ./thread_churn [rounds=3000] [blocks=4000] [threads=2] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_rand.h"

typedef struct {
  void** handed; /* the predecessor's survivors (nhanded of them) */
  size_t nhanded;
  uint64_t seed;
} Slot;

static size_t g_blocks = 4000;

/* 16 .. 512 base: up to 1 KiB */
static size_t small_size(uint64_t* s) { return log_uniform_size(s, 4, 6, 0); }

static void* worker(void* arg) {
  Slot* slot = (Slot*)arg;
  for (size_t i = 0; i < slot->nhanded; i++) {
    if (*(volatile unsigned char*)slot->handed[i] != (unsigned char)((uintptr_t)slot->handed[i] >> 4)) abort();
    free(slot->handed[i]);
  }
  free(slot->handed);
  void** mine = (void**)malloc(g_blocks * sizeof(void*));
  if (mine == NULL) abort();
  for (size_t i = 0; i < g_blocks; i++) {
    size_t n = small_size(&slot->seed);
    unsigned char* p = (unsigned char*)malloc(n);
    if (p == NULL) abort();
    memset(p, (int)(unsigned char)((uintptr_t)p >> 4), n);
    mine[i] = p;
  }
  /* free a random half; the rest goes to the successor */
  size_t live = g_blocks;
  for (size_t k = 0; k < g_blocks / 2; k++) {
    size_t j = (size_t)(next_rand(&slot->seed) % live);
    free(mine[j]);
    mine[j] = mine[--live];
  }
  slot->handed = mine;
  slot->nhanded = live;
  return NULL;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

int main(int argc, char** argv) {
  size_t rounds = (argc > 1) ? strtoul(argv[1], NULL, 10) : 3000;
  g_blocks = (argc > 2) ? strtoul(argv[2], NULL, 10) : 4000;
  size_t nthreads = (argc > 3) ? strtoul(argv[3], NULL, 10) : 2;
  if (nthreads == 0 || nthreads > 64 || g_blocks < 2) return 2;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  Slot slots[64];
  memset(slots, 0, sizeof slots);
  for (size_t t = 0; t < nthreads; t++) slots[t].seed = 0x5eed + t;
  pthread_t th[64];
  for (size_t r = 0; r < rounds; r++) {
    for (size_t t = 0; t < nthreads; t++) {
      if (pthread_create(&th[t], NULL, worker, &slots[t]) != 0) abort();
    }
    for (size_t t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
  }
  for (size_t t = 0; t < nthreads; t++) {
    for (size_t i = 0; i < slots[t].nhanded; i++) free(slots[t].handed[i]);
    free(slots[t].handed);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("thread_churn rounds=%zu blocks=%zu threads=%zu wall=%.3f user=%.3f sys=%.3f maxrss_kb=%ld minflt=%ld\n",
         rounds, g_blocks, nthreads, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
         tv_s(ru.ru_utime), tv_s(ru.ru_stime), ru.ru_maxrss, ru.ru_minflt);
  return 0;
}
