// Unit tests of lib/common/options: the option table, parsing of every kind
// of value, lookup by name, sizes, mi_option_set_default, the value's source,
// and reading MIMALLOC_* variables at start-up (in a child process).
#include "common/options.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "unit_util.h"

namespace {

using mi::OptionDesc;
using mi::OptionKind;
using mi::OptionSource;

std::string lower(const char* s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  return r;
}

const OptionDesc* find(const char* name) { return mi::option_find(name, strlen(name)); }

// Restores an option's value and source after a test changed it.
struct OptionRestore {
  mi_option_t option;
  long value;
  OptionSource source;
  explicit OptionRestore(mi_option_t o)
      : option(o), value(mi::option_get(o)), source(mi::option_source(o, nullptr, nullptr)) {}
  ~OptionRestore() { mi::option_set_from(option, value, source, nullptr, 0); }
};

// --- the table ------------------------------------------------------------

TEST(OptionTable, EveryOptionHasItsRow) {
  ASSERT_EQ(mi::OPTION_COUNT, static_cast<int>(_mi_option_last));
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    const OptionDesc& d = mi::option_desc(o);
    SCOPED_TRACE(i);
    EXPECT_EQ(static_cast<int>(d.option), i);
    ASSERT_NE(d.name, nullptr);
    EXPECT_GT(strlen(d.name), 0u);
    EXPECT_EQ(lower(d.name), std::string(d.name)) << "names are lower case";
    for (const char* c = d.name; *c != 0; c++) {
      EXPECT_TRUE((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_') << d.name;
    }
    ASSERT_NE(d.description, nullptr) << d.name;
    EXPECT_GT(strlen(d.description), 0u) << d.name;
  }
}

TEST(OptionTable, NamesAreUnique) {
  std::set<std::string> names;
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    EXPECT_TRUE(names.insert(lower(d.name)).second) << "duplicate name " << d.name;
  }
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    if (d.legacy_name == nullptr) continue;
    EXPECT_TRUE(names.insert(lower(d.legacy_name)).second) << "legacy name " << d.legacy_name << " is taken";
  }
}

TEST(OptionTable, DefaultsWithinRange) {
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    SCOPED_TRACE(d.name);
    EXPECT_LE(d.min, d.max);
    EXPECT_GE(d.default_value, d.min);
    EXPECT_LE(d.default_value, d.max);
    if (d.kind == OptionKind::flag) {
      EXPECT_EQ(d.min, 0);
      EXPECT_EQ(d.max, 1);
    }
    if (d.kind == OptionKind::choice) {
      ASSERT_NE(d.choices, nullptr);
      long n = 0;
      while (d.choices[n] != nullptr) n++;
      EXPECT_EQ(d.min, 0);
      EXPECT_EQ(d.max, n - 1) << "every choice value has a name";
    } else {
      EXPECT_EQ(d.choices, nullptr);
    }
  }
}

TEST(OptionTable, ValuesStartAtTheirDefaults) {
  // Options nobody set (not from the environment, not at run time) hold the
  // table's default.
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    const OptionDesc& d = mi::option_desc(o);
    if (mi::option_source(o, nullptr, nullptr) != OptionSource::default_) continue;
    // the hardened build reads its secure option as on, whatever the table says
    const long want = (o == mi_option_secure && MI_SECURE) ? 1 : d.default_value;
    EXPECT_EQ(mi::option_get(o), want) << d.name;
    EXPECT_EQ(mi_option_get(o), want) << d.name;
  }
}

TEST(OptionTable, OutOfRangeOptionIdsAreHarmless) {
  const mi_option_t bad = static_cast<mi_option_t>(_mi_option_last);
  const mi_option_t neg = static_cast<mi_option_t>(-1);
  EXPECT_EQ(mi_option_get(bad), 0);
  EXPECT_EQ(mi_option_get(neg), 0);
  EXPECT_EQ(mi_option_get_size(bad), 0u);
  mi_option_set(bad, 5);  // ignored
  mi_option_set(neg, 5);
  mi_option_set_default(bad, 5);
  EXPECT_EQ(&mi::option_desc(bad), &mi::option_desc(static_cast<mi_option_t>(0)));
}

