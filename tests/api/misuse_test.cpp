// Misuse of the heap, as a program commits it: malloc/free/malloc_usable_size
// through the shared library (which replaces them for this whole program),
// one test per case of issue 10, defect 4, and what each build promises:
//
//   case                          default build               secure option     secure build (-Dsecure=true)
//   write into a freed block      not detected                caught (collect)  abort: corrupted free list
//   free(p); free(p)              reported, leaked, never     abort             abort: double free
//                                 handed out twice
//   free(p + 16), small block     not detected                not detected      abort: not the start of a block
//   free(p + 4096), large/huge    reported, ignored           abort             abort
//   free past a large block's end reported, ignored           abort             abort
//   free of a freed large block   reported, ignored           abort             abort
//   double free by another thread reported, leaked            abort             abort
//   malloc_usable_size(p + 16)    reported, 0                 abort             abort
//
// Each case runs in a child process (gtest death tests, "threadsafe" style:
// the child is this binary started again, so it reads MIMALLOC_* afresh) and
// the test asserts the one message the library prints: the call, the
// pointer, its size class and what was wrong. In the default build the child
// then checks that the program runs on unharmed (the block left alone, no
// address handed out twice) and exits 0. MI_TEST_SECURE (tests/api/meson.build)
// says which library this binary is linked with; the library must agree
// (mi_option_is_enabled(mi_option_secure)).
#include <errno.h>
#include <malloc.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

#include "opaque.h"

#ifndef MI_TEST_SECURE
#define MI_TEST_SECURE 0
#endif

namespace {

// What follows a detection: the secure build (or option) aborts after its message.
const char* const ABORTS = "; aborting \\(secure mode\\)";

// The child's verdict: exit 0 if it ran on as promised, else 1 with the reason.
[[noreturn]] void child_exit(bool ok, const char* why) {
  if (!ok) fprintf(stderr, "child: %s\n", why);
  fflush(stderr);
  _exit(ok ? 0 : 1);
}

// n allocations of `size`, all live: are they distinct?
bool all_distinct(size_t n, size_t size) {
  std::set<void*> seen;
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    void* q = opaque(malloc(size));
    if (q == nullptr || !seen.insert(q).second) ok = false;
  }
  return ok;  // (left live: a child process that exits next)
}

class Misuse : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    unsetenv("MIMALLOC_SECURE");
  }
  void TearDown() override { unsetenv("MIMALLOC_SECURE"); }
};

// --- which library --------------------------------------------------------------

TEST_F(Misuse, TheLibraryIsTheBuildThisTestExpects) {
  EXPECT_EQ(mi_option_is_enabled(mi_option_secure), MI_TEST_SECURE != 0)
      << "the secure build reads the secure option as on; the default build as off (unset)";
}

// --- write after free -------------------------------------------------------------

// A pointer written into a freed block: glibc aborts ("unaligned tcache chunk
// detected"); the default build hands the address out (not detected: its
// fast path does not check links); the secure build's encoded link decodes
// outside the page and malloc aborts before handing anything out.
void write_after_free(void* target) {
  char* p = opaque(static_cast<char*>(malloc(64)));
  char* stale = opaque(p);  // the same pointer, out of the compiler's sight
  free(p);
  memcpy(stale, &target, sizeof(target));  // the program's bug: it still uses p
  for (int i = 0; i < 3000; i++) {
    if (opaque(malloc(64)) == target) child_exit(false, "malloc handed out the address written into a freed block");
  }
  child_exit(true, "");
}

TEST_F(Misuse, WriteAfterFreeIsCaughtBeforeTheAddressIsHandedOut) {
  if (!MI_TEST_SECURE) GTEST_SKIP() << "the default build does not check free-list links (see the secure option test)";
  static char target[256] __attribute__((aligned(64)));
  EXPECT_DEATH(write_after_free(target),
               "mimalloc-numa: error: malloc: corrupted free list: the free block at 0x[0-9a-f]+ \\(size class 64 "
               "bytes\\) links to 0x[0-9a-f]+, not a block of its page \\(a write after free, or an overflow of the "
               "block before it\\)" +
                   std::string(ABORTS));
}

// The secure option of the default build checks a local free list before its
// blocks are reused: a block written after its free is caught there.
TEST_F(Misuse, WriteAfterFreeIsCaughtByTheSecureOption) {
  if (MI_TEST_SECURE) GTEST_SKIP() << "covered by the secure build's test above";
  static char target[256] __attribute__((aligned(64)));
  setenv("MIMALLOC_SECURE", "1", 1);
  EXPECT_DEATH(write_after_free(target),
               "malloc: corrupted free list: the free block at 0x[0-9a-f]+ \\(size class 64 bytes\\) links to "
               "0x[0-9a-f]+, not a block of its page.*" +
                   std::string(ABORTS));
}

// --- double free --------------------------------------------------------------------

// free(p); free(p): before, the next 3000 malloc(64) returned 2938 addresses
// already handed out (the free list looped on p).
void double_free_then_allocate() {
  char* p = opaque(static_cast<char*>(malloc(64)));
  char* again = opaque(p);  // the same pointer, out of the compiler's sight (no use-after-free warning)
  free(p);
  free(again);  // the program's bug
  child_exit(all_distinct(3000, 64), "an address was handed out twice after the double free");
}

