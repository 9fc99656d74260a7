// Unit tests of lib/heap/cross_cache: a thread that frees blocks of another
// thread's page keeps them and hands them out again to its own allocations of
// that size (calloc'd ones cleared); they stay in use in their page meanwhile
// and go back to it when the thread collects or exits; at most option
// cross_thread_cache bytes are kept; blocks over 1 KiB are kept on a list
// per size class up to 128 KiB; blocks over that, of heaps the program made,
// of pages of another node's tag, are not kept, nor any with the option 0 or
// in the hardened build; the invariant walker checks the lists.
//
// The owner is a thread of its own (a fresh heap: its blocks are consecutive
// in one page); the freeing thread another, which allocated once (init_thread)
// and so has a heap, but no page of the tests' sizes.
#include "heap/cross_cache.h"

#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

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

Page* page_of(const void* p) { return mi::segment_page_of(mi::segmap_segment_of(p), p); }
size_t thread_free_count(const Page* pg) { return mi::thread_free_count(pg->xthread_free.load()); }
mi::Tld* my_tld() { return mi::heap_get_default()->tld; }
// What the calling thread holds, by its lists (and, while it keeps blocks,
// by its count too).
size_t held_bytes() {
  const mi::Tld* tld = my_tld();
  size_t bytes = 0;
  for (size_t w = 0; w <= mi::SMALL_WSIZE_MAX; w++) {
    for (const mi::Block* b = tld->cross_free[w]; b != nullptr; b = reinterpret_cast<const mi::Block*>(b->link)) {
      bytes += w * mi::WORD_SIZE;
    }
  }
  for (size_t i = 0; i < mi::FULL_HELD_BINS; i++) {
    for (const mi::Block* b = tld->cross_medium[i]; b != nullptr; b = reinterpret_cast<const mi::Block*>(b->link)) {
      bytes += mi::bin_block_sizes[mi::FULL_HELD_BIN0 + i];
    }
  }
  if (tld->cross_tag != 0) {
    EXPECT_EQ(bytes, tld->cross_limit - tld->cross_room);
  }
  return bytes;
}

#define SKIP_IF_SECURE()                                                                               \
  do {                                                                                                 \
    if (MI_SECURE) GTEST_SKIP() << "the hardened build keeps no other thread's block (checked frees)"; \
  } while (0)

// The option for the threads started while it lives.
class CrossCacheOption {
 public:
  explicit CrossCacheOption(long kib) : saved_(mi_option_get(mi_option_cross_thread_cache)) {
    mi_option_set(mi_option_cross_thread_cache, kib);
  }
  ~CrossCacheOption() { mi_option_set(mi_option_cross_thread_cache, saved_); }

 private:
  long saved_;
};

// An owner thread allocates n blocks with `alloc` (one page, unless
// one_page is false: then `page` is the first block's); another thread (with
// a heap) runs freer(blocks, page) and exits; then the owner runs
// after(blocks, page), takes back what was freed into its page and frees the
// blocks from first_left on.
template <class Alloc, class Freer, class After>
void owner_and_freer(size_t n, Alloc alloc, size_t first_left, Freer freer, After after, bool one_page = true) {
  Signal allocated, freed;
  std::vector<void*> blocks;
  Page* pg = nullptr;
  std::thread owner([&] {
    for (size_t i = 0; i < n; i++) blocks.push_back(alloc());
    pg = page_of(blocks[0]);
    if (one_page) {
      for (void* b : blocks) EXPECT_EQ(page_of(b), pg) << "one page";
    }
    allocated.raise();
    freed.wait();
    after(blocks, pg);
    for (size_t i = first_left; i < n; i++) mi_free(blocks[i]);
    mi_collect(false);
  });
  allocated.wait();
  std::thread([&] {
    init_thread();
    freer(blocks, pg);
  }).join();
  freed.raise();
  owner.join();
}

// The owner's `after`: it takes back every block the freeing thread freed
// (or gave back as it exited) into its page.
void owner_takes_all_back(std::vector<void*>&, Page* pg) {
  mi_collect(false);
  EXPECT_EQ(pg->used, 0u);
}

