// statText(rows, paths, pageSize, json): the text of `pagewise stat` for files whose
// whole-file cachestat counts are known (rows of walkFiles / statFiles, every one a regular
// file without error), made in one native pass. The same text lib/cli/stat/text.ts makes
// (header + one line per file, no summary; json: the elements of the "files" array of
// JSON.stringify(doc, null, 2)); kept in C++ because a short-lived process runs that
// JavaScript cold, once per file: the measured difference is in docs/CLI.md.
//
// Numbers are written as JavaScript writes them (Number#toString, Number#toFixed(1)), paths
// as showPath() / JSON.stringify() write them: test/cli-text.test.ts compares the two.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../errors.h"
#include "stat_row.h"

namespace pagewise {

namespace {

using namespace cli;  // NOLINT: the row's field names (native/cli/stat_row.h)

constexpr double kTwo53 = 9007199254740992.0;

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(p, buf + sizeof buf - p);
}

// Number#toString of a finite, non-negative number: the shortest digits that read back as
// the same double (the correctly rounded 15, 16 or 17 digits; 15 with trailing zeros
// dropped), laid out as ECMAScript's Number::toString lays them out.
void AppendNumber(std::string& out, double x) {
  if (x == 0) {
    out += '0';
    return;
  }
  if (x < kTwo53 && x == std::floor(x)) {
    AppendUint(out, static_cast<uint64_t>(x));
    return;
  }
  char buf[40];
  for (int precision = 15; precision <= 17; precision++) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, x);
    if (precision == 17 || std::strtod(buf, nullptr) == x) break;
  }
  // buf: d.ddddde[+-]XX
  char* e = std::strchr(buf, 'e');
  int exponent = std::atoi(e + 1);
  std::string digits;
  for (char* p = buf; p < e; p++) {
    if (*p != '.') digits += *p;
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;  // x = 0.digits * 10^n
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<size_t>(n));
    out += '.';
    out.append(digits, static_cast<size_t>(n), std::string::npos);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    AppendUint(out, static_cast<uint64_t>(std::abs(n - 1)));
  }
}

// Number#toFixed(1) of a non-negative number below 1e21: the nearest tenth, and of two
// equally near the larger. printf rounds exactly too, but a tie to the even one: a tie
// needs x * 10 = m + 0.5 exactly, i.e. x * 4 an odd integer, and is taken here.
void AppendFixed1(std::string& out, double x) {
  const double quarter = x * 4;  // exact
  if (quarter == std::floor(quarter) && std::fmod(quarter, 2) == 1 && quarter < kTwo53) {
    const uint64_t tenths = (static_cast<uint64_t>(quarter) * 5 + 1) / 2;  // x * 10 + 0.5
    AppendUint(out, tenths / 10);
    out += '.';
    out += static_cast<char>('0' + tenths % 10);
    return;
  }
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%.1f", x);
  out.append(buf, static_cast<size_t>(n));
}

const char* const kByteUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
constexpr int kUnits = 6;

// formatBytes() of lib/cli/args.ts for a whole number of bytes: value = bytes / 1024^(i+1)
// is exact (a power of two), so its toFixed(1) is bytes * 10 / 2^(10(i+1)) rounded half up.
void AppendBytes(std::string& out, double bytes) {
  if (bytes < 1024) {
    AppendNumber(out, bytes);
    out += " B";
    return;
  }
  const unsigned __int128 b = static_cast<unsigned __int128>(bytes);
  int i = 0;
  while (i < kUnits - 1 && b >= (static_cast<unsigned __int128>(1) << (10 * (i + 2)))) i++;
  auto tenths = [b](int unit) {
    const int shift = 10 * (unit + 1);
    return static_cast<uint64_t>((b * 10 + (static_cast<unsigned __int128>(1) << (shift - 1))) >> shift);
  };
  uint64_t t = tenths(i);
  // 1023.96 KiB would print as "1024.0 KiB": the next unit instead (as formatBytes does).
  if (t == 10240 && i < kUnits - 1) t = tenths(++i);
  AppendUint(out, t / 10);
  out += '.';
  out += static_cast<char>('0' + t % 10);
  out += ' ';
  out += kByteUnits[i];
}

// formatPercent() of lib/cli/args.ts.
void AppendPercent(std::string& out, double percent) {
  if (percent == 100) {
    out += "100.0%";
    return;
  }
  if (percent == 0) {
    out += "0.0%";
    return;
  }
  const size_t at = out.size();
  AppendFixed1(out, percent);
  // Never round a partially resident file up to 100% or a non-empty residency down to 0%.
  if (out.compare(at, std::string::npos, "100.0") == 0 && percent < 100) out.replace(at, std::string::npos, "99.9");
  if (out.compare(at, std::string::npos, "0.0") == 0 && percent > 0) out.replace(at, std::string::npos, "0.1");
  out += '%';
}

