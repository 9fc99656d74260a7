/* area_reader.h: reading a published statistics area the way a monitoring
 * tool does (mi-stat), through include/mimalloc-numa-stats.h only: plain C,
 * no library. Used by area_read.c (the api suite) and by
 * tests/unit/stats_publish_test.cpp (the sequence lock under a writer).
 *
 * area_copy copies the mapped area into *out under the sequence lock: seq
 * read (acquire) and even, every 8-byte word read (relaxed), seq read again
 * and unchanged; else it tries again (at most `tries` times). Returns 0, or
 * -1 (bad magic), -2 (a version it does not know), -3 (a size or offset
 * that does not fit), -4 (the writer never let go). */
#ifndef AREA_READER_H
#define AREA_READER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mimalloc-numa-stats.h"

static int area_copy(const void* mapped, size_t mapped_len, mi_stats_area_t* out, long tries) {
  const uint64_t* src = (const uint64_t*)mapped;
  uint64_t* dst = (uint64_t*)out;
  size_t words = sizeof(mi_stats_area_t) / 8;
  if (mapped_len < sizeof(mi_stats_area_t)) return -3;
  for (long t = 0; t < tries; t++) {
    const uint64_t s1 = __atomic_load_n(&((const mi_stats_area_t*)mapped)->seq, __ATOMIC_ACQUIRE);
    if (s1 & 1) continue;
    /* each word an acquire load, so that the second look at seq comes after
       them all (instead of an acquire fence, which ThreadSanitizer does not
       model: gcc refuses it there); a plain load on x86-64 either way */
    for (size_t i = 0; i < words; i++) dst[i] = __atomic_load_n(&src[i], __ATOMIC_ACQUIRE);
    const uint64_t s2 = __atomic_load_n(&((const mi_stats_area_t*)mapped)->seq, __ATOMIC_RELAXED);
    if (s1 != s2) continue;
    if (out->magic != MI_STATS_AREA_MAGIC) return -1;
    if (out->version != MI_STATS_AREA_VERSION) return -2;
    if (out->size > mapped_len || out->size < sizeof(mi_stats_area_t) ||
        out->nodes_offset != offsetof(mi_stats_area_t, nodes) || out->bins_offset != offsetof(mi_stats_area_t, bins) ||
        out->node_count > MI_STATS_AREA_NODES_MAX || out->bin_count > MI_STATS_AREA_BINS_MAX) {
      return -3;
    }
    return 0;
  }
  return -4;
}

#endif
