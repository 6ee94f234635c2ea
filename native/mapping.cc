// mmap / munmap / mremap, views, lifetime and environment teardown.
#include "mapping.h"

#include <sys/mman.h>
#include <sys/stat.h>
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

const size_t kPageSize = static_cast<size_t>(sysconf(_SC_PAGESIZE));

// ---------------------------------------------------------------------------
// MappingState

MappingState::~MappingState() {
  // Runs on the main thread when the last owner (NativeMapping, view, async
  // work item) is gone. The cleanup hook cleared `views` and set `envGone`
  // if the environment is being torn down, so no N-API call happens then.
  if (bound != nullptr) {
    if (bound->functions == 0) delete bound;  // no function was made
    else bound->state = nullptr;              // its functions refuse calls from now on
  }
  if (mapped) {
    munmap(addr, mapLength);
    mapped = false;
  }
  for (auto& [at, bytes] : retired) munmap(at, bytes);
  retired.clear();
  if (!envGone) {
    Report(0);
  } else {
    for (auto& ref : views) ref.SuppressDestruct();
  }
}

void MappingState::Report(int64_t bytes) {
  int64_t delta = bytes - reported;
  reported = bytes;
  if (delta == 0 || envGone) return;
  int64_t ignored = 0;
  napi_adjust_external_memory(env, delta, &ignored);
}

void MappingState::DetachViews() {
  for (auto& ref : views) {
    Napi::ArrayBuffer ab = ref.Value();
    if (ab.IsEmpty()) continue;  // already collected
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && !detached) {
      napi_detach_arraybuffer(env, ab);
    }
  }
  views.clear();
  pruneAt = 16;
}

void MappingState::Unmap() {
  for (auto& [at, bytes] : retired) munmap(at, bytes);
  retired.clear();
  if (!mapped) return;
  munmap(addr, mapLength);
  mapped = false;
  Report(0);
}

void MappingState::Retire(char* at, uint64_t bytes) {
  // MAP_FIXED_NOREPLACE: if another thread mapped something there in between,
  // leave it alone (the old views could then reach it, as before this fix).
  void* p = mmap(at, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
  if (p == at) {
    retired.emplace_back(at, bytes);
  } else if (p != MAP_FAILED) {
    munmap(p, bytes);  // a kernel without MAP_FIXED_NOREPLACE placed it elsewhere
  }
}

void MappingState::Release() {
  if (!mapped || released) return;
  // Writable, private, unreserved zero pages: a threadpool write lands in memory
  // that belongs to nobody, a read sees zeros, and the file and its pages are
  // let go now. If this fails (ENOMEM), the old mapping simply stays until the
  // range is unmapped: still safe, only later.
  void* p = mmap(addr, mapLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED) released = true;
  Report(0);
}

void MappingState::UnmapIfUnreachable() {
  if (closed && inflight == 0 && liveViews == 0) Unmap();
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
    s->views.clear();  // delete the weak references while the env is alive
    if (s->mapped) {
      munmap(s->addr, s->mapLength);
      s->mapped = false;
    }
    for (auto& [at, bytes] : s->retired) munmap(at, bytes);
    s->retired.clear();
    s->envGone = true;
    s->reported = 0;
  }
  data->live.clear();
}

// A view's claim on the range. Two events release it, in either order, both
// on the main thread: the backing store's release (external ArrayBuffer
// finalizer) and the collection of the ArrayBuffer object (napi_add_finalizer).
// The backing store alone is not enough: detaching a buffer releases it at
// once, while Node's async work (crypto.randomFill, fs.write) still holds the
// raw pointer and keeps only the JavaScript object alive until its callback.
struct ViewHint {
  std::shared_ptr<MappingState> state;
  int holds = 2;
};

void DropViewHold(napi_env /*env*/, void* /*data*/, void* hint) {
  auto* h = static_cast<ViewHint*>(hint);
  if (--h->holds > 0) return;
  std::shared_ptr<MappingState> state = std::move(h->state);
  delete h;
  state->liveViews--;
  state->UnmapIfUnreachable();
  // ~MappingState unmaps if this was the last owner.
}

// Marks NativeMapping objects, so that a method called on another object, even
// one another addon wrapped, is refused before anything is unwrapped.
constexpr napi_type_tag kMappingTag = {0x7061676577697365ULL, 0x4e61746976654d61ULL};

// Node throws these two as TypeErrors (ERR_INVALID_THIS, ERR_ILLEGAL_CONSTRUCTOR).
Napi::Error CodedTypeError(Napi::Env env, const char* code, const char* message) {
  Napi::Error e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

}  // namespace

// ---------------------------------------------------------------------------
// NativeMapping

