// Unit tests of lib/common/messages: the output callback, verbose / warning /
// error messages and their limits, one-time warnings (a foreign free), and
// the error callback.
//
// What happens once per process (one-time warnings, the process-wide warning
// and error counters) is tested in child processes (unit_util.h).
#include "common/messages.h"

#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/options.h"
#include "unit_util.h"

namespace {

// Output capture that does not allocate inside the callback.
struct Capture {
  char buf[1 << 16];
  size_t len = 0;
  size_t calls = 0;
  void clear() {
    len = 0;
    calls = 0;
    buf[0] = 0;
  }
  std::string text() const { return std::string(buf, len); }
};
Capture g_cap;
int g_cap_tag;

void capture(const char* msg, void* arg) {
  if (arg != &g_cap_tag) return;
  g_cap.calls++;
  size_t n = strlen(msg);
  size_t room = sizeof(g_cap.buf) - 1 - g_cap.len;
  if (n > room) n = room;
  memcpy(g_cap.buf + g_cap.len, msg, n);
  g_cap.len += n;
  g_cap.buf[g_cap.len] = 0;
}

// Captures the output and sets options for one test; restores both.
struct MessageFixture : testing::Test {
  long saved[mi::OPTION_COUNT];
  mi::OptionSource saved_src[mi::OPTION_COUNT];
  void SetUp() override {
    for (int i = 0; i < mi::OPTION_COUNT; i++) {
      saved[i] = mi::option_get(static_cast<mi_option_t>(i));
      saved_src[i] = mi::option_source(static_cast<mi_option_t>(i), nullptr, nullptr);
    }
    g_cap.clear();
    mi_register_output(&capture, &g_cap_tag);
    mi_option_set(mi_option_show_errors, 1);
    mi_option_set(mi_option_verbose, 0);
    mi_option_set(mi_option_max_warnings, -1);  // unlimited: the counter is process-wide
    mi_option_set(mi_option_max_errors, -1);
  }
  void TearDown() override {
    mi_register_output(nullptr, nullptr);
    mi_register_error(nullptr, nullptr);
    for (int i = 0; i < mi::OPTION_COUNT; i++) {
      mi::option_set_from(static_cast<mi_option_t>(i), saved[i], saved_src[i], nullptr, 0);
    }
  }
};

TEST_F(MessageFixture, WarningGoesToTheRegisteredOutput) {
  mi::warning_message("unit test warning %d of %s", 42, "many");
  EXPECT_EQ(g_cap.text(), "mimalloc-numa: warning: unit test warning 42 of many\n");
  EXPECT_EQ(g_cap.calls, 1u) << "a message is written with one call";
}

TEST_F(MessageFixture, ExactlyOneNewline) {
  mi::warning_message("ends with a newline\n");
  mi::warning_message("no newline");
  mi::warning_message("%s", "");
  EXPECT_EQ(g_cap.text(),
            "mimalloc-numa: warning: ends with a newline\n"
            "mimalloc-numa: warning: no newline\n"
            "mimalloc-numa: warning: \n");
  EXPECT_EQ(g_cap.calls, 3u);
}

TEST_F(MessageFixture, LongMessagesAreCutWithANewline) {
  std::string big(3 * mi::MESSAGE_MAX, 'w');
  mi::warning_message("%s", big.c_str());
  ASSERT_EQ(g_cap.calls, 1u);
  const std::string t = g_cap.text();
  EXPECT_EQ(t.size(), mi::MESSAGE_MAX - 1);
  EXPECT_EQ(t.back(), '\n');
  EXPECT_EQ(t.compare(0, 24, "mimalloc-numa: warning: "), 0);
  EXPECT_EQ(t.find('\n'), t.size() - 1);
}

TEST_F(MessageFixture, ShowErrorsOffSilencesWarningsAndErrors) {
  mi_option_set(mi_option_show_errors, 0);
  mi::warning_message("hidden warning");
  mi::error_message(EINVAL, "hidden error");
  EXPECT_EQ(g_cap.len, 0u) << g_cap.text();
  // verbose shows them anyway
  mi_option_set(mi_option_verbose, 1);
  mi::warning_message("shown warning");
  mi::error_message(EINVAL, "shown error %d", 7);
  EXPECT_EQ(g_cap.text(), "mimalloc-numa: warning: shown warning\nmimalloc-numa: error: shown error 7\n");
}

TEST_F(MessageFixture, VerboseOnlyWhenEnabled) {
  mi::verbose_message("not shown %d", 1);
  EXPECT_EQ(g_cap.len, 0u);
  mi_option_set(mi_option_verbose, 1);
  mi::verbose_message("shown %d", 2);
  EXPECT_EQ(g_cap.text(), "mimalloc-numa: shown 2\n");
}

TEST_F(MessageFixture, OutputIsVerbatim) {
  mi::output("%s:%d", "no prefix, no newline", 5);
  EXPECT_EQ(g_cap.text(), "no prefix, no newline:5");
  g_cap.clear();
  mi::output_to(nullptr, nullptr, "raw text\n");
  EXPECT_EQ(g_cap.text(), "raw text\n");
  mi::output_to(nullptr, nullptr, nullptr);  // ignored
  EXPECT_EQ(g_cap.calls, 1u);
}

TEST_F(MessageFixture, OutputToAnExplicitCallback) {
  // output_to with its own callback bypasses the registered one.
  struct Local {
    static void fun(const char* msg, void* arg) { *static_cast<std::string*>(arg) += msg; }
  };
  std::string got;
  mi::output_to(&Local::fun, &got, "direct");
  EXPECT_EQ(got, "direct");
  EXPECT_EQ(g_cap.len, 0u);
}

TEST_F(MessageFixture, RegisterOutputNullRestoresStderr) {
  mi_output_fun* out = nullptr;
  void* arg = nullptr;
  mi::output_get(&out, &arg);
  EXPECT_EQ(out, &capture);
  EXPECT_EQ(arg, &g_cap_tag);
  mi_register_output(nullptr, nullptr);
  mi::output_get(&out, &arg);
  EXPECT_NE(out, nullptr);
  EXPECT_NE(out, &capture);
  EXPECT_EQ(arg, nullptr);
}

TEST_F(MessageFixture, StatsGoThroughTheOutput) {
  mi_stats_print_out(nullptr, nullptr);
  EXPECT_GT(g_cap.len, 0u);
}

// --- the error callback -----------------------------------------------------

// The callback may run inside the allocator: it records without allocating.
struct Errors {
  struct Codes {
    int v[64];
    size_t n = 0;
    void clear() { n = 0; }
    size_t size() const { return n; }
    bool empty() const { return n == 0; }
    int operator[](size_t i) const { return v[i]; }
  } codes;
};
Errors* g_errors = nullptr;
void on_error(int err, void* arg) {
  if (arg == g_errors && g_errors != nullptr && g_errors->codes.n < 64) g_errors->codes.v[g_errors->codes.n++] = err;
}

bool has(const Errors::Codes& c, int x) {
  for (size_t i = 0; i < c.n; i++) {
    if (c.v[i] == x) return true;
  }
  return false;
}

TEST_F(MessageFixture, ErrorCallbackReceivesCodes) {
  Errors errors;
  g_errors = &errors;
  mi_register_error(&on_error, &errors);
  mi_option_set(mi_option_show_errors, 0);  // the callback is called even when nothing is printed

  mi::error_message(EFAULT, "direct %d", 1);
  ASSERT_EQ(errors.codes.size(), 1u);
  EXPECT_EQ(errors.codes[0], EFAULT);

  // an arena id that does not exist
  errors.codes.clear();
  mi_heap_t* h = mi_heap_new_in_arena(unit::opaque(123456));
  EXPECT_EQ(h, nullptr);
  EXPECT_TRUE(has(errors.codes, EINVAL)) << errors.codes.size();

  // a request larger than PTRDIFF_MAX
  errors.codes.clear();
  errno = 0;
  void* p = mi_malloc(unit::opaque(SIZE_MAX));
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(has(errors.codes, EOVERFLOW)) << errors.codes.size();

  // count * size overflows
  errors.codes.clear();
  p = mi_calloc(unit::opaque(SIZE_MAX / 2), 3);
  EXPECT_EQ(p, nullptr);
  EXPECT_TRUE(has(errors.codes, EOVERFLOW));

  // an alignment that is not a power of two
  errors.codes.clear();
  p = mi_malloc_aligned(16, unit::opaque(size_t{24}));
  EXPECT_EQ(p, nullptr);
  EXPECT_FALSE(errors.codes.empty());

  EXPECT_EQ(g_cap.len, 0u) << "show_errors=0 printed: " << g_cap.text();
  mi_register_error(nullptr, nullptr);
  errors.codes.clear();
  mi::error_message(EFAULT, "after unregistering");
  EXPECT_TRUE(errors.codes.empty());
  g_errors = nullptr;
}

TEST_F(MessageFixture, ErrorMessageText) {
  mi::error_message(ENOMEM, "out of %s", "memory");
  EXPECT_EQ(g_cap.text(), "mimalloc-numa: error: out of memory\n");
}

TEST(Messages, ErrnoText) {
  EXPECT_STREQ(mi::errno_text(ENOMEM), strerror(ENOMEM));
  EXPECT_STREQ(mi::errno_text(EINVAL), strerror(EINVAL));
  EXPECT_STREQ(mi::errno_text(0), strerror(0));
  const char* unknown = mi::errno_text(unit::opaque(987654));
  ASSERT_NE(unknown, nullptr);
  EXPECT_GT(strlen(unknown), 0u);
}

// --- child processes: limits and one-time warnings ---------------------------

void child_setup() {
  g_cap.clear();
  mi_register_output(&capture, &g_cap_tag);
}

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) n++;
  return n;
}

