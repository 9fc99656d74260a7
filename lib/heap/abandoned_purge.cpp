// abandoned_purge.cpp: the free blocks of exited threads' pages go back to
// the OS after purge_delay * arena_purge_mult (250 ms at the defaults).
//
// Owns: purging the memory of free blocks in the pages of abandoned segments
// (pages that still hold live blocks, so the segment's page purge never
// sees them), and the parked free lists this needs.
//
// Why: a thread that allocates much, frees most of it and exits leaves its
// pages partly used. Another thread of the same node takes them over when it
// needs memory (reclaim), but no thread of another node may (its memory
// must stay local), and an idle process has no such thread at all: the free
// blocks stayed resident (issue 13: 288 MiB committed for 26 MiB of live
// blocks after a node-0 thread exited). After the delay they are
// discarded, whatever node they are on; a later reclaim reuses them.
//
// A free block's first word links the free list, so purging every OS page
// of the free blocks would lose the list. Instead the list is parked: the
// page's free blocks are written down as a bitmap (one bit per block, in the
// page's next/prev words, which an abandoned page does not use: it is in no
// heap queue), `free` is emptied, and every OS page covered by free blocks
// only is discarded (MADV_DONTNEED; it stays accessible and reads as zero).
// Whoever takes the segment over rebuilds the list first (page_free_unpark).
// Pages of more than 128 blocks (blocks under 512 B in a small page) are
// left as they are: their free blocks rarely cover a whole OS page.
//
// Thread-safety: a segment is purged off the abandoned list
// (abandoned_pop_to_purge), held alone as a reclaim would hold it; other
// threads' frees into it go to its pages' thread-free lists meanwhile,
// collected here. The parked bits are written and read only by the holder.
#include "abandoned_purge.h"

#include <string.h>

#include "../common/options.h"
#include "../os/os.h"
#include "../segment/abandon.h"
#include "../segment/segment.h"
#include "free_list.h"
#include "page.h"

namespace mi {

namespace {

constexpr size_t PARK_BITS = size_t{2} * 64;  // next and prev
static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "two 64-bit words (the queue links) park the free list");

// Segments purged per call: a slow path does a bounded amount of work.
constexpr size_t SEGMENTS_PER_CALL = 8;

void park_store(Page* page, const uint64_t bits[2]) {
  memcpy(static_cast<void*>(&page->next), &bits[0], sizeof(uint64_t));
  memcpy(static_cast<void*>(&page->prev), &bits[1], sizeof(uint64_t));
}

void park_load(const Page* page, uint64_t bits[2]) {
  memcpy(&bits[0], static_cast<const void*>(&page->next), sizeof(uint64_t));
  memcpy(&bits[1], static_cast<const void*>(&page->prev), sizeof(uint64_t));
}

bool bit_of(const uint64_t bits[2], size_t i) { return ((bits[i / 64] >> (i % 64)) & 1) != 0; }

// Parks the free list of `page` (pre: collected, local_free empty) and
// discards the OS pages its free blocks and its never-used tail cover.
// Returns the bytes discarded.
size_t page_park_and_discard(Segment* segment, Page* page) {
  if (page->reserved > PARK_BITS || page->free_parked || page->local_free != nullptr) return 0;
  const PageBlocks blocks = page_blocks(page);
  uint64_t bits[2] = {0, 0};
  size_t n = 0;
  for (const Block* b = page->free; b != nullptr; b = block_next(page, b)) {
    // only links to block starts of this page, at most capacity of them: a
    // list that misuse damaged stays as it is (it is reported on reuse)
    if (!blocks.has_block(b) || ++n > page->capacity) return 0;
    const size_t i = static_cast<size_t>(blocks.offset(b) / page->block_size);
    if (bit_of(bits, i)) return 0;  // a loop
    bits[i / 64] |= uint64_t{1} << (i % 64);
  }
  park_store(page, bits);
  page->free = nullptr;
  page->free_is_zero = 0;
  page->free_parked = 1;

  // Runs of free blocks (and the blocks past capacity, never handed out
  // since the page was set up), each discarded by its whole OS pages.
  const size_t os_page = os_page_size();
  const size_t reserved = page->reserved;
  const size_t capacity = page->capacity;
  uint8_t* const start = page->page_start;
  size_t discarded = 0;
  for (size_t i = 0; i < reserved;) {
    if (i < capacity && !bit_of(bits, i)) {
      i++;
      continue;
    }
    size_t j = i + 1;
    while (j < reserved && (j >= capacity || bit_of(bits, j))) j++;
    const uintptr_t lo = align_up(reinterpret_cast<uintptr_t>(start + i * page->block_size), os_page);
    const uintptr_t hi = reinterpret_cast<uintptr_t>(start + j * page->block_size) & ~(os_page - 1);
    if (hi > lo && os_discard(reinterpret_cast<void*>(lo), hi - lo, segment->memid.account)) discarded += hi - lo;
    i = j;
  }
  return discarded;
}

// Purges the free blocks of every page in use of `segment` (held alone).
size_t segment_purge_free_blocks(Segment* segment) {
  segment_fork_mend(segment);
  if (segment->memid.is_pinned || segment->page_kind == PageKind::huge) return 0;
  size_t discarded = 0;
  for (size_t i = 0; i < segment->capacity; i++) {
    Page* page = &segment->pages[i];
    if (!page->segment_in_use || page->free_parked) continue;
    page_free_collect(page, true);  // other threads' frees since the exit too
    discarded += page_park_and_discard(segment, page);
  }
  return discarded;
}

}  // namespace

