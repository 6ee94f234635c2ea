// mmap / munmap / mremap, windows, lifetime and environment teardown.
#include "mapping.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>
#include <utility>

#include "errors.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

namespace pagewise {

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// ---------------------------------------------------------------------------
// MappingState

MappingState::~MappingState() {
  // Runs on the main thread when the last owner (NativeMapping, window, async
  // work item) is gone. The cleanup hook cleared `windows` and set `envGone`
  // if the environment is being torn down, so no N-API call happens then.
  if (mapped) {
    munmap(addr, mapLength);
    mapped = false;
  }
  if (!envGone) {
    Report(0);
  } else {
    for (auto& ref : windows) ref.SuppressDestruct();
  }
}

void MappingState::Report(int64_t bytes) {
  int64_t delta = bytes - reported;
  reported = bytes;
  if (delta == 0 || envGone) return;
  int64_t ignored = 0;
  napi_adjust_external_memory(env, delta, &ignored);
}

void MappingState::DetachWindows() {
  for (auto& ref : windows) {
    Napi::ArrayBuffer ab = ref.Value();
    if (ab.IsEmpty()) continue;  // already collected
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && !detached) {
      napi_detach_arraybuffer(env, ab);
    }
  }
  windows.clear();
  pruneAt = 16;
}

void MappingState::Unmap() {
  if (!mapped) return;
  munmap(addr, mapLength);
  mapped = false;
  Report(0);
}

// ---------------------------------------------------------------------------
// Per-environment registry and teardown

void AddonData::Register(const std::shared_ptr<MappingState>& state) {
  if (live.size() >= pruneAt) {
    live.erase(std::remove_if(live.begin(), live.end(), [](const std::weak_ptr<MappingState>& w) { return w.expired(); }),
               live.end());
    pruneAt = std::max<size_t>(64, live.size() * 2);
  }
  live.push_back(state);
}

AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

namespace {

// Environment (main thread exit, worker termination) teardown. Runs before the
// napi_env finalizes its references (it was registered later, and cleanup
// hooks run in reverse order), and after Node detached and finalized every
// external ArrayBuffer (those hooks were registered after this one). Async
// work has completed by then (Node drains the threadpool requests first).
void CleanupHook(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  for (auto& weak : data->live) {
    std::shared_ptr<MappingState> s = weak.lock();
    if (!s) continue;
    s->closing.store(true, std::memory_order_release);
    s->windows.clear();  // delete the weak references while the env is alive
    if (s->mapped) {
      munmap(s->addr, s->mapLength);
      s->mapped = false;
    }
    s->envGone = true;
    s->reported = 0;
  }
  data->live.clear();
}

struct WindowHint {
  std::shared_ptr<MappingState> state;
};

void FinalizeWindow(napi_env /*env*/, void* /*data*/, void* hint) {
  // Only drops an owner; ~MappingState unmaps if this was the last one.
  std::unique_ptr<WindowHint> owned(static_cast<WindowHint*>(hint));
}

}  // namespace

// ---------------------------------------------------------------------------
// NativeMapping

Napi::Function NativeMapping::DefineClass(Napi::Env env) {
  return ObjectWrap<NativeMapping>::DefineClass(
      env, "NativeMapping",
      {
          InstanceAccessor<&NativeMapping::GetLength>("length", napi_enumerable),
          InstanceAccessor<&NativeMapping::GetClosed>("closed", napi_enumerable),
          InstanceAccessor<&NativeMapping::GetAddress>("address"),
          InstanceMethod<&NativeMapping::Window>("window"),
          InstanceMethod<&NativeMapping::Detach>("detach"),
          InstanceMethod<&NativeMapping::Advise>("advise"),
          InstanceMethod<&NativeMapping::Residency>("residency"),
          InstanceMethod<&NativeMapping::ResidencyInto>("residencyInto"),
          InstanceMethod<&NativeMapping::Protect>("protect"),
          InstanceMethod<&NativeMapping::Lock>("lock"),
          InstanceMethod<&NativeMapping::Unlock>("unlock"),
          InstanceMethod<&NativeMapping::Populate>("populate"),
          InstanceMethod<&NativeMapping::Flush>("flush"),
          InstanceMethod<&NativeMapping::FlushSync>("flushSync"),
          InstanceMethod<&NativeMapping::Resize>("resize"),
          InstanceMethod<&NativeMapping::Close>("close"),
      });
}

