// Unit tests of lib/common/config (the TOML config reader) together with the
// option table (lib/common/options):
//   - units: sizes, durations, booleans, integers, choices, from a file;
//   - ranges: every option at its minimum and maximum, and just outside;
//   - one test per kind of bad input (fixtures in tests/config/errors): the
//     message names file:line, the key and what was expected, and the rest
//     of the file still applies;
//   - files: CRLF line ends, no final newline, a byte order mark, a 1 MB
//     file, random bytes, the file reader's chunk boundaries, unreadable files,
//     FIFOs and devices, files over the reader's 1 MiB limit;
//   - precedence: every option from the file, from the environment, from
//     both (child processes: options are read once, at start-up), and
//     mi_option_set at run time above all; MIMALLOC_VERBOSE shows sources;
//   - the sample config/mimalloc-numa.toml reads without a problem.
// What toml++ makes of the same files: tests/config/tomlpp_compare.cpp.
//
// Options are process-wide: tests that apply a file in this process use
// OptionsSnapshot (every option back to its default for the test, the old
// values and sources restored after, [node.N] settings forgotten) and apply
// only options without effect on this process's allocations (os_tag,
// guarded_*, deprecated_*, retry_on_oom, ...). The range test applies every
// option, disallow_os_alloc too, one at a time, and restores each before
// anything allocates again.
#include "common/config.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <mimalloc-numa.h>
#include <mimalloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/config_toml.h"
#include "common/messages.h"
#include "common/options.h"
#include "common/program.h"
#include "unit_util.h"

#ifndef MI_CONFIG_FIXTURES
#error "MI_CONFIG_FIXTURES (tests/config) must be defined by tests/unit/meson.build"
#endif
#ifndef MI_SOURCE_ROOT
#error "MI_SOURCE_ROOT must be defined by tests/unit/meson.build"
#endif