void page_free_unpark(Page* page) noexcept {
  if (!page->free_parked) return;
  uint64_t bits[2];
  park_load(page, bits);
  page->next = page->prev = nullptr;
  page->free_parked = 0;
  // rebuilt from the highest block down: the list runs in address order
  Block* head = nullptr;
  for (size_t i = page->capacity; i-- > 0;) {
    if (!bit_of(bits, i)) continue;
    Block* b = reinterpret_cast<Block*>(page->page_start + i * page->block_size);
    block_set_next(page, b, head);
    head = b;
  }
  page->free = head;
}

void page_free_drop_parked(Page* page) noexcept {
  page->next = page->prev = nullptr;
  page->free_parked = 0;
  page->free = nullptr;
}

namespace {

size_t purge_abandoned(bool force, size_t max_segments) {
  if (abandoned_unpurged_n.load(std::memory_order_relaxed) == 0) return 0;
  const long delay = option_get(mi_option_purge_delay);
  if (delay < 0 && !force) return 0;
  // Due: abandoned at least purge_delay * arena_purge_mult ago (force: all
  // of them), as a freed segment's memory in its arena: memory no thread
  // owns, which threads that come and go take over soon. After purge_delay
  // alone, larson with threads replaced every 5000 operations faulted 41%
  // more (22.6 K faults against 16.1 K): segments purged a moment before
  // the next thread reclaimed them.
  const int64_t wait = static_cast<int64_t>(delay) * option_get_clamp(mi_option_arena_purge_mult, 1, 1000);
  const int64_t before = force ? INT64_MAX : os_clock_ms() - wait;
  size_t discarded = 0;
  for (size_t k = 0; k < max_segments || force; k++) {
    Segment* segment = abandoned_pop_to_purge(before);
    if (segment == nullptr) break;
    discarded += segment_purge_free_blocks(segment);
    abandoned_push_purged(segment);
  }
  return discarded;
}

}  // namespace

size_t heap_purge_abandoned_off_node(int node) noexcept {
  if (node < 0 || option_get(mi_option_purge_delay) < 0) return 0;
  if (abandoned_unpurged_n.load(std::memory_order_relaxed) == 0) return 0;
  // Not purged yet and bound to another node. Unbound segments are left to
  // the delay: a thread of any node may take them over.
  auto off_node = [](const Segment* s, const void* arg) {
    const int home = *static_cast<const int*>(arg);
    return !s->abandoned_purged && s->numa_node >= 0 && s->numa_node != home;
  };
  size_t discarded = 0;
  // each segment popped is pushed back purged: at most the list's length
  for (size_t n = abandoned_count(); n > 0; n--) {
    Segment* segment = abandoned_pop(off_node, &node, SIZE_MAX);
    if (segment == nullptr) break;
    discarded += segment_purge_free_blocks(segment);
    abandoned_push_purged(segment);
  }
  return discarded;
}

size_t heap_purge_abandoned(bool force) noexcept { return purge_abandoned(force, SEGMENTS_PER_CALL); }

size_t heap_purge_abandoned_all_due(bool force) noexcept { return purge_abandoned(force, SIZE_MAX); }

}  // namespace mi
