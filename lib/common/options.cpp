// options.cpp: the option table (one row per option) and everything derived
// from it: environment parsing, the mi_option_* API, the printed option list.
// See options.h. To add an option: one enum entry in mimalloc.h, one row here.
#include "options.h"

#include <errno.h>
#include <string.h>

#include "config.h"
#include "format.h"
#include "messages.h"
#include "sys.h"

extern char** environ;

namespace mi {

namespace {

constexpr const char* numa_bind_choices[] = {"none", "preferred", "strict", nullptr};
// show_stats was a flag (mimalloc's): false and true keep their meaning (and
// every word a flag takes, choice_is_flag), "json" is the third value.
constexpr const char* show_stats_choices[] = {"false", "true", "json", nullptr};

constexpr long NO_MAX = 0x7fffffffL;
using K = OptionKind;

// clang-format off
constexpr OptionDesc option_table[] = {
  // name                       option                                kind            default    min  max     runtime legacy name              choices            description
  {"show_errors",               mi_option_show_errors,               K::flag,        1,          0,   1,      true,  nullptr,                  nullptr,           "print warnings and error messages"},
  {"show_stats",                mi_option_show_stats,                K::choice,      0,          0,   2,      true,  nullptr,                  show_stats_choices,"print statistics at process exit: false, true (the text report), json (one line of JSON)"},
  {"verbose",                   mi_option_verbose,                   K::flag,        0,          0,   1,      true,  nullptr,                  nullptr,           "print verbose messages (option values, arenas, fallbacks)"},
  {"eager_commit",              mi_option_eager_commit,              K::flag,        1,          0,   1,      true,  nullptr,                  nullptr,           "commit a thread's segments at once (after eager_commit_delay segments)"},
  {"arena_eager_commit",        mi_option_arena_eager_commit,        K::number,      2,          0,   2,      true,  "eager_region_commit",    nullptr,           "commit arenas when reserved: 0 no, 1 yes, 2 only where the kernel overcommits"},
  {"purge_decommits",           mi_option_purge_decommits,           K::flag,        1,          0,   1,      true,  "reset_decommits",        nullptr,           "purging decommits memory (MADV_DONTNEED) instead of resetting it (MADV_FREE)"},
  {"allow_large_os_pages",      mi_option_allow_large_os_pages,      K::flag,        0,          0,   1,      false, "large_os_pages",         nullptr,           "use 2 MiB pages for arenas where the kernel has them"},
  {"reserve_huge_os_pages",     mi_option_reserve_huge_os_pages,     K::number,      0,          0,   1048576,false, nullptr,                  nullptr,           "1 GiB pages to reserve at start-up, interleaved over the NUMA nodes"},
  {"reserve_huge_os_pages_at",  mi_option_reserve_huge_os_pages_at,  K::number,      -1,         -1,  1023,   false, nullptr,                  nullptr,           "reserve the huge pages on this NUMA node only (-1: interleave)"},
  {"reserve_os_memory",         mi_option_reserve_os_memory,         K::size_kib,    0,          0,   NO_MAX, false, nullptr,                  nullptr,           "memory to reserve in an arena at start-up"},
  {"deprecated_segment_cache",  mi_option_deprecated_segment_cache,  K::number,      0,          0,   NO_MAX, true,  "segment_cache",          nullptr,           "deprecated (mimalloc 2.0); accepted, no effect: arenas cache segments"},
  {"deprecated_page_reset",     mi_option_deprecated_page_reset,     K::flag,        0,          0,   1,      true,  "page_reset",             nullptr,           "deprecated (mimalloc 2.0); accepted, no effect: free pages are purged"},
  {"abandoned_page_purge",      mi_option_abandoned_page_purge,      K::flag,        1,          0,   1,      true,  "abandoned_page_reset",   nullptr,           "purge the free pages of an exiting thread's segments at once, not after purge_delay (mimalloc: 0; 0 saves the next thread's page faults, 1 the memory of a node whose threads exited)"},
  {"deprecated_segment_reset",  mi_option_deprecated_segment_reset,  K::flag,        0,          0,   1,      true,  "segment_reset",          nullptr,           "deprecated (mimalloc 2.0); accepted, no effect"},
  {"eager_commit_delay",        mi_option_eager_commit_delay,        K::number,      1,          0,   1024,   true,  nullptr,                  nullptr,           "the first N segments of a thread commit page by page"},
  {"purge_delay",               mi_option_purge_delay,               K::duration_ms, 25,         -1,  NO_MAX, true,  "decommit_delay",         nullptr,           "purge unused memory after this delay (0: at once, -1: never; mimalloc 2.1: 10ms)"},
  {"use_numa_nodes",            mi_option_use_numa_nodes,            K::number,      0,          0,   1024,   false, nullptr,                  nullptr,           "use at most N NUMA nodes (0: all)"},
  {"disallow_os_alloc",         mi_option_disallow_os_alloc,         K::flag,        0,          0,   1,      true,  "limit_os_alloc",         nullptr,           "never take fresh memory from the OS, only reserved arenas"},
  {"os_tag",                    mi_option_os_tag,                    K::number,      100,        0,   255,    false, nullptr,                  nullptr,           "OS memory tag (macOS only; accepted, no effect on Linux)"},
  {"max_errors",                mi_option_max_errors,                K::number,      16,         -1,  NO_MAX, true,  nullptr,                  nullptr,           "print at most N error messages (-1: no limit)"},
  {"max_warnings",              mi_option_max_warnings,              K::number,      16,         -1,  NO_MAX, true,  nullptr,                  nullptr,           "print at most N warnings (-1: no limit)"},
  {"max_segment_reclaim",       mi_option_max_segment_reclaim,       K::number,      10,         0,   100,    true,  nullptr,                  nullptr,           "reclaim at most N percent of the abandoned segments per try"},
  {"destroy_on_exit",           mi_option_destroy_on_exit,           K::flag,        0,          0,   1,      true,  nullptr,                  nullptr,           "release all memory when a plug-in's copy (dlopen) is unloaded (as the process's malloc: no effect)"},
  {"arena_reserve",             mi_option_arena_reserve,             K::size_kib,    1048576,    4096,NO_MAX, true,  nullptr,                  nullptr,           "address space reserved for each new arena (1 GiB)"},
  {"arena_purge_mult",          mi_option_arena_purge_mult,          K::number,      10,         0,   100000, true,  nullptr,                  nullptr,           "arena memory, and the free blocks of exited threads' pages, are purged after purge_delay times this"},
  {"purge_extend_delay",        mi_option_purge_extend_delay,        K::duration_ms, 1,          0,   NO_MAX, true,  "decommit_extend_delay",  nullptr,           "extend a pending purge by this much when more memory is freed"},
  {"abandoned_reclaim_on_free", mi_option_abandoned_reclaim_on_free, K::flag,        0,          0,   1,      true,  nullptr,                  nullptr,           "a free into a segment of an exited thread may take the segment over"},
  {"disallow_arena_alloc",      mi_option_disallow_arena_alloc,      K::flag,        0,          0,   1,      true,  nullptr,                  nullptr,           "allocate from arenas only when a heap asks for one by id"},
  {"retry_on_oom",              mi_option_retry_on_oom,              K::duration_ms, 400,        0,   NO_MAX, true,  nullptr,                  nullptr,           "retry on out-of-memory (Windows only; accepted, no effect on Linux)"},
  {"visit_abandoned",           mi_option_visit_abandoned,           K::flag,        0,          0,   1,      false, nullptr,                  nullptr,           "mimalloc's; does nothing here (no call visits abandoned segments' blocks)"},
  {"guarded_min",               mi_option_guarded_min,               K::size_kib,    0,          0,   NO_MAX, true,  nullptr,                  nullptr,           "guarded-page builds only (accepted, no effect in this build)"},
  {"guarded_max",               mi_option_guarded_max,               K::size_kib,    0,          0,   NO_MAX, true,  nullptr,                  nullptr,           "guarded-page builds only (accepted, no effect in this build)"},
  {"guarded_precise",           mi_option_guarded_precise,           K::flag,        0,          0,   1,      true,  nullptr,                  nullptr,           "guarded-page builds only (accepted, no effect in this build)"},
  {"guarded_sample_rate",       mi_option_guarded_sample_rate,       K::number,      4000,       0,   NO_MAX, true,  nullptr,                  nullptr,           "guarded-page builds only (accepted, no effect in this build)"},
  {"guarded_sample_seed",       mi_option_guarded_sample_seed,       K::number,      0,          0,   NO_MAX, true,  nullptr,                  nullptr,           "guarded-page builds only (accepted, no effect in this build)"},
  {"target_segments_per_thread",mi_option_target_segments_per_thread,K::number,      0,          0,   NO_MAX, true,  nullptr,                  nullptr,           "purge a thread's free pages early once it owns more segments than this (0: off)"},
  {"generic_collect",           mi_option_generic_collect,           K::number,      10000,      0,   NO_MAX, true,  nullptr,                  nullptr,           "collect the heap every N calls of the allocation slow path"},
  {"purge_thread",              mi_option_purge_thread,              K::flag,        0,          0,   1,      false, nullptr,                  nullptr,           "a background thread purges memory of an idle process"},
  {"allow_thp",                 mi_option_allow_thp,                 K::flag,        0,          0,   1,      true,  nullptr,                  nullptr,           "advise transparent huge pages (MADV_HUGEPAGE) on committed arena memory; without it, where THP is \"always\", segments of blocks up to 2 MiB and metadata are advised MADV_NOHUGEPAGE"},
  {"numa_bind",                 mi_option_numa_bind,                 K::choice,      2,          0,   2,      false, nullptr,                  numa_bind_choices, "bind arena memory to its node: none, preferred, strict"},
  {"stats_file",                mi_option_stats_file,                K::path,        0,          0,   1,      true,  nullptr,                  nullptr,           "write the statistics at exit to this file instead of stderr (%p pid, %n program name, %t start time)"},
  {"secure",                    mi_option_secure,                    K::flag,        0,          0,   1,      false, nullptr,                  nullptr,           "hardening chosen at run time, the fast paths unchanged: guard pages, random free-list order, free lists walked before reuse, abort on detected misuse; up to 3x the CPU time of allocation-heavy code (README: The hardened mode; always on in a -Dsecure=true build)"},
  {"stats_publish",             mi_option_stats_publish,             K::flag,        0,          0,   1,      false, nullptr,                  nullptr,           "keep live statistics in /run/mimalloc-numa/PID-START.stats for mi-stat (mimalloc-numa-stats.h)"},
  {"stats_publish_interval",    mi_option_stats_publish_interval,    K::duration_ms, 1000,       10,  3600000,true,  nullptr,                  nullptr,           "refresh the published statistics this often (stretched so that it takes at most 1% of a core)"},
  {"cross_thread_cache",        mi_option_cross_thread_cache,        K::size_kib,    1024,       0,   65536,  true,  nullptr,                  nullptr,           "a thread may keep this much of the blocks (up to 128 KiB) it frees of other threads of its node, and allocate them again instead of sending them back (0: off); taken at a thread's start and its collects"},
};
// clang-format on

static_assert(sizeof(option_table) / sizeof(option_table[0]) == OPTION_COUNT, "one table row per option");

constexpr bool table_in_enum_order() {
  for (int i = 0; i < OPTION_COUNT; i++) {
    if (static_cast<int>(option_table[i].option) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order(), "option_table rows must follow mi_option_t order");

constexpr std::array<long, OPTION_COUNT> default_values() {
  std::array<long, OPTION_COUNT> v{};
  for (int i = 0; i < OPTION_COUNT; i++) v[static_cast<size_t>(i)] = option_table[i].default_value;
  return v;
}

// "a value from MIN to MAX" of every option, made at compile time: the text a
// range error points *expected at. A static buffer filled at the error would
// be shared by concurrent mi_config_check calls.
struct RangeText {
  char text[64];
};

constexpr void range_text_put(RangeText& r, size_t& n, const char* s) {
  while (*s != 0 && n + 1 < sizeof(r.text)) r.text[n++] = *s++;
}

constexpr void range_text_put(RangeText& r, size_t& n, long v) {
  unsigned long mag = v < 0 ? 0 - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  char digits[24]{};
  int k = 0;
  do {
    digits[k++] = static_cast<char>('0' + mag % 10);
    mag /= 10;
  } while (mag != 0);
  if (v < 0 && n + 1 < sizeof(r.text)) r.text[n++] = '-';
  while (k > 0 && n + 1 < sizeof(r.text)) r.text[n++] = digits[--k];
}

constexpr std::array<RangeText, OPTION_COUNT> make_range_texts() {
  std::array<RangeText, OPTION_COUNT> texts{};
  for (int i = 0; i < OPTION_COUNT; i++) {
    RangeText& r = texts[static_cast<size_t>(i)];
    size_t n = 0;
    range_text_put(r, n, "a value from ");
    range_text_put(r, n, option_table[i].min);
    range_text_put(r, n, " to ");
    range_text_put(r, n, option_table[i].max);
    r.text[n] = 0;
  }
  return texts;
}
constexpr std::array<RangeText, OPTION_COUNT> range_texts = make_range_texts();

// "one of none, preferred, strict" of every choice option, made at compile
// time for the same reason.
constexpr std::array<RangeText, OPTION_COUNT> make_choice_texts(bool quoted) {
  std::array<RangeText, OPTION_COUNT> texts{};
  for (int i = 0; i < OPTION_COUNT; i++) {
    RangeText& r = texts[static_cast<size_t>(i)];
    size_t n = 0;
    const char* const* c = option_table[i].choices;
    range_text_put(r, n, "one of ");
    for (int k = 0; c != nullptr && c[k] != nullptr; k++) {
      if (k > 0) range_text_put(r, n, ", ");
      if (quoted) range_text_put(r, n, "\"");
      range_text_put(r, n, c[k]);
      if (quoted) range_text_put(r, n, "\"");
    }
    r.text[n] = 0;
  }
  return texts;
}
constexpr std::array<RangeText, OPTION_COUNT> choice_texts = make_choice_texts(false);
constexpr std::array<RangeText, OPTION_COUNT> choice_texts_quoted = make_choice_texts(true);  // as TOML strings

// The text of the string options, one slot each (in table order), guarded by
// a spin lock: mi_option_set_string may run while the exit report reads it.
constexpr int string_option_count() {
  int n = 0;
  for (const OptionDesc& d : option_table) n += (d.kind == K::path);
  return n;
}
constexpr int string_slot(int option) {
  int n = 0;
  for (int i = 0; i < option; i++) n += (option_table[i].kind == K::path);
  return n;
}
char string_values[string_option_count() > 0 ? string_option_count() : 1][OPTION_STRING_MAX];
std::atomic<bool> string_lock{false};

void string_lock_take() {
  while (string_lock.exchange(true, std::memory_order_acquire)) {
  }
}
void string_lock_give() { string_lock.store(false, std::memory_order_release); }

struct SourceInfo {
  OptionSource source;
  int line;
  const char* file;     // points into static storage owned by the config reader
  const char* program;  // a [program.NAME] table's NAME (lib/common/program's storage), or nullptr
};
SourceInfo option_sources[OPTION_COUNT];
std::atomic<bool> initialized{false};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool name_equals(const char* a, size_t alen, const char* b) {
  if (b == nullptr) return false;
  size_t i = 0;
  for (; i < alen; i++) {
    if (b[i] == 0 || lower(a[i]) != lower(b[i])) return false;
  }
  return b[i] == 0;
}

bool starts_with_nocase(const char* s, const char* prefix) {
  for (; *prefix != 0; s++, prefix++) {
    if (lower(*s) != lower(*prefix)) return false;
  }
  return true;
}

const char* skip_space(const char* s) {
  while (*s == ' ' || *s == '\t') s++;
  return s;
}

// Parses a decimal integer with optional sign; returns the end or nullptr.
const char* parse_integer(const char* s, long long* out) {
  s = skip_space(s);
  bool neg = false;
  if (*s == '-' || *s == '+') neg = (*s++ == '-');
  if (*s < '0' || *s > '9') return nullptr;
  unsigned long long v = 0;
  while (*s >= '0' && *s <= '9') {
    unsigned long long next = v * 10 + static_cast<unsigned>(*s - '0');
    if (next / 10 != v) return nullptr;  // overflow
    v = next;
    s++;
  }
  // -2^63 fits, +2^63 does not
  if (v > static_cast<unsigned long long>(0x7fffffffffffffffLL) + (neg ? 1 : 0)) return nullptr;
  *out = neg ? static_cast<long long>(0 - v) : static_cast<long long>(v);
  return s;
}

bool rest_is_empty(const char* s) { return *skip_space(s) == 0; }

bool parse_flag(const char* s, long* value) {
  s = skip_space(s);
  const char* yes[] = {"1", "true", "on", "yes", "y", "enable", "enabled"};
  const char* no[] = {"0", "false", "off", "no", "n", "disable", "disabled"};
  size_t len = strlen(s);
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
  for (const char* y : yes) {
    if (name_equals(s, len, y)) {
      *value = 1;
      return true;
    }
  }
  for (const char* n : no) {
    if (name_equals(s, len, n)) {
      *value = 0;
      return true;
    }
  }
  return false;
}

// Size with optional unit: bytes (bare), k/K/KB/KiB, m/MB/MiB, g/GB/GiB, t/TB/TiB.
// Result in KiB, rounded up (mimalloc keeps these options in KiB).
bool parse_size_kib(const char* s, long* value) {
  long long n;
  const char* end = parse_integer(s, &n);
  if (end == nullptr || n < 0) return false;
  end = skip_space(end);
  unsigned long long mult_bytes = 1;
  char u = lower(*end);
  if (u == 'k') mult_bytes = KiB;
  else if (u == 'm') mult_bytes = MiB;
  else if (u == 'g') mult_bytes = GiB;
  else if (u == 't') mult_bytes = GiB * KiB;
  else if (u == 'b') mult_bytes = 1;
  else if (u != 0) return false;
  if (u != 0) {
    end++;
    // accept K, KB, KiB, k, kb, kib (and B for bytes)
    if (u != 'b') {
      if (lower(*end) == 'i') end++;
      if (lower(*end) == 'b') end++;
    }
  }
  if (!rest_is_empty(end)) return false;
  unsigned long long bytes;
  if (__builtin_mul_overflow(static_cast<unsigned long long>(n), mult_bytes, &bytes)) return false;
  unsigned long long kib = (bytes + KiB - 1) / KiB;
  if (kib > 0x7fffffffffffffffULL) return false;
  *value = static_cast<long>(kib);
  return true;
}

}  // namespace

bool parse_duration_ms(const char* s, long bare_unit_ms, long* value) noexcept {
  long long n;
  const char* end = parse_integer(s, &n);
  if (end == nullptr) return false;
  end = skip_space(end);
  long long mult = bare_unit_ms;
  if (starts_with_nocase(end, "ms")) {
    mult = 1;
    end += 2;
  } else if (starts_with_nocase(end, "min")) {
    mult = 60000;
    end += 3;
  } else if (lower(*end) == 's') {
    mult = 1000;
    end += 1;
  } else if (lower(*end) == 'm') {
    mult = 60000;
    end += 1;
  } else if (lower(*end) == 'h') {
    mult = 3600000;
    end += 1;
  }
  if (!rest_is_empty(end)) return false;
  long long ms;
  if (__builtin_mul_overflow(n, mult, &ms)) return false;
  *value = static_cast<long>(ms);
  return true;
}

namespace {

const char* source_name(OptionSource s) {
  switch (s) {
    case OptionSource::default_: return "default";
    case OptionSource::config_file: return "config file";
    case OptionSource::environment: return "environment";
    case OptionSource::runtime: return "mi_option_set";
  }
  return "?";
}

// Under AT_SECURE (a set-user-ID or set-group-ID program, or one with added
// capabilities) the MIMALLOC_* variables come from a less privileged user
// and none is honoured, as glibc ignores its malloc tunables there: verbose
// would show that user the program's addresses, show_stats its memory use
// (the sizes it allocates follow its private input), reserve_os_memory make a
// root program reserve what the user says, stats_file write where the user
// says. The file /etc/mimalloc-numa.toml still applies. One warning names the
// variables ignored (the names the user set, never a value).
class IgnoredVariables {
 public:
  // name: the variable's name as set (MIMALLOC_VERBOSE), len bytes
  void add(const char* name, size_t len) {
    count_++;
    if (count_ > NAMES_SHOWN) return;
    if (n_ > 0) put(", ");
    for (size_t i = 0; i < len && n_ + 1 < sizeof(text_); i++) {
      const char c = name[i];
      const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      text_[n_++] = plain ? c : '?';  // a name may hold any byte but '=': never echo control characters
    }
    text_[n_] = 0;
  }

  void report() const {
    if (count_ == 0) return;
    const int more = count_ > NAMES_SHOWN ? count_ - NAMES_SHOWN : 0;
    char tail[48] = "";
    if (more > 0) format(tail, sizeof(tail), " and %d more", more);
    warning_message(
        "environment variable%s %s%s %s ignored: this program runs set-user-ID or set-group-ID (AT_SECURE); "
        "only /etc/mimalloc-numa.toml sets its options",
        count_ > 1 ? "s" : "", text_, tail, count_ > 1 ? "are" : "is");
  }

 private:
  static constexpr int NAMES_SHOWN = 4;
  void put(const char* s) {
    while (*s != 0 && n_ + 1 < sizeof(text_)) text_[n_++] = *s++;
    text_[n_] = 0;
  }
  char text_[256] = "";
  size_t n_ = 0;
  int count_ = 0;
};

// Reads MIMALLOC_* variables of the environment.
void options_read_environment() {
  if (environ == nullptr) return;
  const bool secure = os_is_secure();
  IgnoredVariables ignored;
  for (char** e = environ; *e != nullptr; e++) {
    const char* entry = *e;
    if (!starts_with_nocase(entry, "MIMALLOC_")) continue;
    const char* name = entry + 9;
    const char* eq = strchr(name, '=');
    if (eq == nullptr) continue;
    size_t len = static_cast<size_t>(eq - name);
    // variables that are not options (MIMALLOC_CONFIG: config.cpp, which
    // says itself when it is ignored)
    if (name_equals(name, len, "config") || name_equals(name, len, "disable_redirect") ||
        name_equals(name, len, "disable_override")) {
      continue;
    }
    if (secure) {
      if (*skip_space(eq + 1) != 0) ignored.add(entry, static_cast<size_t>(eq - entry));  // empty: as if unset
      continue;
    }
    const OptionDesc* desc = option_find(name, len);
    if (desc == nullptr) {
      warning_message(
          "environment variable %.*s is not an option of mimalloc-numa; ignored (see mimalloc-numa.toml(5))",
          static_cast<int>(eq - entry), entry);
      continue;
    }
    const char* text = eq + 1;
    if (*skip_space(text) == 0) continue;  // set but empty: treat as unset (like mimalloc)
    if (desc->kind == K::path) {
      const char* expected = nullptr;
      if (!option_set_string(desc->option, text, OptionSource::environment, nullptr, 0, &expected)) {
        warning_message("environment variable %.*s has an invalid value \"%s\": expected %s; ignored",
                        static_cast<int>(eq - entry), entry, text, expected);
      }
      continue;
    }
    long value;
    const char* expected = nullptr;
    if (!option_parse_value(*desc, text, &value, &expected)) {
      warning_message("environment variable %.*s has an invalid value \"%s\": expected %s; using %ld",
                      static_cast<int>(eq - entry), entry, text, expected, option_get(desc->option));
      continue;
    }
    option_set_from(desc->option, value, OptionSource::environment, nullptr, 0);
  }
  ignored.report();
}

}  // namespace

constinit std::array<long, OPTION_COUNT> option_values = default_values();

const OptionDesc& option_desc(mi_option_t option) noexcept {
  int i = static_cast<int>(option);
  if (i < 0 || i >= OPTION_COUNT) i = 0;
  return option_table[i];
}

const char* option_choices_text(const OptionDesc& desc, bool quoted) noexcept {
  const int i = static_cast<int>(desc.option);
  if (i < 0 || i >= OPTION_COUNT) return "a known value";
  return quoted ? choice_texts_quoted[static_cast<size_t>(i)].text : choice_texts[static_cast<size_t>(i)].text;
}

bool option_choice_is_flag(const OptionDesc& desc) noexcept {
  const char* const* c = desc.choices;
  return desc.kind == K::choice && c != nullptr && c[0] != nullptr && strcmp(c[0], "false") == 0 && c[1] != nullptr &&
         strcmp(c[1], "true") == 0;
}

const OptionDesc* option_find(const char* name, size_t len) noexcept {
  for (const OptionDesc& d : option_table) {
    if (name_equals(name, len, d.name) || name_equals(name, len, d.legacy_name)) return &d;
  }
  // mimalloc 2.0 names that map onto renamed options
  struct Alias {
    const char* name;
    mi_option_t option;
  };
  static constexpr Alias aliases[] = {
      {"reset_delay", mi_option_purge_delay},
      {"abandoned_page_decommit", mi_option_abandoned_page_purge},
      {"eager_page_commit", mi_option_eager_commit},
  };
  for (const Alias& a : aliases) {
    if (name_equals(name, len, a.name)) return &option_table[a.option];
  }
  return nullptr;
}

bool option_parse_value(const OptionDesc& desc, const char* text, long* value, const char** expected) noexcept {
  long v = 0;
  bool ok = false;
  switch (desc.kind) {
    case K::flag:
      ok = parse_flag(text, &v);
      *expected = "a boolean (1/0, true/false, on/off, yes/no)";
      break;
    case K::number: {
      long long n;
      const char* end = parse_integer(text, &n);
      ok = (end != nullptr && rest_is_empty(end));
      v = ok ? static_cast<long>(n) : 0;
      // numbers that are really flags in mimalloc's usage also accept words
      if (!ok) ok = parse_flag(text, &v) && desc.max == 1;
      *expected = "an integer";
      break;
    }
    case K::size_kib:
      ok = parse_size_kib(text, &v);
      *expected = "a size (e.g. 64MiB, 1GiB, 512k, or bytes)";
      break;
    case K::duration_ms:
      ok = parse_duration_ms(text, DURATION_BARE_MS, &v);
      *expected = "a duration (e.g. 10ms, 2s, or milliseconds)";
      break;
    case K::choice: {
      const char* s = skip_space(text);
      size_t len = strlen(s);
      while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
      for (long i = 0; desc.choices != nullptr && desc.choices[i] != nullptr; i++) {
        if (name_equals(s, len, desc.choices[i])) {
          v = i;
          ok = true;
        }
      }
      if (!ok) {  // also accept the number
        long long n;
        const char* end = parse_integer(text, &n);
        ok = (end != nullptr && rest_is_empty(end));
        v = ok ? static_cast<long>(n) : 0;
      }
      if (!ok && option_choice_is_flag(desc)) ok = parse_flag(text, &v);  // on/off, yes/no: as the flag it was
      *expected = option_choices_text(desc, false);
      break;
    }
    case K::path:
      // the text itself is kept by option_set_string; here only whether it is set
      ok = option_check_string(desc, text, expected);
      v = (*skip_space(text) != 0) ? 1 : 0;
      break;
  }
  if (!ok) return false;
  if (v < desc.min || v > desc.max) {
    const int i = static_cast<int>(desc.option);
    *expected =
        (i >= 0 && i < OPTION_COUNT) ? range_texts[static_cast<size_t>(i)].text : "a value in the option's range";
    return false;
  }
  *value = v;
  return true;
}

void option_set_from(mi_option_t option, long value, OptionSource source, const char* file, int line,
                     const char* program) noexcept {
  int i = static_cast<int>(option);
  if (i < 0 || i >= OPTION_COUNT) return;
  std::atomic_ref<long>(option_values[static_cast<size_t>(i)]).store(value, std::memory_order_relaxed);
  option_sources[i] = SourceInfo{source, line, file, program};
}

OptionSource option_source(mi_option_t option, const char** file, int* line, const char** program) noexcept {
  int i = static_cast<int>(option);
  if (i < 0 || i >= OPTION_COUNT) i = 0;
  if (file != nullptr) *file = option_sources[i].file;
  if (line != nullptr) *line = option_sources[i].line;
  if (program != nullptr) *program = option_sources[i].program;
  return option_sources[i].source;
}

bool option_check_string(const OptionDesc& desc, const char* text, const char** expected) noexcept {
  *expected =
      "an absolute file name (e.g. \"/var/log/mimalloc-numa/%p.txt\"; patterns: %p pid, %n program name, "
      "%t start time, %% a percent sign), or \"\" for stderr";
  if (desc.kind != K::path) {
    *expected = "a value of the option's type (it is not a string option)";
    return false;
  }
  if (text == nullptr || *text == 0) return true;
  if (text[0] != '/') return false;
  size_t n = 0;
  for (const char* c = text; *c != 0; c++, n++) {
    const unsigned char ch = static_cast<unsigned char>(*c);
    if (ch < 0x20 || ch == 0x7F) return false;
    if (ch == '%') {
      const char k = c[1];
      if (k != 'p' && k != 'n' && k != 't' && k != '%') return false;
      c++;
      n++;
    }
  }
  if (n >= OPTION_STRING_MAX) {
    *expected = "a file name shorter than 1024 bytes";
    return false;
  }
  return true;
}

bool option_set_string(mi_option_t option, const char* text, OptionSource source, const char* file, int line,
                       const char** expected, const char* program) noexcept {
  const int i = static_cast<int>(option);
  if (i < 0 || i >= OPTION_COUNT) {
    *expected = "a known option";
    return false;
  }
  const OptionDesc& d = option_table[i];
  if (text == nullptr) text = "";
  if (!option_check_string(d, text, expected)) return false;
  char* slot = string_values[string_slot(i)];
  string_lock_take();
  size_t n = strlen(text);
  memcpy(slot, text, n + 1);  // n < OPTION_STRING_MAX: checked
  string_lock_give();
  option_set_from(option, n > 0 ? 1 : 0, source, file, line, program);
  return true;
}

size_t option_get_string(mi_option_t option, char* buf, size_t size) noexcept {
  const int i = static_cast<int>(option);
  if (buf != nullptr && size > 0) buf[0] = 0;
  if (i < 0 || i >= OPTION_COUNT || option_table[i].kind != K::path) return 0;
  const char* slot = string_values[string_slot(i)];
  string_lock_take();
  const size_t n = strlen(slot);
  if (buf != nullptr && size > 0) {
    const size_t copy = (n < size) ? n : size - 1;
    memcpy(buf, slot, copy);
    buf[copy] = 0;
  }
  string_lock_give();
  return n;
}

size_t option_get_size(mi_option_t option) noexcept {
  long v = option_get(option);
  if (v <= 0) return 0;
  if (option_desc(option).kind == K::size_kib) return static_cast<size_t>(v) * KiB;
  return static_cast<size_t>(v);
}

long option_get_clamp(mi_option_t option, long min, long max) noexcept {
  long v = option_get(option);
  return (v < min) ? min : (v > max ? max : v);
}

void options_init() noexcept {
  if (initialized.exchange(true)) return;
  // default < config file ([options] < [program.NAME]) < environment < mi_option_set
  config_load_startup();
  options_read_environment();
#if MI_SECURE
  // The hardened build cannot be softened by a setting: the option reads true.
  if (!option_is_enabled(mi_option_secure)) {
    const char* file = nullptr;
    const char* program = nullptr;
    int line = 0;
    const OptionSource source = option_source(mi_option_secure, &file, &line, &program);
    if (source != OptionSource::default_) {
      warning_message("option 'secure': this library is the hardened build (-Dsecure=true); it stays on");
    }
    option_set_from(mi_option_secure, 1, source, file, line, program);
  }
#endif
}

void options_init_defaults() noexcept { initialized.store(true); }

bool options_initialized() noexcept { return initialized.load(std::memory_order_relaxed); }

std::atomic<bool> startup_done{false};

void options_mark_startup_done() noexcept { startup_done.store(true, std::memory_order_release); }
bool options_startup_done() noexcept { return startup_done.load(std::memory_order_acquire); }

void options_print_all() noexcept {
  config_print();
  output("mimalloc-numa: options (value, source):\n");
  for (const OptionDesc& d : option_table) {
    long v = option_get(d.option);
    const char* file = nullptr;
    const char* program = nullptr;
    int line = 0;
    OptionSource src = option_source(d.option, &file, &line, &program);
    char value_text[256];
    switch (d.kind) {
      case K::flag: format(value_text, sizeof(value_text), "%s", v != 0 ? "true" : "false"); break;
      case K::size_kib: format_bytes(value_text, sizeof(value_text), static_cast<int64_t>(v) * 1024); break;
      case K::duration_ms: format(value_text, sizeof(value_text), "%ld ms", v); break;
      case K::choice: format(value_text, sizeof(value_text), "%s", (v >= 0 && v <= d.max) ? d.choices[v] : "?"); break;
      case K::path: {
        // the file name itself may be long: shown quoted, cut to the line
        char path[OPTION_STRING_MAX];
        option_get_string(d.option, path, sizeof(path));
        if (path[0] == 0) format(value_text, sizeof(value_text), "(none)");
        else format(value_text, sizeof(value_text), "\"%.200s%s\"", path, strlen(path) > 200 ? "..." : "");
        break;
      }
      default: format(value_text, sizeof(value_text), "%ld", v); break;
    }
    if (src == OptionSource::config_file && file != nullptr && program != nullptr) {
      char table[PROGRAM_TABLE_TEXT_MAX];
      config_program_table_text(table, sizeof(table), program);
      output("mimalloc-numa:   %-28s %-12s (%s:%d %s)\n", d.name, value_text, file, line, table);
    } else if (src == OptionSource::config_file && file != nullptr) {
      output("mimalloc-numa:   %-28s %-12s (%s:%d)\n", d.name, value_text, file, line);
    } else {
      output("mimalloc-numa:   %-28s %-12s (%s)\n", d.name, value_text, source_name(src));
    }
  }
}

}  // namespace mi