// A JSON string's body as JSON.stringify writes it (the text is UTF-8; what is not ASCII
// passes through).
void AppendJsonBody(std::string& out, const char* s, size_t length) {
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < length; i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

// showPath() of lib/cli/run.ts: as is, or JSON-quoted when it holds a control
// character (U+0000-U+001F, U+007F-U+009F; the last are C2 80-C2 9F in UTF-8).
void AppendShownPath(std::string& out, const char* s, size_t length) {
  bool control = false;
  for (size_t i = 0; i < length && !control; i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    control = c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < length && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
                                        static_cast<unsigned char>(s[i + 1]) <= 0x9f);
  }
  if (!control) {
    out.append(s, length);
    return;
  }
  out += '"';
  AppendJsonBody(out, s, length);
  out += '"';
}

// Where the text goes: a descriptor, in pieces of about kPiece bytes through one reused
// buffer (no megabytes of fresh memory to fault in: in a VM a page fault costs
// microseconds), or one buffer for the caller.
class Sink {
 public:
  static constexpr size_t kPiece = 1 << 16;
  explicit Sink(int fd) : fd_(fd) { text.reserve(fd >= 0 ? kPiece + 4096 : 0); }
  std::string text;
  // After a line: write out a full piece.
  void Line() {
    if (fd_ >= 0 && text.size() >= kPiece) Flush();
  }
  // Write what is left (descriptor). A pipe or terminal in non-blocking mode may refuse
  // (EAGAIN): wait until it takes more. Returns 0 or the errno of write(2).
  int Flush() {
    if (fd_ < 0 || error_ != 0) return error_;
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = write(fd_, text.data() + done, text.size() - done);
      if (n >= 0) {
        done += static_cast<size_t>(n);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{fd_, POLLOUT, 0};
        poll(&p, 1, -1);
      } else if (errno != EINTR) {
        error_ = errno;
        break;
      }
    }
    text.clear();
    return error_;
  }

 private:
  int fd_;
  int error_ = 0;
};

struct FileRow {
  double size, cached, total, percent, resident, dirty, writeback, evicted, recent;
};

FileRow RowOf(const double* r, double pageSize) {
  FileRow f;
  f.size = r[kSize];
  f.cached = r[kCached];
  f.total = std::ceil(f.size / pageSize);
  f.percent = f.total == 0 ? 100 : (100 * f.cached) / f.total;
  f.resident = f.cached * pageSize;
  f.dirty = r[kDirty];
  f.writeback = r[kWriteback];
  f.evicted = r[kEvicted];
  f.recent = r[kRecent];
  return f;
}

constexpr int kColumns = 8;
const char* const kHeader[kColumns] = {"RESIDENT", "PAGES", "SIZE", "PERCENT", "DIRTY", "WRITEBACK", "EVICTED", "RECENT"};

// The cells of one table line, each ended by a NUL, into `cells` (reused).
void Cells(const FileRow& f, std::string& cells, size_t* lengths) {
  cells.clear();
  size_t at = 0;
  auto end = [&](int c) {
    lengths[c] = cells.size() - at;
    at = cells.size();
  };
  AppendBytes(cells, f.resident);
  end(0);
  AppendNumber(cells, f.cached);
  cells += '/';
  AppendNumber(cells, f.total);
  end(1);
  AppendBytes(cells, f.size);
  end(2);
  AppendPercent(cells, f.percent);
  end(3);
  AppendNumber(cells, f.dirty);
  end(4);
  AppendNumber(cells, f.writeback);
  end(5);
  AppendNumber(cells, f.evicted);
  end(6);
  AppendNumber(cells, f.recent);
  end(7);
}

void AppendLine(std::string& out, const char* cells, const size_t* lengths, const size_t* widths) {
  for (int c = 0; c < kColumns; c++) {
    if (c > 0) out += "  ";
    out.append(widths[c] - lengths[c], ' ');
    out.append(cells, lengths[c]);
    cells += lengths[c];
  }
  out += "  ";
}

void Table(Sink& sink, const double* rows, const std::vector<std::pair<const char*, size_t>>& paths, double pageSize) {
  size_t widths[kColumns];
  size_t lengths[kColumns];
  for (int c = 0; c < kColumns; c++) widths[c] = std::strlen(kHeader[c]);
  std::string cells;
  for (size_t i = 0; i < paths.size(); i++) {
    Cells(RowOf(rows + i * kFields, pageSize), cells, lengths);
    for (int c = 0; c < kColumns; c++) widths[c] = std::max(widths[c], lengths[c]);
  }
  std::string header;
  for (int c = 0; c < kColumns; c++) {
    header += kHeader[c];
    lengths[c] = std::strlen(kHeader[c]);
  }
  std::string& out = sink.text;
  AppendLine(out, header.c_str(), lengths, widths);
  out += "FILE\n";
  for (size_t i = 0; i < paths.size(); i++) {
    Cells(RowOf(rows + i * kFields, pageSize), cells, lengths);
    AppendLine(out, cells.data(), lengths, widths);
    AppendShownPath(out, paths[i].first, paths[i].second);
    out += '\n';
    sink.Line();
  }
}

