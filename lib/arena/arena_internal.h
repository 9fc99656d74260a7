// arena_internal.h: what the files of the arena layer share (arena.cpp: the
// arenas, claims, frees and purges; arena_fork.cpp: the copy of huge-page
// arenas across fork; arena_reserve.cpp: the start-up reservation and the
// mi_reserve_* functions). Not for other layers: they use arena.h.
//
// Owns: the layout of an arena's header (struct Arena) and the table of
// arenas (arena.cpp).
// Invariants: an arena, once published in the table (arena_add), stays at its
// index until arenas_unsafe_destroy_all; its bitmaps follow the struct in the
// same mapping.
// Thread-safe: the table is read lock-free (arena_at, arenas_added); adding
// an arena on demand and the fork handlers take reserve_lock.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

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
  BitmapField* blocks_dirty;
  BitmapField* blocks_committed;  // null: always committed (pinned)
  BitmapField* blocks_purge;      // null: never purged (pinned)
  BitmapField blocks_inuse[1];    // field_count entries, then the other bitmaps
};

// The arena at table index `index` (id index + 1), or null.
Arena* arena_at(size_t index);

// The arenas added so far: indexes [0, arenas_added()) of the table (a slot
// may still be null while arena_add publishes it). The count may pass
// ARENA_MAX_COUNT for a moment (arena_add takes its index first and gives it
// back when the table is full).
size_t arenas_added();

// Registers a new arena over [start, start+size). Returns its id or 0.
// `accessible`: the memory is mapped read-write, so committing a block is
// only accounting; such arenas count a block as committed from its first
// claim until it is purged, so "committed" means memory actually handed out.
int arena_add(void* start, size_t size, bool is_committed, bool is_pinned, bool is_zero, int numa_node, bool exclusive,
              const MemId& memid, bool accessible);

// Taken to add an arena on demand (two threads do not both reserve) and held
// across fork (arena_fork.cpp).
extern pthread_mutex_t reserve_lock;

}  // namespace mi
