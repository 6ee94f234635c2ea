// memfd_create(2) + file seals: shared memory that nobody can shrink, so no
// mapping of it can ever meet a page past its end (the SIGBUS of truncated
// file mappings cannot happen).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

namespace pagewise {

// addon.createMemfd(name, size, sealGrow): fd. Sized, sealed against shrinking
// (and growing when asked), close-on-exec (hand it to a child through stdio,
// which dup2()s it without the flag). The caller owns the descriptor.
Napi::Value CreateMemfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value nameArg = Arg(info, 0);
  if (!nameArg.IsString()) throw InvalidArgType(env, "name");
  std::string name = nameArg.As<Napi::String>().Utf8Value();
  uint64_t size = ArgUint(info, 1, "size");
  bool sealGrow = ArgBool(info, 2, "sealGrow");
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw ErrnoError(env, errno, "memfd_create");
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) close(fd);
    }
  } guard{fd};
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) throw ErrnoError(env, errno, "ftruncate");
  // F_SEAL_SEAL too: nobody can remove the guarantee by adding or changing seals later.
  int seals = F_SEAL_SHRINK | F_SEAL_SEAL | (sealGrow ? F_SEAL_GROW : 0);
  if (fcntl(fd, F_ADD_SEALS, seals) != 0) throw ErrnoError(env, errno, "fcntl");
  guard.fd = -1;
  return Napi::Number::New(env, fd);
}

// addon.seals(fd): F_GET_SEALS bits, or -1 for a file that cannot be sealed (EINVAL).
Napi::Value Seals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "fd", 0, INT32_MAX));
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    if (errno == EINVAL) return Napi::Number::New(env, -1);
    throw ErrnoError(env, errno, "fcntl");
  }
  return Napi::Number::New(env, seals);
}

}  // namespace pagewise
