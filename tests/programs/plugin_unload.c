/* plugin_unload LIB: a program that loads the allocator for its mi_* API only
 * (dlopen, RTLD_LOCAL: not the process's malloc, as a plug-in would), takes
 * memory from it, and unloads it.
 *
 * For destroy_on_exit.sh: with MIMALLOC_DESTROY_ON_EXIT=1 the library's
 * memory must be gone once it is unloaded (no mapping holds the blocks), and
 * without it, left mapped. Prints "redirected=R before=B after=A", B and A
 * the number of the blocks still mapped (of 3: 100 B, 1 MiB, 8 MiB). */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int mapped(const void* p) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (f == NULL) return -1;
  char line[512];
  int found = 0;
  unsigned long addr = (unsigned long)p;
  while (fgets(line, sizeof(line), f) != NULL) {
    unsigned long a, b;
    if (sscanf(line, "%lx-%lx", &a, &b) == 2 && addr >= a && addr < b) found = 1;
  }
  fclose(f);
  return found;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    printf("dlopen: %s\n", dlerror());
    return 2;
  }
  void* (*mi_malloc)(size_t) = (void* (*)(size_t))dlsym(h, "mi_malloc");
  bool (*mi_is_redirected)(void) = (bool (*)(void))dlsym(h, "mi_is_redirected");
  if (mi_malloc == NULL || mi_is_redirected == NULL) return 2;
  const size_t sizes[3] = {100, 1 << 20, 8 << 20};
  char* blocks[3];
  int before = 0, after = 0;
  for (int i = 0; i < 3; i++) {
    blocks[i] = mi_malloc(sizes[i]);
    if (blocks[i] == NULL) return 3;
    memset(blocks[i], i + 1, sizes[i]);
    before += mapped(blocks[i]);
  }
  const int redirected = mi_is_redirected();
  if (dlclose(h) != 0) return 4;
  for (int i = 0; i < 3; i++) after += mapped(blocks[i]);
  printf("redirected=%d before=%d after=%d\n", redirected, before, after);
  return 0;
}
