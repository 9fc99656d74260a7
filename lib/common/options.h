// options.h: the option table and reading options.
//
// Owns: the one table of every option (name, kind, default, range, whether it
// changes at run time, description), the current values and where each came
// from. Everything else (environment parsing, the mi_option_* API, the printed
// option list) is derived from the table in options.cpp.
// Precedence: built-in default < config file [options] < config file
// [program.NAME] (config.h) < environment (MIMALLOC_<NAME>) < mi_option_set.
// Thread-safe: values are read and written atomically (relaxed); options_init
// runs once, in process init, before other threads exist.
#pragma once

#include <array>
#include <atomic>

#include "../../include/mimalloc.h"
#include "defines.h"

namespace mi {

enum class OptionKind : unsigned char {
  flag,         // boolean: 1/0, true/false, on/off, yes/no
  number,       // integer
  size_kib,     // a size; stored in KiB (as mimalloc does); accepts 64MiB, 1GiB, 512k, bytes
  duration_ms,  // a duration in ms; accepts 10ms, 2s, 1min, bare = ms
  choice,       // one of named values (e.g. numa_bind = none | preferred | strict), or their numbers
  path,         // a string: an absolute file name pattern (stats_file); its long value is 1 when set
};

enum class OptionSource : unsigned char { default_, config_file, environment, runtime };

struct OptionDesc {
  const char* name;  // lower case; MIMALLOC_<NAME> in the environment
  mi_option_t option;
  OptionKind kind;
  long default_value;
  long min;
  long max;
  bool runtime;                // a change takes effect at run time (otherwise: at start-up)
  const char* legacy_name;     // an older name still accepted, or nullptr
  const char* const* choices;  // for OptionKind::choice: names of 0, 1, 2, ...; null-terminated
  const char* description;
};

constexpr int OPTION_COUNT = static_cast<int>(_mi_option_last);

// The table row of an option.
const OptionDesc& option_desc(mi_option_t option) noexcept;
// Finds an option by name (case-insensitive; accepts legacy names). nullptr if unknown.
const OptionDesc* option_find(const char* name, size_t len) noexcept;

// A choice option that was a flag (show_stats: false, true, json): it also
// takes every word of a flag, and a TOML boolean.
bool option_choice_is_flag(const OptionDesc& desc) noexcept;
// "one of none, preferred, strict" (quoted: of "none", ... as TOML writes them).
const char* option_choices_text(const OptionDesc& desc, bool quoted) noexcept;

// Current values, indexed by mi_option_t; defaults are in place before
// options_init (constant-initialised), so reads are always valid.
extern MI_HIDDEN std::array<long, OPTION_COUNT> option_values;

inline long option_get(mi_option_t option) noexcept {
  return std::atomic_ref<long>(option_values[static_cast<size_t>(option)]).load(std::memory_order_relaxed);
}
inline bool option_is_enabled(mi_option_t option) noexcept { return option_get(option) != 0; }
// The hardening that leaves the fast paths as they are (guard pages, random
// free-list order, free lists walked before reuse, abort on detected
// misuse): the secure build always, any build with the secure option.
inline bool secure_enabled() noexcept { return MI_SECURE != 0 || option_is_enabled(mi_option_secure); }
// Sizes stored in KiB, returned in bytes.
size_t option_get_size(mi_option_t option) noexcept;
long option_get_clamp(mi_option_t option, long min, long max) noexcept;

// Reads the configuration file, then the environment. Called once from
// process init (later calls do nothing).
void options_init() noexcept;
// Instead of options_init, before it: the options keep their built-in
// defaults; neither the file nor the environment is read, now or later, and
// nothing is printed. For a program that embeds the allocator and reads the
// configuration itself (mi-reserve: tools/mi-reserve/quiet_allocator.cpp).
// Does nothing once options_init has run.
void options_init_defaults() noexcept;
bool options_initialized() noexcept;

// The one reader of durations (options, the configuration file, mi-reserve):
// an integer with a unit, ms, s, m (min) or h, any case, a space
// allowed before it; a number without a unit counts `bare_unit_ms`
// milliseconds: DURATION_BARE_MS for the options (milliseconds, as in
// mimalloc's environment variables: MIMALLOC_PURGE_DELAY=10 is 10 ms),
// DURATION_BARE_S for timeouts (seconds, as systemd and timeout(1) read
// them: [reserve] timeout, mi-reserve --timeout). False on anything else or
// on overflow.
constexpr long DURATION_BARE_MS = 1;
constexpr long DURATION_BARE_S = 1000;
bool parse_duration_ms(const char* text, long bare_unit_ms, long* ms) noexcept;

// Sets an option from a textual value (environment or config file). On a bad
// value, returns false and points *expected at a description of what was
// expected; the option keeps its value.
bool option_parse_value(const OptionDesc& desc, const char* text, long* value, const char** expected) noexcept;
// `program`: for a value from a [program.NAME] table of the file, NAME (in
// storage that outlives the option; lib/common/program); else nullptr.
void option_set_from(mi_option_t option, long value, OptionSource source, const char* file, int line,
                     const char* program = nullptr) noexcept;
OptionSource option_source(mi_option_t option, const char** file, int* line, const char** program = nullptr) noexcept;

// String options (OptionKind::path). The text is kept in a fixed slot of
// OPTION_STRING_MAX bytes; the option's long value says whether it is set.
constexpr size_t OPTION_STRING_MAX = 1024;
// Checks a value for a path option: "" (unset), or an absolute file name of
// printable characters whose only % patterns are %p, %n, %t and %%. On a bad
// value returns false and points *expected at what was expected.
bool option_check_string(const OptionDesc& desc, const char* text, const char** expected) noexcept;
// Checks and sets; false (*expected set) leaves the option as it was.
bool option_set_string(mi_option_t option, const char* text, OptionSource source, const char* file, int line,
                       const char** expected, const char* program = nullptr) noexcept;
// Copies the value into buf (cut to size-1 bytes); returns its full length.
size_t option_get_string(mi_option_t option, char* buf, size_t size) noexcept;

// Prints every option's effective value and where it came from (verbose).
void options_print_all() noexcept;

// Start-up is over (process init, after the start-up reservations): from now
// on mi_option_set of an option that is read at start-up only says so
// (verbose), since the new value changes nothing already set up.
void options_mark_startup_done() noexcept;
bool options_startup_done() noexcept;

}  // namespace mi