TEST_F(Misuse, DoubleFree) {
  if (MI_TEST_SECURE) {
    // found at the second free: the block's link decodes to a link, and the block is on the page's list
    EXPECT_DEATH(double_free_then_allocate(),
                 "mimalloc-numa: error: free\\(0x[0-9a-f]+\\): double free: the block \\(size class 64 bytes\\) is "
                 "free already" +
                     std::string(ABORTS));
  } else {
    // found at the second free (the page was full: the slow path compares
    // with the block freed last) or when the list is reused (it loops on the
    // block); its page's free blocks are dropped, and no address comes twice
    EXPECT_EXIT(double_free_then_allocate(), ::testing::ExitedWithCode(0),
                "mimalloc-numa: error: (free\\(0x[0-9a-f]+\\): double free: the block \\(size class 64 bytes\\) is "
                "free already; the block is left alone|malloc: double free: the block at 0x[0-9a-f]+ \\(size class "
                "64 bytes\\) is on its page's free list twice; the page's free blocks are leaked, none is handed "
                "out twice)");
  }
}

TEST_F(Misuse, DoubleFreeAbortsWithTheSecureOption) {
  if (MI_TEST_SECURE) GTEST_SKIP() << "the secure build: test DoubleFree";
  setenv("MIMALLOC_SECURE", "1", 1);
  EXPECT_DEATH(double_free_then_allocate(),
               "double free: the block.*\\(size class 64 bytes\\).*" + std::string(ABORTS));
}

// The error callback (mi_register_error) hears of it: EAGAIN, as mimalloc says a double free.
int g_error = 0;
void record_error(int err, void*) { g_error = err; }

void double_free_with_error_callback() {
  mi_register_error(record_error, nullptr);
  char* p = opaque(static_cast<char*>(malloc(64)));
  char* again = opaque(p);  // the same pointer, out of the compiler's sight (no use-after-free warning)
  free(p);
  free(again);  // the program's bug
  const bool distinct = all_distinct(200, 64);
  child_exit(distinct && g_error == EAGAIN, "the error callback did not get EAGAIN");
}

TEST_F(Misuse, DoubleFreeCallsTheErrorCallbackWithEagain) {
  if (MI_TEST_SECURE) GTEST_SKIP() << "the secure build aborts (after calling it)";
  EXPECT_EXIT(double_free_with_error_callback(), ::testing::ExitedWithCode(0), "double free");
}

// Another thread frees a block twice: its page's thread-free list loops.
void cross_thread_double_free() {
  char* p = opaque(static_cast<char*>(malloc(64)));
  std::thread([p] {
    char* again = opaque(p);
    free(p);
    free(again);
  }).join();
  child_exit(all_distinct(3000, 64), "an address was handed out twice after the double free");
}

TEST_F(Misuse, DoubleFreeByAnotherThread) {
  if (MI_TEST_SECURE) {
    EXPECT_DEATH(cross_thread_double_free(),
                 "free\\(0x[0-9a-f]+\\): double free: the block \\(size class 64 bytes\\) is free already" +
                     std::string(ABORTS));
  } else {
    // found when the owner takes the thread-free list: the list is leaked
    EXPECT_EXIT(cross_thread_double_free(), ::testing::ExitedWithCode(0),
                "mimalloc-numa: error: malloc: double free: the block at 0x[0-9a-f]+ \\(size class 64 bytes\\) is on "
                "its page's free list twice; the page's free blocks are leaked, none is handed out twice");
  }
}

// A large block (its own page) freed twice: the second free finds its page
// not in use (before: the count of blocks in use wrapped, silently).
void large_double_free() {
  char* p = opaque(static_cast<char*>(malloc(256 * 1024)));
  char* again = opaque(p);  // the same pointer, out of the compiler's sight (no use-after-free warning)
  free(p);
  free(again);  // the program's bug
  char* a = opaque(static_cast<char*>(malloc(256 * 1024)));
  char* b = opaque(static_cast<char*>(malloc(256 * 1024)));
  child_exit(a != nullptr && b != nullptr && a != b, "two live large blocks at one address");
}

TEST_F(Misuse, DoubleFreeOfALargeBlock) {
  const std::string msg =
      "free\\(0x[0-9a-f]+\\): not a block: its page holds no blocks \\(a double free of a large block, or a stale "
      "pointer\\)";
  if (MI_TEST_SECURE) {
    EXPECT_DEATH(large_double_free(), msg + ABORTS);
  } else {
    EXPECT_EXIT(large_double_free(), ::testing::ExitedWithCode(0), msg + "; ignored");
  }
}

// --- interior and out-of-range frees ---------------------------------------------

