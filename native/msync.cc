// msync(2): MS_SYNC [| MS_INVALIDATE], chunked on the threadpool or on the caller.
#include <sys/mman.h>

#include <cerrno>

#include "errors.h"
#include "mapping.h"

namespace pagewise {

// mapping.flush(offset, length, invalidate): Promise<void>
Napi::Value NativeMapping::Flush(const Napi::CallbackInfo& info) {
  return QueueRangeOp(info, "msync", [](char* addr, size_t len, bool invalidate) {
    return msync(addr, len, MS_SYNC | (invalidate ? MS_INVALIDATE : 0)) == 0 ? 0 : errno;
  });
}

// mapping.flushSync(offset, length, invalidate): void
Napi::Value NativeMapping::FlushSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  auto [offset, length] = Range(info, 0);
  int flags = MS_SYNC | (ArgBool(info, 2, "invalidate") ? MS_INVALIDATE : 0);
  if (length != 0 && msync(s.addr + offset, static_cast<size_t>(length), flags) != 0) {
    throw ErrnoError(env, errno, "msync");
  }
  return env.Undefined();
}

}  // namespace pagewise
