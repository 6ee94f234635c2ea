// mprotect(2).
#include <sys/mman.h>

#include <cerrno>
#include <climits>

#include "errors.h"
#include "mapping.h"

namespace pagewise {

// mapping.protect(offset, length, protection): void
Napi::Value NativeMapping::Protect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  auto [offset, length] = Range(info, 0);
  int protection = static_cast<int>(ArgInt(info, 2, "protection", 0, INT_MAX));
  if (mprotect(s.addr + offset, static_cast<size_t>(length), protection) != 0) throw ErrnoError(env, errno, "mprotect");
  return env.Undefined();
}

}  // namespace pagewise
