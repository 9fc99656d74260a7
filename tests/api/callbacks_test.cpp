// API conformance: output / error / deferred-free callbacks, statistics,
// process information, thread init/done and the other "internals" entry points.
//
// Validated against Debian's mimalloc 2.0.9: every test here describes its
// behaviour.  (mi_options_print and a plausibility check of
// mi_process_info's values, which 2.0.9 fails, are in api_v21_test.cpp.)
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "opaque.h"

namespace {

// Captures output without allocating inside the callback.
struct Capture {
  char buf[1 << 17];
  size_t len = 0;
  size_t calls = 0;
  void clear() {
    len = 0;
    calls = 0;
    buf[0] = 0;
  }
  std::string text() const { return std::string(buf, len); }
};

Capture g_capture;
int g_output_arg_tag = 0;
std::atomic<int> g_output_bad_arg{0};

void capture_output(const char* msg, void* arg) {
  if (arg != &g_output_arg_tag) g_output_bad_arg++;
  if (msg == nullptr) return;
  Capture& c = g_capture;
  c.calls++;
  const size_t n = std::strlen(msg);
  const size_t room = sizeof(c.buf) - 1 - c.len;
  const size_t k = n < room ? n : room;
  std::memcpy(c.buf + c.len, msg, k);
  c.len += k;
  c.buf[c.len] = 0;
}

// Registers the capturing output for the lifetime of the object.
struct OutputGuard {
  OutputGuard() {
    g_capture.clear();
    g_output_bad_arg = 0;
    mi_register_output(&capture_output, &g_output_arg_tag);
    g_capture.clear();  // registering may flush earlier buffered messages
  }
  ~OutputGuard() { mi_register_output(nullptr, nullptr); }
};

bool mentions_memory(const std::string& s) {
  return s.find("reserved") != std::string::npos || s.find("committed") != std::string::npos;
}

}  // namespace

TEST(Callbacks, Version) {
  EXPECT_GE(mi_version(), 200);
  EXPECT_LT(mi_version(), 1000);
}

TEST(Callbacks, StatsPrintGoesToRegisteredOutput) {
  void* p = mi_malloc(1000);  // some activity
  mi_free(p);
  OutputGuard guard;
  mi_stats_print(nullptr);
  const std::string text = g_capture.text();
  EXPECT_FALSE(text.empty());
  EXPECT_TRUE(mentions_memory(text)) << text;
  EXPECT_EQ(g_output_bad_arg.load(), 0) << "the registered argument must be passed to the output function";
}

TEST(Callbacks, StatsPrintOutWithExplicitFunction) {
  g_capture.clear();
  g_output_bad_arg = 0;
  mi_stats_print_out(&capture_output, &g_output_arg_tag);
  const std::string text = g_capture.text();
  EXPECT_FALSE(text.empty());
  EXPECT_TRUE(mentions_memory(text)) << text;
  EXPECT_EQ(g_output_bad_arg.load(), 0);

  OutputGuard guard;
  mi_stats_print_out(nullptr, nullptr);  // NULL: the registered output
  EXPECT_TRUE(mentions_memory(g_capture.text()));
}

TEST(Callbacks, ThreadStatsPrintOut) {
  g_capture.clear();
  g_output_bad_arg = 0;
  mi_thread_stats_print_out(&capture_output, &g_output_arg_tag);
  EXPECT_FALSE(g_capture.text().empty());
  EXPECT_EQ(g_output_bad_arg.load(), 0);
}

TEST(Callbacks, StatsResetAndMerge) {
  std::vector<void*> v;
  for (int i = 0; i < 1000; i++) v.push_back(mi_malloc(100 + i));
  for (void* p : v) mi_free(p);
  mi_stats_merge();
  mi_stats_reset();
  mi_stats_merge();
  OutputGuard guard;
  mi_stats_print(nullptr);  // still prints after a reset
  EXPECT_TRUE(mentions_memory(g_capture.text()));
}

