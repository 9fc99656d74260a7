// API conformance: the C++ STL allocators of mimalloc.h (mi_stl_allocator,
// mi_heap_stl_allocator, mi_heap_destroy_stl_allocator).
//
// Validated against Debian's mimalloc 2.0.9: every test here describes its behaviour.
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace {

template <class T>
using mi_vector = std::vector<T, mi_stl_allocator<T>>;
using mi_string = std::basic_string<char, std::char_traits<char>, mi_stl_allocator<char>>;
template <class K, class V>
using mi_map = std::map<K, V, std::less<K>, mi_stl_allocator<std::pair<const K, V>>>;
template <class K, class V>
using mi_umap = std::unordered_map<K, V, std::hash<K>, std::equal_to<K>, mi_stl_allocator<std::pair<const K, V>>>;

using heap_string = std::basic_string<char, std::char_traits<char>, mi_heap_stl_allocator<char>>;

size_t count_blocks(mi_heap_t* heap) {
  size_t n = 0;
  mi_heap_visit_blocks(
      heap, true,
      [](const mi_heap_t*, const mi_heap_area_t*, void* block, size_t, void* arg) {
        if (block != nullptr) ++*static_cast<size_t*>(arg);
        return true;
      },
      &n);
  return n;
}

}  // namespace

TEST(StlAllocator, Traits) {
  static_assert(std::is_same_v<mi_stl_allocator<int>::value_type, int>);
  static_assert(
      std::is_same_v<std::allocator_traits<mi_stl_allocator<int>>::rebind_alloc<double>, mi_stl_allocator<double>>);
  static_assert(std::allocator_traits<mi_stl_allocator<int>>::is_always_equal::value);
  mi_stl_allocator<int> a;
  mi_stl_allocator<double> b(a);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a != b);
  EXPECT_GT(a.max_size(), 0u);
  int* p = a.allocate(10);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(mi_check_owned(p));
  EXPECT_GE(mi_usable_size(p), 10 * sizeof(int));
  a.deallocate(p, 10);
}

TEST(StlAllocator, Vector) {
  mi_vector<int> v;
  for (int i = 0; i < 100000; i++) v.push_back(i);
  EXPECT_TRUE(mi_check_owned(v.data()));
  EXPECT_GE(mi_usable_size(v.data()), v.size() * sizeof(int));
  long long sum = 0;
  for (int x : v) sum += x;
  EXPECT_EQ(sum, 100000LL * 99999LL / 2);
  mi_vector<int> w = v;  // copy
  EXPECT_EQ(w, v);
  EXPECT_NE(w.data(), v.data());
  v.clear();
  v.shrink_to_fit();
  EXPECT_EQ(w.size(), 100000u);
}

TEST(StlAllocator, MapAndUnorderedMap) {
  mi_map<int, std::string> m;
  for (int i = 0; i < 5000; i++) m[i] = std::to_string(i);
  EXPECT_EQ(m.size(), 5000u);
  EXPECT_EQ(m[1234], "1234");
  m.erase(1234);
  EXPECT_EQ(m.count(1234), 0u);

  mi_umap<std::string, int> u;
  for (int i = 0; i < 5000; i++) u["key" + std::to_string(i)] = i;
  EXPECT_EQ(u.size(), 5000u);
  EXPECT_EQ(u["key4321"], 4321);
  u.rehash(100000);
  EXPECT_EQ(u["key17"], 17);
}

TEST(StlAllocator, String) {
  mi_string s(1000, 'x');  // beyond the small-string buffer
  EXPECT_TRUE(mi_check_owned(s.data()));
  s += "tail";
  EXPECT_EQ(s.size(), 1004u);
  EXPECT_EQ(s.substr(1000), "tail");
  mi_string t = s + s;
  EXPECT_EQ(t.size(), 2008u);
}

