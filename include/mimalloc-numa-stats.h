/* mimalloc-numa-stats.h: the layout of a process's published statistics area.
 *
 * With the option `stats_publish` on, each process on the allocator keeps a
 * small file mapped in memory and refreshes it from its background thread
 * every `stats_publish_interval` milliseconds; `mi-stat` (and any monitoring
 * agent) reads it without stopping or attaching to the process. This header
 * is the contract between the two: fixed layout, plain C, little-endian
 * 64-bit integers, no pointers, nothing of the heap's contents.
 *
 * Where: MI_STATS_AREA_DIR_RUN (/run/mimalloc-numa) for processes of root
 * whose directory exists or can be made, else $XDG_RUNTIME_DIR/mimalloc-numa,
 * else /tmp/mimalloc-numa-UID. File name: "<pid>-<starttime>.stats", starttime
 * the 22nd field of /proc/<pid>/stat (clock ticks since boot), so a reused
 * pid is never misread: a reader compares it with the live process's. Mode
 * 0600, owned by the process's user; removed at exit. A file whose pid is
 * gone or whose starttime differs is stale (a killed process): readers skip
 * it and publishers remove it.
 *
 * Consistency: `seq` is a sequence lock. The publisher makes it odd, writes
 * every figure, then makes it even again (release order). A reader copies
 * the area, and accepts the copy when seq was even and unchanged before and
 * after the copy (acquire order); else it copies again.
 *
 * Versioning: readers check `magic` and `version` and use `size`, the
 * `*_offset`s and the counts, so that fields appended at the end of a
 * struct in a later version (the version number goes up) leave old readers
 * working. A version a reader does not know is reported, not guessed at.
 */
#ifndef MIMALLOC_NUMA_STATS_H
#define MIMALLOC_NUMA_STATS_H

#include <stdint.h>

#define MI_STATS_AREA_MAGIC UINT64_C(0x3154415453494d4d) /* "MMISTAT1" read as little-endian bytes */
#define MI_STATS_AREA_VERSION 1
#define MI_STATS_AREA_DIR_RUN "/run/mimalloc-numa"
#define MI_STATS_AREA_SUFFIX ".stats"
#define MI_STATS_AREA_PROGRAM_MAX 64
#define MI_STATS_AREA_NODES_MAX 64 /* NUMA nodes a process can report */
#define MI_STATS_AREA_BINS_MAX 80  /* size classes a process can report */

/* Per NUMA node, and the process's totals (all bytes unless said). */
typedef struct mi_stats_area_memory_s {
  int64_t reserved;     /* address space mapped for the node's arenas and segments */
  int64_t committed;    /* of it, committed */
  int64_t in_use;       /* bytes of the program's live blocks */
  int64_t purgeable;    /* committed, free, waiting for the delayed purge */
  int64_t huge_1g;      /* of reserved: backed by 1 GiB pages */
  int64_t large_2m;     /* of reserved: backed by 2 MiB pages */
  int64_t local_frees;  /* blocks freed by the thread that owns their page */
  int64_t remote_frees; /* blocks freed by another thread */
  int64_t fallbacks;    /* times the node could not give memory and another did */
  int64_t purged;       /* bytes given back to the OS in total */
} mi_stats_area_memory_t;

/* Per size class. */
typedef struct mi_stats_area_bin_s {
  int64_t block_size; /* bytes of one block (the largest of the class) */
  int64_t live_blocks;
  int64_t live_bytes;
  int64_t allocations; /* since the process started */
} mi_stats_area_bin_t;

typedef struct mi_stats_area_s {
  /* --- header: its layout never changes */
  uint64_t magic;   /* MI_STATS_AREA_MAGIC */
  uint32_t version; /* MI_STATS_AREA_VERSION */
  uint32_t size;    /* bytes of the whole area */
  uint64_t seq;     /* sequence lock: odd while being written */
  /* --- the process */
  int64_t pid;
  uint64_t start_ticks;                    /* /proc/<pid>/stat field 22 */
  int64_t start_unix_ms;                   /* the process's start (a fork child: its fork), ms since the epoch */
  int64_t updated_unix_ms;                 /* when the figures were taken */
  int64_t updates;                         /* times they were taken */
  int64_t interval_ms;                     /* stats_publish_interval */
  char program[MI_STATS_AREA_PROGRAM_MAX]; /* the program's name, NUL-terminated */
  /* --- process-wide */
  int64_t threads;
  int64_t segments;
  int64_t segments_abandoned;
  int64_t purges;   /* purge operations done */
  int64_t purge_ns; /* their total time */
  int64_t os_mmap_calls;
  int64_t os_commit_calls;
  int64_t os_purge_calls;
  int64_t page_faults_minor; /* /proc/self/stat */
  int64_t page_faults_major;
  int64_t rss;                /* /proc/self/statm, bytes */
  int64_t metadata_committed; /* the allocator's own metadata */
  mi_stats_area_memory_t totals;
  /* --- the arrays */
  uint32_t node_count;   /* entries of nodes[] in use */
  uint32_t bin_count;    /* entries of bins[] in use */
  uint32_t nodes_offset; /* byte offset of nodes[] from the area's start */
  uint32_t bins_offset;  /* byte offset of bins[] */
  mi_stats_area_memory_t nodes[MI_STATS_AREA_NODES_MAX];
  mi_stats_area_bin_t bins[MI_STATS_AREA_BINS_MAX];
} mi_stats_area_t;

#endif
