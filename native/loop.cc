// pendingRequests(): how many libuv requests are in flight on this environment's
// event loop. Node's thread-pool work (crypto, zlib, fs, dns) holds one request
// from the call until just before its JavaScript callback, and that work keeps
// the raw pointer of a view it was given. So while the count is 0, no such work
// started earlier can still read or write a view's memory (the volatile arena
// asks this at free(); docs/ARENA.md). Main thread only, like every N-API call.
// Only Node's loop is libuv's: Bun's and Deno's stand-ins read 0 or garbage at
// this offset, so lib/native.ts offers the count on Node only.
#include <napi.h>
#include <uv.h>

namespace pagewise {

Napi::Value PendingRequests(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(loop->active_reqs.count));
}

}  // namespace pagewise
