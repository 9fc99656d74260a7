/* api21_calls.c: a program written for mimalloc 2.1 that uses every function,
   macro, type and enumerator of its <mimalloc.h> (the list:
   mimalloc21-names.txt), each with a check of what it did, built against the
   header as installed and linked with -lmimalloc-numa (header_test.py).

   Written in the common subset of C99 and C++11: api21_calls.cpp compiles
   this same file as C++ (API21_NO_MAIN) and adds the C++ allocators.
   Prints one line per run ending in "OK", or each failed check (exit 1). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mmap's MAP_ANONYMOUS, realpath, setenv: what a consumer on Linux defines */
#endif
#include <mimalloc.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int api21_checks = 0;
static int api21_failures = 0;

static void api21_check(int ok, const char* what, int line) {
  api21_checks++;
  if (!ok) {
    api21_failures++;
    fprintf(stderr, "api21_calls.c:%d: check failed: %s\n", line, what);
  }
}
#define CHECK(cond) api21_check((cond) ? 1 : 0, #cond, __LINE__)

static const size_t MiB = (size_t)1 << 20;

/* A count the compiler cannot see: calls that must fail on overflow would
   otherwise be flagged at compile time (-Walloc-size-larger-than). */
static size_t opaque(size_t v) {
  volatile size_t x = v;
  return x;
}

static int all_bytes(const void* p, size_t n, unsigned char v) {
  const unsigned char* b = (const unsigned char*)p;
  for (size_t i = 0; i < n; i++) {
    if (b[i] != v) return 0;
  }
  return 1;
}
static int aligned_at(const void* p, size_t alignment, size_t offset) {
  return p != NULL && ((uintptr_t)p + offset) % alignment == 0;
}

/* ---- the attribute macros, on functions of the program's own (as a
   wrapper library would declare them) */
typedef void(mi_cdecl api21_void_fun)(void);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* api21_alloc(size_t n) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size(1);
mi_decl_nodiscard mi_decl_export mi_decl_restrict void* api21_alloc_array(size_t n,
                                                                          size_t size) mi_attr_noexcept mi_attr_malloc
    mi_attr_alloc_size2(1, 2);
mi_decl_nodiscard mi_decl_export void* api21_alloc_aligned(size_t size, size_t alignment) mi_attr_noexcept
    mi_attr_alloc_size(1) mi_attr_alloc_align(2);
void* api21_alloc(size_t n) mi_attr_noexcept { return mi_malloc(n); }
void* api21_alloc_array(size_t n, size_t size) mi_attr_noexcept { return mi_mallocn(n, size); }
void* api21_alloc_aligned(size_t size, size_t alignment) mi_attr_noexcept { return mi_malloc_aligned(size, alignment); }
static int api21_void_called = 0;
static void api21_void(void) { api21_void_called++; }

static void attribute_macros(void) {
  CHECK(MI_MALLOC_VERSION >= 200 && MI_MALLOC_VERSION < 300);
  char* a = (char*)api21_alloc(40);
  char* b = (char*)api21_alloc_array(4, 10);
  char* c = (char*)api21_alloc_aligned(40, 256);
  CHECK(a != NULL && b != NULL && mi_usable_size(a) >= 40 && mi_usable_size(b) >= 40);
  CHECK(aligned_at(c, 256, 0));
  mi_free(a);
  mi_free(b);
  mi_free(c);
  api21_void_fun* f = &api21_void;
  f();
  CHECK(api21_void_called == 1);
}

/* ---- output, errors and deferred free: captured */
static char out_buf[1 << 16];
static size_t out_len = 0;
static void api21_output(const char* msg, void* arg) {
  CHECK(arg == (void*)&out_len);
  size_t n = strlen(msg);
  if (n > sizeof(out_buf) - 1 - out_len) n = sizeof(out_buf) - 1 - out_len;
  memcpy(out_buf + out_len, msg, n);
  out_len += n;
  out_buf[out_len] = 0;
}
static void out_reset(void) {
  out_len = 0;
  out_buf[0] = 0;
}

static int error_count = 0;
static int last_error = 0;
static void api21_error(int err, void* arg) {
  CHECK(arg == (void*)&error_count);
  error_count++;
  last_error = err;
}

static int deferred_calls = 0;
static unsigned long long deferred_heartbeat = 0;
static void api21_deferred(bool force, unsigned long long heartbeat, void* arg) {
  (void)force;
  CHECK(arg == (void*)&deferred_calls);
  CHECK(heartbeat >= deferred_heartbeat);
  deferred_heartbeat = heartbeat;
  deferred_calls++;
}

