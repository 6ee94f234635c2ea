// Write tracking: a userfaultfd in asynchronous write-protect mode
// (UFFD_FEATURE_WP_ASYNC, Linux 6.7+) over a mapping, read and re-armed with
// PAGEMAP_SCAN (Documentation/admin-guide/mm/userfaultfd.rst, pagemap.rst).
// A write to a protected page is resolved by the kernel itself: no message is
// queued, no thread waits, no signal is raised; the page only loses its
// write-protect bit, which PAGEMAP_SCAN reports as PAGE_IS_WRITTEN.
// UFFD_FEATURE_WP_UNPOPULATED protects pages never touched too, so a first write
// to one counts.
//
// The tracker owns the descriptor (closed by close() or when the object is
// collected; closing it unregisters the range) and a weak reference to the
// mapping's state: a tracker outliving its mapping only answers
// ERR_MAPPING_CLOSED. When the mapping moved or changed length (resize()), the
// registration no longer covers it: written() then reports every page and
// reset() registers the new range.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "errors.h"
#include "mapping.h"
#include "pagemap.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

namespace pagewise {

namespace {

// One descriptor, closed with its owner.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  void Adopt(int fd) {
    Reset();
    fd_ = fd;
  }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

const napi_type_tag kTrackerTag = {0x7061676577697365ULL, 0x7772697465730001ULL};

// The tracker's state: the userfaultfd and the range it registered.
struct WriteTrack {
  UniqueFd uffd;
  std::weak_ptr<MappingState> state;
  char* addr = nullptr;  // registered range
  uint64_t length = 0;
  bool registered = false;

  // 0 or an errno value; `syscall` names the failed call.
  int Register(char* at, uint64_t len, const char** syscall) {
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uintptr_t>(at);
    reg.range.len = len;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    *syscall = "UFFDIO_REGISTER";
    if (ioctl(uffd.get(), UFFDIO_REGISTER, &reg) != 0) return errno;
    addr = at;
    length = len;
    registered = true;
    uffdio_writeprotect wp{};
    wp.range.start = reinterpret_cast<uintptr_t>(at);
    wp.range.len = len;
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    *syscall = "UFFDIO_WRITEPROTECT";
    if (ioctl(uffd.get(), UFFDIO_WRITEPROTECT, &wp) != 0) return errno;
    return 0;
  }

  void Unregister() {
    if (!registered) return;
    uffdio_range range{reinterpret_cast<uintptr_t>(addr), length};
    ioctl(uffd.get(), UFFDIO_UNREGISTER, &range);  // fails harmlessly when the range is gone
    registered = false;
  }
};

}  // namespace

class WriteTracker : public Napi::ObjectWrap<WriteTracker> {
 public:
  static Napi::Function DefineClass(Napi::Env env) {
    return ObjectWrap<WriteTracker>::DefineClass(env, "WriteTracker",
                                                 {
                                                     InstanceAccessor<&WriteTracker::GetClosed>("closed"),
                                                     InstanceMethod<&WriteTracker::Written>("written"),
                                                     InstanceMethod<&WriteTracker::Reset>("reset"),
                                                     InstanceMethod<&WriteTracker::Close>("close"),
                                                 });
  }

  explicit WriteTracker(const Napi::CallbackInfo& info) : ObjectWrap<WriteTracker>(info) {
    AddonData* data = GetAddonData(info.Env());
    if (data == nullptr || !data->pendingTracker) {
      throw CodedTypeError(info.Env(), "ERR_ILLEGAL_CONSTRUCTOR", "Illegal constructor: use mapping.trackWrites()");
    }
    if (napi_type_tag_object(info.Env(), info.This(), &kTrackerTag) != napi_ok) throw Napi::Error::New(info.Env());
    track_ = std::static_pointer_cast<WriteTrack>(std::move(data->pendingTracker));
    data->pendingTracker.reset();
  }

