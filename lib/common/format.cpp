// format.cpp: see format.h. A small, allocation-free printf subset.
#include "format.h"

namespace mi {

namespace {

struct Out {
  char* buf;
  size_t size;  // capacity including the NUL
  size_t len;   // characters produced so far (may exceed size: counted, not written)
  void put(char c) {
    if (len + 1 < size) buf[len] = c;
    len++;
  }
  void put_n(char c, int n) {
    for (int i = 0; i < n; i++) put(c);
  }
};

// Converts v to digits in `digits` (reversed); returns the count.
int to_digits(uint64_t v, unsigned base, bool upper, char* digits) {
  const char* set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  int n = 0;
  do {
    digits[n++] = set[v % base];
    v /= base;
  } while (v != 0);
  return n;
}

void put_number(Out& out, uint64_t v, bool negative, unsigned base, bool upper, int width, int precision, bool left,
                bool zero_pad, char sign_char, const char* prefix) {
  char digits[32];
  int n = (precision == 0 && v == 0) ? 0 : to_digits(v, base, upper, digits);
  int prec_zeros = (precision > n) ? precision - n : 0;
  char sign = negative ? '-' : sign_char;
  int prefix_len = 0;
  while (prefix != nullptr && prefix[prefix_len] != 0) prefix_len++;
  int total = n + prec_zeros + (sign != 0 ? 1 : 0) + prefix_len;
  int pad = (width > total) ? width - total : 0;
  if (!left && !(zero_pad && precision < 0)) out.put_n(' ', pad);
  if (sign != 0) out.put(sign);
  for (int i = 0; i < prefix_len; i++) out.put(prefix[i]);
  if (!left && zero_pad && precision < 0) out.put_n('0', pad);
  out.put_n('0', prec_zeros);
  while (n > 0) out.put(digits[--n]);
  if (left) out.put_n(' ', pad);
}

}  // namespace

size_t format_v(char* buf, size_t size, const char* fmt, va_list args) noexcept {
  Out out{buf, size, 0};
  for (const char* p = fmt; *p != 0; p++) {
    if (*p != '%') {
      out.put(*p);
      continue;
    }
    p++;
    bool left = false, zero_pad = false;
    char sign_char = 0;
    for (;; p++) {
      if (*p == '-') left = true;
      else if (*p == '0') zero_pad = true;
      else if (*p == '+') sign_char = '+';
      else if (*p == ' ') {
        if (sign_char == 0) sign_char = ' ';
      } else break;
    }
    int width = 0;
    if (*p == '*') {
      width = va_arg(args, int);
      if (width < 0) {
        left = true;
        width = -width;
      }
      p++;
    } else {
      while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    }
    int precision = -1;
    if (*p == '.') {
      p++;
      precision = 0;
      if (*p == '*') {
        precision = va_arg(args, int);
        p++;
      } else {
        while (*p >= '0' && *p <= '9') precision = precision * 10 + (*p++ - '0');
      }
    }
    // length modifier: 0 = int, 1 = long, 2 = long long, 3 = size_t/ptrdiff_t/intmax,
    // -1 = short, -2 = char (passed as int, converted back)
    int length = 0;
    for (;; p++) {
      if (*p == 'l') length = (length == 1) ? 2 : 1;
      else if (*p == 'z' || *p == 'j' || *p == 't') length = 3;
      else if (*p == 'h') length = (length == -1) ? -2 : -1;
      else break;
    }
    char conv = *p;
    if (conv == 0) break;
    switch (conv) {
      case '%': out.put('%'); break;
      case 'c': {
        char c = static_cast<char>(va_arg(args, int));
        if (!left) out.put_n(' ', width - 1);
        out.put(c);
        if (left) out.put_n(' ', width - 1);
        break;
      }
      case 's': {
        const char* s = va_arg(args, const char*);
        if (s == nullptr) s = "(null)";
        int n = 0;
        while (s[n] != 0 && (precision < 0 || n < precision)) n++;
        if (!left && width > n) out.put_n(' ', width - n);
        for (int i = 0; i < n; i++) out.put(s[i]);
        if (left && width > n) out.put_n(' ', width - n);
        break;
      }
      case 'd':
      case 'i': {
        int64_t v;
        // NOLINTBEGIN(bugprone-branch-clone): long, long long and ptrdiff_t (size_t) are one type on
        // x86-64 and arm64, not on every target: each length modifier reads its own type
        if (length == -1) v = static_cast<short>(va_arg(args, int));
        else if (length == -2) v = static_cast<signed char>(va_arg(args, int));
        else if (length == 0) v = va_arg(args, int);
        else if (length == 1) v = va_arg(args, long);
        else if (length == 2) v = va_arg(args, long long);
        else v = va_arg(args, ptrdiff_t);
        // NOLINTEND(bugprone-branch-clone)
        uint64_t mag = (v < 0) ? (0 - static_cast<uint64_t>(v)) : static_cast<uint64_t>(v);
        put_number(out, mag, v < 0, 10, false, width, precision, left, zero_pad, sign_char, nullptr);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t v;
        // NOLINTBEGIN(bugprone-branch-clone): long, long long and ptrdiff_t (size_t) are one type on
        // x86-64 and arm64, not on every target: each length modifier reads its own type
        if (length == -1) v = static_cast<unsigned short>(va_arg(args, unsigned));
        else if (length == -2) v = static_cast<unsigned char>(va_arg(args, unsigned));
        else if (length == 0) v = va_arg(args, unsigned);
        else if (length == 1) v = va_arg(args, unsigned long);
        else if (length == 2) v = va_arg(args, unsigned long long);
        else v = va_arg(args, size_t);
        // NOLINTEND(bugprone-branch-clone)
        unsigned base = (conv == 'u') ? 10 : 16;
        put_number(out, v, false, base, conv == 'X', width, precision, left, zero_pad, 0, nullptr);
        break;
      }
      case 'p': {
        uintptr_t v = reinterpret_cast<uintptr_t>(va_arg(args, void*));
        put_number(out, v, false, 16, false, width, precision, left, zero_pad, 0, "0x");
        break;
      }
      default:  // unknown conversion: print it verbatim
        out.put('%');
        out.put(conv);
        break;
    }
  }
  if (size > 0) buf[(out.len < size) ? out.len : size - 1] = 0;
  return (out.len < size) ? out.len : (size > 0 ? size - 1 : 0);
}

size_t format(char* buf, size_t size, const char* fmt, ...) noexcept {
  va_list args;
  va_start(args, fmt);
  size_t n = format_v(buf, size, fmt, args);
  va_end(args);
  return n;
}

namespace {

// value with one decimal (rounded) in the largest of units[1..max_unit]
// (each `step` times the one before) that keeps the whole part below `step`;
// below `plain_below`, the exact number with units[0]. The whole and the
// fraction are computed apart so that nothing overflows.
const char* format_scaled(char* buf, size_t size, int64_t value, uint64_t step, uint64_t plain_below,
                          const char* const units[], int max_unit) {
  const bool negative = value < 0;
  const uint64_t mag = negative ? (0 - static_cast<uint64_t>(value)) : static_cast<uint64_t>(value);
  if (mag < plain_below) {
    format(buf, size, "%s%llu%s", negative ? "-" : "", static_cast<unsigned long long>(mag), units[0]);
    return buf;
  }
  int unit = 0;
  uint64_t div = 1;
  while (unit < max_unit && mag / div >= step) {
    div *= step;
    unit++;
  }
  uint64_t whole = mag / div;
  uint64_t tenths = ((mag % div) * 10 + div / 2) / div;
  if (tenths >= 10) {
    whole++;
    tenths -= 10;
  }
  format(buf, size, "%s%llu.%llu%s", negative ? "-" : "", static_cast<unsigned long long>(whole),
         static_cast<unsigned long long>(tenths), units[unit]);
  return buf;
}

}  // namespace

const char* format_bytes(char* buf, size_t size, int64_t bytes) noexcept {
  static constexpr const char* units[] = {" B", " KiB", " MiB", " GiB", " TiB", " PiB"};
  return format_scaled(buf, size, bytes, 1024, 1024, units, 5);
}

const char* format_count(char* buf, size_t size, int64_t count) noexcept {
  static constexpr const char* suffix[] = {"", " K", " M", " G", " T"};
  return format_scaled(buf, size, count, 1000, 10000, suffix, 4);
}

}  // namespace mi