// --- option_find ------------------------------------------------------------

TEST(OptionFind, ByNameCaseInsensitive) {
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    EXPECT_EQ(find(d.name), &d) << d.name;
    std::string upper(d.name);
    for (char& c : upper) c = static_cast<char>((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
    EXPECT_EQ(find(upper.c_str()), &d) << upper;
    if (d.legacy_name != nullptr) {
      EXPECT_EQ(find(d.legacy_name), &d) << d.legacy_name;
    }
  }
  EXPECT_EQ(find("Purge_Delay")->option, mi_option_purge_delay);
  EXPECT_EQ(find("NUMA_BIND")->option, mi_option_numa_bind);
}

TEST(OptionFind, LegacyNamesAndAliases) {
  EXPECT_EQ(find("decommit_delay")->option, mi_option_purge_delay);
  EXPECT_EQ(find("DECOMMIT_DELAY")->option, mi_option_purge_delay);
  EXPECT_EQ(find("reset_delay")->option, mi_option_purge_delay);
  EXPECT_EQ(find("eager_region_commit")->option, mi_option_arena_eager_commit);
  EXPECT_EQ(find("reset_decommits")->option, mi_option_purge_decommits);
  EXPECT_EQ(find("large_os_pages")->option, mi_option_allow_large_os_pages);
  EXPECT_EQ(find("limit_os_alloc")->option, mi_option_disallow_os_alloc);
  EXPECT_EQ(find("abandoned_page_reset")->option, mi_option_abandoned_page_purge);
  EXPECT_EQ(find("abandoned_page_decommit")->option, mi_option_abandoned_page_purge);
  EXPECT_EQ(find("segment_cache")->option, mi_option_deprecated_segment_cache);
  EXPECT_EQ(find("decommit_extend_delay")->option, mi_option_purge_extend_delay);
}

TEST(OptionFind, UnknownAndPartialNames) {
  EXPECT_EQ(find("foo"), nullptr);
  EXPECT_EQ(find(""), nullptr);
  EXPECT_EQ(find("purge"), nullptr);         // a prefix is not a match
  EXPECT_EQ(find("purge_delayx"), nullptr);  // nor a longer name
  EXPECT_EQ(find("purge delay"), nullptr);
  // The length bounds the name: "purge_delay=10" looked up with the length of
  // the part before '=' (as the environment reader does).
  const char* entry = "purge_delay=10";
  EXPECT_EQ(mi::option_find(entry, 11)->option, mi_option_purge_delay);
  EXPECT_EQ(mi::option_find(entry, 10), nullptr);
}

// --- option_parse_value -----------------------------------------------------

struct Parsed {
  bool ok;
  long value;
  std::string expected;
};

Parsed parse(mi_option_t o, const char* text) {
  long v = -12345;
  const char* expected = nullptr;
  bool ok = mi::option_parse_value(mi::option_desc(o), text, &v, &expected);
  Parsed p{ok, v, expected != nullptr ? expected : ""};
  if (!ok) {
    EXPECT_EQ(v, -12345) << "a failed parse leaves the value alone (" << text << ")";
  }
  return p;
}

#define EXPECT_PARSES(opt, text, val)                                               \
  do {                                                                              \
    Parsed p_ = parse(opt, text);                                                   \
    EXPECT_TRUE(p_.ok) << #opt << " \"" << text << "\": " << p_.expected;           \
    if (p_.ok) {                                                                    \
      EXPECT_EQ(p_.value, static_cast<long>(val)) << #opt << " \"" << text << "\""; \
    }                                                                               \
  } while (0)

#define EXPECT_REJECTS(opt, text, expected_substr)                                 \
  do {                                                                             \
    Parsed p_ = parse(opt, text);                                                  \
    EXPECT_FALSE(p_.ok) << #opt << " \"" << text << "\" gave " << p_.value;        \
    EXPECT_NE(p_.expected.find(expected_substr), std::string::npos)                \
        << #opt << " \"" << text << "\": expected text \"" << p_.expected << "\""; \
  } while (0)

TEST(OptionParse, Flags) {
  const mi_option_t o = mi_option_verbose;
  for (const char* t :
       {"1", "true", "TRUE", "True", "on", "ON", "yes", "Yes", "y", "enable", "enabled", " 1", "on  ", "\tyes\t"}) {
    EXPECT_PARSES(o, t, 1);
  }
  for (const char* t : {"0", "false", "FALSE", "off", "Off", "no", "NO", "n", "disable", "disabled", " 0 "}) {
    EXPECT_PARSES(o, t, 0);
  }
  for (const char* t : {"2", "-1", "maybe", "truex", "o", "1 1", "10", "", "  ", "yes please"}) {
    EXPECT_REJECTS(o, t, "boolean");
  }
}

TEST(OptionParse, Integers) {
  const mi_option_t o = mi_option_max_segment_reclaim;  // 0 .. 100
  EXPECT_PARSES(o, "0", 0);
  EXPECT_PARSES(o, "17", 17);
  EXPECT_PARSES(o, "100", 100);
  EXPECT_PARSES(o, "+5", 5);
  EXPECT_PARSES(o, "  42  ", 42);
  EXPECT_PARSES(o, "007", 7);
  EXPECT_REJECTS(o, "101", "a value from 0 to 100");
  EXPECT_REJECTS(o, "-1", "a value from 0 to 100");
  EXPECT_REJECTS(o, "abc", "an integer");
  EXPECT_REJECTS(o, "12abc", "an integer");
  EXPECT_REJECTS(o, "1.5", "an integer");
  EXPECT_REJECTS(o, "", "an integer");
  EXPECT_REJECTS(o, "-", "an integer");
  EXPECT_REJECTS(o, "99999999999999999999999", "an integer");  // overflows 64 bits
  EXPECT_REJECTS(o, "yes", "an integer");                      // words only for 0/1 numbers

  const mi_option_t neg = mi_option_reserve_huge_os_pages_at;  // -1 .. 1023
  EXPECT_PARSES(neg, "-1", -1);
  EXPECT_PARSES(neg, "1023", 1023);
  EXPECT_REJECTS(neg, "-2", "a value from -1 to 1023");
  EXPECT_REJECTS(neg, "1024", "a value from -1 to 1023");

  const mi_option_t big = mi_option_max_warnings;  // -1 .. 2^31-1
  EXPECT_PARSES(big, "2147483647", 2147483647L);
  EXPECT_REJECTS(big, "2147483648", "a value from -1 to 2147483647");
}

TEST(OptionParse, SizesInKiB) {
  const mi_option_t o = mi_option_reserve_os_memory;  // size_kib, 0 .. NO_MAX
  ASSERT_EQ(mi::option_desc(o).kind, OptionKind::size_kib);
  EXPECT_PARSES(o, "0", 0);
  EXPECT_PARSES(o, "64MiB", 64 * 1024);
  EXPECT_PARSES(o, "64MB", 64 * 1024);
  EXPECT_PARSES(o, "64M", 64 * 1024);
  EXPECT_PARSES(o, "64m", 64 * 1024);
  EXPECT_PARSES(o, "64mib", 64 * 1024);
  EXPECT_PARSES(o, "64 MiB", 64 * 1024);
  EXPECT_PARSES(o, "1GiB", 1024 * 1024);
  EXPECT_PARSES(o, "1G", 1024 * 1024);
  EXPECT_PARSES(o, "2gb", 2 * 1024 * 1024);
  EXPECT_PARSES(o, "512k", 512);
  EXPECT_PARSES(o, "512K", 512);
  EXPECT_PARSES(o, "512KiB", 512);
  EXPECT_PARSES(o, "512kb", 512);
  EXPECT_PARSES(o, "1TiB", 1024L * 1024 * 1024);
  // bare numbers and B are bytes, rounded up to KiB
  EXPECT_PARSES(o, "1024", 1);
  EXPECT_PARSES(o, "1", 1);
  EXPECT_PARSES(o, "1025", 2);
  EXPECT_PARSES(o, "4096B", 4);
  EXPECT_PARSES(o, "4097 b", 5);
  EXPECT_PARSES(o, " 8k ", 8);
  EXPECT_REJECTS(o, "-1MiB", "a size");
  EXPECT_REJECTS(o, "12x", "a size");
  EXPECT_REJECTS(o, "MiB", "a size");
  EXPECT_REJECTS(o, "1.5GiB", "a size");
  EXPECT_REJECTS(o, "64MiBs", "a size");
  EXPECT_REJECTS(o, "64 M iB", "a size");
  EXPECT_REJECTS(o, "", "a size");
  EXPECT_REJECTS(o, "99999999999T", "a size");  // overflows 64 bits of bytes
  // beyond the option's maximum (2^31-1 KiB, just under 2 TiB)
  EXPECT_REJECTS(o, "2TiB", "a value from 0 to");

  const mi_option_t ar = mi_option_arena_reserve;  // min 4096 KiB
  EXPECT_PARSES(ar, "4MiB", 4096);
  EXPECT_REJECTS(ar, "1MiB", "a value from 4096 to");
}

TEST(OptionParse, Durations) {
  const mi_option_t o = mi_option_purge_delay;  // -1 .. NO_MAX ms
  ASSERT_EQ(mi::option_desc(o).kind, OptionKind::duration_ms);
  EXPECT_PARSES(o, "10", 10);
  EXPECT_PARSES(o, "10ms", 10);
  EXPECT_PARSES(o, "10MS", 10);
  EXPECT_PARSES(o, "10 ms", 10);
  EXPECT_PARSES(o, "2s", 2000);
  EXPECT_PARSES(o, "2S", 2000);
  EXPECT_PARSES(o, "1min", 60000);
  EXPECT_PARSES(o, "1m", 60000);
  EXPECT_PARSES(o, "3MIN", 180000);
  EXPECT_PARSES(o, "1h", 3600000);
  EXPECT_PARSES(o, "0", 0);
  EXPECT_PARSES(o, "-1", -1);
  EXPECT_PARSES(o, " 5s ", 5000);
  EXPECT_REJECTS(o, "-2", "a value from -1 to");
  EXPECT_REJECTS(o, "10 sec", "a duration");
  EXPECT_REJECTS(o, "10x", "a duration");
  EXPECT_REJECTS(o, "1.5s", "a duration");
  EXPECT_REJECTS(o, "ms", "a duration");
  EXPECT_REJECTS(o, "", "a duration");
  EXPECT_REJECTS(o, "1000000h", "a value from -1 to");  // beyond 2^31-1 ms

  const mi_option_t ext = mi_option_purge_extend_delay;  // 0 .. NO_MAX
  EXPECT_REJECTS(ext, "-1", "a value from 0 to");
}

TEST(OptionParse, Choices) {
  const mi_option_t o = mi_option_numa_bind;
  ASSERT_EQ(mi::option_desc(o).kind, OptionKind::choice);
  EXPECT_PARSES(o, "none", 0);
  EXPECT_PARSES(o, "preferred", 1);
  EXPECT_PARSES(o, "strict", 2);
  EXPECT_PARSES(o, "STRICT", 2);
  EXPECT_PARSES(o, "Preferred", 1);
  EXPECT_PARSES(o, " none ", 0);
  EXPECT_PARSES(o, "1", 1);  // the number of a choice
  EXPECT_REJECTS(o, "3", "a value from 0 to 2");
  EXPECT_REJECTS(o, "-1", "a value from 0 to 2");
  EXPECT_REJECTS(o, "strictly", "one of none, preferred, strict");
  EXPECT_REJECTS(o, "pref", "one of none, preferred, strict");
  EXPECT_REJECTS(o, "", "one of none, preferred, strict");
}

TEST(OptionParse, NumbersThatAreFlagsAcceptWords) {
  // A number option whose range is 0..1 accepts the flag words too.
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    if (d.kind != OptionKind::number) continue;
    long v = -7;
    const char* expected = nullptr;
    bool ok = mi::option_parse_value(d, "yes", &v, &expected);
    if (d.min == 0 && d.max == 1) {
      EXPECT_TRUE(ok) << d.name;
      EXPECT_EQ(v, 1) << d.name;
    } else {
      EXPECT_FALSE(ok) << d.name;
      EXPECT_EQ(v, -7) << d.name;
    }
  }
}