namespace {

using mi::OptionDesc;
using mi::OptionKind;
using mi::OptionSource;

const char* const WARNING = "mimalloc-numa: warning: ";

std::string fixture(const std::string& rel) {
  const char* dir = getenv("MI_CONFIG_FIXTURES");
  return std::string((dir != nullptr && dir[0] != 0) ? dir : MI_CONFIG_FIXTURES) + "/" + rel;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& data, const char* suffix = ".toml") {
    const char* dir = getenv("TMPDIR");
    path = std::string((dir != nullptr && dir[0] != 0) ? dir : "/tmp") + "/mi-config-XXXXXX" + suffix;
    std::vector<char> p(path.begin(), path.end());
    p.push_back(0);
    int fd = mkstemps(p.data(), static_cast<int>(strlen(suffix)));
    if (fd >= 0) {
      path = p.data();
      size_t off = 0;
      while (off < data.size()) {
        ssize_t n = write(fd, data.data() + off, data.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      close(fd);
    }
  }
  ~TempFile() { unlink(path.c_str()); }
};

const OptionDesc& desc(const char* name) {
  const OptionDesc* d = mi::option_find(name, strlen(name));
  if (d == nullptr) ADD_FAILURE() << "no option " << name;
  return d != nullptr ? *d : mi::option_desc(static_cast<mi_option_t>(0));
}

// --- capturing messages -------------------------------------------------------

void capture(const char* msg, void* arg) { static_cast<std::vector<std::string>*>(arg)->emplace_back(msg); }

// Every option's value and source saved; for the test, every option at its
// default (source "default"), show_errors on and no limit on warnings, so
// that every problem is printed; at the end everything restored and the
// [node.N] settings forgotten.
class OptionsSnapshot {
 public:
  OptionsSnapshot() {
    for (int i = 0; i < mi::OPTION_COUNT; i++) {
      const mi_option_t o = static_cast<mi_option_t>(i);
      saved_[i].value = mi::option_get(o);
      saved_[i].source = mi::option_source(o, &saved_[i].file, &saved_[i].line, &saved_[i].program);
      mi::option_set_from(o, mi::option_desc(o).default_value, OptionSource::default_, nullptr, 0);
    }
    mi::option_set_from(mi_option_max_warnings, -1, OptionSource::default_, nullptr, 0);
    mi::config_reset_nodes();
  }
  ~OptionsSnapshot() {
    mi_register_output(nullptr, nullptr);
    for (int i = 0; i < mi::OPTION_COUNT; i++) {
      mi::option_set_from(static_cast<mi_option_t>(i), saved_[i].value, saved_[i].source, saved_[i].file,
                          saved_[i].line, saved_[i].program);
    }
    mi::config_reset_nodes();
    mi::program_identify();  // this program's own names again (a test may have set others)
  }
  OptionsSnapshot(const OptionsSnapshot&) = delete;
  OptionsSnapshot& operator=(const OptionsSnapshot&) = delete;

 private:
  struct Saved {
    long value;
    OptionSource source;
    const char* file;
    int line;
    const char* program;
  } saved_[mi::OPTION_COUNT];
};

// The result of reading one file both ways: checked (apply=false, messages to
// a callback) and applied (apply=true, messages as warnings through the
// registered output).
struct Reading {
  std::string name;
  int checked = -1;
  int applied = -1;
  std::vector<std::string> check_messages;  // "NAME:LINE: text\n"
  std::vector<std::string> warnings;        // "mimalloc-numa: warning: NAME:LINE: text\n"

  // The message of line `line` (check pass), or "".
  std::string at(int line) const {
    const std::string prefix = name + ":" + std::to_string(line) + ": ";
    for (const std::string& m : check_messages) {
      if (m.compare(0, prefix.size(), prefix) == 0) return m;
    }
    return "";
  }
  std::string all() const {
    std::string s;
    for (const std::string& m : check_messages) s += "  " + m;
    return s;
  }
};

// Reads `data` named `name` (the name outlives the options that point at it:
// callers pass a std::string that lives as long as the snapshot).
// The options applied remember the file's name (config.h): it must stay (ASan
// found the options pointing into a test's dead temporary).
const char* lasting_name(const std::string& name) {
  static std::set<std::string> names;
  return names.insert(name).first->c_str();
}

Reading run_text(const std::string& name, const std::string& data) {
  Reading r;
  r.name = name;
  r.checked = mi::config_parse(name.c_str(), data.data(), data.size(), false, &capture, &r.check_messages);
  mi_register_output(&capture, &r.warnings);
  r.applied = mi::config_parse(lasting_name(name), data.data(), data.size(), true, nullptr, nullptr);
  mi_register_output(nullptr, nullptr);
  return r;
}

// The same through the file reader (config_parse_file: open, 4 KiB reads).
Reading run_file(const std::string& path) {
  Reading r;
  r.name = path;
  r.checked = mi::config_parse_file(path.c_str(), false, &capture, &r.check_messages);
  mi_register_output(&capture, &r.warnings);
  r.applied = mi::config_parse_file(lasting_name(path), true, nullptr, nullptr);
  mi_register_output(nullptr, nullptr);
  return r;
}

// Every message is one line "NAME:LINE: text", the checked and applied passes
// say the same (the warnings with their prefix), and the count is the number
// of messages.
void expect_well_formed(const Reading& r, long max_line) {
  EXPECT_EQ(r.checked, r.applied) << r.all();
  EXPECT_EQ(static_cast<size_t>(r.checked), r.check_messages.size()) << r.all();
  ASSERT_EQ(r.warnings.size(), r.check_messages.size()) << r.all();
  long last = 0;
  for (size_t i = 0; i < r.check_messages.size(); i++) {
    const std::string& m = r.check_messages[i];
    // the same text; a warning is cut at MESSAGE_MAX bytes (a checked message 64 later)
    const std::string& w = r.warnings[i];
    const std::string full = WARNING + m;
    if (full.size() <= mi::MESSAGE_MAX - 1) {
      EXPECT_EQ(w, full);
    } else {
      EXPECT_EQ(full.compare(0, w.size() - 1, w, 0, w.size() - 1), 0) << w << full;
    }
    ASSERT_FALSE(m.empty());
    EXPECT_EQ(m.back(), '\n') << m;
    EXPECT_EQ(m.find('\n'), m.size() - 1) << "a message of more than one line: " << m;
    for (unsigned char c : m.substr(0, m.size() - 1))
      EXPECT_FALSE(c < 0x20 && c != '\t') << "a control character in " << m;
    ASSERT_EQ(m.compare(0, r.name.size() + 1, r.name + ":"), 0) << m;
    const long line = strtol(m.c_str() + r.name.size() + 1, nullptr, 10);
    EXPECT_GE(line, 1) << m;
    EXPECT_LE(line, max_line) << m;
    EXPECT_GE(line, last) << "messages out of line order: " << m;
    last = line;
  }
}

long lines_of(const std::string& data) {
  long n = std::count(data.begin(), data.end(), '\n');
  if (!data.empty() && data.back() != '\n') n++;
  return n;
}

// The option has `value` from line `line` of the file `name`.
void expect_from_file(const char* option, long value, const std::string& name, int line) {
  const OptionDesc& d = desc(option);
  const char* file = nullptr;
  const char* program = nullptr;
  int at = 0;
  EXPECT_EQ(mi::option_source(d.option, &file, &at, &program), OptionSource::config_file) << option;
  EXPECT_EQ(mi::option_get(d.option), value) << option;
  EXPECT_EQ(at, line) << option;
  EXPECT_STREQ(file, name.c_str()) << option;
  EXPECT_EQ(program, nullptr) << option << " came from [program." << program << "], not [options]";
}

// The option has `value` from line `line` of the file `name`, table [program.PROGRAM].
void expect_from_program(const char* option, long value, const std::string& name, int line, const char* program) {
  const OptionDesc& d = desc(option);
  const char* file = nullptr;
  const char* from = nullptr;
  int at = 0;
  EXPECT_EQ(mi::option_source(d.option, &file, &at, &from), OptionSource::config_file) << option;
  EXPECT_EQ(mi::option_get(d.option), value) << option;
  EXPECT_EQ(at, line) << option;
  EXPECT_STREQ(file, name.c_str()) << option;
  EXPECT_STREQ(from, program) << option;
}

void expect_not_applied(const char* option) {
  const OptionDesc& d = desc(option);
  EXPECT_EQ(mi::option_source(d.option, nullptr, nullptr), OptionSource::default_) << option << " was applied";
  EXPECT_EQ(mi::option_get(d.option), d.default_value) << option;
}

// The message at `line` names the file and line and holds every one of `parts`.
void expect_message(const Reading& r, int line, std::initializer_list<const char*> parts) {
  const std::string m = r.at(line);
  ASSERT_FALSE(m.empty()) << "no message for line " << line << "; messages:\n" << r.all();
  for (const char* part : parts) EXPECT_NE(m.find(part), std::string::npos) << "\"" << part << "\" not in: " << m;
}

// The [program.NAME] tables applied by the last file, as "NAME:LINE" in order.
std::vector<std::string> applied_programs() {
  std::vector<std::string> v;
  const int n = mi::config_applied_program(0, nullptr, nullptr);
  for (int i = 0; i < n; i++) {
    const char* name = nullptr;
    int line = 0;
    mi::config_applied_program(i, &name, &line);
    v.push_back(std::string(name != nullptr ? name : "(null)") + ":" + std::to_string(line));
  }
  return v;
}

// --- units --------------------------------------------------------------------

TEST(ConfigUnits, FromFile) {
  OptionsSnapshot snap;
  const std::string path = fixture("valid/units.toml");
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  EXPECT_EQ(r.applied, 0);
  struct Want {
    const char* option;
    long value;
    int line;
  };
  const Want wants[] = {
      {"reserve_os_memory", 64 * 1024, 5},  // "64MiB", in KiB
      {"arena_reserve", 1024 * 1024, 6},    // "1GiB"
      {"guarded_min", 512, 7},              // "512k"
      {"guarded_max", 1025, 8},             // 1048577 bytes, rounded up
      {"purge_delay", 10, 10},              // "10ms"
      {"purge_extend_delay", 2000, 11},     // "2s"
      {"retry_on_oom", 250, 12},            // 250 (ms)
      {"show_stats", 1, 14},                // true
      {"verbose", 0, 15},                   // false
      {"eager_commit", 1, 16},              // "on"
      {"purge_decommits", 0, 17},           // "off"
      {"allow_large_os_pages", 1, 18},      // "yes"
      {"deprecated_page_reset", 0, 19},     // "no"
      {"abandoned_page_purge", 1, 20},      // 1
      {"deprecated_segment_reset", 0, 21},  // 0
      {"disallow_os_alloc", 0, 22},         // "false"
      {"destroy_on_exit", 1, 23},           // "true"
      {"visit_abandoned", 1, 24},           // "1"
      {"guarded_precise", 0, 25},           // "0"
      {"os_tag", 0x7f, 27},                 // 0x7f
      {"max_errors", -1, 28},               // -1
      {"max_warnings", 20, 29},             // +20
      {"max_segment_reclaim", 15, 30},      // 0o17
      {"arena_eager_commit", 1, 31},        // 0b1
      {"generic_collect", 1000, 32},        // 1_000
      {"numa_bind", 1, 34},                 // "preferred"
  };
  // (destroy_on_exit and the others last only until the snapshot restores them)
  for (const Want& w : wants) expect_from_file(w.option, w.value, path, w.line);
}

// One option set by a one-line file; returns the value and whether it applied
// (and the message if not).
struct One {
  bool applied;
  long value;
  std::string message;
};

One apply_one(const char* option, const std::string& toml_value) {
  OptionsSnapshot snap;
  static const std::string name = "one.toml";
  Reading r = run_text(name, "[options]\n" + std::string(option) + " = " + toml_value + "\n");
  const OptionDesc& d = desc(option);
  One one{mi::option_source(d.option, nullptr, nullptr) == OptionSource::config_file, mi::option_get(d.option),
          r.check_messages.empty() ? "" : r.check_messages[0]};
  if (one.applied != (r.checked == 0))
    ADD_FAILURE() << option << " = " << toml_value << ": applied and a problem: " << r.all();
  return one;
}

#define EXPECT_APPLIES(option, toml_value, want)                                     \
  do {                                                                               \
    One o_ = apply_one(option, toml_value);                                          \
    EXPECT_TRUE(o_.applied) << option << " = " << toml_value << ": " << o_.message;  \
    if (o_.applied) {                                                                \
      EXPECT_EQ(o_.value, static_cast<long>(want)) << option << " = " << toml_value; \
    }                                                                                \
  } while (0)

#define EXPECT_REFUSED(option, toml_value, expected_text)                                         \
  do {                                                                                            \
    One o_ = apply_one(option, toml_value);                                                       \
    EXPECT_FALSE(o_.applied) << option << " = " << toml_value << " gave " << o_.value;            \
    EXPECT_NE(o_.message.find("one.toml:2: "), std::string::npos) << o_.message;                  \
    EXPECT_NE(o_.message.find(std::string("'") + option + "'"), std::string::npos) << o_.message; \
    EXPECT_NE(o_.message.find(expected_text), std::string::npos)                                  \
        << "\"" << expected_text << "\" not in " << o_.message;                                   \
  } while (0)

TEST(ConfigUnits, Sizes) {
  const char* o = "guarded_min";  // a size without effect in this build
  EXPECT_APPLIES(o, "\"64MiB\"", 64 * 1024);
  EXPECT_APPLIES(o, "\"64MB\"", 64 * 1024);
  EXPECT_APPLIES(o, "\"64m\"", 64 * 1024);
  EXPECT_APPLIES(o, "\"1GiB\"", 1024 * 1024);
  EXPECT_APPLIES(o, "\"1G\"", 1024 * 1024);
  EXPECT_APPLIES(o, "\"512k\"", 512);
  EXPECT_APPLIES(o, "\"512KiB\"", 512);
  EXPECT_APPLIES(o, "'512 KiB'", 512);
  EXPECT_APPLIES(o, "\"1TiB\"", 1024L * 1024 * 1024);
  EXPECT_APPLIES(o, "\"4096B\"", 4);
  EXPECT_APPLIES(o, "\"4096\"", 4);  // a bare number in a string: bytes
  EXPECT_APPLIES(o, "4096", 4);      // an integer: bytes
  EXPECT_APPLIES(o, "1025", 2);      // rounded up to KiB
  EXPECT_APPLIES(o, "0", 0);
  EXPECT_APPLIES(o, "0x100000", 1024);
  EXPECT_APPLIES(o, "1_048_576", 1024);
  EXPECT_REFUSED(o, "\"1.5GiB\"", "expected a size");
  EXPECT_REFUSED(o, "\"64 parsecs\"", "expected a size");
  EXPECT_REFUSED(o, "-1", "expected a size");
  EXPECT_REFUSED(o, "true", "expected a size");
  EXPECT_REFUSED(o, "\"2TiB\"", "a value from 0 to 2147483647");  // in KiB: just over the maximum
}

TEST(ConfigUnits, Durations) {
  const char* o = "retry_on_oom";  // a duration without effect on Linux
  EXPECT_APPLIES(o, "\"10ms\"", 10);
  EXPECT_APPLIES(o, "\"10 ms\"", 10);
  EXPECT_APPLIES(o, "\"2s\"", 2000);
  EXPECT_APPLIES(o, "\"1min\"", 60000);
  EXPECT_APPLIES(o, "\"1h\"", 3600000);
  EXPECT_APPLIES(o, "\"250\"", 250);  // bare: milliseconds
  EXPECT_APPLIES(o, "250", 250);
  EXPECT_APPLIES(o, "0", 0);
  EXPECT_REFUSED(o, "\"soon\"", "expected a duration");
  EXPECT_REFUSED(o, "\"1.5s\"", "expected a duration");
  EXPECT_REFUSED(o, "false", "expected a duration");
  EXPECT_REFUSED(o, "-1", "a value from 0 to");
  // purge_delay takes -1 (never)
  EXPECT_APPLIES("purge_delay", "-1", -1);
  EXPECT_REFUSED("purge_delay", "-2", "a value from -1 to 2147483647");
}

TEST(ConfigUnits, Booleans) {
  const char* o = "guarded_precise";  // a flag without effect in this build
  for (const char* yes : {"true", "1", "\"1\"", "\"true\"", "\"on\"", "\"yes\"", "\"TRUE\"", "\"Yes\"", "'on'"}) {
    EXPECT_APPLIES(o, yes, 1);
  }
  for (const char* no : {"false", "0", "\"0\"", "\"false\"", "\"off\"", "\"no\"", "\"OFF\"", "'no'"}) {
    EXPECT_APPLIES(o, no, 0);
  }
  EXPECT_REFUSED(o, "2", "expected a boolean");
  EXPECT_REFUSED(o, "\"maybe\"", "expected a boolean");
  EXPECT_REFUSED(o, "-1", "expected a boolean");
  // a number option of range 0..1 takes booleans too; others do not
  EXPECT_APPLIES("arena_eager_commit", "1", 1);
  EXPECT_REFUSED("arena_eager_commit", "true", "expected an integer");
}

TEST(ConfigUnits, IntegersAndChoices) {
  const char* o = "os_tag";  // 0..255, no effect on Linux
  EXPECT_APPLIES(o, "0", 0);
  EXPECT_APPLIES(o, "255", 255);
  EXPECT_APPLIES(o, "+7", 7);
  EXPECT_APPLIES(o, "0xff", 255);
  EXPECT_APPLIES(o, "0o17", 15);
  EXPECT_APPLIES(o, "0b101", 5);
  EXPECT_APPLIES(o, "1_0", 10);
  EXPECT_APPLIES(o, "\"12\"", 12);  // a number in a string, as in the environment
  EXPECT_REFUSED(o, "256", "a value from 0 to 255");
  EXPECT_REFUSED(o, "-1", "a value from 0 to 255");
  EXPECT_REFUSED(o, "\"twelve\"", "expected an integer");
  EXPECT_REFUSED(o, "true", "expected an integer");
  const char* c = "numa_bind";
  EXPECT_APPLIES(c, "\"none\"", 0);
  EXPECT_APPLIES(c, "\"preferred\"", 1);
  EXPECT_APPLIES(c, "\"strict\"", 2);
  EXPECT_APPLIES(c, "'Strict'", 2);
  EXPECT_APPLIES(c, "1", 1);  // the number of the choice
  EXPECT_REFUSED(c, "\"sometimes\"", "expected one of none, preferred, strict");
  EXPECT_REFUSED(c, "3", "a value from 0 to 2");
  EXPECT_REFUSED(c, "true", "one of \"none\", \"preferred\", \"strict\"");
}

// --- ranges -------------------------------------------------------------------

// The TOML value of `v` (the stored unit) for an option: sizes as bytes,
// durations as ms, the rest as the number.
std::string toml_of(const OptionDesc& d, long v) {
  if (d.kind == OptionKind::size_kib) return std::to_string(static_cast<long long>(v) * 1024);
  return std::to_string(v);
}

// Applies `data` (sets only `o`), reads the option and restores it before
// returning, with nothing allocated in between: the value may be
// disallow_os_alloc = 1. The problem message, if any, goes to a static buffer.
char one_message[1024];
void static_capture(const char* msg, void*) { snprintf(one_message, sizeof(one_message), "%s", msg); }

bool apply_restore(const char* data, size_t len, mi_option_t o, long* value) {
  const long old_value = mi::option_get(o);
  const char* old_file = nullptr;
  int old_line = 0;
  const OptionSource old_source = mi::option_source(o, &old_file, &old_line);
  mi::option_set_from(o, mi::option_desc(o).default_value, OptionSource::default_, nullptr, 0);
  one_message[0] = 0;
  mi_register_output(&static_capture, nullptr);
  const int problems = mi::config_parse("range.toml", data, len, true, nullptr, nullptr);
  mi_register_output(nullptr, nullptr);
  const bool applied = mi::option_source(o, nullptr, nullptr) == OptionSource::config_file;
  *value = mi::option_get(o);
  mi::option_set_from(o, old_value, old_source, old_file, old_line);
  return applied && problems == 0;
}

TEST(ConfigRanges, EveryOptionAtItsLimits) {
  const long max_warnings = mi::option_get(mi_option_max_warnings);
  const OptionSource mw_source = mi::option_source(mi_option_max_warnings, nullptr, nullptr);
  mi::option_set_from(mi_option_max_warnings, -1, OptionSource::runtime, nullptr, 0);
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    const OptionDesc& d = mi::option_desc(o);
    if (o == mi_option_max_warnings || o == mi_option_show_errors) continue;  // they decide whether the message is seen
    if (d.kind == OptionKind::path) continue;  // a file name has no range (tests/unit/stats_file_test.cpp)
    SCOPED_TRACE(d.name);
    const std::string range = "a value from " + std::to_string(d.min) + " to " + std::to_string(d.max);
    for (long v : {d.min, d.max}) {
      const std::string text = "[options]\n" + std::string(d.name) + " = " + toml_of(d, v) + "\n";
      long got = 0;
      EXPECT_TRUE(apply_restore(text.data(), text.size(), o, &got)) << text << one_message;
      EXPECT_EQ(got, v) << text;
    }
    for (long v : {d.min - 1, d.max + 1}) {
      const std::string text = "[options]\n" + std::string(d.name) + " = " + toml_of(d, v) + "\n";
      long got = 0;
      EXPECT_FALSE(apply_restore(text.data(), text.size(), o, &got)) << text;
      EXPECT_EQ(got, d.default_value) << text;
      const std::string m = one_message;
      EXPECT_EQ(m.rfind(std::string(WARNING) + "range.toml:2: option '" + d.name + "': expected ", 0), 0u) << m;
      if (d.kind == OptionKind::flag) {
        EXPECT_NE(m.find("a boolean"), std::string::npos) << m;
      } else if (!(d.kind == OptionKind::size_kib && v < 0)) {
        EXPECT_NE(m.find(range), std::string::npos) << m;
      }
    }
  }
  mi::option_set_from(mi_option_max_warnings, max_warnings, mw_source, nullptr, 0);
}

// --- one test per kind of bad input -----------------------------------------------
//
// The fixtures (tests/config/errors) set os_tag = 101 on line 3, have the bad
// line on line 4 and set guarded_sample_rate = 77 on line 5, unless a test
// says otherwise.

class ConfigError : public ::testing::Test {
 protected:
  OptionsSnapshot snap_;
  std::string path_;
  Reading run_;

