// API conformance: runtime options (mi_option_*).
//
// Validated against Debian's mimalloc 2.0.9 (through our header: the options
// used at run time here have the same enum values in 2.0.9 and 2.1).
// mi_option_get_size and mi_option_arena_reserve, which 2.0.9 lacks, are
// tested in api_v21_test.cpp.
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cstdlib>

// --- enum values: binary compatibility with mimalloc 2.1 ---
static_assert(mi_option_show_errors == 0);
static_assert(mi_option_show_stats == 1);
static_assert(mi_option_verbose == 2);
static_assert(mi_option_eager_commit == 3);
static_assert(mi_option_arena_eager_commit == 4);
static_assert(mi_option_purge_decommits == 5);
static_assert(mi_option_allow_large_os_pages == 6);
static_assert(mi_option_reserve_huge_os_pages == 7);
static_assert(mi_option_reserve_huge_os_pages_at == 8);
static_assert(mi_option_reserve_os_memory == 9);
static_assert(mi_option_deprecated_segment_cache == 10);
static_assert(mi_option_deprecated_page_reset == 11);
static_assert(mi_option_abandoned_page_purge == 12);
static_assert(mi_option_deprecated_segment_reset == 13);
static_assert(mi_option_eager_commit_delay == 14);
static_assert(mi_option_purge_delay == 15);
static_assert(mi_option_use_numa_nodes == 16);
static_assert(mi_option_disallow_os_alloc == 17);
static_assert(mi_option_os_tag == 18);
static_assert(mi_option_max_errors == 19);
static_assert(mi_option_max_warnings == 20);
static_assert(mi_option_max_segment_reclaim == 21);
static_assert(mi_option_destroy_on_exit == 22);
static_assert(mi_option_arena_reserve == 23);
static_assert(mi_option_arena_purge_mult == 24);
static_assert(mi_option_purge_extend_delay == 25);

// --- legacy names (mimalloc 2.0 and earlier) compile and alias the new ones ---
static_assert(mi_option_large_os_pages == mi_option_allow_large_os_pages);
static_assert(mi_option_eager_region_commit == mi_option_arena_eager_commit);
static_assert(mi_option_reset_decommits == mi_option_purge_decommits);
static_assert(mi_option_reset_delay == mi_option_purge_delay);
static_assert(mi_option_decommit_delay == mi_option_purge_delay);
static_assert(mi_option_abandoned_page_reset == mi_option_abandoned_page_purge);
static_assert(mi_option_abandoned_page_decommit == mi_option_abandoned_page_purge);
static_assert(mi_option_limit_os_alloc == mi_option_disallow_os_alloc);
static_assert(mi_option_segment_cache == mi_option_deprecated_segment_cache);
static_assert(mi_option_page_reset == mi_option_deprecated_page_reset);
static_assert(mi_option_segment_reset == mi_option_deprecated_segment_reset);
static_assert(mi_option_decommit_extend_delay == mi_option_purge_extend_delay);

namespace {

// Restores an option's value when the test ends.
class OptionRestore {
 public:
  explicit OptionRestore(mi_option_t o) : option_(o), value_(mi_option_get(o)) {}
  ~OptionRestore() { mi_option_set(option_, value_); }
  OptionRestore(const OptionRestore&) = delete;
  OptionRestore& operator=(const OptionRestore&) = delete;

 private:
  mi_option_t option_;
  long value_;
};

bool env_set(const char* name) { return std::getenv(name) != nullptr; }

}  // namespace

TEST(Options, SetAndGetRoundTrip) {
  for (mi_option_t o : {mi_option_show_errors, mi_option_verbose, mi_option_max_errors, mi_option_eager_commit,
                        mi_option_purge_delay, mi_option_eager_commit_delay}) {
    OptionRestore restore(o);
    for (long v : {0L, 1L, 7L, 0L}) {
      mi_option_set(o, v);
      EXPECT_EQ(mi_option_get(o), v) << "option " << o;
      EXPECT_EQ(mi_option_is_enabled(o), v != 0) << "option " << o;
    }
  }
}

TEST(Options, EnableDisable) {
  for (mi_option_t o : {mi_option_show_errors, mi_option_verbose, mi_option_eager_commit}) {
    OptionRestore restore(o);
    mi_option_enable(o);
    EXPECT_TRUE(mi_option_is_enabled(o));
    EXPECT_EQ(mi_option_get(o), 1);
    mi_option_disable(o);
    EXPECT_FALSE(mi_option_is_enabled(o));
    EXPECT_EQ(mi_option_get(o), 0);
    mi_option_set_enabled(o, true);
    EXPECT_TRUE(mi_option_is_enabled(o));
    mi_option_set_enabled(o, false);
    EXPECT_FALSE(mi_option_is_enabled(o));
  }
}