// The owner allocates n blocks of `size` in one page; the freeing thread
// frees them all (kept: in use in their page, none sent to the owner), then
// allocates n of `ask` bytes (a size of the same class): the kept blocks,
// the last freed first, each once; the owner gets them back when the freeing
// thread has exited.
void expect_kept_and_handed_out_again(size_t n, size_t size, size_t ask) {
  owner_and_freer(
      n, [=] { return mi_malloc(size); }, n,
      [&](std::vector<void*>& blocks, Page* pg) {
        for (void* b : blocks) mi_free(b);
        EXPECT_EQ(pg->used, n) << "kept blocks stay in use in their page";
        EXPECT_EQ(thread_free_count(pg), 0u) << "none sent to the owner";
        EXPECT_EQ(held_bytes(), n * size);
        std::vector<void*> again;
        for (size_t i = 0; i < n; i++) again.push_back(mi_malloc(ask));
        EXPECT_EQ(again[0], blocks[n - 1]) << "the block freed last comes first (its line is in cache)";
        std::sort(again.begin(), again.end());
        std::vector<void*> sorted = blocks;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(again, sorted) << "every kept block handed out again, none twice";
        EXPECT_EQ(held_bytes(), 0u);
        EXPECT_EQ(pg->used, n);
        EXPECT_TRUE(mi::heap_is_valid(mi::heap_get_default()));
        for (void* b : again) mi_free(b);  // kept again, given back at the exit
      },
      [&](std::vector<void*>&, Page* pg) {
        EXPECT_EQ(pg->used, n) << "in use until the owner takes what the freeing thread gave back as it exited";
        mi_collect(false);
        EXPECT_EQ(pg->used, 0u);
      });
}

TEST(CrossCache, AnotherThreadsBlockIsHandedOutAgainByTheThreadThatFreedIt) {
  SKIP_IF_SECURE();
  expect_kept_and_handed_out_again(64, 64, 64);
}

TEST(CrossCache, CallocOfAKeptBlockIsCleared) {
  SKIP_IF_SECURE();
  constexpr size_t kSize = 96;
  owner_and_freer(
      8,
      [] {
        void* p = mi_malloc(kSize);
        memset(p, 0xab, kSize);
        return p;
      },
      8,
      [&](std::vector<void*>& blocks, Page*) {
        for (void* b : blocks) mi_free(b);
        std::vector<unsigned char*> again;
        for (size_t i = 0; i < blocks.size(); i++) {
          auto* p = static_cast<unsigned char*>(mi_calloc(1, kSize));
          EXPECT_EQ(p, blocks[blocks.size() - 1 - i]);
          EXPECT_EQ(std::count(p, p + kSize, 0), static_cast<long>(kSize)) << i;
          again.push_back(p);
        }
        for (unsigned char* p : again) mi_free(p);
      },
      [](std::vector<void*>&, Page*) {});
}

TEST(CrossCache, ACollectGivesTheKeptBlocksBack) {
  SKIP_IF_SECURE();
  owner_and_freer(
      32, [] { return mi_malloc(48); }, 32,
      [&](std::vector<void*>& blocks, Page* pg) {
        for (void* b : blocks) mi_free(b);
        EXPECT_EQ(held_bytes(), 32u * 48u);
        mi_collect(false);
        EXPECT_EQ(held_bytes(), 0u);
        EXPECT_EQ(my_tld()->cross_room, my_tld()->cross_limit);
        EXPECT_EQ(pg->used, 32u) << "on their way to the owner (a batch)";
      },
      owner_takes_all_back);
}

TEST(CrossCache, AtMostTheOptionsBytesAreKept) {
  SKIP_IF_SECURE();
  CrossCacheOption four_kib(4);
  constexpr size_t kBlocks = 64 + mi::CROSS_FIRST_LOOK - 1;  // (no look yet at whether it reuses them)
  owner_and_freer(
      kBlocks, [] { return mi_malloc(64); }, kBlocks,
      [&](std::vector<void*>& blocks, Page*) {
        EXPECT_EQ(my_tld()->cross_limit, 4096u);
        for (void* b : blocks) mi_free(b);
        EXPECT_EQ(held_bytes(), 4096u) << "64 blocks of 64 bytes";
        EXPECT_EQ(my_tld()->cross_room, 0u);
      },
      owner_takes_all_back);
}

