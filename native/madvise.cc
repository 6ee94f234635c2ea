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

namespace {

// madvise of a checked range: undefined (nullptr, without a napi_get_undefined call) or the errno error thrown.
PAGEWISE_HOT inline napi_value MadviseOf(const MappingState& s, uint64_t offset, uint64_t length, int advice, napi_env env) {
  if (madvise(s.addr + offset, static_cast<size_t>(length), advice) != 0) return ThrowErrno(env, errno, "madvise");
  return nullptr;
}

}  // namespace

// mapping.advise(offset, length, advice): void
napi_value AdviseState(napi_env env, MappingState* s, const napi_value* argv) {
  if (s == nullptr || s->closed) return ThrowMappingClosed(env);
  uint64_t offset = 0;
  uint64_t length = 0;
  int64_t advice = 0;
  if (!ReadRange(env, *s, argv[0], argv[1], &offset, &length) || !ReadInt(env, argv[2], "advice", INT_MIN, INT_MAX, &advice)) {
    return nullptr;
  }
  return MadviseOf(*s, offset, length, static_cast<int>(advice), env);
}

napi_value AdviseArgsState(napi_env env, MappingState* s, const double* args) {
  if (s == nullptr || s->closed) return ThrowMappingClosed(env);
  uint64_t offset = 0;
  uint64_t length = 0;
  if (!RangeFromArgs(env, *s, args[0], args[1], &offset, &length)) return nullptr;
  double advice = args[2];
  if (!(advice >= INT_MIN && advice <= INT_MAX && advice == static_cast<double>(static_cast<int>(advice)))) {
    return ThrowOutOfRange(env, "advice");
  }
  return MadviseOf(*s, offset, length, static_cast<int>(advice), env);
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
