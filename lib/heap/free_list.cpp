// free_list.cpp: see free_list.h (the out-of-line parts: walks, the page of a
// block, the thread's random numbers).
#include "free_list.h"

#include <atomic>

#include "../os/os.h"
#include "../segment/segment.h"

namespace mi {

namespace {

// One seed per process from the kernel; each thread mixes in its own id, so
// one getrandom call serves every thread.
std::atomic<uint64_t> process_seed{0};

uint64_t process_random_seed() {
  uint64_t seed = process_seed.load(std::memory_order_relaxed);
  if (seed == 0) {
    uint64_t fresh = os_random_seed();
    if (process_seed.compare_exchange_strong(seed, fresh, std::memory_order_relaxed)) seed = fresh;
  }
  return seed;
}

// A 64-bit mix with good avalanche (every input bit flips about half of the
// output bits): xor-shifts and multiplies by odd constants.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Page* block_page(const Block* b) noexcept {
  const Segment* s = ptr_segment(b);
  return segment_page_of(s, b);
}

Block* block_next_any(const Block* b) noexcept { return block_next(block_page(b), b); }

namespace {

template <bool Exact>
size_t count_blocks(const Page* page, const PageBlocks& blocks, const Block* head, size_t limit, const Block** tail) {
  size_t n = 0;
  const Block* last = nullptr;
  for (const Block* b = head; b != nullptr; b = block_next(page, b)) {
    if (n >= limit || !(Exact ? blocks.has_block(b) : blocks.contains(b))) {
      if (tail != nullptr) *tail = last;
      return LIST_BAD;
    }
    n++;
    last = b;
  }
  if (tail != nullptr) *tail = last;
  return n;
}

}  // namespace

size_t free_list_count(const Page* page, const Block* head, size_t limit, const Block** tail, bool exact) noexcept {
  if (exact) return count_blocks<true>(page, page_blocks(page), head, limit, tail);
  const PageBlocks range{reinterpret_cast<uintptr_t>(page->page_start),
                         static_cast<uint64_t>(page->capacity) * page->block_size, 1};
  return count_blocks<false>(page, range, head, limit, tail);
}

bool free_list_contains(const Page* page, const Block* head, const Block* b, size_t limit) noexcept {
  const PageBlocks blocks = page_blocks(page);
  size_t n = 0;
  for (const Block* x = head; x != nullptr && n < limit && blocks.has_block(x); x = block_next(page, x), n++) {
    if (x == b) return true;
  }
  return false;
}

uint64_t tld_random(Tld* tld) noexcept {
  if (tld->random == 0) {
    tld->random = process_random_seed() ^ mix64(reinterpret_cast<uintptr_t>(tld) ^ thread_id());
    if (tld->random == 0) tld->random = 1;
  }
  // a counter that steps by an odd constant (every state once per 2^64 steps), mixed
  tld->random += 0x9E3779B97F4A7C15ull;
  return mix64(tld->random);
}

}  // namespace mi
