// process_madvise(2) on the calling process: one call advises many ranges of a
// mapping (one iovec per range). The kernel batches the TLB flush, so a batch of
// runs costs about one madvise instead of one each (bench/c/batch_free.c). Where
// the kernel refuses it (older kernels accept only COLD/PAGEOUT/WILLNEED, or no
// pidfd_open) or stops part-way, the rest fall back to one madvise each: same
// outcome, and the madvise that fails names the run (runsAdvised).
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

#include "errors.h"
#include "mapping.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

namespace pagewise {

namespace {

// A pidfd of this process (-1 when unavailable).
int SelfPidfd() {
  static std::mutex lock;
  static pid_t owner = 0;
  static int fd = -1;
  return ProcessDescriptor(&lock, &owner, &fd, [] { return static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)); });
}

}  // namespace

// mapping.adviseRuns(runs: Float64Array [offset, length, ...], advice): void
Napi::Value NativeMapping::AdviseRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  TypedArrayArg arg = ArgTypedArray(info, 0, napi_float64_array, "runs");
  const double* runs = static_cast<const double*>(arg.data);
  int advice = static_cast<int>(ArgInt(info, 1, "advice", INT_MIN, INT_MAX));
  size_t count = arg.length;
  if (count % 2 != 0) throw OutOfRange(env, "runs");
  uint64_t limit = s.Limit();
  uint64_t page = PageSize();
  std::vector<iovec> iov;
  std::vector<size_t> runOf;  // the run (index in `runs` / 2) of each iovec: zero-length runs have none
  iov.reserve(count / 2);
  runOf.reserve(count / 2);
  for (size_t i = 0; i < count; i += 2) {
    double o = runs[i];
    double l = runs[i + 1];
    if (!(o >= 0 && o <= static_cast<double>(limit) && o == static_cast<double>(static_cast<uint64_t>(o)))) {
      throw OutOfRange(env, "runs");
    }
    if (!(l >= 0 && l == static_cast<double>(static_cast<uint64_t>(l)))) throw OutOfRange(env, "runs");
    uint64_t offset = static_cast<uint64_t>(o);
    uint64_t length = static_cast<uint64_t>(l);
    if (offset % page != 0 || length > limit - offset) throw OutOfRange(env, "runs");
    if (length != 0) {
      iov.push_back({s.addr + offset, static_cast<size_t>(length)});
      runOf.push_back(i / 2);
    }
  }
  size_t done = 0;  // iovecs fully advised
  int pidfd = SelfPidfd();
  while (pidfd >= 0 && done < iov.size()) {
    size_t n = std::min<size_t>(iov.size() - done, IOV_MAX);
    long r = syscall(SYS_process_madvise, pidfd, &iov[done], n, advice, 0);
    if (r < 0) break;  // refused (or failed on the first iovec): madvise from here tells which
    // The kernel stops at the first range it cannot advise and returns the bytes before it.
    size_t bytes = static_cast<size_t>(r);
    size_t end = done + n;
    while (done < end && bytes >= iov[done].iov_len) bytes -= iov[done++].iov_len;
    if (done < end) break;
  }
  for (size_t i = done; i < iov.size(); i++) {
    if (madvise(iov[i].iov_base, iov[i].iov_len, advice) != 0) {
      Napi::Error e = ErrnoError(env, errno, "madvise");
      e.Set("runsAdvised", Napi::Number::New(env, static_cast<double>(runOf[i])));
      throw e;
    }
  }
  return env.Undefined();
}

}  // namespace pagewise
