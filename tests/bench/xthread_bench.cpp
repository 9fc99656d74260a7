// xthread_bench: producer/consumer cross-thread free.
//
// --pairs producer/consumer pairs (2 threads per pair).  Each producer allocates
// --count objects of log-uniform size in [--min, --max], initialises them and
// pushes them through a bounded single-producer/single-consumer ring of
// --queue entries to its consumer, which verifies, writes to and frees them: every
// free is a cross-thread free (remote free path of the allocator).
#include "bench_common.hpp"

namespace {

struct Item {
  void* p;
  size_t n;
  uint64_t tag;
};

// Bounded SPSC ring (Lamport queue with cached indices).
class Ring {
 public:
  explicit Ring(uint64_t capacity_pow2)
      : items_(static_cast<Item*>(bench::xmalloc(capacity_pow2 * sizeof(Item)))), mask_(capacity_pow2 - 1) {}
  ~Ring() { std::free(items_); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  void push(const Item& it) {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_cache_ > mask_) {
      bench::Backoff backoff;
      for (;;) {
        tail_cache_ = tail_.load(std::memory_order_acquire);
        if (h - tail_cache_ <= mask_) break;
        backoff.pause();
      }
    }
    items_[h & mask_] = it;
    head_.store(h + 1, std::memory_order_release);
  }

  Item pop() {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_cache_) {
      bench::Backoff backoff;
      for (;;) {
        head_cache_ = head_.load(std::memory_order_acquire);
        if (t != head_cache_) break;
        backoff.pause();
      }
    }
    Item it = items_[t & mask_];
    tail_.store(t + 1, std::memory_order_release);
    return it;
  }

 private:
  Item* const items_;
  const uint64_t mask_;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  uint64_t tail_cache_ = 0;                    // producer's view of tail_
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
  uint64_t head_cache_ = 0;                    // consumer's view of head_
};

const char* const kUsage =
    "  --pairs N        producer/consumer pairs (default 1 = 2 threads)\n"
    "  --count N        objects per producer (default 3000000; smoke 100000)\n"
    "  --min N --max N  object sizes in bytes, log-uniform (default 8..4096)\n"
    "  --queue N        ring capacity, rounded up to a power of two (default 1024)\n"
    "  --seed S         RNG seed (default 1)\n";

void producer(Ring& ring, uint64_t count, uint64_t min_size, uint64_t max_size, uint64_t seed, uint64_t id) {
  bench::Rng rng(bench::Rng::mix(seed, id));
  uint64_t tag = (id + 1) << 40;
  for (uint64_t i = 0; i < count; i++) {
    Item it;
    it.n = rng.log_uniform(min_size, max_size);
    it.p = bench::xmalloc(it.n);
    it.tag = ++tag;
    bench::fill(it.p, it.n, it.tag, 64);
    ring.push(it);
  }
  ring.push(Item{nullptr, 0, 0});
}

void consumer(Ring& ring, std::atomic<uint64_t>& total, std::atomic<uint64_t>& sum) {
  uint64_t n = 0;
  uint64_t checksum = 0;
  for (;;) {
    Item it = ring.pop();
    if (it.p == nullptr) break;
    checksum += bench::check(it.p, it.n, it.tag);
    static_cast<unsigned char*>(it.p)[it.n / 2] ^= 0x5a;  // the consumer writes too
    std::free(it.p);
    n++;
  }
  total.fetch_add(n, std::memory_order_relaxed);
  sum.fetch_add(checksum, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "xthread_bench", kUsage);
  const uint64_t pairs = args.u64("pairs", 1, 1);
  const uint64_t count = args.u64("count", 3'000'000, 100'000);
  const uint64_t min_size = args.u64("min", 8, 8);
  const uint64_t max_size = args.u64("max", 4096, 4096);
  uint64_t queue = args.u64("queue", 1024, 1024);
  const uint64_t seed = args.u64("seed", 1, 1);
  args.finish();
  if (pairs == 0 || min_size == 0 || min_size > max_size || queue == 0 || queue > (uint64_t{1} << 30)) {
    args.fail("bad", "parameters");
  }
  uint64_t cap = 1;
  while (cap < queue) cap <<= 1;
  queue = cap;

  bench::Timer timer;
  std::atomic<uint64_t> total{0}, sum{0};
  std::vector<Ring*> rings;
  std::vector<std::thread> threads;
  for (uint64_t i = 0; i < pairs; i++) rings.push_back(new Ring(queue));
  for (uint64_t i = 0; i < pairs; i++) {
    threads.emplace_back(consumer, std::ref(*rings[i]), std::ref(total), std::ref(sum));
    threads.emplace_back(producer, std::ref(*rings[i]), count, min_size, max_size, seed, i);
  }
  for (auto& t : threads) t.join();
  for (Ring* r : rings) delete r;
  const double ms = timer.elapsed_ms();
  if (total.load() != pairs * count) bench::die("lost objects");

  char extra[64];
  std::snprintf(extra, sizeof extra, "pairs=%llu", static_cast<unsigned long long>(pairs));
  bench::report("xthread", total.load(), ms, sum.load(), extra);
  return 0;
}
