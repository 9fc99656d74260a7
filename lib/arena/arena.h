// arena.h: arenas, large reserved ranges handed out in segment-size blocks.
//
// Owns: the list of arenas; claiming and releasing runs of blocks with the
// atomic bitmaps (in use, dirty, committed, purge); delayed purging of freed
// blocks; reserving new arenas as memory grows; huge-page and user-provided
// arenas (mi_reserve_*, mi_manage_os_memory*). Allocations that do not fit an
// arena go to the OS layer.
// Invariants: a block is in use by at most one segment; a block marked for
// purge is not in use; a purge claims the blocks (in-use bit) while it runs,
// so nobody can be handed memory that is being purged.
// Thread-safe: lock-free claims and frees; reserving a new arena takes a lock
// (rare; it avoids two threads reserving 1 GiB each at once).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/check.h"
#include "../common/types.h"

namespace mi {

constexpr size_t ARENA_BLOCK_SIZE = SEGMENT_SIZE;  // 4 MiB: one small/medium/large segment
constexpr size_t ARENA_MAX_COUNT = 256;
// Objects beyond this go straight to the OS (a run must fit the bitmap search well).
constexpr size_t ARENA_MAX_OBJ_SIZE = HUGE_OS_DIRECT_MIN;

// Allocates `size` bytes (a multiple of ARENA_BLOCK_SIZE) aligned to
// `alignment` (<= ARENA_BLOCK_SIZE when from an arena). Prefers arenas of
// `numa_node` (-1: any). req_arena_id != 0 restricts to that arena.
// commit: the memory must be committed on return (memid->initially_committed).
void* arena_alloc(size_t size, size_t alignment, bool commit, bool allow_large, int req_arena_id, int numa_node,
                  MemId* memid) noexcept;

// Commits whatever is not committed yet of memory from arena_alloc that the
// caller holds, and counts it so (memid->initially_committed becomes true);
// for arena memory only (other memory: false, nothing done). False when the
// commit failed (said why).
bool arena_commit_held(MemId* memid) noexcept;

// Returns memory from arena_alloc. committed_size: how much of it the caller
// committed (for memory that came uncommitted).
void arena_free(void* p, size_t size, size_t committed_size, const MemId& memid) noexcept;

// Purges arena memory whose purge delay has passed (or all of it when force).
void arenas_try_purge(bool force) noexcept;
// Purges now the free blocks waiting for their purge in the arenas bound to
// a node other than `node` (none for node < 0, nor when purging is off):
// memory a thread of `node` cannot use, released before the process grows
// on `node` (heap/node_release.cpp says when).
void arenas_purge_off_node(int node) noexcept;
// Milliseconds until the earliest scheduled arena purge is due (-1: none).
int64_t arenas_next_purge_in_ms() noexcept;

// Is the memory id usable by a heap that asks for `req_arena_id`?
bool arena_memid_is_suitable(const MemId& memid, int req_arena_id) noexcept;
bool arena_id_is_valid(int arena_id) noexcept;
// The public id of the memory's arena (0 for OS memory) and, if that arena is
// exclusive, its id again in *exclusive (else 0).
void arena_memid_ids(const MemId& memid, int* arena_id, int* exclusive) noexcept;
bool arena_contains(const void* p) noexcept;

// Start-up reservations from the options reserve_os_memory and
// reserve_huge_os_pages(_at). Called once from process init.
void arenas_init_reserve() noexcept;
// Releases every arena we reserved (destroy_on_exit).
void arenas_unsafe_destroy_all() noexcept;

// One arena as the statistics see it.
struct ArenaInfo {
  int id;
  int numa_node;         // -1: bound to no node
  int account;           // the account its bytes are counted for (types.h)
  size_t reserved;       // bytes of address space
  size_t blocks_in_use;  // blocks held by segments (or by a purge running now)
  size_t purge_pending;  // committed bytes of free blocks waiting for their purge
  bool is_huge;          // on 1 GiB pages
  bool is_pinned;        // on huge or large OS pages (never purged)
  bool exclusive;
};
// Calls fn for each arena (statistics). Reads the bitmaps without a lock: a
// claim or free running meanwhile may or may not be seen.
void arenas_visit(void (*fn)(const ArenaInfo& info, void* arg), void* arg) noexcept;
// A node's placement counters (mi_numa_stats): segments for the node's
// threads served from it and from another node, and the times it could not
// give memory. Zeros for an invalid node.
void arenas_node_placement(int node, size_t* local, size_t* remote, size_t* fallbacks) noexcept;

// Invariant walkers (arena_check.cpp; arena_internal.h lists what they
// check). Every arena: arena_is_valid; `quiescent`: the caller knows no
// other thread allocates or frees meanwhile (a test between two rounds).
bool arenas_are_valid(bool quiescent, Invalid* why = nullptr) noexcept;
// The memory at p, handed out by arena_alloc with memid (a live segment), is
// held in its arena: its blocks are in use, dirty, not waiting for a purge,
// and committed if it came committed. true for memory of no arena.
bool arena_memory_is_held(const void* p, const MemId& memid, Invalid* why = nullptr) noexcept;
// Blocks in use in the arena at arena_index (MemId::arena_index): the bound
// for the blocks of the live segments there.
size_t arena_blocks_in_use(size_t arena_index) noexcept;

// fork(): the reservation lock is held across fork.
void arenas_fork_prepare() noexcept;
void arenas_fork_parent() noexcept;
void arenas_fork_child() noexcept;

}  // namespace mi