  void read(const char* rel) {
    path_ = fixture(std::string("errors/") + rel);
    run_ = run_file(path_);
    expect_well_formed(run_, lines_of(read_file(path_)));
  }
  // One problem, on line `line`, holding every part; the good lines around it apply.
  void expect_one(int line, std::initializer_list<const char*> parts, bool standard_rest = true) {
    EXPECT_EQ(run_.checked, 1) << run_.all();
    expect_message(run_, line, parts);
    if (standard_rest) {
      expect_from_file("os_tag", 101, path_, 3);
      expect_from_file("guarded_sample_rate", 77, path_, 5);
    }
  }
};

TEST_F(ConfigError, UnknownKey) {
  read("unknown-key.toml");
  expect_one(4, {"unknown option 'purge_dely' in [options]", "ignored"});
  expect_not_applied("purge_delay");
}

TEST_F(ConfigError, WrongType) {
  read("wrong-type.toml");
  expect_one(4, {"option 'guarded_min': expected a size", "not the boolean true", "ignored"});
  expect_not_applied("guarded_min");
}

TEST_F(ConfigError, BadUnit) {
  read("bad-unit.toml");
  expect_one(4, {"option 'retry_on_oom': expected a duration (e.g. 10ms, 2s, or milliseconds)",
                 "not the string \"10 parsecs\""});
  expect_not_applied("retry_on_oom");
}

TEST_F(ConfigError, OutOfRange) {
  read("out-of-range.toml");
  expect_one(4, {"option 'max_segment_reclaim': expected a value from 0 to 100, not the integer 101; ignored"});
  expect_not_applied("max_segment_reclaim");
}

TEST_F(ConfigError, UnknownChoice) {
  read("bad-choice.toml");
  expect_one(4, {"option 'numa_bind': expected one of none, preferred, strict", "\"sometimes\""});
  expect_not_applied("numa_bind");
}

TEST_F(ConfigError, SyntaxMissingEquals) {
  read("missing-equals.toml");
  expect_one(4, {"syntax error: '=' is expected after the key", "(key 'guarded_max')", "line ignored"});
  expect_not_applied("guarded_max");
}

TEST_F(ConfigError, SyntaxUnclosedString) {
  read("unclosed-string.toml");
  expect_one(4, {"syntax error: the string is not closed on this line", "(key 'numa_bind')"});
  expect_not_applied("numa_bind");
}

TEST_F(ConfigError, SyntaxBadEscape) {
  read("bad-escape.toml");
  expect_one(4, {"syntax error: an unknown escape sequence in a string", "(key 'numa_bind')"});
  expect_not_applied("numa_bind");
}

TEST_F(ConfigError, SyntaxTextAfterValue) {
  read("text-after-value.toml");
  expect_one(4, {"syntax error: unexpected text after the value", "(key 'guarded_max')"});
  expect_not_applied("guarded_max");
}

TEST_F(ConfigError, UnquotedUnit) {
  read("unquoted-unit.toml");
  expect_one(4, {"a number with letters after it (write sizes and durations as strings: \"64MiB\", \"10ms\")",
                 "(key 'guarded_max')"});
  expect_not_applied("guarded_max");
}

TEST_F(ConfigError, Float) {
  read("float.toml");
  expect_one(4, {"floats are not accepted here", "(key 'guarded_max')"});
}

TEST_F(ConfigError, Date) {
  read("date.toml");
  expect_one(4, {"dates and times are not accepted here", "(key 'guarded_max')"});
}

TEST_F(ConfigError, Array) {
  read("array.toml");
  expect_one(4, {"arrays are not accepted here", "(key 'guarded_max')"});
}

TEST_F(ConfigError, InlineTable) {
  read("inline-table.toml");
  expect_one(4, {"inline tables are not accepted here", "(key 'guarded_max')"});
}

TEST_F(ConfigError, LeadingZero) {
  read("leading-zero.toml");
  expect_one(4, {"an integer with a leading zero", "(key 'guarded_max')"});
}

TEST_F(ConfigError, IntegerTooLarge) {
  read("too-large.toml");
  expect_one(4, {"the integer is too large", "(key 'guarded_max')"});
}

TEST_F(ConfigError, DuplicateKey) {
  read("duplicate-key.toml");
  expect_one(4, {"option 'os_tag' is set twice", "the first value stays"});  // os_tag stays 101, from line 3
}

TEST_F(ConfigError, DuplicateThroughLegacyName) {
  read("legacy-duplicate.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 5, {"option 'purge_delay' is set twice", "the first value stays"});
  expect_from_file("purge_delay", 5, path_, 4);  // decommit_delay = 5
  expect_from_file("os_tag", 101, path_, 3);
  expect_from_file("guarded_sample_rate", 77, path_, 6);
}

TEST_F(ConfigError, NulByte) {
  read("nul-byte.toml");
  expect_one(4, {"a NUL byte; line ignored"});
}

TEST_F(ConfigError, NotUtf8) {
  read("not-utf8.toml");
  expect_one(4, {"bytes that are not UTF-8 (at column 22); line ignored"});
}

// The edges of each range of utf8_length's table: a first byte's first and
// last value, and the second byte just inside and just outside its range
// (overlong forms after E0 and F0, surrogates after ED, beyond U+10FFFF
// after F4); a sequence cut short by the end of the line.
TEST(ConfigToml, Utf8LengthAtTheEdgesOfEachRange) {
  struct Case {
    unsigned char b[4];
    size_t left, want;
  };
  const Case cases[] = {
      {{0x7F}, 1, 1},
      {{0x80, 0x80}, 2, 0},  // a continuation byte first
      {{0xC1, 0xBF}, 2, 0},  // overlong
      {{0xC2, 0x80}, 2, 2},
      {{0xDF, 0xBF}, 2, 2},
      {{0xDF, 0xC0}, 2, 0},
      {{0xC2, 0x80}, 1, 0},  // cut short
      {{0xE0, 0x9F, 0x80}, 3, 0},
      {{0xE0, 0xA0, 0x80}, 3, 3},
      {{0xEC, 0xBF, 0xBF}, 3, 3},
      {{0xED, 0x9F, 0xBF}, 3, 3},
      {{0xED, 0xA0, 0x80}, 3, 0},  // a surrogate
      {{0xEE, 0x80, 0x80}, 3, 3},
      {{0xEF, 0xBF, 0xBF}, 3, 3},
      {{0xEF, 0xBF, 0x7F}, 3, 0},
      {{0xEF, 0xBF, 0xBF}, 2, 0},
      {{0xF0, 0x8F, 0xBF, 0xBF}, 4, 0},
      {{0xF0, 0x90, 0x80, 0x80}, 4, 4},
      {{0xF3, 0xBF, 0xBF, 0xBF}, 4, 4},
      {{0xF4, 0x8F, 0xBF, 0xBF}, 4, 4},
      {{0xF4, 0x90, 0x80, 0x80}, 4, 0},  // beyond U+10FFFF
      {{0xF4, 0x8F, 0xBF, 0xC0}, 4, 0},
      {{0xF5, 0x80, 0x80, 0x80}, 4, 0},
      {{0xFF, 0x80, 0x80, 0x80}, 4, 0},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(mi::toml::utf8_length(c.b, c.left), c.want)
        << std::hex << "bytes " << int(c.b[0]) << " " << int(c.b[1]) << " " << int(c.b[2]) << " " << int(c.b[3])
        << std::dec << ", left " << c.left;
  }
}

// span_scan inside each kind of string: where the string ends, and what does
// not end it. A one-line string also ends with its line, so those lines are
// inside an array (depth 1) and go on with a `]`: it closes the value only
// when the string closed before it.
TEST(ConfigToml, SpanScanClosesEachKindOfString) {
  struct Case {
    int depth;
    char string;  // the state at the start of the line
    const char* line;
    bool ends;
    char string_after;
  };
  const Case cases[] = {
      {0, '"', R"(abc" # x)", true, 0},  {1, '"', R"(a\"b])", false, 0},  // an escaped quote
      {1, '"', R"(a\\"b])", true, 0},     // an escaped backslash, then the closing quote
      {0, 'M', R"(a"b""c)", false, 'M'},  // one or two quotes inside
      {0, 'M', R"(ab""""" x)", true, 0},  // two quotes of the string, then the closing three
      {0, 'M', R"(a\"""b)", false, 'M'},  // an escaped quote is not one of three
      {1, '\'', R"(a\'b])", true, 0},     // no escapes in a literal string
      {1, '\'', R"(a"b])", false, 0},     // the other kind's quote
      {0, 'L', R"(a''b)", false, 'L'},   {0, 'L', R"(a''''' x)", true, 0}, {0, 'L', R"(a"""b)", false, 'L'},
  };
  for (const Case& c : cases) {
    mi::toml::SpanSkip st{c.depth, c.string};
    EXPECT_EQ(mi::toml::span_scan(st, c.line), c.ends) << c.string << " " << c.line;
    EXPECT_EQ(st.string, c.string_after) << c.string << " " << c.line;
  }
}

TEST_F(ConfigError, CarriageReturnInsideALine) {
  read("bare-cr.toml");
  expect_one(4, {"a carriage return (CR) that does not end the line; line ignored"});
}

TEST_F(ConfigError, ControlCharacterInComment) {
  read("control-in-comment.toml");  // after a value
  expect_one(4, {"syntax error: a control character in a comment", "(key 'guarded_max')", "line ignored"});
  expect_not_applied("guarded_max");
  // a comment line; after a table header
  const std::string name = "ctl.toml";
  Reading r = run_text(name, "[options]\n# bell \a\n[node.1] # bell \a\nos_tag = 3\n");
  EXPECT_EQ(r.checked, 2) << r.all();
  expect_message(r, 2, {"a control character in a comment; line ignored"});
  expect_message(r, 3, {"syntax error in a table header: a control character in a comment"});
  expect_message(r, 3, {"the keys that follow are ignored"});
  expect_from_file("os_tag", 101, path_, 3);  // not 3: the keys after a bad header are ignored
}

TEST_F(ConfigError, LineTooLong) {
  read("long-line.toml");
  expect_one(4, {"line longer than 4095 bytes; ignored"});
}

TEST_F(ConfigError, MultiLineString) {
  read("multiline-string.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(
      run_, 4,
      {"syntax error: multi-line strings are not accepted", "(key 'description')", "ignored up to its closing quotes"});
  // the string's lines are text, not keys
  expect_not_applied("verbose");
  expect_not_applied("show_stats");
  expect_from_file("os_tag", 101, path_, 3);
  expect_from_file("guarded_sample_rate", 77, path_, 8);
}

TEST_F(ConfigError, MultiLineStringInAnArray) {
  read("multiline-in-array.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 4,
                 {"syntax error: arrays are not accepted here", "(key 'x')", "ignored up to its closing bracket"});
  expect_not_applied("verbose");  // line 5 is string text
  expect_from_file("os_tag", 101, path_, 3);
  expect_from_file("guarded_sample_rate", 77, path_, 7);
}

TEST_F(ConfigError, ArrayOverSeveralLines) {
  read("multiline-array.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 4,
                 {"syntax error: arrays are not accepted here", "(key 'x')", "ignored up to its closing bracket"});
  // "[ 'a]', "b]" ]," (line 6) is an element, not a table header; line 8 is string text
  expect_not_applied("show_stats");
  expect_from_file("os_tag", 101, path_, 3);
  expect_from_file("guarded_sample_rate", 77, path_, 11);
}

TEST_F(ConfigError, InlineTableOverSeveralLines) {
  read("multiline-inline-table.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(
      run_, 4, {"syntax error: inline tables are not accepted here", "(key 'y')", "ignored up to its closing bracket"});
  expect_not_applied("max_errors");
  expect_from_file("guarded_sample_rate", 77, path_, 7);
}

TEST_F(ConfigError, ArrayWithoutAnEnd) {
  read("unterminated-array.toml");
  EXPECT_EQ(run_.checked, 2) << run_.all();
  expect_message(run_, 4, {"syntax error: arrays are not accepted here", "(key 'x')"});
  expect_message(
      run_, 5,
      {"the value that starts in line 4 does not end before the end of the file", "the lines after it were ignored"});
  expect_from_file("os_tag", 101, path_, 3);
  expect_not_applied("guarded_sample_rate");
  // a multi-line string without an end, the same
  const std::string name = "open.toml";
  Reading r = run_text(name, "[options]\nx = '''\nos_tag = 7\n");
  EXPECT_EQ(r.checked, 2) << r.all();
  expect_message(r, 2, {"multi-line strings are not accepted", "ignored up to its closing quotes"});
  expect_message(r, 3, {"the value that starts in line 2 does not end"});
  expect_from_file("os_tag", 101, path_, 3);
}

TEST_F(ConfigError, ArrayOfTables) {
  read("array-of-tables.toml");
  EXPECT_EQ(run_.checked, 2) << run_.all();
  expect_message(run_, 4, {"[[arrays of tables]] are not accepted", "the keys of this table are ignored"});
  expect_message(run_, 6,
                 {"unknown table [options.x]", "its keys are ignored", "known: [options], [node.N], [reserve]"});
  expect_not_applied("verbose");
  expect_not_applied("show_stats");
  expect_from_file("os_tag", 101, path_, 3);
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{8} << 20);
}

TEST_F(ConfigError, UnknownTable) {
  read("unknown-table.toml");
  EXPECT_EQ(run_.checked, 2) << run_.all();
  expect_message(run_, 4, {"unknown table [optons]; its keys are ignored"});
  expect_message(run_, 6, {"unknown table [options.more]"});
  expect_not_applied("verbose");
  expect_not_applied("show_stats");
  expect_from_file("os_tag", 101, path_, 3);
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{8} << 20);
}

