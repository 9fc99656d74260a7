// check.cpp: the assertion failure handler (defines.h). Prints without
// allocating and aborts. Beside the layers, as defines.h that declares it:
// every layer asserts.
#include <stdlib.h>

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

}  // namespace mi
