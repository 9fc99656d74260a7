/* exit_with_threads N: prints 1000 lines with stdio and returns from main
 * while N threads still allocate and free.
 *
 * For destroy_on_exit.sh. With stdout a file or pipe the lines sit in stdio's
 * buffer (malloc'ed: the allocator's memory) until exit() flushes it, which
 * is after every library destructor, the allocator's too; and the threads
 * run until the process is gone. Both must be unharmed by what the
 * allocator's destructor does. Also keeps a 10 MiB block live (an arena
 * block of its own). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int started;

static void* churn(void* arg) {
  unsigned seed = (unsigned)(size_t)arg;
  atomic_fetch_add(&started, 1);
  for (;;) {
    void* v[64];
    for (int i = 0; i < 64; i++) {
      size_t n = 16 + rand_r(&seed) % 20000;
      v[i] = malloc(n);
      if (v[i] != NULL) memset(v[i], 0x5a, n);
    }
    for (int i = 0; i < 64; i++) free(v[i]);
  }
  return NULL;
}

int main(int argc, char** argv) {
  int threads = (argc > 1) ? atoi(argv[1]) : 0;
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, churn, (void*)(size_t)(i + 1)) != 0) return 2;
  }
  while (atomic_load(&started) < threads) {
  }
  char* big = malloc(10 << 20);
  if (big == NULL) return 3;
  memset(big, 'x', 10 << 20);
  for (int i = 0; i < 1000; i++) printf("line %d of the output, %c\n", i, big[i]);
  return 0; /* exit() flushes stdout after the destructors; the threads still run */
}