TEST(Options, NegativeValues) {
  OptionRestore restore(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, -1);  // -1 = never purge
  EXPECT_EQ(mi_option_get(mi_option_purge_delay), -1);
  EXPECT_TRUE(mi_option_is_enabled(mi_option_purge_delay)) << "any non-zero value counts as enabled";
}

TEST(Options, PurgeDelayLegacyAliasesShareTheValue) {
  OptionRestore restore(mi_option_purge_delay);
  mi_option_set(mi_option_purge_delay, 123);
  EXPECT_EQ(mi_option_get(mi_option_decommit_delay), 123);
  EXPECT_EQ(mi_option_get(mi_option_reset_delay), 123);
  mi_option_set(mi_option_decommit_delay, 77);
  EXPECT_EQ(mi_option_get(mi_option_purge_delay), 77);
  EXPECT_EQ(mi_option_get(mi_option_reset_delay), 77);
}

TEST(Options, GetClamp) {
  OptionRestore restore(mi_option_max_errors);
  mi_option_set(mi_option_max_errors, 50);
  EXPECT_EQ(mi_option_get_clamp(mi_option_max_errors, 0, 100), 50);
  EXPECT_EQ(mi_option_get_clamp(mi_option_max_errors, 0, 10), 10);
  EXPECT_EQ(mi_option_get_clamp(mi_option_max_errors, 60, 100), 60);
  EXPECT_EQ(mi_option_get_clamp(mi_option_max_errors, 50, 50), 50);
  EXPECT_EQ(mi_option_get(mi_option_max_errors), 50) << "get_clamp does not change the option";
}

TEST(Options, SetDefaultDoesNotOverrideExplicitSet) {
  OptionRestore restore(mi_option_max_errors);
  mi_option_set(mi_option_max_errors, 5);
  mi_option_set_default(mi_option_max_errors, 7);
  EXPECT_EQ(mi_option_get(mi_option_max_errors), 5);
  mi_option_set_enabled_default(mi_option_max_errors, false);
  EXPECT_EQ(mi_option_get(mi_option_max_errors), 5);

  OptionRestore restore_verbose(mi_option_verbose);
  mi_option_set(mi_option_verbose, 0);
  mi_option_set_enabled_default(mi_option_verbose, true);
  EXPECT_FALSE(mi_option_is_enabled(mi_option_verbose));
}

TEST(Options, SetDefaultAppliesWhenNotExplicitlySet) {
  // mi_option_max_warnings is set by no other test in this program
  if (env_set("MIMALLOC_MAX_WARNINGS")) GTEST_SKIP() << "MIMALLOC_MAX_WARNINGS is set in the environment";
  const long before = mi_option_get(mi_option_max_warnings);  // reading does not make it "explicitly set"
  mi_option_set_default(mi_option_max_warnings, before + 9);
  EXPECT_EQ(mi_option_get(mi_option_max_warnings), before + 9);
  mi_option_set_default(mi_option_max_warnings, before);
  EXPECT_EQ(mi_option_get(mi_option_max_warnings), before);
}

TEST(Options, SetEnabledDefaultAppliesWhenNotExplicitlySet) {
  // mi_option_os_tag (ignored outside macOS) is set by no other test in this program
  if (env_set("MIMALLOC_OS_TAG")) GTEST_SKIP() << "MIMALLOC_OS_TAG is set in the environment";
  const long before = mi_option_get(mi_option_os_tag);
  mi_option_set_enabled_default(mi_option_os_tag, false);
  EXPECT_FALSE(mi_option_is_enabled(mi_option_os_tag));
  EXPECT_EQ(mi_option_get(mi_option_os_tag), 0);
  mi_option_set_enabled_default(mi_option_os_tag, true);
  EXPECT_TRUE(mi_option_is_enabled(mi_option_os_tag));
  EXPECT_EQ(mi_option_get(mi_option_os_tag), 1);
  mi_option_set_default(mi_option_os_tag, before);
  EXPECT_EQ(mi_option_get(mi_option_os_tag), before);
}

TEST(Options, InvalidOptionIsIgnored) {
  EXPECT_EQ(mi_option_get(_mi_option_last), 0);
  EXPECT_FALSE(mi_option_is_enabled(_mi_option_last));
  mi_option_set(_mi_option_last, 42);  // ignored, no crash
  EXPECT_EQ(mi_option_get(_mi_option_last), 0);
}

TEST(Options, AllocationWorksUnderChangedOptions) {
  OptionRestore r1(mi_option_eager_commit);
  OptionRestore r2(mi_option_purge_delay);
  mi_option_disable(mi_option_eager_commit);
  mi_option_set(mi_option_purge_delay, 0);
  for (size_t n : {16u, 5000u, 300000u, 8u << 20}) {
    void* p = mi_malloc(n);
    ASSERT_NE(p, nullptr);
    static_cast<char*>(p)[n - 1] = 1;
    mi_free(p);
  }
  mi_collect(true);
}
