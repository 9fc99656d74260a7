// A C++ program built against an installed (or subproject) mimalloc-numa
// (see consumer.c). Prints one line ending in OK, or what failed (exit 1).
#include <mimalloc-numa.h>
#include <mimalloc.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {
int failed(const char* what) {
  std::fprintf(stderr, "consumer.cpp: FAILED: %s\n", what);
  return 1;
}
}  // namespace

int main() {
  if (mi_numa_version() != MI_NUMA_VERSION)
    return failed("mi_numa_version() differs from the header's MI_NUMA_VERSION");
  // Linked with -lmimalloc-numa, operator new and delete are the library's.
  auto n = std::make_unique<long[]>(1000);
  if (!mi_is_in_heap_region(n.get())) return failed("operator new[] is not mimalloc-numa's");
  std::vector<std::string> v;
  for (int i = 0; i < 1000; i++) v.push_back(std::string(40, static_cast<char>('a' + i % 26)));
  if (!mi_is_in_heap_region(v.data()) || !mi_is_in_heap_region(v.back().data())) return failed("std::allocator");
  // mimalloc's STL allocator (mi_stl_allocator) from mimalloc.h
  std::map<int, int, std::less<int>, mi_stl_allocator<std::pair<const int, int>>> m;
  for (int i = 0; i < 1000; i++) m[i] = i * i;
  if (m.size() != 1000 || m[999] != 999 * 999) return failed("mi_stl_allocator");
  std::printf("consumer.cpp: mimalloc-numa %d, %zu strings, %zu map entries: OK\n", mi_numa_version(), v.size(),
              m.size());
  return 0;
}
