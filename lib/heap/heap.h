// heap.h: heaps, threads and the process.
//
// Owns: the calling thread's default heap (a thread-local pointer), creating
// and deleting heaps, collecting them, thread start/exit (lazy init, abandon
// at exit), reclaiming abandoned segments, process init and fork (the
// process's entry points, its exit and the fork handlers' registration are
// api/process.cpp's).
// Thread-safety: a heap is used by its owner thread only; the process-wide
// parts (thread count, deferred-free callback) are atomics.
#pragma once

#include <cstddef>

#include "../../include/mimalloc.h"
#include "../common/types.h"

namespace mi {

// The calling thread's default heap; &heap_empty until the thread's first
// allocation (heap_empty has no pages, so that call takes the slow path,
// which initialises the thread).
extern MI_HIDDEN Heap heap_empty;
extern __thread Heap* tls_heap_default __attribute__((tls_model("initial-exec")));

MI_ALWAYS_INLINE Heap* heap_get_default() noexcept { return tls_heap_default; }
inline bool heap_is_initialized(const Heap* heap) { return heap != nullptr && heap->tld != nullptr; }

// Initialises the calling thread (heap, thread data) if needed and returns
// its default heap; nullptr only if the OS refuses memory for the thread data.
Heap* thread_heap_init() noexcept;
// The thread's default heap, initialising the thread if needed.
Heap* heap_get_default_init() noexcept;

// Sets up a heap for thread data `tld` (heap memory provided by the caller).
void heap_init(Heap* heap, Tld* tld, int arena_id, bool no_reclaim, uint8_t tag) noexcept;

// Collect: frees empty pages, purges, processes delayed frees; `abandon`
// (thread exit) hands pages with live blocks to the abandoned list.
enum class Collect { normal, force, abandon };
void heap_collect(Heap* heap, Collect how) noexcept;
// Frees retired (kept) empty pages whose grace period ran out (all when
// force): heap_collect's, and the slow path's before it takes a fresh page.
void heap_collect_retired(Heap* heap, bool force) noexcept;

// Runs the registered deferred-free callback (mi_register_deferred_free).
void heap_deferred_free(Heap* heap, bool force) noexcept;
extern MI_HIDDEN std::atomic<mi_deferred_free_fun*> deferred_free_fun;  // the callback, or null

// What keeps heap_malloc_slow from swapping a direct page's local_free into its
// free list itself (malloc_generic does it then): one word, so that its
// common case tests one load (pairs cycle in tests/bench/instructions: a
// second flag tested there cost 0.6 instructions per malloc+free).
constexpr unsigned SWAP_DEFERRED_FREE = 1;  // a deferred-free callback is registered
constexpr unsigned SWAP_COUNT_LOCAL = 2;    // local frees are counted (stats_counting_local_frees)
extern MI_HIDDEN std::atomic<unsigned> slow_swap_blockers;
// Turns the counting of local frees on or off (statistics published).
void heap_count_local_frees(bool on) noexcept;

// Reclaims abandoned segments into `heap`. Returns true if some page of
// `block_size` came with them (the caller should look in its queue again).
bool heap_reclaim_abandoned(Heap* heap, size_t block_size) noexcept;
// Reclaims `segment` (which the caller removed from the abandoned list).
void heap_reclaim_segment(Heap* heap, Segment* segment) noexcept;
// Reclaims every abandoned segment the heap may take.
void heap_reclaim_all(Heap* heap) noexcept;
// Collects (and releases where empty) up to `max` abandoned segments of other
// nodes, without taking their pages into this heap.
void heap_collect_foreign_abandoned(Heap* heap, size_t max) noexcept;

// The slow path found its thread on `node`, another node than tld->node:
// the pages of other nodes leave the heaps that follow the thread (freed
// when empty, else abandoned to their node's threads). heap/migrate.cpp.
void heap_thread_moved(Tld* tld, int node) noexcept;

// Process set-up (idempotent; from the first allocation or mi_process_init).
void process_init() noexcept;
bool process_is_initialized() noexcept;
// fork(): the pthread_atfork handlers of the heap layer and those below
// (locks held across the fork; in the child, the other threads' heaps
// abandoned and the statistics restarted). api/process.cpp registers them,
// with what the api layer does at a fork.
void process_fork_prepare() noexcept;
void process_fork_parent() noexcept;
void process_fork_child() noexcept;

// The thread's heap with the given tag (nullptr if none).
Heap* heap_by_tag(Heap* heap, uint8_t tag) noexcept;

// Live threads that have allocated (for statistics).
size_t thread_count() noexcept;
// Calls fn for the Tld of every live thread, holding the live threads'
// list's lock (a thread that exits meanwhile waits): for the statistics
// publisher, which reads only the counters a thread keeps for it.
void threads_visit_live(void (*fn)(const Tld* tld, void* arg), void* arg) noexcept;

}  // namespace mi
