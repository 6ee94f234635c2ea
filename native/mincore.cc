// mincore(2) residency of a mapping, and file residency: cachestat(2)
// (syscall 451, Linux 6.5+) with a mmap + mincore fallback.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <vector>

#include "errors.h"
#include "mapping.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

namespace pagewise {

namespace {

struct CachestatRange {
  uint64_t off;
  uint64_t len;
};

struct Cachestat {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};

// 1 = kernel has cachestat, 0 = ENOSYS seen, -1 = unknown yet.
std::atomic<int> haveCachestat{-1};

constexpr uint64_t kFileWindow = uint64_t{1} << 30;  // map the file 1 GiB at a time

}  // namespace

namespace {

// A zeroed Uint8Array of `pages` bytes for a residency vector. Sized by user
// input, so bounded (RangeError) and made through the JavaScript constructor:
// its allocation failure is a catchable error, where napi_create_arraybuffer
// aborts the process (V8 FATAL). The public API says which ranges fit.
Napi::Uint8Array NewVector(Napi::Env env, uint64_t pages, const char* name) {
  if (pages > kMaxViewLength) throw OutOfRange(env, name);
  Napi::Function ctor = env.Global().Get("Uint8Array").As<Napi::Function>();
  try {
    return ctor.New({Napi::Number::New(env, static_cast<double>(pages))}).As<Napi::Uint8Array>();
  } catch (const Napi::Error&) {
    throw ErrnoError(env, ENOMEM, "mincore");
  }
}

}  // namespace

// mapping.residency(offset, length): Uint8Array (one byte per page, bit 0)
Napi::Value NativeMapping::Residency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  auto [offset, length] = Range(info, 0);
  uint64_t pages = RoundUp(length, PageSize()) / PageSize();
  Napi::Uint8Array vec = NewVector(env, pages, "length");
  if (pages == 0) return vec;
  unsigned char* out = vec.Data();
  if (mincore(s.addr + offset, static_cast<size_t>(length), out) != 0) throw ErrnoError(env, errno, "mincore");
  for (uint64_t i = 0; i < pages; i++) out[i] &= 1;
  return vec;
}

// mapping.residencyBits(offset, length): number — the residency of at most
// kResidencyBits pages as a bit mask (bit i: page i resident). Numbers in, a
// number out: no vector to allocate or to look up (a typed array argument costs
// several V8 calls), for the small queries made in loops.
constexpr uint64_t kResidencyBits = 32;

namespace {

// The residency bits of a checked range, as a number (the rest of either residencyBits call).
PAGEWISE_HOT inline napi_value ResidencyBitsOf(napi_env env, const MappingState& s, uint64_t offset, uint64_t length) {
  if (length > kResidencyBits * PageSize()) return ThrowOutOfRange(env, "length");
  uint32_t bits = 0;
  if (length > 0) {
    unsigned char vec[kResidencyBits];
    if (mincore(s.addr + offset, static_cast<size_t>(length), vec) != 0) return ThrowErrno(env, errno, "mincore");
    uint64_t pages = (length + PageSize() - 1) / PageSize();
    for (uint64_t i = 0; i < pages; i++) bits |= static_cast<uint32_t>(vec[i] & 1) << i;
  }
  napi_value result = nullptr;
  if (napi_create_uint32(env, bits, &result) != napi_ok) return nullptr;
  return result;
}

}  // namespace


napi_value ResidencyBitsState(napi_env env, MappingState* s, const napi_value* argv) {
  if (s == nullptr || s->closed) return ThrowMappingClosed(env);
  uint64_t offset = 0;
  uint64_t length = 0;
  if (!ReadRange(env, *s, argv[0], argv[1], &offset, &length)) return nullptr;
  return ResidencyBitsOf(env, *s, offset, length);
}

napi_value ResidencyBitsArgsState(napi_env env, MappingState* s, const double* args) {
  if (s == nullptr || s->closed) return ThrowMappingClosed(env);
  uint64_t offset = 0;
  uint64_t length = 0;
  if (!RangeFromArgs(env, *s, args[0], args[1], &offset, &length)) return nullptr;
  return ResidencyBitsOf(env, *s, offset, length);
}

Napi::Value NativeMapping::ResidencyBits(const Napi::CallbackInfo& info) { return CallState(info, ResidencyBitsState); }