TEST(CrossCache, AThreadThatDoesNotReuseWhatItKeepsGivesItBack) {
  SKIP_IF_SECURE();
  CrossCacheOption four_kib(4);
  constexpr size_t kFill = 64, kFirst = mi::CROSS_FIRST_LOOK, kLook = mi::CROSS_FULL_LOOK;
  constexpr size_t kBlocks = kFill + 1 + kFirst + kLook;
  owner_and_freer(
      kBlocks, [] { return mi_malloc(64); }, kBlocks,
      [&](std::vector<void*>& blocks, Page*) {
        size_t next = 0;
        for (; next < kFill; next++) mi_free(blocks[next]);
        EXPECT_EQ(held_bytes(), 4096u) << "the bound reached";
        void* again = mi_malloc(64);  // one reused
        EXPECT_EQ(again, blocks[kFill - 1]);
        for (size_t i = 0; i < 1 + kFirst; i++) mi_free(blocks[next++]);
        EXPECT_EQ(held_bytes(), 4096u) << "a thread that reuses its kept blocks keeps them";
        EXPECT_NE(my_tld()->cross_tag, 0u);
        for (size_t i = 0; i < kLook; i++) mi_free(blocks[next++]);
        EXPECT_EQ(held_bytes(), 0u) << "none reused while " << kLook << " more frees passed: all given back";
        EXPECT_EQ(my_tld()->cross_tag, 0u) << "and none kept";
        mi_free(again);
        EXPECT_EQ(held_bytes(), 0u);
        mi_collect(false);
        EXPECT_NE(my_tld()->cross_tag, 0u) << "a collect keeps them again";
        EXPECT_TRUE(mi::cross_cache_is_valid(my_tld()));
      },
      owner_takes_all_back);
}

TEST(CrossCache, AThreadStartsWithASmallBoundAndMayHoldTheMostOnceItReuses) {
  SKIP_IF_SECURE();
  CrossCacheOption one_mib(1024);
  constexpr size_t kStart = mi::CROSS_START_BYTES / 64;  // blocks of 64 bytes it may hold at first
  constexpr size_t kBlocks = 2 * kStart + 1 + mi::CROSS_FIRST_LOOK;
  owner_and_freer(
      kBlocks, [] { return mi_malloc(64); }, kBlocks,
      [&](std::vector<void*>& blocks, Page*) {
        mi::Tld* tld = my_tld();
        EXPECT_EQ(tld->cross_limit, mi::CROSS_START_BYTES);
        EXPECT_FALSE(tld->cross_reuses);
        size_t next = 0;
        for (; next < kStart; next++) mi_free(blocks[next]);
        EXPECT_EQ(held_bytes(), mi::CROSS_START_BYTES);
        void* again = mi_malloc(64);
        for (size_t i = 0; i < 1 + mi::CROSS_FIRST_LOOK; i++) mi_free(blocks[next++]);
        EXPECT_TRUE(tld->cross_reuses) << "it handed a held block out again";
        EXPECT_EQ(tld->cross_limit, 1024u * 1024u) << "the option's bound from then on";
        while (next < kBlocks) mi_free(blocks[next++]);
        EXPECT_EQ(held_bytes(), (kBlocks - mi::CROSS_FIRST_LOOK - 1) * 64)
            << "every free kept but those that passed before the look (and the one handed out again)";
        mi_free(again);
        mi_collect(false);
        EXPECT_EQ(tld->cross_limit, 1024u * 1024u) << "a collect keeps the bound of a thread that reuses";
      },
      [](std::vector<void*>&, Page*) {}, false);
}