static void malloc_interface(void) {
  char* p = (char*)mi_malloc(100);
  CHECK(p != NULL && mi_usable_size(p) >= 100);
  memset(p, 1, 100);
  p = (char*)mi_realloc(p, 1000);
  CHECK(p != NULL && all_bytes(p, 100, 1) && mi_usable_size(p) >= 1000);
  /* mi_expand grows in place or not at all */
  void* e = mi_expand(p, mi_usable_size(p));
  CHECK(e == p);
  CHECK(mi_expand(p, opaque(64 * MiB)) == NULL);
  mi_free(p);
  char* z = (char*)mi_calloc(100, 10);
  CHECK(z != NULL && all_bytes(z, 1000, 0));
  mi_free(z);
  char* s = mi_strdup("mimalloc 2.1");
  CHECK(s != NULL && strcmp(s, "mimalloc 2.1") == 0 && mi_is_in_heap_region(s));
  mi_free(s);
  char* n = mi_strndup("mimalloc-numa", 8);
  CHECK(n != NULL && strcmp(n, "mimalloc") == 0);
  mi_free(n);
  char* r = mi_realpath("/usr/../", NULL);
  CHECK(r != NULL && strcmp(r, "/") == 0 && mi_is_in_heap_region(r));
  mi_free(r);
  char path[PATH_MAX];
  CHECK(mi_realpath("/.", path) == path && strcmp(path, "/") == 0);
  mi_free(NULL);
}

static void extended(void) {
  char* p = (char*)mi_malloc_small(MI_SMALL_SIZE_MAX);
  CHECK(MI_SMALL_SIZE_MAX == MI_SMALL_WSIZE_MAX * sizeof(void*));
  CHECK(p != NULL && mi_usable_size(p) >= MI_SMALL_SIZE_MAX);
  memset(p, 0xAB, MI_SMALL_SIZE_MAX);
  mi_free(p);
  char* z = (char*)mi_zalloc_small(MI_SMALL_SIZE_MAX);
  CHECK(z != NULL && all_bytes(z, MI_SMALL_SIZE_MAX, 0));
  mi_free(z);
  char* big = (char*)mi_zalloc(3 * MiB);
  CHECK(big != NULL && all_bytes(big, 3 * MiB, 0));
  mi_free(big);
  long* a = (long*)mi_mallocn(100, sizeof(long));
  CHECK(a != NULL && mi_usable_size(a) >= 100 * sizeof(long));
  for (int i = 0; i < 100; i++) a[i] = i;
  a = (long*)mi_reallocn(a, 1000, sizeof(long));
  CHECK(a != NULL && a[99] == 99 && mi_usable_size(a) >= 1000 * sizeof(long));
  mi_free(a);
  /* overflow of count * size: NULL, an EOVERFLOW error */
  error_count = 0;
  CHECK(mi_mallocn(opaque(SIZE_MAX / 2), 4) == NULL);
  CHECK(error_count >= 1 && last_error == EOVERFLOW);
  char* f = (char*)mi_malloc(10);
  f = (char*)mi_reallocf(f, 20);
  CHECK(f != NULL && mi_usable_size(f) >= 20);
  CHECK(mi_reallocf(f, opaque(SIZE_MAX / 2)) == NULL); /* and f is freed */
  CHECK(mi_good_size(100) >= 100 && mi_good_size(100) == mi_good_size(mi_good_size(100)));
  char* g = (char*)mi_malloc(100);
  CHECK(mi_usable_size(g) == mi_good_size(100));
  mi_free(g);
}

static void* api21_thread(void* arg) {
  (void)arg;
  mi_thread_init();
  char* p = (char*)mi_malloc(1000);
  CHECK(p != NULL);
  memset(p, 2, 1000);
  mi_thread_stats_print_out(&api21_output, &out_len);
  mi_free(p);
  mi_thread_done();
  return NULL;
}

static void internals(void) {
  CHECK(mi_version() == MI_MALLOC_VERSION);
  mi_process_init(); /* done already; a second call is harmless */
  /* the registered output gets the statistics and the option list */
  mi_register_output(&api21_output, &out_len);
  out_reset();
  mi_stats_print(NULL);
  CHECK(out_len > 100);
  out_reset();
  mi_options_print();
  CHECK(strstr(out_buf, "show_errors") != NULL && strstr(out_buf, "arena_reserve") != NULL);
  mi_register_output(NULL, NULL);
  out_reset();
  mi_stats_print_out(&api21_output, &out_len);
  CHECK(out_len > 100);
  mi_stats_reset();
  mi_stats_merge();
  /* a thread of its own: init, allocate, its statistics, done */
  out_reset();
  pthread_t t;
  CHECK(pthread_create(&t, NULL, &api21_thread, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(out_len > 0);
  /* deferred free: called from the allocation slow path, the heartbeat rising */
  mi_register_deferred_free(&api21_deferred, &deferred_calls);
  void* blocks[2000];
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 2000; i++) blocks[i] = mi_malloc((size_t)(16 + (i % 64) * 16));
    for (int i = 0; i < 2000; i++) mi_free(blocks[i]);
    mi_collect(true);
  }
  mi_register_deferred_free(NULL, NULL);
  CHECK(deferred_calls > 0);
  mi_collect(false);
  size_t elapsed = 0, user = 0, sys = 0, rss = 0, peak_rss = 0, commit = 0, peak_commit = 0, faults = 0;
  mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
  CHECK(rss > 0 && peak_rss >= rss && peak_commit >= commit && commit > 0);
}