// free(p + 16) of a live 64-byte block: before, p + 16 was handed out later,
// overlapping p. The default build does not check small blocks' frees.
TEST_F(Misuse, InteriorFreeOfASmallBlock) {
  if (!MI_TEST_SECURE) GTEST_SKIP() << "the default build checks frees of large and huge blocks only";
  EXPECT_DEATH(
      {
        char* p = opaque(static_cast<char*>(malloc(64)));
        free(opaque(p + 16));
      },
      "mimalloc-numa: error: free\\(0x[0-9a-f]+\\): not the start of a block: 16 bytes into the block at 0x[0-9a-f]+ "
      "\\(size class 64 bytes\\)" +
          std::string(ABORTS));
}

// free(p + 4096) of a live block: before, the whole block was freed and the
// next malloc of its size returned p while the program still used it.
void interior_free(size_t size) {
  char* p = opaque(static_cast<char*>(malloc(size)));
  memset(p, 0x5a, size);
  free(opaque(p + 4096));
  char* q = opaque(static_cast<char*>(malloc(size)));
  bool intact = true;
  for (size_t i = 0; i < size; i += 4096) intact = intact && p[i] == 0x5a;
  child_exit(q != p && intact, "the block was freed by a pointer into it");
}

TEST_F(Misuse, InteriorFreeOfALargeBlock) {
  const std::string msg =
      "free\\(0x[0-9a-f]+\\): not the start of a block: 4096 bytes into the block at 0x[0-9a-f]+ \\(size class "
      "262144 bytes\\)";
  if (MI_TEST_SECURE) {
    EXPECT_DEATH(interior_free(256 * 1024), msg + ABORTS);
  } else {
    EXPECT_EXIT(interior_free(256 * 1024), ::testing::ExitedWithCode(0), msg + "; ignored");
  }
}

TEST_F(Misuse, InteriorFreeOfAHugeBlock) {
  const std::string msg =
      "free\\(0x[0-9a-f]+\\): not the start of a block: 4096 bytes into the block at 0x[0-9a-f]+ \\(a huge block of "
      "[0-9.]+ MiB\\)";
  if (MI_TEST_SECURE) {
    EXPECT_DEATH(interior_free(64u << 20), msg + ABORTS);
  } else {
    EXPECT_EXIT(interior_free(64u << 20), ::testing::ExitedWithCode(0), msg + "; ignored");
  }
}

TEST_F(Misuse, InteriorFreeAbortsWithTheSecureOption) {
  if (MI_TEST_SECURE) GTEST_SKIP() << "the secure build: tests above";
  setenv("MIMALLOC_SECURE", "1", 1);
  EXPECT_DEATH(interior_free(256 * 1024),
               "not the start of a block: 4096 bytes into the block.*" + std::string(ABORTS));
}

// A pointer past the end of a large block (in its page's tail, or in the
// slices after it).
void past_end_free() {
  const size_t size = 200 * 1024;
  char* p = opaque(static_cast<char*>(malloc(size)));
  memset(p, 0x5a, size);
  free(opaque(p + malloc_usable_size(p) + 64));
  char* q = opaque(static_cast<char*>(malloc(size)));
  child_exit(q != p && p[0] == 0x5a, "a free past the block's end freed it");
}

TEST_F(Misuse, FreePastTheEndOfALargeBlock) {
  const std::string msg =
      "free\\(0x[0-9a-f]+\\): not a block: (outside the blocks of its page|its page holds no blocks)";
  if (MI_TEST_SECURE) {
    EXPECT_DEATH(past_end_free(), msg + ".*" + ABORTS);
  } else {
    EXPECT_EXIT(past_end_free(), ::testing::ExitedWithCode(0), msg + ".*; ignored");
  }
}

// --- malloc_usable_size of an interior pointer -----------------------------------

// Before: 64, more than is left after p + 16. Now: reported, and 0 (no size
// that would let the program write past the block).
TEST_F(Misuse, UsableSizeOfAnInteriorPointer) {
  const std::string msg =
      "malloc_usable_size\\(0x[0-9a-f]+\\): not the start of a block: 16 bytes into the block at 0x[0-9a-f]+ "
      "\\(size class 64 bytes\\)";
  auto body = [] {
    char* p = opaque(static_cast<char*>(malloc(64)));
    const size_t n = malloc_usable_size(opaque(p + 16));
    child_exit(n == 0 && malloc_usable_size(p) == 64, "malloc_usable_size(p + 16) is not 0");
  };
  if (MI_TEST_SECURE) {
    EXPECT_DEATH(body(), msg + ABORTS);
  } else {
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), msg + "; returning 0");
  }
}

// --- guard pages -------------------------------------------------------------------

// A write just past the end of a huge block hits the guard page after it
// (the secure build and option; without them the segment may continue into
// another mapping).
TEST_F(Misuse, WritePastAHugeBlockFaults) {
  if (!MI_TEST_SECURE) setenv("MIMALLOC_SECURE", "1", 1);
  EXPECT_EXIT(
      {
        char* p = opaque(static_cast<char*>(malloc(16u << 20)));
        const size_t n = malloc_usable_size(p);
        memset(p, 1, n);   // all of the block is writable
        p[opaque(n)] = 1;  // the byte after it is not
        child_exit(false, "the write past the block did not fault");
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

}  // namespace