TEST(CrossCache, AnAlignedBlockComesFromTheThreadsOwnPages) {
  SKIP_IF_SECURE();
  // mi_malloc_aligned(65, 128) takes a block of 65 + 127 bytes (192) and
  // flags its page as holding aligned blocks when the block's start is not
  // aligned: only a page of the thread's own may be flagged.
  constexpr size_t kBlocks = 32;
  owner_and_freer(
      kBlocks, [] { return mi_malloc(192); }, kBlocks,
      [&](std::vector<void*>& blocks, Page* pg) {
        for (void* b : blocks) mi_free(b);
        const size_t held = held_bytes();
        EXPECT_EQ(held, kBlocks * 192u);
        const uintptr_t owner_word = pg->xowner.load();
        std::vector<void*> aligned;
        for (size_t i = 0; i < 8; i++) {
          void* p = mi_malloc_aligned(65, 128);
          EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 128, 0u);
          EXPECT_EQ(mi::page_owner(page_of(p)), mi::thread_id()) << "a block of the thread's own pages";
          aligned.push_back(p);
        }
        EXPECT_EQ(held_bytes(), held) << "no kept block taken";
        EXPECT_EQ(pg->xowner.load(), owner_word) << "the other thread's page unchanged";
        for (void* p : aligned) mi_free(p);
      },
      owner_takes_all_back);
}

// `alloc` makes blocks another thread does not keep when it frees them.
template <class Alloc>
void expect_not_kept(Alloc alloc, const char* what, bool one_page = true) {
  owner_and_freer(
      16, alloc, 16,
      [&](std::vector<void*>& blocks, Page*) {
        for (void* b : blocks) mi_free(b);
        EXPECT_EQ(held_bytes(), 0u) << what;
      },
      [](std::vector<void*>&, Page*) {}, one_page);
}

TEST(CrossCache, BlocksOfHeapsTheProgramMadeAreNotKept) {
  SKIP_IF_SECURE();
  // (the heaps outlive the owner: their pages are abandoned or taken back)
  mi_heap_t* destroyable = nullptr;
  expect_not_kept(
      [&] {
        if (destroyable == nullptr) destroyable = mi_heap_new();
        return mi_heap_malloc(destroyable, 64);
      },
      "a heap mi_heap_destroy may free whole");
  mi_heap_t* kept = nullptr;
  expect_not_kept(
      [&] {
        if (kept == nullptr) kept = mi_heap_new_ex(0, false, 0);
        return mi_heap_malloc(kept, 64);
      },
      "a heap the program made, not destroyable");
}

// Above the direct sizes, up to the medium ones: on a list per size class
// (a block cache's 4 KiB blocks evicted by another thread than the one that
// read them), handed out where the allocation finds no free block at hand
// in its queue's first page.
TEST(CrossCache, BlocksOverOneKibAreKeptByTheirSizeClass) {
  SKIP_IF_SECURE();
  // (the freeing thread's 4 KiB queue is empty: its allocations take them)
  expect_kept_and_handed_out_again(12, 4096, 4096 - 10);
}

TEST(CrossCache, BlocksOverTheMediumSizesAreNotKept) {
  SKIP_IF_SECURE();
  expect_not_kept([] { return mi_malloc(256 * 1024); }, "256 KiB blocks", false);
}

TEST(CrossCache, NothingIsKeptWithTheOptionZero) {
  CrossCacheOption off(0);
  expect_not_kept([] { return mi_malloc(64); }, "cross_thread_cache 0");
}

TEST(CrossCache, BlocksOfAnotherNodesPagesAreNotKept) {
  SKIP_IF_SECURE();
  // The page says which node it is on (segment_in_use): a page of node 5
  // for a thread of this machine's node (or of none, one node in use).
  uint8_t tag = 0;
  owner_and_freer(
      16, [] { return mi_malloc(64); }, 16,
      [&](std::vector<void*>& blocks, Page* pg) {
        tag = pg->segment_in_use;
        EXPECT_EQ(tag, my_tld()->cross_tag) << "a page of the thread's node";
        mi::page_in_use_kind_set(pg, mi::page_shared_tag(5));
        for (void* b : blocks) mi_free(b);
        EXPECT_EQ(held_bytes(), 0u);
      },
      [&](std::vector<void*>&, Page* pg) { mi::page_in_use_kind_set(pg, tag); });
}

