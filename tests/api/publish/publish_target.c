/* publish_target.c MODE ...: a program on the allocator (linked, the public
 * headers only) for publish_test.py, run with MIMALLOC_STATS_PUBLISH=1.
 *   quiet N SIZE   allocates N blocks of SIZE bytes, prints "json=" and
 *                  mi_stats_get_json into a buffer of its own (no
 *                  allocation after it), "numa_blocks=" (mi_numa_stats of the
 *                  total), "ready", then waits for a line on stdin and exits
 *   sleep SECS     allocates a little, prints "ready", sleeps, exits
 *   fork SECS      prints "ready", forks: the child allocates and frees for
 *                  SECS seconds (its background thread restarts on the slow
 *                  path) and exits; the parent prints "child=PID", waits for
 *                  it, prints "child_status=N", waits for a line on stdin
 *   fork-quiet SECS  as fork, but the child makes no allocator call at all:
 *                  it sleeps SECS seconds and exits
 *   fork-late WAIT SECS  as fork, but the parent first waits WAIT seconds
 *                  (it publishes meanwhile), and exits after its child
 *   json           mi_stats_get_json(0, NULL) (mi_free'd), its buffer
 *                  form with a buffer too small (NULL, ERANGE), printed
 *   first-alloc SECS  makes no allocation at first (write(2), no stdio):
 *                  prints "threads_before=N" (/proc/self/status), then
 *                  mallocs once and prints "threads_after=N" once a second
 *                  thread runs or after SECS seconds */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mimalloc-numa.h>
#include <mimalloc.h>

static char json_buf[256 * 1024];
static void* blocks[1 << 20];

/* Threads: of /proc/self/status, read without allocating; -1 if unreadable. */
static int threads_now(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char* t = strstr(buf, "\nThreads:");
  return t == NULL ? -1 : atoi(t + 9);
}

static void say_number(const char* name, long v) {
  char line[64];
  int n = snprintf(line, sizeof(line), "%s=%ld\n", name, v);
  if (write(1, line, (size_t)n) != n) exit(7);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* read(2), not stdio: stdin's buffer would be allocated after the figures */
static void wait_line(void) {
  char c;
  while (read(0, &c, 1) == 1 && c != '\n') {
  }
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "first-alloc") == 0) { /* before stdio allocates its buffer */
    say_number("threads_before", threads_now());
    volatile char* p = malloc(100);
    p[0] = 1;
    const double end = now() + atof(argv[2]);
    while (threads_now() < 2 && now() < end) usleep(10000);
    say_number("threads_after", threads_now());
    free((void*)p);
    return 0;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("start\n"); /* stdout's buffer exists before the figures are taken */
  if (argc >= 4 && strcmp(argv[1], "quiet") == 0) {
    long n = atol(argv[2]);
    size_t size = (size_t)atol(argv[3]);
    if (n > (long)(sizeof(blocks) / sizeof(blocks[0]))) n = (long)(sizeof(blocks) / sizeof(blocks[0]));
    for (long i = 0; i < n; i++) {
      blocks[i] = malloc(size);
      memset(blocks[i], 1, size);
    }
    mi_numa_stats_t t;
    if (mi_numa_stats(MI_NUMA_STATS_TOTAL, &t) != 0) return 3;
    if (mi_stats_get_json(sizeof(json_buf), json_buf) != json_buf) return 4;
    printf("json=%s\nnuma_blocks=%zu\nnuma_committed=%zu\nready\n", json_buf, t.blocks, t.committed);
    wait_line();
    for (long i = 0; i < n; i++) free(blocks[i]);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "sleep") == 0) {
    for (int i = 0; i < 1000; i++) blocks[i] = malloc(64 + (size_t)i);
    printf("ready\n");
    usleep((useconds_t)(atof(argv[2]) * 1e6));
    return 0;
  }
  const int late = argc >= 4 && strcmp(argv[1], "fork-late") == 0;
  const int quiet = argc >= 3 && strcmp(argv[1], "fork-quiet") == 0;
  if ((argc >= 3 && strcmp(argv[1], "fork") == 0) || late || quiet) {
    for (int i = 0; i < 1000; i++) blocks[i] = malloc(64 + (size_t)i);
    printf("ready\n");
    fflush(stdout);
    if (late) usleep((useconds_t)(atof(argv[2]) * 1e6));
    const double secs = atof(argv[late ? 3 : 2]);
    pid_t pid = fork();
    if (pid < 0) return 5;
    if (pid == 0 && quiet) {
      usleep((useconds_t)(secs * 1e6));
      exit(0);
    }
    if (pid == 0) {
      const double end = now() + secs;
      while (now() < end) {
        for (int i = 0; i < 4096; i++) blocks[i] = malloc(16 + (size_t)(i % 2000));
        for (int i = 0; i < 4096; i++) free(blocks[i]);
      }
      exit(0); /* as a forked server process (a PostgreSQL backend) ends: its file goes */
    }
    printf("child=%ld\n", (long)pid);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child_status=%d\n", status);
    if (!late) wait_line();
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "json") == 0) {
    char* j = mi_stats_get_json(0, NULL);
    if (j == NULL) return 6;
    printf("alloc=%s\n", j);
    mi_free(j);
    char small[16];
    errno = 0;
    char* r = mi_stats_get_json(sizeof(small), small);
    printf("small_result=%s errno_erange=%d small_empty=%d\n", r == NULL ? "NULL" : "buf", errno == ERANGE,
           small[0] == 0);
    return 0;
  }
  fprintf(stderr, "publish_target: bad arguments\n");
  return 2;
}