static void aligned(void) {
  char* p = (char*)mi_malloc_aligned(100, 128);
  CHECK(aligned_at(p, 128, 0) && mi_usable_size(p) >= 100);
  memset(p, 3, 100);
  p = (char*)mi_realloc_aligned(p, 5000, 128);
  CHECK(aligned_at(p, 128, 0) && all_bytes(p, 100, 3));
  mi_free(p);
  p = (char*)mi_malloc_aligned_at(100, 64, 16);
  CHECK(aligned_at(p, 64, 16));
  p = (char*)mi_realloc_aligned_at(p, 3000, 64, 16);
  CHECK(aligned_at(p, 64, 16));
  mi_free(p);
  p = (char*)mi_zalloc_aligned(1000, 4096);
  CHECK(aligned_at(p, 4096, 0) && all_bytes(p, 1000, 0));
  mi_free(p);
  p = (char*)mi_zalloc_aligned_at(1000, 256, 8);
  CHECK(aligned_at(p, 256, 8) && all_bytes(p, 1000, 0));
  mi_free(p);
  p = (char*)mi_calloc_aligned(10, 100, 512);
  CHECK(aligned_at(p, 512, 0) && all_bytes(p, 1000, 0));
  mi_free(p);
  p = (char*)mi_calloc_aligned_at(10, 100, 512, 24);
  CHECK(aligned_at(p, 512, 24) && all_bytes(p, 1000, 0));
  mi_free(p);
}

/* heap visiting: counts blocks and checks each area (an area's `used` is its
   count of blocks in use: together, every block visited) */
struct visit_info {
  size_t blocks;
  size_t areas;
  size_t used;
  int tag;
  int areas_ok;
};
static bool api21_visit(const mi_heap_t* heap, const mi_heap_area_t* area, void* block, size_t block_size, void* arg) {
  struct visit_info* v = (struct visit_info*)arg;
  (void)heap;
  if (block == NULL) {
    v->areas++;
    v->used += area->used;
    const int ok = area->blocks != NULL && area->committed <= area->reserved &&
                   area->used * area->block_size <= area->committed && area->full_block_size >= area->block_size &&
                   area->heap_tag == v->tag;
    if (!ok) v->areas_ok = 0;
  } else {
    v->blocks++;
    if (block_size != area->block_size) v->areas_ok = 0;
  }
  return true;
}

static void heaps(void) {
  mi_heap_t* backing = mi_heap_get_backing();
  mi_heap_t* heap = mi_heap_new();
  CHECK(backing != NULL && heap != NULL && heap != backing);
  mi_heap_t* old = mi_heap_set_default(heap);
  CHECK(mi_heap_get_default() == heap);
  void* via_default = mi_malloc(64);
  CHECK(mi_heap_contains_block(heap, via_default));
  mi_free(via_default);
  CHECK(mi_heap_set_default(old) == heap && mi_heap_get_default() == old);

  char* p[20];
  size_t n = 0;
  p[n++] = (char*)mi_heap_malloc(heap, 100);
  p[n++] = (char*)mi_heap_zalloc(heap, 200);
  CHECK(all_bytes(p[n - 1], 200, 0));
  p[n++] = (char*)mi_heap_calloc(heap, 10, 30);
  CHECK(all_bytes(p[n - 1], 300, 0));
  p[n++] = (char*)mi_heap_mallocn(heap, 10, 40);
  p[n++] = (char*)mi_heap_malloc_small(heap, 48);
  p[n++] = (char*)mi_heap_zalloc_small(heap, 56);
  CHECK(all_bytes(p[n - 1], 56, 0));
  p[n++] = mi_heap_strdup(heap, "heap");
  CHECK(strcmp(p[n - 1], "heap") == 0);
  p[n++] = mi_heap_strndup(heap, "heap-numa", 4);
  CHECK(strcmp(p[n - 1], "heap") == 0);
  p[n++] = mi_heap_realpath(heap, "/usr/..", NULL);
  CHECK(p[n - 1] != NULL && strcmp(p[n - 1], "/") == 0);
  p[n++] = (char*)mi_heap_malloc_aligned(heap, 100, 256);
  CHECK(aligned_at(p[n - 1], 256, 0));
  p[n++] = (char*)mi_heap_malloc_aligned_at(heap, 100, 256, 8);
  CHECK(aligned_at(p[n - 1], 256, 8));
  p[n++] = (char*)mi_heap_zalloc_aligned(heap, 100, 128);
  CHECK(aligned_at(p[n - 1], 128, 0) && all_bytes(p[n - 1], 100, 0));
  p[n++] = (char*)mi_heap_zalloc_aligned_at(heap, 100, 128, 8);
  CHECK(aligned_at(p[n - 1], 128, 8) && all_bytes(p[n - 1], 100, 0));
  p[n++] = (char*)mi_heap_calloc_aligned(heap, 10, 10, 64);
  CHECK(aligned_at(p[n - 1], 64, 0) && all_bytes(p[n - 1], 100, 0));
  p[n++] = (char*)mi_heap_calloc_aligned_at(heap, 10, 10, 64, 16);
  CHECK(aligned_at(p[n - 1], 64, 16) && all_bytes(p[n - 1], 100, 0));
  for (size_t i = 0; i < n; i++) {
    CHECK(p[i] != NULL && mi_heap_contains_block(heap, p[i]) && mi_heap_check_owned(heap, p[i]));
    CHECK(!mi_check_owned(p[i])); /* mi_check_owned: owned by the default heap */
  }
  CHECK(!mi_heap_contains_block(backing, p[0]) && !mi_heap_check_owned(backing, p[0]));
  void* own = mi_malloc(24);
  CHECK(mi_check_owned(own) && mi_heap_check_owned(mi_heap_get_default(), own) && !mi_check_owned((char*)own + 1));
  mi_free(own);
  memset(p[0], 5, 100);
  p[0] = (char*)mi_heap_realloc(heap, p[0], 1000);
  CHECK(all_bytes(p[0], 100, 5));
  p[1] = (char*)mi_heap_reallocn(heap, p[1], 10, 100);
  CHECK(all_bytes(p[1], 200, 0));
  p[2] = (char*)mi_heap_reallocf(heap, p[2], 600);
  CHECK(p[2] != NULL && all_bytes(p[2], 300, 0));
  p[9] = (char*)mi_heap_realloc_aligned(heap, p[9], 5000, 256);
  CHECK(aligned_at(p[9], 256, 0));
  p[10] = (char*)mi_heap_realloc_aligned_at(heap, p[10], 5000, 256, 8);
  CHECK(aligned_at(p[10], 256, 8));
  struct visit_info v = {0, 0, 0, 0, 1};
  CHECK(mi_heap_visit_blocks(heap, true, &api21_visit, &v));
  CHECK(v.blocks == n && v.used == n && v.areas >= 1 && v.areas_ok);
  mi_heap_collect(heap, true);
  /* delete: the live blocks move to the backing heap and stay valid */
  mi_heap_delete(heap);
  CHECK(all_bytes(p[0], 100, 5) && mi_heap_contains_block(backing, p[0]));
  for (size_t i = 0; i < n; i++) mi_free(p[i]);
  /* destroy: every block goes at once */
  mi_heap_t* scratch = mi_heap_new();
  for (int i = 0; i < 1000; i++) CHECK(mi_heap_malloc(scratch, (size_t)(i % 500 + 1)) != NULL);
  mi_heap_destroy(scratch);
  /* a heap with a tag: its areas say so */
  mi_heap_t* tagged = mi_heap_new_ex(7, true, 0);
  CHECK(tagged != NULL);
  for (int i = 0; i < 10; i++) CHECK(mi_heap_malloc(tagged, 32) != NULL);
  struct visit_info tv = {0, 0, 0, 7, 1};
  CHECK(mi_heap_visit_blocks(tagged, true, &api21_visit, &tv) && tv.blocks == 10 && tv.used == 10 && tv.areas_ok);
  mi_heap_destroy(tagged);
}

