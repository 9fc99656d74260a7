/* A C program built against an installed (or subproject) mimalloc-numa:
   tests/packaging builds it with pkg-config from `meson install` and the
   Debian package, and in the subproject consumer (meson.build here).
   Prints one line ending in OK, or what failed (exit 1). */
#include <mimalloc-numa.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(const char* what) {
  fprintf(stderr, "consumer.c: FAILED: %s\n", what);
  return 1;
}

int main(void) {
  if (mi_numa_version() != MI_NUMA_VERSION)
    return failed("mi_numa_version() differs from the header's MI_NUMA_VERSION");
  if (mi_version() != MI_MALLOC_VERSION) return failed("mi_version() differs from the header's MI_MALLOC_VERSION");
  char* p = (char*)mi_malloc(100);
  if (p == NULL || !mi_is_in_heap_region(p)) return failed("mi_malloc");
  memset(p, 0xab, 100);
  mi_free(p);
  /* Linked with -lmimalloc-numa, malloc itself is the library's. */
  char* q = (char*)malloc(1000);
  if (q == NULL || !mi_is_in_heap_region(q)) return failed("malloc is not mimalloc-numa's");
  q = (char*)realloc(q, 100000);
  if (q == NULL || !mi_is_in_heap_region(q)) return failed("realloc is not mimalloc-numa's");
  free(q);
  if (mi_numa_node_count() < 1) return failed("mi_numa_node_count() < 1");
  printf("consumer.c: mimalloc-numa %d (mimalloc API %d), %d NUMA node(s): OK\n", mi_numa_version(), mi_version(),
         mi_numa_node_count());
  return 0;
}
