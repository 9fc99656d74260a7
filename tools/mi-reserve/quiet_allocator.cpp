// quiet_allocator.cpp: the allocator mi-reserve runs on keeps to its
// built-in defaults: it reads neither the configuration file nor the
// MIMALLOC_* variables.
//
// mi-reserve links the static allocator (for the library's config reader,
// mi::config_read_reserve), and like any program on it that allocator reads
// /etc/mimalloc-numa.toml (or MIMALLOC_CONFIG) and the environment at its
// start-up. Left alone, `show_stats = true` or MIMALLOC_SHOW_STATS=1 made
// every run print a statistics block (`mi-reserve --version` included; 45
// lines in the boot log), `verbose = true` the option dump, each bad line of
// the file was warned about twice (by the allocator, then by mi-reserve), and
// reserve_huge_os_pages made the tool itself claim the 1 GiB pages it exists
// to set aside. mi-reserve reads the file itself and reports each problem in
// it once; the allocator under it has nothing to say.
//
// How: the allocator reads its options once (mi::options_init) at its first
// use. The dynamic loader calls the executable's .preinit_array before any
// other initialiser (libc's, libstdc++'s, the allocator's own constructor),
// when nothing has allocated yet. From there this calls
// mi::options_init_defaults, after which the allocator's start-up reads
// neither the file nor the environment.
//
// A second copy: with the shared library preloaded into mi-reserve as well
// (LD_PRELOAD, /etc/ld.so.preload), the executable's own malloc still wins,
// but that copy initialises itself and would print its (empty) statistics at
// exit. Its start-up has run by the time the executable's constructors do,
// so one of them switches its show_stats and verbose off through its own
// mi_option_set (its start-up messages, if any, are out already).
// tests/mi-reserve (Quiet) checks both from the outside.
#include <dlfcn.h>

#include "common/options.h"

namespace mireserve {

namespace {

void allocator_on_defaults(int, char**, char**) {
  mi::options_init_defaults();
  // Had anything allocated before (it cannot, as the loader orders the
  // initialisers), the options would hold the file's and the environment's
  // values: the two that print are switched off in any case.
  mi::option_set_from(mi_option_show_stats, 0, mi::OptionSource::runtime, nullptr, 0);
  mi::option_set_from(mi_option_verbose, 0, mi::OptionSource::runtime, nullptr, 0);
}

__attribute__((section(".preinit_array"),
               used)) void (*const allocator_on_defaults_entry)(int, char**, char**) = &allocator_on_defaults;

__attribute__((constructor)) void preloaded_copy_quiet() {
  // the next definition after the executable's own: a preloaded library's, if any
  using OptionSet = void (*)(mi_option_t, long);
  auto set = reinterpret_cast<OptionSet>(dlsym(RTLD_NEXT, "mi_option_set"));
  if (set == nullptr) return;
  set(mi_option_show_stats, 0);
  set(mi_option_verbose, 0);
}

}  // namespace

}  // namespace mireserve
