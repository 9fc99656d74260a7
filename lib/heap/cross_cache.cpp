// cross_cache.cpp: blocks of other threads' pages kept by the thread that
// freed them (cross_cache.h says why and which).
#include "cross_cache.h"

#include "../common/options.h"
#include "../segment/segment.h"
#include "../topology/topology.h"
#include "free_list.h"
#include "heap.h"
#include "page.h"
#include "remote_batch.h"

namespace mi {

namespace {

// The segment_in_use of the pages whose blocks a thread of `node` may keep
// (-1: the thread has not allocated yet, or one node is in use).
uint8_t cross_tag_of(int node) {
  return page_shared_tag(numa_nodes_in_use.load(std::memory_order_relaxed) > 1 ? node : -1);
}

// Takes every held block off the lists and hands it to `give`, and keeps
// none from then on (cross_tag 0: a free that `give` makes is not kept
// again; cross_cache_open opens it again).
template <typename Give>
void cross_cache_drain(Tld* tld, Give give) {
  tld->cross_tag = 0;
  tld->cross_room = 0;
  auto drain = [&](Block*& head) {
    while (head != nullptr) {
      Block* block = head;
      head = reinterpret_cast<Block*>(block->link);
      give(block);
    }
  };
  for (Block*& head : tld->cross_free) drain(head);
  for (Block*& head : tld->cross_medium) drain(head);
}

// A held block back to its page: the calling thread's own (it may have taken
// the page over since: a reclaimed segment), another live thread's (runs of
// one page go as a batch) or an exited thread's.
void give_back(Block* block) {
  Page* page = block_page(block);
  const uintptr_t owner = page_owner(page);
  if (owner == thread_id()) free_block_local_slow(page, block);
  else if (owner != 0) remote_free(page, block, owner);
  else free_block_remote(page, block);
}

}  // namespace

uint8_t page_in_use_kind(const Page* page, const Heap* heap) noexcept {
  if (heap == nullptr || heap->no_reclaim) return PAGE_IN_USE;
  if (MI_SECURE != 0 || heap != heap->tld->heap_backing || heap->arena_id != 0 || heap->tag != 0) {
    return PAGE_IN_USE_BATCHED;
  }
  const int node = numa_nodes_in_use.load(std::memory_order_relaxed) > 1 ? page_segment(page)->numa_node : -1;
  return page_shared_tag(node);
}

void cross_cache_open(Tld* tld) noexcept {
  const long kib = (MI_SECURE != 0) ? 0 : option_get(mi_option_cross_thread_cache);
  size_t limit = static_cast<size_t>(kib) * 1024;
  const size_t share = CROSS_PROCESS_BYTES / (thread_count() + 1);  // (a starting thread is not counted yet)
  if (limit > share) limit = share;
  tld->cross_max = limit;
  // a thread that showed it reuses what it holds keeps its bound (a collect)
  if (!tld->cross_reuses && limit > CROSS_START_BYTES) limit = CROSS_START_BYTES;
  tld->cross_limit = limit;
  tld->cross_room = limit;
  tld->cross_tag = (limit > 0) ? cross_tag_of(tld->node) : 0;
  tld->cross_taken_then = tld->cross_taken;
  tld->cross_passed = 0;
}

void cross_cache_passed(Tld* tld, Page* page, Block* block, uintptr_t owner) noexcept {
  if (++tld->cross_passed >= (tld->cross_reuses ? CROSS_FULL_LOOK : CROSS_FIRST_LOOK)) {
    tld->cross_passed = 0;
    if (tld->cross_taken != tld->cross_taken_then) {
      // it reuses them: it keeps what it holds, and may hold the most
      tld->cross_taken_then = tld->cross_taken;
      tld->cross_reuses = true;
      tld->cross_room += tld->cross_max - tld->cross_limit;
      tld->cross_limit = tld->cross_max;
    } else {
      // none reused since the last look: all back (cross_cache_flush, at the
      // next collect, opens it again, with the bound it starts with)
      cross_cache_drain(tld, give_back);
      tld->cross_reuses = false;
    }
  }
  remote_free_run(tld, page, block, owner);
}

void cross_cache_steal(Tld* tld, Page* page) noexcept {
  // In its owner's full queue: the owner has not made an allocation slow
  // path since the first of those frees told it so (a thread that allocates
  // takes the page back into its queue there, and collects it when it
  // allocates from it).
  if ((page->xowner.load(std::memory_order_relaxed) & PAGE_IN_FULL) == 0) return;
  const size_t bsize = page->block_size;
  if (bsize > SMALL_SIZE_MAX) return;  // (the lists of the direct sizes only)
  // Only onto the block just kept, alone on its list: the list taken ends
  // the held list as it is, with no walk to its tail (a walk missed on every
  // block, whose link another thread's core wrote, one after the other:
  // larson 7% more CPU; allocated from the list, the misses come one per
  // allocation, as they would to the owner).
  Block* kept = *cross_cache_list(tld->cross_free, bsize);
  if (kept == nullptr || kept->link != 0) return;
  uintptr_t tfree = page->xthread_free.load(std::memory_order_relaxed);
  size_t count = 0;
  do {
    count = thread_free_count(tfree);
    if (thread_free_block(tfree) == nullptr || count < CROSS_STEAL_MIN || count * bsize > tld->cross_room) return;
    // (the state bits stay: a full page's owner still learns of the next free)
  } while (!page->xthread_free.compare_exchange_weak(tfree, static_cast<uintptr_t>(thread_free_delayed(tfree)),
                                                     std::memory_order_acq_rel, std::memory_order_relaxed));
  Block* head = thread_free_block(tfree);
  // the owner's collect's cheap test (page_thread_free_collect): a block
  // freed twice in a row loops on itself
  if (MI_UNLIKELY(reinterpret_cast<Block*>(head->link) == head)) {
    thread_free_bad(page, head);  // leaked, as the owner would
    return;
  }
  kept->link = reinterpret_cast<uintptr_t>(head);
  tld->cross_room -= count * bsize;
  tld->cross_stolen += count;
}

void cross_cache_flush(Tld* tld) noexcept {
  if (tld->cross_room != tld->cross_limit) cross_cache_drain(tld, give_back);
  // (an exiting thread, closed already, stays closed: remote_batch_close came after cross_cache_close)
  if (!tld->remote_out.closed) cross_cache_open(tld);
}

void cross_cache_close(Tld* tld) noexcept {
  cross_cache_drain(tld, give_back);
  tld->cross_limit = tld->cross_max = 0;
}

void cross_cache_fork_orphan(Tld* tld) noexcept {
  // (single-threaded: only the forking thread runs in the child)
  cross_cache_drain(tld, [](Block* block) { page_thread_free_push_alone(block_page(block), block); });
  tld->cross_limit = tld->cross_max = 0;
}

bool cross_cache_is_valid(const Tld* tld, Invalid* why) noexcept {
  if (tld->cross_limit > tld->cross_max) {
    return invalid(why, "thread data %p: may hold %zu bytes of other threads' blocks, more than its %zu",
                   static_cast<const void*>(tld), tld->cross_limit, tld->cross_max);
  }
  if (tld->cross_room > tld->cross_limit) {
    return invalid(why, "thread data %p: may take %zu more bytes of other threads' blocks, more than its %zu",
                   static_cast<const void*>(tld), tld->cross_room, tld->cross_limit);
  }
  size_t bytes = 0;
  // the list `head` of blocks of `bsize` bytes
  auto list_is_valid = [&](const Block* head, size_t bsize) {
    for (const Block* b = head; b != nullptr; b = reinterpret_cast<const Block*>(b->link)) {
      const Segment* segment = segmap_segment_of(b);
      const Page* page = segment != nullptr ? segment_page_of(segment, b) : nullptr;
      if (page == nullptr || !page_is_in_use(page) || page->block_size != bsize ||
          (reinterpret_cast<const uint8_t*>(b) - page->page_start) % page->block_size != 0) {
        return invalid(why,
                       "thread data %p: block %p on its list of %zu-byte blocks of other threads is not a block "
                       "of a page of that size in use",
                       static_cast<const void*>(tld), static_cast<const void*>(b), bsize);
      }
      bytes += page->block_size;
      if (bytes > tld->cross_limit) {
        return invalid(why,
                       "thread data %p: its lists of other threads' blocks hold more than its %zu bytes (a cycle?)",
                       static_cast<const void*>(tld), tld->cross_limit);
      }
    }
    return true;
  };
  for (size_t w = 0; w <= SMALL_WSIZE_MAX; w++) {
    if (!list_is_valid(tld->cross_free[w], w * WORD_SIZE)) return false;
  }
  for (size_t i = 0; i < FULL_HELD_BINS; i++) {
    if (!list_is_valid(tld->cross_medium[i], bin_block_sizes[FULL_HELD_BIN0 + i])) return false;
  }
  if (tld->cross_tag == 0 && bytes != 0) {
    return invalid(why, "thread data %p: keeps no blocks of other threads, but holds %zu bytes of them",
                   static_cast<const void*>(tld), bytes);
  }
  if (tld->cross_tag != 0 && bytes != tld->cross_limit - tld->cross_room) {
    return invalid(why, "thread data %p: holds %zu bytes of other threads' blocks, its count says %zu",
                   static_cast<const void*>(tld), bytes, tld->cross_limit - tld->cross_room);
  }
  return true;
}

}  // namespace mi
