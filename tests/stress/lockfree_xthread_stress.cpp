/* lockfree_xthread_stress -- producer/consumer cross-thread frees through lock-free queues.

   What it checks:
     1. MPMC: P producer threads allocate blocks of 8 B..64 KiB, write a header
        word (size, producer id, sequence number) and a checksum pattern keyed
        by that header, and push the pointers on a boost::lockfree::queue; C
        consumer threads pop them, verify the whole block and free it.  So
        nearly every free is a cross-thread free, arriving concurrently from
        several threads into pages whose owner keeps allocating.
     2. SPSC: the same over independent producer->consumer pairs on
        boost::lockfree::spsc_queue (a steady one-way stream of frees into
        another thread's pages).
     3. Ping-pong: two threads hand the same blocks back and forth; each side
        verifies a block, reallocs it to a new size (so realloc runs on a block
        owned by the other thread: in place, or moved with a cross-thread free
        of the old block), checks that the common prefix survived, refills it
        and sends it back.
     Every produced block must be consumed exactly once: consumers mark
     (producer, sequence) in a table and the counts are checked at the end.

   Why: cross-thread free is the part of a per-thread-heap allocator that
   only shows its bugs under contention (lost or doubled thread_free pushes,
   delayed-free races on full pages, blocks reused before the remote free is
   collected).  A lost block shows up as a leak of the count, a doubled one as
   a block consumed twice or corrupted contents.

   usage: lockfree_xthread_stress [producers=3] [consumers=3] [scale=20]
     blocks per producer = 2000 * scale; spsc pairs = 2 with the same count;
     ping-pong: 64 blocks, 20 * scale hops each. */
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "stress_common.h"

using namespace stress;

