// process_vm_readv / process_vm_writev on the calling process: copies between a
// mapping and a caller's buffer that can never fault. Where a page cannot be
// reached (a file truncated under the mapping, PROT_NONE, a guard page, a page
// the protection does not let us write) the kernel stops and reports how many
// bytes it copied instead of raising SIGBUS / SIGSEGV. The same holds on the
// caller's side of the copy.
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>

#include "errors.h"
#include "mapping.h"

namespace pagewise {

namespace {

// One call moves at most this much (the kernel caps a transfer at MAX_RW_COUNT,
// just under 2 GiB). Async copies check for close() between chunks of it.
constexpr size_t kCopyChunk = size_t{8} << 20;

// Copies `length` bytes between `mapped` (inside a mapping) and `local`.
// Returns the bytes copied (short where a page faulted) or -errno for a
// failure other than a fault (EPERM / ENOSYS under a seccomp filter, ENOMEM).
int64_t Copy(char* mapped, char* local, uint64_t length, bool toMapping, const std::atomic<bool>* closing) {
  const pid_t self = getpid();  // not cached: a fork()ed child must not copy from its parent
  uint64_t done = 0;
  while (done < length) {
    if (closing != nullptr && closing->load(std::memory_order_acquire)) break;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kCopyChunk, length - done));
    struct iovec here = {local + done, n};
    struct iovec there = {mapped + done, n};
    ssize_t got = toMapping ? process_vm_writev(self, &here, 1, &there, 1, 0)
                            : process_vm_readv(self, &here, 1, &there, 1, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EFAULT) break;  // the first page of this call cannot be reached
      return -errno;
    }
    if (got == 0) break;
    done += static_cast<uint64_t>(got);
    // A short count means a fault: the next call starts at that page and reports EFAULT.
  }
  return static_cast<int64_t>(done);
}

// (offset, length, buffer) checked against the mapping and the buffer.
struct CopyArgs {
  uint64_t offset;
  uint64_t length;
  Napi::Uint8Array buffer;
  char* data;  // the buffer's first byte
};

CopyArgs ReadCopyArgs(const Napi::CallbackInfo& info, const MappingState& s, bool withLength, const char* bufferName) {
  Napi::Env env = info.Env();
  uint64_t offset = ArgUint(info, 0, "offset");
  size_t bufferIndex = withLength ? 2 : 1;
  TypedArrayArg arg = ArgTypedArray(info, bufferIndex, napi_uint8_array, bufferName);
  uint64_t length = withLength ? ArgUint(info, 1, "length") : arg.length;
  if (offset > s.length) {
    throw OutOfRange(env, "offset");
  }
  uint64_t room = std::min<uint64_t>(s.length - offset, arg.length);
  if (length > room) {
    throw OutOfRange(env, "length");
  }
  return {offset, length, Napi::Uint8Array(env, arg.value), static_cast<char*>(arg.data)};
}

class CopyWork : public Napi::AsyncWorker {
 public:
  CopyWork(Napi::Env env, std::shared_ptr<MappingState> state, const CopyArgs& args, bool toMapping)
      : Napi::AsyncWorker(env, "pagewise"),
        state_(std::move(state)),
        mapped_(state_->addr + args.offset),
        local_(args.data),
        length_(args.length),
        toMapping_(toMapping),
        // The caller's buffer stays reachable (not collected) until the copy settles.
        bufferRef_(Napi::Persistent(args.buffer)) {
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok) throw Napi::Error::New(env);
  }

  Napi::Value Promise() const { return Napi::Value(Env(), promise_); }

  // Threadpool: syscalls only.
  void Execute() override { result_ = Copy(mapped_, local_, length_, toMapping_, &state_->closing); }

  // Main thread; plain N-API calls whose failures are ignored (may run at teardown).
  void OnOK() override {
    bufferRef_.Reset();  // the caller's buffer may be collected again
    MappingState& s = *state_;
    s.inflight--;
    s.UnmapIfUnreachable();
    napi_env env = Env();
    napi_value value = nullptr;
    const char* syscall = toMapping_ ? "process_vm_writev" : "process_vm_readv";
    if (result_ < 0) {
      value = RawErrnoError(env, static_cast<int>(-result_), syscall);
    } else if (s.closed && static_cast<uint64_t>(result_) < length_) {
      value = RawCodedError(env, "ERR_MAPPING_CLOSED", "The mapping is closed");
    } else {
      if (napi_create_double(env, static_cast<double>(result_), &value) == napi_ok) {
        napi_resolve_deferred(env, deferred_, value);
      }
      return;
    }
    if (value != nullptr) napi_reject_deferred(env, deferred_, value);
  }

  void OnError(const Napi::Error& /*error*/) override {
    result_ = -EIO;  // Execute() never calls SetError(); settle anyway
    OnOK();
  }

 private:
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::shared_ptr<MappingState> state_;
  char* mapped_;
  char* local_;
  uint64_t length_;
  bool toMapping_;
  Napi::Reference<Napi::Uint8Array> bufferRef_;
  int64_t result_ = 0;
};

