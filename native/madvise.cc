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
Napi::Value AdviseState(const Napi::CallbackInfo& info, MappingState& state) {
  MappingState& s = RequireOpen(info.Env(), &state);
  auto [offset, length] = Range(info, 0, s);
  int advice = static_cast<int>(ArgInt(info, 2, "advice", INT_MIN, INT_MAX));
  if (madvise(s.addr + offset, static_cast<size_t>(length), advice) != 0) throw ErrnoError(info.Env(), errno, "madvise");
  return Napi::Value();  // undefined, without a napi_get_undefined call
}

Napi::Value NativeMapping::Advise(const Napi::CallbackInfo& info) { return AdviseState(info, RequireOpen(info.Env())); }

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