static void rezalloc(void) {
  char* p = (char*)mi_zalloc(100);
  p = (char*)mi_rezalloc(p, 5000);
  CHECK(p != NULL && all_bytes(p, 5000, 0));
  memset(p, 1, 10);
  mi_free(p);
  p = (char*)mi_calloc(10, 10);
  p = (char*)mi_recalloc(p, 100, 10);
  CHECK(p != NULL && all_bytes(p, 1000, 0));
  mi_free(p);
  p = (char*)mi_zalloc_aligned(100, 64);
  p = (char*)mi_rezalloc_aligned(p, 3000, 64);
  CHECK(aligned_at(p, 64, 0) && all_bytes(p, 3000, 0));
  p = (char*)mi_rezalloc_aligned_at(p, 6000, 64, 8);
  CHECK(aligned_at(p, 64, 8) && all_bytes(p, 6000, 0));
  mi_free(p);
  p = (char*)mi_calloc_aligned(10, 10, 128);
  p = (char*)mi_recalloc_aligned(p, 50, 10, 128);
  CHECK(aligned_at(p, 128, 0) && all_bytes(p, 500, 0));
  p = (char*)mi_recalloc_aligned_at(p, 90, 10, 128, 8);
  CHECK(aligned_at(p, 128, 8) && all_bytes(p, 900, 0));
  mi_free(p);
  mi_heap_t* heap = mi_heap_new();
  p = (char*)mi_heap_zalloc(heap, 10);
  p = (char*)mi_heap_rezalloc(heap, p, 4000);
  CHECK(mi_heap_contains_block(heap, p) && all_bytes(p, 4000, 0));
  p = (char*)mi_heap_recalloc(heap, p, 800, 10);
  CHECK(mi_heap_contains_block(heap, p) && all_bytes(p, 8000, 0));
  p = (char*)mi_heap_rezalloc_aligned(heap, p, 9000, 256);
  CHECK(aligned_at(p, 256, 0) && all_bytes(p, 9000, 0));
  p = (char*)mi_heap_rezalloc_aligned_at(heap, p, 9500, 256, 16);
  CHECK(aligned_at(p, 256, 16) && all_bytes(p, 9500, 0));
  p = (char*)mi_heap_recalloc_aligned(heap, p, 1000, 10, 512);
  CHECK(aligned_at(p, 512, 0) && all_bytes(p, 10000, 0));
  p = (char*)mi_heap_recalloc_aligned_at(heap, p, 1100, 10, 512, 32);
  CHECK(aligned_at(p, 512, 32) && all_bytes(p, 11000, 0));
  CHECK(mi_heap_contains_block(heap, p));
  mi_free(p);
  mi_heap_delete(heap);
}

