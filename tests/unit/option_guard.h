// option_guard.h: OptionGuard, for unit tests that change an option of the
// library directly (mi::option_set...): the option's value and where it came
// from (default, environment, file, API) are put back when the guard goes
// out of scope, so that the next test sees the option as it was.
#pragma once

#include <mimalloc.h>

#include "common/options.h"

namespace unit {

struct OptionGuard {
  mi_option_t o;
  long v;
  mi::OptionSource src;
  explicit OptionGuard(mi_option_t opt)
      : o(opt), v(mi::option_get(opt)), src(mi::option_source(opt, nullptr, nullptr)) {}
  ~OptionGuard() { mi::option_set_from(o, v, src, nullptr, 0); }
  OptionGuard(const OptionGuard&) = delete;
  OptionGuard& operator=(const OptionGuard&) = delete;
};

}  // namespace unit