TEST_F(ConfigError, KeyOutsideTable) {
  read("key-outside-table.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 3, {"key 'verbose' outside a table; put options under [options]; ignored"});
  expect_not_applied("verbose");
  expect_from_file("os_tag", 101, path_, 5);
}

TEST_F(ConfigError, DuplicateTable) {
  read("duplicate-table.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 5, {"table [options] is defined twice", "its keys still apply"});
  expect_from_file("os_tag", 101, path_, 3);
  expect_from_file("guarded_sample_rate", 77, path_, 6);
}

TEST_F(ConfigError, NodeOutOfRange) {
  read("node-out-of-range.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 4, {"table [node.64]: nodes are numbered 0 to 63; its keys are ignored"});
  expect_from_file("os_tag", 101, path_, 3);
  EXPECT_EQ(mi::config_node_arena_reserve(1), size_t{16} << 20);
}

TEST_F(ConfigError, NodeUnknownKey) {
  read("node-unknown-key.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 4, {"unknown key 'arena_size' in [node.0]", "known: reserve_huge_os_pages, arena_reserve"});
  EXPECT_EQ(mi::config_node_huge_pages(0), 0);
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{8} << 20);
}

TEST_F(ConfigError, NodeWrongType) {
  read("node-wrong-type.toml");
  EXPECT_EQ(run_.checked, 1) << run_.all();
  expect_message(run_, 3, {"[node.0] 'arena_reserve': expected a size", "not the boolean true"});
  EXPECT_EQ(mi::config_node_arena_reserve(0), 0u);
  EXPECT_EQ(mi::config_node_arena_reserve(1), size_t{12} << 20);
}

TEST_F(ConfigError, ReserveTable) {
  read("reserve-bad.toml");
  EXPECT_EQ(run_.checked, 6) << run_.all();
  expect_message(run_, 3, {"[reserve] 'pages': expected a number of pages from 0 to 1048576, not the integer -1"});
  expect_message(run_, 4, {"[reserve] 'page_size': expected \"1G\" or \"2M\"", "not the string \"3M\""});
  expect_message(run_, 5, {"[reserve] 'nodes': expected \"all\" or a node list like \"0,2-3\""});
  expect_message(run_, 6, {"[reserve] 'timeout': expected a duration", "not the boolean true"});
  expect_message(run_, 7, {"[reserve] 'per_node': expected a number of pages", "not the string \"2\""});
  expect_message(run_, 8, {"unknown key 'colour' in [reserve]"});
  expect_from_file("os_tag", 101, path_, 10);
  mi::ConfigReserve r;
  std::vector<std::string> msgs;
  EXPECT_EQ(mi::config_read_reserve(path_.c_str(), &r, &capture, &msgs), 6);
  EXPECT_EQ(r.pages, -1);
  EXPECT_EQ(r.page_size_kib, -1);
  EXPECT_STREQ(r.nodes, "");
  EXPECT_EQ(r.timeout_ms, -1);
  EXPECT_EQ(r.per_node, -1);
  EXPECT_EQ(msgs, run_.check_messages);
}

// [program.NAME] tables: the same checks as [options] and [node.N], for
// every program table, whether or not it names this program.
TEST_F(ConfigError, ProgramUnknownKey) {
  read("program-unknown-key.toml");
  expect_one(5, {"unknown option 'purge_dely' in [program.postgres]", "ignored"}, false);
  expect_from_file("os_tag", 101, path_, 3);
}

TEST_F(ConfigError, ProgramWrongType) {
  read("program-wrong-type.toml");
  EXPECT_EQ(run_.checked, 2) << run_.all();
  expect_message(
      run_, 6,
      {"[program.postgres] option 'guarded_sample_seed': expected an integer, not the string \"seven\"; ignored"});
  expect_message(run_, 8, {"[program.postgres.node.0] 'arena_reserve': expected a size", "not the boolean true"});
  expect_from_file("os_tag", 101, path_, 4);
}

TEST_F(ConfigError, ProgramNameThatNamesNoProgram) {
  read("program-bad-name.toml");
  EXPECT_EQ(run_.checked, 3) << run_.all();
  expect_message(run_, 5, {"table [program.\"\"]: an empty program name matches no program; its keys are ignored"});
  expect_message(run_, 7,
                 {"table [program.\"/usr/bin/postgres\"]: a program is named by its file name, without a directory"});
  expect_message(run_, 10,
                 {"key 'program.\"\".guarded_sample_seed': an empty program name matches no program; ignored"});
  expect_not_applied("verbose");
  expect_not_applied("show_stats");
  expect_not_applied("guarded_sample_seed");
}

TEST_F(ConfigError, ProgramNameWithAnUnquotedDot) {
  mi::program_set_names("python3", "python3.11");
  read("program-dotted-name.toml");
  expect_one(4, {"unknown table [program.python3.11]", "a program name with a dot is quoted: [program.\"python3.11\"]"},
             false);
  expect_not_applied("show_stats");
  expect_from_file("os_tag", 101, path_, 3);
  expect_from_program("guarded_sample_rate", 77, path_, 7, "python3.11");
}

TEST_F(ConfigError, ProgramTableDefinedTwice) {
  mi::program_set_names("postgres", "postgres");
  read("program-duplicate-table.toml");
  expect_one(6, {"table [program.postgres] is defined twice", "its keys still apply"}, false);
  expect_from_program("guarded_sample_seed", 1, path_, 5, "postgres");
  expect_from_program("guarded_sample_rate", 77, path_, 7, "postgres");
}

TEST_F(ConfigError, ProgramOptionSetTwice) {
  mi::program_set_names("postgres", "postgres");
  read("program-duplicate-key.toml");
  expect_one(7, {"option 'os_tag' is set twice in [program.postgres]", "the first value stays"}, false);
  expect_from_program("os_tag", 102, path_, 6, "postgres");
}

TEST_F(ConfigError, ProgramKeyInTheParentTable) {
  read("program-key-in-parent.toml");
  expect_one(5, {"key 'program.show_stats' in [program] names no program: use [program.NAME]"}, false);
  expect_not_applied("show_stats");
}

TEST_F(ConfigError, ProgramNodeOutOfRange) {
  mi::program_set_names("postgres", "postgres");
  read("program-node-out-of-range.toml");
  expect_one(4, {"table [program.postgres.node.64]: nodes are numbered 0 to 63; its keys are ignored"}, false);
  EXPECT_EQ(mi::config_node_arena_reserve(63), size_t{16} << 20);
  EXPECT_STREQ(mi::config_node_arena_reserve_program(63), "postgres");
}

TEST_F(ConfigError, ProgramDottedKeyAddsToATableWithAHeader) {
  mi::program_set_names("postgres", "postgres");
  read("program-dotted-after-header.toml");
  expect_one(8, {"table [program.postgres] has a [program.postgres] header above", "the key still applies"}, false);
  expect_from_program("guarded_sample_rate", 77, path_, 8, "postgres");
}

TEST_F(ConfigError, ProgramTablesBeyondThirtyTwo) {
  mi::program_set_names("p32", "p31");
  read("program-too-many.toml");
  expect_one(68, {"table [program.p32]: more than 32 [program.NAME] tables in one file; its keys are ignored"}, false);
  expect_from_program("guarded_sample_seed", 5, path_, 67, "p31");  // the 32nd applies; the 33rd does not
}

TEST_F(ConfigError, UnreadableFile) {
  // a file that does not exist: one problem naming it; nothing applies
  const std::string missing = fixture("errors/no-such-file.toml");
  Reading r = run_file(missing);
  EXPECT_EQ(r.checked, 1);
  EXPECT_EQ(r.applied, 1);
  ASSERT_EQ(r.check_messages.size(), 1u);
  EXPECT_EQ(r.check_messages[0],
            missing + ":0: cannot read the configuration file: No such file or directory; the defaults apply\n");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0], WARNING + r.check_messages[0]);
  // a directory is not read (FileKinds: the other kinds)
  const std::string dir = fixture("errors");
  r = run_file(dir);
  EXPECT_EQ(r.checked, 1);
  ASSERT_EQ(r.check_messages.size(), 1u);
  EXPECT_EQ(
      r.check_messages[0],
      dir + ":0: cannot read the configuration file: it is a directory, not a regular file; the defaults apply\n");
  // the public check, as mi-reserve --check-config calls it
  std::vector<std::string> msgs;
  EXPECT_EQ(mi_config_check(missing.c_str(), &capture, &msgs), 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_NE(msgs[0].find(missing + ":0: cannot read"), std::string::npos);
  msgs.clear();
  EXPECT_EQ(mi_config_check(nullptr, &capture, &msgs), 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].rfind("(null):0: cannot read", 0), 0u) << msgs[0];
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    EXPECT_EQ(mi::option_source(static_cast<mi_option_t>(i), nullptr, nullptr), OptionSource::default_);
  }
}

// Only regular files are read: the start-up of every program reads the file,
// and a FIFO blocked it for ever (in open), /dev/zero spun at 100% CPU and
// /dev/urandom never ended. Each is one problem, at once, and nothing applies.
// (tests/config/startup_test.py: the same under LD_PRELOAD, with a timeout.)
TEST_F(ConfigError, FileKinds) {
  char dir_template[] = "/tmp/mi-config-kinds-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  ASSERT_NE(dir, nullptr);
  const std::string fifo = std::string(dir) + "/fifo.toml";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string link = std::string(dir) + "/link.toml";  // a link to a device: what it names counts
  ASSERT_EQ(symlink("/dev/zero", link.c_str()), 0);
  const std::pair<std::string, const char*> cases[] = {
      {fifo, "a FIFO"},
      {"/dev/zero", "a character device"},
      {"/dev/urandom", "a character device"},
      {link, "a character device"},
      {dir, "a directory"},
  };
  for (const auto& [path, kind] : cases) {
    SCOPED_TRACE(path);
    const auto t0 = std::chrono::steady_clock::now();
    Reading r = run_file(path);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(seconds, 1.0);
    EXPECT_EQ(r.checked, 1);
    EXPECT_EQ(r.applied, 1);
    ASSERT_EQ(r.check_messages.size(), 1u) << r.all();
    EXPECT_EQ(r.check_messages[0], path + ":0: cannot read the configuration file: it is " + kind +
                                       ", not a regular file; the defaults apply\n");
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_EQ(r.warnings[0], WARNING + r.check_messages[0]);
  }
  // the null device is the empty file it reads as (MIMALLOC_CONFIG=/dev/null: no file), without a word
  Reading r = run_file("/dev/null");
  EXPECT_EQ(r.checked, 0) << r.all();
  EXPECT_EQ(r.applied, 0);
  EXPECT_TRUE(r.warnings.empty());
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    EXPECT_EQ(mi::option_source(static_cast<mi_option_t>(i), nullptr, nullptr), OptionSource::default_);
  }
  unlink(link.c_str());
  unlink(fifo.c_str());
  rmdir(dir);
}

