// cross_cache.h: blocks of other threads' pages that a thread freed, kept for
// its own allocations of the same size.
//
// A free into a page another thread owns costs a cross-core transfer of the
// page's line (its compare-and-swap onto the thread-free list), and the
// owner's next allocations from that list follow links the freeing core
// wrote. When the freeing thread allocates blocks of that size itself, it can
// hand the block out again instead: the block stays counted in its page's
// `used` (the page cannot go away), the freeing thread keeps it on a list of
// its own per block size (Tld::cross_free), and its small allocations take
// from that list when their direct page has no free block (small_slow,
// heap/page.cpp), before the page's own local frees. When the block is freed
// again, it goes to its page as any block does: to its owner, or to the
// freeing thread's cache once more. (larson_bench, where most frees are of
// the other thread's blocks: 0.61-0.67 -> 0.51-0.53 s and peak RSS 45-49 ->
// 28-30 MiB, 3 alternated runs: the freed blocks are reused instead of fresh
// pages, also those of the idle main thread's pages.)
//
// Which blocks: up to MEDIUM_OBJ_SIZE_MAX (a list per byte size up to
// SMALL_SIZE_MAX, Tld::cross_free, taken by small_slow; per bin above,
// Tld::cross_medium, taken where malloc_queue_first finds no free block at
// hand: RocksDB's block cache, 4 KiB blocks that the other thread evicts;
// db_bench readrandom, 2 threads, 8 MiB cache: the library's share of perf's
// samples 8.2% -> 5.0-5.5% (jemalloc's 2.0-2.4%), CPU per run 0.94x, now
// 0.98x jemalloc's, medians of per-round ratios, 10 alternated rounds), of
// pages in another thread's backing
// (default) heap, not a heap the program made (mi_heap_destroy frees those
// pages whole, an arena-bound heap's blocks must stay its own), and on the
// freeing thread's NUMA node: the page's segment_in_use holds a tag of its
// node (types.h: page_shared_tag) that the thread compares with its
// Tld::cross_tag, one test for all three. The secure build keeps none (its
// frees are checked, its free lists encoded).
//
// How much: at most option cross_thread_cache per thread (1 MiB: a tenth of
// larson_bench's live data per thread; 256 KiB left its peak at 39 MiB
// instead of 28), and CROSS_PROCESS_BYTES over the number of threads
// (below); past its bound, a free goes to the owner as before. A thread
// starts with a bound of
// CROSS_START_BYTES; at its bound it looks, after CROSS_FIRST_LOOK frees
// pass, whether it handed some held block out again meanwhile: if it did,
// its bound is the most it may hold from then on, looked at again every
// CROSS_FULL_LOOK frees that pass; if not (a consumer, which frees what
// others allocate and allocates little of it itself), it gives them all back
// and keeps none until its next collect: its frees go to their owners, in
// batches where they run (heap/remote_batch.h). (A bound that started at
// 64 KiB and doubled at each look: larson 5-10% slower and 5 MiB more at its
// peak, its threads giving most of their first frees, of the idle main
// thread's blocks, back to that thread. Starting at the most, a consumer
// held 1 MiB until its first look: xfree's peak 3.7 -> 4.7 MiB.)
//
// Held blocks go back to their pages (cross_cache_flush) when the thread
// collects (mi_collect, and the periodic collect of its slow path:
// generic_collect), moves to another node, or exits; a fork child sends those
// of the threads that did not come along to their pages' thread-free lists.
// Seen from the owner's heap, a held block is in use (mi_heap_visit_blocks
// lists it, its page is not freed until the block comes back).
#pragma once

#include "../common/check.h"
#include "../common/sanitizer.h"
#include "../common/types.h"
#include "full_held.h"