NativeMapping* NativeMapping::Self(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value self = info.This();
  bool tagged = false;
  // napi_object_expected for a primitive receiver: one N-API call on the hot path.
  if (self != nullptr && napi_check_object_type_tag(env, self, &kMappingTag, &tagged) == napi_ok && tagged) {
    return Unwrap(info.This().As<Napi::Object>());
  }
  throw CodedTypeError(info.Env(), "ERR_INVALID_THIS", "Value of \"this\" must be of type NativeMapping");
}

// Methods and accessors are plain functions on the prototype that check their
// receiver themselves: the class template's own check throws a TypeError
// without a code ("Illegal invocation"), and accessors had none.
template <Napi::Value (NativeMapping::*Method)(const Napi::CallbackInfo&)>
Napi::Value NativeMapping::Call(const Napi::CallbackInfo& info) {
  return (Self(info)->*Method)(info);
}

Napi::Value NativeMapping::CallState(const Napi::CallbackInfo& info, StateMethod method) {
  napi_value argv[3] = {Arg(info, 0), Arg(info, 1), Arg(info, 2)};
  napi_value result = method(info.Env(), state_.get(), argv);
  bool failed = false;  // nullptr is also undefined: look at the exception
  if (result == nullptr && napi_is_exception_pending(info.Env(), &failed) == napi_ok && failed) RethrowPending(info.Env());
  return Napi::Value(info.Env(), result);
}

namespace {

// The functions BindStateMethods defines: plain N-API callbacks (no
// node-addon-api wrapper), whose data is the mapping's BoundHold.
template <StateMethod Method>
PAGEWISE_HOT napi_value CallBound(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];  // napi_get_cb_info fills missing ones with undefined
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  return Method(env, static_cast<BoundHold*>(data)->state, argv);
}

void DropBoundFunction(napi_env /*env*/, void* data, void* /*hint*/) {
  auto* hold = static_cast<BoundHold*>(data);
  if (--hold->functions > 0) return;
  if (hold->state != nullptr) hold->state->bound = nullptr;
  delete hold;
}

template <StateMethod Method>
napi_property_descriptor BoundMethod(Napi::Env env, const char* name, BoundHold* hold) {
  napi_value fn = nullptr;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, CallBound<Method>, hold, &fn) != napi_ok) throw Napi::Error::New(env);
  if (napi_add_finalizer(env, fn, hold, DropBoundFunction, nullptr, nullptr) != napi_ok) throw Napi::Error::New(env);
  hold->functions++;  // its finalizer counts it down
  // Writable and configurable like a prototype method (a Proxy or a spy may wrap it); not enumerable.
  return napi_property_descriptor{name, nullptr, nullptr, nullptr, nullptr, fn,
                                  static_cast<napi_property_attributes>(napi_writable | napi_configurable), nullptr};
}

}  // namespace

void NativeMapping::BindStateMethods(Napi::Env env, Napi::Object self, const std::shared_ptr<MappingState>& state) {
  if (state->bound == nullptr) state->bound = new BoundHold{state.get(), 0};
  // Until a function exists, the hold belongs to the state (a failure below leaves it there).
  BoundHold* hold = state->bound;
  napi_property_descriptor methods[] = {
      BoundMethod<AdviseState>(env, "advise", hold),
      BoundMethod<ResidencyBitsState>(env, "residencyBits", hold),
      BoundMethod<ResidencyIntoState>(env, "residencyInto", hold),
  };
  if (napi_define_properties(env, self, 3, methods) != napi_ok) throw Napi::Error::New(env);
}

Napi::Function NativeMapping::DefineClass(Napi::Env env) {
  Napi::Function ctor = ObjectWrap<NativeMapping>::DefineClass(env, "NativeMapping", {});
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  using PD = Napi::PropertyDescriptor;
  proto.DefineProperties({
      PD::Accessor<&Call<&NativeMapping::GetLength>>("length", napi_enumerable),
      PD::Accessor<&Call<&NativeMapping::GetClosed>>("closed", napi_enumerable),
      PD::Accessor<&Call<&NativeMapping::GetAddress>>("address"),
      PD::Function("view", &Call<&NativeMapping::View>),
      PD::Function("detachView", &Call<&NativeMapping::DetachView>),
      PD::Function("advise", &Call<&NativeMapping::Advise>),
      PD::Function("adviseRuns", &Call<&NativeMapping::AdviseRuns>),
      PD::Function("residency", &Call<&NativeMapping::Residency>),
      PD::Function("residencyInto", &Call<&NativeMapping::ResidencyInto>),
      PD::Function("residencyBits", &Call<&NativeMapping::ResidencyBits>),
      PD::Function("protect", &Call<&NativeMapping::Protect>),
      PD::Function("lock", &Call<&NativeMapping::Lock>),
      PD::Function("unlock", &Call<&NativeMapping::Unlock>),
      PD::Function("populate", &Call<&NativeMapping::Populate>),
      PD::Function("flush", &Call<&NativeMapping::Flush>),
      PD::Function("flushSync", &Call<&NativeMapping::FlushSync>),
      PD::Function("resize", &Call<&NativeMapping::Resize>),
      PD::Function("readInto", &Call<&NativeMapping::ReadInto>),
      PD::Function("readIntoAsync", &Call<&NativeMapping::ReadIntoAsync>),
      PD::Function("writeFrom", &Call<&NativeMapping::WriteFrom>),
      PD::Function("writeFromAsync", &Call<&NativeMapping::WriteFromAsync>),
      PD::Function("detachViewsPast", &Call<&NativeMapping::DetachViewsPast>),
      PD::Function("close", &Call<&NativeMapping::Close>),
  });
  return ctor;
}