// At most CONFIG_FILE_MAX bytes are read: a file of exactly that size is read
// whole; of a longer one, the lines before the limit apply, the line the
// limit falls in does not (cut, it would read as another value), nor any
// after it, and one problem names that line.
TEST_F(ConfigError, FileLongerThanTheLimit) {
  const size_t max = mi::CONFIG_FILE_MAX;
  // `head` followed by comment lines up to exactly `until` bytes
  auto padded = [](std::string head, size_t until) {
    while (head.size() + 64 <= until) head += "# " + std::string(61, '.') + "\n";
    const size_t rest = until - head.size();
    if (rest == 1) head += "\n";
    else if (rest > 1) head += "#" + std::string(rest - 2, '.') + "\n";
    return head;
  };
  auto lines_in = [](const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); };

  // exactly the limit, its last line a key: read whole, no problem
  {
    const std::string key = "os_tag = 7\n";
    const std::string data = padded("[options]\n", max - key.size()) + key;
    ASSERT_EQ(data.size(), max);
    TempFile f(data);
    Reading r = run_file(f.path);
    EXPECT_EQ(r.checked, 0) << r.all();
    EXPECT_EQ(mi_option_get(mi_option_os_tag), 7);
    mi::option_set_from(mi_option_os_tag, desc("os_tag").default_value, OptionSource::default_, nullptr, 0);
  }
  // longer: "os_tag = 7" inside, "guarded_sample_rate = 1000" cut after "= 10", "retry_on_oom = 5" beyond
  {
    const std::string cut_part = "guarded_sample_rate = 10";
    std::string data = padded("[options]\nos_tag = 7\n", max - cut_part.size());
    const int cut_line = lines_in(data) + 1;
    data += "guarded_sample_rate = 1000\nretry_on_oom = 5\n";
    ASSERT_EQ(data.compare(max - cut_part.size(), cut_part.size(), cut_part), 0);
    TempFile f(data);
    Reading r = run_file(f.path);
    EXPECT_EQ(r.checked, 1) << r.all();
    EXPECT_EQ(r.applied, 1);
    ASSERT_EQ(r.check_messages.size(), 1u) << r.all();
    EXPECT_EQ(r.check_messages[0],
              f.path + ":" + std::to_string(cut_line) +
                  ": the configuration file is longer than 1 MiB, the most that is read; this line "
                  "and the rest of the file are ignored\n");
    EXPECT_EQ(mi_option_get(mi_option_os_tag), 7);
    EXPECT_EQ(mi::option_source(mi_option_guarded_sample_rate, nullptr, nullptr), OptionSource::default_)
        << "the cut line was read as guarded_sample_rate = " << mi_option_get(mi_option_guarded_sample_rate);
    EXPECT_EQ(mi::option_source(mi_option_retry_on_oom, nullptr, nullptr), OptionSource::default_);
  }
}

// A 1 GB sparse file (a disk image named by mistake) was read whole: 3.4 s.
TEST_F(ConfigError, SparseFileOfOneGigabyte) {
  TempFile f("");
  ASSERT_EQ(truncate(f.path.c_str(), off_t{1} << 30), 0);
  const auto t0 = std::chrono::steady_clock::now();
  Reading r = run_file(f.path);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 0.5) << "both passes together";
  EXPECT_EQ(r.checked, 1) << r.all();
  ASSERT_EQ(r.check_messages.size(), 1u);
  EXPECT_EQ(r.check_messages[0], f.path +
                                     ":1: the configuration file is longer than 1 MiB, the most that is read; "
                                     "this line and the rest of the file are ignored\n");
}

TEST(ConfigErrorFixtures, EveryFixtureHasAProblemAndEveryMessageIsOneLine) {
  OptionsSnapshot snap;
  const std::vector<std::string> files = files_in(fixture("errors"));
  ASSERT_GE(files.size(), 30u);
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    Reading r = run_file(f);
    EXPECT_GE(r.checked, 1) << r.all();
    expect_well_formed(r, lines_of(read_file(f)));
    // the same through mi_config_check
    std::vector<std::string> msgs;
    EXPECT_EQ(mi_config_check(f.c_str(), &capture, &msgs), r.checked);
    EXPECT_EQ(msgs, r.check_messages);
  }
}

// --- files --------------------------------------------------------------------------

TEST(ConfigFiles, ValidFixturesHaveNoProblem) {
  OptionsSnapshot snap;
  const std::vector<std::string> files = files_in(fixture("valid"));
  ASSERT_GE(files.size(), 8u);
  for (const std::string& f : files) {
    Reading r = run_file(f);
    EXPECT_EQ(r.checked, 0) << f << "\n" << r.all();
    EXPECT_EQ(r.applied, 0) << f;
  }
}

TEST(ConfigFiles, CrlfLineEnds) {
  OptionsSnapshot snap;
  const std::string path = fixture("valid/crlf.toml");
  ASSERT_NE(read_file(path).find("\r\n"), std::string::npos) << "the fixture lost its CRLF line ends";
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  expect_from_file("os_tag", 42, path, 3);
  expect_from_file("numa_bind", 2, path, 4);  // "strict" (no CR in the value)
  expect_from_file("guarded_min", 1024, path, 5);
  EXPECT_EQ(mi::config_node_arena_reserve(1), size_t{16} << 20);
}

TEST(ConfigFiles, CrlfEverywhereEqualsLf) {
  // every valid fixture read with CRLF line ends means the same
  OptionsSnapshot snap;
  for (const std::string& f : files_in(fixture("valid"))) {
    const std::string lf = read_file(f);
    std::string crlf;
    for (char c : lf) {
      if (c == '\n' && (crlf.empty() || crlf.back() != '\r')) crlf += '\r';
      crlf += c;
    }
    long values_lf[mi::OPTION_COUNT], values_crlf[mi::OPTION_COUNT];
    Reading a = run_text(f, lf);
    for (int i = 0; i < mi::OPTION_COUNT; i++) values_lf[i] = mi::option_get(static_cast<mi_option_t>(i));
    Reading b = run_text(f, crlf);
    for (int i = 0; i < mi::OPTION_COUNT; i++) values_crlf[i] = mi::option_get(static_cast<mi_option_t>(i));
    EXPECT_EQ(a.checked, 0) << f;
    EXPECT_EQ(b.checked, 0) << f << b.all();
    for (int i = 0; i < mi::OPTION_COUNT; i++)
      EXPECT_EQ(values_lf[i], values_crlf[i]) << f << " " << mi::option_desc(static_cast<mi_option_t>(i)).name;
  }
}

TEST(ConfigFiles, NoFinalNewline) {
  OptionsSnapshot snap;
  const std::string path = fixture("valid/no-final-newline.toml");
  const std::string data = read_file(path);
  ASSERT_NE(data.back(), '\n');
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  expect_from_file("os_tag", 43, path, 3);
  expect_from_file("retry_on_oom", 3000, path, 4);
  // a bad last line without a newline is still reported, with its number
  const std::string name = "cut.toml";
  Reading bad = run_text(name, "[options]\nos_tag = 300");
  EXPECT_EQ(bad.checked, 1);
  expect_message(bad, 2, {"option 'os_tag': expected a value from 0 to 255"});
  // and a CRLF file without its last line end
  Reading crlf = run_text(name, "[options]\r\nos_tag = 3\r");
  EXPECT_EQ(crlf.checked, 1) << "a lone CR at the end is not a line end in TOML: " << crlf.all();
}

TEST(ConfigFiles, ByteOrderMark) {
  OptionsSnapshot snap;
  const std::string path = fixture("valid/bom.toml");
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  expect_from_file("os_tag", 44, path, 3);
  // only at the start of the file
  const std::string name = "bom2.toml";
  Reading bad = run_text(name, "[options]\n\xEF\xBB\xBFos_tag = 45\n");
  EXPECT_EQ(bad.checked, 1) << bad.all();
  expect_message(bad, 2, {"syntax error: a key is expected"});
  expect_from_file("os_tag", 44, path, 3);  // from the first file still
}

// Exactly CONFIG_FILE_MAX bytes (1 MiB), the most the file reader takes: a
// key in the middle, and one on the last line, without a newline.
std::string one_megabyte_file(int* key_line, int* last_line) {
  const std::string last = "guarded_sample_rate = 1234";
  std::string s = "# a file of 1 MB\n[options]\n";
  int line = 2;
  while (s.size() < mi::CONFIG_FILE_MAX / 2) {
    s += "# a comment that fills the file ..................................................\n";
    line++;
  }
  s += "os_tag = 99\n";
  *key_line = ++line;
  while (s.size() + last.size() + 100 < mi::CONFIG_FILE_MAX) {
    s += "\n   # more ..................................................................\n";
    line += 2;
  }
  s += "#" + std::string(mi::CONFIG_FILE_MAX - last.size() - s.size() - 2, '.') + "\n";
  line++;
  s += last;
  *last_line = ++line;
  return s;
}

TEST(ConfigFiles, OneMegabyte) {
  OptionsSnapshot snap;
  int key_line = 0, last_line = 0;
  const std::string data = one_megabyte_file(&key_line, &last_line);
  ASSERT_EQ(data.size(), mi::CONFIG_FILE_MAX);
  const std::string name = "big.toml";
  Reading r = run_text(name, data);
  EXPECT_EQ(r.checked, 0) << r.all();
  expect_from_file("os_tag", 99, name, key_line);
  expect_from_file("guarded_sample_rate", 1234, name, last_line);
  // through the file reader (lines across its 4 KiB reads), which takes it whole
  TempFile f(data);
  Reading rf = run_file(f.path);
  EXPECT_EQ(rf.checked, 0) << rf.all();
  expect_from_file("os_tag", 99, f.path, key_line);
  expect_from_file("guarded_sample_rate", 1234, f.path, last_line);
}

TEST(ConfigFiles, LinesAcrossReadChunks) {
  // keys at every offset around the reader's 4 KiB chunks, and the longest
  // line accepted (4095 bytes) across a chunk boundary
  OptionsSnapshot snap;
  for (size_t pad = 4080; pad <= 4106; pad += 2) {  // line 2 ends at byte `pad`, around the first 4 KiB read
    const std::string head = "[options]\n# " + std::string(pad - 13, 'x') + "\nos_tag = 77\n";
    const std::string longest = "# " + std::string(4093, 'y');
    const std::string tail = "\nguarded_sample_rate = 55\n";
    TempFile f(head + longest + tail);
    Reading r = run_file(f.path);
    EXPECT_EQ(r.checked, 0) << pad << r.all();
    expect_from_file("os_tag", 77, f.path, 3);
    expect_from_file("guarded_sample_rate", 55, f.path, 5);
    // one byte longer is reported, the rest still applies
    TempFile g(head + "#" + longest + tail);
    Reading rg = run_file(g.path);
    EXPECT_EQ(rg.checked, 1);
    expect_message(rg, 4, {"line longer than 4095 bytes"});
    expect_from_file("guarded_sample_rate", 55, g.path, 5);
  }
}

TEST(ConfigFiles, RandomBytes) {
  // never a crash; problems reported one line each, with real line numbers;
  // applied or not, the same count (options are restored after)
  OptionsSnapshot snap;
  uint64_t state = 0x2545F4914F6CDD1DULL;
  auto next = [&state]() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ULL;
  };
  for (int k = 0; k < 16; k++) {
    std::string data;
    const size_t len = 1 + next() % 65536;
    for (size_t i = 0; i < len; i++) data += static_cast<char>(next() >> 56);
    const std::string name = "random-" + std::to_string(k) + ".bin";
    Reading r = run_text(name, data);
    EXPECT_GE(r.checked, 1) << name;
    expect_well_formed(r, lines_of(data));
  }
}

TEST(ConfigFiles, SampleConfigReadsCleanly) {
  // config/mimalloc-numa.toml (generated): no problem; every option from it,
  // at its default
  OptionsSnapshot snap;
  const std::string path = std::string(MI_SOURCE_ROOT) + "/config/mimalloc-numa.toml";
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    EXPECT_EQ(mi::option_source(o, nullptr, nullptr), OptionSource::config_file) << mi::option_desc(o).name;
    EXPECT_EQ(mi::option_get(o), mi::option_desc(o).default_value) << mi::option_desc(o).name;
  }
}