TEST(HeapStlAllocator, ContainersAllocateFromTheirHeap) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  {
    mi_heap_stl_allocator<int> alloc(heap);  // borrowed heap: not deleted with the allocator
    std::vector<int, mi_heap_stl_allocator<int>> v(alloc);
    for (int i = 0; i < 10000; i++) v.push_back(i);
    EXPECT_TRUE(mi_heap_contains_block(heap, v.data()));
    EXPECT_EQ(v[9999], 9999);

    std::map<int, int, std::less<int>, mi_heap_stl_allocator<std::pair<const int, int>>> m(alloc);
    for (int i = 0; i < 1000; i++) m[i] = -i;
    EXPECT_EQ(m[500], -500);
    EXPECT_EQ(count_blocks(heap), 1000u + 1u);  // the map nodes and the vector buffer

    heap_string s(500, 'h', mi_heap_stl_allocator<char>(alloc));
    EXPECT_TRUE(mi_heap_contains_block(heap, s.data()));
  }
  // containers gone: their blocks were freed, the borrowed heap lives on
  EXPECT_EQ(count_blocks(heap), 0u);
  void* p = mi_heap_malloc(heap, 10);
  EXPECT_NE(p, nullptr);
  mi_free(p);
  mi_heap_delete(heap);
}

TEST(HeapStlAllocator, CopiesShareTheHeapAndCompareEqual) {
  mi_heap_stl_allocator<int> a;
  mi_heap_stl_allocator<int> b = a;
  mi_heap_stl_allocator<double> c(a);  // rebound copy
  mi_heap_stl_allocator<int> d;        // a new heap
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(a == c);
  EXPECT_FALSE(a != c);
  EXPECT_FALSE(a == d);
  EXPECT_TRUE(a != d);

  int* pa = a.allocate(4);
  double* pc = c.allocate(4);
  int* pd = d.allocate(4);
  EXPECT_FALSE(mi_heap_contains_block(mi_heap_get_default(), pa)) << "a heap allocator does not use the default heap";
  a.deallocate(pa, 4);
  c.deallocate(pc, 4);
  d.deallocate(pd, 4);
}

TEST(HeapStlAllocator, OwnedHeapWorksAndOutlivesContainers) {
  std::vector<std::string> keep;
  {
    std::vector<int, mi_heap_stl_allocator<int>> v;  // default-constructed allocator: its own heap
    for (int i = 0; i < 50000; i++) v.push_back(i * 2);
    EXPECT_EQ(v[49999], 99998);
    EXPECT_FALSE(mi_check_owned(v.data())) << "a heap allocator does not use the default heap";
    EXPECT_TRUE(mi_is_in_heap_region(v.data()));
    auto w = v;  // copy shares the heap
    EXPECT_TRUE(w.get_allocator() == v.get_allocator());
    std::list<int, mi_heap_stl_allocator<int>> l(v.get_allocator());
    for (int i = 0; i < 100; i++) l.push_back(i);
    EXPECT_EQ(l.size(), 100u);
  }
  SUCCEED();
}

TEST(HeapDestroyStlAllocator, ContainersWorkAndHeapIsDestroyedAtTheEnd) {
  {
    mi_heap_destroy_stl_allocator<int> alloc;
    std::vector<int, mi_heap_destroy_stl_allocator<int>> v(alloc);
    for (int i = 0; i < 20000; i++) v.push_back(i);
    EXPECT_EQ(v[12345], 12345);
    std::map<int, int, std::less<int>, mi_heap_destroy_stl_allocator<std::pair<const int, int>>> m(alloc);
    for (int i = 0; i < 2000; i++) m[i] = i + 1;
    EXPECT_EQ(m[1999], 2000);
    EXPECT_FALSE(mi_check_owned(v.data()));

    mi_heap_destroy_stl_allocator<char> c(alloc);
    mi_heap_destroy_stl_allocator<int> other;
    EXPECT_TRUE(alloc == c);
    EXPECT_FALSE(alloc != c);
    EXPECT_TRUE(alloc != other);
    EXPECT_FALSE(alloc == other);
    // deallocate is a no-op; everything goes when the last copy of the allocator goes
  }
  SUCCEED();
}

TEST(HeapDestroyStlAllocator, BorrowedHeapIsNotDestroyed) {
  mi_heap_t* heap = mi_heap_new();
  ASSERT_NE(heap, nullptr);
  {
    mi_heap_destroy_stl_allocator<long> alloc(heap);
    std::vector<long, mi_heap_destroy_stl_allocator<long>> v(alloc);
    v.assign(1000, 7L);
    EXPECT_TRUE(mi_heap_contains_block(heap, v.data()));
  }
  // deallocate did nothing, so the vector's (last) buffer is still a live block of the heap
  EXPECT_GE(count_blocks(heap), 1u);
  mi_heap_destroy(heap);
}
