// NativeMapping: one mmap'ed range, its ArrayBuffer views and its lifetime.
//
// Ownership: the memory belongs to a MappingState held by std::shared_ptr.
// Owners are the NativeMapping JS object, every view (through its hint, see
// ViewHint in mapping.cc) and every in-flight async work item.
//
// close() releases the file and the physical memory at once by mapping fresh
// private anonymous memory over the range (MAP_FIXED: atomic, the range is
// never unmapped in between), and keeps the views attached: Node's own
// threadpool work (zlib, crypto.randomFill, fs writes) may still read or write
// through a view, and zlib aborts the process if its input is detached mid-
// stream. The range is unmapped only when nothing can reach it any more: no
// async work in flight and no view alive, where a view is alive until both
// its ArrayBuffer object is collected and its backing store is released (Node's
// async APIs keep the object referenced until their callback). The env cleanup
// hook unmaps at environment teardown; ~MappingState when the last owner goes.
#pragma once

#include <napi.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "errors.h"

namespace pagewise {

// sysconf(_SC_PAGESIZE), read once at load (a power of two).
extern const size_t kPageSize;
inline size_t PageSize() { return kPageSize; }
// Longest view (ArrayBuffer) every engine accepts; AddonData::maxViewLength
// is what this one accepts (native/limits.cc).
constexpr uint64_t kMaxViewLength = uint64_t{1} << 32;
// Async work splits its range into chunks of this size and checks for close()
// between chunks.
constexpr size_t kChunk = size_t{64} << 20;

inline uint64_t RoundUp(uint64_t value, uint64_t to) { return (value + to - 1) / to * to; }

// A descriptor about this process (its pagemap, a pidfd), opened by `open` at the first
// call and kept: reopened in a forked child (another pid, whose own it must be) and
// after a failure (-1, errno set by `open`).
// Main thread and workers alike: serialised by `lock`.
template <typename Open>
int ProcessDescriptor(std::mutex* lock, pid_t* owner, int* fd, Open open) {
  std::lock_guard<std::mutex> hold(*lock);
  pid_t pid = getpid();
  if (*owner != pid || *fd < 0) {
    if (*fd >= 0) close(*fd);
    *fd = open();
    *owner = pid;
  }
  return *fd;
}

struct MappingState;

// The N-API data of a mapping's bound functions (advise, residencyBits,
// residencyInto; see NativeMapping::BindStateMethods): the state, not owned, so
// that a function kept alive does not keep the memory mapped. Main thread only,
// without atomics: ~MappingState (which runs on the main thread: every owner lets
// go there) sets `state` to nullptr, and the functions' finalizers count
// `functions` down; the last one deletes the hold.
struct BoundHold {
  MappingState* state;
  int functions;
  const double* args;  // the environment's call arguments (AddonData::callArgs)
};

struct MappingState {
  napi_env env = nullptr;
  char* addr = nullptr;
  uint64_t length = 0;     // as requested
  uint64_t mapLength = 0;  // what munmap/mremap need (rounded to the page or huge page size)
  uint64_t hugePageSize = 0;  // 0 for normal pages
  // mremap may not grow the range past this: a shared anonymous mapping is a
  // shmem object of its original size, a file mapping ends at the file, and
  // pages past either raise SIGBUS on access. UINT64_MAX for private anonymous.
  uint64_t growLimit = UINT64_MAX;
  bool mapped = false;
  bool released = false;    // close() replaced the range with anonymous memory nobody else sees
  int liveViews = 0;        // views (length > 0) not yet collected and released (main thread only)
  // Ranges a moving or shrinking resize() left behind while views could still
  // reach them (a transferred backing store, Node's threadpool): zero pages,
  // unmapped with the mapping. {addr, length}.
  std::vector<std::pair<char*, uint64_t>> retired;
  bool closed = false;      // close() was called
  bool envGone = false;     // the env cleanup hook ran: no N-API calls any more
  int inflight = 0;         // async work items queued and not yet completed (main thread only)
  std::atomic<bool> closing{false};  // read by worker threads between chunks
  int64_t reported = 0;     // bytes reported to V8 as external memory
  // Weak references to the ArrayBuffer behind every view handed out
  // (including empty ones), pruned of collected entries as it grows.
  std::vector<Napi::Reference<Napi::ArrayBuffer>> views;
  size_t pruneAt = 16;
  BoundHold* bound = nullptr;  // the bound functions' hold, told when this state goes

  MappingState() = default;
  MappingState(const MappingState&) = delete;
  MappingState& operator=(const MappingState&) = delete;
  ~MappingState();