// --- sizes, set_default, sources ---------------------------------------------

TEST(OptionValues, GetSizeConvertsKiBToBytes) {
  OptionRestore r(mi_option_arena_reserve);
  mi_option_set(mi_option_arena_reserve, 2048);
  EXPECT_EQ(mi::option_get_size(mi_option_arena_reserve), 2u * 1024 * 1024);
  EXPECT_EQ(mi_option_get_size(mi_option_arena_reserve), 2u * 1024 * 1024);
  EXPECT_EQ(mi_option_get(mi_option_arena_reserve), 2048);
  mi_option_set(mi_option_arena_reserve, 1048576);
  EXPECT_EQ(mi_option_get_size(mi_option_arena_reserve), size_t{1} << 30);
  // Not a size: returned as it is; negative or zero: 0.
  OptionRestore r2(mi_option_max_errors);
  mi_option_set(mi_option_max_errors, 77);
  EXPECT_EQ(mi_option_get_size(mi_option_max_errors), 77u);
  mi_option_set(mi_option_max_errors, -1);
  EXPECT_EQ(mi_option_get_size(mi_option_max_errors), 0u);
}

TEST(OptionValues, GetClamp) {
  OptionRestore r(mi_option_max_errors);
  mi_option_set(mi_option_max_errors, 50);
  EXPECT_EQ(mi_option_get_clamp(mi_option_max_errors, 0, 10), 10);
  EXPECT_EQ(mi_option_get_clamp(mi_option_max_errors, 60, 100), 60);
  EXPECT_EQ(mi_option_get_clamp(mi_option_max_errors, 0, 100), 50);
  EXPECT_EQ(mi::option_get_clamp(mi_option_max_errors, 0, 10), 10);
}

