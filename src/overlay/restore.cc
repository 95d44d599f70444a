#include "overlay/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include <fmt/format.h>

#include "base/file_io.h"
#include "overlay/archive_ptr.h"
#include "overlay/sha256.h"

namespace isoboot::overlay {
namespace {

// The archive bytes before the trailer, read with pread so the file offset
// does not matter; hashed and reported as progress when asked.
struct Input {
  int fd;
  uint64_t limit;
  uint64_t pos = 0;
  std::vector<uint8_t> buf = std::vector<uint8_t>(1 << 20);
  Sha256* sha = nullptr;
  const ProgressFn* progress = nullptr;
  std::string error;

  // Returns bytes read (0 at the limit); throws on I/O errors.
  size_t Next() {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - pos));
    if (n == 0) return 0;
    size_t got = PreadFull(fd, {buf.data(), n}, pos);
    if (got != n) throw std::runtime_error("archive file shrank while being read");
    if (sha) sha->Update({buf.data(), n});
    pos += n;
    if (progress && *progress) (*progress)(pos, limit);
    return n;
  }
};

la_ssize_t ReadCallback(struct archive*, void* client, const void** out) {
  auto* in = static_cast<Input*>(client);
  try {
    *out = in->buf.data();
    return static_cast<la_ssize_t>(in->Next());
  } catch (const std::exception& e) {
    in->error = e.what();
    return -1;
  }
}

ArchivePtr OpenReader(Input& in) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &in, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    throw std::runtime_error(
        fmt::format("not a readable archive: {}", archive_error_string(a.get())));
  }
  return a;
}

std::string ArchiveError(struct archive* a, const Input& in) {
  if (!in.error.empty()) return in.error;
  const char* e = archive_error_string(a);
  return e ? e : "libarchive error";
}

char TypeOf(struct archive_entry* e) {
  if (archive_entry_hardlink(e)) return 'h';
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      return 'f';
    case AE_IFDIR:
      return 'd';
    case AE_IFLNK:
      return 'l';
    case AE_IFCHR:
      return 'c';
    case AE_IFBLK:
      return 'b';
    case AE_IFIFO:
      return 'p';
    default:
      return 's';
  }
}

// The decompressed tar stream so far against the limit.
Result<bool> CheckStream(struct archive* a, const VerifyLimits& limits) {
  if (static_cast<uint64_t>(archive_filter_bytes(a, 0)) > limits.max_bytes) {
    return MakeError(ErrorKind::kExhausted,
                     fmt::format("the archive unpacks to more than the limit of {} (a "
                                 "decompression bomb, or a bigger backup than allowed)",
                                 SizeText(limits.max_bytes)));
  }
  return true;
}

// Reads the current entry's data, hashing holes as zeros.
Result<std::string> HashData(struct archive* a, uint64_t size, const Input& in,
                             const VerifyLimits& limits) {
  Sha256 sha;
  uint64_t pos = 0;
  const void* buf;
  size_t len;
  la_int64_t offset;
  int r;
  while ((r = archive_read_data_block(a, &buf, &len, &offset)) == ARCHIVE_OK) {
    uint64_t off = static_cast<uint64_t>(offset);
    if (off < pos) return MakeError("data blocks out of order");
    if (off > size || len > size - off) return MakeError("more data than the entry's size");
    if (auto ok = CheckStream(a, limits); !ok) return ok.error();
    sha.UpdateZeros(off - pos);
    sha.Update({static_cast<const uint8_t*>(buf), len});
    pos = off + len;
  }
  if (r != ARCHIVE_EOF) return MakeError(ArchiveError(a, in));
  sha.UpdateZeros(size - pos);
  return Hex(sha.Final());
}

// Reads (and drops) the data of an entry that should have none, under the
// limit: libarchive would otherwise skip it, decompressing without a bound.
Result<bool> DrainData(struct archive* a, const Input& in, const VerifyLimits& limits) {
  const void* buf;
  size_t len;
  la_int64_t offset;
  int r;
  while ((r = archive_read_data_block(a, &buf, &len, &offset)) == ARCHIVE_OK) {
    if (auto ok = CheckStream(a, limits); !ok) return ok.error();
  }
  if (r != ARCHIVE_EOF) return MakeError(ArchiveError(a, in));
  return true;
}

