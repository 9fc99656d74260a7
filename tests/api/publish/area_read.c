/* area_read.c FILE: prints a published statistics area as "name=value"
 * lines, read as a monitoring tool reads it (area_reader.h: the public
 * header only, compiled as C99, no library linked). Exit 0, or 1 with the
 * reason on stderr. Used by publish_test.py. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "area_reader.h"

static void mem(const char* prefix, const mi_stats_area_memory_t* m) {
  printf(
      "%sreserved=%lld\n%scommitted=%lld\n%sin_use=%lld\n%spurgeable=%lld\n%shuge_1g=%lld\n%slarge_2m=%lld\n"
      "%slocal_frees=%lld\n%sremote_frees=%lld\n%sfallbacks=%lld\n%spurged=%lld\n",
      prefix, (long long)m->reserved, prefix, (long long)m->committed, prefix, (long long)m->in_use, prefix,
      (long long)m->purgeable, prefix, (long long)m->huge_1g, prefix, (long long)m->large_2m, prefix,
      (long long)m->local_frees, prefix, (long long)m->remote_frees, prefix, (long long)m->fallbacks, prefix,
      (long long)m->purged);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: area_read FILE\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    perror(argv[1]);
    return 1;
  }
  void* p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  static mi_stats_area_t a;
  int r = area_copy(p, (size_t)st.st_size, &a, 1000000);
  if (r != 0) {
    fprintf(stderr, "area_read: %s: not a readable area (%d)\n", argv[1], r);
    return 1;
  }
  printf(
      "version=%u\nsize=%u\nseq=%llu\npid=%lld\nstart_ticks=%llu\nstart_unix_ms=%lld\nupdated_unix_ms=%lld\n"
      "updates=%lld\ninterval_ms=%lld\nprogram=%s\nthreads=%lld\nsegments=%lld\nsegments_abandoned=%lld\n"
      "purges=%lld\npurge_ns=%lld\nos_mmap_calls=%lld\nos_commit_calls=%lld\nos_purge_calls=%lld\n"
      "page_faults_minor=%lld\npage_faults_major=%lld\nrss=%lld\nmetadata_committed=%lld\n",
      a.version, a.size, (unsigned long long)a.seq, (long long)a.pid, (unsigned long long)a.start_ticks,
      (long long)a.start_unix_ms, (long long)a.updated_unix_ms, (long long)a.updates, (long long)a.interval_ms,
      a.program, (long long)a.threads, (long long)a.segments, (long long)a.segments_abandoned, (long long)a.purges,
      (long long)a.purge_ns, (long long)a.os_mmap_calls, (long long)a.os_commit_calls, (long long)a.os_purge_calls,
      (long long)a.page_faults_minor, (long long)a.page_faults_major, (long long)a.rss,
      (long long)a.metadata_committed);
  mem("totals.", &a.totals);
  printf("node_count=%u\nbin_count=%u\n", a.node_count, a.bin_count);
  for (uint32_t n = 0; n < a.node_count; n++) {
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "nodes.%u.", n);
    mem(prefix, &a.nodes[n]);
  }
  for (uint32_t b = 0; b < a.bin_count; b++) {
    const mi_stats_area_bin_t* x = &a.bins[b];
    printf("bins.%u.block_size=%lld\nbins.%u.live_blocks=%lld\nbins.%u.live_bytes=%lld\nbins.%u.allocations=%lld\n", b,
           (long long)x->block_size, b, (long long)x->live_blocks, b, (long long)x->live_bytes, b,
           (long long)x->allocations);
  }
  return 0;
}
