// format.h: printf-style formatting into caller buffers, without allocating.
//
// Owns: the formatter every message and statistics line goes through. glibc's
// vsnprintf may call malloc (wide strings, positional arguments, large
// precision), which would recurse into the allocator; this one never does.
// Supports %s %c %d %i %u %x %X %p %%, the length modifiers l ll z j t h hh,
// flags '-' '0' '+' ' ', field width and precision (also as '*').
// Thread-safe: no state.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>

namespace mi {

// Writes at most `size` bytes including the terminating NUL (when size > 0).
// Returns the number of characters written, excluding the NUL (truncated output
// is cut, never overrun).
size_t format_v(char* buf, size_t size, const char* fmt, va_list args) noexcept;
size_t format(char* buf, size_t size, const char* fmt, ...) noexcept __attribute__((format(printf, 3, 4)));

// Formats a byte count for humans: "512 B", "64.0 KiB", "1.5 GiB".
// Writes into buf (at least 16 bytes) and returns it.
const char* format_bytes(char* buf, size_t size, int64_t bytes) noexcept;

// A count with a K/M/G suffix for large numbers: "12", "12.3 K", "4.1 M".
const char* format_count(char* buf, size_t size, int64_t count) noexcept;

}  // namespace mi