// Everything in pass 1 except the whole-archive checksum.
Result<Verified> Scan(struct archive* a, const Input& in, const VerifyLimits& limits) {
  Verified v;
  Manifest seen;
  std::set<std::string> symlinks, linkable;
  bool have_manifest = false;
  struct archive_entry* e;
  int r;
  for (size_t n = 1; (r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN;
       ++n) {
    if (auto ok = CheckStream(a, limits); !ok) return ok.error();
    const char* raw = archive_entry_pathname(e);
    auto path = SafeRelativePath(raw ? raw : "");
    if (!path)
      return MakeError(fmt::format("entry {} ({}): {}", n, raw ? raw : "", path.error().message));
    if (have_manifest)
      return MakeError(fmt::format("entry {} ({}) follows the manifest", n, *path));
    for (size_t slash = path->find('/'); slash != std::string::npos;
         slash = path->find('/', slash + 1)) {
      if (symlinks.count(path->substr(0, slash))) {
        return MakeError(fmt::format("entry {} ({}) would be written through a symlink", n, *path));
      }
    }
    ManifestEntry m{TypeOf(e), 0, "", *path};
    if (m.type == 'h') {
      auto target = SafeRelativePath(archive_entry_hardlink(e));
      if (!target || !linkable.count(*target)) {
        return MakeError(fmt::format(
            "entry {} ({}) is a hard link to {}, which is not an earlier file of the archive", n,
            *path, archive_entry_hardlink(e)));
      }
    }
    if (*path == kManifestName) {
      if (m.type != 'f' || archive_entry_size(e) > (64 << 20))
        return MakeError("manifest entry is not a small file");
      std::vector<uint8_t> text(static_cast<size_t>(archive_entry_size(e)));
      if (archive_read_data(a, text.data(), text.size()) != static_cast<la_ssize_t>(text.size())) {
        return MakeError(fmt::format("reading the manifest: {}", ArchiveError(a, in)));
      }
      auto parsed = ParseManifest(text);
      if (!parsed) return parsed.error();
      v.manifest = std::move(*parsed);
      have_manifest = true;
      continue;
    }
    if (seen.entries.size() >= limits.max_entries) {
      return MakeError(
          ErrorKind::kExhausted,
          fmt::format("the archive has more than the limit of {} entries", limits.max_entries));
    }
    if (m.type == 'l')
      symlinks.insert(*path);
    else
      symlinks.erase(*path);
    if (m.type != 'd') linkable.insert(*path);
    if (m.type == 'f') {
      m.size = static_cast<uint64_t>(std::max<la_int64_t>(0, archive_entry_size(e)));
      if (m.size > limits.max_bytes - std::min(limits.max_bytes, v.content_bytes)) {
        return MakeError(
            ErrorKind::kExhausted,
            fmt::format("{}: the archive's files come to more than the limit of {} (holes of "
                        "sparse files included)",
                        *path, SizeText(limits.max_bytes)));
      }
      auto sha = HashData(a, m.size, in, limits);
      if (!sha) {
        Error err = sha.error();
        err.message = fmt::format("{}: {}", *path, err.message);
        return err;
      }
      m.sha256 = *sha;
      v.content_bytes += m.size;
    } else if (auto drained = DrainData(a, in, limits); !drained) {
      Error err = drained.error();
      err.message = fmt::format("{}: {}", *path, err.message);
      return err;
    }
    seen.entries.push_back(std::move(m));
  }
  if (r != ARCHIVE_EOF)
    return MakeError(fmt::format("reading the archive: {}", ArchiveError(a, in)));
  if (!have_manifest)
    return MakeError("the archive has no manifest (not made by `isoboot overlay backup`)");
  if (seen.entries.size() != v.manifest.entries.size()) {
    return MakeError(fmt::format("the archive has {} entries but its manifest lists {}",
                                 seen.entries.size(), v.manifest.entries.size()));
  }
  for (size_t i = 0; i < seen.entries.size(); ++i) {
    if (!(seen.entries[i] == v.manifest.entries[i])) {
      return MakeError(fmt::format("{}: does not match the manifest (content or type changed)",
                                   seen.entries[i].path));
    }
  }
  return v;
}

}  // namespace

Result<std::string> SafeRelativePath(const std::string& path) {
  if (path.empty()) return MakeError("empty path");
  if (path[0] == '/') return MakeError("absolute path");
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string_view part(path.data() + start, slash - start);
    if (part == "..") return MakeError("path has a \"..\" component");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out.push_back('/');
      out.append(part);
    }
    start = slash + 1;
  }
  return out.empty() ? std::string(".") : out;
}

std::string SizeText(uint64_t bytes) {
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} bytes", bytes);
  double v = static_cast<double>(bytes);
  size_t u = 0;
  for (v /= 1024; v >= 1024 && u + 1 < std::size(kUnits); v /= 1024)
    ++u;
  if (v == static_cast<double>(static_cast<uint64_t>(v)))
    return fmt::format("{} {}", static_cast<uint64_t>(v), kUnits[u]);
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

Result<Verified> Verify(int fd, const ProgressFn& progress, const VerifyLimits& limits) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return MakeError(fmt::format("stat: {}", std::strerror(errno)));
  uint64_t size = static_cast<uint64_t>(st.st_size);
  std::vector<uint8_t> tail(static_cast<size_t>(std::min<uint64_t>(size, kMaxTrailerSize)));
  PreadFull(fd, tail, size - tail.size());
  auto trailer = ParseTrailer(tail);
  if (!trailer) return trailer.error();
  if (trailer->size + TrailerSize(trailer->compression) != size) {
    return MakeError(
        fmt::format("archive is {} bytes but its trailer says {} (truncated or appended to)", size,
                    trailer->size + TrailerSize(trailer->compression)));
  }
  Sha256 sha;
  Input in{fd, trailer->size, 0, std::vector<uint8_t>(1 << 20), &sha, &progress, {}};
  Result<Verified> scanned = MakeError("unreadable");
  try {
    ArchivePtr a = OpenReader(in);
    scanned = Scan(a.get(), in, limits);
  } catch (const std::exception& e) {
    scanned = MakeError(e.what());
  }
  while (in.Next() > 0) {
  }
  Digest got = sha.Final();
  if (got != trailer->sha256) {
    return MakeError(
        fmt::format("archive checksum mismatch (corrupted): sha256 is {}, trailer says {}",
                    Hex(got), Hex(trailer->sha256)));
  }
  if (!scanned) return scanned.error();
  scanned->trailer = *trailer;
  scanned->archive_bytes = size;
  return scanned;
}

}  // namespace isoboot::overlay
