// config.h: the TOML configuration file.
//
// Owns: reading the config file at start-up (MIMALLOC_CONFIG, else
// /etc/mimalloc-numa.toml if it exists), checking a file for operators
// (mi_config_check, behind `mi-reserve --check-config`), the per-node
// settings of its [node.N] tables, and which [program.NAME] tables apply to
// this program.
//
// The lexer is config_toml.h; this file says what the tables and keys mean.
// The file is TOML, of which this reads the subset a configuration needs:
// comments, blank lines, [table] headers (also dotted, [node.0]), key = value
// with bare or quoted (also dotted) keys, and values that are booleans,
// integers (decimal, 0x, 0o, 0b, with _ separators) or single-line strings
// ("basic" with escapes, or 'literal'). Sizes and durations are strings with
// units ("64MiB", "10ms") or plain integers (bytes, milliseconds; seconds for
// [reserve] timeout, as mi-reserve --timeout reads them). What it
// does not read (floats, dates, arrays, inline tables, multi-line strings,
// [[arrays of tables]]) is reported, never guessed; such a value that spans
// lines (a multi-line string, an array over several lines) is skipped to its
// end, so that its text is never read as keys. Whatever it accepts means what
// a full TOML parser reads (tests/config/tomlpp_compare.cpp compares with
// toml++).
//
// Tables:
//   [options]  every option of mi_option_t by its lower-case name
//   [node.N]   per-node settings: reserve_huge_os_pages, arena_reserve
//   [reserve]  mi-reserve's boot-time reservation (checked here, used there):
//              pages, page_size, nodes, per_node, timeout, on_shortfall
//   [program.NAME]         every key of [options], for one program only
//   [program.NAME.node.N]  every key of [node.N], for one program only
// NAME is matched against argv[0]'s base name and the executable's base name
// (lib/common/program.h): [program.postgres], [program.mariadbd] (also
// [program.mysqld] when started through that link); a name with a dot is
// quoted, [program."python3.11"]. Every table that names the program applies,
// in file order (a later table's key wins); the others are checked, not
// applied.
//
// Bad input never stops anything: each problem is one warning naming the
// file, the line, the key and what was expected; the rest of the file applies.
// Precedence: default < [options] (and [node.N]) < [program.NAME] (and
// [program.NAME.node.N]), wherever each sits in the file < environment <
// mi_option_set.
//
// Only a regular file is read, without waiting (a FIFO or a device is one
// problem, never opened or read), and at most CONFIG_FILE_MAX bytes of it.
// No allocation: the file is read in chunks into a fixed buffer, a line at a
// time (lines up to CONFIG_LINE_MAX bytes). Thread-safety: the start-up read
// runs once, before other threads; config_check is reentrant.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../../include/mimalloc.h"
#include "defines.h"