  // Offsets/lengths are validated against the requested length rounded up to
  // a page (with a mask, not a division: this is on the per-call path).
  uint64_t Limit() const { return (length + PageSize() - 1) & ~uint64_t{PageSize() - 1}; }
  void Report(int64_t bytes);       // AdjustExternalMemory to `bytes` in total
  void DetachViews();             // detach + forget every view
  void Unmap();                     // munmap if still mapped (idempotent), retired ranges too
  void Retire(char* at, uint64_t bytes);  // map zero pages over a range mremap just gave up
  void Release();                   // close(): drop the file and the pages, keep the range reserved
  // Async work items call this when they end (after inflight--): after close(),
  // unmaps once no view and no work can reach the range.
  void UnmapIfUnreachable();
};

// Throws ERR_MAPPING_CLOSED when closed (the public API checked first; this guards the memory).
MappingState& RequireOpen(Napi::Env env, MappingState* s);
// Validates (offset, length) against `s`: page-aligned offset, offset + length
// <= Limit(). False with the JavaScript exception set otherwise.
PAGEWISE_HOT bool ReadRange(napi_env env, const MappingState& s, napi_value offsetArg, napi_value lengthArg,
                            uint64_t* offset, uint64_t* length);
// The same at info[first], info[first + 1], throwing. Returns {offset, length}.
std::pair<uint64_t, uint64_t> Range(const Napi::CallbackInfo& info, size_t first, const MappingState& s);

// The per-call methods (one syscall each, called in loops), as plain N-API:
// `state` may be nullptr (gone) or closed (ERR_MAPPING_CLOSED); `argv` holds
// three arguments (undefined where missing). They return the result (nullptr:
// undefined), or nullptr with the JavaScript exception set. Each is reachable
// twice: as a prototype method that checks its receiver, and as an own property
// of every mapping bound to its state (BindStateMethods) that needs no receiver
// check. A receiver check is a private-symbol lookup on the object
// (napi_check_object_type_tag, napi_unwrap) and costs more than the rest of the
// call (bench/call-overhead.mjs).
using StateMethod = napi_value (*)(napi_env env, MappingState* state, const napi_value* argv);
PAGEWISE_HOT napi_value AdviseState(napi_env env, MappingState* state, const napi_value* argv);         // madvise.cc
PAGEWISE_HOT napi_value ResidencyBitsState(napi_env env, MappingState* state, const napi_value* argv);  // mincore.cc
PAGEWISE_HOT napi_value ResidencyIntoState(napi_env env, MappingState* state, const napi_value* argv);  // mincore.cc
// The same calls with their numbers read from AddonData::callArgs, which the
// public API fills just before the call (a Float64Array only lib/ holds): no
// argument crosses N-API, which costs more per call than the rest of the call's
// work (bench/call-overhead.mjs). Each number is checked as ReadRange /
// ReadInt check a JavaScript number, so any contents are memory-safe.
using ArgsMethod = napi_value (*)(napi_env env, MappingState* state, const double* args);
PAGEWISE_HOT napi_value AdviseArgsState(napi_env env, MappingState* state, const double* args);         // madvise.cc: offset, length, advice
PAGEWISE_HOT napi_value ResidencyBitsArgsState(napi_env env, MappingState* state, const double* args);  // mincore.cc: offset, length
// ReadRange for numbers from callArgs.
PAGEWISE_HOT bool RangeFromArgs(napi_env env, const MappingState& s, double offsetArg, double lengthArg, uint64_t* offset,
                                uint64_t* length);

class NativeMapping : public Napi::ObjectWrap<NativeMapping> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit NativeMapping(const Napi::CallbackInfo& info);
  // Defines advise and residencyInto on `self` as functions whose data holds a
  // weak reference to `state`: memory-safe whatever their receiver, since they
  // never look at it.
  static void BindStateMethods(Napi::Env env, Napi::Object self, const std::shared_ptr<MappingState>& state);

