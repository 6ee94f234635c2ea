// mlock2(2) on the threadpool, munlock(2) on the caller.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"
#include "mapping.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

namespace pagewise {

// mapping.lock(offset, length, onFault): Promise<void>
Napi::Value NativeMapping::Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    Open(env, "lock");
    auto [offset, length] = Range(info, 0);
    unsigned flags = ArgBool(info, 2, "onFault") ? MLOCK_ONFAULT : 0;
    return QueueChunked(env, state_, offset, length, "mlock2", [flags](char* addr, size_t len) {
      return syscall(SYS_mlock2, addr, len, flags) == 0 ? 0 : errno;
    });
  } catch (const Napi::Error& e) {
    return Rejected(env, e);
  }
}

// mapping.unlock(offset, length): void
Napi::Value NativeMapping::Unlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = Open(env, "unlock");
  auto [offset, length] = Range(info, 0);
  if (munlock(s.addr + offset, static_cast<size_t>(length)) != 0) throw ErrnoError(env, errno, "munlock");
  return env.Undefined();
}

}  // namespace pagewise