TEST(OptionValues, SetDefaultDoesNotOverrideAnExplicitSet) {
  const mi_option_t o = mi_option_os_tag;  // no effect on Linux: safe to change
  OptionRestore r(o);
  mi::option_set_from(o, mi::option_desc(o).default_value, OptionSource::default_, nullptr, 0);

  mi_option_set_default(o, 120);
  EXPECT_EQ(mi_option_get(o), 120);
  EXPECT_EQ(mi::option_source(o, nullptr, nullptr), OptionSource::default_);
  mi_option_set_default(o, 130);  // a default may be changed again
  EXPECT_EQ(mi_option_get(o), 130);

  mi_option_set(o, 7);
  EXPECT_EQ(mi_option_get(o), 7);
  EXPECT_EQ(mi::option_source(o, nullptr, nullptr), OptionSource::runtime);
  mi_option_set_default(o, 140);
  EXPECT_EQ(mi_option_get(o), 7) << "set_default overrode an explicit mi_option_set";

  // An option that came from the environment is not overridden either.
  mi::option_set_from(o, 9, OptionSource::environment, nullptr, 0);
  mi_option_set_default(o, 150);
  EXPECT_EQ(mi_option_get(o), 9);
  // mi_option_set does override the environment.
  mi_option_set(o, 11);
  EXPECT_EQ(mi_option_get(o), 11);
  EXPECT_EQ(mi::option_source(o, nullptr, nullptr), OptionSource::runtime);
}

