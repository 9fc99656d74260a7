/* secure_prog: linked with the static allocator; allocates, and prints
 * whether the kernel started it in secure mode (AT_SECURE: set-user-ID). */
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

int main(void) {
  char* volatile p = malloc(100); /* volatile: the pair is not optimised away */
  strcpy(p, "x");
  free(p);
  printf("secure=%lu allocator=%d\n", getauxval(AT_SECURE), mi_version());
  return 0;
}
