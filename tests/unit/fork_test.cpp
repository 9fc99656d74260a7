// Unit tests of fork() while another thread stands in the middle of an
// allocator operation (lib/heap/thread.cpp fork_child, lib/segment/segment.cpp
// segments_fork_child). A fork() child has only the forking thread; the
// others stop wherever they were. These tests stop a thread at a test point
// (lib/common/test_point.h: builds with -Dfault_injection=true, as tools/dev's
// debug build; skipped in others) and fork there, which tests/stress/fork_stress
// reaches only by chance (about 2 runs in 100 failed in the debug build).
//
// Threads are raw pthreads: std::thread would allocate its state.
#include <gtest/gtest.h>
#include <mimalloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "common/test_point.h"
#include "heap/heap.h"
#include "heap/heap_check.h"
#include "heap/page.h"
#include "heap/size_class.h"
#include "segment/abandon.h"
#include "segment/segment.h"

namespace {

// Without test points (a build without -Dfault_injection=true) no thread
// ever stops: every test here skips.
#if MI_FAULT_INJECTION
constexpr bool kTestPoints = true;
#else
constexpr bool kTestPoints = false;
#endif
#define SKIP_WITHOUT_TEST_POINTS()                                                                         \
  do {                                                                                                     \
    if (!kTestPoints)                                                                                      \
      GTEST_SKIP() << "needs the test points of a -Dfault_injection=true build (tools/dev's debug build)"; \
  } while (0)

// The thread to stop, the point to stop it at, and the hand-shake.
std::atomic<uintptr_t> stop_thread{0};
std::atomic<int> stop_point{-1};
std::atomic<bool> stopped{false};
std::atomic<bool> go_on{false};

[[maybe_unused]] void stop_hook(mi::TestPoint point) {
  if (static_cast<int>(point) != stop_point.load() || mi::thread_id() != stop_thread.load()) return;
  stopped.store(true);
  while (!go_on.load()) sched_yield();
}

// A thread running fn(arg), stopped at `point`: fn stores its thread id in
// stop_thread before the call that reaches the point. Released (it goes on
// from the point) and joined by release() or at the end of the scope.
class StoppedThread {
 public:
  StoppedThread(mi::TestPoint point, void* (*fn)(void*), void* arg) {
    stop_point.store(static_cast<int>(point));
    stopped.store(false);
    go_on.store(false);
#if MI_FAULT_INJECTION
    mi::test_point_hook.store(&stop_hook);
#endif
    started_ = pthread_create(&thread_, nullptr, fn, arg) == 0;
    while (started_ && !stopped.load()) sched_yield();
  }
  ~StoppedThread() { release(); }
  StoppedThread(const StoppedThread&) = delete;
  StoppedThread& operator=(const StoppedThread&) = delete;
  bool started() const { return started_; }
  // Lets the thread go on from the point and waits for it to end.
  void release() {
    go_on.store(true);
    if (started_) pthread_join(thread_, nullptr);
    started_ = false;
#if MI_FAULT_INJECTION
    mi::test_point_hook.store(nullptr);
#endif
    stop_thread.store(0);
  }