NativeMapping::NativeMapping(const Napi::CallbackInfo& info) : ObjectWrap<NativeMapping>(info) {
  AddonData* data = GetAddonData(info.Env());
  if (data == nullptr || !data->pending) {
    throw Napi::TypeError::New(info.Env(), "Illegal constructor: use map()");
  }
  state_ = std::move(data->pending);
  data->pending.reset();
}

// mapping.address: the start address (bigint) while mapped, for /proc/self/smaps and
// PR_SET_VMA_ANON_NAME; undefined once unmapped.
Napi::Value NativeMapping::GetAddress(const Napi::CallbackInfo& info) {
  if (!state_ || !state_->mapped || state_->closed) return info.Env().Undefined();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(state_->addr)));
}

MappingState& NativeMapping::Open(Napi::Env env, const char* operation) {
  if (!state_ || state_->closed) throw MappingClosed(env, operation);
  return *state_;
}

std::pair<uint64_t, uint64_t> NativeMapping::Range(const Napi::CallbackInfo& info, size_t first) {
  Napi::Env env = info.Env();
  uint64_t offset = ArgUint(info, first, "offset");
  uint64_t length = ArgUint(info, first + 1, "length");
  uint64_t limit = state_->Limit();
  uint64_t page = PageSize();
  if (offset % page != 0) {
    throw OutOfRange(env, "offset", "a multiple of the page size (" + std::to_string(page) + ")",
                     static_cast<double>(offset));
  }
  if (offset > limit) {
    throw OutOfRange(env, "offset", ">= 0 && <= " + std::to_string(limit), static_cast<double>(offset));
  }
  if (length > limit - offset) {
    throw OutOfRange(env, "length", ">= 0 && <= " + std::to_string(limit - offset), static_cast<double>(length));
  }
  return {offset, length};
}

Napi::Value NativeMapping::GetLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state_ ? static_cast<double>(state_->length) : 0);
}

Napi::Value NativeMapping::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !state_ || state_->closed);
}

// mapping.window(offset, length): Uint8Array over [offset, offset + length),
// backed by an external ArrayBuffer that owns a reference to the state.
Napi::Value NativeMapping::Window(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = Open(env, "create a window");
  uint64_t offset = ArgUint(info, 0, "offset");
  uint64_t length = ArgUint(info, 1, "length");
  if (offset > s.length) {
    throw OutOfRange(env, "offset", ">= 0 && <= " + std::to_string(s.length), static_cast<double>(offset));
  }
  uint64_t room = std::min<uint64_t>(kMaxWindow, s.length - offset);
  if (length > room) {
    throw OutOfRange(env, "length", ">= 0 && <= " + std::to_string(room), static_cast<double>(length));
  }

  if (s.windows.size() >= s.pruneAt) {
    s.windows.erase(std::remove_if(s.windows.begin(), s.windows.end(),
                                   [](const Napi::Reference<Napi::ArrayBuffer>& r) { return r.Value().IsEmpty(); }),
                    s.windows.end());
    s.pruneAt = std::max<size_t>(16, s.windows.size() * 2);
  }

  Napi::ArrayBuffer ab;
  if (length == 0) {
    ab = Napi::ArrayBuffer::New(env, 0);  // nothing to point at; tracked all the same
  } else {
    // The hint is owned by the finalizer from here on. (If creation fails,
    // Node may or may not have run the finalizer already; leaking the small
    // hint is the safe choice. It does not fail for length <= kMaxWindow.)
    auto hint = std::make_unique<WindowHint>(WindowHint{state_});
    napi_value result = nullptr;
    napi_status status = napi_create_external_arraybuffer(env, s.addr + offset, static_cast<size_t>(length),
                                                          FinalizeWindow, hint.release(), &result);
    if (status != napi_ok) throw Napi::Error::New(env);
    ab = Napi::ArrayBuffer(env, result);
  }
  s.windows.emplace_back(Napi::Weak(ab));
  return Napi::Uint8Array::New(env, static_cast<size_t>(length), ab, 0);
}