TEST(ConfigFiles, SampleProgramExampleWorksUncommented) {
  // the commented [program.postgres] example of the sample, uncommented and
  // appended to it, reads cleanly and applies to postgres
  OptionsSnapshot snap;
  mi::program_set_names("postgres", "postgres");
  const std::string sample = read_file(std::string(MI_SOURCE_ROOT) + "/config/mimalloc-numa.toml");
  const size_t at = sample.find("\n# [program.postgres]\n");
  ASSERT_NE(at, std::string::npos) << "the sample has no [program.postgres] example";
  std::string example;
  for (size_t pos = at + 1; pos < sample.size() && sample.compare(pos, 2, "# ") == 0;) {
    const size_t end = sample.find('\n', pos);
    example += sample.substr(pos + 2, end - pos - 2) + "\n";
    pos = end + 1;
  }
  static const std::string name = "sample-example.toml";
  const std::string text = sample + example;
  Reading r = run_text(name, text);
  EXPECT_EQ(r.checked, 0) << example << r.all();
  const int line = static_cast<int>(std::count(sample.begin(), sample.end(), '\n')) + 2;
  expect_from_program("show_stats", 1, name, line, "postgres");
  EXPECT_EQ(applied_programs().size(), 1u);
}

// [reserve] timeout and page_size are read by the rules mi-reserve's
// --timeout and --page-size use (config_timeout_parse, config_page_size_parse):
// a bare timeout is seconds (it was milliseconds in the file, seconds on the
// command line), and every page size spelling the command line takes.
TEST(ConfigReserveUnits, BareTimeoutIsSecondsAndPageSizesAsOnTheCommandLine) {
  struct Case {
    const char* text;
    long timeout_ms;
    long page_size_kib;
  };
  const Case cases[] = {
      {"timeout = 30\npage_size = \"2 MiB\"\n", 30000, 2048},
      {"timeout = \"30\"\npage_size = \"1gib\"\n", 30000, 1048576},
      {"timeout = \"500ms\"\npage_size = \"64K\"\n", 500, 64},
      {"timeout = \"2 min\"\npage_size = \"16GiB\"\n", 120000, 16L << 20},
      {"timeout = \"1S\"\npage_size = \"1048576kB\"\n", 1000, 1048576},
      {"timeout = 0\npage_size = \"32MB\"\n", 0, 32768},
  };
  for (const Case& c : cases) {
    TempFile f(std::string("[reserve]\n") + c.text);
    mi::ConfigReserve r;
    std::vector<std::string> msgs;
    EXPECT_EQ(mi::config_read_reserve(f.path.c_str(), &r, &capture, &msgs), 0) << c.text << msgs.size();
    EXPECT_EQ(r.timeout_ms, c.timeout_ms) << c.text;
    EXPECT_EQ(r.page_size_kib, c.page_size_kib) << c.text;
    long v = -1;
    const char* t = strstr(c.text, "timeout = ") + 10;
    std::string timeout_text(t, strchr(t, '\n'));
    if (timeout_text[0] == '"') timeout_text = timeout_text.substr(1, timeout_text.size() - 2);
    EXPECT_TRUE(mi::config_timeout_parse(timeout_text.c_str(), &v)) << timeout_text;
    EXPECT_EQ(v, c.timeout_ms) << timeout_text;
  }
  const char* refused_sizes[] = {"3M", "2", "2  M", "0M", "2MiBs", "-2M", "32GiB", "2K", "2 048kB"};
  for (const char* s : refused_sizes) {
    long kib = -1;
    EXPECT_FALSE(mi::config_page_size_parse(s, &kib)) << s;
    TempFile f(std::string("[reserve]\npage_size = \"") + s + "\"\n");
    mi::ConfigReserve r;
    std::vector<std::string> msgs;
    EXPECT_EQ(mi::config_read_reserve(f.path.c_str(), &r, &capture, &msgs), 1) << s;
    EXPECT_EQ(r.page_size_kib, -1) << s;
  }
  const char* refused_timeouts[] = {"-1", "soon", "1.5s", "1099511628s", "30 parsecs", "10 sec"};
  for (const char* s : refused_timeouts) {
    long ms = -1;
    EXPECT_FALSE(mi::config_timeout_parse(s, &ms)) << s;
  }
  // the options keep mimalloc's unit: a bare duration is milliseconds there
  long ms = -1;
  EXPECT_TRUE(mi::parse_duration_ms("30", mi::DURATION_BARE_MS, &ms));
  EXPECT_EQ(ms, 30);
}

TEST(ConfigFiles, NodeAndReserveTables) {
  OptionsSnapshot snap;
  const std::string path = fixture("valid/nodes.toml");
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  EXPECT_EQ(mi::config_node_huge_pages(0), 1);
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{256} << 20);
  EXPECT_EQ(mi::config_node_huge_pages(3), 0);
  EXPECT_EQ(mi::config_node_arena_reserve(3), size_t{4} << 20);
  EXPECT_EQ(mi::config_node_arena_reserve(63), size_t{1} << 30);
  EXPECT_EQ(mi::config_node_huge_pages(1), -1);
  EXPECT_TRUE(mi::config_any_node_huge_pages());
  mi::ConfigReserve res;
  EXPECT_EQ(mi::config_read_reserve(path.c_str(), &res, &capture, nullptr), 0);
  EXPECT_EQ(res.pages, 2);
  EXPECT_EQ(res.page_size_kib, 2048);
  EXPECT_STREQ(res.nodes, "all");
  EXPECT_EQ(res.timeout_ms, 500000);  // `timeout = 500`: seconds, as mi-reserve --timeout 500
  EXPECT_EQ(res.per_node, -1);
  EXPECT_EQ(res.node_pages[0], 1);
  EXPECT_EQ(res.node_pages[3], 0);
  EXPECT_EQ(res.node_pages[1], -1);
  EXPECT_EQ(res.options_huge_pages, 0);
  EXPECT_EQ(res.options_huge_pages_at, -1);
  // dotted keys, [node] with "N.key", quoted keys and escapes
  const std::string dotted = fixture("valid/dotted-and-quoted.toml");
  mi::config_reset_nodes();
  Reading d = run_file(dotted);
  EXPECT_EQ(d.checked, 0) << d.all();
  expect_from_file("max_segment_reclaim", 33, dotted, 2);
  expect_from_file("os_tag", 12, dotted, 3);
  expect_from_file("guarded_sample_rate", 4001, dotted, 4);
  expect_from_file("numa_bind", 0, dotted, 5);
  expect_from_file("purge_delay", 2000, dotted, 6);
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{2} << 30);
  EXPECT_EQ(mi::config_node_huge_pages(1), 2);
  EXPECT_EQ(mi::config_node_arena_reserve(2), size_t{8} << 20);
  EXPECT_EQ(mi::config_read_reserve(dotted.c_str(), &res, &capture, nullptr), 0);
  EXPECT_EQ(res.pages, 4);
  EXPECT_EQ(res.page_size_kib, 1048576);
  EXPECT_STREQ(res.nodes, "0,2-3");
  EXPECT_EQ(res.per_node, 0);
  EXPECT_EQ(res.timeout_ms, 30000);
  // [node] with "N.key" keys
  const std::string node_table = fixture("valid/node-table.toml");
  mi::config_reset_nodes();
  Reading n = run_file(node_table);
  EXPECT_EQ(n.checked, 0) << n.all();
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{2} << 30);
  EXPECT_EQ(mi::config_node_huge_pages(1), 2);
  EXPECT_EQ(mi::config_node_arena_reserve(2), size_t{8} << 20);
  expect_from_file("arena_purge_mult", 7, node_table, 8);
  expect_from_file("os_tag", 9, node_table, 9);
}

// --- [program.NAME] tables ---------------------------------------------------------

TEST(ConfigPrograms, ThisProgramsNames) {
  // read from /proc at start-up: this test binary is unit_config; argv[0] is
  // what started it (glibc keeps a copy)
  mi::program_identify();
  EXPECT_STREQ(mi::program_exe_name(), "unit_config");
  const char* slash = strrchr(program_invocation_name, '/');
  EXPECT_STREQ(mi::program_argv0_name(), slash != nullptr ? slash + 1 : program_invocation_name);
  EXPECT_STREQ(mi::program_match("unit_config"), "unit_config");
  EXPECT_EQ(mi::program_match("unit"), nullptr);
  EXPECT_EQ(mi::program_match(""), nullptr);
  OptionsSnapshot snap;                                   // gives the names back at its end
  mi::program_set_names("/usr/sbin/mysqld", "mariadbd");  // a path: its base name
  EXPECT_STREQ(mi::program_argv0_name(), "mysqld");
  EXPECT_EQ(mi::program_match("mysqld"), mi::program_argv0_name());
  EXPECT_EQ(mi::program_match("mariadbd"), mi::program_exe_name());
  EXPECT_EQ(mi::program_match("/usr/sbin/mysqld"), nullptr);
  EXPECT_EQ(mi::program_match("MySQLd"), nullptr) << "names are matched as file names: case matters";
}

TEST(ConfigPrograms, TheTableOfThisProgramWinsOverOptionsWhereverItIs) {
  // as PostgreSQL: [program.postgres] above [options] still wins
  OptionsSnapshot snap;
  mi::program_set_names("postgres", "postgres");
  const std::string path = fixture("valid/programs.toml");
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  EXPECT_EQ(r.applied, 0) << r.all();
  expect_from_program("os_tag", 12, path, 4, "postgres");
  expect_from_program("guarded_sample_seed", 13, path, 5, "postgres");
  expect_from_file("guarded_sample_rate", 1000, path, 9);  // [options]: [program.mariadbd] is another program's
  expect_not_applied("max_segment_reclaim");               // [program.mysqld]'s
  // [program.postgres.node.0] over [node.0], before or after it
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{32} << 20);
  EXPECT_STREQ(mi::config_node_arena_reserve_program(0), "postgres");
  EXPECT_EQ(mi::config_node_huge_pages(0), 0);
  EXPECT_STREQ(mi::config_node_huge_pages_program(0), "postgres");
  EXPECT_EQ(mi::config_node_arena_reserve(1), 0u);  // [program.mariadbd.node.1]'s
  EXPECT_EQ(applied_programs(), std::vector<std::string>({"postgres:3"}));
}

TEST(ConfigPrograms, EveryTableThatNamesTheProgramAppliesInFileOrder) {
  // MariaDB started through the mysqld -> mariadbd link: argv[0] "mysqld",
  // the executable "mariadbd"; both tables apply
  OptionsSnapshot snap;
  mi::program_set_names("mysqld", "mariadbd");
  const std::string path = fixture("valid/programs.toml");
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  expect_from_file("os_tag", 11, path, 8);
  expect_from_program("guarded_sample_rate", 2000, path, 12, "mariadbd");
  expect_from_program("max_segment_reclaim", 20, path, 28, "mysqld");
  expect_not_applied("guarded_sample_seed");
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{8} << 20);
  EXPECT_EQ(mi::config_node_arena_reserve_program(0), nullptr);
  EXPECT_EQ(mi::config_node_huge_pages(0), 1);
  EXPECT_EQ(mi::config_node_arena_reserve(1), size_t{16} << 20);
  EXPECT_STREQ(mi::config_node_arena_reserve_program(1), "mariadbd");
  EXPECT_EQ(applied_programs(), std::vector<std::string>({"mariadbd:11", "mysqld:28"}));
  // two tables that set the same option: the later one in the file wins
  static const std::string name = "both.toml";
  Reading both = run_text(name, "[program.mariadbd]\nos_tag = 1\narena_purge_mult = 7\n[program.mysqld]\nos_tag = 2\n");
  EXPECT_EQ(both.checked, 0) << both.all();
  expect_from_program("os_tag", 2, name, 5, "mysqld");
  expect_from_program("arena_purge_mult", 7, name, 3, "mariadbd");
  Reading swapped = run_text(name, "[program.mysqld]\nos_tag = 2\n[program.mariadbd]\nos_tag = 1\n");
  EXPECT_EQ(swapped.checked, 0) << swapped.all();
  expect_from_program("os_tag", 1, name, 4, "mariadbd");
}

TEST(ConfigPrograms, AQuotedNameWithADot) {
  OptionsSnapshot snap;
  mi::program_set_names("python3", "python3.11");
  const std::string path = fixture("valid/programs.toml");
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  expect_from_program("os_tag", 14, path, 16, "python3.11");
  EXPECT_EQ(applied_programs(), std::vector<std::string>({"python3.11:15"}));
}

