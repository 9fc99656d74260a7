// arena_internal.h: what the files of the arena layer share (arena.cpp: the
// arenas, claims, frees and purges; arena_fork.cpp: the copy of huge-page
// arenas across fork; arena_reserve.cpp: the start-up reservation and the
// mi_reserve_* functions; arena_check.cpp: the invariant walker) and the unit
// tests that look inside an arena. Nothing above the arena layer includes
// it: they go through arena.h.
//
// Owns: the layout of an arena's header (struct Arena) and the table of
// arenas (arena.cpp). An arena, once published in the table (arena_add),
// stays at its index until arenas_unsafe_destroy_all; its bitmaps follow the
// struct in the same mapping.
//
// An arena is a range of address space split into ARENA_BLOCK_SIZE blocks,
// described by four bitmaps of one bit per block (arena.cpp says how they
// change):
//   inuse      the block belongs to a segment (or is being purged right now)
//   dirty      the block was handed out before, so it is not known to be zero
//   committed  the block is readable and writable (absent for pinned arenas)
//   purge      the block is free and waits for its purge delay
// Invariants (arena_is_valid): the bits past the last block are set in
// `inuse` and clear in the others; a pinned arena has neither `committed`
// nor `purge`; a block waiting for its purge is dirty (it was handed out)
// and belongs to no live segment; the blocks of a live segment are in use
// and dirty, and committed if the segment's memory came committed (not
// purged under it); numa_node is -1 or a node of the topology, and the
// account is that node's.
// Thread-safety: the bitmaps are atomics changed lock-free (arena.h); the
// other fields are set by arena_add before the arena is published. The
// table is read lock-free (arena_at, arenas_added); adding an arena on
// demand and the fork handlers take reserve_lock.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../common/check.h"
#include "../common/types.h"
#include "arena.h"
#include "bitmap.h"

namespace mi {

struct Arena {
  int id;            // public id (mi_arena_id_t) = index + 1
  MemId memid;       // where the arena's memory came from
  MemId meta_memid;  // where this struct came from (OS)
  size_t meta_size;
  uint8_t* start;
  size_t block_count;
  size_t field_count;
  int numa_node;                        // -1: not bound
  int account;                          // its memory's account (account_of_node(numa_node))
  bool exclusive;                       // only heaps that ask for this arena by id use it
  bool is_pinned;                       // huge/large OS pages: never purged or decommitted
  bool accessible;                      // mapped read-write and never protected (release builds): commit = accounting
  std::atomic<int64_t> purge_expire;    // 0: nothing scheduled
  std::atomic<int64_t> purge_deadline;  // the expiry is never extended past this
  std::atomic<size_t> inuse_peak;       // the most blocks in use at once (arena_purge_excess)
  BitmapField* blocks_dirty;
  BitmapField* blocks_committed;  // null: always committed (pinned)
  BitmapField* blocks_purge;      // null: never purged (pinned)
  BitmapField blocks_inuse[1];    // field_count entries, then the other bitmaps
};

// The arena at table index `index` (its id - 1), or null.
Arena* arena_at(size_t index) noexcept;

// The arenas added so far: indexes [0, arenas_added()) of the table (a slot
// may still be null while arena_add publishes it). The count may pass
// ARENA_MAX_COUNT for a moment (arena_add takes its index first and gives it
// back when the table is full).
size_t arenas_added() noexcept;

inline uint8_t* arena_block_start(const Arena* a, size_t idx) { return a->start + idx * ARENA_BLOCK_SIZE; }

// Registers a new arena over [start, start+size). Returns its id or 0.
// `accessible`: the memory is mapped read-write, so committing a block is
// only accounting; such arenas count a block as committed from its first
// claim until it is purged, so "committed" means memory actually handed out.
int arena_add(void* start, size_t size, bool is_committed, bool is_pinned, bool is_zero, int numa_node, bool exclusive,
              const MemId& memid, bool accessible);

// Taken to add an arena on demand (two threads do not both reserve) and held
// across fork (arena_fork.cpp).
extern MI_HIDDEN pthread_mutex_t reserve_lock;

// The invariants above that hold at every moment, whatever other threads
// claim, free or purge meanwhile; with `quiescent` (the caller knows that no
// other thread allocates or frees now, e.g. a test between two rounds) also
// the one a claim followed by a free may seem to break to a reader of two
// bitmaps (a block waiting for its purge is dirty). The background thread
// may purge meanwhile: nothing checked here depends on that.
bool arena_is_valid(const Arena* a, bool quiescent, Invalid* why = nullptr) noexcept;

}  // namespace mi