 private:
  Napi::Value GetLength(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetAddress(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value DetachView(const Napi::CallbackInfo& info);
  Napi::Value Advise(const Napi::CallbackInfo& info);     // madvise.cc
  Napi::Value AdviseRuns(const Napi::CallbackInfo& info);  // process_madvise.cc
  Napi::Value PageFlags(const Napi::CallbackInfo& info);   // pagemap.cc
  Napi::Value TrackWrites(const Napi::CallbackInfo& info); // userfaultfd.cc
  Napi::Value Populate(const Napi::CallbackInfo& info);   // madvise.cc
  Napi::Value Residency(const Napi::CallbackInfo& info);  // mincore.cc
  Napi::Value ResidencyInto(const Napi::CallbackInfo& info);  // mincore.cc
  Napi::Value ResidencyBits(const Napi::CallbackInfo& info);  // mincore.cc
  Napi::Value Protect(const Napi::CallbackInfo& info);    // mprotect.cc
  Napi::Value Lock(const Napi::CallbackInfo& info);       // mlock.cc
  Napi::Value Unlock(const Napi::CallbackInfo& info);     // mlock.cc
  Napi::Value Flush(const Napi::CallbackInfo& info);      // msync.cc
  Napi::Value FlushSync(const Napi::CallbackInfo& info);  // msync.cc
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value ReadInto(const Napi::CallbackInfo& info);        // read.cc
  Napi::Value ReadIntoAsync(const Napi::CallbackInfo& info);   // read.cc
  Napi::Value WriteFrom(const Napi::CallbackInfo& info);       // read.cc
  Napi::Value WriteFromAsync(const Napi::CallbackInfo& info);  // read.cc
  Napi::Value DetachViewsPast(const Napi::CallbackInfo& info); // read.cc
  Napi::Value Close(const Napi::CallbackInfo& info);

  // `this` of a call, or ERR_INVALID_THIS when it is not a NativeMapping.
  static NativeMapping* Self(const Napi::CallbackInfo& info);
  template <Napi::Value (NativeMapping::*Method)(const Napi::CallbackInfo&)>
  static Napi::Value Call(const Napi::CallbackInfo& info);
  // A StateMethod on this mapping's state with info's first three arguments.
  Napi::Value CallState(const Napi::CallbackInfo& info, StateMethod method);

  MappingState& RequireOpen(Napi::Env env) { return pagewise::RequireOpen(env, state_.get()); }
  std::pair<uint64_t, uint64_t> Range(const Napi::CallbackInfo& info, size_t first) {
    return pagewise::Range(info, first, *state_);
  }
  // populate / lock / flush, which differ only in the syscall: the range at
  // info[0], info[1] and a flag at info[2], then op(addr, len, flag) chunked on
  // the threadpool (QueueChunked). Returns a Promise; argument errors reject it.
  using RangeOp = int (*)(char* addr, size_t len, bool flag);
  Napi::Value QueueRangeOp(const Napi::CallbackInfo& info, const char* syscall, RangeOp op);

  std::shared_ptr<MappingState> state_;
};

// Runs `op(addr, len)` over [offset, offset + length) in chunks on the libuv
// threadpool and returns a Promise. `op` returns 0 or an errno value and must
// not touch N-API. Settles on the main thread: resolves when every chunk
// succeeded, rejects with an errno error (syscall `syscall`) on failure, or
// with ERR_MAPPING_CLOSED when close() stopped it before it finished.
Napi::Value QueueChunked(Napi::Env env, const std::shared_ptr<MappingState>& state, uint64_t offset,
                         uint64_t length, const char* syscall, std::function<int(char*, size_t)> op);

// A Promise rejected with `error`.
Napi::Value Rejected(Napi::Env env, const Napi::Error& error);

// addon.map(length, protection, shared, fd, offset, populate, noreserve, hugePageShift)
Napi::Value Map(const Napi::CallbackInfo& info);

// Per-environment data: the NativeMapping constructor and the registry of
// live mappings that the cleanup hook unmaps at teardown.
struct AddonData {
  Napi::FunctionReference mappingCtor;
  std::vector<std::weak_ptr<MappingState>> live;
  std::shared_ptr<MappingState> pending;  // handed from Map() to the constructor
  Napi::FunctionReference trackerCtor;    // WriteTracker (userfaultfd.cc)
  std::shared_ptr<void> pendingTracker;   // handed from trackWrites() to its constructor
  double callArgs[4] = {0, 0, 0, 0};      // the arguments of the *Args bound functions (see ArgsMethod)
  size_t pruneAt = 64;
  uint64_t maxViewLength = kMaxViewLength;  // set at load by ProbeMaxViewLength()
  void Register(const std::shared_ptr<MappingState>& state);
};

AddonData* GetAddonData(Napi::Env env);
uint64_t ProbeMaxViewLength(Napi::Env env);  // limits.cc
void InitMapping(Napi::Env env, Napi::Object exports, AddonData* data);
void InitWriteTracker(Napi::Env env, AddonData* data);  // userfaultfd.cc

}  // namespace pagewise