NativeMapping::NativeMapping(const Napi::CallbackInfo& info) : ObjectWrap<NativeMapping>(info) {
  AddonData* data = GetAddonData(info.Env());
  if (data == nullptr || !data->pending) {
    throw CodedTypeError(info.Env(), "ERR_ILLEGAL_CONSTRUCTOR", "Illegal constructor: use map()");
  }
  if (napi_type_tag_object(info.Env(), info.This(), &kMappingTag) != napi_ok) throw Napi::Error::New(info.Env());
  state_ = std::move(data->pending);
  data->pending.reset();
}

// mapping.address: the start address (bigint) while mapped, for /proc/self/smaps and
// PR_SET_VMA_ANON_NAME; undefined once closed.
Napi::Value NativeMapping::GetAddress(const Napi::CallbackInfo& info) {
  if (!state_ || !state_->mapped || state_->closed) return info.Env().Undefined();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(state_->addr)));
}

MappingState& RequireOpen(Napi::Env env, MappingState* s) {
  if (s == nullptr || s->closed) throw MappingClosed(env);
  return *s;
}

bool ReadRange(napi_env env, const MappingState& s, napi_value offsetArg, napi_value lengthArg, uint64_t* offset,
               uint64_t* length) {
  if (!ReadUint(env, offsetArg, "offset", offset) || !ReadUint(env, lengthArg, "length", length)) return false;
  uint64_t limit = s.Limit();
  if ((*offset & (PageSize() - 1)) != 0 || *offset > limit) {
    ThrowOutOfRange(env, "offset");
    return false;
  }
  if (*length > limit - *offset) {
    ThrowOutOfRange(env, "length");
    return false;
  }
  return true;
}

std::pair<uint64_t, uint64_t> Range(const Napi::CallbackInfo& info, size_t first, const MappingState& s) {
  uint64_t offset = 0;
  uint64_t length = 0;
  if (!ReadRange(info.Env(), s, Arg(info, first), Arg(info, first + 1), &offset, &length)) RethrowPending(info.Env());
  return {offset, length};
}

Napi::Value NativeMapping::GetLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state_ ? static_cast<double>(state_->length) : 0);
}

Napi::Value NativeMapping::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !state_ || state_->closed);
}

// mapping.view(offset, length): Uint8Array over [offset, offset + length),
// backed by an external ArrayBuffer that owns a reference to the state.
Napi::Value NativeMapping::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  uint64_t offset = ArgUint(info, 0, "offset");
  uint64_t length = ArgUint(info, 1, "length");
  if (offset > s.length) {
    throw OutOfRange(env, "offset");
  }
  uint64_t room = std::min<uint64_t>(GetAddonData(env)->maxViewLength, s.length - offset);
  if (length > room) {
    throw OutOfRange(env, "length");
  }

  if (s.views.size() >= s.pruneAt) {
    s.views.erase(std::remove_if(s.views.begin(), s.views.end(),
                                   [](const Napi::Reference<Napi::ArrayBuffer>& r) { return r.Value().IsEmpty(); }),
                    s.views.end());
    s.pruneAt = std::max<size_t>(16, s.views.size() * 2);
  }

  Napi::ArrayBuffer ab;
  if (length == 0) {
    ab = Napi::ArrayBuffer::New(env, 0);  // nothing to point at; tracked all the same
  } else {
    // The hint is owned by the finalizer from here on. (If creation fails,
    // Node may or may not have run the finalizer already; leaking the small
    // hint is the safe choice. It does not fail for length <= maxViewLength.)
    auto* hint = new ViewHint{state_};
    napi_value result = nullptr;
    napi_status status = napi_create_external_arraybuffer(env, s.addr + offset, static_cast<size_t>(length),
                                                          DropViewHold, hint, &result);
    if (status != napi_ok) throw Napi::Error::New(env);
    s.liveViews++;
    if (napi_add_finalizer(env, result, nullptr, DropViewHold, hint, nullptr) != napi_ok) {
      hint->holds--;  // only the backing store's release will count (cannot happen for a fresh object)
    }
    ab = Napi::ArrayBuffer(env, result);
  }
  s.views.emplace_back(Napi::Weak(ab));
  return Napi::Uint8Array::New(env, static_cast<size_t>(length), ab, 0);
}

