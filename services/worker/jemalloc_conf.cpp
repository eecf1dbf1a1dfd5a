// jemalloc's start-up options, read by jemalloc itself (linked only when the worker uses it: see
// CMakeLists.txt). Two arenas suit the worker's few busy threads (per-thread caches absorb most
// traffic) and keep the peak RSS near glibc's; freed pages go back to the OS after about a second
// rather than being kept indefinitely.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's API.
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