namespace {
struct ErrorLog {
  std::atomic<int> calls{0};
  int codes[64] = {};
  std::atomic<int> bad_arg{0};
};
ErrorLog g_errors;
int g_error_arg_tag = 0;

void record_error(int err, void* arg) {
  if (arg != &g_error_arg_tag) g_errors.bad_arg++;
  const int i = g_errors.calls++;
  if (i < 64) g_errors.codes[i] = err;
}

struct ErrorGuard {
  ErrorGuard() {
    g_errors.calls = 0;
    g_errors.bad_arg = 0;
    mi_register_error(&record_error, &g_error_arg_tag);
  }
  ~ErrorGuard() { mi_register_error(nullptr, nullptr); }
};

bool errors_contain(int code) {
  const int n = g_errors.calls.load() < 64 ? g_errors.calls.load() : 64;
  for (int i = 0; i < n; i++) {
    if (g_errors.codes[i] == code) return true;
  }
  return false;
}

bool errors_all_in(std::initializer_list<int> allowed) {
  const int n = g_errors.calls.load() < 64 ? g_errors.calls.load() : 64;
  for (int i = 0; i < n; i++) {
    bool ok = false;
    for (int a : allowed) ok = ok || g_errors.codes[i] == a;
    if (!ok) return false;
  }
  return true;
}
}  // namespace

TEST(Callbacks, ErrorCallbackOnTooLargeRequest) {
  // A request above PTRDIFF_MAX is an EOVERFLOW error (mimalloc 2.0.9 then also
  // reports the failed allocation as ENOMEM).
  ErrorGuard guard;
  EXPECT_EQ(mi_malloc(opaque(static_cast<size_t>(PTRDIFF_MAX) + 1)), nullptr);
  EXPECT_GE(g_errors.calls.load(), 1);
  EXPECT_TRUE(errors_contain(EOVERFLOW));
  EXPECT_TRUE(errors_all_in({EOVERFLOW, ENOMEM}));
  EXPECT_EQ(g_errors.bad_arg.load(), 0) << "the registered argument must be passed to the error function";
}

TEST(Callbacks, ErrorCallbackOnOutOfMemory) {
  // A real shortage is ENOMEM: a heap bound to a full exclusive arena (it
  // takes no other memory). (A request beyond what the address space could
  // ever give is EOVERFLOW, above.)
  constexpr size_t kChunk = size_t{8} << 20;
  mi_arena_id_t id = 0;
  ASSERT_EQ(mi_reserve_os_memory_ex(size_t{32} << 20, false, false, true, &id), 0);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  ASSERT_NE(heap, nullptr);
  std::vector<void*> blocks;
  for (void* p; blocks.size() < 8 && (p = mi_heap_malloc(heap, kChunk)) != nullptr;) blocks.push_back(p);
  ASSERT_LT(blocks.size(), 8u) << "the arena did not fill";

  ErrorGuard guard;
  EXPECT_EQ(mi_heap_malloc(heap, opaque(kChunk)), nullptr);
  EXPECT_GE(g_errors.calls.load(), 1);
  EXPECT_TRUE(errors_contain(ENOMEM));
  EXPECT_TRUE(errors_all_in({ENOMEM}));

  g_errors.calls = 0;
  EXPECT_EQ(mi_heap_malloc_aligned(heap, opaque(kChunk), 16), nullptr);
  EXPECT_GE(g_errors.calls.load(), 1);
  EXPECT_TRUE(errors_contain(ENOMEM));
  EXPECT_TRUE(errors_all_in({ENOMEM}));
  EXPECT_EQ(g_errors.bad_arg.load(), 0);
  for (void* p : blocks) mi_free(p);
  mi_heap_delete(heap);
}

TEST(Callbacks, NoErrorCallbackAfterUnregistering) {
  { ErrorGuard guard; }
  g_errors.calls = 0;
  EXPECT_EQ(mi_malloc(opaque(static_cast<size_t>(PTRDIFF_MAX) + 1)), nullptr);
  EXPECT_EQ(g_errors.calls.load(), 0);
}

namespace {
struct DeferredLog {
  size_t calls = 0;
  size_t forced = 0;
  unsigned long long first = 0, last = 0;
  bool monotonic = true;
  bool bad_arg = false;
};
DeferredLog g_deferred;
int g_deferred_arg_tag = 0;

void deferred(bool force, unsigned long long heartbeat, void* arg) {
  DeferredLog& d = g_deferred;
  if (arg != &g_deferred_arg_tag) d.bad_arg = true;
  if (d.calls == 0) d.first = heartbeat;
  else if (heartbeat < d.last) d.monotonic = false;
  d.last = heartbeat;
  d.calls++;
  if (force) d.forced++;
}

// Enough allocation activity to leave the fast paths many times: fill fresh pages.
void churn() {
  std::vector<void*> v;
  v.reserve(30000);
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < 30000; i++) v.push_back(mi_malloc(16 + (i % 256) * 16));
    for (void* p : v) mi_free(p);
    v.clear();
  }
}
}  // namespace

