// messages.h: verbose, warning and error messages; the output callback.
//
// Owns: where text goes (stderr, or the mi_register_output callback), the
// warning/error counters (max_warnings, max_errors), one-time warnings, and
// the mi_register_error callback. Every message starts with "mimalloc-numa: ".
// Callable from every layer, including os; calls only os and format.
// Thread-safe: the callbacks and counters are atomics; a message is formatted
// on the stack (at most MESSAGE_MAX bytes) and written with one call.
#pragma once

#include <cstddef>

#include "../../include/mimalloc.h"

namespace mi {

constexpr size_t MESSAGE_MAX = 512;

// Unconditional output to the current output (used by statistics).
void output(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
// Writes msg as-is to `out` (or the registered/default output if out is null).
void output_to(mi_output_fun* out, void* arg, const char* msg) noexcept;

// Shown when the verbose option is on.
void verbose_message(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
// Shown when show_errors or verbose is on, at most max_warnings times.
void warning_message(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
// Shown when show_errors or verbose is on, at most max_errors times; calls the
// registered error callback with `err` (an errno value) in any case.
void error_message(int err, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));
// Misuse detected in secure mode (heap/misuse.cpp): prints the error whatever
// show_errors and max_errors say, calls the error callback with `err`, then
// aborts the process.
[[noreturn]] void fatal_message(int err, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));
// An error the caller expects and that needs no remedy (a request that can
// never be met: glibc and jemalloc print nothing for it): shown only when
// verbose is on; calls the registered error callback with `err` in any case.
void error_quiet(int err, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

// One-time warnings: kinds of trouble reported once per process.
enum class Once : int {
  free_foreign,    // free of a pointer that is not ours
  free_interior,   // free of a pointer inside one of our blocks (not its start)
  free_corrupt,    // inconsistent page state found while freeing
  double_free,     // a block freed twice (detected)
  numa_fallback,   // memory came from another node than asked for
  huge_fallback,   // fewer huge pages than asked
  large_fallback,  // 2 MiB pages asked for (allow_large_os_pages) but not given
  count
};
// True exactly once per kind per process (and after fork, once more in the child
// only if it was never reported before the fork).
bool once(Once kind) noexcept;

// A short, allocation-free description of an errno value ("Cannot allocate memory").
const char* errno_text(int err) noexcept;

// The current output callback (the default is stderr).
void output_get(mi_output_fun** out, void** arg) noexcept;

}  // namespace mi
