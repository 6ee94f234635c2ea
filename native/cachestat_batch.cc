// statFiles(paths, wantCachestat): open + fstat (+ cachestat) of many files in
// one call, for the CLI's `stat` over large trees. `paths` is one string, each
// path ended by a NUL (one string conversion for the whole batch). Per file it costs four system
// calls and no JavaScript objects; the same work through fs.openSync /
// fs.fstatSync / fileResidency costs several times that in call overhead.
//
// walkFiles(dir, wantCachestat) does the directory walk too (the common case of
// `pagewise stat DIR` without filters), so that no JavaScript object is made per
// directory entry.
//
// Files are opened O_NONBLOCK: a path swapped for a FIFO after the directory
// walk opens at once (and fstat says it is not a regular file) instead of
// blocking until a writer appears. Only regular files get cachestat.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

namespace pagewise {

namespace {

struct BatchCachestatRange {
  uint64_t off;
  uint64_t len;
};

struct BatchCachestat {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};

// One row per path (doubles; the layout is STAT_FIELDS in lib/cli/batch.ts).
enum Field { kErrno, kStage, kType, kDev, kIno, kSize, kCached, kDirty, kWriteback, kEvicted, kRecent, kFields };
enum Stage { kOk = 0, kOpen = 1, kFstat = 2, kCachestat = 3 };
enum Type { kOther = 0, kRegular = 1 };

// Closes the descriptor on every path out of the row.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

namespace {

// open + fstat (+ cachestat) of one file into one row: `name` relative to the
// directory `dirfd` (AT_FDCWD: a path as given). Opening relative to the open
// directory spares the kernel the lookup of every path component per file.
void StatAt(int dirfd, const char* name, double* row, bool wantCachestat) {
  Fd file{openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)};
  if (file.fd < 0) {
    row[kErrno] = errno;
    row[kStage] = kOpen;
    return;
  }
  struct stat st;
  if (fstat(file.fd, &st) != 0) {
    row[kErrno] = errno;
    row[kStage] = kFstat;
    return;
  }
  row[kType] = S_ISREG(st.st_mode) ? kRegular : kOther;
  row[kDev] = static_cast<double>(st.st_dev);
  row[kIno] = static_cast<double>(st.st_ino);
  row[kSize] = static_cast<double>(st.st_size);
  if (!wantCachestat || !S_ISREG(st.st_mode) || st.st_size == 0) return;
  BatchCachestatRange range{0, 0};  // len 0: to the end of the file
  BatchCachestat cs{};
  if (syscall(__NR_cachestat, file.fd, &range, &cs, 0) != 0) {
    row[kErrno] = errno;
    row[kStage] = kCachestat;
    return;
  }
  row[kCached] = static_cast<double>(cs.nr_cache);
  row[kDirty] = static_cast<double>(cs.nr_dirty);
  row[kWriteback] = static_cast<double>(cs.nr_writeback);
  row[kEvicted] = static_cast<double>(cs.nr_evicted);
  row[kRecent] = static_cast<double>(cs.nr_recently_evicted);
}

struct Walk {
  bool wantCachestat = false;
  size_t maxFiles = 0;
  bool tooMany = false;  // more than maxFiles regular files: the walk stopped
  std::string files;     // regular files found, each followed by a NUL
  std::vector<double> rows;
  size_t count = 0;
  double directories = 0;
  std::string errors;  // "path\0errno\0" per directory that could not be read
};

// Depth-first, entries of each directory in byte order of their names (for UTF-8 names,
// code point order: lib/cli/files.ts sorts the same way); symbolic links and special
// files are skipped, as in the JavaScript walk. The files of a directory are stat'ed
// while it is open, and it is closed before its subdirectories are walked: one
// directory descriptor at a time, whatever the depth.
void WalkDir(const std::string& dir, Walk& w) {
  w.directories++;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    w.errors += dir;
    w.errors += '\0';
    w.errors += std::to_string(errno);
    w.errors += '\0';
    return;
  }
  std::vector<std::pair<std::string, unsigned char>> entries;
  size_t regular = 0;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
      }
    }
    if (type == DT_DIR || type == DT_REG) {
      entries.emplace_back(e->d_name, type);
      regular += type == DT_REG;
    }
  }
  // (Checked again per file below: the subdirectories walked in between add files too.)
  if (regular > w.maxFiles - w.count) {
    closedir(d);
    w.tooMany = true;
    return;
  }
  // std::string compares as unsigned bytes (memcmp).
  std::sort(entries.begin(), entries.end());
  std::vector<double> rows(regular * kFields, 0.0);
  size_t r = 0;
  for (const auto& [name, type] : entries) {
    if (type == DT_REG) StatAt(dirfd(d), name.c_str(), rows.data() + (r++) * kFields, w.wantCachestat);
  }
  closedir(d);
  const std::string prefix = !dir.empty() && dir.back() == '/' ? dir : dir + '/';
  r = 0;
  for (const auto& [name, type] : entries) {
    if (type == DT_DIR) {
      WalkDir(prefix + name, w);
      if (w.tooMany) return;
    } else {
      if (w.count == w.maxFiles) {
        w.tooMany = true;
        return;
      }
      w.files += prefix;
      w.files += name;
      w.files += '\0';
      w.rows.insert(w.rows.end(), rows.begin() + r * kFields, rows.begin() + (r + 1) * kFields);
      r++;
      w.count++;
    }
  }
}

