// new_handler.cpp: calls the std::new_handler for the nothrow forms of new.
// They must return NULL when the handler throws std::bad_alloc (as
// libstdc++'s do), so this is the one file of the library compiled with
// exception handling (lib/meson.build): the catch below.
//
// Catching needs the C++ runtime (the personality routine, __cxa_begin_catch,
// __cxa_end_catch, std::bad_alloc's type_info, libgcc_s's _Unwind_Resume),
// and the library must not depend on libstdc++ (new.cpp): the references are
// weak (a weak reference adds no NEEDED entry under --as-needed). They resolve in a
// C++ program, which has libstdc++; in a C program they stay null, and are
// never used: without libstdc++ nothing can install a new_handler, so this
// function is never called there (new.cpp calls it with an installed one).
// (A C program that loads libstdc++ later, with dlopen, keeps them null: a
// handler's exception then passes through, as it did before this file.)
#include <new>

#include "new_inline.h"

__asm__(
    ".weak __gxx_personality_v0\n"
    ".weak __cxa_begin_catch\n"
    ".weak __cxa_end_catch\n"
    ".weak _ZTISt9bad_alloc\n"
    ".weak _Unwind_Resume\n");  // libgcc_s: passing other exceptions on

namespace mi {

// Other exceptions pass through (a new_handler may only throw bad_alloc or a
// type derived from it, or not return).
bool new_handler_call_nothrow(std::new_handler h) {
  try {
    h();
  } catch (const std::bad_alloc&) {
    return false;
  }
  return true;
}

}  // namespace mi
