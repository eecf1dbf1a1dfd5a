// jemalloc's start-up options, read by jemalloc itself (linked only when the worker uses it: see
// CMakeLists.txt). Two arenas suit the worker's few busy threads (per-thread caches absorb most
// traffic) and keep the peak RSS near glibc's; freed pages go back to the OS after about a second
// rather than being kept indefinitely.
//
// tcache_max: librdkafka's LZ4 compression of each produced batch callocs and frees a 64-192 KB
// buffer (LZ4F_compressBegin). Above the default 32 KB those bypass the thread cache, and jemalloc
// zeroes a recycled extent with madvise(MADV_DONTNEED): about 2,500 madvise calls and 6,000 TLB
// shootdowns (interrupts on the other core) a second at 20,000 results/s. Caching up to 256 KB per
// thread cut that to about 200 madvise calls a second, with the same peak RSS
// (benchmarks/results/malloc-2026-11-23.md).
//
// tcache_nslots_small_min: a thread caches at least this many blocks of each small size class
// (default 20; jemalloc 5.3 caps it at tcache_nslots_small_max, 200 by default). The coroutine
// frames of a delivery are 1-4 KB, size classes of few blocks a slab, so their caches held only
// 20: with hundreds of deliveries in flight per I/O thread, allocating and freeing them went to
// the arena (a refill or a flush, ~2,000 instructions) about once a delivery. At 200: I/O threads
// 50,000 -> 47,000 instructions a delivery under callgrind (benchmarks/results/malloc-2026-12-07.md,
// with the peak RSS). A larger cache needs tcache_nslots_small_max raised too, and measuring again.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's API.
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0,tcache_max:262144,tcache_nslots_small_min:200";
}
