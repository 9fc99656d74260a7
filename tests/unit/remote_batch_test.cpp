// Unit tests of lib/heap/remote_batch: a run of frees into one page of
// another thread's reaches the owner as one batch and is freed there at once;
// lone frees and short runs go to the page's thread-free list as before; a
// batch for a thread that exited goes to the page (abandoned) instead; pages
// of a heap the program may destroy are never batched into; a thread that
// frees a run before it ever allocated gets a heap for it.
//
// Each test's owner is a thread of its own (a fresh heap: the blocks it
// allocates are consecutive in one page), the freeing thread another. The
// freeing thread keeps no blocks for itself (option cross_thread_cache 0,
// read as each thread starts: cross_cache_test.cpp tests that), so that its
// frees go to the owner.
#include "heap/remote_batch.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/stats.h"
#include "heap/free_list.h"
#include "heap/heap.h"
#include "heap/heap_check.h"
#include "heap/page.h"
#include "segment/segment.h"
#include "unit_util.h"

namespace {

using mi::Page;
using unit::init_thread;
using unit::Signal;

// The option for every thread the tests start.
class CrossCacheOff : public ::testing::Environment {
 public:
  void SetUp() override { mi_option_set(mi_option_cross_thread_cache, 0); }
};
const auto* const cross_cache_off = ::testing::AddGlobalTestEnvironment(new CrossCacheOff);

Page* page_of(const void* p) {
  mi::Segment* s = mi::segmap_segment_of(p);
  return (s->capacity == 1) ? &s->pages[0] : mi::segment_page_of(s, p);
}

size_t thread_free_count(const Page* pg) { return mi::thread_free_count(pg->xthread_free.load()); }

bool on_list(const mi::Block* list, const void* b) {
  for (; list != nullptr; list = mi::block_next_any(list)) {
    if (list == b) return true;
  }
  return false;
}

// The hardened build checks every free whole, one by one: it batches none.
#define SKIP_IF_SECURE()                                                 \
  do {                                                                   \
    if (MI_SECURE) GTEST_SKIP() << "the hardened build batches no free"; \
  } while (0)

// An owner thread's blocks of one size, all in one page.
std::vector<void*> alloc_in_one_page(size_t n, size_t size) {
  std::vector<void*> blocks;
  blocks.reserve(n);
  for (size_t i = 0; i < n; i++) blocks.push_back(mi_malloc(size));
  return blocks;
}

// An owner thread allocates n blocks of `size` (one page), another thread
// runs free_them(blocks) and exits, then the owner runs check(blocks, page)
// and frees the blocks from `first_left` on.
template <class FreeThem, class Check>
void owner_then_freer(size_t n, size_t size, size_t first_left, FreeThem free_them, Check check) {
  Signal allocated, freed;
  std::vector<void*> blocks;
  Page* pg = nullptr;
  std::thread owner([&] {
    blocks = alloc_in_one_page(n, size);
    pg = page_of(blocks[0]);
    for (void* b : blocks) EXPECT_EQ(page_of(b), pg);
    allocated.raise();
    freed.wait();
    check(blocks, pg);
    for (size_t i = first_left; i < blocks.size(); i++) mi_free(blocks[i]);
  });
  allocated.wait();
  std::thread([&] { free_them(blocks); }).join();
  freed.raise();
  owner.join();
}

TEST(RemoteBatch, ARunOfFreesReachesTheOwnerAsOneBatch) {
  SKIP_IF_SECURE();
  constexpr size_t kBlocks = 200, kFreed = 100;
  owner_then_freer(
      kBlocks, 64, kFreed,
      [&](std::vector<void*>& blocks) {
        init_thread();
        for (size_t i = 0; i < kFreed; i++) mi_free(blocks[i]);
        // (held until this thread's exit sends them)
      },
      [&](std::vector<void*>& blocks, Page* pg) {
        mi::Tld* tld = mi::heap_get_default()->tld;
        // the first free went to the page at once, the rest wait as one batch
        EXPECT_EQ(thread_free_count(pg), 1u);
        EXPECT_TRUE(mi::remote_batch_waiting(tld));
        const uint32_t used_before = pg->used;
        EXPECT_EQ(used_before, kBlocks) << "blocks on their way count as in use";
        const int account = page_segment(pg)->memid.account;
        const int64_t remote0 = tld->stats.remote_frees[account];
        mi::remote_batch_receive(tld);
        EXPECT_FALSE(mi::remote_batch_waiting(tld));
        EXPECT_EQ(pg->used, used_before - (kFreed - 1)) << "the batch's blocks are freed at once";
        EXPECT_EQ(tld->stats.remote_frees[account] - remote0, static_cast<int64_t>(kFreed - 1))
            << "counted as other threads' frees";
        for (size_t i = 1; i < kFreed; i++) EXPECT_TRUE(on_list(pg->local_free, blocks[i])) << i;
        EXPECT_TRUE(mi::page_is_valid(pg));
        EXPECT_TRUE(mi::heap_is_valid(mi::heap_get_default()));
      });
}

TEST(RemoteBatch, LoneFreesAndShortRunsGoToTheThreadFreeList) {
  void* other[4];
  for (void*& o : other) o = mi_malloc(48);  // a page of this thread's
  owner_then_freer(
      64, 48, 6,
      [&](std::vector<void*>& blocks) {
        mi_free(blocks[0]);
        mi_free(blocks[1]);
        mi_free(blocks[2]);
        mi_free(other[0]);  // a free into another page ends the run of three, sent singly
        for (size_t i = 3; i < 6; i++) {
          mi_free(blocks[i]);
          mi_free(other[i - 2]);  // lone frees: a free into another page between each two
        }
      },
      [&](std::vector<void*>&, Page* pg) {
        // a run of three (below REMOTE_BATCH_MIN) and three lone frees
        EXPECT_EQ(thread_free_count(pg), 3u + 3u);
        EXPECT_FALSE(mi::remote_batch_waiting(mi::heap_get_default()->tld));
      });
}

TEST(RemoteBatch, ABatchForAThreadThatExitedGoesToItsPage) {
  SKIP_IF_SECURE();
  constexpr size_t kBlocks = 100, kFreed = 50, kHeld = kFreed - 1;  // (the run's first is freed at once)
  Signal allocated, held, owner_gone, sent;
  std::vector<void*> blocks;
  Page* pg = nullptr;
  std::thread owner([&] {
    blocks = alloc_in_one_page(kBlocks, 64);
    pg = page_of(blocks[0]);
    allocated.raise();
    held.wait();
    for (size_t i = kFreed; i < kBlocks; i++) mi_free(blocks[i]);
  });
  allocated.wait();
  std::thread freer([&] {
    init_thread();
    for (size_t i = 0; i < kFreed; i++) mi_free(blocks[i]);
    held.raise();
    owner_gone.wait();
    // the owner exited: its page was abandoned with the held blocks in use;
    // the batch cannot go to it any more
    mi_collect(false);  // sends what this thread holds
    sent.raise();
  });
  owner.join();
  owner_gone.raise();
  sent.wait();
  freer.join();
  // the first block went at once (and its owner took it back as it
  // exited), the held ones one by one when sent
  EXPECT_EQ(mi::page_owner(pg), 0u) << "abandoned";
  EXPECT_EQ(pg->used, kHeld) << "the held blocks were in use at the owner's exit";
  EXPECT_EQ(thread_free_count(pg), kHeld);
  mi_collect(true);  // takes the abandoned segment over: its page is empty
}

TEST(RemoteBatch, HeapsThatMayBeDestroyedAreNotBatchedInto) {
  Signal allocated, freed;
  std::vector<void*> blocks;
  Page* pg = nullptr;
  std::thread owner([&] {
    mi_heap_t* heap = mi_heap_new();
    for (int i = 0; i < 64; i++) blocks.push_back(mi_heap_malloc(heap, 64));
    pg = page_of(blocks[0]);
    EXPECT_FALSE(mi::page_is_batched(pg));
    allocated.raise();
    freed.wait();
    EXPECT_EQ(thread_free_count(pg), 32u) << "every free on the page's list";
    EXPECT_FALSE(mi::remote_batch_waiting(mi::heap_get_default()->tld));
    mi_heap_destroy(heap);
  });
  allocated.wait();
  std::thread([&] {
    for (int i = 0; i < 32; i++) mi_free(blocks[i]);
  }).join();
  freed.raise();
  owner.join();
}

TEST(RemoteBatch, AThreadThatFreesARunBeforeItAllocatesGetsAHeap) {
  SKIP_IF_SECURE();
  MI_SKIP_IF_ASAN_STARTS_THREADS();
  bool empty_after_one = false, empty_after_run = true;
  owner_then_freer(
      64, 64, 12,
      [&](std::vector<void*>& blocks) {
        mi_free(blocks[0]);  // one free needs no heap
        empty_after_one = (mi::tls_heap_default == &mi::heap_empty);
        for (size_t i = 1; i < 12; i++) mi_free(blocks[i]);
        empty_after_run = (mi::tls_heap_default == &mi::heap_empty);
      },
      [&](std::vector<void*>&, Page* pg) {
        EXPECT_TRUE(mi::page_is_batched(pg));
        mi::remote_batch_receive(mi::heap_get_default()->tld);
        EXPECT_EQ(thread_free_count(pg), 2u) << "the lone free and the run's first";
        EXPECT_EQ(pg->used, 64u - 10u) << "(blocks on the thread-free list count as in use)";
      });
  EXPECT_TRUE(empty_after_one);
  EXPECT_FALSE(empty_after_run);
}

}  // namespace
