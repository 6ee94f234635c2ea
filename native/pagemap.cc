// Page flags of a mapping: PAGEMAP_SCAN where the kernel has it (one ioctl walks
// the page tables and returns runs of pages with equal categories), else the
// /proc/self/pagemap entries, 8 bytes per page (pagemap.rst).
#include "pagemap.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "errors.h"
#include "mapping.h"

namespace pagewise {

namespace {

constexpr unsigned long kPagemapScan = _IOWR('f', 16, PageScanArg);

// Bits of a /proc/self/pagemap entry.
constexpr uint64_t kEntryPresent = uint64_t{1} << 63;
constexpr uint64_t kEntrySwapped = uint64_t{1} << 62;
constexpr uint64_t kEntryFile = uint64_t{1} << 61;
constexpr uint64_t kEntrySoftDirty = uint64_t{1} << 55;
// What the entries tell: no zero page (the PFN is hidden without CAP_SYS_ADMIN), no THP, no written state.
constexpr uint64_t kEntryCategories = kPageIsPresent | kPageIsSwapped | kPageIsFile | kPageIsSoftDirty;

// Regions per ioctl (192 KiB, per thread: workers scan too): the walk continues
// from walk_end when they run out, so fewer regions only cost more ioctls.
constexpr size_t kRegionsPerScan = 8192;

void Append(std::vector<double>* out, uint64_t offset, uint64_t length, uint64_t categories) {
  size_t n = out->size();
  if (n >= 3 && (*out)[n - 1] == static_cast<double>(categories) &&
      (*out)[n - 3] + (*out)[n - 2] == static_cast<double>(offset)) {
    (*out)[n - 2] += static_cast<double>(length);
    return;
  }
  out->push_back(static_cast<double>(offset));
  out->push_back(static_cast<double>(length));
  out->push_back(static_cast<double>(categories));
}

// The entries of [start, end) read with pread, folded into runs as ScanPages does.
int ReadEntries(int fd, uint64_t start, uint64_t end, uint64_t base, std::vector<double>* out) {
  uint64_t page = PageSize();
  uint64_t entries[512];
  for (uint64_t at = start; at < end;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>((end - at) / page, 512));
    ssize_t got = pread(fd, entries, want * sizeof(uint64_t), static_cast<off_t>(at / page * sizeof(uint64_t)));
    if (got < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    size_t n = static_cast<size_t>(got) / sizeof(uint64_t);
    if (n == 0) return EIO;
    for (size_t i = 0; i < n; i++) {
      uint64_t e = entries[i];
      uint64_t c = 0;
      if (e & kEntryPresent) c |= kPageIsPresent;
      if (e & kEntrySwapped) c |= kPageIsSwapped;
      if (e & kEntryFile) c |= kPageIsFile;
      if (e & kEntrySoftDirty) c |= kPageIsSoftDirty;
      Append(out, at + i * page - base, page, c);
    }
    at += n * page;
  }
  return 0;
}

// -1 not tried yet, 1 PAGEMAP_SCAN works, 0 the kernel lacks it (workers read it too).
std::atomic<int> scanWorks{-1};

}  // namespace

int SelfPagemap() {
  static std::mutex lock;
  static pid_t owner = 0;
  static int fd = -1;
  return ProcessDescriptor(&lock, &owner, &fd, [] { return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC); });
}

int ScanPages(uint64_t start, uint64_t end, uint64_t base, uint64_t flags, uint64_t categoryMask, uint64_t returnMask,
              std::vector<double>* out) {
  int fd = SelfPagemap();
  if (fd < 0) return errno;
  thread_local std::vector<PageRegion> buffer(kRegionsPerScan);
  PageRegion* regions = buffer.data();
  while (start < end) {
    PageScanArg arg{};
    arg.size = sizeof arg;
    arg.flags = flags;
    arg.start = start;
    arg.end = end;
    arg.vec = reinterpret_cast<uintptr_t>(regions);
    arg.vec_len = kRegionsPerScan;
    arg.category_mask = categoryMask;
    arg.return_mask = returnMask;
    long n = ioctl(fd, kPagemapScan, &arg);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    for (long i = 0; i < n; i++) {
      const PageRegion& r = regions[i];
      Append(out, r.start - base, r.end - r.start, r.categories);
    }
    // The walk stops early only when our vector is full (no max_pages is set): with room left it
    // covered the whole range. walk_end alone is not enough: the kernel can report where its own
    // 512-region buffer last overflowed instead of where the walk ended (6.18, seen as the last
    // runs reported twice), so resume after the last region as well.
    if (static_cast<size_t>(n) < kRegionsPerScan) return 0;
    uint64_t next = std::max<uint64_t>(arg.walk_end, regions[n - 1].end);
    if (next <= start) return EIO;
    start = next;
  }
  return 0;
}

// mapping.pageFlags(offset, length, entriesOnly): { runs: Float64Array [offset, length, categories, ...], known, source }
Napi::Value NativeMapping::PageFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappingState& s = RequireOpen(env);
  auto [offset, length] = Range(info, 0);
  bool entriesOnly = ArgBool(info, 2, "entriesOnly");
  uint64_t base = reinterpret_cast<uintptr_t>(s.addr);
  uint64_t start = base + offset;
  std::vector<double> runs;
  uint64_t known = kPageCategories;
  const char* source = "pagemap-scan";
  int err = 0;
  if (!entriesOnly && scanWorks != 0 && length > 0) {
    err = ScanPages(start, start + length, base, 0, 0, kPageCategories, &runs);
    // ENOTTY: no such ioctl (before 6.7). EINVAL from the first call: a struct this kernel does not take.
    if (err == ENOTTY || (err == EINVAL && scanWorks == -1)) {
      scanWorks = 0;
      runs.clear();
    } else if (err == 0) {
      scanWorks = 1;
    } else {
      throw ErrnoError(env, err, "PAGEMAP_SCAN");
    }
  }
  if (entriesOnly || scanWorks == 0) {
    known = kEntryCategories;
    source = "pagemap";
    int fd = SelfPagemap();
    if (fd < 0) throw ErrnoError(env, errno, "open");
    err = ReadEntries(fd, start, start + length, base, &runs);
    if (err != 0) throw ErrnoError(env, err, "pread");
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, runs.size());
  std::copy(runs.begin(), runs.end(), out.Data());
  Napi::Object result = Napi::Object::New(env);
  result.Set("runs", out);
  result.Set("known", Napi::Number::New(env, static_cast<double>(known)));
  result.Set("source", Napi::String::New(env, source));
  return result;
}

}  // namespace pagewise
