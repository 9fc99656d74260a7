/* publish_secure.c: a program with the allocator linked in statically that
 * turns stats_publish on itself (mi_option_set, before the allocator starts:
 * a set-user-ID program ignores MIMALLOC_*), allocates, waits for a few
 * refreshes and says whether a statistics file of its pid exists in any of
 * the three directories. publish_test.py runs it from a set-user-ID copy:
 * there it must not publish. Prints "secure=0|1 published=0|1". */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <mimalloc.h>

/* before the allocator's own constructor (priority 101) */
#pragma GCC diagnostic ignored "-Wprio-ctor-dtor"
__attribute__((constructor(100))) static void turn_on(void) {
  mi_option_set(mi_option_stats_publish, 1);
  mi_option_set(mi_option_stats_publish_interval, 20);
}

static int found_in(const char* dir, long pid) {
  char prefix[32];
  snprintf(prefix, sizeof(prefix), "%ld-", pid);
  DIR* d = opendir(dir);
  if (d == NULL) return 0;
  int found = 0;
  for (struct dirent* e; (e = readdir(d)) != NULL;) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
  }
  closedir(d);
  return found;
}

int main(void) {
  void* p[256];
  for (int i = 0; i < 256; i++) p[i] = malloc(100 + (size_t)i);
  usleep(400 * 1000);
  const long pid = (long)getpid();
  char tmp[64], xdg[512];
  snprintf(tmp, sizeof(tmp), "/tmp/mimalloc-numa-%ld", (long)geteuid());
  const char* x = getenv("XDG_RUNTIME_DIR");
  snprintf(xdg, sizeof(xdg), "%s/mimalloc-numa", x != NULL ? x : "/nonexistent");
  const int published = found_in("/run/mimalloc-numa", pid) || found_in(tmp, pid) || found_in(xdg, pid);
  printf("secure=%d published=%d\n", getauxval(AT_SECURE) != 0, published);
  for (int i = 0; i < 256; i++) free(p[i]);
  return 0;
}