/* memory of the program's own, aligned, for mi_manage_os_memory */
static void* map_aligned(size_t size, size_t alignment) {
  char* m =
      (char*)mmap(NULL, size + alignment, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == (char*)MAP_FAILED) return NULL;
  return m + (alignment - (uintptr_t)m % alignment) % alignment;
}

static int inside(const void* p, size_t n, const void* start, size_t size) {
  return (const char*)p >= (const char*)start && (const char*)p + n <= (const char*)start + size;
}

static void arenas(void) {
  int local = 0;
  char* p = (char*)mi_malloc(100);
  CHECK(mi_is_in_heap_region(p) && !mi_is_in_heap_region(&local));
  /* linked with -lmimalloc-numa: malloc itself is the allocator's */
  CHECK(mi_is_redirected());
  void* m = malloc(10);
  CHECK(mi_is_in_heap_region(m));
  free(m);
  mi_free(p);
  /* huge pages: asking for none is a successful no-op (pages of the host are not taken) */
  CHECK(mi_reserve_huge_os_pages_interleave(0, 0, 0) == 0);
  CHECK(mi_reserve_huge_os_pages_at(0, 0, 0) == 0);
  mi_arena_id_t none = 99;
  CHECK(mi_reserve_huge_os_pages_at_ex(0, 0, 0, true, &none) == 0);
  size_t reserved = 99;
  CHECK(mi_reserve_huge_os_pages(0, 0.5, &reserved) == 0 && reserved == 0);
  CHECK(mi_reserve_os_memory(32 * MiB, true, false) == 0);
  void* region = map_aligned(64 * MiB, 64 * MiB);
  CHECK(region != NULL && mi_manage_os_memory(region, 64 * MiB, true, false, true, -1));
  /* an exclusive arena and a heap that allocates only there */
  mi_arena_id_t id = -1;
  CHECK(mi_reserve_os_memory_ex(64 * MiB, true, false, true, &id) == 0);
  size_t size = 0;
  void* start = mi_arena_area(id, &size);
  CHECK(start != NULL && size >= 64 * MiB);
  mi_heap_t* heap = mi_heap_new_in_arena(id);
  CHECK(heap != NULL);
  void* q = mi_heap_malloc(heap, 1000);
  void* big = mi_heap_malloc(heap, 8 * MiB);
  CHECK(inside(q, 1000, start, size) && inside(big, 8 * MiB, start, size));
  mi_free(q);
  mi_free(big);
  mi_heap_delete(heap);
  void* region2 = map_aligned(64 * MiB, 64 * MiB);
  mi_arena_id_t id2 = -1;
  CHECK(region2 != NULL && mi_manage_os_memory_ex(region2, 64 * MiB, true, false, true, -1, true, &id2));
  size_t size2 = 0;
  CHECK(mi_arena_area(id2, &size2) == region2 && size2 == 64 * MiB && id2 != id);
  mi_heap_t* heap2 = mi_heap_new_ex(0, true, id2);
  void* r = mi_heap_malloc(heap2, 4096);
  CHECK(inside(r, 4096, region2, 64 * MiB));
  mi_heap_destroy(heap2);
  /* the arenas, shown through the registered output */
  mi_register_output(&api21_output, &out_len);
  out_reset();
  mi_debug_show_arenas(true, true, true);
  mi_register_output(NULL, NULL);
  CHECK(out_len > 0);
}

/* ---- the typed macros: each allocates an object (or n) of its type */
typedef struct api21_pair {
  int a;
  double b;
} api21_pair;

static void typed_macros(void) {
  api21_pair* one = mi_malloc_tp(api21_pair);
  CHECK(one != NULL && mi_usable_size(one) >= sizeof(api21_pair));
  one->a = 1;
  one->b = 2.0;
  api21_pair* zero = mi_zalloc_tp(api21_pair);
  CHECK(zero != NULL && zero->a == 0 && zero->b == 0.0 && all_bytes(zero, sizeof(api21_pair), 0));
  api21_pair* ten = mi_calloc_tp(api21_pair, 10);
  CHECK(ten != NULL && all_bytes(ten, 10 * sizeof(api21_pair), 0));
  api21_pair* many = mi_mallocn_tp(api21_pair, 10);
  CHECK(many != NULL && mi_usable_size(many) >= 10 * sizeof(api21_pair));
  for (int i = 0; i < 10; i++) many[i].a = i;
  many = mi_reallocn_tp(many, api21_pair, 1000);
  CHECK(many != NULL && many[9].a == 9 && mi_usable_size(many) >= 1000 * sizeof(api21_pair));
  ten = mi_recalloc_tp(ten, api21_pair, 500);
  CHECK(ten != NULL && all_bytes(ten, 500 * sizeof(api21_pair), 0));
  /* counted forms check the product: NULL (EOVERFLOW), never a short block */
  error_count = 0;
  CHECK(mi_calloc_tp(api21_pair, opaque(SIZE_MAX / 8)) == NULL &&
        mi_mallocn_tp(api21_pair, opaque(SIZE_MAX / 8)) == NULL);
  CHECK(error_count >= 2 && last_error == EOVERFLOW);
  mi_free(one);
  mi_free(zero);
  mi_free(ten);
  mi_free(many);

  mi_heap_t* heaps[2];
  heaps[0] = mi_heap_new();
  heaps[1] = NULL;
  int k = 0;
  api21_pair* h1 = mi_heap_malloc_tp(heaps[k++], api21_pair); /* each argument evaluated once */
  CHECK(k == 1 && h1 != NULL && mi_heap_contains_block(heaps[0], h1));
  api21_pair* hz = mi_heap_zalloc_tp(heaps[0], api21_pair);
  CHECK(hz != NULL && all_bytes(hz, sizeof(api21_pair), 0) && mi_heap_contains_block(heaps[0], hz));
  api21_pair* hc = mi_heap_calloc_tp(heaps[0], api21_pair, 20);
  CHECK(hc != NULL && all_bytes(hc, 20 * sizeof(api21_pair), 0));
  api21_pair* hm = mi_heap_mallocn_tp(heaps[0], api21_pair, 20);
  CHECK(hm != NULL && mi_heap_contains_block(heaps[0], hm));
  hm[19].a = 19;
  k = 0;
  hm = mi_heap_reallocn_tp(heaps[k++], hm, api21_pair, 400);
  CHECK(k == 1 && hm != NULL && hm[19].a == 19 && mi_usable_size(hm) >= 400 * sizeof(api21_pair));
  hc = mi_heap_recalloc_tp(heaps[0], hc, api21_pair, 300);
  CHECK(hc != NULL && all_bytes(hc, 300 * sizeof(api21_pair), 0) && mi_heap_contains_block(heaps[0], hc));
  error_count = 0;
  CHECK(mi_heap_calloc_tp(heaps[0], api21_pair, opaque(SIZE_MAX / 8)) == NULL);
  CHECK(error_count >= 1 && last_error == EOVERFLOW);
  mi_free(h1);
  mi_free(hz);
  mi_free(hc);
  mi_free(hm);
  mi_heap_delete(heaps[0]);
}

