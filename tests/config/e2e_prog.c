/* e2e_prog: run by e2e_test.py under LD_PRELOAD=libmimalloc-numa.so. Finds
 * the allocator's mi_option_* functions with dlsym (it is not linked to it),
 * allocates a little, prints "@@<index>=<value>" for every option, then sets
 * the options given as arguments "INDEX=VALUE" with mi_option_set, prints
 * "@@after-set" on stderr, and prints the option list again (mi_options_print)
 * and the values ("@@set <index>=<value>"). Exit 3: the allocator is not loaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef long (*get_fn)(int);
typedef void (*set_fn)(int, long);
typedef void (*print_fn)(void);

int main(int argc, char** argv) {
  get_fn get = (get_fn)dlsym(RTLD_DEFAULT, "mi_option_get");
  set_fn set = (set_fn)dlsym(RTLD_DEFAULT, "mi_option_set");
  print_fn print = (print_fn)dlsym(RTLD_DEFAULT, "mi_options_print");
  if (get == NULL || set == NULL || print == NULL) {
    fprintf(stderr, "e2e_prog: mimalloc-numa is not loaded (mi_option_get not found)\n");
    return 3;
  }
  for (int i = 0; i < 1000; i++) free(malloc((size_t)(i * 97 % 5000 + 1)));
  int count = 0;
  /* the number of options: mi_option_get of an unknown index is 0, so ask
   * the caller; default: print 64 and let the test take what it needs */
  const char* n = getenv("E2E_OPTION_COUNT");
  count = n != NULL ? atoi(n) : 64;
  for (int i = 0; i < count; i++) printf("@@%d=%ld\n", i, get(i));
  fflush(stdout);
  for (int a = 1; a < argc; a++) {
    int index;
    long value;
    if (sscanf(argv[a], "%d=%ld", &index, &value) == 2) set(index, value);
  }
  fprintf(stderr, "@@after-set\n");
  print();
  for (int a = 1; a < argc; a++) {
    int index;
    long value;
    if (sscanf(argv[a], "%d=%ld", &index, &value) == 2) printf("@@set %d=%ld\n", index, get(index));
  }
  return 0;
}
