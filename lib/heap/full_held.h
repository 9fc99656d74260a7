// full_held.h: blocks a thread frees into its heap's full pages, of the sizes
// above the direct ones (1 KiB - 128 KiB), held for the heap's next
// allocations of their size.
//
// Why: a cache evicts blocks at random. Each eviction frees a block into a
// page that is full (its blocks were all handed out), and the next
// allocation of that size takes the block again. Before, the free took the
// page out of the heap's full queue to the front of its size's queue
// (page_unfull), the allocation took the block and found the page used up,
// and the next allocation moved it back to the full queue (page_to_full):
// two queue moves, the delayed-free handshake twice and a queue search per
// free+malloc pair, 340 instructions (pairs random-4096: a thousand live
// 4 KiB blocks, a random one replaced at each step; jemalloc 102, tcmalloc
// 70), and RocksDB's block cache, 4 KiB blocks, evicts so. Held, the block
// goes onto a list of its size (Heap::full_held, a link in its first word)
// and comes off it at the heap's next allocation of that size
// (malloc_queue_first, malloc_generic, heap/page.cpp), and its page stays in
// the full queue: 143.4 instructions per pair (ring-4096, whose frees into
// full pages are held too: 131.0 -> 143.3; immediate-4096 121.9 -> 125.4).
// (RocksDB readrandom with 2 threads: level with this alone, most of its 4
// KiB frees being of the other thread's blocks: heap/cross_cache.h keeps
// those now.)
//
// Which: blocks of the sizes malloc_queue_first serves (above SMALL_SIZE_MAX,
// up to MEDIUM_OBJ_SIZE_MAX), freed by their page's owner while the page is
// in its full queue with no other flag (api/free.cpp free_not_fast), up to
// FULL_HELD_BYTES per heap. Not in the secure build (its frees are checked
// and its lists encoded; it holds none). A held block stays counted in use
// in its page (Page::used), so the page is not freed under it.
//
// Until when: the next allocation of its size, or the heap's next collect
// (mi_collect, the periodic collect of the slow path, the thread's exit),
// a move of its thread to another node (heap/migrate.cpp), mi_heap_delete,
// mi_heap_visit_blocks (which would list them as live), where they go back
// to their pages (full_held_flush); mi_heap_destroy drops them with their
// pages; a fork child sends those of the threads that did not come along to
// their pages' thread-free lists.
#pragma once

#include "../common/check.h"
#include "../common/options.h"
#include "../common/sanitizer.h"
#include "../common/types.h"
#include "size_class.h"

namespace mi {

// The bytes of blocks a heap holds at most (64 blocks of 4 KiB).
constexpr size_t FULL_HELD_BYTES = 256 * 1024;
// What a heap made now may hold: none in the hardened build or mode (its
// frees are checked), as heap/cross_cache.h.
inline size_t full_held_limit() noexcept {
  return (MI_SECURE != 0 || option_is_enabled(mi_option_secure)) ? 0 : FULL_HELD_BYTES;
}
// The bin of Heap::full_held[0].
constexpr size_t FULL_HELD_BIN0 = bin_of_size(SMALL_SIZE_MAX) + 1;
static_assert(bin_of_size(MEDIUM_OBJ_SIZE_MAX) + 1 - FULL_HELD_BIN0 == FULL_HELD_BINS,
              "a list per bin of the sizes above the direct ones, up to the medium ones");

// A block freed twice in a row onto the held list (out of line: reported).
void full_held_double_free(const Page* page, const Block* block) noexcept;

// Holds `block` of `page` (of the calling thread's heap, in its full queue)
// for the heap's allocations, if it may; false: the caller frees it to its
// page.
MI_ALWAYS_INLINE bool full_held_push(Page* page, Block* block) noexcept {
  const size_t bsize = page->block_size;
  Heap* heap = page->xheap.load(std::memory_order_relaxed);
  if (bsize <= SMALL_SIZE_MAX || bsize > MEDIUM_OBJ_SIZE_MAX || bsize > heap->full_held_room) return false;
  Block** head = &heap->full_held[page->bin - FULL_HELD_BIN0];
  // the block held last is one compare away (as free_block_local_slow's test of local_free)
  if (MI_UNLIKELY(block == *head)) {
    full_held_double_free(page, block);
    return true;
  }
  heap->full_held_room -= bsize;
  asan_block_free(page, block);
  block->link = reinterpret_cast<uintptr_t>(*head);
  *head = block;
  return true;
}

// The held list of `bin` (a bin of the held sizes).
MI_ALWAYS_INLINE Block** full_held_list(Heap* heap, size_t bin) noexcept {
  return &heap->full_held[bin - FULL_HELD_BIN0];
}

// Takes `block`, the head of the held list of `bin`, off it for an
// allocation (the caller counts it).
MI_ALWAYS_INLINE void full_held_take(Heap* heap, size_t bin, Block* block) noexcept {
  *full_held_list(heap, bin) = reinterpret_cast<Block*>(block->link);
  heap->full_held_room += bin_block_sizes[bin];
#if MI_ASAN
  ASAN_UNPOISON_MEMORY_REGION(block, bin_block_sizes[bin]);
#endif
}

// Every held block of `heap` back to its page (the calling thread owns the heap).
void full_held_flush(Heap* heap) noexcept;
// Every held block of the calling thread's heaps back to its page: the
// statistics it reads (api/stats_snapshot.cpp) count its blocks as the
// program holds them. (Other threads' held blocks count as live there, as
// the blocks of other threads' pages a thread keeps do, heap/cross_cache.h:
// up to FULL_HELD_BYTES per heap.)
void full_held_flush_own() noexcept;
// mi_heap_destroy: the held blocks go with their pages.
void full_held_drop(Heap* heap) noexcept;
// A fork() child, for a heap of a thread that did not come along: its held
// blocks go to their pages' thread-free lists.
void full_held_fork_orphan(Heap* heap) noexcept;
// Debug builds: every held block is a block of a page of the heap of its
// list's size, and the lists hold full_held_max - full_held_room bytes;
// false and why otherwise.
bool full_held_is_valid(const Heap* heap, Invalid* why = nullptr) noexcept;

}  // namespace mi
