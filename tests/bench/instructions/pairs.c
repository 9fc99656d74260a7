/* pairs.c: malloc+free pairs in the patterns the instruction counts are kept
 * for (tests/bench/instruction_count.py). Plain C, only malloc and free:
 * run under any allocator with LD_PRELOAD.
 *
 *   pairs immediate SIZE N   p = malloc(SIZE); *p = 1; free(p);  N times
 *                            (the page empties on every free)
 *   pairs ring SIZE N        1000 live blocks; each step frees the oldest
 *                            and allocates a new one of SIZE
 *   pairs cycle N            the same ring, sizes 16, 32, ..., 128 in turn
 *   pairs random SIZE N      1000 live blocks; each step frees one of them
 *                            picked at random (a fixed sequence) and
 *                            allocates a new one of SIZE in its place: a
 *                            cache's evictions (RocksDB's block cache)
 *   pairs remote SIZE N      another thread allocates (batches of 100 blocks
 *                            of SIZE) and this one frees every block: each
 *                            free is a remote free. The threads take turns
 *                            through pipes (one runs while the other waits
 *                            in read), so callgrind's count is the same in
 *                            every run
 *   pairs remote-node SIZE N the same, the allocating thread pinned to CPU 1
 *                            and this one to CPU 0: on a topology where
 *                            they are nodes of their own (instruction_count.py
 *                            --nodes 2), every free a free into another
 *                            node's page, which no cross cache keeps
 *
 * The blocks are written so that no compiler removes a pair; the volatile
 * pointer keeps the calls real (malloc/free elision is allowed in C). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RING 1000
#define BATCH 100

static void* volatile sink;

/* pairs remote: the allocating thread's side */
static struct {
  int go[2], done[2]; /* pipes: main -> owner (a batch wanted, or 0: stop), owner -> main */
  size_t size;
  char* batch[BATCH];
} remote;

/* Pins the calling thread to `cpu` (remote-node); 0 on success. */
static int pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set);
}

static void* remote_owner(void* arg) {
  if (arg != NULL && pin_self(1) != 0) {
    perror("pairs: sched_setaffinity(CPU 1)");
    exit(1);
  }
  char c;
  while (read(remote.go[0], &c, 1) == 1 && c != 0) {
    for (int i = 0; i < BATCH; i++) {
      remote.batch[i] = malloc(remote.size);
      remote.batch[i][0] = 1;
    }
    if (write(remote.done[1], &c, 1) != 1) break;
  }
  return NULL;
}

static int run_remote(size_t size, size_t n, int other_node) {
  remote.size = size;
  if (pipe(remote.go) != 0 || pipe(remote.done) != 0) return 1;
  if (other_node && pin_self(0) != 0) {
    perror("pairs: sched_setaffinity(CPU 0)");
    return 1;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, remote_owner, other_node ? &remote : NULL) != 0) return 1;
  char c = 1;
  for (size_t i = 0; i < n; i += BATCH) {
    if (write(remote.go[1], &c, 1) != 1 || read(remote.done[0], &c, 1) != 1) return 1;
    for (int k = 0; k < BATCH; k++) {
      sink = remote.batch[k];
      free(sink);
    }
  }
  c = 0;
  if (write(remote.go[1], &c, 1) != 1) return 1;
  pthread_join(t, NULL);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: pairs immediate|ring|random|remote|remote-node SIZE N | pairs cycle N\n");
    return 2;
  }
  const char* pattern = argv[1];
  const int cycle = strcmp(pattern, "cycle") == 0;
  const int random = strcmp(pattern, "random") == 0;
  size_t size = cycle ? 0 : (size_t)strtoull(argv[2], NULL, 10);
  size_t n = (size_t)strtoull(argv[cycle ? 2 : 3], NULL, 10);
  if (strcmp(pattern, "immediate") == 0) {
    for (size_t i = 0; i < n; i++) {
      char* p = malloc(size);
      *p = 1;
      sink = p;
      free(sink);
    }
    return 0;
  }
  if (strcmp(pattern, "remote") == 0) return run_remote(size, n, 0);
  if (strcmp(pattern, "remote-node") == 0) return run_remote(size, n, 1);
  if (!cycle && !random && strcmp(pattern, "ring") != 0) {
    fprintf(stderr, "pairs: unknown pattern '%s'\n", pattern);
    return 2;
  }
  static char* ring[RING];
  for (size_t k = 0; k < RING; k++) ring[k] = malloc(cycle ? 16 + (k % 8) * 16 : size);
  size_t k = 0;
  unsigned long long state = 88172645463325252ull; /* xorshift64: the same sequence everywhere */
  for (size_t i = 0; i < n; i++) {
    if (random) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      k = (size_t)(state % RING);
    }
    sink = ring[k];
    free(sink);
    char* p = malloc(cycle ? 16 + (i % 8) * 16 : size);
    *p = 1;
    ring[k] = p;
    if (!random && ++k == RING) k = 0;
  }
  for (k = 0; k < RING; k++) free(ring[k]);
  return 0;
}
