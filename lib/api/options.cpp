// options.cpp: the option functions of mimalloc.h (mi_option_get, _set,
// _enable, ..., mi_options_print) and of mimalloc-numa.h
// (mi_option_set_string, mi_option_get_string): the public face of
// common/options.h, with the checks of the caller's option id.
#include "../common/options.h"
#include "../../include/mimalloc-numa.h"
#include "../common/messages.h"

extern "C" {

namespace {
bool option_valid(mi_option_t option) { return static_cast<int>(option) >= 0 && option < _mi_option_last; }
}  // namespace

long mi_option_get(mi_option_t option) { return option_valid(option) ? mi::option_get(option) : 0; }

long mi_option_get_clamp(mi_option_t option, long min, long max) {
  long v = mi_option_get(option);
  return (v < min) ? min : (v > max ? max : v);
}

size_t mi_option_get_size(mi_option_t option) { return option_valid(option) ? mi::option_get_size(option) : 0; }

void mi_option_set(mi_option_t option, long value) {
  if (static_cast<int>(option) < 0 || option >= _mi_option_last) return;
  const mi::OptionDesc& d = mi::option_desc(option);
  if (d.kind == mi::OptionKind::path) {
    // a long cannot name a file: 0 unsets it, anything else is a mistake
    const char* expected = nullptr;
    if (value == 0) mi::option_set_string(option, "", mi::OptionSource::runtime, nullptr, 0, &expected);
    else
      mi::warning_message(
          "mi_option_set(%s, %ld): this option takes a file name; use mi_option_set_string (0 unsets it)", d.name,
          value);
    return;
  }
  mi::option_set_from(option, value, mi::OptionSource::runtime, nullptr, 0);
  if (!d.runtime && mi::options_startup_done()) {
    mi::verbose_message(
        "mi_option_set(%s): this option is read at start-up (set it in the environment or the "
        "configuration file); the new value changes nothing already set up",
        d.name);
  }
}

void mi_option_set_default(mi_option_t option, long value) {
  if (static_cast<int>(option) < 0 || option >= _mi_option_last) return;
  // Only a value nobody set yet is changed (as in mimalloc).
  if (mi::option_source(option, nullptr, nullptr) != mi::OptionSource::default_) return;
  if (mi::option_desc(option).kind == mi::OptionKind::path) return;  // unset is its only default
  std::atomic_ref<long>(mi::option_values[static_cast<size_t>(option)]).store(value, std::memory_order_relaxed);
}

bool mi_option_is_enabled(mi_option_t option) { return mi_option_get(option) != 0; }

void mi_option_set_enabled(mi_option_t option, bool enable) { mi_option_set(option, enable ? 1 : 0); }

void mi_option_set_enabled_default(mi_option_t option, bool enable) { mi_option_set_default(option, enable ? 1 : 0); }

void mi_option_enable(mi_option_t option) { mi_option_set_enabled(option, true); }

void mi_option_disable(mi_option_t option) { mi_option_set_enabled(option, false); }

void mi_options_print(void) mi_attr_noexcept { mi::options_print_all(); }

bool mi_option_set_string(mi_option_t option, const char* value) mi_attr_noexcept {
  if (!option_valid(option)) return false;
  const mi::OptionDesc& d = mi::option_desc(option);
  const char* expected = nullptr;
  if (!mi::option_set_string(option, value, mi::OptionSource::runtime, nullptr, 0, &expected)) {
    mi::warning_message("mi_option_set_string(%s, \"%s\"): expected %s; the option keeps its value", d.name,
                        value != nullptr ? value : "", expected);
    return false;
  }
  return true;
}

size_t mi_option_get_string(mi_option_t option, char* buf, size_t size) mi_attr_noexcept {
  return option_valid(option) ? mi::option_get_string(option, buf, size) : 0;
}

}  // extern "C"