/* ---- options: the enumerators a program passes are mimalloc's numbers */
#define API21_STATIC_CHECK(cond, name) typedef char api21_static_##name[(cond) ? 1 : -1]
API21_STATIC_CHECK(mi_option_show_errors == 0, show_errors);
API21_STATIC_CHECK(mi_option_show_stats == 1, show_stats);
API21_STATIC_CHECK(mi_option_verbose == 2, verbose);
API21_STATIC_CHECK(mi_option_eager_commit == 3, eager_commit);
API21_STATIC_CHECK(mi_option_arena_eager_commit == 4, arena_eager_commit);
API21_STATIC_CHECK(mi_option_purge_decommits == 5, purge_decommits);
API21_STATIC_CHECK(mi_option_allow_large_os_pages == 6, allow_large_os_pages);
API21_STATIC_CHECK(mi_option_reserve_huge_os_pages == 7, reserve_huge_os_pages);
API21_STATIC_CHECK(mi_option_reserve_huge_os_pages_at == 8, reserve_huge_os_pages_at);
API21_STATIC_CHECK(mi_option_reserve_os_memory == 9, reserve_os_memory);
API21_STATIC_CHECK(mi_option_deprecated_segment_cache == 10, deprecated_segment_cache);
API21_STATIC_CHECK(mi_option_deprecated_page_reset == 11, deprecated_page_reset);
API21_STATIC_CHECK(mi_option_abandoned_page_purge == 12, abandoned_page_purge);
API21_STATIC_CHECK(mi_option_deprecated_segment_reset == 13, deprecated_segment_reset);
API21_STATIC_CHECK(mi_option_eager_commit_delay == 14, eager_commit_delay);
API21_STATIC_CHECK(mi_option_purge_delay == 15, purge_delay);
API21_STATIC_CHECK(mi_option_use_numa_nodes == 16, use_numa_nodes);
API21_STATIC_CHECK(mi_option_disallow_os_alloc == 17, disallow_os_alloc);
API21_STATIC_CHECK(mi_option_os_tag == 18, os_tag);
API21_STATIC_CHECK(mi_option_max_errors == 19, max_errors);
API21_STATIC_CHECK(mi_option_max_warnings == 20, max_warnings);
API21_STATIC_CHECK(mi_option_max_segment_reclaim == 21, max_segment_reclaim);
API21_STATIC_CHECK(mi_option_destroy_on_exit == 22, destroy_on_exit);
API21_STATIC_CHECK(mi_option_arena_reserve == 23, arena_reserve);
API21_STATIC_CHECK(mi_option_arena_purge_mult == 24, arena_purge_mult);
API21_STATIC_CHECK(mi_option_purge_extend_delay == 25, purge_extend_delay);
API21_STATIC_CHECK(mi_option_abandoned_reclaim_on_free == 26, abandoned_reclaim_on_free);
API21_STATIC_CHECK(mi_option_disallow_arena_alloc == 27, disallow_arena_alloc);
API21_STATIC_CHECK(mi_option_retry_on_oom == 28, retry_on_oom);
API21_STATIC_CHECK(mi_option_visit_abandoned == 29, visit_abandoned);
API21_STATIC_CHECK(mi_option_guarded_min == 30, guarded_min);
API21_STATIC_CHECK(mi_option_guarded_max == 31, guarded_max);
API21_STATIC_CHECK(mi_option_guarded_precise == 32, guarded_precise);
API21_STATIC_CHECK(mi_option_guarded_sample_rate == 33, guarded_sample_rate);
API21_STATIC_CHECK(mi_option_guarded_sample_seed == 34, guarded_sample_seed);
API21_STATIC_CHECK(mi_option_target_segments_per_thread == 35, target_segments_per_thread);
API21_STATIC_CHECK(mi_option_generic_collect == 36, generic_collect);
API21_STATIC_CHECK(_mi_option_last > mi_option_generic_collect, last);
API21_STATIC_CHECK(mi_option_large_os_pages == mi_option_allow_large_os_pages, large_os_pages);
API21_STATIC_CHECK(mi_option_eager_region_commit == mi_option_arena_eager_commit, eager_region_commit);
API21_STATIC_CHECK(mi_option_reset_decommits == mi_option_purge_decommits, reset_decommits);
API21_STATIC_CHECK(mi_option_reset_delay == mi_option_purge_delay, reset_delay);
API21_STATIC_CHECK(mi_option_abandoned_page_reset == mi_option_abandoned_page_purge, abandoned_page_reset);
API21_STATIC_CHECK(mi_option_limit_os_alloc == mi_option_disallow_os_alloc, limit_os_alloc);

