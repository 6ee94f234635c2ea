// madvise(2): advise, supports, and MADV_POPULATE_READ/WRITE on the threadpool.
#include <sys/mman.h>

#include <cerrno>
#include <climits>

#include "errors.h"
#include "mapping.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace pagewise {

// mapping.advise(offset, length, advice): void
napi_value AdviseState(napi_env env, MappingState* s, const napi_value* argv) {
  if (s == nullptr || s->closed) return ThrowMappingClosed(env);
  uint64_t offset = 0;
  uint64_t length = 0;
  int64_t advice = 0;
  if (!ReadRange(env, *s, argv[0], argv[1], &offset, &length) || !ReadInt(env, argv[2], "advice", INT_MIN, INT_MAX, &advice)) {
    return nullptr;
  }
  if (madvise(s->addr + offset, static_cast<size_t>(length), static_cast<int>(advice)) != 0) {
    return ThrowErrno(env, errno, "madvise");
  }
  return nullptr;  // undefined, without a napi_get_undefined call
}

Napi::Value NativeMapping::Advise(const Napi::CallbackInfo& info) { return CallState(info, AdviseState); }

// mapping.populate(offset, length, write): Promise<void>
Napi::Value NativeMapping::Populate(const Napi::CallbackInfo& info) {
  return QueueRangeOp(info, "madvise", [](char* addr, size_t len, bool write) {
    return madvise(addr, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0 ? 0 : errno;
  });
}

// addon.supports(advice): boolean — madvise(NULL, 0, advice) === 0
Napi::Value Supports(const Napi::CallbackInfo& info) {
  int advice = static_cast<int>(ArgInt(info, 0, "advice", INT_MIN, INT_MAX));
  return Napi::Boolean::New(info.Env(), madvise(nullptr, 0, advice) == 0);
}

}  // namespace pagewise
