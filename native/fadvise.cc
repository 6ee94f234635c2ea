// posix_fadvise(2) and the access mode of a descriptor (fcntl F_GETFL).
#include <fcntl.h>

#include <cerrno>
#include <climits>

#include "errors.h"
#include "mapping.h"

namespace pagewise {

// addon.fadvise(fd, offset, length, advice): void
Napi::Value Fadvise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "fd", 0, INT_MAX));
  uint64_t offset = ArgUint(info, 1, "offset");
  uint64_t length = ArgUint(info, 2, "length");
  int advice = static_cast<int>(ArgInt(info, 3, "advice", INT_MIN, INT_MAX));
  int err = posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(length), advice);
  if (err != 0) throw ErrnoError(env, err, "posix_fadvise");
  return env.Undefined();
}

// addon.accessMode(fd): 'read' | 'write' | 'read-write'
Napi::Value AccessMode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "fd", 0, INT_MAX));
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1) throw ErrnoError(env, errno, "fcntl");
  switch (flags & O_ACCMODE) {
    case O_RDONLY: return Napi::String::New(env, "read");
    case O_WRONLY: return Napi::String::New(env, "write");
    default: return Napi::String::New(env, "read-write");
  }
}

}  // namespace pagewise