 private:
  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !track_); }

  static void CheckThis(const Napi::CallbackInfo& info) {
    bool tagged = false;
    if (!info.This().IsObject() || napi_check_object_type_tag(info.Env(), info.This(), &kTrackerTag, &tagged) != napi_ok ||
        !tagged) {
      throw CodedTypeError(info.Env(), "ERR_INVALID_THIS", "Value of \"this\" must be of type WriteTracker");
    }
  }

  // The open tracker and its open mapping, or a coded error.
  std::shared_ptr<MappingState> Live(Napi::Env env) {
    if (!track_) throw CodedError(env, "ERR_WRITE_TRACKER_CLOSED", "The write tracker is closed");
    std::shared_ptr<MappingState> s = track_->state.lock();
    if (!s || s->closed || !s->mapped) throw MappingClosed(env);
    return s;
  }

  bool Moved(const MappingState& s) const {
    return !track_->registered || track_->addr != s.addr || track_->length != s.mapLength;
  }

  // written(offset, length): Float64Array [offset, length, ...] of runs written since the last reset.
  Napi::Value Written(const Napi::CallbackInfo& info) {
    CheckThis(info);
    Napi::Env env = info.Env();
    std::shared_ptr<MappingState> held = Live(env);
    MappingState& s = *held;
    auto [offset, length] = pagewise::Range(info, 0, s);
    std::vector<double> runs;
    if (Moved(s)) {
      // Not tracked since the move: every page may have been written.
      if (length > 0) runs = {static_cast<double>(offset), static_cast<double>(length), 0};
    } else if (length > 0) {
      uint64_t base = reinterpret_cast<uintptr_t>(s.addr);
      int err = ScanPages(base + offset, base + offset + length, base, 0, kPageIsWritten, kPageIsWritten, &runs);
      if (err != 0) throw ErrnoError(env, err, "PAGEMAP_SCAN");
    }
    Napi::Float64Array out = Napi::Float64Array::New(env, runs.size() / 3 * 2);
    for (size_t i = 0, j = 0; i < runs.size(); i += 3, j += 2) {
      out[j] = runs[i];
      out[j + 1] = runs[i + 1];
    }
    return out;
  }

  // reset(): write-protect every page again (PM_SCAN_WP_MATCHING over the written ones),
  // or register the mapping's current range when it moved.
  Napi::Value Reset(const Napi::CallbackInfo& info) {
    CheckThis(info);
    Napi::Env env = info.Env();
    std::shared_ptr<MappingState> held = Live(env);
    MappingState& s = *held;
    if (Moved(s)) {
      track_->Unregister();
      const char* syscall = "UFFDIO_REGISTER";
      int err = track_->Register(s.addr, s.mapLength, &syscall);
      if (err != 0) throw ErrnoError(env, err, syscall);
      return env.Undefined();
    }
    std::vector<double> runs;
    uint64_t base = reinterpret_cast<uintptr_t>(s.addr);
    int err = ScanPages(base, base + s.mapLength, base, kScanWpMatching | kScanCheckWpAsync, kPageIsWritten,
                        kPageIsWritten, &runs);
    if (err != 0) throw ErrnoError(env, err, "PAGEMAP_SCAN");
    return env.Undefined();
  }

  // close(): idempotent; closing the descriptor ends the registration.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    CheckThis(info);
    track_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<WriteTrack> track_;
};

// mapping.trackWrites(): WriteTracker over the whole mapping.
Napi::Value NativeMapping::TrackWrites(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  auto track = std::make_shared<WriteTrack>();
  // UFFD_USER_MODE_ONLY: only faults from user space, which is all a tracker needs, and
  // what vm.unprivileged_userfaultfd = 0 still allows without CAP_SYS_PTRACE.
  track->uffd.Adopt(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)));
  if (track->uffd.get() < 0) throw ErrnoError(env, errno, "userfaultfd");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (ioctl(track->uffd.get(), UFFDIO_API, &api) != 0) throw ErrnoError(env, errno, "UFFDIO_API");
  const char* syscall = "UFFDIO_REGISTER";
  int err = track->Register(s.addr, s.mapLength, &syscall);
  if (err != 0) throw ErrnoError(env, err, syscall);
  track->state = state_;
  AddonData* data = GetAddonData(env);
  data->pendingTracker = track;
  struct ClearPending {
    AddonData* data;
    ~ClearPending() { data->pendingTracker.reset(); }
  } clear{data};
  return data->trackerCtor.New({});
}

void InitWriteTracker(Napi::Env env, AddonData* data) {
  data->trackerCtor = Napi::Persistent(WriteTracker::DefineClass(env));
}

}  // namespace pagewise
