/* A program that knows nothing of mimalloc-numa (not linked with it), run by
   tests/packaging with the installed library in LD_PRELOAD: it finds the
   library's mi_is_in_heap_region through the dynamic linker and checks that
   malloc and calloc return its memory. Prints one line ending in OK; exit 1
   when the library is not loaded or malloc is not its. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  bool (*in_heap)(const void*) = (bool (*)(const void*))dlsym(RTLD_DEFAULT, "mi_is_in_heap_region");
  if (in_heap == NULL) {
    fprintf(stderr, "preload.c: FAILED: mi_is_in_heap_region not found: the library is not preloaded\n");
    return 1;
  }
  void* p = malloc(200);
  void* q = calloc(10, 1000);
  if (p == NULL || q == NULL || !in_heap(p) || !in_heap(q)) {
    fprintf(stderr, "preload.c: FAILED: malloc/calloc did not return mimalloc-numa's memory\n");
    return 1;
  }
  free(p);
  free(q);
  printf("preload.c: malloc and calloc are mimalloc-numa's: OK\n");
  return 0;
}
