// heap_check.h: the invariant walkers of the heap layer, and the one that
// walks the whole process.
//
// Owns: page_is_valid (page.h's invariants), page_queue_is_valid and
// heap_is_valid (page_queue.h's), process_is_valid (every arena, every
// segment, the calling thread's heaps and segment queues), and, in
// invariant builds (-Dinvariants=true), the test hook that runs it from a
// program (mi_debug_check_invariants: the stress tests call it between
// rounds). Each walker returns false with the reason (common/check.h).
// Cost: page_queue_is_valid walks one queue; heap_is_valid every queue of a
// heap (not their blocks); page_is_valid a page's free lists;
// process_is_valid all of that for every page of the thread, and every
// segment and arena of the process.
// Thread-safety: page, queue and heap walkers run on the owner thread;
// process_is_valid on any thread, but checks fully only what the calling
// thread owns, and the cross-bitmap invariants of the arenas only when no
// other thread allocates or frees meanwhile (it says so: `quiescent`).
#pragma once

#include <cstddef>

#include "../common/check.h"
#include "../common/types.h"

namespace mi {

// A page in use: used <= capacity <= reserved; free and local_free lead
// to blocks of the page, on block boundaries, free + local_free + used <=
// capacity; its entry in its segment's page table is itself.
bool page_is_valid(const Page* page, Invalid* why = nullptr) noexcept;
// One queue of the heap: linked both ways, first and last right, every page
// in use, of the heap, of the queue's block size (BIN_FULL: flagged full,
// the others not), owned by the heap's thread; for a small bin, the direct
// table points at its first page (or page_empty). Counts its pages in *count.
bool page_queue_is_valid(const Heap* heap, const PageQueue* pq, size_t* count = nullptr,
                         Invalid* why = nullptr) noexcept;
// Every queue of the heap, and page_count their pages.
bool heap_is_valid(const Heap* heap, Invalid* why = nullptr) noexcept;
// Every arena (arenas_are_valid); every live segment: held in its arena
// (the blocks of the live segments of an arena number at most its blocks in
// use), in the segment map, and segment_is_valid for those of the calling
// thread; every heap of the calling thread (heap_is_valid, and
// page_is_valid for each of its pages) and its segment queues
// (segments_tld_is_valid). quiescent: no other thread allocates or frees
// meanwhile (the background thread may purge).
bool process_is_valid(bool quiescent, Invalid* why = nullptr) noexcept;

}  // namespace mi

#if MI_INVARIANTS
extern "C" {
// Test builds with invariant checks: process_is_valid(quiescent), from a
// program linked to the library (tests/stress: between rounds, while no
// other thread of the test allocates). On failure, false and the reason in
// why[0 .. why_size) (NUL-terminated; why may be null).
__attribute__((visibility("default"))) bool mi_debug_check_invariants(bool quiescent, char* why, size_t why_size);
}
#endif