TEST(ConfigPrograms, AProgramNoTableNamesGetsTheFilesOwnTables) {
  OptionsSnapshot snap;
  mi::program_set_names("cat", "cat");
  const std::string path = fixture("valid/programs.toml");
  Reading r = run_file(path);
  EXPECT_EQ(r.checked, 0) << r.all();
  expect_from_file("os_tag", 11, path, 8);
  expect_from_file("guarded_sample_rate", 1000, path, 9);
  expect_not_applied("guarded_sample_seed");
  expect_not_applied("max_segment_reclaim");
  EXPECT_EQ(mi::config_node_arena_reserve(0), size_t{8} << 20);
  EXPECT_EQ(mi::config_node_huge_pages(0), 1);
  EXPECT_EQ(mi::config_node_arena_reserve(1), 0u);
  EXPECT_TRUE(applied_programs().empty());
  // and a program table's bad value is reported though it is not this program's
  Reading bad = run_text("bad.toml", "[program.postgres]\nos_tag = 300\n");
  EXPECT_EQ(bad.checked, 1);
  expect_message(bad, 2, {"[program.postgres] option 'os_tag': expected a value from 0 to 255, not the integer 300"});
}

TEST(ConfigPrograms, AFileNameOptionFollowsTheSamePrecedence) {
  // stats_file is a string: the same rules as the other options (a table of
  // another program does not apply; this program's wins over [options], before
  // or after it in the file)
  OptionsSnapshot snap;
  mi::program_set_names("postgres", "postgres");
  char value[64];
  Reading other =
      run_text("s1.toml", "[program.mariadbd]\nstats_file = \"/tmp/a\"\n[options]\nstats_file = \"/tmp/b\"\n");
  EXPECT_EQ(other.checked, 0) << other.all();
  mi::option_get_string(mi_option_stats_file, value, sizeof(value));
  EXPECT_STREQ(value, "/tmp/b");
  expect_from_program("stats_file", 1, "s1.toml", 4, nullptr);
  Reading mine =
      run_text("s2.toml", "[program.postgres]\nstats_file = \"/tmp/c\"\n[options]\nstats_file = \"/tmp/d\"\n");
  EXPECT_EQ(mine.checked, 0) << mine.all();
  mi::option_get_string(mi_option_stats_file, value, sizeof(value));
  EXPECT_STREQ(value, "/tmp/c");
  expect_from_program("stats_file", 1, "s2.toml", 2, "postgres");
}

TEST(ConfigPrograms, EveryOptionWorksInAProgramTable) {
  // the [options] key handler serves [program.NAME]: every option, by its
  // table name and by a legacy name
  OptionsSnapshot snap;
  mi::program_set_names("postgres", "postgres");
  static const std::string name = "every.toml";
  std::string text = "[program.postgres]\n";
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    if (d.option == mi_option_disallow_os_alloc || d.option == mi_option_show_errors ||
        d.option == mi_option_max_warnings) {
      text += "# " + std::string(d.name) + "\n";  // would change how this test runs
      continue;
    }
    // a file name (stats_file) is a string; the option's value says it is set
    text +=
        std::string(d.name) + " = " + (d.kind == OptionKind::path ? "\"/tmp/every-%p.txt\"" : toml_of(d, d.min)) + "\n";
  }
  Reading r = run_text(name, text);
  EXPECT_EQ(r.checked, 0) << r.all();
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    if (d.option == mi_option_disallow_os_alloc || d.option == mi_option_show_errors ||
        d.option == mi_option_max_warnings)
      continue;
    expect_from_program(d.name, d.kind == OptionKind::path ? 1 : d.min, name, i + 2, "postgres");
    if (d.kind == OptionKind::path) {
      char value[64];
      mi::option_get_string(d.option, value, sizeof(value));
      EXPECT_STREQ(value, "/tmp/every-%p.txt") << d.name;
    }
  }
  Reading legacy = run_text(name, "[program.postgres]\ndecommit_delay = \"7ms\"\n");
  EXPECT_EQ(legacy.checked, 0) << legacy.all();
  expect_from_program("purge_delay", 7, name, 2, "postgres");
}

TEST(ConfigPrograms, OptionListNamesTheTable) {
  OptionsSnapshot snap;
  mi::program_set_names("postgres", "python3.11");
  static const std::string name = "/etc/programs.toml";
  Reading r = run_text(name,
                       "[options]\nos_tag = 5\n[program.postgres]\narena_purge_mult = "
                       "6\n[program.\"python3.11\"]\nguarded_sample_seed = 7\n");
  ASSERT_EQ(r.checked, 0) << r.all();
  std::vector<std::string> out;
  mi_register_output(&capture, &out);
  mi_options_print();
  mi_register_output(nullptr, nullptr);
  std::string all;
  for (const std::string& o : out) all += o;
  EXPECT_NE(all.find(" (/etc/programs.toml:2)\n"), std::string::npos) << all;
  EXPECT_NE(all.find(" (/etc/programs.toml:4 [program.postgres])\n"), std::string::npos) << all;
  EXPECT_NE(all.find(" (/etc/programs.toml:6 [program.\"python3.11\"])\n"), std::string::npos) << all;
}

// --- run time: mi_option_set ----------------------------------------------------------

TEST(ConfigRuntime, OptionSetWinsOverFileAndEnvironment) {
  OptionsSnapshot snap;
  const std::string name = "rt.toml";
  Reading r = run_text(name, "[options]\nos_tag = 5\narena_purge_mult = 6\n");
  ASSERT_EQ(r.checked, 0);
  expect_from_file("os_tag", 5, name, 2);
  mi::option_set_from(mi_option_arena_purge_mult, 8, OptionSource::environment, nullptr,
                      0);  // as the environment does after the file
  mi_option_set(mi_option_os_tag, 7);
  mi_option_set(mi_option_arena_purge_mult, 9);
  EXPECT_EQ(mi_option_get(mi_option_os_tag), 7);
  EXPECT_EQ(mi_option_get(mi_option_arena_purge_mult), 9);
  EXPECT_EQ(mi::option_source(mi_option_os_tag, nullptr, nullptr), OptionSource::runtime);
  EXPECT_EQ(mi::option_source(mi_option_arena_purge_mult, nullptr, nullptr), OptionSource::runtime);
  // mi_option_set_default does not override a file's value
  Reading r2 = run_text(name, "[options]\nguarded_sample_seed = 3\n");
  mi_option_set_default(mi_option_guarded_sample_seed, 4);
  EXPECT_EQ(mi_option_get(mi_option_guarded_sample_seed), 3);
}

TEST(ConfigRuntime, EveryRuntimeOptionReadsBack) {
  // set, read and restore with nothing in between (disallow_os_alloc too)
  long got[mi::OPTION_COUNT];
  OptionSource src[mi::OPTION_COUNT];
  long want[mi::OPTION_COUNT];
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    const OptionDesc& d = mi::option_desc(o);
    want[i] = (d.default_value != d.max) ? d.max : d.min;
    if (d.kind == OptionKind::path) want[i] = 0;  // mi_option_set can only unset a file name
    const long old = mi::option_get(o);
    const char* file = nullptr;
    int line = 0;
    const OptionSource old_src = mi::option_source(o, &file, &line);
    mi_option_set(o, want[i]);
    got[i] = mi_option_get(o);
    src[i] = mi::option_source(o, nullptr, nullptr);
    mi::option_set_from(o, old, old_src, file, line);
  }
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const char* name = mi::option_desc(static_cast<mi_option_t>(i)).name;
    EXPECT_EQ(got[i], want[i]) << name;
    EXPECT_EQ(src[i], OptionSource::runtime) << name;
  }
}

TEST(ConfigRuntime, VerboseAndShowErrorsTakeEffectAtOnce) {
  OptionsSnapshot snap;
  ASSERT_TRUE(mi::option_desc(mi_option_verbose).runtime);
  ASSERT_TRUE(mi::option_desc(mi_option_show_errors).runtime);
  std::vector<std::string> out;
  mi_register_output(&capture, &out);
  mi_option_set(mi_option_verbose, 0);
  mi::verbose_message("hidden %d\n", 1);
  mi_option_set(mi_option_verbose, 1);
  mi::verbose_message("shown %d\n", 2);
  mi_option_set(mi_option_verbose, 0);
  // show_errors off: a bad file is still counted, but says nothing
  mi_option_set(mi_option_show_errors, 0);
  const char bad[] = "[options]\nos_tag = 1000\n";
  const int quiet = mi::config_parse("quiet.toml", bad, sizeof(bad) - 1, true, nullptr, nullptr);
  mi_option_set(mi_option_show_errors, 1);
  const int loud = mi::config_parse("loud.toml", bad, sizeof(bad) - 1, true, nullptr, nullptr);
  mi_register_output(nullptr, nullptr);
  EXPECT_EQ(quiet, 1);
  EXPECT_EQ(loud, 1);
  ASSERT_EQ(out.size(), 2u) << (out.empty() ? "" : out[0]);
  EXPECT_EQ(out[0], "mimalloc-numa: shown 2\n");
  EXPECT_EQ(out[1].rfind("mimalloc-numa: warning: loud.toml:2: option 'os_tag'", 0), 0u) << out[1];
}

TEST(ConfigRuntime, OptionListShowsEverySource) {
  OptionsSnapshot snap;
  static const std::string name = "/etc/sources.toml";
  Reading r = run_text(name, "[options]\nos_tag = 5\narena_purge_mult = 6\n");
  ASSERT_EQ(r.checked, 0);
  mi::option_set_from(mi_option_arena_purge_mult, 8, OptionSource::environment, nullptr, 0);
  mi_option_set(mi_option_guarded_sample_seed, 9);
  std::vector<std::string> out;
  mi_register_output(&capture, &out);
  mi_options_print();
  mi_register_output(nullptr, nullptr);
  std::string all;
  for (const std::string& s : out) all += s;
  auto line_of = [&](const char* option) {
    const std::string key = std::string("mimalloc-numa:   ") + option + " ";
    size_t at = all.find(key);
    return at == std::string::npos ? std::string() : all.substr(at, all.find('\n', at) - at);
  };
  EXPECT_NE(line_of("os_tag").find("5"), std::string::npos) << line_of("os_tag");
  EXPECT_NE(line_of("os_tag").find("(/etc/sources.toml:2)"), std::string::npos) << all;
  EXPECT_NE(line_of("arena_purge_mult").find("(environment)"), std::string::npos) << all;
  EXPECT_NE(line_of("guarded_sample_seed").find("(mi_option_set)"), std::string::npos) << all;
  EXPECT_NE(line_of("max_segment_reclaim").find("(default)"), std::string::npos) << all;
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    EXPECT_FALSE(line_of(mi::option_desc(static_cast<mi_option_t>(i)).name).empty())
        << mi::option_desc(static_cast<mi_option_t>(i)).name;
  }
}

// --- precedence at start-up (child processes) ----------------------------------------------

// Every option, with a value for the file and one for the environment that
// this test binary survives (disallow_*, destroy_on_exit and the huge page
// reservation stay off), and what mi_option_get returns for each.
struct EveryOption {
  const char* name;
  const char* file_value;  // TOML
  long file_want;
  const char* env_value;
  long env_want;
};
const EveryOption every_option[] = {
    {"show_errors", "false", 0, "yes", 1},
    {"show_stats", "false", 0, "0", 0},
    {"verbose", "false", 0, "off", 0},
    {"eager_commit", "false", 0, "1", 1},
    {"arena_eager_commit", "0", 0, "1", 1},
    {"purge_decommits", "\"off\"", 0, "on", 1},
    {"allow_large_os_pages", "\"no\"", 0, "false", 0},
    {"reserve_huge_os_pages", "0", 0, "0", 0},
    {"reserve_huge_os_pages_at", "0", 0, "1", 1},
    {"reserve_os_memory", "\"4MiB\"", 4096, "8MiB", 8192},
    {"deprecated_segment_cache", "3", 3, "4", 4},
    {"deprecated_page_reset", "true", 1, "false", 0},
    {"abandoned_page_purge", "false", 0, "true", 1},
    {"deprecated_segment_reset", "\"yes\"", 1, "no", 0},
    {"eager_commit_delay", "2", 2, "3", 3},
    {"purge_delay", "\"250ms\"", 250, "2s", 2000},
    {"use_numa_nodes", "1", 1, "2", 2},
    {"disallow_os_alloc", "false", 0, "0", 0},
    {"os_tag", "42", 42, "43", 43},
    {"max_errors", "20", 20, "21", 21},
    {"max_warnings", "30", 30, "31", 31},
    {"max_segment_reclaim", "50", 50, "51", 51},
    {"destroy_on_exit", "false", 0, "off", 0},
    {"arena_reserve", "\"64MiB\"", 65536, "32MiB", 32768},
    {"arena_purge_mult", "5", 5, "6", 6},
    {"purge_extend_delay", "\"2ms\"", 2, "3", 3},
    {"abandoned_reclaim_on_free", "false", 0, "1", 1},
    {"disallow_arena_alloc", "false", 0, "0", 0},
    {"retry_on_oom", "\"1s\"", 1000, "500ms", 500},
    {"visit_abandoned", "true", 1, "0", 0},
    {"guarded_min", "\"4KiB\"", 4, "8k", 8},
    {"guarded_max", "1048576", 1024, "2MiB", 2048},
    {"guarded_precise", "\"on\"", 1, "off", 0},
    {"guarded_sample_rate", "1000", 1000, "2000", 2000},
    {"guarded_sample_seed", "7", 7, "8", 8},
    {"target_segments_per_thread", "8", 8, "9", 9},
    {"generic_collect", "5000", 5000, "6000", 6000},
    {"purge_thread", "true", 1, "0", 0},
    {"allow_thp", "true", 1, "false", 0},
    {"numa_bind", "\"preferred\"", 1, "none", 0},
    {"stats_file", "\"/nonexistent/file-%p.txt\"", 1, "/nonexistent/env-%p.txt", 1},
    {"secure", "true", 1, "yes", 1},  // on: the hardened build cannot turn it off (a warning)
    {"stats_publish", "\"off\"", 0, "no", 0},
    {"stats_publish_interval", "\"2s\"", 2000, "500", 500},
    {"cross_thread_cache", "\"2MiB\"", 2048, "512KiB", 512},
};