void Json(Sink& sink, const double* rows, const std::vector<std::pair<const char*, size_t>>& paths, double pageSize) {
  std::string& out = sink.text;
  for (size_t i = 0; i < paths.size(); i++) {
    sink.Line();
    const FileRow f = RowOf(rows + i * kFields, pageSize);
    out += i == 0 ? "    {\n      \"path\": \"" : ",\n    {\n      \"path\": \"";
    AppendJsonBody(out, paths[i].first, paths[i].second);
    out += '"';
    // The members of a StatFile, in JSON.stringify's order.
    const std::pair<const char*, double> members[] = {
        {"size", f.size},     {"offset", 0},           {"length", f.size},       {"cached", f.cached},
        {"total", f.total},   {"percent", f.percent},  {"residentBytes", f.resident}, {"dirty", f.dirty},
        {"writeback", f.writeback}, {"evicted", f.evicted}, {"recentlyEvicted", f.recent},
    };
    for (const auto& [name, value] : members) {
      out += ",\n      \"";
      out += name;
      out += "\": ";
      AppendNumber(out, value);
    }
    out += ",\n      \"source\": \"cachestat\"\n    }";
  }
}

}  // namespace

// statSums(rows: Float64Array, pageSize: number): Float64Array [size, cached, total pages,
// dirty, writeback, evicted, recently evicted] summed over the rows (the summary of stat).
Napi::Value StatSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TypedArrayArg rows = ArgTypedArray(info, 0, napi_float64_array, "rows");
  const double pageSize = static_cast<double>(ArgUint(info, 1, "pageSize"));
  if (pageSize == 0 || rows.length % kFields != 0) throw CodedError(env, "ERR_INVALID_ARG_VALUE", "whole rows");
  double sums[7] = {0, 0, 0, 0, 0, 0, 0};
  const double* r = static_cast<const double*>(rows.data);
  for (size_t at = 0; at < rows.length; at += kFields) {
    const FileRow f = RowOf(r + at, pageSize);
    sums[0] += f.size;
    sums[1] += f.cached;
    sums[2] += f.total;
    sums[3] += f.dirty;
    sums[4] += f.writeback;
    sums[5] += f.evicted;
    sums[6] += f.recent;
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, 7);
  std::memcpy(out.Data(), sums, sizeof sums);
  return out;
}

// statText(rows: Float64Array, paths: string (each ended by a NUL), pageSize: number,
// json: boolean, fd?: number): one row per path. Without fd: a Buffer of the text (UTF-8).
// With fd: the text is written to it, and the result is 0 or the errno of the write that
// failed (EPIPE: the reader is gone).
Napi::Value StatText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TypedArrayArg rows = ArgTypedArray(info, 0, napi_float64_array, "rows");
  if (!info[1].IsString()) throw InvalidArgType(env, "paths");
  const std::string joined = info[1].As<Napi::String>().Utf8Value();
  const double pageSize = static_cast<double>(ArgUint(info, 2, "pageSize"));
  const bool json = info[3].ToBoolean().Value();
  const int fd = Arg(info, 4).IsUndefined() ? -1 : static_cast<int>(ArgUint(info, 4, "fd", INT32_MAX));
  std::vector<std::pair<const char*, size_t>> paths;
  for (size_t start = 0; start < joined.size();) {
    const size_t end = joined.find('\0', start);
    if (end == std::string::npos) break;
    paths.emplace_back(joined.data() + start, end - start);
    start = end + 1;
  }
  if (pageSize == 0 || rows.length != paths.size() * kFields) throw CodedError(env, "ERR_INVALID_ARG_VALUE", "one row per path");
  Sink sink(fd);
  if (fd < 0) sink.text.reserve(joined.size() + paths.size() * (json ? 320 : 64) + 128);
  if (json) {
    Json(sink, static_cast<const double*>(rows.data), paths, pageSize);
  } else {
    Table(sink, static_cast<const double*>(rows.data), paths, pageSize);
  }
  if (fd >= 0) return Napi::Number::New(env, sink.Flush());
  return Napi::Buffer<char>::Copy(env, sink.text.data(), sink.text.size());
}

}  // namespace pagewise
