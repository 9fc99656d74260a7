/* failures_prog.c: requests that can never be met, and a real shortage, made
 * through the C library's own names (malloc.h, stdlib.h), as any program
 * does; run under LD_PRELOAD by failures_test.py, and without it (glibc).
 *
 *   failures_prog impossible   each impossible request: "<call> <NULL|block> <errno>"
 *   failures_prog oom          under an address-space limit (RLIMIT_AS) of what
 *                              the process has plus 256 MiB: malloc(1 GiB) twice,
 *                              then a small malloc works ("<call> ..." lines)
 * Built as plain C against the libc headers: not mimalloc.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* hidden from the compiler, which would otherwise fold or warn about them */
static size_t opaque(size_t v) {
  __asm__ volatile("" : "+r"(v));
  return v;
}

static void* opaque_ptr(void* v) {
  __asm__ volatile("" : "+r"(v));
  return v;
}

static void report(const char* call, void* p, int err) {
  printf("%s %s %d\n", call, p != NULL ? "block" : "NULL", p != NULL ? 0 : err);
  free(p);
}

#define TRY(call, expr)      \
  do {                       \
    errno = 0;               \
    void* p_ = (expr);       \
    report(call, p_, errno); \
  } while (0)

static int impossible(void) {
  void* keep = malloc(100);
  memset(keep, 0x5A, 100);
  TRY("malloc(SIZE_MAX)", malloc(opaque(SIZE_MAX)));
  TRY("malloc(SIZE_MAX/2)", malloc(opaque(SIZE_MAX / 2)));
  TRY("malloc(2^62)", malloc(opaque((size_t)1 << 62)));
  TRY("calloc(SIZE_MAX/2,3)", calloc(opaque(SIZE_MAX / 2), 3));
  TRY("calloc(2^32,2^32)", calloc(opaque((size_t)1 << 32), opaque((size_t)1 << 32)));
  TRY("realloc(p,SIZE_MAX)", realloc(opaque_ptr(keep), opaque(SIZE_MAX)));
  TRY("reallocarray(p,SIZE_MAX,2)", reallocarray(opaque_ptr(keep), opaque(SIZE_MAX), 2));
  TRY("aligned_alloc(64,SIZE_MAX)", aligned_alloc(64, opaque(SIZE_MAX)));
  TRY("memalign(4096,SIZE_MAX-100)", memalign(4096, opaque(SIZE_MAX - 100)));
  TRY("valloc(SIZE_MAX)", valloc(opaque(SIZE_MAX)));
  TRY("pvalloc(SIZE_MAX)", pvalloc(opaque(SIZE_MAX)));
  void* q = (void*)1;
  errno = 0;
  int rc = posix_memalign(&q, 64, opaque(SIZE_MAX));
  printf("posix_memalign(64,SIZE_MAX) %s %d\n", q == (void*)1 ? "unchanged" : "changed", rc);
  /* the block survived every failed call */
  keep = opaque_ptr(keep);
  for (int i = 0; i < 100; i++) {
    if (((unsigned char*)keep)[i] != 0x5A) {
      printf("the block was changed at %d\n", i);
      return 1;
    }
  }
  free(keep);
  return 0;
}

/* Pages of address space this process has now. */
static size_t address_space(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f == NULL || fscanf(f, "%lu", &pages) != 1) {
    fprintf(stderr, "failures_prog: cannot read /proc/self/statm\n");
    exit(2);
  }
  fclose(f);
  return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static int oom(void) {
  printf("start\n"); /* stdout's buffer, before the limit */
  fflush(stdout);
  struct rlimit lim;
  lim.rlim_cur = lim.rlim_max = address_space() + ((size_t)256 << 20);
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    perror("setrlimit");
    return 2;
  }
  TRY("malloc(1GiB)", malloc(opaque((size_t)1 << 30)));
  TRY("malloc(1GiB)", malloc(opaque((size_t)1 << 30)));
  TRY("malloc(100)", malloc(opaque(100)));
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 2 && strcmp(argv[1], "impossible") == 0) return impossible();
  if (argc == 2 && strcmp(argv[1], "oom") == 0) return oom();
  fprintf(stderr, "usage: failures_prog impossible|oom\n");
  return 2;
}
