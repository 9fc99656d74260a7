/* secure_prog: linked with the static allocator; allocates, and prints
 * whether the kernel started it in secure mode (AT_SECURE: set-user-ID) and
 * the values of the options the tests set from the environment, and the size
 * of arena 1 (reserve_os_memory makes it at start-up). */
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

int main(void) {
  char* volatile p = malloc(100); /* volatile: the pair is not optimised away */
  strcpy(p, "x");
  free(p);
  size_t arena1 = 0;
  (void)mi_arena_area(1, &arena1);
  printf("secure=%lu allocator=%d\n", getauxval(AT_SECURE), mi_version());
  printf("verbose=%ld show_stats=%ld show_errors=%ld reserve_os_memory=%zu arena1=%zu\n",
         mi_option_get(mi_option_verbose), mi_option_get(mi_option_show_stats), mi_option_get(mi_option_show_errors),
         mi_option_get_size(mi_option_reserve_os_memory), arena1);
  return 0;
}
