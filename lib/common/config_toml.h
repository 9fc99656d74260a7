// config_toml.h: the TOML lexer of the configuration reader (config.cpp):
// values, keys, strings, numbers, comments, UTF-8, and the skipping of a
// value that spans lines. What the keys and tables mean is config.cpp's.
//
// Owns: reading one piece of a line (a value, a dotted key, a comment) into
// fixed-size buffers; writing keys and values back as text for messages.
// Invariants: never allocates and never reads past the NUL that ends a line;
// a function that returns a reason (const char*) leaves *c where it stopped,
// and the value or key is usable only when it returned nullptr.
// Thread-safety: no state of its own (the caller's buffers only).
#pragma once

#include <cstddef>
#include <cstdint>

#include "config.h"

namespace mi::toml {

enum class VType { boolean, integer, string };

struct Value {
  VType type;
  bool b;
  long long i;
  size_t len;
  char s[CONFIG_LINE_MAX];
};

// [program.NAME.node.N] key: five parts (a key path longer than that names
// no known table anyway)
constexpr int KEY_PARTS_MAX = 5;
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

// Copies s into dst (size > 0) with control characters as TOML escapes ("\n",
// "\u001b"), never cut inside an escape; returns the length (messages: a
// file must not split one into two lines or send escapes to the terminal).
size_t escape_controls(char* dst, size_t size, const char* s);

bool is_ws(char c);
bool is_bare(char c);  // a character of a bare key
const char* skip_ws(const char* c);

// Describes a value for messages: string "x", integer 5, boolean true.
const char* describe(const Value& v, char* buf, size_t size);

// A string (basic or literal, one line) at *c; on success *c is past it.
// Returns nullptr on success or the reason.
const char* parse_string(const char*& c, Value& v);
// A value at *c (boolean, integer or string). nullptr on success, else why not.
const char* parse_value(const char*& c, Value& v);
// A key (bare or quoted, dotted) at *c into path; nullptr on success.
const char* parse_key(const char*& c, KeyPath& path);
// After a value or header: only white space or a comment may follow.
bool rest_is_comment(const char* c);

// The length of the UTF-8 sequence at s (at most `left` bytes), or 0 if it is
// not valid UTF-8.
size_t utf8_length(const unsigned char* s, size_t left);

// A multi-line string ("""...""" or '''...''') starts at c.
bool multiline_opens(const char* c);
// Scans the text of one line of a value that spans lines; true where the
// value ends, false when it goes on in the next line (config.cpp skips it).
bool span_scan(SpanSkip& st, const char* s);

// Appends a key part to buf (of `size` bytes, `n` used) as TOML writes it:
// bare when it can be, else quoted. Returns the new length.
size_t put_key_part(char* buf, size_t size, size_t n, const char* part);
// The first `parts` parts of path, dotted, as TOML writes them: "node.0",
// "program.\"python3.11\"".
const char* path_text(const KeyPath& path, int parts, char* buf, size_t size);

}  // namespace mi::toml