// mapping.detachView(view): boolean — detach the ArrayBuffer behind `view` if it
// is a live view of this mapping (every view over it then has length 0).
Napi::Value NativeMapping::DetachView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  napi_value arraybuffer = nullptr;
  ArgTypedArray(info, 0, napi_uint8_array, "view", &arraybuffer);
  Napi::ArrayBuffer buffer(env, arraybuffer);
  for (auto it = s.views.begin(); it != s.views.end(); ++it) {
    Napi::ArrayBuffer ab = it->Value();
    if (ab.IsEmpty() || !ab.StrictEquals(buffer)) continue;
    bool detached = false;
    bool live = napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && !detached;
    if (live && napi_detach_arraybuffer(env, ab) != napi_ok) throw Napi::Error::New(env);
    s.views.erase(it);
    return Napi::Boolean::New(env, live);
  }
  return Napi::Boolean::New(env, false);
}

Napi::Value NativeMapping::Resize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  uint64_t newLength = ArgUint(info, 0, "newLength");
  if (newLength == 0) {
    throw OutOfRange(env, "newLength");
  }
  if (s.inflight > 0) {
    throw CodedError(env, "ERR_MAPPING_BUSY", "Cannot resize: async work (populate, lock or flush) is in flight");
  }
  uint64_t unit = s.hugePageSize ? s.hugePageSize : PageSize();
  uint64_t newMapLength = RoundUp(newLength, unit);
  if (newMapLength > s.growLimit) {
    // The pages past a shmem object or a file raise SIGBUS on access.
    throw CodedError(env, "ERR_OPERATION_NOT_SUPPORTED", "Cannot grow past the mapped object");
  }
  char* oldAddr = s.addr;
  uint64_t oldMapLength = s.mapLength;
  void* p = mremap(s.addr, s.mapLength, newMapLength, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) throw ErrnoError(env, errno, "mremap");
  // Views are detached below, but a backing store moved away with
  // ArrayBuffer.prototype.transfer() or held by Node's threadpool still points
  // at the old range: put zero pages where mremap took memory away.
  if (s.liveViews > 0) {
    if (p != oldAddr) {
      s.Retire(oldAddr, oldMapLength);
    } else if (newMapLength < oldMapLength) {
      s.Retire(oldAddr + newMapLength, oldMapLength - newMapLength);
    }
  }
  // Only now: on failure the old views stay valid. JavaScript cannot run
  // between the mremap and this point.
  s.DetachViews();
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
  // Views stay attached (see mapping.h): they now show the zero pages.
  s.views.clear();
  s.pruneAt = 16;
  s.Release();
  s.UnmapIfUnreachable();  // else the last view or work item to go unmaps
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
      value = RawCodedError(env, "ERR_MAPPING_CLOSED", "The mapping is closed");
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
  void Finish() {
    MappingState& s = *state_;
    s.inflight--;
    s.UnmapIfUnreachable();
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

Napi::Value NativeMapping::QueueRangeOp(const Napi::CallbackInfo& info, const char* syscall,
                                        RangeOp op) {
  Napi::Env env = info.Env();
  try {
    RequireOpen(env);
    auto [offset, length] = Range(info, 0);
    bool flag = ArgBool(info, 2, "flag");
    return QueueChunked(env, state_, offset, length, syscall,
                        [op, flag](char* addr, size_t len) { return op(addr, len, flag); });
  } catch (const Napi::Error& e) {
    return Rejected(env, e);
  }
}

// ---------------------------------------------------------------------------
// addon.map(length, protection, shared, fd, offset, populate, noreserve, hugePageShift)

Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = GetAddonData(env);
  uint64_t length = ArgUint(info, 0, "length");
  if (length == 0) throw OutOfRange(env, "length");
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
  if (fd >= 0) {
    // Pages past the end of a file raise SIGBUS on access: refuse them, as the public API does.
    struct stat st {};
    if (fstat(fd, &st) != 0) throw ErrnoError(env, errno, "fstat");
    if (S_ISREG(st.st_mode)) {
      uint64_t size = static_cast<uint64_t>(st.st_size);
      if (offset > size) throw OutOfRange(env, "offset");
      if (length > size - offset) throw OutOfRange(env, "length");
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
  Napi::Object self = data->mappingCtor.New({});
  NativeMapping::BindStateMethods(env, self, state);
  return self;
}

void InitMapping(Napi::Env env, Napi::Object exports, AddonData* data) {
  data->mappingCtor = Napi::Persistent(NativeMapping::DefineClass(env));
  napi_add_env_cleanup_hook(env, CleanupHook, data);
  exports.Set("map", Napi::Function::New(env, Map, "map"));
}

}  // namespace pagewise
