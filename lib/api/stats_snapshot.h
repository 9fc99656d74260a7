// stats_snapshot.h: the memory figures of the process, read in one place.
//
// Owns: MemorySnapshot, every memory figure the statistics show, taken from
// the OS layer's counters per memory account (reserved, committed, purged),
// the arenas (arenas_visit) and a walk over the live segments and their
// pages (segments_visit: bytes in segments, live blocks, free blocks). The
// exit report and mi_stats_print, mi_numa_stats, mi_process_info and glibc's
// mallinfo, mallinfo2, malloc_stats and malloc_info all read it, so that
// they cannot disagree.
//
// Rows: one per NUMA node (the node's arenas; on a one-node machine also the
// arenas bound to no node: all memory is node 0's there), the arenas bound to
// no node (machines with several nodes), the segments mapped outside arenas
// (blocks too big for an arena, or when no arena could give memory), the
// allocator's own metadata, and the total. Every figure of the total is the
// sum of the rows, and in each row
//   blocks <= segments <= committed <= reserved.
// Measured while the program runs, a figure may be a moment older than
// another (the walk reads pages their owners keep changing); with the
// program quiet they are exact (tests/unit/stats_identity_test.cpp).
//
// No allocation; callable from any thread, not from a signal handler (the
// walk takes the segment list's lock).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/types.h"
#include "../topology/topology.h"

namespace mi {

struct MemoryRow {
  int64_t reserved;   // address space mapped
  int64_t committed;  // of it, committed
  int64_t
      committed_peak;   // the highest committed of each of the row's accounts, summed (since start or mi_stats_reset)
  int64_t segments;     // committed bytes of live segments (headers, pages, free pages not purged yet)
  int64_t blocks;       // bytes of the program's live blocks (block sizes), big blocks included
  int64_t block_count;  // live blocks
  int64_t free_blocks;  // free blocks in pages in use: a malloc of their size needs no new memory
  int64_t free_block_bytes;  // their bytes
  int64_t big_blocks;        // live blocks over 2 MiB (LARGE_OBJ_SIZE_MAX), each in a segment of its own
  int64_t big_block_bytes;   // their block sizes
  int64_t big_committed;     // committed bytes of their segments
  int64_t purge_pending;     // committed bytes free and waiting for their purge (malloc_trim gives them back)
  int64_t purged;            // given back to the OS in total (decommitted or reset)
  int64_t arenas;
  int64_t huge_pages;         // 1 GiB pages reserved in arenas
  int64_t huge_pages_in_use;  // of those, 1 GiB worth of blocks held by segments
  int64_t large_page_bytes;   // bytes of arenas on 2 MiB pages
  int64_t local_segments;     // nodes: segments for the node's threads served from the node
  int64_t remote_segments;    // ... from another node
  int64_t fallbacks;          // times the node could not give memory
};

constexpr int ROW_UNBOUND = NUMA_MAX_NODES;      // = ACCOUNT_UNBOUND
constexpr int ROW_OUTSIDE = NUMA_MAX_NODES + 1;  // = ACCOUNT_OS
constexpr int ROW_META = NUMA_MAX_NODES + 2;     // = ACCOUNT_META
constexpr int ROW_TOTAL = NUMA_MAX_NODES + 3;
constexpr int ROW_COUNT = NUMA_MAX_NODES + 4;
static_assert(ROW_UNBOUND == ACCOUNT_UNBOUND && ROW_OUTSIDE == ACCOUNT_OS && ROW_META == ACCOUNT_META,
              "the rows of the accounts that are not nodes");

struct MemorySnapshot {
  int node_count;
  MemoryRow rows[ROW_COUNT];
  int64_t reserved_peak;
  int64_t committed_peak;
  int64_t big_block_bytes_peak;
};

// The row an account's bytes are shown in, for a machine of node_count nodes.
int stats_row_of_account(int account, int node_count) noexcept;

// Takes the snapshot (walks every segment: proportional to the memory in use,
// about a millisecond per GiB).
void stats_snapshot(MemorySnapshot* snap) noexcept;

// Committed bytes now (the sum of the accounts), without the walk.
int64_t stats_committed_now() noexcept;

// Figures of one size class in one row (malloc_info): live blocks, free
// blocks in its pages, and the pages themselves.
struct BinFigures {
  int64_t blocks;
  int64_t bytes;
  int64_t free_blocks;
  int64_t free_bytes;
  int64_t pages;
};
// Fills bins[0 .. BIN_HUGE] for one row (ROW_TOTAL: all of them); bin
// BIN_HUGE holds the big blocks.
void stats_bins(int row, int node_count, BinFigures* bins) noexcept;

}  // namespace mi
