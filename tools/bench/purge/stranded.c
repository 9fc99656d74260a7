/* stranded.c: issue 13's "memory stranded on a node whose threads exited"
   shape, for measuring what an exited thread's memory costs.

   Thread A (pinned to the CPUs of node `a` when the machine has that node)
   allocates `mib` MiB of blocks of 16 B - 64 KiB (log-uniform sizes), writes
   them, frees 90% of them in random order and exits. The main thread waits
   `wait_ms` and reads the resident size. Then thread B (pinned to node `b`)
   allocates the same amount again and keeps it. Prints the live bytes, the
   RSS after A exited, the RSS after B and the peak RSS (VmHWM) in MiB.
   On a one-node machine both threads run unpinned (the reclaim differs: B
   may take A's memory over, which a NUMA allocator must not do across nodes).

   Build: cc -O2 -pthread -o stranded stranded.c
   Run:   LD_PRELOAD=build/lib/libmimalloc-numa.so ./stranded [mib=256] [wait_ms=1000] [a=0] [b=1] */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_rand.h"

typedef struct {
  int node;
  size_t bytes;
  uint64_t seed;
  int free_most;
  void** blocks; /* out: the blocks kept */
  size_t nblocks;
  size_t live; /* bytes kept */
} Job;

/* log-uniform in [16, 65536] */
static size_t block_size(uint64_t* s) { return log_uniform_size(s, 4, 12, 1); }

static long status_kb(const char* key) {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long kb = -1;
  size_t n = strlen(key);
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, key, n) == 0) kb = strtol(line + n, NULL, 10);
  }
  fclose(f);
  return kb;
}

/* Pins the calling thread to the CPUs of `node`; 0 if it has no such node. */
static int pin_to_node(int node) {
  char path[96], list[512];
  snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", node);
  FILE* f = fopen(path, "r");
  if (f == NULL) return 0;
  if (fgets(list, sizeof list, f) == NULL) list[0] = 0;
  fclose(f);
  cpu_set_t set;
  CPU_ZERO(&set);
  for (char* p = list; *p != 0 && *p != '\n';) {
    long lo = strtol(p, &p, 10), hi = lo;
    if (*p == '-') hi = strtol(p + 1, &p, 10);
    for (long c = lo; c <= hi; c++) CPU_SET((int)c, &set);
    if (*p == ',') p++;
  }
  if (CPU_COUNT(&set) == 0) return 0;
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

static void* run(void* arg) {
  Job* job = (Job*)arg;
  int pinned = pin_to_node(job->node);
  /* the arrays of pointers and sizes: sized for the mean block (~8 KiB), grown if needed */
  size_t cap = job->bytes / 4096 + 16, n = 0, total = 0;
  void** v = (void**)malloc(cap * sizeof(void*));
  size_t* sz = (size_t*)malloc(cap * sizeof(size_t));
  if (v == NULL || sz == NULL) abort();
  while (total < job->bytes) {
    if (n == cap) {
      cap *= 2;
      v = (void**)realloc(v, cap * sizeof(void*));
      sz = (size_t*)realloc(sz, cap * sizeof(size_t));
      if (v == NULL || sz == NULL) abort();
    }
    size_t s = block_size(&job->seed);
    void* p = malloc(s);
    if (p == NULL) abort();
    memset(p, 0x5a, s);
    v[n] = p;
    sz[n++] = s;
    total += s;
  }
  size_t live = n;
  if (job->free_most) {
    for (size_t k = 0; k < n - n / 10; k++) {
      size_t j = (size_t)(next_rand(&job->seed) % live);
      free(v[j]);
      v[j] = v[--live];
      sz[j] = sz[live];
    }
  }
  job->live = 0;
  for (size_t i = 0; i < live; i++) job->live += sz[i];
  free(sz);
  job->blocks = v;
  job->nblocks = live;
  fprintf(stderr, "thread on node %d%s: %zu blocks, %.1f MiB, %zu kept (%.1f MiB)\n", job->node,
          pinned ? "" : " (not pinned: no such node)", n, total / 1048576.0, live, job->live / 1048576.0);
  return NULL;
}

int main(int argc, char** argv) {
  size_t mib = (argc > 1) ? strtoul(argv[1], NULL, 10) : 256;
  long wait_ms = (argc > 2) ? strtol(argv[2], NULL, 10) : 1000;
  int a = (argc > 3) ? atoi(argv[3]) : 0;
  int b = (argc > 4) ? atoi(argv[4]) : 1;
  Job ja = {a, mib << 20, 0xa11ce, 1, NULL, 0, 0};
  Job jb = {b, mib << 20, 0xb0b, 0, NULL, 0, 0};
  pthread_t t;
  pthread_create(&t, NULL, run, &ja);
  pthread_join(t, NULL);
  struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  long rss_after_a = status_kb("VmRSS:");
  pthread_create(&t, NULL, run, &jb);
  pthread_join(t, NULL);
  long rss_after_b = status_kb("VmRSS:");
  long peak = status_kb("VmHWM:");
  printf("stranded mib=%zu wait_ms=%ld live_a_mib=%.1f rss_after_a_mib=%.1f rss_after_b_mib=%.1f peak_mib=%.1f\n", mib,
         wait_ms, ja.live / 1048576.0, rss_after_a / 1024.0, rss_after_b / 1024.0, peak / 1024.0);
  for (size_t i = 0; i < ja.nblocks; i++) free(ja.blocks[i]);
  for (size_t i = 0; i < jb.nblocks; i++) free(jb.blocks[i]);
  free(ja.blocks);
  free(jb.blocks);
  return 0;
}