static void options(void) {
  /* options without effect on this program's memory: os_tag (macOS), the guarded ones (guarded builds) */
  const long os_tag = mi_option_get(mi_option_os_tag);
  mi_option_set(mi_option_os_tag, 42);
  CHECK(mi_option_get(mi_option_os_tag) == 42);
  CHECK(mi_option_get_clamp(mi_option_os_tag, 0, 10) == 10 && mi_option_get_clamp(mi_option_os_tag, 50, 60) == 50);
  mi_option_set(mi_option_os_tag, os_tag);
  mi_option_set_default(mi_option_os_tag, 77); /* set above: the default no longer counts */
  CHECK(mi_option_get(mi_option_os_tag) == os_tag);
  mi_option_set_default(mi_option_guarded_sample_seed, 5); /* never set: the default applies */
  CHECK(mi_option_get(mi_option_guarded_sample_seed) == 5);
  mi_option_set_enabled_default(mi_option_guarded_precise, true);
  CHECK(mi_option_is_enabled(mi_option_guarded_precise));
  mi_option_disable(mi_option_guarded_precise);
  CHECK(!mi_option_is_enabled(mi_option_guarded_precise));
  mi_option_enable(mi_option_guarded_precise);
  CHECK(mi_option_is_enabled(mi_option_guarded_precise));
  mi_option_set_enabled(mi_option_guarded_precise, false);
  CHECK(!mi_option_is_enabled(mi_option_guarded_precise) && mi_option_get(mi_option_guarded_precise) == 0);
  CHECK(mi_option_get_size(mi_option_arena_reserve) == (size_t)mi_option_get(mi_option_arena_reserve) * 1024);
  CHECK(mi_option_get(mi_option_reset_delay) == mi_option_get(mi_option_purge_delay)); /* a legacy name */
  CHECK(mi_option_is_enabled(mi_option_show_errors));
}

