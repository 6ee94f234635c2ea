// NativeMapping: one mmap'ed range, its ArrayBuffer windows and its lifetime.
//
// Ownership: the memory belongs to a MappingState held by std::shared_ptr.
// Owners are the NativeMapping JS object, every window ArrayBuffer (through
// its finalize hint) and every in-flight async work item. The range is
// unmapped exactly once: by close() (or, if async work is in flight, by the
// last work item to finish after close()), by the env cleanup hook at
// environment teardown, or by ~MappingState when the last owner goes away.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace pagewise {

size_t PageSize();
// Largest window (ArrayBuffer) handed out.
constexpr uint64_t kMaxWindow = uint64_t{1} << 32;
// Async work splits its range into chunks of this size and checks for close()
// between chunks.
constexpr size_t kChunk = size_t{64} << 20;

inline uint64_t RoundUp(uint64_t value, uint64_t to) { return (value + to - 1) / to * to; }

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
  bool closed = false;      // close() was called
  bool envGone = false;     // the env cleanup hook ran: no N-API calls any more
  int inflight = 0;         // async work items queued and not yet completed (main thread only)
  std::atomic<bool> closing{false};  // read by worker threads between chunks
  int64_t reported = 0;     // bytes reported to V8 as external memory
  // Weak references to the ArrayBuffer behind every window handed out
  // (including empty ones), pruned of collected entries as it grows.
  std::vector<Napi::Reference<Napi::ArrayBuffer>> windows;
  size_t pruneAt = 16;

  MappingState() = default;
  MappingState(const MappingState&) = delete;
  MappingState& operator=(const MappingState&) = delete;
  ~MappingState();

  // Offsets/lengths are validated against the requested length rounded up to
  // a page.
  uint64_t Limit() const { return RoundUp(length, PageSize()); }
  void Report(int64_t bytes);       // AdjustExternalMemory to `bytes` in total
  void DetachWindows();             // detach + forget every window
  void Unmap();                     // munmap if still mapped (idempotent)
};

class NativeMapping : public Napi::ObjectWrap<NativeMapping> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit NativeMapping(const Napi::CallbackInfo& info);

 private:
  Napi::Value GetLength(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetAddress(const Napi::CallbackInfo& info);
  Napi::Value Window(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Advise(const Napi::CallbackInfo& info);     // madvise.cc
  Napi::Value Populate(const Napi::CallbackInfo& info);   // madvise.cc
  Napi::Value Residency(const Napi::CallbackInfo& info);  // mincore.cc
  Napi::Value ResidencyInto(const Napi::CallbackInfo& info);  // mincore.cc
  Napi::Value Protect(const Napi::CallbackInfo& info);    // mprotect.cc
  Napi::Value Lock(const Napi::CallbackInfo& info);       // mlock.cc
  Napi::Value Unlock(const Napi::CallbackInfo& info);     // mlock.cc
  Napi::Value Flush(const Napi::CallbackInfo& info);      // msync.cc
  Napi::Value FlushSync(const Napi::CallbackInfo& info);  // msync.cc
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // Throws ERR_MAPPING_CLOSED when closed.
  MappingState& Open(Napi::Env env, const char* operation);
  // Validates (offset, length) at info[first], info[first + 1]: page-aligned
  // offset, offset + length <= Limit(). Returns {offset, length}.
  std::pair<uint64_t, uint64_t> Range(const Napi::CallbackInfo& info, size_t first);

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
  size_t pruneAt = 64;
  // Where residencyInto() writes: an ArrayBuffer kept alive by this reference,
  // exported once as addon.residencyScratch (V8 never moves a backing store).
  Napi::Reference<Napi::ArrayBuffer> scratchRef;
  unsigned char* scratch = nullptr;
  size_t scratchLength = 0;
  void Register(const std::shared_ptr<MappingState>& state);
};

AddonData* GetAddonData(Napi::Env env);
void InitMapping(Napi::Env env, Napi::Object exports, AddonData* data);

}  // namespace pagewise
