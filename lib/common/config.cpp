// config.cpp: see config.h. A line-oriented reader of a TOML subset that
// never allocates and never gives up on a file: each bad line is reported and
// skipped.
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cstdarg>

#include "../os/os.h"
#include "format.h"
#include "messages.h"
#include "options.h"

namespace mi {

namespace {

// ---------------------------------------------------------------------------
// Per-node settings ([node.N]) and mi-reserve's keys ([reserve])
// ---------------------------------------------------------------------------
constinit long node_huge_pages[CONFIG_MAX_NODES]{};      // valid where node_huge_set
constinit bool node_huge_set[CONFIG_MAX_NODES]{};
constinit long node_reserve_kib[CONFIG_MAX_NODES]{};     // 0: not set
constinit char startup_path[4096]{};

enum class NodeKey { reserve_huge_os_pages, arena_reserve, count };
constexpr ConfigKey node_keys[] = {
  {"reserve_huge_os_pages", "0", "1 GiB pages to reserve on this node at start-up (the [options] count is spread over the other nodes)"},
  {"arena_reserve", "\"1GiB\"", "address space of each new arena on this node (instead of [options] arena_reserve)"},
};
constexpr const char* node_key_names[] = {"reserve_huge_os_pages", "arena_reserve"};

enum class ReserveKey { pages, page_size, nodes, per_node, timeout, on_shortfall, count };
constexpr ConfigKey reserve_keys[] = {
  {"pages", "0", "mi-reserve: huge pages to reserve in all, interleaved over the nodes"},
  {"page_size", "\"1G\"", "mi-reserve: \"1G\" or \"2M\""},
  {"nodes", "\"all\"", "mi-reserve: the nodes to reserve on (\"all\" or a list such as \"0,2-3\")"},
  {"per_node", "0", "mi-reserve: pages per node (instead of pages)"},
  {"timeout", "\"30s\"", "mi-reserve: how long at most to keep compacting memory and retrying (it stops sooner once that gains nothing)"},
  {"on_shortfall", "\"keep\"", "mi-reserve: when the kernel gives fewer pages than asked: \"keep\" what it gave, \"release\" it all, or \"fail\" (release it all; the unit fails)"},
};
constexpr const char* reserve_key_names[] = {"pages", "page_size", "nodes", "per_node", "timeout", "on_shortfall"};
constexpr const char* shortfall_names[] = {"keep", "release", "fail"};

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------
enum class VType { boolean, integer, string };

struct Value {
  VType type;
  bool b;
  long long i;
  size_t len;
  char s[CONFIG_LINE_MAX];
};

constexpr int KEY_PARTS_MAX = 4;
constexpr size_t KEY_LEN_MAX = 128;

struct KeyPath {
  int parts;
  char part[KEY_PARTS_MAX][KEY_LEN_MAX];
};

// Where a scan through a value is: inside how many brackets ([ and {), and
// inside which kind of string (0: none; '"' and '\'' one-line strings, 'M'
// a multi-line basic string, 'L' a multi-line literal string).
struct SpanSkip {
  int depth;
  char string;
};

struct Parser {
  const char* name;
  bool apply;
  ConfigReserve* reserve;  // when reading for mi-reserve: where its values go
  mi_output_fun* out;
  void* arg;
  int line;
  int problems;
  KeyPath table;       // the current [table]
  bool table_known;    // a table whose keys we know (else they are skipped silently)
  // each key once (TOML forbids duplicates); tables once
  uint64_t seen_options[2];
  uint8_t seen_node[CONFIG_MAX_NODES];
  uint8_t seen_reserve;
  bool seen_table_options, seen_table_reserve, seen_table_node_parent;
  uint64_t seen_table_node;
  // tables created by dotted keys ("options.verbose = 1" at the root): TOML
  // forbids a [header] for them afterwards
  bool dotted_options, dotted_reserve, dotted_node_parent;
  uint64_t dotted_node;
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

// Copies s into dst (size > 0) with control characters as TOML escapes ("\n",
// "\u001b"), never cut inside an escape; returns the length. Keys and string
// values may hold any of them through escapes ("a\nb" = 1 is a valid key), and
// the name is a path: without this, a file could split a message into two
// lines or send escape sequences to the terminal (found by tests/fuzz).
size_t escape_controls(char* dst, size_t size, const char* s) {
  size_t n = 0;
  for (; *s != 0; s++) {
    unsigned char c = static_cast<unsigned char>(*s);
    char esc[8];
    size_t len = 1;
    esc[0] = *s;
    if (c == '\n' || c == '\r' || c == '\b' || c == '\f') {
      esc[0] = '\\';
      esc[1] = (c == '\n') ? 'n' : (c == '\r') ? 'r' : (c == '\b') ? 'b' : 'f';
      len = 2;
    } else if ((c < 0x20 && c != '\t') || c == 0x7F) {
      len = format(esc, sizeof(esc), "\\u%04x", c);
    }
    if (n + len >= size) break;
    memcpy(dst + n, esc, len);
    n += len;
  }
  dst[n] = 0;
  return n;
}

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

bool is_ws(char c) { return c == ' ' || c == '\t'; }
bool is_bare(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
const char* skip_ws(const char* c) {
  while (is_ws(*c)) c++;
  return c;
}

// Describes a value for messages: string "x", integer 5, boolean true.
const char* describe(const Value& v, char* buf, size_t size) {
  switch (v.type) {
    case VType::boolean: format(buf, size, "the boolean %s", v.b ? "true" : "false"); break;
    case VType::integer: format(buf, size, "the integer %lld", v.i); break;
    case VType::string: format(buf, size, "the string \"%.60s%s\"", v.s, v.len > 60 ? "..." : ""); break;
  }
  return buf;
}

// Appends the UTF-8 encoding of code point cp; false if it is not a scalar value.
bool put_utf8(Value& v, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  char tmp[4];
  size_t n;
  if (cp < 0x80) { tmp[0] = static_cast<char>(cp); n = 1; }
  else if (cp < 0x800) { tmp[0] = static_cast<char>(0xC0 | (cp >> 6)); tmp[1] = static_cast<char>(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    tmp[0] = static_cast<char>(0xE0 | (cp >> 12)); tmp[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    tmp[2] = static_cast<char>(0x80 | (cp & 0x3F)); n = 3;
  } else {
    tmp[0] = static_cast<char>(0xF0 | (cp >> 18)); tmp[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    tmp[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); tmp[3] = static_cast<char>(0x80 | (cp & 0x3F)); n = 4;
  }
  if (v.len + n >= sizeof(v.s)) return false;
  memcpy(v.s + v.len, tmp, n);
  v.len += n;
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A string (basic or literal, one line) at *c; on success *c is past it.
// Returns nullptr on success or the reason.
const char* parse_string(const char*& c, Value& v) {
  v.type = VType::string;
  v.len = 0;
  const char quote = *c;
  if ((c[1] == quote) && (c[2] == quote)) return "multi-line strings are not accepted";
  c++;
  while (*c != quote) {
    unsigned char ch = static_cast<unsigned char>(*c);
    if (ch == 0) return "the string is not closed on this line";
    if ((ch < 0x20 && ch != '\t') || ch == 0x7F) return "a control character in a string";
    if (quote == '"' && ch == '\\') {
      char e = c[1];
      c += 2;
      char lit = 0;
      switch (e) {
        case 'b': lit = '\b'; break;
        case 't': lit = '\t'; break;
        case 'n': lit = '\n'; break;
        case 'f': lit = '\f'; break;
        case 'r': lit = '\r'; break;
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case 'u':
        case 'U': {
          int digits = (e == 'u') ? 4 : 8;
          uint32_t cp = 0;
          for (int k = 0; k < digits; k++) {
            int h = hex_digit(c[k]);
            if (h < 0) return "a bad \\u escape in a string";
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          c += digits;
          // valid TOML, but a NUL would end the C string every reader of the
          // value sees: "none\u0000x" would read as "none"
          if (cp == 0) return "a \\u0000 escape (a NUL character) in a string";
          if (!put_utf8(v, cp)) return "a \\u escape that is not a Unicode scalar value";
          continue;
        }
        default: return "an unknown escape sequence in a string";
      }
      if (v.len + 1 >= sizeof(v.s)) return "the string is too long";
      v.s[v.len++] = lit;
      continue;
    }
    if (v.len + 1 >= sizeof(v.s)) return "the string is too long";
    v.s[v.len++] = *c++;
  }
  c++;  // the closing quote
  v.s[v.len] = 0;
  return nullptr;
}

// Digits of `base` with TOML's underscores (each between two digits).
const char* parse_digits(const char*& c, unsigned base, unsigned long long* out) {
  unsigned long long v = 0;
  bool any = false, last_underscore = false;
  for (;; c++) {
    int d = hex_digit(*c);
    if (*c == '_') {
      if (!any || last_underscore) return "a misplaced _ in a number";
      last_underscore = true;
      continue;
    }
    if (d < 0 || static_cast<unsigned>(d) >= base) break;
    if (v > (~0ULL - static_cast<unsigned>(d)) / base) return "the integer is too large";
    v = v * base + static_cast<unsigned>(d);
    any = true;
    last_underscore = false;
  }
  if (!any) return "a number without digits";
  if (last_underscore) return "a misplaced _ in a number";
  *out = v;
  return nullptr;
}

// A value at *c (boolean, integer or string). nullptr on success, else why not.
const char* parse_value(const char*& c, Value& v) {
  if (*c == '"' || *c == '\'') return parse_string(c, v);
  if (*c == '[') return "arrays are not accepted here";
  if (*c == '{') return "inline tables are not accepted here";
  if (strncmp(c, "true", 4) == 0 && !is_bare(c[4])) {
    v.type = VType::boolean;
    v.b = true;
    c += 4;
    return nullptr;
  }
  if (strncmp(c, "false", 5) == 0 && !is_bare(c[5])) {
    v.type = VType::boolean;
    v.b = false;
    c += 5;
    return nullptr;
  }
  const char* start = c;
  bool neg = false;
  if (*c == '+' || *c == '-') neg = (*c++ == '-');
  if (strncmp(c, "inf", 3) == 0 || strncmp(c, "nan", 3) == 0) return "floats are not accepted here";
  if (*c < '0' || *c > '9') return "a value is expected (a boolean, an integer or a quoted string)";
  unsigned base = 10;
  if (c[0] == '0' && (c[1] == 'x' || c[1] == 'o' || c[1] == 'b')) {
    if (c != start) return "a sign before a 0x/0o/0b integer";
    base = (c[1] == 'x') ? 16 : (c[1] == 'o' ? 8 : 2);
    c += 2;
  } else if (c[0] == '0' && ((c[1] >= '0' && c[1] <= '9') || c[1] == '_')) {
    // a date (1979-05-27) or a leading zero: neither is an integer in TOML
    const char* d = c;
    while (*d >= '0' && *d <= '9') d++;
    if (*d == '-' || *d == ':') return "dates and times are not accepted here";
    return "an integer with a leading zero";
  }
  unsigned long long mag;
  const char* err = parse_digits(c, base, &mag);
  if (err != nullptr) return err;
  if (*c == '.' || *c == 'e' || *c == 'E') return "floats are not accepted here";
  if (*c == '-' || *c == ':') return "dates and times are not accepted here";
  if (is_bare(*c)) return "a number with letters after it (write sizes and durations as strings: \"64MiB\", \"10ms\")";
  if (!neg && mag > 0x7fffffffffffffffULL) return "the integer is too large";
  if (neg && mag > 0x8000000000000000ULL) return "the integer is too large";
  v.type = VType::integer;
  v.i = neg ? static_cast<long long>(0 - mag) : static_cast<long long>(mag);
  return nullptr;
}

// A key (bare or quoted, dotted) at *c into path; nullptr on success.
const char* parse_key(const char*& c, KeyPath& path) {
  path.parts = 0;
  for (;;) {
    c = skip_ws(c);
    if (path.parts >= KEY_PARTS_MAX) return "a key with too many dotted parts";
    char* dst = path.part[path.parts];
    size_t n = 0;
    if (*c == '"' || *c == '\'') {
      Value v;
      const char* err = parse_string(c, v);
      if (err != nullptr) return err;
      if (v.len >= KEY_LEN_MAX) return "a key that is too long";
      memcpy(dst, v.s, v.len + 1);
    } else {
      while (is_bare(*c)) {
        if (n + 1 >= KEY_LEN_MAX) return "a key that is too long";
        dst[n++] = *c++;
      }
      if (n == 0) return "a key is expected";
      dst[n] = 0;
    }
    path.parts++;
    c = skip_ws(c);
    if (*c != '.') return nullptr;
    c++;
  }
}

// After a value or header: only white space or a comment may follow.
bool rest_is_comment(const char* c) {
  c = skip_ws(c);
  if (*c == 0) return true;
  if (*c != '#') return false;
  for (c++; *c != 0; c++) {
    unsigned char ch = static_cast<unsigned char>(*c);
    if ((ch < 0x20 && ch != '\t') || ch == 0x7F) return false;
  }
  return true;
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
    case VType::string:
      return option_parse_value(d, v.s, out, expected);
    case VType::boolean:
      if (d.kind == OptionKind::flag || (d.kind == OptionKind::number && d.min == 0 && d.max == 1)) {
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
    case OptionKind::size_kib: *expected = "a size: a string with a unit (\"64MiB\", \"1GiB\", \"512k\") or bytes"; break;
    case OptionKind::duration_ms: *expected = "a duration: a string with a unit (\"10ms\", \"2s\") or milliseconds"; break;
    case OptionKind::choice: *expected = "one of \"none\", \"preferred\", \"strict\""; break;
    case OptionKind::path: *expected = "a quoted file name"; break;
  }
  return false;
}

void key_option(Parser& p, const char* key, const Value& v) {
  const OptionDesc* d = option_find(key, strlen(key));
  if (d == nullptr) {
    problem(p, "unknown option '%s' in [options]; ignored (MIMALLOC_VERBOSE=1 lists the options)", key);
    return;
  }
  int idx = static_cast<int>(d->option);
  uint64_t bit = uint64_t{1} << (idx % 64);
  if ((p.seen_options[idx / 64] & bit) != 0) {
    problem(p, "option '%s' is set twice (TOML does not allow that); the first value stays", key);
    return;
  }
  p.seen_options[idx / 64] |= bit;
  long value;
  const char* expected = nullptr;
  char got[96];
  if (d->kind == OptionKind::path) {  // a string option (stats_file): its text is the value
    if (v.type != VType::string) {
      option_check_string(*d, "?", &expected);
      problem(p, "option '%s': expected %s, not %s; ignored", key, expected, describe(v, got, sizeof(got)));
    } else if (!(p.apply ? option_set_string(d->option, v.s, OptionSource::config_file, p.name, p.line, &expected)
                         : option_check_string(*d, v.s, &expected))) {
      problem(p, "option '%s': expected %s, not %s; ignored", key, expected, describe(v, got, sizeof(got)));
    }
    return;
  }
  if (!option_value_of(*d, v, &value, &expected)) {
    problem(p, "option '%s': expected %s, not %s; ignored", key, expected, describe(v, got, sizeof(got)));
    return;
  }
  if (p.apply) option_set_from(d->option, value, OptionSource::config_file, p.name, p.line);
  if (p.reserve != nullptr && d->option == mi_option_reserve_huge_os_pages) p.reserve->options_huge_pages = value;
  if (p.reserve != nullptr && d->option == mi_option_reserve_huge_os_pages_at) p.reserve->options_huge_pages_at = value;
  if (p.reserve != nullptr && d->option == mi_option_use_numa_nodes) p.reserve->options_use_numa_nodes = value;
}

void key_node(Parser& p, int node, const char* key, const Value& v) {
  int k = -1;
  for (int i = 0; i < static_cast<int>(NodeKey::count); i++) {
    if (strcmp(key, node_key_names[i]) == 0) k = i;
  }
  if (k < 0) {
    problem(p, "unknown key '%s' in [node.%d] (known: reserve_huge_os_pages, arena_reserve); ignored", key, node);
    return;
  }
  if ((p.seen_node[node] & (1u << k)) != 0) {
    problem(p, "key '%s' of [node.%d] is set twice; the first value stays", key, node);
    return;
  }
  p.seen_node[node] |= static_cast<uint8_t>(1u << k);
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
    problem(p, "[node.%d] '%s': expected %s, not %s; ignored", node, key, expected, describe(v, got, sizeof(got)));
    return;
  }
  if (p.reserve != nullptr && k == static_cast<int>(NodeKey::reserve_huge_os_pages)) p.reserve->node_pages[node] = value;
  if (!p.apply) return;
  if (k == static_cast<int>(NodeKey::reserve_huge_os_pages)) {
    node_huge_pages[node] = value;
    node_huge_set[node] = true;
  } else {
    node_reserve_kib[node] = value;
  }
}

// "1G", "1GiB", "2M", "2MiB", "1048576kB", "2048kB": the huge page sizes mi-reserve knows
bool is_page_size(const char* s) {
  const char* ok[] = {"1G", "1GiB", "1GB", "2M", "2MiB", "2MB", "1048576kB", "2048kB"};
  for (const char* o : ok) {
    if (strcmp(s, o) == 0) return true;
  }
  return false;
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
  int k = -1;
  for (int i = 0; i < static_cast<int>(ReserveKey::count); i++) {
    if (strcmp(key, reserve_key_names[i]) == 0) k = i;
  }
  if (k < 0) {
    problem(p, "unknown key '%s' in [reserve] (known: pages, page_size, nodes, per_node, timeout, on_shortfall); ignored", key);
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
        problem(p, "[reserve] '%s': expected a number of pages from 0 to 1048576, not %s", key, describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        (static_cast<ReserveKey>(k) == ReserveKey::pages ? r->pages : r->per_node) = static_cast<long>(v.i);
      }
      break;
    case ReserveKey::page_size:
      if (v.type != VType::string || !is_page_size(v.s)) {
        problem(p, "[reserve] 'page_size': expected \"1G\" or \"2M\", not %s", describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        r->page_size_kib = (v.s[0] == '1') ? 1048576 : 2048;
      }
      break;
    case ReserveKey::nodes:
      if (v.type != VType::string || !is_node_list(v.s) || v.len >= sizeof(r->nodes)) {
        problem(p, "[reserve] 'nodes': expected \"all\" or a node list like \"0,2-3\", not %s", describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        memcpy(r->nodes, v.s, v.len + 1);
      }
      break;
    case ReserveKey::timeout: {
      long ms;
      const char* expected = nullptr;
      if (!option_value_of(option_desc(mi_option_purge_delay), v, &ms, &expected) || ms < 0) {
        problem(p, "[reserve] 'timeout': expected a duration (\"30s\", \"500ms\", or milliseconds), not %s",
                describe(v, got, sizeof(got)));
      } else if (r != nullptr) {
        r->timeout_ms = ms;
      }
      break;
    }
    case ReserveKey::on_shortfall: {
      ConfigShortfall value;
      if (v.type != VType::string || !config_shortfall_parse(v.s, &value)) {
        problem(p, "[reserve] 'on_shortfall': expected \"keep\", \"release\" or \"fail\", not %s", describe(v, got, sizeof(got)));
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
// The length of the UTF-8 sequence at s (at most `left` bytes), or 0 if it is
// not valid UTF-8 (overlong forms, surrogates and code points beyond U+10FFFF
// are not: TOML files are UTF-8, and toml++ rejects them).
size_t utf8_length(const unsigned char* s, size_t left) {
  const unsigned char b = s[0];
  if (b < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b >= 0xC2 && b <= 0xDF) n = 2;
  else if (b == 0xE0) { n = 3; lo = 0xA0; }
  else if (b == 0xED) { n = 3; hi = 0x9F; }
  else if (b >= 0xE1 && b <= 0xEF) n = 3;
  else if (b == 0xF0) { n = 4; lo = 0x90; }
  else if (b == 0xF4) { n = 4; hi = 0x8F; }
  else if (b >= 0xF1 && b <= 0xF3) n = 4;
  else return 0;
  if (left < n || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++) {
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  }
  return n;
}

// A multi-line string ("""...""" or '''...''') starts at c.
bool multiline_opens(const char* c) {
  return (*c == '"' || *c == '\'') && c[1] == *c && c[2] == *c;
}

// Scans the text of one line of a value (from its first character on the
// first line), as TOML reads it: strings of all four kinds (escapes, the
// multi-line ones across lines), brackets, comments. Returns true where the
// value ends (its outermost bracket or closing quotes); false when it goes
// on in the next line. Nothing is checked: the value is skipped, not read.
bool span_scan(SpanSkip& st, const char* s) {
  for (; *s != 0; s++) {
    const char ch = *s;
    switch (st.string) {
      case 'M':
      case '"':
        if (ch == '\\') {
          if (s[1] != 0) s++;  // the escaped character (a line-ending backslash: the string goes on, if multi-line)
        } else if (st.string == 'M' && ch == '"' && s[1] == '"' && s[2] == '"') {
          s += 2;
          while (s[1] == '"') s++;  // up to two quotes before the closing ones belong to the string
          st.string = 0;
          if (st.depth == 0) return true;
        } else if (st.string == '"' && ch == '"') {
          st.string = 0;
          if (st.depth == 0) return true;
        }
        continue;
      case 'L':
      case '\'':
        if (st.string == 'L' && ch == '\'' && s[1] == '\'' && s[2] == '\'') {
          s += 2;
          while (s[1] == '\'') s++;
          st.string = 0;
          if (st.depth == 0) return true;
        } else if (st.string == '\'' && ch == '\'') {
          st.string = 0;
          if (st.depth == 0) return true;
        }
        continue;
      default: break;
    }
    if (ch == '#') break;  // a comment to the end of the line
    if (multiline_opens(s)) {
      st.string = (ch == '"') ? 'M' : 'L';
      s += 2;
    } else if (ch == '"' || ch == '\'') {
      st.string = ch;
    } else if (ch == '[' || ch == '{') {
      st.depth++;
    } else if (ch == ']' || ch == '}') {
      if (--st.depth <= 0) return true;
    }
  }
  // one-line strings end with their line (if they did not close, the file is
  // not TOML; that was reported where the value started)
  if (st.string == '"' || st.string == '\'') st.string = 0;
  return st.depth <= 0 && st.string == 0;
}

// The current table is [reserve] (its lines' problems are [reserve]'s).
bool table_is_reserve(const Parser& p) {
  return p.table_known && p.table.parts == 1 && strcmp(p.table.part[0], "reserve") == 0;
}

void parse_header(Parser& p, const char* c) {
  p.in_reserve = false;  // a header's problems are [reserve]'s only when it is [reserve] (twice)
  c++;  // '['
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
  int node = 0;
  bool known = false;
  bool twice = false;
  if (path.parts == 1 && strcmp(path.part[0], "options") == 0) {
    known = true;
    twice = p.seen_table_options || p.dotted_options;
    p.seen_table_options = true;
  } else if (path.parts == 1 && strcmp(path.part[0], "reserve") == 0) {
    known = true;
    twice = p.seen_table_reserve || p.dotted_reserve;
    p.seen_table_reserve = true;
    p.in_reserve = true;
  } else if (path.parts == 1 && strcmp(path.part[0], "node") == 0) {
    known = true;  // [node] with dotted keys "0.arena_reserve = ..."
    twice = p.seen_table_node_parent || p.dotted_node_parent;
    p.seen_table_node_parent = true;
  } else if (path.parts == 2 && strcmp(path.part[0], "node") == 0 && parse_node_index(path.part[1], &node)) {
    known = true;
    uint64_t bit = uint64_t{1} << node;
    twice = ((p.seen_table_node | p.dotted_node) & bit) != 0;
    p.seen_table_node |= bit;
  }
  p.table_known = known;
  if (!known) {
    if (path.parts == 2 && strcmp(path.part[0], "node") == 0) {
      problem(p, "table [node.%s]: nodes are numbered 0 to %d; its keys are ignored", path.part[1], CONFIG_MAX_NODES - 1);
    } else {
      problem(p, "unknown table [%s%s%s]; its keys are ignored (known: [options], [node.N], [reserve])", path.part[0],
              path.parts > 1 ? "." : "", path.parts > 1 ? path.part[1] : "");
    }
  } else if (twice) {
    problem(p, "table [%s%s%s] is defined twice (TOML does not allow that); its keys still apply", path.part[0],
            path.parts > 1 ? "." : "", path.parts > 1 ? path.part[1] : "");
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
      problem(p, "syntax error: %s%s; %s", err, key_text, ends_here ? "line ignored" : "ignored up to its closing bracket");
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
  for (int i = 0; i < p.table.parts && full.parts < KEY_PARTS_MAX; i++) memcpy(full.part[full.parts++], p.table.part[i], KEY_LEN_MAX);
  for (int i = 0; i < key.parts; i++) {
    if (full.parts >= KEY_PARTS_MAX) {
      problem(p, "key '%s' has too many dotted parts; ignored", key.part[0]);
      return;
    }
    memcpy(full.part[full.parts++], key.part[i], KEY_LEN_MAX);
  }
  int node = 0;
  // a dotted key that names a table creates it (TOML: no [header] for it later)
  if (key.parts > 1 || p.table.parts == 0) {
    if (full.parts >= 2 && strcmp(full.part[0], "options") == 0 && p.table.parts == 0) p.dotted_options = true;
    if (full.parts >= 2 && strcmp(full.part[0], "reserve") == 0 && p.table.parts == 0) p.dotted_reserve = true;
    if (full.parts >= 2 && strcmp(full.part[0], "node") == 0 && p.table.parts == 0) p.dotted_node_parent = true;
    if (full.parts >= 3 && strcmp(full.part[0], "node") == 0 && p.table.parts < 2 && parse_node_index(full.part[1], &node)) {
      const uint64_t bit = uint64_t{1} << node;
      // and a dotted key cannot add to a table that has a [header] (TOML)
      if ((p.seen_table_node & bit) != 0) {
        problem(p, "table [node.%d] has a [node.%d] header above; TOML does not allow dotted keys to add to it; the key still applies",
                node, node);
      }
      p.dotted_node |= bit;
    }
  }
  if (full.parts == 2 && strcmp(full.part[0], "options") == 0) {
    key_option(p, full.part[1], v);
  } else if (full.parts == 2 && strcmp(full.part[0], "reserve") == 0) {
    key_reserve(p, full.part[1], v);
  } else if (full.parts == 3 && strcmp(full.part[0], "node") == 0 && parse_node_index(full.part[1], &node)) {
    key_node(p, node, full.part[2], v);
  } else if (full.parts == 1) {
    problem(p, "key '%s' outside a table; put options under [options]; ignored", full.part[0]);
  } else {
    problem(p, "unknown key '%s.%s%s%s'; ignored (known tables: [options], [node.N], [reserve])", full.part[0],
            full.part[1], full.parts > 2 ? "." : "", full.parts > 2 ? full.part[2] : "");
  }
}

// pre: s[len] == 0; `crlf`: the line ended with a line feed (a CR before it
// is part of the line end).
void parse_line(Parser& p, char* s, size_t len, bool crlf) {
  if (crlf && len > 0 && s[len - 1] == '\r') s[--len] = 0;  // CRLF
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

  void finish() {
    if (len > 0 || too_long) end_line(false);  // the last line had no newline
    if (p.skipping) {
      problem(p, "the value that starts in line %d does not end before the end of the file; the lines after it were ignored",
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
  p.table_known = true;  // keys before any header are in the root table (reported as such)
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
// Reads the file at `path` through the parser; an unreadable file is one problem.
int parse_fd_or_report(Parser& p, const char* path) {
  int fd = -1;
  if (path != nullptr) {
    do {
      fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
  }
  if (fd < 0) {
    p.in_reserve = true;  // for mi-reserve, a file it cannot read says nothing of [reserve] either
    problem(p, "cannot read the configuration file: %s; the defaults apply", errno_text(errno));
    return p.problems;
  }
  char chunk[4096];
  char line[CONFIG_LINE_MAX + 1];
  LineFeeder f{p, line};
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      p.in_reserve = true;
      problem(p, "cannot read the configuration file: %s; the rest of it is ignored", errno_text(errno));
      break;
    }
    if (n == 0) break;
    f.feed(chunk, static_cast<size_t>(n));
  }
  close(fd);
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
    warning_message("MIMALLOC_CONFIG is ignored: this program runs set-user-ID or set-group-ID (AT_SECURE); "
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
  for (int n = 0; n < CONFIG_MAX_NODES; n++) {
    if (node_huge_set[n]) output("mimalloc-numa:   [node.%d] reserve_huge_os_pages = %ld\n", n, node_huge_pages[n]);
    if (node_reserve_kib[n] > 0) {
      char size[32];
      format_bytes(size, sizeof(size), static_cast<int64_t>(node_reserve_kib[n]) * 1024);
      output("mimalloc-numa:   [node.%d] arena_reserve = %s\n", n, size);
    }
  }
}

void config_reset_nodes() noexcept {
  for (int n = 0; n < CONFIG_MAX_NODES; n++) {
    node_huge_pages[n] = 0;
    node_huge_set[n] = false;
    node_reserve_kib[n] = 0;
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