/* ---- the posix, Unix, Windows and C++ forms */
static void posix_forms(void) {
  char* p = (char*)mi_malloc(100);
  CHECK(mi_malloc_size(p) == mi_usable_size(p) && mi_malloc_usable_size(p) == mi_usable_size(p));
  CHECK(mi_malloc_good_size(100) == mi_good_size(100));
  CHECK(mi__expand(p, 100) == p && mi__expand(p, opaque(64 * MiB)) == NULL);
  mi_cfree(p);
  int local = 0;
  mi_cfree(&local); /* not a block of ours: ignored */
  void* a = NULL;
  CHECK(mi_posix_memalign(&a, 256, 1000) == 0 && aligned_at(a, 256, 0));
  mi_free(a);
  void* untouched = &local;
  CHECK(mi_posix_memalign(&untouched, 3, 100) == EINVAL && untouched == &local);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* m = mi_memalign(512, 100);
  void* v = mi_valloc(100);
  void* pv = mi_pvalloc(100);
  void* al = mi_aligned_alloc(64, 128);
  CHECK(aligned_at(m, 512, 0) && aligned_at(v, page, 0) && aligned_at(pv, page, 0) && mi_usable_size(pv) >= page &&
        aligned_at(al, 64, 0));
  mi_free(m);
  mi_free(v);
  mi_free(pv);
  mi_free(al);
  int* arr = (int*)mi_reallocarray(NULL, 10, sizeof(int));
  CHECK(arr != NULL);
  arr[9] = 9;
  arr = (int*)mi_reallocarray(arr, 1000, sizeof(int));
  CHECK(arr != NULL && arr[9] == 9);
  errno = 0;
  CHECK(mi_reallocarray(arr, opaque(SIZE_MAX / 2), 4) == NULL && errno == ENOMEM);
  void* rp = arr;
  CHECK(mi_reallocarr(&rp, 2000, sizeof(int)) == 0 && rp != NULL && ((int*)rp)[9] == 9);
  CHECK(mi_reallocarr(&rp, opaque(SIZE_MAX / 2), 4) == ENOMEM && rp != NULL); /* the block stays */
  mi_free(rp);
  char* rc = (char*)mi_calloc_aligned(10, 10, 64);
  rc = (char*)mi_aligned_recalloc(rc, 100, 10, 64);
  CHECK(aligned_at(rc, 64, 0) && all_bytes(rc, 1000, 0));
  rc = (char*)mi_aligned_offset_recalloc(rc, 200, 10, 64, 8);
  CHECK(aligned_at(rc, 64, 8) && all_bytes(rc, 2000, 0));
  mi_free(rc);
  const unsigned short wide[] = {'w', 'i', 'd', 'e', 0};
  unsigned short* wd = mi_wcsdup(wide);
  CHECK(wd != NULL && wd != wide && memcmp(wd, wide, sizeof(wide)) == 0);
  mi_free(wd);
  const unsigned char mb[] = "multi";
  unsigned char* md = mi_mbsdup(mb);
  CHECK(md != NULL && memcmp(md, mb, sizeof(mb)) == 0);
  mi_free(md);
  CHECK(setenv("API21_CALLS_VAR", "value", 1) == 0);
  char* env = NULL;
  size_t env_len = 0;
  CHECK(mi_dupenv_s(&env, &env_len, "API21_CALLS_VAR") == 0 && env != NULL && strcmp(env, "value") == 0 &&
        env_len == 5);
  mi_free(env);
  const unsigned short wname[] = {'A', 'P', 'I', '2', '1', '_', 'C', 'A', 'L', 'L', 'S', '_', 'V', 'A', 'R', 0};
  unsigned short* wenv = NULL;
  size_t wenv_len = 0;
  CHECK(mi_wdupenv_s(&wenv, &wenv_len, wname) == 0 && wenv != NULL && wenv_len == 5 && wenv[0] == 'v' && wenv[5] == 0);
  mi_free(wenv);
  unsetenv("API21_CALLS_VAR");
  env = (char*)1;
  CHECK(mi_dupenv_s(&env, &env_len, "API21_CALLS_VAR") == 0 && env == NULL && env_len == 0);
  char* fs = (char*)mi_malloc(300);
  CHECK(fs != NULL);
  mi_free_size(fs, 300);
  char* fa = (char*)mi_malloc_aligned(300, 128);
  CHECK(aligned_at(fa, 128, 0));
  mi_free_size_aligned(fa, 300, 128);
  fa = (char*)mi_malloc_aligned(300, 256);
  mi_free_aligned(fa, 256);
  /* the C++ forms, called from C with sizes that succeed */
  void* n1 = mi_new(100);
  void* n2 = mi_new_aligned(100, 256);
  void* n3 = mi_new_nothrow(100);
  void* n4 = mi_new_aligned_nothrow(100, 512);
  void* n5 = mi_new_n(10, 100);
  CHECK(n1 != NULL && aligned_at(n2, 256, 0) && n3 != NULL && aligned_at(n4, 512, 0) && mi_usable_size(n5) >= 1000);
  memset(n1, 6, 100);
  n1 = mi_new_realloc(n1, 10000);
  CHECK(n1 != NULL && all_bytes(n1, 100, 6));
  n5 = mi_new_reallocn(n5, 100, 100);
  CHECK(n5 != NULL && mi_usable_size(n5) >= 10000);
  CHECK(mi_new_nothrow(opaque(SIZE_MAX / 2)) == NULL);
  mi_heap_t* heap = mi_heap_new();
  void* h1 = mi_heap_alloc_new(heap, 100);
  void* h2 = mi_heap_alloc_new_n(heap, 10, 100);
  CHECK(mi_heap_contains_block(heap, h1) && mi_heap_contains_block(heap, h2) && mi_usable_size(h2) >= 1000);
  mi_free(h1);
  mi_free(h2);
  mi_heap_delete(heap);
  mi_free(n1);
  mi_free(n2);
  mi_free(n3);
  mi_free(n4);
  mi_free(n5);
}

/* The callback types and mi_option_t, named as a program names them. */
static void type_names(void) {
  mi_output_fun* out = &api21_output;
  mi_error_fun* err = &api21_error;
  mi_deferred_free_fun* deferred = &api21_deferred;
  mi_block_visit_fun* visit = &api21_visit;
  mi_option_t option = mi_option_verbose;
  mi_arena_id_t arena = 0;
  CHECK(out != NULL && err != NULL && deferred != NULL && visit != NULL && option == 2 && arena == 0);
  CHECK(sizeof(mi_option_t) == sizeof(int) && (int)_mi_option_last > 0);
}

/* Runs everything; returns the failures. */
static int api21_c_calls(void) {
  type_names();
  mi_register_error(&api21_error, &error_count);
  attribute_macros();
  malloc_interface();
  extended();
  internals();
  aligned();
  heaps();
  rezalloc();
  arenas();
  typed_macros();
  options();
  posix_forms();
  mi_register_error(NULL, NULL);
  return api21_failures;
}

#ifndef API21_NO_MAIN
int main(void) {
  const int failures = api21_c_calls();
#ifdef __STDC_VERSION__
  printf("api21_calls.c (C, __STDC_VERSION__ %ld): %d checks, %d failed: %s\n", (long)__STDC_VERSION__, api21_checks,
         failures, failures == 0 ? "OK" : "FAILED");
#endif
  return failures == 0 ? 0 : 1;
}
#endif