 private:
  pthread_t thread_{};
  bool started_ = false;
};

// Runs fn(arg) in a new thread and waits for it (in a child: a thread with
// no segment of its own, that takes the vanished thread's over); false when
// the thread could not be started.
bool run_in_new_thread(void* (*fn)(void*), void* arg) {
  pthread_t t;
  return pthread_create(&t, nullptr, fn, arg) == 0 && pthread_join(t, nullptr) == 0;
}

// In a child: a new thread (no segment of its own: it takes the vanished
// thread's over) allocates n blocks, sizes a and b in turn, checks its heap
// and frees them. 0 if its heap was valid, 1 if not, 2 if no thread started.
int new_thread_uses_sizes(size_t a, size_t b, int n) {
  struct Use {
    size_t a, b;
    int n;
    bool valid;
  } use{a, b, n < 16 ? n : 16, false};
  auto run = [](void* arg) -> void* {
    auto* u = static_cast<Use*>(arg);
    void* blocks[16];
    for (int i = 0; i < u->n; i++) blocks[i] = mi_malloc(i % 2 == 0 ? u->a : u->b);
    u->valid = mi::heap_is_valid(mi::heap_get_default());
    for (int i = 0; i < u->n; i++) mi_free(blocks[i]);
    return nullptr;
  };
  if (!run_in_new_thread(run, &use)) return 2;
  return use.valid ? 0 : 1;
}

// Forks; the child runs `child` (its exit status: 0 = pass, else the number
// of the check that failed) under a 20 s alarm (a hang fails as SIGALRM), and
// must pass.
template <class F>
void child_must_pass(F child) {
  const pid_t pid = fork();
  if (pid == 0) {
    // (a new thread of the child may get the stopped thread's id: it must not stop)
    go_on.store(true);
    alarm(20);
    _exit(child());
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const int result = WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
  EXPECT_EQ(result, 0) << "the child's check " << result << " failed (1000+N: killed by signal N; 1014: hung)";
}

// A thread that stops, in segment_page_free, between taking a large page out
// of use and marking it free in its segment (the lock there may be a purge's
// for a while: where fork_stress's children found it). Its other page keeps
// the segment. The child must find the segment whole and abandoned, not
// still the vanished thread's with a page that is neither in use nor free
// (it was: a child that freed a page of it failed segment_is_valid, and the
// segment stayed tied to a thread id that the child's next thread reuses).
struct HalfFreed {
  void* keep = nullptr;
  void* freed = nullptr;
  // the segment of both blocks (null when they are not in one: the tests' premise)
  mi::Segment* segment() const {
    return mi::ptr_segment(freed) == mi::ptr_segment(keep) ? mi::ptr_segment(keep) : nullptr;
  }
};

void* half_free_thread(void* arg) {
  auto* h = static_cast<HalfFreed*>(arg);
  h->freed = mi_malloc(1 << 20);  // a large page each, in one large segment
  h->keep = mi_malloc(1 << 20);
  memset(h->keep, 0x5a, 1 << 20);
  stop_thread.store(mi::thread_id());
  mi_free(h->freed);  // stops at TestPoint::segment_page_free
  return nullptr;
}

TEST(ForkChild, PageHalfFreedByAThreadThatDidNotComeAlong) {
  SKIP_WITHOUT_TEST_POINTS();
  HalfFreed h;
  StoppedThread thread(mi::TestPoint::segment_page_free, &half_free_thread, &h);
  ASSERT_TRUE(thread.started());
  mi::Segment* s = h.segment();
  ASSERT_NE(s, nullptr) << "both pages in one segment (the test's premise)";
  child_must_pass([&]() -> int {
    if (s->thread_id.load() != 0) return 1;  // still the vanished thread's
    if (!mi::segment_is_valid(s)) return 2;  // used, free_mask and the pages in use disagree
    if (s->used != 1 || s->abandoned != 1) return 3;
    if (!mi::abandoned_contains(s)) return 4;
    // its block is freed and its memory reused, in this thread and in a new one
    const unsigned char* k = static_cast<const unsigned char*>(h.keep);
    for (size_t i = 0; i < (1 << 20); i += 4096) {
      if (k[i] != 0x5a) return 5;
    }
    mi_free(h.keep);
    mi_collect(true);
    void* again = mi_malloc(1 << 20);
    if (again == nullptr) return 6;
    memset(again, 1, 1 << 20);
    mi_free(again);
    auto churn = [](void*) -> void* {
      for (int i = 0; i < 64; i++) mi_free(mi_malloc(static_cast<size_t>(1) << (10 + i % 11)));
      return nullptr;
    };
    return run_in_new_thread(churn, nullptr) ? 0 : 7;
  });
  thread.release();
  mi_free(h.keep);
}

// The same, a moment earlier: the large page's inner slices are cleared, the
// page itself still in use (its slices no longer pointed back to it: a child
// that freed the page failed segment_is_valid, fork_stress's debug build:
// "slice 28 of page 27 is in use itself or does not point back").
TEST(ForkChild, LargePageSlicesReleasedByAThreadThatDidNotComeAlong) {
  SKIP_WITHOUT_TEST_POINTS();
  HalfFreed h;
  StoppedThread thread(mi::TestPoint::page_slices_released, &half_free_thread, &h);
  ASSERT_TRUE(thread.started());
  mi::Segment* s = h.segment();
  ASSERT_NE(s, nullptr) << "both pages in one segment (the test's premise)";
  child_must_pass([&]() -> int {
    if (s->thread_id.load() != 0) return 1;
    if (!mi::segment_is_valid(s)) return 2;  // an inner slice that does not point back to its page
    mi_free(h.keep);
    mi_collect(true);  // takes the segment over: both pages freed
    void* again = mi_malloc(1 << 20);
    if (again == nullptr) return 3;
    memset(again, 1, 1 << 20);
    mi_free(again);
    return 0;
  });
  thread.release();
  mi_free(h.keep);
}

// A thread that stops in the middle of a cross-thread free into a full page
// of the forking thread: the page's state is delayed_freeing, which only that
// thread would leave. The child's own frees into that page waited for it for
// ever (the child hung: one of fork_stress's failures).
struct Full {
  void* blocks[4096];
  size_t n = 0;
  void* remote = nullptr;
};

void* remote_free_thread(void* arg) {
  auto* f = static_cast<Full*>(arg);
  stop_thread.store(mi::thread_id());
  mi_free(f->remote);  // stops at TestPoint::delayed_freeing
  return nullptr;
}

TEST(ForkChild, CrossThreadFreeStoppedHalfWay) {
  SKIP_WITHOUT_TEST_POINTS();
  Full f;
  // fill pages of one size class: the first ones go to the full queue
  for (; f.n < 4096; f.n++) f.blocks[f.n] = mi_malloc(1024);
  mi_free(mi_malloc(1024));  // (a page found full moves to the full queue on the next search)
  mi::Page* page = mi::segment_page_of(mi::ptr_segment(f.blocks[0]), f.blocks[0]);
  ASSERT_TRUE(mi::page_in_full(page)) << "the first page of 4096 blocks of 1 KiB is full (the test's premise)";
  f.remote = f.blocks[0];
  StoppedThread thread(mi::TestPoint::delayed_freeing, &remote_free_thread, &f);
  ASSERT_TRUE(thread.started());
  child_must_pass([&]() -> int {
    // this thread frees into the page and collects: nothing may wait for the vanished thread
    for (size_t i = 1; i < f.n; i++) mi_free(f.blocks[i]);
    mi_collect(true);
    void* p = mi_malloc(1024);
    if (p == nullptr) return 1;
    mi_free(p);
    return 0;
  });
  thread.release();
  for (size_t i = 1; i < f.n; i++) mi_free(f.blocks[i]);
}

// A thread that stops in page_fresh between taking a page from its segment
// (in use from then on) and setting it up for its heap (page_init: its bin,
// heap and first blocks). The page's bin is still its slot's last use: here
// a page of 64 KiB blocks, freed before, whose slot now holds 112 KiB ones.
// The child gave the page to the thread that reclaimed the segment, which
// queued it by that bin: the queue of 64 KiB blocks held a page of 112 KiB
// ones (fork_stress's child, debug build: "blocks of 114688 bytes in the
// queue of 65536"). The child must find the page given back to its segment.
struct InTransit {
  void* keep = nullptr;
  mi::Segment* segment = nullptr;
};

void* fresh_page_thread(void* arg) {
  auto* t = static_cast<InTransit*>(arg);
  t->keep = mi_malloc(32 << 10);  // the segment's first medium page, kept
  t->segment = mi::ptr_segment(t->keep);
  mi_free(mi_malloc(64 << 10));  // a page of 64 KiB blocks, freed back to the segment:
  mi_collect(true);              // its slot keeps that bin
  stop_thread.store(mi::thread_id());
  mi_free(mi_malloc(112 << 10));  // stops at TestPoint::page_fresh
  return nullptr;
}

TEST(ForkChild, PageTakenButNotSetUpByAThreadThatDidNotComeAlong) {
  SKIP_WITHOUT_TEST_POINTS();
  InTransit t;
  StoppedThread thread(mi::TestPoint::page_fresh, &fresh_page_thread, &t);
  ASSERT_TRUE(thread.started());
  mi::Segment* s = t.segment;
  mi::Page* transit = nullptr;
  for (size_t i = 0; i < s->capacity; i++) {
    mi::Page* page = &s->pages[i];
    if (mi::page_is_in_use(page) && mi::page_capacity(page) == 0) transit = page;
  }
  ASSERT_NE(transit, nullptr) << "the stopped thread's page is in use, not set up (the test's premise)";
  ASSERT_EQ(transit->block_size, size_t{112} << 10);
  child_must_pass([&]() -> int {
    if (s->thread_id.load() != 0) return 1;  // still the vanished thread's
    if (!mi::segment_is_valid(s)) return 2;
    if (mi::page_is_in_use(transit)) return 3;  // not given back: a reclaiming thread queues it by a stale bin
    if (s->used != 1 || s->abandoned != 1) return 4;
    // a new thread reclaims the segment and uses its pages
    const int used = new_thread_uses_sizes(size_t{112} << 10, size_t{64} << 10, 16);
    if (used != 0) return 4 + used;  // 5: its heap invalid, 6: no thread
    mi_free(t.keep);
    return 0;
  });
  thread.release();
  mi_free(t.keep);
}

// A thread that stops in the middle of collecting the blocks other threads
// freed into its page: they are its local_free list, but `used` still counts
// them (fork_stress's child, debug build: "19 free + 7 local free + 14 used
// blocks of 36"). The thread that takes the page over in the child must find
// it whole: the lists and the count agree, every free block is handed out
// once, and the page empties when the program frees the blocks it holds.
struct Collecting {
  void* kept[64];
  void* remote[64];
  mi::Page* page = nullptr;
};

void* collecting_thread(void* arg) {
  auto* c = static_cast<Collecting*>(arg);
  for (int i = 0; i < 64; i++) {
    c->kept[i] = mi_malloc(48);
    c->remote[i] = mi_malloc(48);
  }
  c->page = mi::segment_page_of(mi::ptr_segment(c->kept[0]), c->kept[0]);
  auto free_remote = [](void* a) -> void* {  // from another thread: the page's thread-free list
    for (void* p : static_cast<Collecting*>(a)->remote) mi_free(p);
    return nullptr;
  };
  if (!run_in_new_thread(free_remote, c)) abort();
  stop_thread.store(mi::thread_id());
  mi_collect(false);  // stops at TestPoint::thread_free_collected
  return nullptr;
}

TEST(ForkChild, CollectStoppedHalfWayByAThreadThatDidNotComeAlong) {
  SKIP_WITHOUT_TEST_POINTS();
  Collecting c;
  StoppedThread thread(mi::TestPoint::thread_free_collected, &collecting_thread, &c);
  ASSERT_TRUE(thread.started());
  mi::Page* page = c.page;
  ASSERT_EQ(mi::segment_page_of(mi::ptr_segment(c.remote[63]), c.remote[63]), page) << "one page (the premise)";
  child_must_pass([&]() -> int {
    struct Check {
      Collecting* c;
      int result;
    } check{&c, 0};
    // a new thread takes the page over
    auto take_over = [](void* arg) -> void* {
      auto* k = static_cast<Check*>(arg);
      mi::Page* p = mi::segment_page_of(mi::ptr_segment(k->c->kept[0]), k->c->kept[0]);
      void* fresh[256];
      for (int i = 0; i < 256; i++) {
        fresh[i] = mi_malloc(48);
        memset(fresh[i], 0x40 + i % 64, 48);
      }
      if (!mi::page_is_valid(p) || !mi::heap_is_valid(mi::heap_get_default())) k->result = 1;
      for (void* kept : k->c->kept) {  // the blocks the program holds were not handed out again
        for (void* f : fresh) {
          if (f == kept) k->result = 2;
        }
      }
      for (int i = 0; i < 256 && k->result == 0; i++) {
        if (static_cast<unsigned char*>(fresh[i])[47] != 0x40 + i % 64) k->result = 3;  // handed out twice
      }
      for (void* f : fresh) mi_free(f);
      for (void* kept : k->c->kept) mi_free(kept);
      mi_collect(true);
      if (k->result == 0 && mi::page_is_in_use(p) && p->used != 0) k->result = 4;  // a count left over
      return nullptr;
    };
    if (!run_in_new_thread(take_over, &check)) return 10;
    return check.result;
  });
  thread.release();
  for (void* p : c.kept) mi_free(p);
}

// A thread that stops while growing a large block in place (realloc): its
// page's block size is the new one, its bin still the old size's. The thread
// that took the page over queued it by that bin (fork_stress's child, debug
// build: "blocks of 786432 bytes in the queue of 655360").
struct Growing {
  void* block = nullptr;
};

void* growing_thread(void* arg) {
  auto* g = static_cast<Growing*>(arg);
  g->block = mi_malloc(640 << 10);  // a large page, with free slices after it
  memset(g->block, 0x33, 640 << 10);
  stop_thread.store(mi::thread_id());
  void* grown = mi_realloc(g->block, 768 << 10);  // stops at TestPoint::large_page_grown
  if (grown != g->block) abort();                 // (grown in place: the test's premise)
  return nullptr;
}

TEST(ForkChild, LargeBlockGrownHalfWayByAThreadThatDidNotComeAlong) {
  SKIP_WITHOUT_TEST_POINTS();
  Growing g;
  StoppedThread thread(mi::TestPoint::large_page_grown, &growing_thread, &g);
  ASSERT_TRUE(thread.started());
  child_must_pass([&]() -> int {
    // a new thread takes the segment over
    const int used = new_thread_uses_sizes(size_t{640} << 10, size_t{768} << 10, 8);
    if (used != 0) return used;  // 1: its heap invalid, 2: no thread
    const unsigned char* b = static_cast<const unsigned char*>(g.block);
    for (size_t i = 0; i < (640 << 10); i += 4096) {
      if (b[i] != 0x33) return 3;
    }
    mi_free(g.block);
    return 0;
  });
  thread.release();
  mi_free(g.block);
}

}  // namespace
