// arena_fork.cpp: fork() and the arenas on huge OS pages (arena.h:
// arenas_fork_prepare/parent/child).
#include <errno.h>
#include <pthread.h>

#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../os/os.h"
#include "../topology/topology.h"
#include "arena.h"
#include "arena_internal.h"
#include "bitmap.h"

namespace mi {

namespace {

// The next run of blocks in use at or after block *offset / ARENA_BLOCK_SIZE,
// in bytes (os_copy_to_regular's callback).
bool next_inuse_run(void* arg, size_t* offset, size_t* len) {
  const Arena* a = static_cast<const Arena*>(arg);
  size_t i = divide_up(*offset, ARENA_BLOCK_SIZE);
  while (i < a->block_count && !bitmap_is_any_set(a->blocks_inuse, a->field_count, i, 1)) i++;
  if (i >= a->block_count) return false;
  size_t j = i + 1;
  while (j < a->block_count && bitmap_is_any_set(a->blocks_inuse, a->field_count, j, 1)) j++;
  *offset = i * ARENA_BLOCK_SIZE;
  *len = (j - i) * ARENA_BLOCK_SIZE;
  return true;
}

// fork() and huge OS pages. A private mapping of huge pages is copy-on-write
// across fork like any other, but the copy needs a free page of the pool: a
// 1 GiB page at the child's first write anywhere in it (a free() updates a
// page's free list), and with none free the kernel kills the child with
// SIGBUS; a write of the parent while the child still maps the page makes
// the kernel unmap it from the child (the parent owns the reservation).
// Reading the parent's 1 GiB page in the child was not reliable either: on
// this project's kernel (6.18) a child that only read the first byte died
// of SIGBUS in 17 of 50 forks, even with a spare page in the pool (2 MiB
// pages: 0 of 50). Database servers fork (PostgreSQL's backends, Redis's
// saves), so the child never maps the huge pages: before fork() the parent
// copies the blocks in use of each huge-page arena of its own into regular
// pages and marks the arena MADV_DONTFORK; the child moves the copy into
// the arena's place (mremap); the parent drops the copy and clears the mark.
// Costs a copy of the memory in use there at each fork (PostgreSQL's
// postmaster: a few MiB). The copy is made while other threads of the
// parent may still run: like any fork of a threaded program, the child must
// not count on what those threads were doing.
void* fork_copies[ARENA_MAX_COUNT];  // per arena index: the copy, or null

bool own_huge_arena(const Arena* a) { return a != nullptr && a->memid.is_large && a->memid.kind == MemKind::os; }

size_t arena_bytes(const Arena* a) { return a->block_count * ARENA_BLOCK_SIZE; }

void fork_copy_arena(size_t i, Arena* a) {
  const Topology& t = topology();
  int os_node = -1;
  const int policy = static_cast<int>(option_get(mi_option_numa_bind));
  if (a->numa_node >= 0 && a->numa_node < t.node_count && t.binding_possible && policy != 0) {
    os_node = t.nodes[a->numa_node].os_index;
  }
  void* copy = os_copy_to_regular(a->start, arena_bytes(a), &next_inuse_run, a, os_node, policy);
  if (copy != nullptr && !os_set_dontfork(a->start, arena_bytes(a), true)) {
    os_unmap(copy, arena_bytes(a));
    copy = nullptr;
  }
  if (copy == nullptr) {
    warning_message(
        "fork: the child of this process keeps arena %d on huge OS pages (no regular memory for a copy of "
        "%zu MiB: %s); it dies of SIGBUS if the kernel's pool has no free huge page when it writes there",
        a->id, arena_bytes(a) / MiB, errno_text(errno));
  }
  fork_copies[i] = copy;
}

template <typename F>
void for_each_fork_copy(F f) {
  const size_t count = arenas_added();
  for (size_t i = 0; i < count; i++) {
    if (fork_copies[i] != nullptr) f(i, arena_at(i));
  }
}

}  // namespace

void arenas_fork_prepare() noexcept {
  pthread_mutex_lock(&reserve_lock);  // no arena is added until the fork is done
  const size_t count = arenas_added();
  for (size_t i = 0; i < count; i++) {
    fork_copies[i] = nullptr;
    Arena* a = arena_at(i);
    if (own_huge_arena(a)) fork_copy_arena(i, a);
  }
}

void arenas_fork_parent() noexcept {
  for_each_fork_copy([](size_t i, Arena* a) {
    os_set_dontfork(a->start, arena_bytes(a), false);
    os_unmap(fork_copies[i], arena_bytes(a));
    fork_copies[i] = nullptr;
  });
  pthread_mutex_unlock(&reserve_lock);
}

void arenas_fork_child() noexcept {
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  reserve_lock = fresh;
  for_each_fork_copy([](size_t i, Arena* a) {
    // the huge mapping was not inherited: the copy takes its place
    if (os_move_mapping(fork_copies[i], a->start, arena_bytes(a))) {
      a->memid.is_large = false;
      a->memid.is_huge = false;
      verbose_message("fork: arena %d (%zu MiB) is on regular pages in the child (the blocks in use were copied)",
                      a->id, arena_bytes(a) / MiB);
    } else {
      error_message(ENOMEM, "fork: arena %d could not be put back in the child (%s): its memory is not mapped", a->id,
                    errno_text(errno));
    }
    fork_copies[i] = nullptr;
  });
}

}  // namespace mi