Napi::Value Settled(Napi::Env env, double bytes) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Resolve(Napi::Number::New(env, bytes));
  return deferred.Promise();
}

}  // namespace

// mapping.readInto(offset, length, target): bytes copied into target[0, n).
Napi::Value NativeMapping::ReadInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  CopyArgs a = ReadCopyArgs(info, s, true, "target");
  if (a.length == 0) return Napi::Number::New(env, 0);
  int64_t n = Copy(s.addr + a.offset, a.data, a.length, false, nullptr);
  if (n < 0) throw ErrnoError(env, static_cast<int>(-n), "process_vm_readv");
  return Napi::Number::New(env, static_cast<double>(n));
}

// mapping.writeFrom(offset, source): bytes copied from source into the mapping.
Napi::Value NativeMapping::WriteFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  CopyArgs a = ReadCopyArgs(info, s, false, "source");
  if (a.length == 0) return Napi::Number::New(env, 0);
  int64_t n = Copy(s.addr + a.offset, a.data, a.length, true, nullptr);
  if (n < 0) throw ErrnoError(env, static_cast<int>(-n), "process_vm_writev");
  return Napi::Number::New(env, static_cast<double>(n));
}

// mapping.readIntoAsync(offset, length, target) / writeFromAsync(offset, source):
// Promise<bytes copied>, the copy on the threadpool. The mapping stays mapped
// until the copy ends (close() waits through `inflight`, resize() refuses).
Napi::Value NativeMapping::ReadIntoAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    MappingState& s = RequireOpen(env);
    CopyArgs a = ReadCopyArgs(info, s, true, "target");
    if (a.length == 0) return Settled(env, 0);
    auto work = std::make_unique<CopyWork>(env, state_, a, false);
    Napi::Value promise = work->Promise();
    work->Queue();
    s.inflight++;
    work.release();  // deletes itself after OnOK
    return promise;
  } catch (const Napi::Error& e) {
    return Rejected(env, e);
  }
}

Napi::Value NativeMapping::WriteFromAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    MappingState& s = RequireOpen(env);
    CopyArgs a = ReadCopyArgs(info, s, false, "source");
    if (a.length == 0) return Settled(env, 0);
    auto work = std::make_unique<CopyWork>(env, state_, a, true);
    Napi::Value promise = work->Promise();
    work->Queue();
    s.inflight++;
    work.release();
    return promise;
  } catch (const Napi::Error& e) {
    return Rejected(env, e);
  }
}

// mapping.detachViewsPast(offset): detach every live view whose bytes reach past
// `offset` (the end of a file that shrank: touching those bytes raises SIGBUS).
// Returns how many were detached. Views wholly before `offset` stay.
Napi::Value NativeMapping::DetachViewsPast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  uint64_t offset = std::min<uint64_t>(ArgUint(info, 0, "offset"), s.mapLength);
  const char* end = s.addr + offset;
  size_t detached = 0;
  for (auto it = s.views.begin(); it != s.views.end();) {
    Napi::ArrayBuffer ab = it->Value();
    bool gone = true;
    if (!ab.IsEmpty() && napi_is_detached_arraybuffer(env, ab, &gone) != napi_ok) gone = true;
    if (gone || ab.ByteLength() == 0 || static_cast<const char*>(ab.Data()) + ab.ByteLength() <= end) {
      ++it;
      continue;
    }
    if (napi_detach_arraybuffer(env, ab) != napi_ok) throw Napi::Error::New(env);
    it = s.views.erase(it);
    detached++;
  }
  return Napi::Number::New(env, static_cast<double>(detached));
}

}  // namespace pagewise
