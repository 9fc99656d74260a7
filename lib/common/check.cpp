// check.cpp: the assertion failure handler (defines.h) and the walkers'
// reports (check.h). Print without allocating. Beside the layers, as
// defines.h that declares assert_fail: every layer asserts.
#include "check.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "defines.h"
#include "format.h"
#include "sys.h"

namespace mi {

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* func) noexcept {
  char buf[512];
  size_t n = format(buf, sizeof(buf), "mimalloc-numa: assertion failed: %s:%d (%s): %s\n", file, line, func, expr);
  os_write_stderr(buf, n);
  abort();
}

bool invalid(Invalid* why, const char* fmt, ...) noexcept {
  char text[sizeof(Invalid::text)];
  va_list args;
  va_start(args, fmt);
  format_v(text, sizeof(text), fmt, args);
  va_end(args);
  if (why != nullptr) {
    memcpy(why->text, text, sizeof(text));
  } else {
    char line[sizeof(text) + 64];
    const size_t n = format(line, sizeof(line), "mimalloc-numa: invariant broken: %s\n", text);
    os_write_stderr(line, n);
  }
  return false;
}

}  // namespace mi
