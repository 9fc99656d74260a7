// config.cpp: see config.h. A line-oriented reader of a TOML subset that
// never allocates and never gives up on a file: each bad line is reported and
// skipped.
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdarg>

#include "config_toml.h"
#include "format.h"
#include "messages.h"
#include "options.h"
#include "program.h"
#include "sys.h"

namespace mi {

namespace {

using namespace toml;  // the lexer (config_toml.h); what follows is what the keys mean

// ---------------------------------------------------------------------------
// Per-node settings ([node.N]) and mi-reserve's keys ([reserve])
// ---------------------------------------------------------------------------
constinit long node_huge_pages[CONFIG_MAX_NODES]{};  // valid where node_huge_set
constinit bool node_huge_set[CONFIG_MAX_NODES]{};
constinit long node_reserve_kib[CONFIG_MAX_NODES]{};          // 0: not set
constinit const char* node_huge_program[CONFIG_MAX_NODES]{};  // set by [program.NAME.node.N]: NAME
constinit const char* node_reserve_program[CONFIG_MAX_NODES]{};
constinit char startup_path[4096]{};

// The [program.NAME] tables of the last file applied that name this program,
// in file order: NAME (lib/common/program's storage) and the line that opened it.
struct AppliedProgram {
  const char* name;
  int line;
};
constinit AppliedProgram applied_programs[CONFIG_MAX_PROGRAMS]{};
constinit int applied_program_count = 0;

enum class NodeKey { reserve_huge_os_pages, arena_reserve, count };
constexpr ConfigKey node_keys[] = {
    {"reserve_huge_os_pages", "0",
     "1 GiB pages to reserve on this node at start-up (the [options] count is spread over the other nodes)"},
    {"arena_reserve", "\"1GiB\"", "address space of each new arena on this node (instead of [options] arena_reserve)"},
};
static_assert(sizeof(node_keys) / sizeof(node_keys[0]) == static_cast<size_t>(NodeKey::count), "one entry a key");

enum class ReserveKey { pages, page_size, nodes, per_node, timeout, on_shortfall, count };
constexpr ConfigKey reserve_keys[] = {
    {"pages", "0", "mi-reserve: huge pages to reserve in all, interleaved over the nodes"},
    {"page_size", "\"1G\"", "mi-reserve: \"1G\" or \"2M\" (or another page size of the kernel's, like \"2048kB\")"},
    {"nodes", "\"all\"", "mi-reserve: the nodes to reserve on (\"all\" or a list such as \"0,2-3\")"},
    {"per_node", "0", "mi-reserve: pages per node (instead of pages)"},
    {"timeout", "\"30s\"",
     "mi-reserve: how long at most to keep compacting memory and retrying (it stops sooner once that gains nothing); "
     "a number without a unit is seconds"},
    {"on_shortfall", "\"keep\"",
     "mi-reserve: when the kernel gives fewer pages than asked: \"keep\" what it gave, \"release\" it all, or \"fail\" "
     "(release it all; the unit fails)"},
};
static_assert(sizeof(reserve_keys) / sizeof(reserve_keys[0]) == static_cast<size_t>(ReserveKey::count),
              "one entry a key");
constexpr const char* shortfall_names[] = {"keep", "release", "fail"};

// What TOML allows once, of one scope: the file's own [options] and [node.N]
// tables, or the [program.NAME] and [program.NAME.node.N] tables of one NAME.
// "table": defined by a [header]; "dotted": created by a dotted key
// ("options.verbose = 1" at the root). TOML forbids a [header] for a table
// that exists already in either way, and dotted keys that add to a table
// defined by a [header]; and each key once.
struct ScopeSeen {
  uint64_t options[2];                         // options set in [options] / [program.NAME]
  uint8_t node_keys[CONFIG_MAX_NODES];         // keys set in [node.N] / [program.NAME.node.N]
  uint64_t node_table, node_dotted;            // by node
  bool table, dotted;                          // [options] / [program.NAME]
  bool node_parent_table, node_parent_dotted;  // [node] / [program.NAME.node]
};

// A [program.NAME] table: its name as the file writes it, what was seen of
// it, and whether it names this program (the name of the program it
// matched, in lib/common/program's storage, or nullptr).
struct ProgramScope {
  char name[KEY_LEN_MAX];
  const char* matched;
  bool recorded;  // listed in applied_programs (apply pass)
  ScopeSeen seen;
};

// The tables this reader knows.
enum class TableKind {
  root,
  options,
  reserve,
  node_parent,
  node,
  program_parent,
  program,
  program_node_parent,
  program_node,
  unknown
};

struct TableRef {
  TableKind kind;
  int node;         // node, program_node
  int program;      // program*: the index in Parser::programs
  const char* why;  // unknown: why not, or nullptr for a table of another name
};

struct Parser {
  const char* name;
  bool apply;
  ConfigReserve* reserve;  // when reading for mi-reserve: where its values go
  mi_output_fun* out;
  void* arg;
  int line;
  int problems;
  KeyPath table;     // the current [table]
  bool table_known;  // a table whose keys we know (else they are skipped silently)
  // each key once and each table once (TOML), by scope
  ScopeSeen global;
  uint8_t seen_reserve;
  bool reserve_table, reserve_dotted, program_parent_table, program_parent_dotted;
  ProgramScope programs[CONFIG_MAX_PROGRAMS];
  int program_count;
  // What a [program.NAME] table of this program set (apply pass): the same
  // option or node key in [options] or [node.N] does not apply, before or
  // after it in the file (default < [options] < [program.NAME]).
  uint64_t program_options[2];
  uint8_t program_node_keys[CONFIG_MAX_NODES];
  // the problem being reported is in [reserve] (ConfigReserve::reserve_problems)
  bool in_reserve;
  // A value this reader does not accept that spans lines (a multi-line
  // string, an array or inline table over several lines, or a multi-line
  // string inside one of those) is skipped to its end, so that its text is
  // never read as keys or table headers. Reported where it starts.
  SpanSkip skip;
  bool skipping;
  int skip_from;  // the line where it started
};

void problem(Parser& p, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void problem(Parser& p, const char* fmt, ...) {
  p.problems++;
  if (p.reserve != nullptr && p.in_reserve) p.reserve->reserve_problems++;
  char msg[MESSAGE_MAX];
  va_list args;
  va_start(args, fmt);
  format_v(msg, sizeof(msg), fmt, args);
  va_end(args);
  char raw[MESSAGE_MAX + 64];
  format(raw, sizeof(raw), "%s:%d: %s", p.name, p.line, msg);
  // one line: escaped, and cut so that the newline always fits (a long name
  // used to push it out, and the next message ran on in the same line)
  char line[MESSAGE_MAX + 64];
  size_t n = escape_controls(line, sizeof(line) - 1, raw);
  if (p.apply) {
    warning_message("%s", line);
  } else {
    line[n++] = '\n';
    line[n] = 0;
    output_to(p.out, p.arg, line);
  }
}

bool parse_node_index(const char* s, int* node) {
  if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != 0)) return false;
  int n = 0;
  for (; *s != 0; s++) {
    if (*s < '0' || *s > '9') return false;
    n = n * 10 + (*s - '0');
    if (n >= CONFIG_MAX_NODES) return false;
  }
  *node = n;
  return true;
}

// ---------------------------------------------------------------------------
// Meaning of keys
// ---------------------------------------------------------------------------
// Converts a value for an option of `kind` into the stored value (KiB for
// sizes, ms for durations). false + *expected when it does not fit.
bool option_value_of(const OptionDesc& d, const Value& v, long* out, const char** expected) {
  char text[64];
  switch (v.type) {
    case VType::string: return option_parse_value(d, v.s, out, expected);
    case VType::boolean:
      if (d.kind == OptionKind::flag || (d.kind == OptionKind::number && d.min == 0 && d.max == 1) ||
          option_choice_is_flag(d)) {
        *out = v.b ? 1 : 0;
        return true;
      }
      break;
    case VType::integer:
      // bytes for sizes, milliseconds for durations, the number otherwise
      // (option_parse_value reads a bare size as bytes and rounds it up to KiB)
      if (d.kind == OptionKind::size_kib && v.i < 0) break;
      format(text, sizeof(text), "%lld", v.i);
      return option_parse_value(d, text, out, expected);
  }
  switch (d.kind) {
    case OptionKind::flag: *expected = "a boolean (true/false, or \"on\"/\"off\", 1/0)"; break;
    case OptionKind::number: *expected = "an integer"; break;
    case OptionKind::size_kib:
      *expected = "a size: a string with a unit (\"64MiB\", \"1GiB\", \"512k\") or bytes";
      break;
    case OptionKind::duration_ms:
      *expected = "a duration: a string with a unit (\"10ms\", \"2s\") or milliseconds";
      break;
    case OptionKind::choice: *expected = option_choices_text(d, true); break;
    case OptionKind::path: *expected = "a quoted file name"; break;
  }
  return false;
}

// Where a key goes: the file's own tables ([options], [node.N]) or those of
// one program ([program.NAME], [program.NAME.node.N]).
struct Scope {
  ScopeSeen* seen;
  ProgramScope* program;  // nullptr: the file's own
};

bool bit_test(const uint64_t* bits, int i) { return (bits[i / 64] & (uint64_t{1} << (i % 64))) != 0; }
void bit_set(uint64_t* bits, int i) { bits[i / 64] |= uint64_t{1} << (i % 64); }

// "[options]" or "[program.NAME]"; "[node.N]" or "[program.NAME.node.N]"
// (program: NAME, or nullptr for the file's own tables).
const char* options_table_text(const char* program, char* buf, size_t size) {
  if (program == nullptr) return "[options]";
  config_program_table_text(buf, size, program);
  return buf;
}
const char* node_table_text(const char* program, int node, char* buf, size_t size) {
  if (program == nullptr) {
    format(buf, size, "[node.%d]", node);
  } else {
    size_t n = config_program_table_text(buf, size, program);
    if (n > 0) format(buf + n - 1, size - (n - 1), ".node.%d]", node);  // over the closing bracket
  }
  return buf;
}
const char* name_of(const Scope& sc) { return sc.program != nullptr ? sc.program->name : nullptr; }

// A [program.NAME] table that names this program, first used in this apply
// pass: listed for the verbose output (config_print).
void record_program(Parser& p, ProgramScope& prog) {
  if (!p.apply || prog.matched == nullptr || prog.recorded) return;
  prog.recorded = true;
  if (applied_program_count < CONFIG_MAX_PROGRAMS)
    applied_programs[applied_program_count++] = AppliedProgram{prog.matched, p.line};
}

void key_option(Parser& p, Scope sc, const char* key, const Value& v) {
  char table[PROGRAM_TABLE_TEXT_MAX];
  const OptionDesc* d = option_find(key, strlen(key));
  if (d == nullptr) {
    problem(p, "unknown option '%s' in %s; ignored (MIMALLOC_VERBOSE=1 lists the options)", key,
            options_table_text(name_of(sc), table, sizeof(table)));
    return;
  }
  const int idx = static_cast<int>(d->option);
  if (bit_test(sc.seen->options, idx)) {
    if (sc.program == nullptr) {
      problem(p, "option '%s' is set twice (TOML does not allow that); the first value stays", key);
    } else {
      problem(p, "option '%s' is set twice in %s (TOML does not allow that); the first value stays", key,
              options_table_text(name_of(sc), table, sizeof(table)));
    }
    return;
  }
  bit_set(sc.seen->options, idx);
  long value = 0;
  const char* expected = nullptr;
  char got[96];
  // [options] applies where no [program.NAME] of this program set the option;
  // a [program.NAME] of this program always (a later one over an earlier one)
  const bool applies = (sc.program == nullptr) ? !bit_test(p.program_options, idx) : sc.program->matched != nullptr;
  const char* program = (sc.program != nullptr) ? sc.program->matched : nullptr;
  bool valid;
  if (d->kind == OptionKind::path) {  // a string option (stats_file): its text is the value
    valid = v.type == VType::string &&
            ((p.apply && applies)
                 ? option_set_string(d->option, v.s, OptionSource::config_file, p.name, p.line, &expected, program)
                 : option_check_string(*d, v.s, &expected));
    if (v.type != VType::string) option_check_string(*d, "?", &expected);
  } else {
    valid = option_value_of(*d, v, &value, &expected);
    if (valid && p.apply && applies)
      option_set_from(d->option, value, OptionSource::config_file, p.name, p.line, program);
  }
  if (!valid) {
    if (sc.program == nullptr) {
      problem(p, "option '%s': expected %s, not %s; ignored", key, expected, describe(v, got, sizeof(got)));
    } else {
      problem(p, "%s option '%s': expected %s, not %s; ignored", options_table_text(name_of(sc), table, sizeof(table)),
              key, expected, describe(v, got, sizeof(got)));
    }
    return;
  }
  if (p.apply && applies && sc.program != nullptr) {
    bit_set(p.program_options, idx);
    record_program(p, *sc.program);
  }
  // mi-reserve plans the boot pool from the file's own values ([program.NAME] is one server's share)
  if (sc.program == nullptr && p.reserve != nullptr) {
    if (d->option == mi_option_reserve_huge_os_pages) p.reserve->options_huge_pages = value;
    if (d->option == mi_option_reserve_huge_os_pages_at) p.reserve->options_huge_pages_at = value;
    if (d->option == mi_option_use_numa_nodes) p.reserve->options_use_numa_nodes = value;
  }
}

// The index of `key` in keys[0 .. count), or -1.
int key_index(const ConfigKey* keys, int count, const char* key) {
  for (int i = 0; i < count; i++) {
    if (strcmp(key, keys[i].name) == 0) return i;
  }
  return -1;
}

// "pages, page_size, ...": the names of keys[0 .. count), for messages.
const char* key_names_text(const ConfigKey* keys, int count, char* buf, size_t size) {
  size_t n = 0;
  buf[0] = 0;
  for (int i = 0; i < count && n < size; i++) n += format(buf + n, size - n, "%s%s", i > 0 ? ", " : "", keys[i].name);
  return buf;
}

void key_node(Parser& p, Scope sc, int node, const char* key, const Value& v) {
  char table[PROGRAM_TABLE_TEXT_MAX + 32];
  char known[128];
  const int k = key_index(node_keys, static_cast<int>(NodeKey::count), key);
  if (k < 0) {
    problem(p, "unknown key '%s' in %s (known: %s); ignored", key,
            node_table_text(name_of(sc), node, table, sizeof(table)),
            key_names_text(node_keys, static_cast<int>(NodeKey::count), known, sizeof(known)));
    return;
  }
  if ((sc.seen->node_keys[node] & (1u << k)) != 0) {
    problem(p, "key '%s' of %s is set twice; the first value stays", key,
            node_table_text(name_of(sc), node, table, sizeof(table)));
    return;
  }
  sc.seen->node_keys[node] |= static_cast<uint8_t>(1u << k);
  char got[96];
  const char* expected = nullptr;
  long value = 0;
  bool ok;
  if (k == static_cast<int>(NodeKey::reserve_huge_os_pages)) {
    ok = option_value_of(option_desc(mi_option_reserve_huge_os_pages), v, &value, &expected);
  } else {
    ok = option_value_of(option_desc(mi_option_arena_reserve), v, &value, &expected);
  }
  if (!ok) {
    problem(p, "%s '%s': expected %s, not %s; ignored", node_table_text(name_of(sc), node, table, sizeof(table)), key,
            expected, describe(v, got, sizeof(got)));
    return;
  }
  if (sc.program == nullptr && p.reserve != nullptr && k == static_cast<int>(NodeKey::reserve_huge_os_pages)) {
    p.reserve->node_pages[node] = value;
  }
  const uint8_t bit = static_cast<uint8_t>(1u << k);
  const bool applies =
      (sc.program == nullptr) ? (p.program_node_keys[node] & bit) == 0 : sc.program->matched != nullptr;
  if (!p.apply || !applies) return;
  const char* from = sc.program != nullptr ? sc.program->matched : nullptr;
  if (k == static_cast<int>(NodeKey::reserve_huge_os_pages)) {
    node_huge_pages[node] = value;
    node_huge_set[node] = true;
    node_huge_program[node] = from;
  } else {
    node_reserve_kib[node] = value;
    node_reserve_program[node] = from;
  }
  if (sc.program != nullptr) {
    p.program_node_keys[node] |= bit;
    record_program(p, *sc.program);
  }
}

bool is_node_list(const char* s) {
  if (strcmp(s, "all") == 0) return true;
  bool any = false;
  while (*s != 0) {
    if (*s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9') s++;
    any = true;
    if (*s == '-') {
      s++;
      if (*s < '0' || *s > '9') return false;
      while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == ',') {
      s++;
      if (*s == 0) return false;
    } else if (*s != 0) {
      return false;
    }
  }
  return any;
}

void key_reserve(Parser& p, const char* key, const Value& v) {
  char known[128];
  const int k = key_index(reserve_keys, static_cast<int>(ReserveKey::count), key);
  if (k < 0) {
    problem(p, "unknown key '%s' in [reserve] (known: %s); ignored", key,
            key_names_text(reserve_keys, static_cast<int>(ReserveKey::count), known, sizeof(known)));
    return;
  }
  if ((p.seen_reserve & (1u << k)) != 0) {
    problem(p, "key '%s' of [reserve] is set twice; the first value stays", key);
    return;
  }
  p.seen_reserve |= static_cast<uint8_t>(1u << k);
  char got[96];
  ConfigReserve* r = p.reserve;
  switch (static_cast<ReserveKey>(k)) {
    case ReserveKey::pages:
    case ReserveKey::per_node:
      if (v.type != VType::integer || v.i < 0 || v.i > 1048576) {
        problem(p, "[reserve] '%s': expected a number of pages from 0 to 1048576, not %s", key,
                describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        (static_cast<ReserveKey>(k) == ReserveKey::pages ? r->pages : r->per_node) = static_cast<long>(v.i);
      }
      break;
    case ReserveKey::page_size: {
      long kib = 0;
      if (v.type != VType::string || !config_page_size_parse(v.s, &kib)) {
        problem(p,
                "[reserve] 'page_size': expected \"1G\" or \"2M\" (or another page size with a unit, like "
                "\"2048kB\"), not %s",
                describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        r->page_size_kib = kib;
      }
      break;
    }
    case ReserveKey::nodes:
      if (v.type != VType::string || !is_node_list(v.s) || v.len >= sizeof(r->nodes)) {
        problem(p, "[reserve] 'nodes': expected \"all\" or a node list like \"0,2-3\", not %s",
                describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        memcpy(r->nodes, v.s, v.len + 1);
      }
      break;
    case ReserveKey::timeout: {
      long ms = 0;
      char number[32];
      const char* text = v.s;
      if (v.type == VType::integer) {  // a bare number: seconds, as mi-reserve --timeout reads it
        format(number, sizeof(number), "%lld", v.i);
        text = number;
      }
      if (v.type == VType::boolean || !config_timeout_parse(text, &ms)) {
        problem(p, "[reserve] 'timeout': expected a duration (\"30s\", \"500ms\", \"2min\", or seconds), not %s",
                describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        r->timeout_ms = ms;
      }
      break;
    }
    case ReserveKey::on_shortfall: {
      ConfigShortfall value;
      if (v.type != VType::string || !config_shortfall_parse(v.s, &value)) {
        problem(p, "[reserve] 'on_shortfall': expected \"keep\", \"release\" or \"fail\", not %s",
                describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        r->on_shortfall = value;
      }
      break;
    }
    default: break;
  }
}

// ---------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------
// The current table is [reserve] (its lines' problems are [reserve]'s).
bool table_is_reserve(const Parser& p) {
  return p.table_known && p.table.parts == 1 && strcmp(p.table.part[0], "reserve") == 0;
}

// Why a [program.NAME] cannot name a program (nullptr: it can).
const char* program_name_problem(const char* name) {
  if (name[0] == 0) return "an empty program name matches no program";
  if (strchr(name, '/') != nullptr)
    return "a program is named by its file name, without a directory ([program.postgres])";
  return nullptr;
}

// The ProgramScope of NAME, found or added; -1 when the file has too many.
int program_scope(Parser& p, const char* name) {
  for (int i = 0; i < p.program_count; i++) {
    if (strcmp(p.programs[i].name, name) == 0) return i;
  }
  if (p.program_count >= CONFIG_MAX_PROGRAMS) return -1;
  ProgramScope& ps = p.programs[p.program_count];
  memset(static_cast<void*>(&ps), 0, sizeof(ps));
  memcpy(ps.name, name, strlen(name) + 1);               // shorter than KEY_LEN_MAX (parse_key)
  ps.matched = p.apply ? program_match(name) : nullptr;  // checking a file needs no names
  return p.program_count++;
}

static_assert(CONFIG_MAX_PROGRAMS == 32, "the message below says 32");
static_assert(CONFIG_MAX_NODES == 64, "the messages below say 0 to 63");

// What the first `parts` parts of `path` name (a [program.NAME] seen for the
// first time gets its scope).
TableRef table_ref(Parser& p, const KeyPath& path, int parts) {
  TableRef r{TableKind::unknown, 0, -1, nullptr};
  if (parts == 0) {
    r.kind = TableKind::root;
    return r;
  }
  const char* first = path.part[0];
  if (strcmp(first, "options") == 0 || strcmp(first, "reserve") == 0) {
    if (parts == 1) r.kind = (first[0] == 'o') ? TableKind::options : TableKind::reserve;
    return r;
  }
  if (strcmp(first, "node") == 0) {
    if (parts == 1) {
      r.kind = TableKind::node_parent;
    } else if (parts == 2 && parse_node_index(path.part[1], &r.node)) {
      r.kind = TableKind::node;
    } else if (parts == 2) {
      r.why = "nodes are numbered 0 to 63";
    }
    return r;
  }
  if (strcmp(first, "program") != 0) return r;
  if (parts == 1) {
    r.kind = TableKind::program_parent;
    return r;
  }
  r.why = program_name_problem(path.part[1]);
  if (r.why != nullptr) return r;
  if (parts > 4 || (parts > 2 && strcmp(path.part[2], "node") != 0)) return r;
  if (parts == 4 && !parse_node_index(path.part[3], &r.node)) {
    r.why = "nodes are numbered 0 to 63";
    return r;
  }
  r.program = program_scope(p, path.part[1]);
  if (r.program < 0) {
    r.why = "more than 32 [program.NAME] tables in one file";
    return r;
  }
  r.kind = (parts == 2) ? TableKind::program : (parts == 3) ? TableKind::program_node_parent : TableKind::program_node;
  return r;
}

// Whether a known table was defined by a [header] and whether dotted keys
// created it; and marking it so.
struct Marks {
  bool header;
  bool dotted;
};

Marks table_marks(Parser& p, const TableRef& r) {
  ScopeSeen& g = (r.program >= 0) ? p.programs[r.program].seen : p.global;
  const uint64_t bit = uint64_t{1} << r.node;
  switch (r.kind) {
    case TableKind::options:
    case TableKind::program: return Marks{g.table, g.dotted};
    case TableKind::reserve: return Marks{p.reserve_table, p.reserve_dotted};
    case TableKind::program_parent: return Marks{p.program_parent_table, p.program_parent_dotted};
    case TableKind::node_parent:
    case TableKind::program_node_parent: return Marks{g.node_parent_table, g.node_parent_dotted};
    case TableKind::node:
    case TableKind::program_node: return Marks{(g.node_table & bit) != 0, (g.node_dotted & bit) != 0};
    default: return Marks{false, false};
  }
}

void mark_table(Parser& p, const TableRef& r, bool header) {
  ScopeSeen& g = (r.program >= 0) ? p.programs[r.program].seen : p.global;
  const uint64_t bit = uint64_t{1} << r.node;
  switch (r.kind) {
    case TableKind::options:
    case TableKind::program: (header ? g.table : g.dotted) = true; break;
    case TableKind::reserve: (header ? p.reserve_table : p.reserve_dotted) = true; break;
    case TableKind::program_parent: (header ? p.program_parent_table : p.program_parent_dotted) = true; break;
    case TableKind::node_parent:
    case TableKind::program_node_parent: (header ? g.node_parent_table : g.node_parent_dotted) = true; break;
    case TableKind::node:
    case TableKind::program_node: (header ? g.node_table : g.node_dotted) |= bit; break;
    default: break;
  }
  if (r.program >= 0) record_program(p, p.programs[r.program]);
}

constexpr const char* KNOWN_TABLES = "[options], [node.N], [reserve], [program.NAME], [program.NAME.node.N]";

// The problem with a table (or key) path that names no known table.
void unknown_table_problem(Parser& p, const KeyPath& path, int parts, const TableRef& r, const char* what) {
  char text[KEY_PARTS_MAX * (2 * KEY_LEN_MAX + 3)];
  path_text(path, parts, text, sizeof(text));
  if (r.why != nullptr && strcmp(path.part[0], "node") == 0 && parts == 2) {
    // (the text of the first reader, kept: "table [node.64]: nodes are numbered 0 to 63")
    problem(p, "table [node.%s]: %s; %s", path.part[1], r.why, what);
  } else if (r.why != nullptr) {
    problem(p, "table [%s]: %s; %s", text, r.why, what);
  } else if (strcmp(path.part[0], "program") == 0 && parts >= 3) {
    // [program.python3.11] is [program.python3] with a table "11" in it
    char name[KEY_PARTS_MAX * (2 * KEY_LEN_MAX + 3)];
    size_t n = 0;
    for (int i = 1; i < parts; i++) n += format(name + n, sizeof(name) - n, "%s%s", i > 1 ? "." : "", path.part[i]);
    KeyPath quoted;
    quoted.parts = 2;
    memcpy(quoted.part[0], "program", 8);
    format(quoted.part[1], KEY_LEN_MAX, "%s", name);
    char hint[sizeof(text)];
    problem(p, "unknown table [%s]; %s (a program name with a dot is quoted: [%s]; known: %s)", text, what,
            path_text(quoted, 2, hint, sizeof(hint)), KNOWN_TABLES);
  } else {
    problem(p, "unknown table [%s]; %s (known: %s)", text, what, KNOWN_TABLES);
  }
}

void parse_header(Parser& p, const char* c) {
  p.in_reserve = false;  // a header's problems are [reserve]'s only when it is [reserve] (twice)
  c++;                   // '['
  if (*c == '[') {
    problem(p, "[[arrays of tables]] are not accepted; the keys of this table are ignored");
    p.table_known = false;
    p.table.parts = 0;
    return;
  }
  KeyPath path;
  const char* err = parse_key(c, path);
  if (err == nullptr && *c != ']') err = "']' is expected after the table name";
  if (err == nullptr && !rest_is_comment(c + 1)) {
    err = (*skip_ws(c + 1) == '#') ? "a control character in a comment" : "unexpected text after the table header";
  }
  if (err != nullptr) {
    problem(p, "syntax error in a table header: %s; the keys that follow are ignored", err);
    p.table_known = false;
    p.table.parts = 0;
    return;
  }
  p.table = path;
  const TableRef r = table_ref(p, path, path.parts);
  p.table_known = r.kind != TableKind::unknown;
  p.in_reserve = r.kind == TableKind::reserve;
  if (!p.table_known) {
    unknown_table_problem(p, path, path.parts, r, "its keys are ignored");
    return;
  }
  const Marks m = table_marks(p, r);
  mark_table(p, r, true);
  if (m.header || m.dotted) {
    char text[KEY_PARTS_MAX * (2 * KEY_LEN_MAX + 3)];
    problem(p, "table [%s] is defined twice (TOML does not allow that); its keys still apply",
            path_text(path, path.parts, text, sizeof(text)));
  }
}

void parse_key_value(Parser& p, const char* c) {
  KeyPath key;
  const char* err = parse_key(c, key);
  const bool key_read = err == nullptr;
  // the line is [reserve]'s when its full key starts there ("reserve.pages" at the root too)
  if (key_read) {
    const char* first = (p.table.parts > 0) ? p.table.part[0] : key.part[0];
    p.in_reserve = p.table_known && strcmp(first, "reserve") == 0;
  }
  if (err == nullptr && *c != '=') err = "'=' is expected after the key";
  Value v;
  const char* value_start = nullptr;
  if (err == nullptr) {
    c = skip_ws(c + 1);
    value_start = c;
    err = parse_value(c, v);
  }
  if (err == nullptr && !rest_is_comment(c)) {
    err = (*skip_ws(c) == '#') ? "a control character in a comment" : "unexpected text after the value";
  }
  // the key, when it was read, for the message: "(key 'options.verbose')"
  char key_text[KEY_PARTS_MAX * (KEY_LEN_MAX + 1) + 16] = "";
  if (err != nullptr && key_read) {
    size_t n = format(key_text, sizeof(key_text), " (key '");
    for (int i = 0; i < key.parts; i++) {
      n += format(key_text + n, sizeof(key_text) - n, "%s%s", i > 0 ? "." : "", key.part[i]);
    }
    format(key_text + n, sizeof(key_text) - n, "')");
  }
  if (err != nullptr && c == value_start && (multiline_opens(c) || *c == '[' || *c == '{')) {
    // A value that may go on in the next lines: up to its end they are
    // string text or array elements, not keys (read as lines, "verbose =
    // true" inside a multi-line string would apply, and "[ 'a' ]," inside an
    // array would be taken for a table header).
    SpanSkip st{0, 0};
    const bool ends_here = span_scan(st, c);
    if (!ends_here) {
      p.skip = st;
      p.skipping = true;
      p.skip_from = p.line;
    }
    if (multiline_opens(c)) {
      problem(p, "syntax error: multi-line strings are not accepted%s; %s", key_text,
              ends_here ? "line ignored" : "ignored up to its closing quotes");
    } else {
      problem(p, "syntax error: %s%s; %s", err, key_text,
              ends_here ? "line ignored" : "ignored up to its closing bracket");
    }
    return;
  }
  if (err != nullptr) {
    problem(p, "syntax error: %s%s; line ignored", err, key_text);
    return;
  }
  if (!p.table_known) return;  // reported at its header
  // the full path: the table's parts, then the key's
  KeyPath full;
  full.parts = 0;
  for (int i = 0; i < p.table.parts && full.parts < KEY_PARTS_MAX; i++)
    memcpy(full.part[full.parts++], p.table.part[i], KEY_LEN_MAX);
  for (int i = 0; i < key.parts; i++) {
    if (full.parts >= KEY_PARTS_MAX) {
      problem(p, "key '%s' has too many dotted parts; ignored", key.part[0]);
      return;
    }
    memcpy(full.part[full.parts++], key.part[i], KEY_LEN_MAX);
  }
  char text[KEY_PARTS_MAX * (2 * KEY_LEN_MAX + 3)];
  // The tables a dotted key creates (TOML: no [header] for them later, and
  // none may have had a [header] before).
  for (int i = p.table.parts + 1; i < full.parts; i++) {
    const TableRef r = table_ref(p, full, i);
    if (r.kind == TableKind::unknown) break;  // reported below
    if (table_marks(p, r).header) {
      path_text(full, i, text, sizeof(text));
      problem(p,
              "table [%s] has a [%s] header above; TOML does not allow dotted keys to add to it; the key still applies",
              text, text);
    }
    mark_table(p, r, false);
  }
  const TableRef r = table_ref(p, full, full.parts - 1);
  const char* last = full.part[full.parts - 1];
  switch (r.kind) {
    case TableKind::options: key_option(p, Scope{&p.global, nullptr}, last, v); return;
    case TableKind::reserve: key_reserve(p, last, v); return;
    case TableKind::node: key_node(p, Scope{&p.global, nullptr}, r.node, last, v); return;
    case TableKind::program: {
      ProgramScope& ps = p.programs[r.program];
      key_option(p, Scope{&ps.seen, &ps}, last, v);
      return;
    }
    case TableKind::program_node: {
      ProgramScope& ps = p.programs[r.program];
      key_node(p, Scope{&ps.seen, &ps}, r.node, last, v);
      return;
    }
    case TableKind::root: problem(p, "key '%s' outside a table; put options under [options]; ignored", last); return;
    case TableKind::program_parent:
      problem(p, "key '%s' in [program] names no program: use [program.NAME] (e.g. [program.postgres]); ignored",
              path_text(full, full.parts, text, sizeof(text)));
      return;
    case TableKind::unknown:
      if (r.why != nullptr) {
        problem(p, "key '%s': %s; ignored", path_text(full, full.parts, text, sizeof(text)), r.why);
        return;
      }
      break;
    default: break;
  }
  problem(p, "unknown key '%s'; ignored (known tables: %s)", path_text(full, full.parts, text, sizeof(text)),
          KNOWN_TABLES);
}

// pre: s[len] == 0; `crlf`: the line ended with a line feed (a CR before it
// is part of the line end).
void parse_line(Parser& p, char* s, size_t len, bool crlf) {
  if (crlf && len > 0 && s[len - 1] == '\r') s[--len] = 0;             // CRLF
  if (p.line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {  // a UTF-8 byte order mark
    s += 3;
    len -= 3;
  }
  if (p.skipping) {  // inside a value that spans lines (reported where it started)
    if (span_scan(p.skip, s)) p.skipping = false;
    return;
  }
  p.in_reserve = table_is_reserve(p);
  for (size_t i = 0; i < len;) {
    if (s[i] == 0) {
      problem(p, "a NUL byte; line ignored");
      return;
    }
    if (s[i] == '\r') {
      problem(p, "a carriage return (CR) that does not end the line; line ignored");
      return;
    }
    size_t n = utf8_length(reinterpret_cast<const unsigned char*>(s + i), len - i);
    if (n == 0) {
      problem(p, "bytes that are not UTF-8 (at column %zu); line ignored", i + 1);
      return;
    }
    i += n;
  }
  const char* c = skip_ws(s);
  if (*c == 0) return;
  if (*c == '#') {
    if (!rest_is_comment(c)) problem(p, "a control character in a comment; line ignored");
    return;
  }
  if (*c == '[') {
    parse_header(p, c);
    return;
  }
  parse_key_value(p, c);
}

// Feeds bytes to the line parser; `line` holds the current line.
struct LineFeeder {
  Parser& p;
  char* line;
  size_t len = 0;
  bool too_long = false;

  void end_line(bool newline) {
    p.line++;
    if (too_long) {
      p.in_reserve = !p.skipping && table_is_reserve(p);
      problem(p, "line longer than %zu bytes; ignored", CONFIG_LINE_MAX - 1);
    } else {
      line[len] = 0;
      parse_line(p, line, len, newline);
    }
    len = 0;
    too_long = false;
  }

  // pre: `line` holds CONFIG_LINE_MAX + 1 bytes: a line of CONFIG_LINE_MAX - 1
  // bytes, the CR of a CRLF and the terminating NUL.
  void feed(const char* data, size_t n) {
    for (size_t i = 0; i < n; i++) {
      char ch = data[i];
      if (ch == '\n') {
        end_line(true);
      } else if (len + 1 < CONFIG_LINE_MAX || (len + 1 == CONFIG_LINE_MAX && ch == '\r')) {
        line[len++] = ch;
      } else {
        too_long = true;
      }
    }
  }

  // Forgets the line being read (the file is cut inside it).
  void drop_line() {
    len = 0;
    too_long = false;
  }

  void finish() {
    if (len > 0 || too_long) end_line(false);  // the last line had no newline
    if (p.skipping) {
      problem(
          p,
          "the value that starts in line %d does not end before the end of the file; the lines after it were ignored",
          p.skip_from);
      p.skipping = false;
    }
  }
};

void parser_init(Parser& p, const char* name, bool apply, mi_output_fun* out, void* arg) {
  memset(static_cast<void*>(&p), 0, sizeof(p));
  p.name = name;
  p.apply = apply;
  p.out = out;
  p.arg = arg;
  p.table_known = true;                  // keys before any header are in the root table (reported as such)
  if (apply) applied_program_count = 0;  // the list is of the file applied last
}

}  // namespace

int config_parse(const char* name, const char* data, size_t len, bool apply, mi_output_fun* out, void* arg) noexcept {
  Parser p;
  parser_init(p, name != nullptr ? name : "(config)", apply, out, arg);
  char line[CONFIG_LINE_MAX + 1];
  LineFeeder f{p, line};
  if (data != nullptr) f.feed(data, len);
  f.finish();
  return p.problems;
}

namespace {
// What a path names when it is not a regular file, for the message.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

bool is_null_device(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3); }

void report_not_regular(Parser& p, mode_t mode) {
  p.in_reserve = true;  // for mi-reserve, a file it cannot read says nothing of [reserve] either
  problem(p, "cannot read the configuration file: it is %s, not a regular file; the defaults apply", file_kind(mode));
}

// Reads the file at `path` through the parser; an unreadable file is one
// problem. This runs in every program's start-up, so it must never block or
// spin, whatever the path names: only a regular file is read (a FIFO blocked
// the open for ever, /dev/zero and /dev/urandom never ended), the path is
// checked with stat() before it is opened (opening some devices acts:
// /dev/watchdog arms the watchdog) and again on the open descriptor (it may
// have been replaced in between), the open does not wait (O_NONBLOCK: a read
// that would wait fails instead) nor take a terminal (O_NOCTTY), and at most
// CONFIG_FILE_MAX bytes are read (a 1 GB sparse file took 3.4 s).
int parse_fd_or_report(Parser& p, const char* path) {
  struct stat st;
  if (path != nullptr && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    // /dev/null is the usual way to say "no file" (MIMALLOC_CONFIG=/dev/null
    // keeps /etc/mimalloc-numa.toml out): read as the empty file it is
    if (!is_null_device(st)) report_not_regular(p, st.st_mode);
    return p.problems;
  }
  int fd = -1;
  if (path != nullptr) {
    do {
      fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
  }
  if (fd < 0) {
    p.in_reserve = true;
    problem(p, "cannot read the configuration file: %s; the defaults apply", errno_text(errno));
    return p.problems;
  }
  if (fstat(fd, &st) != 0) {
    p.in_reserve = true;
    problem(p, "cannot read the configuration file: %s; the defaults apply", errno_text(errno));
    close(fd);
    return p.problems;
  }
  if (!S_ISREG(st.st_mode)) {  // replaced since the stat() above
    if (!is_null_device(st)) report_not_regular(p, st.st_mode);
    close(fd);
    return p.problems;
  }
  char chunk[4096];
  char line[CONFIG_LINE_MAX + 1];
  LineFeeder f{p, line};
  size_t total = 0;
  bool cut = false;
  for (;;) {
    // one byte past the limit at most: it tells a file of exactly the limit from a longer one
    size_t want = sizeof(chunk);
    if (want > CONFIG_FILE_MAX + 1 - total) want = CONFIG_FILE_MAX + 1 - total;
    ssize_t n = read(fd, chunk, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      p.in_reserve = true;
      problem(p, "cannot read the configuration file: %s; the rest of it is ignored", errno_text(errno));
      break;
    }
    if (n == 0) break;
    const size_t got = static_cast<size_t>(n);
    if (total + got > CONFIG_FILE_MAX) {
      f.feed(chunk, CONFIG_FILE_MAX - total);
      cut = true;
      break;
    }
    f.feed(chunk, got);
    total += got;
  }
  close(fd);
  if (cut) {
    // The line the limit falls in is dropped, not parsed as if it ended
    // there ("arena_reserve = 1024" cut to "arena_reserve = 10").
    f.drop_line();
    p.line++;
    p.in_reserve = true;
    problem(p,
            "the configuration file is longer than %zu MiB, the most that is read; this line and the rest of the "
            "file are ignored",
            CONFIG_FILE_MAX / MiB);
    p.skipping = false;  // a value still open at the limit: said above
    return p.problems;
  }
  f.finish();
  return p.problems;
}
}  // namespace

int config_parse_file(const char* path, bool apply, mi_output_fun* out, void* arg) noexcept {
  Parser p;
  parser_init(p, path != nullptr ? path : "(null)", apply, out, arg);
  return parse_fd_or_report(p, path);
}

void config_load_startup() noexcept {
  char buf[sizeof(startup_path)];
  const bool named = os_getenv("MIMALLOC_CONFIG", buf, sizeof(buf)) && buf[0] != 0;
  if (named && os_is_secure()) {
    // a set-user-ID program: the file is named by a less privileged user, and
    // every bad line would be echoed in a warning (MIMALLOC_CONFIG=/etc/shadow)
    warning_message(
        "MIMALLOC_CONFIG is ignored: this program runs set-user-ID or set-group-ID (AT_SECURE); "
        "only /etc/mimalloc-numa.toml is read");
  }
  if (named && !os_is_secure()) {
    memcpy(startup_path, buf, sizeof(buf));
  } else if (access("/etc/mimalloc-numa.toml", F_OK) == 0) {
    format(startup_path, sizeof(startup_path), "%s", "/etc/mimalloc-numa.toml");
  } else {
    return;
  }
  config_parse_file(startup_path, true, nullptr, nullptr);
}

int config_read_reserve(const char* path, ConfigReserve* reserve, mi_output_fun* out, void* arg) noexcept {
  reserve->pages = -1;
  reserve->per_node = -1;
  reserve->page_size_kib = -1;
  reserve->timeout_ms = -1;
  reserve->on_shortfall = shortfall_unset;
  reserve->reserve_problems = 0;
  reserve->nodes[0] = 0;
  for (long& n : reserve->node_pages) n = -1;
  reserve->options_huge_pages = -1;
  reserve->options_huge_pages_at = -1;
  reserve->options_use_numa_nodes = -1;
  Parser p;
  parser_init(p, path != nullptr ? path : "(null)", false, out, arg);
  p.reserve = reserve;
  return parse_fd_or_report(p, path);
}

const char* config_path() noexcept { return startup_path; }

bool config_shortfall_parse(const char* text, ConfigShortfall* value) noexcept {
  for (size_t i = 0; i < sizeof(shortfall_names) / sizeof(shortfall_names[0]); i++) {
    if (text != nullptr && strcmp(text, shortfall_names[i]) == 0) {
      *value = static_cast<ConfigShortfall>(i);
      return true;
    }
  }
  return false;
}

bool config_page_size_parse(const char* text, long* size_kib) noexcept {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  const char* c = text;
  long n = 0;
  for (; *c >= '0' && *c <= '9'; c++) {
    n = n * 10 + (*c - '0');
    if (n > (1L << 40)) return false;
  }
  if (n == 0) return false;
  if (*c == ' ') c++;  // "1 GiB", as mi-reserve's tables print it
  long mult;
  switch (*c) {  // no unit: a bare number is ambiguous (bytes? KiB?)
    case 'k':
    case 'K': mult = 1; break;
    case 'm':
    case 'M': mult = 1024; break;
    case 'g':
    case 'G': mult = 1024L * 1024; break;
    default: return false;
  }
  c++;
  const bool b = *c == 'b' || *c == 'B';
  const bool ib = (*c == 'i' || *c == 'I') && (c[1] == 'b' || c[1] == 'B');
  if (!(*c == 0 || (b && c[1] == 0) || (ib && c[2] == 0))) return false;
  const long kib = n * mult;
  if (kib < 4 || (kib & (kib - 1)) != 0 || kib > (16L << 20)) return false;
  *size_kib = kib;
  return true;
}

bool config_timeout_parse(const char* text, long* ms) noexcept {
  long v = 0;
  if (text == nullptr || !parse_duration_ms(text, DURATION_BARE_S, &v) || v < 0 || v > CONFIG_TIMEOUT_MAX_MS) {
    return false;
  }
  *ms = v;
  return true;
}

const char* config_shortfall_name(ConfigShortfall value) noexcept {
  if (value < 0 || static_cast<size_t>(value) >= sizeof(shortfall_names) / sizeof(shortfall_names[0])) return "";
  return shortfall_names[value];
}

const ConfigKey* config_node_keys(size_t* count) noexcept {
  *count = sizeof(node_keys) / sizeof(node_keys[0]);
  return node_keys;
}

const ConfigKey* config_reserve_keys(size_t* count) noexcept {
  *count = sizeof(reserve_keys) / sizeof(reserve_keys[0]);
  return reserve_keys;
}

long config_node_huge_pages(int node) noexcept {
  if (node < 0 || node >= CONFIG_MAX_NODES || !node_huge_set[node]) return -1;
  return node_huge_pages[node];
}

size_t config_node_arena_reserve(int node) noexcept {
  if (node < 0 || node >= CONFIG_MAX_NODES) return 0;
  return static_cast<size_t>(node_reserve_kib[node]) * KiB;
}

void config_print() noexcept {
  if (startup_path[0] == 0) {
    output("mimalloc-numa: no configuration file (MIMALLOC_CONFIG unset, /etc/mimalloc-numa.toml absent)\n");
    return;
  }
  output("mimalloc-numa: configuration file %s\n", startup_path);
  // which [program.NAME] tables name this program, so that an operator sees
  // why a table did or did not apply
  char table[PROGRAM_TABLE_TEXT_MAX];
  output("mimalloc-numa:   program names: argv[0] \"%s\", executable \"%s\"; %s\n", program_argv0_name(),
         program_exe_name(), applied_program_count == 0 ? "no [program.NAME] table names them" : "tables that apply:");
  for (int i = 0; i < applied_program_count; i++) {
    config_program_table_text(table, sizeof(table), applied_programs[i].name);
    output("mimalloc-numa:     %s (line %d)\n", table, applied_programs[i].line);
  }
  char node_table[PROGRAM_TABLE_TEXT_MAX + 32];
  for (int n = 0; n < CONFIG_MAX_NODES; n++) {
    if (node_huge_set[n]) {
      output("mimalloc-numa:   %s reserve_huge_os_pages = %ld\n",
             node_table_text(node_huge_program[n], n, node_table, sizeof(node_table)), node_huge_pages[n]);
    }
    if (node_reserve_kib[n] > 0) {
      char size[32];
      format_bytes(size, sizeof(size), static_cast<int64_t>(node_reserve_kib[n]) * 1024);
      output("mimalloc-numa:   %s arena_reserve = %s\n",
             node_table_text(node_reserve_program[n], n, node_table, sizeof(node_table)), size);
    }
  }
}

size_t config_program_table_text(char* buf, size_t size, const char* name) noexcept {
  if (size == 0) return 0;
  size_t n = format(buf, size, "[program.");
  n = put_key_part(buf, size, n, name);
  n += format(buf + n, size - n, "]");
  return n;
}

int config_applied_program(int index, const char** name, int* line) noexcept {
  if (index >= 0 && index < applied_program_count) {
    if (name != nullptr) *name = applied_programs[index].name;
    if (line != nullptr) *line = applied_programs[index].line;
  }
  return applied_program_count;
}

const char* config_node_huge_pages_program(int node) noexcept {
  return (node >= 0 && node < CONFIG_MAX_NODES && node_huge_set[node]) ? node_huge_program[node] : nullptr;
}

const char* config_node_arena_reserve_program(int node) noexcept {
  return (node >= 0 && node < CONFIG_MAX_NODES && node_reserve_kib[node] > 0) ? node_reserve_program[node] : nullptr;
}

void config_reset_nodes() noexcept {
  for (int n = 0; n < CONFIG_MAX_NODES; n++) {
    node_huge_pages[n] = 0;
    node_huge_set[n] = false;
    node_reserve_kib[n] = 0;
    node_huge_program[n] = nullptr;
    node_reserve_program[n] = nullptr;
  }
}

bool config_any_node_huge_pages() noexcept {
  for (bool set : node_huge_set) {
    if (set) return true;
  }
  return false;
}

}  // namespace mi

// ---------------------------------------------------------------------------
// Public API (mimalloc-numa.h)
// ---------------------------------------------------------------------------
extern "C" __attribute__((visibility("default"))) int mi_config_check(const char* path, mi_output_fun* out,
                                                                      void* arg) noexcept {
  return mi::config_parse_file(path, false, out, arg);
}