// MIMALLOC_MAX_WARNINGS=3: of ten warnings, three are printed.
TEST(MessagesChild, DISABLED_MaxWarnings) {
  child_setup();
  ASSERT_EQ(mi_option_get(mi_option_max_warnings), 3);
  for (int i = 0; i < 10; i++) mi::warning_message("numbered warning %d", i);
  const std::string t = g_cap.text();
  EXPECT_EQ(count_of(t, "mimalloc-numa: warning: numbered warning"), 3u) << t;
  EXPECT_NE(t.find("numbered warning 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("numbered warning 2\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("numbered warning 3\n"), std::string::npos) << t;
  // -1: no limit
  g_cap.clear();
  mi_option_set(mi_option_max_warnings, -1);
  for (int i = 0; i < 20; i++) mi::warning_message("unlimited %d", i);
  EXPECT_EQ(count_of(g_cap.text(), "mimalloc-numa: warning: unlimited"), 20u);
  mi_register_output(nullptr, nullptr);
}

TEST(Messages, MaxWarningsLimitsWarnings) {
  unit::ChildResult r = unit::run_child("MessagesChild.DISABLED_MaxWarnings", {"MIMALLOC_MAX_WARNINGS=3"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

int g_child_errors = 0;
void count_error(int, void*) { g_child_errors++; }

// MIMALLOC_MAX_ERRORS=2: of five errors, two are printed; the callback sees all.
TEST(MessagesChild, DISABLED_MaxErrors) {
  child_setup();
  mi_register_error(&count_error, nullptr);
  for (int i = 0; i < 5; i++) mi::error_message(EINVAL, "numbered error %d", i);
  EXPECT_EQ(count_of(g_cap.text(), "mimalloc-numa: error: numbered error"), 2u) << g_cap.text();
  EXPECT_EQ(g_child_errors, 5);
  // max_warnings is a separate budget
  mi::warning_message("a warning");
  EXPECT_EQ(count_of(g_cap.text(), "mimalloc-numa: warning: a warning"), 1u);
  mi_register_output(nullptr, nullptr);
  mi_register_error(nullptr, nullptr);
}

TEST(Messages, MaxErrorsLimitsErrors) {
  unit::ChildResult r = unit::run_child("MessagesChild.DISABLED_MaxErrors", {"MIMALLOC_MAX_ERRORS=2"});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// A free of a pointer into a static array: one warning naming the pointer;
// later foreign frees (static, stack, mmap'd memory) print nothing.
char g_static_area[256] = "static data";

TEST(MessagesChild, DISABLED_ForeignFree) {
  child_setup();
  void* p = unit::opaque(static_cast<void*>(g_static_area + 16));
  mi_free(p);
  char expect_ptr[32];
  snprintf(expect_ptr, sizeof(expect_ptr), "%p", p);
  const std::string first = g_cap.text();
  EXPECT_EQ(g_cap.calls, 1u) << first;
  EXPECT_EQ(count_of(first, "mimalloc-numa: warning: "), 1u) << first;
  EXPECT_NE(first.find(expect_ptr), std::string::npos) << "the warning does not name " << expect_ptr << ": " << first;
  EXPECT_NE(first.find("free("), std::string::npos) << first;
  EXPECT_STREQ(g_static_area, "static data") << "the foreign memory was written to";

  char on_stack[64] = "stack";
  void* mapped = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  mi_free(unit::opaque(static_cast<void*>(g_static_area)));
  mi_free(unit::opaque(static_cast<void*>(on_stack + 8)));
  free(unit::opaque(mapped));
  free(unit::opaque(static_cast<void*>(static_cast<char*>(mapped) + 4096)));
  EXPECT_EQ(mi_usable_size(unit::opaque(mapped)), 0u);
  EXPECT_EQ(g_cap.text(), first) << "a later foreign free printed something";
  EXPECT_STREQ(on_stack, "stack");
  munmap(mapped, 1 << 20);

  // The allocator still works.
  void* q = mi_malloc(100);
  ASSERT_NE(q, nullptr);
  mi_free(q);
  mi_register_output(nullptr, nullptr);
}

TEST(Messages, ForeignFreeWarnsOnce) {
  unit::ChildResult r = unit::run_child("MessagesChild.DISABLED_ForeignFree", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// A pointer inside a huge block (beyond its segment's first 4 MiB), not the
// block's start: one error naming it, each time (heap/misuse.h); the block
// is left alone.
TEST(MessagesChild, DISABLED_InteriorFree) {
  child_setup();
  const size_t size = 10u << 20;
  char* p = static_cast<char*>(mi_malloc(size));
  ASSERT_NE(p, nullptr);
  memset(p, 0x33, size);
  void* inner = unit::opaque(static_cast<void*>(p + (5u << 20)));
  mi_free(inner);
  const std::string first = g_cap.text();
  char expect_ptr[32];
  snprintf(expect_ptr, sizeof(expect_ptr), "free(%p): not the start of a block: 5242880 bytes into the block", inner);
  EXPECT_EQ(count_of(first, "mimalloc-numa: error: "), 1u) << first;
  EXPECT_NE(first.find(expect_ptr), std::string::npos) << first;
  mi_free(unit::opaque(static_cast<void*>(p + (6u << 20))));
  EXPECT_EQ(count_of(g_cap.text(), "mimalloc-numa: error: "), 2u) << "each interior free is reported";
  EXPECT_GE(mi_usable_size(p), size);
  for (size_t i = 0; i < size; i += 4096) ASSERT_EQ(p[i], 0x33) << i;
  mi_free(p);
  mi_register_output(nullptr, nullptr);
}

TEST(Messages, InteriorFreeOfAHugeBlockIsReported) {
  if (mi::secure_enabled()) GTEST_SKIP() << "secure mode aborts on it (tests/api/misuse_test.cpp)";
  unit::ChildResult r = unit::run_child("MessagesChild.DISABLED_InteriorFree", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

TEST(MessagesChild, DISABLED_Once) {
  for (int k = 0; k < static_cast<int>(mi::Once::count); k++) {
    const mi::Once kind = static_cast<mi::Once>(k);
    EXPECT_TRUE(mi::once(kind)) << k;
    EXPECT_FALSE(mi::once(kind)) << k;
    EXPECT_FALSE(mi::once(kind)) << k;
  }
}

TEST(Messages, OnceIsTrueOncePerKind) {
  unit::ChildResult r = unit::run_child("MessagesChild.DISABLED_Once", {});
  EXPECT_EQ(r.status, 0) << r.describe();
}

}  // namespace
