// free.cpp: mi_free and the usable size of a block; foreign pointers.
#include "../common/messages.h"
#include "alloc_inline.h"

namespace mi {

namespace {

Page* page_of_any(Segment* segment, const void* p) {
  return (segment->capacity == 1) ? &segment->pages[0] : segment_page_of(segment, p);
}

// Is p inside the used part of its page? (rejects header and tail pointers)
bool points_into_blocks(const Page* page, const void* p) {
  const uint8_t* q = static_cast<const uint8_t*>(p);
  return page->segment_in_use && q >= page->page_start &&
         q < page->page_start + static_cast<size_t>(page->capacity) * page->block_size;
}

}  // namespace

void free_unknown(void* p) noexcept {
  if (p == nullptr) return;
  Segment* segment = segmap_segment_of(p);
  if (segment == nullptr) {
    if (once(Once::free_foreign)) {
      warning_message("free(%p): the pointer was not allocated by mimalloc-numa (a foreign pointer); ignored. "
                      "Further such frees are ignored silently.",
                      p);
    }
    return;
  }
  // A pointer beyond the first unit of a huge segment: an aligned huge block.
  Page* page = page_of_any(segment, p);
  if (!points_into_blocks(page, p) || !page_has_aligned(page)) {
    if (once(Once::free_interior)) {
      warning_message("free(%p): the pointer is inside memory of mimalloc-numa but is not a block it handed out; ignored", p);
    }
    return;
  }
  free_block(segment, page, p);
}

void free_not_fast(void* p) noexcept {
  Segment* segment = ptr_segment(p);
  free_block(segment, segment_page_of(segment, p), p);
}

size_t usable_size_of(const void* p) noexcept {
  if (p == nullptr) return 0;
  Segment* segment;
  Page* page;
  if (MI_LIKELY(segmap_byte(p) >= SEGMAP_FIRST_MIN)) {
    segment = ptr_segment(p);
    page = segment_page_of(segment, p);
  } else {
    segment = segmap_segment_of(p);
    if (segment == nullptr) {
      if (once(Once::free_foreign)) {
        warning_message("malloc_usable_size(%p): the pointer was not allocated by mimalloc-numa; returning 0", p);
      }
      return 0;
    }
    page = page_of_any(segment, p);
  }
  const uint8_t* q = static_cast<const uint8_t*>(p);
  if (MI_UNLIKELY(page_has_aligned(page))) {
    const uint8_t* block = reinterpret_cast<const uint8_t*>(page_ptr_unalign(page, p));
    return page->block_size - static_cast<size_t>(q - block);
  }
  return page->block_size;
}

}  // namespace mi

using namespace mi;

extern "C" {

void mi_free(void* p) mi_attr_noexcept { free_inline(p); }

size_t mi_usable_size(const void* p) mi_attr_noexcept { return usable_size_of(p); }

}  // extern "C"
