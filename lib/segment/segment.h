// segment.h: segments and the pages inside them.
//
// Owns: creating and releasing segments (memory from the arena layer), handing
// out free pages of a segment to heaps and taking them back, lazy commit of
// pages and delayed purge of free pages, guard pages in secure mode,
// abandoning a segment when its thread exits. The address -> segment -> page
// arithmetic used by free() is here.
// Invariants (checked by segment_is_valid):
//   used == number of pages with segment_in_use; free_mask is its complement
//   over `capacity`; a segment is in its owner's free queue iff it is
//   small/medium, owned, and has a free page; abandoned == used when the
//   segment is on the abandoned list; thread_id == 0 iff abandoned.
// Thread-safety: a segment is touched only by its owner thread (thread_id),
// except thread_id itself (atomic), abandoned segments (abandon.cpp lock),
// and the page masks, which a purge from any thread changes under the
// segment's state lock (segment.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/check.h"
#include "../common/types.h"
#include "segmap.h"

namespace mi {

// The calling thread's identity: the thread pointer (fs base on x86-64).
// Unique among live threads, stable for the thread's life, one instruction.
MI_ALWAYS_INLINE uintptr_t thread_id() noexcept {
#if defined(__x86_64__)
  uintptr_t tid;
  __asm__("movq %%fs:0, %0" : "=r"(tid));
  return tid;
#else
  return reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
#endif
}

// word == thread_id(), with the thread pointer read by the compare itself
// (x86-64: `cmp %fs:0, reg`, one instruction instead of a load and a compare:
// the free fast path's owner test).
MI_ALWAYS_INLINE bool is_thread_id(uintptr_t word) noexcept {
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
  bool equal;
  __asm__("cmpq %%fs:0, %1" : "=@ccz"(equal) : "r"(word) :);
  return equal;
#else
  return word == thread_id();
#endif
}

// The segment of a block pointer. pre: p is a block start we handed out that
// lies in its segment's first unit (segmap byte >= SEGMAP_FIRST_MIN: the byte
// is then the page shift, segmap.h).
MI_ALWAYS_INLINE Segment* ptr_segment(const void* p) {
  return reinterpret_cast<Segment*>(reinterpret_cast<uintptr_t>(p) & ~SEGMENT_MASK);
}

// The page of a pointer inside segment s (first unit only). A pointer into a
// later slice of a large page maps to that slice's entry, which points back
// to the page (slice_offset).
// The entry of the page (or slice) holding p, for a page shift the caller has
// (free and the usable size take it from the segment map: no header line).
MI_ALWAYS_INLINE Page* segment_page_at(const Segment* s, const void* p, unsigned shift) {
  return const_cast<Page*>(&s->pages[(reinterpret_cast<uintptr_t>(p) & SEGMENT_MASK) >> shift]);
}

MI_ALWAYS_INLINE Page* segment_page_of(const Segment* s, const void* p) {
  const Page* page = segment_page_at(s, p, static_cast<unsigned>(s->page_shift));
  return const_cast<Page*>(page - page->slice_offset);
}

MI_ALWAYS_INLINE Segment* page_segment(const Page* page) { return ptr_segment(page); }

// The page of any pointer into segment s, also beyond its first unit: a huge
// segment has one page, whatever the pointer's unit (an aligned huge block).
MI_ALWAYS_INLINE Page* segment_page_of_any(Segment* s, const void* p) {
  return (s->capacity == 1) ? &s->pages[0] : segment_page_of(s, p);
}

// Page kind for a block size.
inline PageKind page_kind_of(size_t block_size) {
  if (block_size <= SMALL_OBJ_SIZE_MAX) return PageKind::small;
  if (block_size <= MEDIUM_OBJ_SIZE_MAX) return PageKind::medium;
  if (block_size <= LARGE_OBJ_SIZE_MAX) return PageKind::large;
  return PageKind::huge;
}

// A page for blocks of `block_size` from the thread's segments: from a segment
// that has a free page, or (allow_new) from a new segment. For huge blocks
// (block_size > LARGE_OBJ_SIZE_MAX) always a new segment of its own, with
// room for `huge_alignment` when that is beyond MAX_ALIGN_IN_PAGE.
// Returns a page with block_size, page_start, reserved and is_zero_init set
// and empty free lists, or nullptr (out of memory, or !allow_new).
Page* segment_page_alloc(Heap* heap, size_t block_size, size_t huge_alignment, bool allow_new,
                         SegmentsTld* tld) noexcept;

// A large page (a run of slices) for one block of `block_size`, whatever the
// size's own page kind: a medium block that realloc grows gets one, so that
// its next steps grow it in place (api/alloc.cpp heap_realloc_zero). As
// segment_page_alloc.
Page* segment_large_page_alloc(Heap* heap, size_t block_size, bool allow_new, SegmentsTld* tld) noexcept;

// Returns an empty page to its segment; frees the segment when it was the
// last page in use. Returns true if the segment was freed. With keep_if_empty,
// the thread keeps one empty segment of each page kind, or a sixteenth of
// its segments when it has more than 32 (their pages purged as any free
// page is), instead of freeing it: a thread whose memory use hovers around
// a segment boundary would otherwise free and make segments all the time
// (mixed_bench: 2000 segments made for a peak of 57).
bool segment_page_free(Page* page, SegmentsTld* tld, bool keep_if_empty = true) noexcept;

// Frees the empty segments the thread kept (thread exit, mi_collect(true)).
void segments_release_empty(SegmentsTld* tld) noexcept;

// Thread exit: the page keeps live blocks but has no heap any more. When all
// pages of its segment are abandoned, the segment goes on the abandoned list.
void segment_page_abandon(Page* page, SegmentsTld* tld) noexcept;

// Taking over an abandoned segment (heap/reclaim.cpp): begin makes it ours;
// end puts it in our queues if it still has pages in use (false: it was freed).
void segment_reclaim_begin(Segment* segment, SegmentsTld* tld) noexcept;
void segment_reclaim_end(Segment* segment, SegmentsTld* tld) noexcept;

// A large segment's purge intervals are 2^LARGE_PURGE_SHIFT times longer than
// purge_delay (and its cap): its free runs are parts of the spans that later
// large pages take whole, so a run purged after a short wait is refaulted
// with the next large page that spans it. Measured on mixed 8 B - 512 KiB
// (tools/bench/mixed_log.c --touch pages, 1 M steps, 3 runs alternated, load
// ~20): large segments were 700 of the 780 MiB purged; faults 236/221/288 K
// -> 180/181/198 K, user+sys 1.46/1.22/1.57 -> 1.27/1.09/1.34 s (mimalloc
// 2.0.9: 155-172 K, 1.11-1.30 s); peak RSS the same (612 -> 615 MiB).
constexpr unsigned LARGE_PURGE_SHIFT = 2;

// Purges free pages (of any thread's segments) whose purge delay has passed,
// or all of them when force. Safe from any thread, the purge thread too.
// Without visit_all it looks at a few segments only, those it has not
// looked at for longest (the allocation slow path: bounded work per call);
// the calls that follow go on until every segment was seen.
void segments_try_purge(bool force, bool visit_all = true) noexcept;
// Milliseconds until the earliest scheduled page purge is due (-1: none).
int64_t segments_next_purge_in_ms() noexcept;
// fork(): the purge list lock and the list of every segment are held across
// fork. In the child (self: the forking thread, the only one there), the
// segments of the threads that did not come along are abandoned, mended
// where their owner stopped half-way through claiming or freeing a page; so
// are segments between the abandoned list and a thread; segment locks held
// at the fork are let go, and a page left in the middle of a cross-thread
// free's hand-over (delayed_freeing) is reset.
void segments_fork_prepare() noexcept;
void segments_fork_parent() noexcept;
void segments_fork_child(uintptr_t self) noexcept;

// Grows a large page in place to hold a block of new_block_size, by claiming
// the free slices that follow it. false if they are not free (or not large).
// pre: the calling thread owns the page's segment.
bool segment_large_page_try_grow(Page* page, size_t new_block_size, SegmentsTld* tld) noexcept;

// Grows a huge page in place to hold a block of at least new_block_size
// (rounded up to the OS page), into the memory its segment came in that lies
// past its end (arena blocks and OS mappings are whole SEGMENT_SIZE units).
// false if that memory is too short, or in secure mode, or on pinned or
// 2 MiB pages. Sets the page's block_size (the caller updates the statistics).
// pre: the calling thread owns the page's segment.
bool segment_huge_page_try_grow(Page* page, size_t new_block_size, SegmentsTld* tld) noexcept;

// Fits a huge page holding an over-aligned block (heap_malloc_aligned_at:
// its segment has `alignment` bytes of room before the block, wherever in
// that room the block landed) to the block, which lies from block_start to
// block_end bytes past the page start: the page (and segment) ends at the
// block's end, rounded up to the OS page, and the whole OS pages before the
// block are decommitted (Segment::hole_offset, hole_size). What lies past
// the new end is decommitted and protected (it stays in the segment's
// memory until the segment is freed, and a realloc may grow into it); in
// secure mode the guard page moves to the new end. Does nothing on pinned or
// 2 MiB pages, or where mprotect or madvise fails (the block keeps its
// room). Sets the page's block_size (the caller updates the statistics).
// pre: the calling thread owns the page's segment.
void segment_huge_page_fit(Page* page, size_t block_start, size_t block_end, SegmentsTld* tld) noexcept;

// Resets the memory of a huge block freed by another thread, except its
// first OS page, so its RSS is returned before its owner gets to free it.
void segment_huge_block_reset(Segment* segment, Page* page, void* block) noexcept;

// Usable size of a huge block for a request of `size` bytes (what
// segment_page_alloc gives): the rest of its segment after the header.
size_t segment_huge_usable_size(size_t size) noexcept;

// The node whose segments a heap takes pages from: the heap's own, or its
// thread's current node (-1 on a single-node machine).
int segment_node_for(const Heap* heap) noexcept;

// Does the heap's arena / node restriction accept this segment?
bool segment_is_suitable(const Segment* segment, const Heap* heap) noexcept;

// Calls fn for every live segment of every thread (abandoned ones too), with
// a lock held that keeps segments from being released meanwhile: fn may read
// a segment's header and page table, never allocate or free. Their owners
// keep changing them: fields read there may be a moment old (statistics).
void segments_visit(void (*fn)(const Segment* segment, void* arg), void* arg) noexcept;

// Invariant walkers (MI_ASSERT_EXPENSIVE and the tests; check.h: false
// with the reason in *why, or on stderr when why is null).
// A segment: the invariants above, its pages' geometry, in-use pages
// committed and not waiting for a purge, its arena blocks held
// (arena_memory_is_held), and, when the caller owns it, its free queue
// (a large segment: the bin of its longest free run; a segment another
// thread abandoned, held for a moment to free its empty pages, is queued
// in none: heap/reclaim.cpp). Takes the segment's
// state lock; pre: no other thread changes it but by a purge (the owner
// calls it, or the segment is abandoned and held by the caller).
bool segment_is_valid(const Segment* segment, Invalid* why = nullptr) noexcept;
// The calling thread's free queues of segments: linked both ways, every
// segment the thread's and of the queue's kind with a free page, large
// ones in the bin of their longest free run, the bitmap of non-empty bins
// true to the bins.
bool segments_tld_is_valid(const SegmentsTld* tld, Invalid* why = nullptr) noexcept;

}  // namespace mi
