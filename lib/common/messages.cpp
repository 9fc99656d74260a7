// messages.cpp: see messages.h.
#include "messages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <cstdarg>

#include "format.h"
#include "options.h"
#include "sys.h"

namespace mi {

namespace {

void output_stderr(const char* msg, void*) { os_write_stderr(msg, strlen(msg)); }

std::atomic<mi_output_fun*> output_fun{nullptr};
std::atomic<void*> output_arg{nullptr};
std::atomic<mi_error_fun*> error_fun{nullptr};
std::atomic<void*> error_arg{nullptr};
std::atomic<long> warning_count{0};
std::atomic<long> error_count{0};
std::atomic<bool> once_flags[static_cast<int>(Once::count)];

void emit(const char* prefix, const char* fmt, va_list args) {
  char buf[MESSAGE_MAX];
  size_t n = 0;
  if (prefix != nullptr) n = format(buf, sizeof(buf), "%s", prefix);
  n += format_v(buf + n, sizeof(buf) - n, fmt, args);
  // every message ends with exactly one newline
  if (n == 0 || buf[n - 1] != '\n') {
    if (n + 1 >= sizeof(buf)) n = sizeof(buf) - 2;
    buf[n++] = '\n';
    buf[n] = 0;
  }
  output_to(nullptr, nullptr, buf);
}

bool show_errors() { return option_is_enabled(mi_option_show_errors) || option_is_enabled(mi_option_verbose); }

// Whether an error message is shown: errors are, and max_errors (counted
// here) is not reached yet.
bool error_shown() {
  if (!show_errors()) return false;
  const long max = option_get(mi_option_max_errors);
  return max < 0 || error_count.fetch_add(1, std::memory_order_relaxed) < max;
}

// An error: its message when `show`, then the registered error function.
void error_v(int err, bool show, const char* fmt, va_list args) {
  if (show) emit("mimalloc-numa: error: ", fmt, args);
  mi_error_fun* fun = error_fun.load(std::memory_order_acquire);
  if (fun != nullptr) fun(err, error_arg.load(std::memory_order_acquire));
}

}  // namespace

void output_get(mi_output_fun** out, void** arg) noexcept {
  mi_output_fun* f = output_fun.load(std::memory_order_acquire);
  *out = (f != nullptr) ? f : &output_stderr;
  *arg = (f != nullptr) ? output_arg.load(std::memory_order_acquire) : nullptr;
}

void output_to(mi_output_fun* out, void* arg, const char* msg) noexcept {
  if (msg == nullptr) return;
  if (out == nullptr) output_get(&out, &arg);
  out(msg, arg);
}

void output(const char* fmt, ...) noexcept {
  char buf[MESSAGE_MAX];
  va_list args;
  va_start(args, fmt);
  format_v(buf, sizeof(buf), fmt, args);
  va_end(args);
  output_to(nullptr, nullptr, buf);
}

void verbose_message(const char* fmt, ...) noexcept {
  if (!option_is_enabled(mi_option_verbose)) return;
  va_list args;
  va_start(args, fmt);
  emit("mimalloc-numa: ", fmt, args);
  va_end(args);
}

void warning_message(const char* fmt, ...) noexcept {
  if (!show_errors()) return;
  long max = option_get(mi_option_max_warnings);
  if (max >= 0 && warning_count.fetch_add(1, std::memory_order_relaxed) >= max) return;
  va_list args;
  va_start(args, fmt);
  emit("mimalloc-numa: warning: ", fmt, args);
  va_end(args);
}

void error_message(int err, const char* fmt, ...) noexcept {
  va_list args;
  va_start(args, fmt);
  error_v(err, error_shown(), fmt, args);
  va_end(args);
}

void fatal_message(int err, const char* fmt, ...) noexcept {
  va_list args;
  va_start(args, fmt);
  error_v(err, true, fmt, args);
  va_end(args);
  abort();
}

void error_quiet(int err, const char* fmt, ...) noexcept {
  va_list args;
  va_start(args, fmt);
  error_v(err, option_is_enabled(mi_option_verbose), fmt, args);
  va_end(args);
}

bool once(Once kind) noexcept { return !once_flags[static_cast<int>(kind)].exchange(true, std::memory_order_relaxed); }

const char* errno_text(int err) noexcept {
  const char* s = strerrordesc_np(err);  // static text, no locale, no allocation
  return (s != nullptr) ? s : "unknown error";
}

}  // namespace mi

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------
extern "C" {

void mi_register_output(mi_output_fun* out, void* arg) mi_attr_noexcept {
  mi::output_arg.store(arg, std::memory_order_release);
  mi::output_fun.store(out, std::memory_order_release);
}

void mi_register_error(mi_error_fun* fun, void* arg) {
  mi::error_arg.store(arg, std::memory_order_release);
  mi::error_fun.store(fun, std::memory_order_release);
}

}  // extern "C"