TEST(CrossCache, AForkChildSendsTheKeptBlocksOfThreadsThatDidNotComeAlong) {
  SKIP_IF_SECURE();
  constexpr size_t kBlocks = 24;
  Signal allocated, kept, done;
  std::vector<void*> blocks;
  Page* pg = nullptr;
  std::thread owner([&] {
    for (size_t i = 0; i < kBlocks; i++) blocks.push_back(mi_malloc(64));
    pg = page_of(blocks[0]);
    allocated.raise();
    done.wait();
    mi_collect(false);
  });
  allocated.wait();
  std::thread freer([&] {
    init_thread();
    for (void* b : blocks) mi_free(b);
    kept.raise();
    done.wait();
  });
  kept.wait();
  const size_t before = thread_free_count(pg);
  const pid_t pid = fork();
  if (pid == 0) {
    // neither thread came along: the freeing thread's kept blocks are on the page's thread-free list
    alarm(20);
    _exit(thread_free_count(pg) == before + kBlocks && pg->used == kBlocks ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  done.raise();
  freer.join();
  owner.join();
}

// An owner that allocates no more (a main thread waiting for its workers)
// never takes back what other threads freed into its page; a thread that
// keeps one of the page's blocks takes them all onto its held blocks (if
// its room allows) and hands them out again. idle_owner_page: the owner
// fills a page of kStealSize blocks and one of kStealSize + 16 (an
// allocation more of each sends them to its full queue) and waits; a thread
// that keeps none (option 0) frees kStealFreed of each, one page after the
// other, so none makes a run for a batch: they wait on the pages'
// thread-free lists (the first of each on the heap's delayed-free list: the
// page is full). Then run(blocks of the full page, that page) in a thread of
// its own; the owner frees what is left and collects.
constexpr size_t kStealSize = 64, kStealFreed = 40;
// (full false: the owner allocates 100 blocks of each size, its pages stay
// in their queues, and the frees wait on the thread-free lists all.)
template <class Run>
void idle_owner_page(Run run, bool full = true) {
  Signal allocated, done;
  std::vector<void*> a, b, rest;
  Page* pg = nullptr;
  std::thread owner([&] {
    a.push_back(mi_malloc(kStealSize));
    pg = page_of(a[0]);
    while (full || a.size() < 100) {
      void* p = mi_malloc(kStealSize);
      if (page_of(p) != pg) {
        rest.push_back(p);
        break;
      }
      a.push_back(p);
    }
    b.push_back(mi_malloc(kStealSize + 16));
    while (full || b.size() < 100) {
      void* p = mi_malloc(kStealSize + 16);
      if (page_of(p) != page_of(b[0])) {
        rest.push_back(p);
        break;
      }
      b.push_back(p);
    }
    allocated.raise();
    done.wait();
    for (size_t i = kStealFreed + 1; i < b.size(); i++) mi_free(b[i]);
    for (void* p : rest) mi_free(p);
    mi_collect(false);
  });
  allocated.wait();
  ASSERT_EQ(mi::page_in_full(pg), full) << "in its owner's full queue";
  {
    CrossCacheOption none(0);
    std::thread([&] {
      init_thread();
      for (size_t i = 0; i <= kStealFreed; i++) {
        mi_free(a[i]);
        mi_free(b[i]);
      }
    }).join();
  }
  EXPECT_EQ(thread_free_count(pg), full ? kStealFreed : kStealFreed + 1)
      << "on the page's thread-free list (a full page's first on the heap's delayed list)";
  std::thread([&] {
    init_thread();
    run(a, pg);
  }).join();
  done.raise();
  owner.join();
}

TEST(CrossCache, AThreadTakesTheFreesAnIdleOwnerDoesNotCollect) {
  SKIP_IF_SECURE();
  static_assert(kStealFreed >= mi::CROSS_STEAL_MIN);
  idle_owner_page([](std::vector<void*>& a, Page* pg) {
    const uint32_t used = pg->used;
    mi_free(a[kStealFreed + 1]);  // kept: the page's list comes with it
    EXPECT_EQ(thread_free_count(pg), 0u) << "the list taken";
    EXPECT_EQ(pg->used, used) << "still in use in the page, held by this thread";
    EXPECT_EQ(held_bytes(), (kStealFreed + 1) * kStealSize);
    EXPECT_EQ(my_tld()->cross_stolen, kStealFreed);
    mi::Invalid why;
    EXPECT_TRUE(mi::heap_is_valid(mi::heap_get_default(), &why)) << why.text;
    std::vector<void*> again;
    for (size_t i = 0; i <= kStealFreed; i++) again.push_back(mi_malloc(kStealSize));
    std::sort(again.begin(), again.end());
    std::vector<void*> freed(a.begin() + 1, a.begin() + kStealFreed + 2);
    std::sort(freed.begin(), freed.end());
    EXPECT_EQ(again, freed) << "the blocks taken are handed out again, each once";
    EXPECT_EQ(held_bytes(), 0u);
    for (void* p : again) mi_free(p);  // kept again, given back at the exit
    for (size_t i = kStealFreed + 2; i < a.size(); i++) mi_free(a[i]);
  });
}

TEST(CrossCache, APageOutsideItsOwnersFullQueueKeepsItsFrees) {
  SKIP_IF_SECURE();
  idle_owner_page(
      [](std::vector<void*>& a, Page* pg) {
        mi_free(a[kStealFreed + 1]);
        EXPECT_EQ(thread_free_count(pg), kStealFreed + 1) << "the owner takes them when it allocates from the page";
        EXPECT_EQ(held_bytes(), kStealSize);
        EXPECT_EQ(my_tld()->cross_stolen, 0u);
        for (size_t i = kStealFreed + 2; i < a.size(); i++) mi_free(a[i]);
      },
      false);
}

TEST(CrossCache, AListLargerThanTheRoomLeftStaysWithItsPage) {
  SKIP_IF_SECURE();
  CrossCacheOption one_kib(1);  // room for 16 blocks of 64 bytes
  idle_owner_page([](std::vector<void*>& a, Page* pg) {
    mi_free(a[kStealFreed + 1]);
    EXPECT_EQ(thread_free_count(pg), kStealFreed) << "more than its room: not taken";
    EXPECT_EQ(held_bytes(), kStealSize);
    EXPECT_EQ(my_tld()->cross_stolen, 0u);
    for (size_t i = kStealFreed + 2; i < a.size(); i++) mi_free(a[i]);
  });
}

TEST(CrossCache, TheWalkerChecksTheKeptBlocks) {
  SKIP_IF_SECURE();
  owner_and_freer(
      8, [] { return mi_malloc(64); }, 8,
      [&](std::vector<void*>& blocks, Page*) {
        for (void* b : blocks) mi_free(b);
        mi::Tld* tld = my_tld();
        mi::Invalid why, why_count, why_list;
        EXPECT_TRUE(mi::cross_cache_is_valid(tld, &why));
        // (nothing allocates while the lists are broken: a debug build's
        // slow path checks them)
        tld->cross_room -= 64;  // a block counted that is not on a list
        const bool count_ok = mi::cross_cache_is_valid(tld, &why_count);
        tld->cross_room += 64;
        tld->cross_free[128 / 8] = tld->cross_free[64 / 8];  // 64-byte blocks on the 128-byte list
        const bool list_ok = mi::cross_cache_is_valid(tld, &why_list);
        tld->cross_free[128 / 8] = nullptr;
        EXPECT_FALSE(count_ok);
        EXPECT_NE(strstr(why_count.text, "its count says"), nullptr) << why_count.text;
        EXPECT_FALSE(list_ok);
        EXPECT_NE(strstr(why_list.text, "128-byte blocks"), nullptr) << why_list.text;
        EXPECT_TRUE(mi::heap_is_valid(mi::heap_get_default(), &why)) << why.text;
      },
      [](std::vector<void*>&, Page*) {});
}

}  // namespace