// mapping.residencyInto(offset, length, out): undefined — the vector goes into
// the caller's Uint8Array `out` (at least one byte per page), so a query
// allocates no ArrayBuffer (that allocation costs more than the mincore call).
napi_value ResidencyIntoState(napi_env env, MappingState* s, const napi_value* argv) {
  if (s == nullptr || s->closed) return ThrowMappingClosed(env);
  uint64_t offset = 0;
  uint64_t length = 0;
  if (!ReadRange(env, *s, argv[0], argv[1], &offset, &length)) return nullptr;
  uint64_t pages = (length + PageSize() - 1) / PageSize();
  // Read at each call, so a buffer detached or transferred since (its length is
  // then 0) is refused rather than written through.
  TypedArrayArg vector{nullptr, 0, nullptr};
  if (!ReadTypedArray(env, argv[2], napi_uint8_array, "out", &vector)) return nullptr;
  if (pages > vector.length) return ThrowOutOfRange(env, "out.length");
  if (pages == 0) return nullptr;  // undefined
  // No JavaScript runs between reading `out` above and these writes.
  auto* out = static_cast<unsigned char*>(vector.data);
  if (mincore(s->addr + offset, static_cast<size_t>(length), out) != 0) return ThrowErrno(env, errno, "mincore");
  for (uint64_t i = 0; i < pages; i++) out[i] &= 1;
  return nullptr;
}

Napi::Value NativeMapping::ResidencyInto(const Napi::CallbackInfo& info) { return CallState(info, ResidencyIntoState); }

// addon.fileResidency(fd, offset, length, wantPages): RawFileResidency
Napi::Value FileResidency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "fd", 0, INT_MAX));
  uint64_t offset = ArgUint(info, 1, "offset");
  uint64_t length = ArgUint(info, 2, "length");
  bool wantPages = ArgBool(info, 3, "wantPages");
  if (length > kMaxSafeInteger - offset) {
    throw OutOfRange(env, "length");
  }
  uint64_t page = PageSize();
  uint64_t first = offset / page;
  uint64_t end = length == 0 ? first : RoundUp(offset + length, page) / page;
  uint64_t total = end - first;

  Napi::Object result = Napi::Object::New(env);
  if (!wantPages && haveCachestat.load() != 0) {
    Cachestat cs{};
    bool ok = true;
    if (total > 0) {
      CachestatRange range{offset, length};  // len 0 would mean "to EOF": never passed
      if (syscall(__NR_cachestat, fd, &range, &cs, 0) != 0) {
        int err = errno;
        if (err == ENOSYS) {
          haveCachestat.store(0);
          ok = false;
        } else if (err == EOPNOTSUPP) {
          ok = false;  // e.g. hugetlbfs: fall back to mincore
        } else {
          throw ErrnoError(env, err, "cachestat");
        }
      } else {
        haveCachestat.store(1);
      }
    }
    if (ok) {
      result.Set("cached", Napi::Number::New(env, static_cast<double>(cs.nr_cache)));
      result.Set("total", Napi::Number::New(env, static_cast<double>(total)));
      result.Set("dirty", Napi::Number::New(env, static_cast<double>(cs.nr_dirty)));
      result.Set("writeback", Napi::Number::New(env, static_cast<double>(cs.nr_writeback)));
      result.Set("evicted", Napi::Number::New(env, static_cast<double>(cs.nr_evicted)));
      result.Set("recentlyEvicted", Napi::Number::New(env, static_cast<double>(cs.nr_recently_evicted)));
      result.Set("source", Napi::String::New(env, "cachestat"));
      return result;
    }
  }

  // mmap + mincore, one window of at most 1 GiB at a time.
  Napi::Uint8Array pages;
  std::vector<unsigned char> scratch;
  unsigned char* out = nullptr;
  if (wantPages) {
    pages = NewVector(env, total, "length");
  } else {
    scratch.resize(static_cast<size_t>(std::min<uint64_t>(total, kFileWindow / page)));
  }
  uint64_t cached = 0;
  // Pages past the end of the file are never cached: scan only up to it, so a
  // huge range (the raw addon does not clip) costs what the file costs.
  struct stat st {};
  if (fstat(fd, &st) != 0) throw ErrnoError(env, errno, "fstat");
  uint64_t filePages = RoundUp(static_cast<uint64_t>(st.st_size), page) / page;
  uint64_t scan = filePages > first ? std::min<uint64_t>(total, filePages - first) : 0;
  for (uint64_t done = 0; done < scan;) {
    uint64_t n = std::min<uint64_t>(scan - done, kFileWindow / page);
    size_t bytes = static_cast<size_t>(n * page);
    void* p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, static_cast<off_t>((first + done) * page));
    if (p == MAP_FAILED) throw ErrnoError(env, errno, "mmap");
    out = wantPages ? pages.Data() + done : scratch.data();
    int rc = mincore(p, bytes, out);
    int err = errno;
    munmap(p, bytes);
    if (rc != 0) throw ErrnoError(env, err, "mincore");
    for (uint64_t i = 0; i < n; i++) {
      out[i] &= 1;
      cached += out[i];
    }
    done += n;
  }
  result.Set("cached", Napi::Number::New(env, static_cast<double>(cached)));
  result.Set("total", Napi::Number::New(env, static_cast<double>(total)));
  result.Set("source", Napi::String::New(env, "mincore"));
  if (wantPages) result.Set("pages", pages);
  return result;
}

}  // namespace pagewise
