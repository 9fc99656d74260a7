// xfree_bench: cross-thread free throughput of one small size class.
//
// Two threads: the producer allocates --size-byte blocks (64 by default) in
// batches of --batch, writes a tag into each and passes the batch to the
// consumer through a ring of --inflight batches; the consumer checks and frees
// every block of it.  Every free is a free of a block another thread
// allocated (the allocator's remote-free path), and the producer allocates
// where the consumer's frees are to come back.  --frees blocks in all; the
// figure of interest is the time per million frees (ns_per_free is printed).
#include "bench_common.hpp"

namespace {

const char* const kUsage =
    "  --frees N        blocks allocated by one thread and freed by the other (default 10000000; smoke 200000)\n"
    "  --size N         block size in bytes (default 64)\n"
    "  --batch N        blocks per batch handed over (default 1000)\n"
    "  --inflight N     batches in flight at most (default 4)\n";

// Bounded ring of batch indices between the two threads (single producer,
// single consumer).  The batches themselves are arrays allocated once.
class BatchRing {
 public:
  explicit BatchRing(uint64_t slots) : slots_(slots) {}

  // producer: wait until batch `seq`'s array is free again (the consumer is done
  // with batch seq - slots), before filling it
  void wait_room(uint64_t seq) const {
    bench::Backoff backoff;
    while (seq - done_.load(std::memory_order_acquire) >= slots_) backoff.pause();
  }
  void publish(uint64_t seq) { ready_.store(seq + 1, std::memory_order_release); }
  void wait_ready(uint64_t seq) const {  // consumer: wait until batch `seq` is published
    bench::Backoff backoff;
    while (ready_.load(std::memory_order_acquire) <= seq) backoff.pause();
  }
  void release(uint64_t seq) { done_.store(seq + 1, std::memory_order_release); }

 private:
  const uint64_t slots_;
  alignas(64) std::atomic<uint64_t> ready_{0};
  alignas(64) std::atomic<uint64_t> done_{0};
};

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, "xfree_bench", kUsage);
  const uint64_t frees = args.u64("frees", 10'000'000, 200'000);
  const uint64_t size = args.u64("size", 64, 64);
  const uint64_t batch = args.u64("batch", 1000, 1000);
  const uint64_t inflight = args.u64("inflight", 4, 4);
  args.finish();
  if (size < sizeof(uint64_t) || size > (uint64_t{1} << 20) || batch == 0 || inflight == 0 || inflight > 1024) {
    args.fail("bad", "parameters");
  }
  const uint64_t nbatches = (frees + batch - 1) / batch;

  auto** arrays = static_cast<void***>(bench::xmalloc(inflight * sizeof(void**)));
  for (uint64_t i = 0; i < inflight; i++) arrays[i] = static_cast<void**>(bench::xmalloc(batch * sizeof(void*)));
  BatchRing ring(inflight);
  auto count_of = [&](uint64_t seq) { return seq + 1 < nbatches ? batch : frees - seq * batch; };

  bench::Timer timer;
  std::atomic<uint64_t> checksum{0};
  std::thread consumer([&] {
    uint64_t sum = 0;
    for (uint64_t seq = 0; seq < nbatches; seq++) {
      ring.wait_ready(seq);
      void** a = arrays[seq % inflight];
      const uint64_t n = count_of(seq);
      for (uint64_t i = 0; i < n; i++) {
        uint64_t tag;
        std::memcpy(&tag, a[i], sizeof tag);
        if (tag != seq * batch + i + 1) bench::die("heap corruption: block tag mismatch");
        sum += tag;
        std::free(a[i]);
      }
      ring.release(seq);
    }
    checksum.store(sum, std::memory_order_relaxed);
  });
  for (uint64_t seq = 0; seq < nbatches; seq++) {
    ring.wait_room(seq);
    void** a = arrays[seq % inflight];
    const uint64_t n = count_of(seq);
    for (uint64_t i = 0; i < n; i++) {
      a[i] = bench::xmalloc(size);
      const uint64_t tag = seq * batch + i + 1;
      std::memcpy(a[i], &tag, sizeof tag);
    }
    ring.publish(seq);
  }
  consumer.join();
  const double ms = timer.elapsed_ms();
  for (uint64_t i = 0; i < inflight; i++) std::free(arrays[i]);
  std::free(arrays);

  char extra[96];
  std::snprintf(extra, sizeof extra, "size=%llu ns_per_free=%.2f", static_cast<unsigned long long>(size),
                ms * 1e6 / static_cast<double>(frees));
  bench::report("xfree", frees, ms, checksum.load(), extra);
  return 0;
}