// Reading in a child: "@@<name>=<value>,<source>,<line>" for every option.
TEST(ConfigChild, DISABLED_Report) {
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    int line = 0;
    const char* program = nullptr;
    const mi::OptionSource s = mi::option_source(o, nullptr, &line, &program);
    printf("@@%s=%ld,%d,%d,%s\n", mi::option_desc(o).name, mi_option_get(o), static_cast<int>(s), line,
           program != nullptr ? program : "-");
  }
  printf("@@program=%s,%s\n", mi::program_argv0_name(), mi::program_exe_name());
  fflush(stdout);
}

struct Reported {
  long value = -999999;
  int source = -1;
  int line = -1;
  std::string program;  // the [program.NAME] table's NAME, or "-"
};

Reported reported(const unit::ChildResult& r, const char* name) {
  Reported rep;
  const std::string key = std::string("@@") + name + "=";
  const size_t pos = r.out.find(key);
  char program[300] = "";
  if (pos != std::string::npos) {
    sscanf(r.out.c_str() + pos + key.size(), "%ld,%d,%d,%299[^\n]", &rep.value, &rep.source, &rep.line, program);
  }
  rep.program = program;
  return rep;
}

std::string upper(const char* s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
  return u;
}

// The file of every_option: line 2 + i sets every_option[i].
std::string every_option_file() {
  std::string s = "[options]\n";
  for (const EveryOption& e : every_option) s += std::string(e.name) + " = " + e.file_value + "\n";
  return s;
}

TEST(ConfigPrecedence, TheTableCoversEveryOption) {
  ASSERT_EQ(sizeof(every_option) / sizeof(every_option[0]), static_cast<size_t>(mi::OPTION_COUNT));
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    EXPECT_STREQ(every_option[i].name, mi::option_desc(static_cast<mi_option_t>(i)).name) << i;
  }
}

constexpr int SRC_DEFAULT = static_cast<int>(OptionSource::default_);
constexpr int SRC_FILE = static_cast<int>(OptionSource::config_file);
constexpr int SRC_ENV = static_cast<int>(OptionSource::environment);

TEST(ConfigPrecedence, EveryOptionFromTheFile) {
  TempFile f(every_option_file());
  unit::ChildResult r = unit::run_child("ConfigChild.DISABLED_Report", {"MIMALLOC_CONFIG=" + f.path});
  ASSERT_EQ(r.status, 0) << r.describe();
  for (size_t i = 0; i < sizeof(every_option) / sizeof(every_option[0]); i++) {
    const EveryOption& e = every_option[i];
    const Reported rep = reported(r, e.name);
    EXPECT_EQ(rep.value, e.file_want) << e.name << "\n" << r.describe();
    EXPECT_EQ(rep.source, SRC_FILE) << e.name;
    EXPECT_EQ(rep.line, static_cast<int>(i) + 2) << e.name;
  }
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
}

TEST(ConfigPrecedence, EveryOptionFromTheEnvironment) {
  std::vector<std::string> env;
  for (const EveryOption& e : every_option) env.push_back("MIMALLOC_" + upper(e.name) + "=" + e.env_value);
  unit::ChildResult r = unit::run_child("ConfigChild.DISABLED_Report", env);
  ASSERT_EQ(r.status, 0) << r.describe();
  for (const EveryOption& e : every_option) {
    const Reported rep = reported(r, e.name);
    EXPECT_EQ(rep.value, e.env_want) << e.name << "\n" << r.describe();
    EXPECT_EQ(rep.source, SRC_ENV) << e.name;
  }
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
}

TEST(ConfigPrecedence, EnvironmentOverridesTheFile) {
  // the file sets every option; the environment every other one
  TempFile f(every_option_file());
  std::vector<std::string> env = {"MIMALLOC_CONFIG=" + f.path};
  const size_t n = sizeof(every_option) / sizeof(every_option[0]);
  for (size_t i = 0; i < n; i += 2)
    env.push_back("MIMALLOC_" + upper(every_option[i].name) + "=" + every_option[i].env_value);
  unit::ChildResult r = unit::run_child("ConfigChild.DISABLED_Report", env);
  ASSERT_EQ(r.status, 0) << r.describe();
  for (size_t i = 0; i < n; i++) {
    const EveryOption& e = every_option[i];
    const Reported rep = reported(r, e.name);
    if (i % 2 == 0) {
      EXPECT_EQ(rep.value, e.env_want) << e.name << "\n" << r.describe();
      EXPECT_EQ(rep.source, SRC_ENV) << e.name;
    } else {
      EXPECT_EQ(rep.value, e.file_want) << e.name << "\n" << r.describe();
      EXPECT_EQ(rep.source, SRC_FILE) << e.name;
      EXPECT_EQ(rep.line, static_cast<int>(i) + 2) << e.name;
    }
  }
}

TEST(ConfigPrecedence, ABadFileLineKeepsTheDefaultAndTheEnvironmentStillApplies) {
  TempFile f("[options]\nos_tag = 300\nmax_segment_reclaim = 40\narena_purge_mult = 4\n");
  unit::ChildResult r =
      unit::run_child("ConfigChild.DISABLED_Report", {"MIMALLOC_CONFIG=" + f.path, "MIMALLOC_ARENA_PURGE_MULT=3"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(reported(r, "os_tag").value, 100);
  EXPECT_EQ(reported(r, "os_tag").source, SRC_DEFAULT);
  EXPECT_EQ(reported(r, "max_segment_reclaim").value, 40);
  EXPECT_EQ(reported(r, "arena_purge_mult").value, 3);
  EXPECT_EQ(reported(r, "arena_purge_mult").source, SRC_ENV);
  const std::string want = "mimalloc-numa: warning: " + f.path +
                           ":2: option 'os_tag': expected a value from 0 to 255, not the integer 300; ignored\n";
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
}

TEST(ConfigPrecedence, AMissingFileIsOneWarning) {
  unit::ChildResult r =
      unit::run_child("ConfigChild.DISABLED_Report", {"MIMALLOC_CONFIG=/nonexistent/mi.toml", "MIMALLOC_OS_TAG=9"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.err.find("mimalloc-numa: warning: /nonexistent/mi.toml:0: cannot read the configuration file: No such "
                       "file or directory; the defaults apply\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(reported(r, "os_tag").value, 9);
}

TEST(ConfigPrecedence, VerboseShowsEverySource) {
  TempFile f("[options]\nos_tag = 42\narena_purge_mult = 5\n[node.0]\narena_reserve = \"32MiB\"\n");
  unit::ChildResult r =
      unit::run_child("ConfigChild.DISABLED_Report",
                      {"MIMALLOC_CONFIG=" + f.path, "MIMALLOC_VERBOSE=1", "MIMALLOC_ARENA_PURGE_MULT=7"});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto line_of = [&](const std::string& start) {
    size_t at = r.err.find(start);
    return at == std::string::npos ? std::string() : r.err.substr(at, r.err.find('\n', at) - at);
  };
  EXPECT_NE(line_of("mimalloc-numa: configuration file " + f.path).size(), 0u) << r.err;
  EXPECT_NE(line_of("mimalloc-numa:   [node.0] arena_reserve = 32.0 MiB").size(), 0u) << r.err;
  const std::string os_tag = line_of("mimalloc-numa:   os_tag ");
  EXPECT_NE(os_tag.find(" 42 "), std::string::npos) << os_tag;
  EXPECT_NE(os_tag.find("(" + f.path + ":2)"), std::string::npos) << os_tag;
  const std::string mult = line_of("mimalloc-numa:   arena_purge_mult ");
  EXPECT_NE(mult.find(" 7 "), std::string::npos) << mult;
  EXPECT_NE(mult.find("(environment)"), std::string::npos) << mult;
  EXPECT_NE(line_of("mimalloc-numa:   verbose ").find("(environment)"), std::string::npos) << r.err;
  EXPECT_NE(line_of("mimalloc-numa:   max_segment_reclaim ").find("(default)"), std::string::npos) << r.err;
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const char* name = mi::option_desc(static_cast<mi_option_t>(i)).name;
    EXPECT_FALSE(line_of(std::string("mimalloc-numa:   ") + name + " ").empty()) << name;
  }
}

TEST(ConfigPrecedence, ProgramTableAtStartUp) {
  // the start-up path: this binary is "unit_config" (the executable, read
  // from /proc; run_child starts it as /proc/self/exe, so argv[0] is "exe");
  // its table applies over [options] wherever it sits, the environment over
  // both, and another program's table not at all
  TempFile f(
      "[program.unit_config]\nos_tag = 42\nguarded_sample_rate = 43\n"
      "[options]\nos_tag = 41\narena_purge_mult = 4\n"
      "[program.postgres]\narena_purge_mult = 3\nmax_segment_reclaim = 30\n");
  unit::ChildResult r =
      unit::run_child("ConfigChild.DISABLED_Report",
                      {"MIMALLOC_CONFIG=" + f.path, "MIMALLOC_GUARDED_SAMPLE_RATE=9", "MIMALLOC_VERBOSE=1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.out.find("@@program=exe,unit_config\n"), std::string::npos) << r.out;
  const Reported os_tag = reported(r, "os_tag");
  EXPECT_EQ(os_tag.value, 42) << r.describe();
  EXPECT_EQ(os_tag.source, SRC_FILE);
  EXPECT_EQ(os_tag.line, 2);
  EXPECT_EQ(os_tag.program, "unit_config");
  EXPECT_EQ(reported(r, "guarded_sample_rate").value, 9);
  EXPECT_EQ(reported(r, "guarded_sample_rate").source, SRC_ENV);
  EXPECT_EQ(reported(r, "arena_purge_mult").value, 4);
  EXPECT_EQ(reported(r, "arena_purge_mult").program, "-");
  EXPECT_EQ(reported(r, "max_segment_reclaim").source, SRC_DEFAULT);
  // MIMALLOC_VERBOSE: the names, the table that applies, each value's table
  EXPECT_NE(r.err.find("program names: argv[0] \"exe\", executable \"unit_config\"; tables that apply:\n"
                       "mimalloc-numa:     [program.unit_config] (line 1)\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(" + f.path + ":2 [program.unit_config])\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(" + f.path + ":6)\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("warning:"), std::string::npos) << r.err;
  // a file without a table for it says so
  TempFile g("[program.postgres]\nos_tag = 7\n");
  unit::ChildResult none =
      unit::run_child("ConfigChild.DISABLED_Report", {"MIMALLOC_CONFIG=" + g.path, "MIMALLOC_VERBOSE=1"});
  ASSERT_EQ(none.status, 0) << none.describe();
  EXPECT_EQ(reported(none, "os_tag").source, SRC_DEFAULT);
  EXPECT_NE(none.err.find("executable \"unit_config\"; no [program.NAME] table names them\n"), std::string::npos)
      << none.err;
}

}  // namespace
