// config_toml.cpp: see config_toml.h.
#include "config_toml.h"

#include <string.h>

#include "format.h"

namespace mi::toml {

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

namespace {

// Appends the UTF-8 encoding of code point cp; false if it is not a scalar value.
bool put_utf8(Value& v, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  char tmp[4];
  size_t n;
  if (cp < 0x80) {
    tmp[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    tmp[0] = static_cast<char>(0xC0 | (cp >> 6));
    tmp[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    tmp[0] = static_cast<char>(0xE0 | (cp >> 12));
    tmp[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    tmp[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    tmp[0] = static_cast<char>(0xF0 | (cp >> 18));
    tmp[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    tmp[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    tmp[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
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

}  // namespace

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

namespace {

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

}  // namespace

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

// The bytes that start a multi-byte UTF-8 sequence, by range: the sequence's
// length and the range of its second byte (the later ones are 0x80-0xBF).
// C0, C1 and F5-FF start none.
struct Utf8Lead {
  unsigned char first_min, first_max;
  unsigned char length;
  unsigned char second_min, second_max;
};
constexpr Utf8Lead UTF8_LEADS[] = {
    {0xC2, 0xDF, 2, 0x80, 0xBF},  // U+0080-07FF
    {0xE0, 0xE0, 3, 0xA0, 0xBF},  // U+0800-0FFF (E0 80-9F: overlong)
    {0xE1, 0xEC, 3, 0x80, 0xBF},  // U+1000-CFFF
    {0xED, 0xED, 3, 0x80, 0x9F},  // U+D000-D7FF (ED A0-BF: surrogates)
    {0xEE, 0xEF, 3, 0x80, 0xBF},  // U+E000-FFFF
    {0xF0, 0xF0, 4, 0x90, 0xBF},  // U+10000-3FFFF (F0 80-8F: overlong)
    {0xF1, 0xF3, 4, 0x80, 0xBF},  // U+40000-FFFFF
    {0xF4, 0xF4, 4, 0x80, 0x8F},  // U+100000-10FFFF (F4 90-BF: beyond)
};

// The length of the UTF-8 sequence at s (at most `left` bytes), or 0 if it is
// not valid UTF-8 (overlong forms, surrogates and code points beyond U+10FFFF
// are not: TOML files are UTF-8, and toml++ rejects them).
size_t utf8_length(const unsigned char* s, size_t left) {
  const unsigned char b = s[0];
  if (b < 0x80) return 1;
  for (const Utf8Lead& lead : UTF8_LEADS) {
    if (b < lead.first_min || b > lead.first_max) continue;
    if (left < lead.length || s[1] < lead.second_min || s[1] > lead.second_max) return 0;
    for (size_t i = 2; i < lead.length; i++) {
      if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    }
    return lead.length;
  }
  return 0;
}

// A multi-line string ("""...""" or '''...''') starts at c.
bool multiline_opens(const char* c) { return (*c == '"' || *c == '\'') && c[1] == *c && c[2] == *c; }

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
      case 'L':
      case '\'': {
        // inside a string: basic ones ('"', 'M') have escapes; a multi-line
        // one ('M', 'L') closes on three quotes only
        const char quote = (st.string == 'M' || st.string == '"') ? '"' : '\'';
        if (quote == '"' && ch == '\\') {
          if (s[1] != 0) s++;  // the escaped character (a line-ending backslash: the string goes on, if multi-line)
          continue;
        }
        if (ch != quote) continue;
        if (st.string == 'M' || st.string == 'L') {
          if (s[1] != quote || s[2] != quote) continue;  // a quote inside the string
          s += 2;
          while (s[1] == quote) s++;  // up to two quotes before the closing ones belong to the string
        }
        st.string = 0;
        if (st.depth == 0) return true;
        continue;
      }
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

// Appends a key part to buf as TOML writes it: bare when it can be, else
// quoted with '"' and '\' escaped (control characters are escaped later,
// by problem()). Returns the new length.
size_t put_key_part(char* buf, size_t size, size_t n, const char* part) {
  bool bare = part[0] != 0;
  for (const char* c = part; *c != 0; c++) bare = bare && is_bare(*c);
  if (bare) return n + format(buf + n, size - n, "%s", part);
  if (n + 1 < size) buf[n++] = '"';
  for (const char* c = part; *c != 0 && n + 2 < size; c++) {
    if (*c == '"' || *c == '\\') buf[n++] = '\\';
    buf[n++] = *c;
  }
  if (n + 1 < size) buf[n++] = '"';
  buf[n] = 0;
  return n;
}

// The first `parts` parts of path, dotted: "node.0", "program.\"python3.11\"".
const char* path_text(const KeyPath& path, int parts, char* buf, size_t size) {
  size_t n = 0;
  buf[0] = 0;
  for (int i = 0; i < parts; i++) {
    if (i > 0 && n + 1 < size) {
      buf[n++] = '.';
      buf[n] = 0;
    }
    n = put_key_part(buf, size, n, path.part[i]);
  }
  return buf;
}

}  // namespace mi::toml
