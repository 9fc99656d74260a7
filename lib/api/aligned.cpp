// aligned.cpp: aligned allocation (mi_malloc_aligned and family).
//
// In order of cost: alignments of a word or less are plain allocation; the
// direct page's next free block may already be aligned; block sizes that are
// multiples of the alignment (up to MAX_ALIGN_GUARANTEE) are always aligned;
// otherwise over-allocate by alignment-1 inside a page (alignments up to
// MAX_ALIGN_IN_PAGE, and larger ones of small requests: aligned_in_page) or
// in a huge segment sized for it, and mark the page
// has_aligned so that free() finds the block start.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../common/messages.h"
#include "alloc_inline.h"
#include "api_internal.h"

namespace mi {

namespace {

// Whether an aligned request is served inside a regular page, by
// over-allocation (the room, up to alignment - 1 bytes, is committed with the
// page), rather than by a huge segment sized for it (segment_huge_page_fit:
// the room decommitted, but a huge page's block is over 2 MiB from its page
// start): every alignment up to MAX_ALIGN_IN_PAGE, larger ones while the
// size and the room stay within half the large-block limit (64 buffers of
// 100000 bytes aligned to 128 KiB committed 120 MiB as huge blocks).
bool aligned_in_page(size_t size, size_t alignment) {
  return alignment <= MAX_ALIGN_IN_PAGE || size + alignment - 1 <= LARGE_OBJ_SIZE_MAX / 2;
}

// Over-allocates so that some address p + adjust, adjust < alignment, has
// (p + adjust + offset) a multiple of alignment and `size` bytes after it.
// Only offset modulo alignment matters: the block need not reach the offset
// (mi_malloc_aligned_at(64, 64, SIZE_MAX - 62) is a block of 64 bytes).
// pre: alloc_request_possible(size, alignment), so nothing below overflows.
void* heap_malloc_aligned_at_slow(Heap* heap, size_t size, size_t alignment, size_t offset, bool zero) {
  const uintptr_t mask = alignment - 1;
  void* p;
  const bool in_page = aligned_in_page(size, alignment);
  if (!in_page) {
    // a huge segment with `alignment` bytes to spare after the block
    if (!heap_is_initialized(heap)) heap = thread_heap_init();
    if (heap == nullptr) return nullptr;
    p = malloc_generic(heap, size, zero, alignment);
  } else {
    // From the heap's own pages: not a block this thread keeps of another
    // thread's page (heap/cross_cache.h), whose page it could not flag below
    // (another thread's owner word: a write would race with the owner's).
    Block** const cross = heap->cross_free;  // (null: not a backing heap, or heap_empty)
    if (cross != nullptr) heap->cross_free = nullptr;
    p = heap_malloc_zero(heap, size + mask, zero);
    if (cross != nullptr) heap->cross_free = cross;
  }
  if (p == nullptr) return nullptr;
  uintptr_t adjust = (alignment - ((reinterpret_cast<uintptr_t>(p) + offset) & mask)) & mask;
  void* aligned = static_cast<uint8_t*>(p) + adjust;
  if (aligned != p) {
    Segment* segment = ptr_segment(p);
    Page* page = segment_page_of_any(segment, p);
    page_set_flag(page, PAGE_HAS_ALIGNED, true);  // the page is ours: we just allocated from it
  }
  if (!in_page) {
    // The room after the block is not the block's: realloc copies a block's
    // usable size (a 0-byte block aligned to 32 TiB had 31 TiB usable, and
    // its realloc to 4 GiB wrote 4 GiB: tests/fuzz api_fuzz).
    page_huge_fit(segment_page_of_any(ptr_segment(p), p), aligned, size);
  }
  return aligned;
}

}  // namespace

void* heap_malloc_aligned_at(Heap* heap, size_t size, size_t alignment, size_t offset, bool zero) noexcept {
  if (MI_UNLIKELY(alignment == 0 || !is_power_of_two(alignment))) {
    error_message(EOVERFLOW, "aligned allocation requires the alignment to be a power of two (size %zu, alignment %zu)",
                  size, alignment);
    errno = EINVAL;
    return nullptr;
  }
  // the room for the alignment counts: size + alignment within ALLOC_SIZE_MAX
  if (MI_UNLIKELY(!alloc_request_possible(size, alignment))) return alloc_impossible(1, size, alignment);
  const uintptr_t mask = alignment - 1;
  if (alignment <= WORD_SIZE && (offset & (WORD_SIZE - 1) & mask) == 0) return heap_malloc_zero(heap, size, zero);
  // The next block of the direct page may happen to be aligned.
  if (size <= SMALL_SIZE_MAX && alignment <= size) {
    Page* page = heap_direct_page(heap, size);
    const Block* block = page->free;
    if (block != nullptr && ((reinterpret_cast<uintptr_t>(block) + offset) & mask) == 0)
      return page_free_pop(page, zero);
  }
  // Blocks of a size that is a multiple of the alignment are aligned anyway.
  if (offset == 0 && alignment <= MAX_ALIGN_GUARANTEE && size <= LARGE_OBJ_SIZE_MAX &&
      (good_block_size(size) & mask) == 0) {
    return heap_malloc_zero(heap, size, zero);
  }
  return heap_malloc_aligned_at_slow(heap, size, alignment, offset, zero);
}

void* heap_realloc_aligned_at(Heap* heap, void* p, size_t newsize, size_t alignment, size_t offset,
                              bool zero) noexcept {
  if (alignment <= WORD_SIZE && offset == 0) return heap_realloc_zero(heap, p, newsize, zero);  // as mimalloc
  // a bad alignment fails here, not after an "in place" test with a wrong mask
  if (p == nullptr || !is_power_of_two(alignment))
    return heap_malloc_aligned_at(heap, newsize, alignment, offset, zero);
  size_t size = usable_size_of(p);
  if (size == 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (newsize <= size && newsize >= size - size / 2 &&
      ((reinterpret_cast<uintptr_t>(p) + offset) & (alignment - 1)) == 0) {
    return p;  // still fits, still aligned
  }
  // zeroing: allocated zeroed (see heap_realloc_zero in alloc.cpp)
  return realloc_move(heap_malloc_aligned_at(heap, newsize, alignment, offset, zero), p, size, newsize);
}

}  // namespace mi

using namespace mi;

extern "C" {

void* mi_heap_malloc_aligned_at(mi_heap_t* heap, size_t size, size_t alignment, size_t offset) mi_attr_noexcept {
  return heap_malloc_aligned_at(heap, size, alignment, offset, false);
}
void* mi_heap_malloc_aligned(mi_heap_t* heap, size_t size, size_t alignment) mi_attr_noexcept {
  return heap_malloc_aligned_at(heap, size, alignment, 0, false);
}
void* mi_heap_zalloc_aligned_at(mi_heap_t* heap, size_t size, size_t alignment, size_t offset) mi_attr_noexcept {
  return heap_malloc_aligned_at(heap, size, alignment, offset, true);
}
void* mi_heap_zalloc_aligned(mi_heap_t* heap, size_t size, size_t alignment) mi_attr_noexcept {
  return heap_malloc_aligned_at(heap, size, alignment, 0, true);
}
void* mi_heap_calloc_aligned_at(mi_heap_t* heap, size_t count, size_t size, size_t alignment,
                                size_t offset) mi_attr_noexcept {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) return alloc_impossible(count, size, 0);
  return heap_malloc_aligned_at(heap, total, alignment, offset, true);
}
void* mi_heap_calloc_aligned(mi_heap_t* heap, size_t count, size_t size, size_t alignment) mi_attr_noexcept {
  return mi_heap_calloc_aligned_at(heap, count, size, alignment, 0);
}
void* mi_heap_realloc_aligned_at(mi_heap_t* heap, void* p, size_t newsize, size_t alignment,
                                 size_t offset) mi_attr_noexcept {
  return heap_realloc_aligned_at(heap, p, newsize, alignment, offset, false);
}
void* mi_heap_realloc_aligned(mi_heap_t* heap, void* p, size_t newsize, size_t alignment) mi_attr_noexcept {
  return heap_realloc_aligned_at(heap, p, newsize, alignment, 0, false);
}
void* mi_heap_rezalloc_aligned_at(mi_heap_t* heap, void* p, size_t newsize, size_t alignment,
                                  size_t offset) mi_attr_noexcept {
  return heap_realloc_aligned_at(heap, p, newsize, alignment, offset, true);
}
void* mi_heap_rezalloc_aligned(mi_heap_t* heap, void* p, size_t newsize, size_t alignment) mi_attr_noexcept {
  return heap_realloc_aligned_at(heap, p, newsize, alignment, 0, true);
}
void* mi_heap_recalloc_aligned_at(mi_heap_t* heap, void* p, size_t count, size_t size, size_t alignment,
                                  size_t offset) mi_attr_noexcept {
  size_t total;
  if (MI_UNLIKELY(mul_overflow(count, size, &total))) return alloc_impossible(count, size, 0);
  return heap_realloc_aligned_at(heap, p, total, alignment, offset, true);
}
void* mi_heap_recalloc_aligned(mi_heap_t* heap, void* p, size_t count, size_t size, size_t alignment) mi_attr_noexcept {
  return mi_heap_recalloc_aligned_at(heap, p, count, size, alignment, 0);
}

void* mi_malloc_aligned_at(size_t size, size_t alignment, size_t offset) mi_attr_noexcept {
  return mi_heap_malloc_aligned_at(heap_get_default(), size, alignment, offset);
}
void* mi_malloc_aligned(size_t size, size_t alignment) mi_attr_noexcept {
  return mi_heap_malloc_aligned(heap_get_default(), size, alignment);
}
void* mi_zalloc_aligned_at(size_t size, size_t alignment, size_t offset) mi_attr_noexcept {
  return mi_heap_zalloc_aligned_at(heap_get_default(), size, alignment, offset);
}
void* mi_zalloc_aligned(size_t size, size_t alignment) mi_attr_noexcept {
  return mi_heap_zalloc_aligned(heap_get_default(), size, alignment);
}
void* mi_calloc_aligned_at(size_t count, size_t size, size_t alignment, size_t offset) mi_attr_noexcept {
  return mi_heap_calloc_aligned_at(heap_get_default(), count, size, alignment, offset);
}
void* mi_calloc_aligned(size_t count, size_t size, size_t alignment) mi_attr_noexcept {
  return mi_heap_calloc_aligned(heap_get_default(), count, size, alignment);
}
void* mi_realloc_aligned_at(void* p, size_t newsize, size_t alignment, size_t offset) mi_attr_noexcept {
  return mi_heap_realloc_aligned_at(heap_get_default(), p, newsize, alignment, offset);
}
void* mi_realloc_aligned(void* p, size_t newsize, size_t alignment) mi_attr_noexcept {
  return mi_heap_realloc_aligned(heap_get_default(), p, newsize, alignment);
}
void* mi_rezalloc_aligned_at(void* p, size_t newsize, size_t alignment, size_t offset) mi_attr_noexcept {
  return mi_heap_rezalloc_aligned_at(heap_get_default(), p, newsize, alignment, offset);
}
void* mi_rezalloc_aligned(void* p, size_t newsize, size_t alignment) mi_attr_noexcept {
  return mi_heap_rezalloc_aligned(heap_get_default(), p, newsize, alignment);
}
void* mi_recalloc_aligned_at(void* p, size_t count, size_t size, size_t alignment, size_t offset) mi_attr_noexcept {
  return mi_heap_recalloc_aligned_at(heap_get_default(), p, count, size, alignment, offset);
}
void* mi_recalloc_aligned(void* p, size_t count, size_t size, size_t alignment) mi_attr_noexcept {
  return mi_heap_recalloc_aligned(heap_get_default(), p, count, size, alignment);
}

}  // extern "C"