TEST(OptionValues, EnableDisable) {
  const mi_option_t o = mi_option_deprecated_page_reset;  // no effect
  OptionRestore r(o);
  mi_option_enable(o);
  EXPECT_TRUE(mi_option_is_enabled(o));
  EXPECT_TRUE(mi::option_is_enabled(o));
  mi_option_disable(o);
  EXPECT_FALSE(mi_option_is_enabled(o));
  mi_option_set_enabled(o, true);
  EXPECT_EQ(mi_option_get(o), 1);
  mi_option_set_enabled_default(o, false);  // explicit set above: no effect
  EXPECT_EQ(mi_option_get(o), 1);
}

TEST(OptionValues, SourceAndLocation) {
  const mi_option_t o = mi_option_os_tag;
  OptionRestore r(o);
  mi::option_set_from(o, 5, OptionSource::config_file, "/etc/x.toml", 12);
  const char* file = nullptr;
  int line = 0;
  EXPECT_EQ(mi::option_source(o, &file, &line), OptionSource::config_file);
  EXPECT_STREQ(file, "/etc/x.toml");
  EXPECT_EQ(line, 12);
  mi_option_set(o, 6);
  EXPECT_EQ(mi::option_source(o, &file, &line), OptionSource::runtime);
  EXPECT_EQ(file, nullptr);
}

