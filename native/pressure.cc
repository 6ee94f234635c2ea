// Memory-pressure sources (PSI triggers, cgroup v1 memory.pressure_level, cgroup v2
// memory.events) watched by one native thread blocked in poll(2).
//
// No libuv: Deno exports no uv_* symbols, so the addon cannot use uv_poll. The thread
// talks to JavaScript only through a threadsafe function, unref'd so that a watcher
// never keeps the process alive. close(), the env cleanup hook and the destructor wake
// the thread through an eventfd and join it before the descriptors are closed.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

// pthread_setname_np moved from libpthread into libc in glibc 2.34 under a new
// default version; the old one (2.12) is still exported: bind to it so the
// prebuild loads on glibc 2.28 (native/compat.cc has the other shims).
__asm__(".symver pthread_setname_np,pthread_setname_np@GLIBC_2.12");

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"

namespace pagewise {

namespace {

// Source kinds, as passed by lib/pressure.ts.
enum Kind : int32_t {
  kCgroupV1 = 0,  // eventfd registered through cgroup.event_control: readable per event
  kPsi = 1,       // PSI trigger: POLLPRI per event, POLLERR when the trigger is gone
  kKernfs = 2,    // cgroup v2 memory.events: POLLPRI on change, re-read to re-arm
};

// What the thread hands to the main thread for one readiness of one source.
struct Notice {
  uint32_t index;
  bool gone;         // the source cannot report any more (file or cgroup removed)
  std::string text;  // kKernfs: the file's new contents
  double wokeMs;     // CLOCK_MONOTONIC when poll() returned (process.hrtime's clock), in ms
};

// Closes a descriptor on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

bool WriteAll(int fd, const std::string& text, bool withNul) {
  size_t length = text.size() + (withNul ? 1 : 0);
  ssize_t n = write(fd, text.c_str(), length);
  return n == static_cast<ssize_t>(length);
}

// Reads the whole (small) file from offset 0; false on error (errno set).
bool ReadFrom0(int fd, std::string* out) {
  char buf[4096];
  out->clear();
  off_t at = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    at += n;
    if (out->size() > (size_t{1} << 16)) return true;  // memory.events is a few lines
  }
}

void Deliver(Napi::Env env, Napi::Function callback, std::nullptr_t*, Notice* notice);

using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Notice, Deliver>;

void Deliver(Napi::Env env, Napi::Function callback, std::nullptr_t*, Notice* notice) {
  std::unique_ptr<Notice> owned(notice);
  // env is null when the function is being torn down with items still queued.
  if (env == nullptr || callback.IsEmpty()) return;
  Napi::Value text = owned->gone || owned->text.empty() ? env.Undefined() : Napi::String::New(env, owned->text);
  // A throwing listener becomes an uncaught exception, as with any event emitter.
  callback.Call({Napi::Number::New(env, owned->index), Napi::Boolean::New(env, owned->gone), text,
                 Napi::Number::New(env, owned->wokeMs)});
}

class PressureWatch : public Napi::ObjectWrap<PressureWatch> {
 public:
  static Napi::Function DefineClass(Napi::Env env) {
    return ObjectWrap<PressureWatch>::DefineClass(env, "PressureWatch",
                                                  {
                                                      InstanceMethod<&PressureWatch::Add>("add"),
                                                      InstanceMethod<&PressureWatch::Start>("start"),
                                                      InstanceMethod<&PressureWatch::Close>("close"),
                                                  });
  }

  // new PressureWatch(callback(index, gone, text?, wokeMs))
  explicit PressureWatch(const Napi::CallbackInfo& info) : ObjectWrap<PressureWatch>(info) {
    Napi::Env env = info.Env();
    if (!Arg(info, 0).IsFunction()) throw InvalidArgType(env, "callback");
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  }

  ~PressureWatch() override {
    Stop();
    CloseSources();
  }

 private:
  struct Source {
    int fd;
    Kind kind;
  };

