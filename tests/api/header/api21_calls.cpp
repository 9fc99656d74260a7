// api21_calls.cpp: the same program in C++ (api21_calls.c compiled as C++:
// every function, macro and enumerator through a C++ compiler, noexcept and
// [[nodiscard]] included), plus what <mimalloc.h> has for C++ only: the STL
// allocators, MI_HAS_HEAP_STL_ALLOCATOR, and mi_new's std::bad_alloc.
// Built against the installed header by header_test.py in C++11, 17 and 20.
#define API21_NO_MAIN
#include "api21_calls.c"

#include <cstdio>
#include <map>
#include <new>
#include <string>
#include <vector>

namespace {

#if !defined(MI_HAS_HEAP_STL_ALLOCATOR) || MI_HAS_HEAP_STL_ALLOCATOR != 1
#error "MI_HAS_HEAP_STL_ALLOCATOR is not 1"
#endif

// The heap of an allocator, seen through the block it gave.
bool in_heap_of(const void* p, mi_heap_t* heap) { return mi_heap_contains_block(heap, p); }

void stl_allocators() {
  // mi_stl_allocator: the default heap of the calling thread
  std::vector<int, mi_stl_allocator<int>> v;
  for (int i = 0; i < 10000; i++) v.push_back(i);
  CHECK(v.size() == 10000 && v[9999] == 9999 && mi_is_in_heap_region(v.data()));
  CHECK(in_heap_of(v.data(), mi_heap_get_default()));
  mi_stl_allocator<int> a;
  mi_stl_allocator<long> b(a);  // rebound copies compare equal
  CHECK(a == mi_stl_allocator<int>(b) && !(a != mi_stl_allocator<int>(b)));
  std::map<int, std::string, std::less<int>, mi_stl_allocator<std::pair<const int, std::string>>> m;
  for (int i = 0; i < 100; i++) m[i] = std::string(40, static_cast<char>('a' + i % 26));
  CHECK(m.size() == 100 && m[25] == std::string(40, 'z'));

  // mi_heap_stl_allocator: a heap of its own, shared by its copies
  mi_heap_stl_allocator<int> ha;
  std::vector<int, mi_heap_stl_allocator<int>> hv(ha);
  for (int i = 0; i < 1000; i++) hv.push_back(i);
  CHECK(hv[999] == 999 && !in_heap_of(hv.data(), mi_heap_get_default()));
  mi_heap_stl_allocator<int> hb;  // another heap
  CHECK(ha == mi_heap_stl_allocator<int>(ha) && ha != hb);
  ha.collect(true);
  // over a heap of the program's: blocks land in it, the heap is not deleted
  mi_heap_t* mine = mi_heap_new();
  {
    mi_heap_stl_allocator<double> mine_alloc(mine);
    std::vector<double, mi_heap_stl_allocator<double>> on_mine(mine_alloc);
    on_mine.resize(500, 1.5);
    CHECK(in_heap_of(on_mine.data(), mine) && on_mine[499] == 1.5);
  }
  CHECK(mi_heap_malloc(mine, 8) != nullptr);  // still there
  mi_heap_destroy(mine);

  // mi_heap_destroy_stl_allocator: deallocate does nothing; the last copy destroys the heap
  {
    mi_heap_destroy_stl_allocator<int> da;
    std::vector<int, mi_heap_destroy_stl_allocator<int>> dv(da);
    for (int i = 0; i < 1000; i++) dv.push_back(i);
    CHECK(dv[500] == 500 && !in_heap_of(dv.data(), mi_heap_get_default()));
  }
}

void new_throws() {
  // mi_new and friends raise std::bad_alloc where mi_malloc returns NULL
  bool thrown = false;
  try {
    void* p = mi_new(opaque(SIZE_MAX / 2));
    mi_free(p);
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);
  thrown = false;
  try {
    void* p = mi_new_n(opaque(SIZE_MAX / 4), 16);  // the product overflows
    mi_free(p);
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);
  thrown = false;
  void* q = mi_new(16);
  try {
    q = mi_new_realloc(q, opaque(SIZE_MAX / 2));
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown && q != nullptr);  // the block stays
  mi_free(q);
  static_assert(noexcept(mi_malloc(1)), "mi_malloc is noexcept");
  static_assert(!noexcept(mi_new(1)), "mi_new may throw");
}

}  // namespace

int main() {
  const int c_failures = api21_c_calls();
  mi_register_error(&api21_error, &error_count);  // the calls below fail on purpose
  stl_allocators();
  new_throws();
  mi_register_error(nullptr, nullptr);
  std::printf("api21_calls.cpp (C++ %ld): %d checks, %d failed: %s\n", static_cast<long>(__cplusplus), api21_checks,
              api21_failures, api21_failures == 0 ? "OK" : "FAILED");
  (void)c_failures;
  return api21_failures == 0 ? 0 : 1;
}