TEST(OptionValues, InitializedOnce) {
  EXPECT_TRUE(mi::options_initialized());
  const long before = mi_option_get(mi_option_os_tag);
  mi::options_init();  // a second call does nothing
  EXPECT_EQ(mi_option_get(mi_option_os_tag), before);
}

// --- the environment (child processes) --------------------------------------

// Run in a child: prints "@@<name>=<value>,<source>" for every option.
TEST(OptionsChild, DISABLED_Report) {
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    printf("@@%s=%ld,%d\n", mi::option_desc(o).name, mi_option_get(o),
           static_cast<int>(mi::option_source(o, nullptr, nullptr)));
  }
  fflush(stdout);
}

struct Reported {
  long value = -999999;
  int source = -1;
};

Reported reported(const unit::ChildResult& r, const char* name) {
  Reported rep;
  std::string key = std::string("@@") + name + "=";
  size_t pos = r.out.find(key);
  if (pos == std::string::npos) return rep;
  sscanf(r.out.c_str() + pos + key.size(), "%ld,%d", &rep.value, &rep.source);
  return rep;
}

constexpr int ENV = static_cast<int>(OptionSource::environment);
constexpr int DEF = static_cast<int>(OptionSource::default_);

TEST(OptionsEnvironment, ValuesOfEveryKind) {
  unit::ChildResult r = unit::run_child(
      "OptionsChild.DISABLED_Report", {
                                          "MIMALLOC_PURGE_DELAY=2s", "MIMALLOC_ARENA_RESERVE=64MiB",
                                          "MIMALLOC_NUMA_BIND=preferred", "MIMALLOC_EAGER_COMMIT=off",
                                          "MIMALLOC_RESET_DECOMMITS=false",  // legacy name of purge_decommits
                                          "MIMALLOC_Max_Errors=5",           // the name part is case-insensitive
                                          "MIMALLOC_PURGE_EXTEND_DELAY=1min", "MIMALLOC_GUARDED_MIN=512k",
                                          "MIMALLOC_OS_TAG=",             // empty: as if unset
                                          "MIMALLOC_DISABLE_REDIRECT=1",  // not an option, but known: silently ignored
                                      });
  ASSERT_EQ(r.status, 0) << r.describe();
  auto check = [&](const char* name, long value, int source) {
    Reported rep = reported(r, name);
    EXPECT_EQ(rep.value, value) << name << "\n" << r.describe();
    EXPECT_EQ(rep.source, source) << name;
  };
  check("purge_delay", 2000, ENV);
  check("arena_reserve", 64 * 1024, ENV);
  check("numa_bind", 1, ENV);
  check("eager_commit", 0, ENV);
  check("purge_decommits", 0, ENV);
  check("max_errors", 5, ENV);
  check("purge_extend_delay", 60000, ENV);
  check("guarded_min", 512, ENV);
  check("os_tag", 100, DEF);
  check("show_stats", 0, DEF);
  check("verbose", 0, DEF);
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << "valid variables gave a warning:\n" << r.err;
}