// Files per call at most (statFiles, walkFiles): the rows (88 bytes a file) stay under
// 100 MB, far below what an ArrayBuffer may hold. lib/cli/batch.ts sends 4,096 at a time;
// a larger tree is walked again in JavaScript, which stats it in such chunks.
constexpr size_t kMaxBatchFiles = size_t{1} << 20;

}  // namespace

Napi::Value StatFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "paths must be a string");
  std::string joined = info[0].As<Napi::String>().Utf8Value();
  bool wantCachestat = info[1].ToBoolean().Value();
  size_t n = 0;
  for (char c : joined) n += c == '\0';
  if (n > kMaxBatchFiles) throw OutOfRange(env, "paths");
  Napi::Float64Array rows = Napi::Float64Array::New(env, n * kFields);
  double* out = rows.Data();
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    const char* path = joined.c_str() + start;
    start = joined.find('\0', start) + 1;
    StatAt(AT_FDCWD, path, out + i * kFields, wantCachestat);
  }
  return rows;
}

// walkFiles(dir, wantCachestat, maxFiles?): { files, rows, directories, errors } — the regular
// files under dir (NUL-terminated paths, dir + '/' + relative path), one StatAt row each, the
// number of directories read, and "path\0errno\0" for each that could not be read. More than
// maxFiles (default and upper bound kMaxBatchFiles) files: RangeError ERR_OUT_OF_RANGE.
Napi::Value WalkFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "dir must be a string");
  Walk w;
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  w.wantCachestat = info[1].ToBoolean().Value();
  w.maxFiles = Arg(info, 2).IsUndefined() ? kMaxBatchFiles : std::min<size_t>(ArgUint(info, 2, "maxFiles"), kMaxBatchFiles);
  WalkDir(dir, w);
  if (w.tooMany) throw OutOfRange(env, "maxFiles");
  Napi::Float64Array rows = Napi::Float64Array::New(env, w.rows.size());
  if (!w.rows.empty()) std::memcpy(rows.Data(), w.rows.data(), w.rows.size() * sizeof(double));
  Napi::Object result = Napi::Object::New(env);
  result.Set("files", Napi::String::New(env, w.files));
  result.Set("rows", rows);
  result.Set("directories", Napi::Number::New(env, w.directories));
  result.Set("errors", Napi::String::New(env, w.errors));
  return result;
}

}  // namespace pagewise
