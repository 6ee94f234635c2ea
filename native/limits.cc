// The longest view (external ArrayBuffer + Uint8Array) this engine accepts,
// found once per environment at load. Engines whose ArrayBuffers may exceed
// 4 GiB (V8 12.4+: Node 22+, Deno) get whole views of larger mappings; the
// others (Node 20, Bun's JavaScriptCore) keep the 4 GiB window rule.
//
// The cheap question goes first: V8 before 12.4 aborts the process on an
// external ArrayBuffer over its limit instead of failing, so an external one
// is only tried where a resizable ArrayBuffer may already grow past 4 GiB.
#include <napi.h>
#include <sys/mman.h>

#include "errors.h"
#include "mapping.h"

namespace pagewise {

namespace {

bool ResizablePast4GiB(Napi::Env env) {
  try {
    Napi::Object options = Napi::Object::New(env);
    options.Set("maxByteLength", Napi::Number::New(env, static_cast<double>(kMaxViewLength + 1)));
    Napi::Function ctor = env.Global().Get("ArrayBuffer").As<Napi::Function>();
    Napi::Object ab = ctor.New({Napi::Number::New(env, 0), options});
    Napi::Value max = ab.Get("maxByteLength");  // engines without resizable buffers ignore the option
    bool past = max.IsNumber() && max.As<Napi::Number>().DoubleValue() > static_cast<double>(kMaxViewLength);
    // V8 reserved the whole maximum in address space; detaching frees it now
    // instead of at some later GC (tests watch VmSize).
    Napi::Value detach = ab.Get("transferToFixedLength");
    if (detach.IsFunction()) detach.As<Napi::Function>().Call(ab, {Napi::Number::New(env, 0)});
    return past;
  } catch (const Napi::Error&) {
    return false;  // RangeError: the engine's limit is 4 GiB or less
  }
}

void NoFinalizer(napi_env /*env*/, void* /*data*/, void* /*hint*/) {}

// An external ArrayBuffer and a Uint8Array over 4 GiB + 1 page of address space
// that is reserved, never touched, detached and released before returning.
bool ExternalPast4GiB(Napi::Env env) {
  const size_t length = static_cast<size_t>(kMaxViewLength) + PageSize();
  void* reserved = mmap(nullptr, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) return false;
  bool ok = false;
  napi_value ab = nullptr;
  if (napi_create_external_arraybuffer(env, reserved, length, NoFinalizer, nullptr, &ab) == napi_ok) {
    napi_value view = nullptr;
    ok = napi_create_typedarray(env, napi_uint8_array, length, ab, 0, &view) == napi_ok;
    bool detached = napi_detach_arraybuffer(env, ab) == napi_ok;
    if (!detached) {
      // Still reachable from JavaScript: keep the (inaccessible) reservation forever.
      return false;
    }
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored = nullptr;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  munmap(reserved, length);
  return ok;
}

}  // namespace

uint64_t ProbeMaxViewLength(Napi::Env env) {
  if (!ResizablePast4GiB(env) || !ExternalPast4GiB(env)) return kMaxViewLength;
  return kMaxSafeInteger;
}

}  // namespace pagewise