TEST(OptionsEnvironment, UnknownVariableWarns) {
  unit::ChildResult r = unit::run_child("OptionsChild.DISABLED_Report", {"MIMALLOC_FOO=1", "MIMALLOC_PURGE_DELAY=25"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.err.find("mimalloc-numa: warning:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("MIMALLOC_FOO"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not an option"), std::string::npos) << r.err;
  // the other variables are still read
  EXPECT_EQ(reported(r, "purge_delay").value, 25);
  EXPECT_EQ(reported(r, "purge_delay").source, ENV);
}

TEST(OptionsEnvironment, InvalidValuesWarnAndKeepTheDefault) {
  unit::ChildResult r = unit::run_child("OptionsChild.DISABLED_Report", {
                                                                            "MIMALLOC_ARENA_PURGE_MULT=lots",
                                                                            "MIMALLOC_MAX_SEGMENT_RECLAIM=101",
                                                                            "MIMALLOC_NUMA_BIND=sometimes",
                                                                            "MIMALLOC_PURGE_DELAY=soon",
                                                                            "MIMALLOC_ARENA_RESERVE=12 parsecs",
                                                                            "MIMALLOC_VERBOSE=perhaps",
                                                                        });
  ASSERT_EQ(r.status, 0) << r.describe();
  struct Case {
    const char* var;
    const char* expected;
    const char* name;
  };
  const Case cases[] = {
      {"MIMALLOC_ARENA_PURGE_MULT", "expected an integer", "arena_purge_mult"},
      {"MIMALLOC_MAX_SEGMENT_RECLAIM", "expected a value from 0 to 100", "max_segment_reclaim"},
      {"MIMALLOC_NUMA_BIND", "expected one of none, preferred, strict", "numa_bind"},
      {"MIMALLOC_PURGE_DELAY", "expected a duration", "purge_delay"},
      {"MIMALLOC_ARENA_RESERVE", "expected a size", "arena_reserve"},
      {"MIMALLOC_VERBOSE", "expected a boolean", "verbose"},
  };
  for (const Case& c : cases) {
    // one warning line naming the variable and what was expected
    size_t pos = r.err.find(std::string(c.var) + " has an invalid value");
    ASSERT_NE(pos, std::string::npos) << c.var << "\n" << r.err;
    size_t eol = r.err.find('\n', pos);
    std::string line = r.err.substr(pos, eol - pos);
    EXPECT_NE(line.find(c.expected), std::string::npos) << line;
    size_t bol = r.err.rfind('\n', pos);
    bol = (bol == std::string::npos) ? 0 : bol + 1;
    EXPECT_EQ(r.err.compare(bol, 24, "mimalloc-numa: warning: "), 0) << r.err.substr(bol, eol - bol);
    Reported rep = reported(r, c.name);
    EXPECT_EQ(rep.value, mi::option_desc(mi::option_find(c.name, strlen(c.name))->option).default_value) << c.name;
    EXPECT_EQ(rep.source, DEF) << c.name;
  }
}

TEST(OptionsEnvironment, ShowErrorsOffSilencesWarnings) {
  unit::ChildResult r = unit::run_child("OptionsChild.DISABLED_Report", {"MIMALLOC_SHOW_ERRORS=0", "MIMALLOC_FOO=1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  // Variables are read in environment order; SHOW_ERRORS comes first here,
  // so the unknown MIMALLOC_FOO that follows is ignored silently.
  EXPECT_EQ(r.err.find("MIMALLOC_FOO"), std::string::npos) << r.err;
  EXPECT_EQ(reported(r, "show_errors").value, 0);
  EXPECT_EQ(reported(r, "show_errors").source, ENV);
}

}  // namespace

namespace {

void append_output(const char* msg, void* arg) { static_cast<std::string*>(arg)->append(msg); }

// mi_option_set of an option read at start-up, after start-up: the value is
// stored (mi_option_get reads it back) and, with verbose, a note says it
// changes nothing already set up; a run-time option gets no such note.
TEST(OptionsRuntime, StartupOptionSetLateSaysSo) {
  void* p = mi_malloc(16);  // start-up is over
  mi_free(p);
  const long verbose0 = mi_option_get(mi_option_verbose);
  const long nodes0 = mi_option_get(mi_option_use_numa_nodes);
  const long delay0 = mi_option_get(mi_option_purge_delay);
  std::string out;
  mi_register_output(&append_output, &out);
  mi_option_set(mi_option_verbose, 1);
  mi_option_set(mi_option_use_numa_nodes, 1);
  EXPECT_EQ(mi_option_get(mi_option_use_numa_nodes), 1);
  EXPECT_NE(out.find("mi_option_set(use_numa_nodes): this option is read at start-up"), std::string::npos) << out;
  out.clear();
  mi_option_set(mi_option_purge_delay, 50);
  EXPECT_EQ(out.find("read at start-up"), std::string::npos) << out;
  mi_option_set(mi_option_use_numa_nodes, nodes0);
  mi_option_set(mi_option_purge_delay, delay0);
  mi_option_set(mi_option_verbose, verbose0);
  mi_register_output(nullptr, nullptr);
}

}  // namespace
