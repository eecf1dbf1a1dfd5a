// ThreadSanitizer builds only (cmake/sendq.cmake adds this file to the unit tests when
// SENDQ_SANITIZE contains "thread").
//
// librdkafka creates its threads and locks with C11 <threads.h> (thrd_create, mtx_lock, cnd_wait).
// glibc implements those by calling its internal pthread functions directly, so the TSan runtime
// (GCC 12's and clang 14's alike) never sees librdkafka's threads start — they crash in the
// runtime's allocator — nor its locks, which would make every hand-over through librdkafka look like
// a race. Defining the C11 functions here, in the executable, makes librdkafka's calls resolve to
// these, which go through the intercepted pthread functions: TSan then sees the threads and the
// happens-before edges as they are. Nothing is suppressed by this.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <new>

namespace {

struct start_args {
  thrd_start_t func;
  void* arg;
};

void* trampoline(void* p) {
  const start_args a = *static_cast<start_args*>(p);
  delete static_cast<start_args*>(p);
  return reinterpret_cast<void*>(static_cast<std::intptr_t>(a.func(a.arg)));
}

int to_thrd(int rc) {
  if (rc == 0) return thrd_success;
  if (rc == ENOMEM) return thrd_nomem;
  if (rc == ETIMEDOUT) return thrd_timedout;
  if (rc == EBUSY) return thrd_busy;
  return thrd_error;
}

pthread_mutex_t* m(mtx_t* x) { return reinterpret_cast<pthread_mutex_t*>(x); }
pthread_cond_t* c(cnd_t* x) { return reinterpret_cast<pthread_cond_t*>(x); }

static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t));
static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t));
static_assert(sizeof(thrd_t) == sizeof(pthread_t));

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* a = new (std::nothrow) start_args{func, arg};
  if (a == nullptr) return thrd_nomem;
  const int rc = pthread_create(reinterpret_cast<pthread_t*>(thr), nullptr, trampoline, a);
  if (rc != 0) delete a;
  return to_thrd(rc);
}

int thrd_join(thrd_t thr, int* res) {
  void* out = nullptr;
  const int rc = pthread_join(static_cast<pthread_t>(thr), &out);
  if (rc == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<std::intptr_t>(out));
  return to_thrd(rc);
}

int thrd_detach(thrd_t thr) { return to_thrd(pthread_detach(static_cast<pthread_t>(thr))); }

int mtx_init(mtx_t* mtx, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  const int rc = pthread_mutex_init(m(mtx), &attr);
  pthread_mutexattr_destroy(&attr);
  return to_thrd(rc);
}
int mtx_lock(mtx_t* mtx) { return to_thrd(pthread_mutex_lock(m(mtx))); }
int mtx_trylock(mtx_t* mtx) { return to_thrd(pthread_mutex_trylock(m(mtx))); }
int mtx_timedlock(mtx_t* mtx, const struct timespec* ts) { return to_thrd(pthread_mutex_timedlock(m(mtx), ts)); }
int mtx_unlock(mtx_t* mtx) { return to_thrd(pthread_mutex_unlock(m(mtx))); }
void mtx_destroy(mtx_t* mtx) { pthread_mutex_destroy(m(mtx)); }

int cnd_init(cnd_t* cond) { return to_thrd(pthread_cond_init(c(cond), nullptr)); }
int cnd_signal(cnd_t* cond) { return to_thrd(pthread_cond_signal(c(cond))); }
int cnd_broadcast(cnd_t* cond) { return to_thrd(pthread_cond_broadcast(c(cond))); }
int cnd_wait(cnd_t* cond, mtx_t* mtx) { return to_thrd(pthread_cond_wait(c(cond), m(mtx))); }
int cnd_timedwait(cnd_t* cond, mtx_t* mtx, const struct timespec* ts) {
  return to_thrd(pthread_cond_timedwait(c(cond), m(mtx), ts));
}
void cnd_destroy(cnd_t* cond) { pthread_cond_destroy(c(cond)); }

}  // extern "C"
