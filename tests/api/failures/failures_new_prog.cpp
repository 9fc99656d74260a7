// failures_new_prog.cpp: operator new's failures in a C++ program, through the
// standard operators only (no mimalloc header), run under LD_PRELOAD by
// failures_test.py, and without it (libstdc++ over glibc).
//
//   failures_new_prog impossible   requests that can never be met, with a
//                                  new_handler installed that must not be called
//   failures_new_prog oom          under an address-space limit of what the
//                                  process has plus 256 MiB: new of 1 GiB without
//                                  a handler, with a handler that throws
//                                  std::bad_alloc (nothrow new: NULL), with one
//                                  that gives up on its second call
// Each prints "<what> <outcome>" lines; the driver compares them.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {

template <class T>
T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

int g_calls = 0;
void returning_handler() {
  if (++g_calls >= 1000) std::set_new_handler(nullptr);  // never hang, even where it is called
}
void throwing_handler() {
  ++g_calls;
  throw std::bad_alloc();
}
void second_call_gives_up() {
  if (++g_calls >= 2) std::set_new_handler(nullptr);
}

template <class F>
void expect_throw(const char* what, F f) {
  try {
    void* p = f();
    std::printf("%s returned %s\n", what, p != nullptr ? "a block" : "NULL");
    ::operator delete(opaque(p));  // (whichever new made it: free() underneath, ours and glibc's)
  } catch (const std::bad_array_new_length&) {
    std::printf("%s threw bad_array_new_length\n", what);
  } catch (const std::bad_alloc&) {
    std::printf("%s threw bad_alloc\n", what);
  }
}

void expect_null(const char* what, void* p) {
  std::printf("%s returned %s\n", what, p != nullptr ? "a block" : "NULL");
  ::operator delete(opaque(p));
}

int impossible() {
  g_calls = 0;
  std::set_new_handler(&returning_handler);
  expect_throw("new(SIZE_MAX)", [] { return ::operator new(opaque(SIZE_MAX)); });
  expect_throw("new[](2^62)", [] { return ::operator new[](opaque(size_t{1} << 62)); });
  expect_throw("new(SIZE_MAX, align 64)", [] { return ::operator new(opaque(SIZE_MAX), std::align_val_t(64)); });
  expect_throw("new char[SIZE_MAX/2]", [] { return static_cast<void*>(new char[opaque(SIZE_MAX / 2)]); });
  expect_null("new(SIZE_MAX, nothrow)", ::operator new(opaque(SIZE_MAX), std::nothrow));
  expect_null("new[](SIZE_MAX/2, align 4096, nothrow)",
              ::operator new[](opaque(SIZE_MAX / 2), std::align_val_t(4096), std::nothrow));
  std::set_new_handler(nullptr);
  std::printf("handler calls %d\n", g_calls);
  return 0;
}

size_t address_space() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f == nullptr || std::fscanf(f, "%lu", &pages) != 1) {
    std::fprintf(stderr, "failures_new_prog: cannot read /proc/self/statm\n");
    std::exit(2);
  }
  std::fclose(f);
  return static_cast<size_t>(pages) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

int oom() {
  std::printf("start\n");
  std::fflush(stdout);
  struct rlimit lim;
  lim.rlim_cur = lim.rlim_max = address_space() + (size_t{256} << 20);
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    std::perror("setrlimit");
    return 2;
  }
  const size_t gib = opaque(size_t{1} << 30);
  expect_throw("new(1GiB)", [&] { return ::operator new(gib); });
  expect_null("new(1GiB, nothrow)", ::operator new(gib, std::nothrow));
  g_calls = 0;
  std::set_new_handler(&throwing_handler);
  expect_null("new(1GiB, nothrow) throwing handler", ::operator new(gib, std::nothrow));
  expect_null("new[](1GiB, align 64, nothrow) throwing handler",
              ::operator new[](gib, std::align_val_t(64), std::nothrow));
  expect_throw("new(1GiB) throwing handler", [&] { return ::operator new(gib); });
  std::printf("handler calls %d\n", g_calls);
  g_calls = 0;
  std::set_new_handler(&second_call_gives_up);
  expect_throw("new(1GiB) handler giving up", [&] { return ::operator new(gib); });
  std::printf("handler calls %d\n", g_calls);
  std::set_new_handler(nullptr);
  expect_null("new(100)", ::operator new(opaque(size_t{100})));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc == 2 && std::strcmp(argv[1], "impossible") == 0) return impossible();
  if (argc == 2 && std::strcmp(argv[1], "oom") == 0) return oom();
  std::fprintf(stderr, "usage: failures_new_prog impossible|oom\n");
  return 2;
}