// mapping.detach(view): boolean — detach the ArrayBuffer behind `view` if it
// is a live window of this mapping (every view over it then has length 0).
Napi::Value NativeMapping::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = Open(env, "detach a view");
  Napi::Value view = Arg(info, 0);
  if (!view.IsTypedArray() || view.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw InvalidArgType(env, "view", "an instance of Uint8Array", view);
  }
  Napi::ArrayBuffer buffer = view.As<Napi::TypedArray>().ArrayBuffer();
  for (auto it = s.windows.begin(); it != s.windows.end(); ++it) {
    Napi::ArrayBuffer ab = it->Value();
    if (ab.IsEmpty() || !ab.StrictEquals(buffer)) continue;
    bool detached = false;
    bool live = napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && !detached;
    if (live && napi_detach_arraybuffer(env, ab) != napi_ok) throw Napi::Error::New(env);
    s.windows.erase(it);
    return Napi::Boolean::New(env, live);
  }
  return Napi::Boolean::New(env, false);
}

Napi::Value NativeMapping::Resize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = Open(env, "resize");
  uint64_t newLength = ArgUint(info, 0, "newLength");
  if (newLength == 0) {
    throw OutOfRange(env, "newLength", ">= 1 && <= " + std::to_string(kMaxSafeInteger), 0.0);
  }
  if (s.inflight > 0) {
    throw CodedError(env, "ERR_MAPPING_BUSY", "Cannot resize: async work (populate, lock or flush) is in flight");
  }
  uint64_t unit = s.hugePageSize ? s.hugePageSize : PageSize();
  uint64_t newMapLength = RoundUp(newLength, unit);
  if (newMapLength > s.growLimit) {
    throw CodedError(env, "ERR_OPERATION_NOT_SUPPORTED",
                     "Cannot resize: a shared or file mapping cannot grow past the " + std::to_string(s.growLimit) +
                         " bytes it was created with (the pages past them raise SIGBUS)");
  }
  void* p = mremap(s.addr, s.mapLength, newMapLength, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) throw ErrnoError(env, errno, "mremap");
  // Only now: on failure the old windows stay valid. JavaScript cannot run
  // between the mremap and this point.
  s.DetachWindows();
  s.addr = static_cast<char*>(p);
  s.mapLength = newMapLength;
  s.length = newLength;
  s.Report(static_cast<int64_t>(newMapLength));
  return env.Undefined();
}

Napi::Value NativeMapping::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_ || state_->closed) return env.Undefined();
  MappingState& s = *state_;
  s.closed = true;
  s.closing.store(true, std::memory_order_release);
  s.DetachWindows();
  if (s.inflight == 0) s.Unmap();  // else the last finishing work item unmaps
  return env.Undefined();
}

// ---------------------------------------------------------------------------
// Async work

namespace {

class ChunkedWork : public Napi::AsyncWorker {
 public:
  ChunkedWork(Napi::Env env, std::shared_ptr<MappingState> state, uint64_t offset, uint64_t length,
              const char* syscall, std::function<int(char*, size_t)> op)
      : Napi::AsyncWorker(env, "pagewise"),
        state_(std::move(state)),
        start_(state_->addr + offset),
        length_(length),
        syscall_(syscall),
        op_(std::move(op)) {
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok) throw Napi::Error::New(env);
  }

  Napi::Value Promise() const { return Napi::Value(Env(), promise_); }

  // Threadpool: syscalls only, no N-API, no shared_ptr copies.
  void Execute() override {
    uint64_t done = 0;
    while (done < length_) {
      if (state_->closing.load(std::memory_order_acquire)) {
        aborted_ = true;
        return;
      }
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, length_ - done));
      int err = op_(start_ + done, n);
      if (err != 0) {
        errno_ = err;
        return;
      }
      done += n;
    }
  }

  // Main thread. Uses only plain N-API calls whose failures are ignored: this
  // may run while the environment shuts down, when nothing can be thrown.
  void OnOK() override {
    Finish();
    napi_env env = Env();
    napi_value value = nullptr;
    if (aborted_) {
      value = RawCodedError(env, "ERR_MAPPING_CLOSED", std::string("Cannot ") + Verb() + ": the mapping is closed");
    } else if (errno_ != 0) {
      value = RawErrnoError(env, errno_, syscall_);
    } else {
      if (napi_get_undefined(env, &value) == napi_ok) napi_resolve_deferred(env, deferred_, value);
      return;
    }
    if (value != nullptr) napi_reject_deferred(env, deferred_, value);
  }

  void OnError(const Napi::Error& /*error*/) override {
    // Never called: Execute() does not use SetError(). Settle anyway.
    errno_ = errno_ != 0 ? errno_ : EIO;
    OnOK();
  }

 private:
  const char* Verb() const {
    std::string s = syscall_;
    if (s == "madvise") return "populate";
    if (s == "msync") return "flush";
    return "lock";
  }

  void Finish() {
    MappingState& s = *state_;
    s.inflight--;
    if (s.closed && s.inflight == 0) s.Unmap();
  }

  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::shared_ptr<MappingState> state_;
  char* start_;
  uint64_t length_;
  const char* syscall_;
  std::function<int(char*, size_t)> op_;
  bool aborted_ = false;
  int errno_ = 0;
};

}  // namespace