namespace mi {

constexpr size_t CONFIG_LINE_MAX = 4096;
// The most of a configuration file that is read: 1 MiB, 170 times the full
// sample (config/mimalloc-numa.toml, every option with its comment: 6 KB),
// read and parsed in about 3 ms. Every program reads the file at start-up,
// so a file named by mistake (a log, a data file, a 1 GB sparse file that
// took 3.4 s) must not cost more than that; the line the limit falls in and
// everything after it are ignored, with a warning.
constexpr size_t CONFIG_FILE_MAX = size_t{1} << 20;
constexpr int CONFIG_MAX_NODES = NUMA_MAX_NODES;  // [node.0] .. [node.63]
// Distinct [program.NAME] tables in one file (each costs 248 bytes of the
// reader's stack, 8.8 KB in all); a table beyond them is reported and ignored.
constexpr int CONFIG_MAX_PROGRAMS = 32;
// Room for "[program.NAME]" with NAME quoted and escaped (config_program_table_text).
constexpr size_t PROGRAM_TABLE_TEXT_MAX = 1100;

// Reads the start-up config file and applies it (the program's names are
// read then if the file has a [program.NAME] table: lib/common/program).
// Called from options_init before the environment is read.
void config_load_startup() noexcept;

// Parses `len` bytes named `name` (for messages). apply: set the options and
// node settings; otherwise only check. Each problem goes to `out` (the
// registered output when null) as one line "name:line: ..."; with apply, as
// warnings. Returns the number of problems. With apply, `name` must outlive
// the settings: each option remembers the file it came from by this pointer.
int config_parse(const char* name, const char* data, size_t len, bool apply, mi_output_fun* out, void* arg) noexcept;
// The same over a file; an unreadable file is one problem.
int config_parse_file(const char* path, bool apply, mi_output_fun* out, void* arg) noexcept;

// The file read at start-up ("" if none).
const char* config_path() noexcept;

// The keys of [node.N] and [reserve] (for the generated sample and docs).
struct ConfigKey {
  const char* name;
  const char* example;  // the value shown in the sample
  const char* description;
};
const ConfigKey* config_node_keys(size_t* count) noexcept;
const ConfigKey* config_reserve_keys(size_t* count) noexcept;

// [node.N] settings: -1 / 0 when the file does not set them.
long config_node_huge_pages(int node) noexcept;
size_t config_node_arena_reserve(int node) noexcept;  // bytes
bool config_any_node_huge_pages() noexcept;
// Forgets the [node.N] settings applied so far (tests, between two files;
// never called by the library).
void config_reset_nodes() noexcept;
// Where a [node.N] setting came from: the NAME of the [program.NAME.node.N]
// table that set it, or nullptr ([node.N], or not set).
const char* config_node_huge_pages_program(int node) noexcept;
const char* config_node_arena_reserve_program(int node) noexcept;

// [reserve] on_shortfall: what mi-reserve does when the kernel gives fewer
// pages than asked. keep: hold what it got; release: give it all back;
// fail: give it all back and fail (mi-reserve(8) has the exit statuses).
enum ConfigShortfall : long { shortfall_unset = -1, shortfall_keep = 0, shortfall_release = 1, shortfall_fail = 2 };
// "keep", "release", "fail" -> the value; false for anything else (the
// config reader and mi-reserve's --on-shortfall share this list).
bool config_shortfall_parse(const char* text, ConfigShortfall* value) noexcept;
const char* config_shortfall_name(ConfigShortfall value) noexcept;  // "keep", ...; "" for unset

// [reserve] page_size and mi-reserve's --page-size (one rule for both): a
// number with a unit, k, M or G, alone or with B or iB, any case, a space
// allowed before it ("1G", "2MiB", "2048kB", "1 GiB"); any power of two from
// 4 KiB to 16 GiB (the kernel names its pools hugepages-<KiB>kB; whether this
// machine has that pool is mi-reserve's to check). A number without a unit
// is refused: bytes or KiB? Returns KiB.
bool config_page_size_parse(const char* text, long* size_kib) noexcept;
// [reserve] timeout and mi-reserve's --timeout (one rule for both): a
// duration ("30s", "500ms", "2min", "1h"), a number without a unit being
// seconds (parse_duration_ms, DURATION_BARE_S), from 0 to
// CONFIG_TIMEOUT_MAX_MS. Returns milliseconds.
constexpr long CONFIG_TIMEOUT_MAX_MS = 1L << 40;
bool config_timeout_parse(const char* text, long* ms) noexcept;

// What mi-reserve reads from a file: [reserve] and [node.N]
// reserve_huge_os_pages (the same reader as the library's, so the tool and
// the allocator never disagree on a file). Fields not in the file keep -1 / "".
struct ConfigReserve {
  long pages;                         // [reserve] pages
  long per_node;                      // [reserve] per_node
  long page_size_kib;                 // [reserve] page_size in KiB (config_page_size_parse)
  long timeout_ms;                    // [reserve] timeout
  ConfigShortfall on_shortfall;       // [reserve] on_shortfall
  char nodes[256];                    // [reserve] nodes: "all" or a list "0,2-3"
  long node_pages[CONFIG_MAX_NODES];  // [node.N] reserve_huge_os_pages
  long options_huge_pages;            // [options] reserve_huge_os_pages
  long options_huge_pages_at;         // [options] reserve_huge_os_pages_at
  long options_use_numa_nodes;        // [options] use_numa_nodes (0: all nodes; -1: not set)
  // Of the problems, those in mi-reserve's own table: any line of [reserve]
  // (a bad value, an unknown key, a syntax error, the table twice), and a
  // file that cannot be read. The others are in what the allocator reads, and
  // mi-reserve reads those lines as the allocator does (skipped). Counted
  // before the problem goes to `out`, so `out` can tell the two kinds apart.
  int reserve_problems;
};
// Reads `path` without applying anything; problems go to `out` as in
// config_parse. Returns the number of problems (reserve_problems of them in
// [reserve]).
int config_read_reserve(const char* path, ConfigReserve* reserve, mi_output_fun* out, void* arg) noexcept;

// Prints the file read at start-up, the program's names and the
// [program.NAME] tables that apply, and the [node.N] settings (verbose).
void config_print() noexcept;

// "[program.NAME]" as TOML writes the table: NAME bare when it can be,
// else quoted with escapes ([program."python3.11"]). Returns the length.
size_t config_program_table_text(char* buf, size_t size, const char* name) noexcept;

// The [program.NAME] tables of the last file applied that name this program,
// in file order: NAME, and the line where the table starts. Returns the count.
int config_applied_program(int index, const char** name, int* line) noexcept;

}  // namespace mi
