/* huge_rss.c: the peak resident memory of huge blocks (issue 13, gap 3).
 *
 *   huge_rss THREADS BYTES_PER_THREAD BLOCK_SIZE
 *
 * Each thread allocates BLOCK_SIZE blocks until it holds BYTES_PER_THREAD,
 * writes one byte in every 4 KiB of each block (all of it resident, as a
 * buffer a server fills), waits until every thread holds its blocks, then
 * frees them. Prints the peak resident size (getrusage ru_maxrss, KiB) and
 * the bytes asked for. Standard C and POSIX threads only: it runs on any
 * allocator (LD_PRELOAD) so that the peaks can be compared.
 * Exits 1 when malloc fails, 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static size_t per_thread, block_size;
static pthread_barrier_t all_hold;
static int failed;

static void* worker(void* arg) {
  (void)arg;
  const size_t n = per_thread / block_size;
  unsigned char** blocks = calloc(n ? n : 1, sizeof *blocks);
  if (blocks == NULL) failed = 1;
  for (size_t i = 0; blocks != NULL && i < n; i++) {
    blocks[i] = malloc(block_size);
    if (blocks[i] == NULL) {
      failed = 1;
      break;
    }
    for (size_t off = 0; off < block_size; off += 4096) blocks[i][off] = (unsigned char)(i + off);
    blocks[i][block_size - 1] = 1;
  }
  pthread_barrier_wait(&all_hold);
  for (size_t i = 0; blocks != NULL && i < n; i++) free(blocks[i]);
  free(blocks);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: huge_rss THREADS BYTES_PER_THREAD BLOCK_SIZE\n");
    return 2;
  }
  const int threads = atoi(argv[1]);
  per_thread = strtoull(argv[2], NULL, 0);
  block_size = strtoull(argv[3], NULL, 0);
  if (threads < 1 || threads > 256 || block_size == 0 || per_thread < block_size) {
    fprintf(stderr, "huge_rss: bad arguments\n");
    return 2;
  }
  pthread_t tid[256];
  pthread_barrier_init(&all_hold, NULL, (unsigned)threads);
  for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, NULL);
  for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("maxrss_kib=%ld asked_kib=%zu\n", ru.ru_maxrss,
         (size_t)threads * (per_thread / block_size) * block_size / 1024);
  return failed ? 1 : 0;
}
