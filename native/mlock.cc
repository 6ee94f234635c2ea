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
  return QueueRangeOp(info, "mlock2", [](char* addr, size_t len, bool onFault) {
    return syscall(SYS_mlock2, addr, len, onFault ? MLOCK_ONFAULT : 0) == 0 ? 0 : errno;
  });
}

// mapping.unlock(offset, length): void
Napi::Value NativeMapping::Unlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  auto [offset, length] = Range(info, 0);
  if (munlock(s.addr + offset, static_cast<size_t>(length)) != 0) throw ErrnoError(env, errno, "munlock");
  return env.Undefined();
}

}  // namespace pagewise