namespace {

constexpr size_t kMinSize = 8;
constexpr size_t kMaxSize = 64 * 1024;
constexpr uint64_t kSalt = 0x10CF2EE5A17ull;
constexpr size_t kMaxInFlight = 4096;  // per MPMC run / per SPSC queue

/* Header word: size (bits 0..19), producer (bits 20..31), sequence (bits 32..63). */
uint64_t make_header(size_t size, unsigned producer, uint32_t seq) {
  return static_cast<uint64_t>(size) | (static_cast<uint64_t>(producer) << 20) | (static_cast<uint64_t>(seq) << 32);
}

struct Log {  // one per producer
  uint64_t count = 0;
  std::unique_ptr<std::atomic<uint32_t>[]> size;
  std::unique_ptr<std::atomic<uint8_t>[]> seen;
  std::atomic<uint64_t> consumed{0};
  void init(uint64_t n) {
    count = n;
    size.reset(new std::atomic<uint32_t>[n]);
    seen.reset(new std::atomic<uint8_t>[n]);
    for (uint64_t i = 0; i < n; i++) {
      size[i].store(0, std::memory_order_relaxed);
      seen[i].store(0, std::memory_order_relaxed);
    }
  }
};

std::atomic<uint64_t> g_blocks{0};
std::atomic<uint64_t> g_bytes{0};

size_t pick_size(Rng& rng) {
  const size_t base = size_t{1} << rng.range(3, 15);  // 8 .. 32 KiB
  size_t s = base + rng.below(base + 1);              // .. 64 KiB
  if (s > kMaxSize) s = kMaxSize;
  return s;
}

void* produce(Rng& rng, Log& log, unsigned producer, uint32_t seq) {
  const size_t size = pick_size(rng);
  bool zeroed = false;
  void* p = xalloc(rng, size, &zeroed);
  if (zeroed) check_zero_or_die("lockfree: fresh zeroed block", p, size);
  const uint64_t h = make_header(size, producer, seq);
  fill(static_cast<char*>(p) + 8, size - 8, mix64(h ^ kSalt));
  *static_cast<uint64_t*>(p) = h;
  log.size[seq].store(static_cast<uint32_t>(size), std::memory_order_relaxed);
  g_blocks.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(size, std::memory_order_relaxed);
  return p;
}

void consume(Rng& rng, std::vector<Log>& logs, void* p, const char* what) {
  const uint64_t h = *static_cast<const uint64_t*>(p);
  const size_t size = static_cast<size_t>(h & 0xFFFFF);
  const unsigned producer = static_cast<unsigned>((h >> 20) & 0xFFF);
  const uint32_t seq = static_cast<uint32_t>(h >> 32);
  if (producer >= logs.size() || seq >= logs[producer].count || size < kMinSize || size > kMaxSize) {
    fail("%s: block %p has a corrupted header 0x%016" PRIx64 " (size %zu, producer %u, seq %u)", what, p, h, size,
         producer, seq);
  }
  Log& log = logs[producer];
  const uint32_t expect_size = log.size[seq].load(std::memory_order_relaxed);
  if (expect_size != size) {
    fail("%s: block %p (producer %u, seq %u) header says size %zu but %u was allocated", what, p, producer, seq, size,
         expect_size);
  }
  uint64_t e = 0, a = 0;
  const size_t off = check(static_cast<char*>(p) + 8, size - 8, mix64(h ^ kSalt), size - 8, &e, &a);
  if (off != kNoError) {
    fail("%s: block %p (size %zu, producer %u, seq %u) corrupted at offset %zu: expected 0x%016" PRIx64
         " found 0x%016" PRIx64,
         what, p, size, producer, seq, off + 8, e, a);
  }
  if (log.seen[seq].exchange(1, std::memory_order_relaxed) != 0) {
    fail("%s: block (producer %u, seq %u) consumed twice (second time at %p)", what, producer, seq, p);
  }
  log.consumed.fetch_add(1, std::memory_order_relaxed);
  xfree(rng, p);
}

void check_logs(const std::vector<Log>& logs, const char* what) {
  for (size_t pr = 0; pr < logs.size(); pr++) {
    const Log& log = logs[pr];
    const uint64_t c = log.consumed.load();
    if (c != log.count)
      fail("%s: producer %zu produced %" PRIu64 " blocks but %" PRIu64 " were consumed", what, pr, log.count, c);
    for (uint64_t s = 0; s < log.count; s++) {
      if (log.seen[s].load() != 1) fail("%s: block (producer %zu, seq %" PRIu64 ") was never consumed", what, pr, s);
    }
  }
}

/* ---------------- 1. MPMC over boost::lockfree::queue ---------------- */
void run_mpmc(unsigned producers, unsigned consumers, uint64_t per_producer) {
  boost::lockfree::queue<void*> queue(1024);
  std::vector<Log> logs(producers);
  for (auto& l : logs) l.init(per_producer);
  std::atomic<unsigned> done{0};
  std::atomic<int64_t> in_flight{0};

  std::vector<std::thread> ts;
  for (unsigned pr = 0; pr < producers; pr++) {
    ts.emplace_back([&, pr] {
      Rng rng(0x9A0D0000ull + pr);
      for (uint64_t s = 0; s < per_producer; s++) {
        while (in_flight.load(std::memory_order_relaxed) >= static_cast<int64_t>(kMaxInFlight))
          std::this_thread::yield();
        void* p = produce(rng, logs[pr], pr, static_cast<uint32_t>(s));
        in_flight.fetch_add(1, std::memory_order_relaxed);
        while (!queue.push(p)) std::this_thread::yield();
      }
      done.fetch_add(1, std::memory_order_release);
    });
  }
  for (unsigned c = 0; c < consumers; c++) {
    ts.emplace_back([&, c] {
      Rng rng(0xC0250000ull + c);
      for (;;) {
        void* p = nullptr;
        if (queue.pop(p)) {
          in_flight.fetch_sub(1, std::memory_order_relaxed);
          consume(rng, logs, p, "lockfree mpmc");
          continue;
        }
        if (done.load(std::memory_order_acquire) == producers) {
          if (queue.pop(p)) {
            in_flight.fetch_sub(1, std::memory_order_relaxed);
            consume(rng, logs, p, "lockfree mpmc");
            continue;
          }
          break;
        }
        std::this_thread::yield();
      }
    });
  }
  for (auto& t : ts) t.join();
  check_logs(logs, "lockfree mpmc");
}

/* ---------------- 2. SPSC pairs over boost::lockfree::spsc_queue ---------------- */
void run_spsc(unsigned pairs, uint64_t per_producer) {
  using Queue = boost::lockfree::spsc_queue<void*, boost::lockfree::capacity<kMaxInFlight>>;
  std::vector<std::unique_ptr<Queue>> queues;
  for (unsigned i = 0; i < pairs; i++) queues.emplace_back(new Queue());
  std::vector<Log> logs(pairs);
  for (auto& l : logs) l.init(per_producer);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < pairs; i++) {
    ts.emplace_back([&, i] {
      Rng rng(0x5B5C0000ull + i);
      for (uint64_t s = 0; s < per_producer; s++) {
        void* p = produce(rng, logs[i], i, static_cast<uint32_t>(s));
        while (!queues[i]->push(p)) std::this_thread::yield();
      }
    });
    ts.emplace_back([&, i] {
      Rng rng(0x5C5D0000ull + i);
      uint64_t got = 0;
      while (got < per_producer) {
        void* p = nullptr;
        if (queues[i]->pop(p)) {
          consume(rng, logs, p, "lockfree spsc");
          got++;
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  check_logs(logs, "lockfree spsc");
}

/* ---------------- 3. Ping-pong realloc across threads ---------------- */
struct Msg {
  void* p;
  uint64_t key;
  uint32_t size;
  uint32_t id;
  uint32_t hops;
};

std::atomic<uint64_t> g_reallocs{0};
std::atomic<uint64_t> g_inplace{0};

void run_pingpong(unsigned blocks, unsigned hops) {
  using Queue = boost::lockfree::spsc_queue<Msg, boost::lockfree::capacity<1024>>;
  auto a2b = std::make_unique<Queue>();
  auto b2a = std::make_unique<Queue>();
  std::atomic<unsigned> finished{0};

  auto side = [&](unsigned who, Queue& in, Queue& out) {
    Rng rng(0x9090ull + who);
    if (who == 0) {
      for (unsigned id = 0; id < blocks; id++) {
        const size_t size = pick_size(rng);
        bool zeroed = false;
        void* p = xalloc(rng, size, &zeroed);
        const uint64_t key = mix64((static_cast<uint64_t>(id) << 32) ^ kSalt);
        fill(p, size, key);
        while (!out.push(Msg{p, key, static_cast<uint32_t>(size), id, 0})) std::this_thread::yield();
      }
    }
    while (finished.load(std::memory_order_acquire) < blocks) {
      Msg m;
      if (!in.pop(m)) {
        std::this_thread::yield();
        continue;
      }
      check_or_die("lockfree ping-pong: received block", m.p, m.size, m.key, m.size);
      if (m.hops + 1 >= hops) {
        xfree(rng, m.p);
        finished.fetch_add(1, std::memory_order_release);
        continue;
      }
      size_t new_size;
      if (rng.chance(1, 32)) {
        new_size = kMaxSize * 2 + rng.below(kMaxSize * 14);  // up to 1 MiB
      } else if (rng.chance(1, 2)) {
        new_size = m.size + rng.below(m.size / 4 + 8);  // small change, often in place
        if (new_size > kMaxSize * 16) new_size = kMaxSize * 16;
      } else {
        new_size = pick_size(rng);
      }
      const uintptr_t old = reinterpret_cast<uintptr_t>(m.p);
      void* q = xrealloc(rng, m.p, new_size);
      if (reinterpret_cast<uintptr_t>(q) == old) g_inplace.fetch_add(1, std::memory_order_relaxed);
      const size_t keep = m.size < new_size ? m.size : new_size;
      uint64_t e = 0, a = 0;
      const size_t off = check(q, m.size, m.key, keep, &e, &a);
      if (off != kNoError) {
        fail("lockfree ping-pong: realloc(0x%" PRIxPTR
             ", %u -> %zu) = %p on thread %u lost contents at offset %zu: "
             "expected 0x%016" PRIx64 " found 0x%016" PRIx64,
             old, m.size, new_size, q, who, off, e, a);
      }
      const uint64_t key = mix64((static_cast<uint64_t>(m.id) << 32) ^ (m.hops + 1) ^ kSalt);
      fill(q, new_size, key);
      g_reallocs.fetch_add(1, std::memory_order_relaxed);
      while (!out.push(Msg{q, key, static_cast<uint32_t>(new_size), m.id, m.hops + 1})) std::this_thread::yield();
    }
  };
  std::thread ta(side, 0u, std::ref(*b2a), std::ref(*a2b));
  std::thread tb(side, 1u, std::ref(*a2b), std::ref(*b2a));
  ta.join();
  tb.join();
  STRESS_CHECK(a2b->read_available() == 0 && b2a->read_available() == 0, "ping-pong: blocks left in the queues");
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t producers = 3, consumers = 3, scale = 20;
  parse_args(argc, argv, "Cross-thread frees through boost::lockfree queues, and cross-thread realloc ping-pong.",
             {{"producers", &producers, 1, 4095, "producer threads (MPMC)"},
              {"consumers", &consumers, 1, 4096, "consumer threads (MPMC)"},
              {"scale", &scale, 1, 100000, "blocks per producer = 2000*scale; ping-pong hops = 20*scale"}});
  const uint64_t per_producer = 2000 * scale;
  STRESS_CHECK(per_producer < (uint64_t{1} << 32), "scale too large");
  Timer timer;

  run_mpmc(static_cast<unsigned>(producers), static_cast<unsigned>(consumers), per_producer);
  const double t_mpmc = timer.seconds();
  run_spsc(2, per_producer);
  const double t_spsc = timer.seconds() - t_mpmc;
  const unsigned pp_blocks = 64;
  const unsigned pp_hops = static_cast<unsigned>(20 * scale);
  run_pingpong(pp_blocks, pp_hops);
  const double t_pp = timer.seconds() - t_mpmc - t_spsc;

  std::printf("lockfree_xthread_stress: mpmc %" PRIu64 "x%" PRIu64 " (%" PRIu64
              " blocks) %.2f s, spsc 2 pairs (%" PRIu64 " blocks) %.2f s, ping-pong %u blocks x %u hops (%" PRIu64
              " cross-thread reallocs, %" PRIu64 " in place) %.2f s; %" PRIu64
              " blocks, %.1f MiB, all consumed exactly once, %.2f s: OK\n",
              producers, consumers, producers * per_producer, t_mpmc, 2 * per_producer, t_spsc, pp_blocks, pp_hops,
              g_reallocs.load(), g_inplace.load(), t_pp, g_blocks.load(),
              static_cast<double>(g_bytes.load()) / (1 << 20), timer.seconds());
  return 0;
}