TEST(Callbacks, DeferredFreeIsCalledWithIncreasingHeartbeat) {
  g_deferred = DeferredLog{};
  mi_register_deferred_free(&deferred, &g_deferred_arg_tag);
  churn();
  const DeferredLog seen = g_deferred;
  mi_collect(true);
  const DeferredLog after_collect = g_deferred;
  mi_register_deferred_free(nullptr, nullptr);
  const size_t calls_at_unregister = g_deferred.calls;
  churn();

  EXPECT_GE(seen.calls, 2u) << "the deferred-free callback is called during allocation";
  EXPECT_TRUE(seen.monotonic);
  EXPECT_GT(seen.last, seen.first) << "the heartbeat increases";
  EXPECT_FALSE(seen.bad_arg);
  EXPECT_GE(after_collect.forced, 1u) << "mi_collect(true) calls it with force = true";
  EXPECT_EQ(g_deferred.calls, calls_at_unregister) << "no calls after unregistering";
}

TEST(Callbacks, ProcessInfoFillsEveryField) {
  void* big = mi_malloc(8u << 20);
  std::memset(big, 1, 8u << 20);
  const size_t kUnset = static_cast<size_t>(-7);
  size_t elapsed = kUnset, user = kUnset, sys = kUnset, rss = kUnset, peak_rss = kUnset, commit = kUnset,
         peak_commit = kUnset, faults = kUnset;
  mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
  EXPECT_NE(elapsed, kUnset);
  EXPECT_NE(user, kUnset);
  EXPECT_NE(sys, kUnset);
  EXPECT_NE(rss, kUnset);
  EXPECT_NE(peak_rss, kUnset);
  EXPECT_NE(commit, kUnset);
  EXPECT_NE(peak_commit, kUnset);
  EXPECT_NE(faults, kUnset);
  EXPECT_GT(peak_rss, 0u);
  // any argument may be NULL
  mi_process_info(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  size_t only_elapsed = 0;
  mi_process_info(&only_elapsed, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  EXPECT_GE(only_elapsed, elapsed);
  mi_free(big);
}

TEST(Callbacks, Collect) {
  std::vector<void*> v;
  for (int i = 0; i < 5000; i++) v.push_back(mi_malloc(64 + (i % 100) * 64));
  for (void* p : v) mi_free(p);
  mi_collect(false);
  mi_collect(true);
  void* p = mi_malloc(100);  // still works
  ASSERT_NE(p, nullptr);
  mi_free(p);
}

TEST(Callbacks, ThreadInitAndDone) {
  std::atomic<bool> ok{false};
  std::thread t([&] {
    mi_thread_init();
    mi_thread_init();  // idempotent
    std::vector<void*> v;
    for (int i = 0; i < 1000; i++) v.push_back(mi_malloc(32 + i));
    for (void* p : v) mi_free(p);
    void* keep = mi_malloc(5000);
    mi_thread_done();
    // after mi_thread_done the thread can still free (and allocate again)
    mi_free(keep);
    void* again = mi_malloc(10);
    ok = again != nullptr;
    mi_free(again);
  });
  t.join();
  EXPECT_TRUE(ok.load());
  mi_thread_init();  // on an already initialised thread: no effect
  void* p = mi_malloc(10);
  EXPECT_NE(p, nullptr);
  mi_free(p);
}

TEST(Callbacks, ProcessInitIsIdempotent) {
  mi_process_init();
  mi_process_init();
  void* p = mi_malloc(10);
  EXPECT_NE(p, nullptr);
  mi_free(p);
}

TEST(Callbacks, IsRedirectedIsStable) {
  const bool a = mi_is_redirected();
  const bool b = mi_is_redirected();
  EXPECT_EQ(a, b);
}

TEST(Callbacks, IsInHeapRegion) {
  void* p = mi_malloc(100);
  void* big = mi_malloc(40u << 20);
  ASSERT_NE(p, nullptr);
  ASSERT_NE(big, nullptr);
  EXPECT_TRUE(mi_is_in_heap_region(p));
  EXPECT_TRUE(mi_is_in_heap_region(big));
  int local = 0;
  static int static_local = 0;
  EXPECT_FALSE(mi_is_in_heap_region(&local));
  EXPECT_FALSE(mi_is_in_heap_region(&static_local));
  EXPECT_FALSE(mi_is_in_heap_region(nullptr));
  mi_free(p);
  mi_free(big);
}