  // add(kind, path, arg): registers one source before start(). Returns the file's
  // current text for kKernfs (the baseline to diff against), else undefined.
  // Throws errno errors (syscall open / write / eventfd).
  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (started_ || closed_) throw CodedError(env, "ERR_INVALID_STATE", "PressureWatch: add() after start() or close()");
    int64_t kind = ArgInt(info, 0, "kind", kCgroupV1, kKernfs);
    if (!Arg(info, 1).IsString()) throw InvalidArgType(env, "path");
    if (!Arg(info, 2).IsString()) throw InvalidArgType(env, "arg");
    std::string path = info[1].As<Napi::String>().Utf8Value();
    std::string arg = info[2].As<Napi::String>().Utf8Value();
    Napi::Value result = env.Undefined();
    int fd = -1;
    switch (kind) {
      case kCgroupV1: {
        // path is the watched file (memory.pressure_level or memory.usage_in_bytes); the line
        // "<eventfd> <fd of that file> <arg>" (arg: "<level>[,<mode>]" or a byte threshold) goes into cgroup.event_control beside it. The
        // registration lives as long as the eventfd; the other two may close.
        std::string dir = path.substr(0, path.find_last_of('/'));
        Fd event(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (event.get() < 0) throw ErrnoError(env, errno, "eventfd");
        Fd watched(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (watched.get() < 0) throw ErrnoError(env, errno, "open");
        Fd control(open((dir + "/cgroup.event_control").c_str(), O_WRONLY | O_CLOEXEC));
        if (control.get() < 0) throw ErrnoError(env, errno, "open");
        std::string line = std::to_string(event.get()) + " " + std::to_string(watched.get()) + " " + arg;
        if (!WriteAll(control.get(), line, false)) throw ErrnoError(env, errno ? errno : EIO, "write");
        fd = event.release();
        break;
      }
      case kPsi: {
        Fd trigger(open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
        if (trigger.get() < 0) throw ErrnoError(env, errno, "open");
        // EPERM: unprivileged window not a multiple of 2 s; EINVAL: bad trigger or no PSI.
        if (!WriteAll(trigger.get(), arg, true)) throw ErrnoError(env, errno ? errno : EIO, "write");
        fd = trigger.release();
        break;
      }
      case kKernfs: {
        Fd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (file.get() < 0) throw ErrnoError(env, errno, "open");
        std::string text;
        // Reading arms the change notification.
        if (!ReadFrom0(file.get(), &text)) throw ErrnoError(env, errno, "read");
        result = Napi::String::New(env, text);
        fd = file.release();
        break;
      }
    }
    sources_.push_back({fd, static_cast<Kind>(kind)});
    return result;
  }

  // start(): the thread begins waiting; every event calls the callback on the main thread.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (started_ || closed_) throw CodedError(env, "ERR_INVALID_STATE", "PressureWatch: start() twice or after close()");
    Fd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (wake.get() < 0) throw ErrnoError(env, errno, "eventfd");
    tsfn_ = Tsfn::New(env, callback_.Value(), "pagewise.memoryPressure", 0, 1);
    tsfn_.Unref(env);  // never keeps the event loop alive
    callback_.Reset();  // the threadsafe function holds it now
    wake_ = wake.release();
    env_ = env;
    napi_add_env_cleanup_hook(env, Cleanup, this);
    hooked_ = true;
    started_ = true;
    std::vector<Source> sources = sources_;
    int wakeFd = wake_;
    Tsfn tsfn = tsfn_;
    thread_ = std::thread([sources, wakeFd, tsfn]() mutable { Run(sources, wakeFd, tsfn); });
    // Named before start() returns: /proc/self/task/*/comm shows it (tests count watcher threads).
    pthread_setname_np(thread_.native_handle(), "pw-pressure");
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    CloseSources();
    callback_.Reset();
    return info.Env().Undefined();
  }

  // The thread: no N-API calls except NonBlockingCall.
  static void Run(std::vector<Source> sources, int wakeFd, Tsfn tsfn) {
    std::vector<pollfd> fds(sources.size() + 1);
    fds[0] = {wakeFd, POLLIN, 0};
    for (size_t i = 0; i < sources.size(); i++) {
      fds[i + 1] = {sources[i].fd, static_cast<short>(sources[i].kind == kCgroupV1 ? POLLIN : POLLPRI), 0};
    }
    for (;;) {
      int n = poll(fds.data(), fds.size(), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;  // close()
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      double wokeMs = static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) / 1e6;
      for (size_t i = 0; i < sources.size(); i++) {
        short revents = fds[i + 1].revents;
        if (revents == 0) continue;
        auto notice = std::make_unique<Notice>();
        notice->index = static_cast<uint32_t>(i);
        notice->gone = false;
        notice->wokeMs = wokeMs;
        int fd = sources[i].fd;
        switch (sources[i].kind) {
          case kCgroupV1: {
            uint64_t count;
            if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN) notice->gone = true;
            if (revents & (POLLERR | POLLHUP | POLLNVAL)) notice->gone = true;
            break;
          }
          case kPsi:
            if (revents & (POLLERR | POLLNVAL)) notice->gone = true;
            break;
          case kKernfs:
            // kernfs sets POLLERR with every change; only a failing read means it is gone.
            if ((revents & POLLNVAL) || !ReadFrom0(fd, &notice->text)) notice->gone = true;
            break;
        }
        if (notice->gone) fds[i + 1].fd = -1;  // poll() skips negative descriptors
        if (tsfn.NonBlockingCall(notice.get()) == napi_ok) notice.release();
      }
    }
  }

  static void Cleanup(void* arg) {
    auto* self = static_cast<PressureWatch*>(arg);
    self->hooked_ = false;  // Node is running the hook: do not remove it
    self->Stop();
    self->CloseSources();
  }

  // Wake and join the thread, then let go of the threadsafe function. Idempotent.
  void Stop() {
    closed_ = true;
    if (thread_.joinable()) {
      uint64_t one = 1;
      ssize_t ignored = write(wake_, &one, sizeof one);
      (void)ignored;
      thread_.join();
    }
    if (tsfn_) {
      tsfn_.Release();
      tsfn_ = Tsfn();
    }
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, Cleanup, this);
      hooked_ = false;
    }
    if (wake_ >= 0) {
      close(wake_);
      wake_ = -1;
    }
  }

  void CloseSources() {
    for (Source& s : sources_) {
      if (s.fd >= 0) close(s.fd);
    }
    sources_.clear();
  }

  Napi::FunctionReference callback_;
  std::vector<Source> sources_;
  Tsfn tsfn_;
  std::thread thread_;
  napi_env env_ = nullptr;
  int wake_ = -1;
  bool started_ = false;
  bool closed_ = false;
  bool hooked_ = false;
};

}  // namespace

void InitPressure(Napi::Env env, Napi::Object exports) {
  exports.Set("PressureWatch", PressureWatch::DefineClass(env));
}

}  // namespace pagewise
