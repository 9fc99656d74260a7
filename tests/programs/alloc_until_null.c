/* alloc_until_null SIZE: mallocs blocks of SIZE bytes until malloc returns
 * NULL, frees them, and prints "blocks N bytes B" (B = N * SIZE).
 *
 * For reservations.sh: how much a program gets under an address-space limit
 * (ulimit -v), on the allocator and on glibc's malloc. The blocks are linked
 * through their first word (so they are written), and all freed before the
 * line is printed (stdio needs memory for its buffer). Stops at 4 GiB in any
 * case, should it run without a limit. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const size_t size = strtoull(argv[1], NULL, 0);
  if (size < sizeof(void*)) return 2;
  void** head = NULL;
  size_t n = 0;
  while (n < (((size_t)4) << 30) / size) {
    void** p = malloc(size);
    if (p == NULL) break;
    *p = head;
    head = p;
    n++;
  }
  while (head != NULL) {
    void** next = *head;
    free(head);
    head = next;
  }
  printf("blocks %zu bytes %zu\n", n, n * size);
  return 0;
}