namespace mi {

constexpr size_t CROSS_FULL_LOOK = 256;
constexpr size_t CROSS_FIRST_LOOK = 32;
constexpr size_t CROSS_START_BYTES = 64 * 1024;
// All threads together hold about this much at most: a thread's bound is
// also this over the number of live threads when it starts or collects (64
// threads or fewer: the option's 1 MiB each; 256 threads: 256 KiB each).
constexpr size_t CROSS_PROCESS_BYTES = 64 * 1024 * 1024;

// The list of held blocks of `bsize` bytes in `lists` (Tld::cross_free):
// block sizes are multiples of the word, so the byte size is the list's
// offset (no shift and mask on the allocation slow path).
MI_ALWAYS_INLINE Block** cross_cache_list(Block** lists, size_t bsize) noexcept {
  static_assert(sizeof(Block*) == WORD_SIZE);
  return reinterpret_cast<Block**>(reinterpret_cast<uint8_t*>(lists) + bsize);
}

enum class CrossPush { kept, full, no };
// Keeps `block` of `page` (another thread's) for the calling thread's
// allocations, if it may: kept; full (a block it would keep, but it holds
// its bound: the caller passes it to cross_cache_passed); no (the caller
// frees it to its page).
MI_ALWAYS_INLINE CrossPush cross_cache_push(Tld* tld, const Page* page, Block* block) noexcept {
  const size_t bsize = page->block_size;
  // (relaxed: the owner rewrites the tag as it exits; the page's node and
  // heap were set before the block was handed out)
  const uint8_t tag = __atomic_load_n(&page->segment_in_use, __ATOMIC_RELAXED);
  if (tag != tld->cross_tag) return CrossPush::no;
  // No test of the size: a block over MEDIUM_OBJ_SIZE_MAX is a large or huge
  // page's, whose frees are checked (PAGE_FREE_CHECKED) and never come here
  // (remote_free, from free_not_fast's test of the flags).
  MI_ASSERT(bsize <= MEDIUM_OBJ_SIZE_MAX);
  if (MI_UNLIKELY(bsize > tld->cross_room)) return CrossPush::full;
  tld->cross_room -= bsize;
  asan_block_free(page, block);
  Block** head = (bsize <= SMALL_SIZE_MAX) ? cross_cache_list(tld->cross_free, bsize)
                                           : &tld->cross_medium[page->bin - FULL_HELD_BIN0];
  block->link = reinterpret_cast<uintptr_t>(*head);
  *head = block;
  return CrossPush::kept;
}

// A page whose thread-free list holds this many blocks when the calling
// thread keeps one of its blocks, and which is in its owner's full queue:
// the owner has made no allocation slow path since the page's first free
// told it (a thread that allocates takes the page back into its queue
// there, and collects the list when it allocates from it): an idle thread,
// as a program's main thread that filled tables and waits for its workers.
// cross_cache_steal takes the list.
constexpr size_t CROSS_STEAL_MIN = 32;

// Takes the thread-free list of `page` (another thread's, whose block the
// calling thread just kept) onto the calling thread's held blocks, if the
// page is in its owner's full queue and the thread's room allows them all:
// blocks other threads freed into a page whose owner does not collect them
// were lost to every thread until the owner allocated again; held here,
// they are allocated again. They stay counted in use in the page
// (Page::used counts its thread-free list), as any held block does.
// (larson_bench, whose main thread fills the arrays and then waits for the
// workers: the blocks the workers freed past their bound stayed on the
// main thread's pages, and the workers made new pages for what they lost:
// peak RSS 29.2 -> 25.4 MiB, medians of 6 alternated runs, tcmalloc 23.8;
// its CPU time level, 0.95 -> 0.93 s; 3000 epochs instead of 1000: 39 -> 35
// MiB.)
void cross_cache_steal(Tld* tld, Page* page) noexcept;

// A free that the bound left out (cross_cache_push: full), freed to its page
// (remote_free_run); every CROSS_FULL_LOOK of them, a look at whether the
// thread reuses what it holds (above).
void cross_cache_passed(Tld* tld, Page* page, Block* block, uintptr_t owner) noexcept;

// Hands out `block`, the head of the calling thread's (tld's) list of held
// blocks of `bsize` bytes (the allocation slow path found it there:
// Heap::cross_free).
MI_ALWAYS_INLINE void cross_cache_take(Tld* tld, Block* block, size_t bsize) noexcept {
  *cross_cache_list(tld->cross_free, bsize) = reinterpret_cast<Block*>(block->link);
  tld->cross_room += bsize;
  tld->cross_taken++;
#if MI_ASAN
  ASAN_UNPOISON_MEMORY_REGION(block, bsize);
#endif
}

// The same for a block of the sizes above the direct ones: the head of the
// list of `bin` (Tld::cross_medium; heap/full_held.h's bins).
MI_ALWAYS_INLINE void cross_cache_take_medium(Tld* tld, Block* block, size_t bin) noexcept {
  tld->cross_medium[bin - FULL_HELD_BIN0] = reinterpret_cast<Block*>(block->link);
  tld->cross_room += bin_block_sizes[bin];
  tld->cross_taken++;
#if MI_ASAN
  ASAN_UNPOISON_MEMORY_REGION(block, bin_block_sizes[bin]);
#endif
}

// The thread starts (or moves to another node: the tag of its new node); the
// option is read again.
void cross_cache_open(Tld* tld) noexcept;
// Every held block back to its page (collect, a move to another node), and
// the option read again.
void cross_cache_flush(Tld* tld) noexcept;
// The thread exits: every held block back to its page, and no more are kept.
void cross_cache_close(Tld* tld) noexcept;
// A fork() child, for a thread that did not come along: its held blocks go
// to their pages' thread-free lists.
void cross_cache_fork_orphan(Tld* tld) noexcept;
// Debug builds: every held block is a block of a page in use of its size, the
// lists hold cross_limit - cross_room bytes (none when it keeps none);
// false and why otherwise.
bool cross_cache_is_valid(const Tld* tld, Invalid* why = nullptr) noexcept;

}  // namespace mi