Napi::Value Rejected(Napi::Env env, const Napi::Error& error) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(error.Value());
  return deferred.Promise();
}

Napi::Value QueueChunked(Napi::Env env, const std::shared_ptr<MappingState>& state, uint64_t offset,
                         uint64_t length, const char* syscall, std::function<int(char*, size_t)> op) {
  if (length == 0) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  auto work = std::make_unique<ChunkedWork>(env, state, offset, length, syscall, std::move(op));
  Napi::Value promise = work->Promise();
  work->Queue();
  state->inflight++;
  work.release();  // AsyncWorker deletes itself after OnOK / OnError
  return promise;
}

// ---------------------------------------------------------------------------
// addon.map(length, protection, shared, fd, offset, populate, noreserve, hugePageShift)

Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = GetAddonData(env);
  uint64_t length = ArgUint(info, 0, "length");
  if (length == 0) throw OutOfRange(env, "length", ">= 1 && <= " + std::to_string(kMaxSafeInteger), 0.0);
  int protection = static_cast<int>(ArgInt(info, 1, "protection", 0, INT32_MAX));
  bool shared = ArgBool(info, 2, "shared");
  int fd = static_cast<int>(ArgInt(info, 3, "fd", -1, INT32_MAX));
  uint64_t offset = ArgUint(info, 4, "offset");
  bool populate = ArgBool(info, 5, "populate");
  bool noreserve = ArgBool(info, 6, "noreserve");
  int hugePageShift = static_cast<int>(ArgInt(info, 7, "hugePageShift", 0, 63));

  if (hugePageShift > 0 && noreserve) {
    // MAP_HUGETLB | MAP_NORESERVE maps without reserving huge pages: a touch the
    // pool cannot supply raises SIGBUS. Reserve at mmap time (ENOMEM) instead.
    throw CodedError(env, "ERR_INVALID_ARG_VALUE", "noreserve cannot be combined with huge pages");
  }
  int flags = shared ? MAP_SHARED : MAP_PRIVATE;
  if (fd < 0) flags |= MAP_ANONYMOUS;
  if (populate) flags |= MAP_POPULATE;
  if (noreserve) flags |= MAP_NORESERVE;
  uint64_t unit = PageSize();
  uint64_t hugePageSize = 0;
  if (hugePageShift > 0) {
    flags |= MAP_HUGETLB | (hugePageShift << MAP_HUGE_SHIFT);
    if (hugePageShift < 48) {
      hugePageSize = uint64_t{1} << hugePageShift;
      unit = std::max<uint64_t>(unit, hugePageSize);
    }
  }
  void* p = mmap(nullptr, static_cast<size_t>(length), protection, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) throw ErrnoError(env, errno, "mmap");

  auto state = std::make_shared<MappingState>();  // owns the range from here on
  state->env = env;
  state->addr = static_cast<char*>(p);
  state->length = length;
  state->mapLength = RoundUp(length, unit);
  state->hugePageSize = hugePageSize;
  if (shared || fd >= 0) state->growLimit = state->mapLength;
  state->mapped = true;
  state->Report(static_cast<int64_t>(state->mapLength));
  data->Register(state);

  data->pending = state;
  struct ClearPending {
    AddonData* data;
    ~ClearPending() { data->pending.reset(); }
  } clear{data};
  return data->mappingCtor.New({});
}

void InitMapping(Napi::Env env, Napi::Object exports, AddonData* data) {
  data->mappingCtor = Napi::Persistent(NativeMapping::DefineClass(env));
  napi_add_env_cleanup_hook(env, CleanupHook, data);
  exports.Set("map", Napi::Function::New(env, Map, "map"));
}

}  // namespace pagewise
