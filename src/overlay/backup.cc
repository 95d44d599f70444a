#include "overlay/backup.h"

#include <fnmatch.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "overlay/archive_ptr.h"
#include "overlay/manifest.h"
#include "overlay/sha256.h"
#include "overlay/transport.h"

namespace isoboot::overlay {
namespace {

// The archive stream on its way to the sink: hashed and counted. libarchive
// calls back through C, so a failure is stored here and reported after.
struct Output {
  Sink* sink;
  Sha256 sha;
  uint64_t bytes = 0;
  std::string error;
};

la_ssize_t WriteCallback(struct archive*, void* client, const void* buf, size_t n) {
  auto* out = static_cast<Output*>(client);
  if (!out->error.empty()) return -1;  // failed before: write nothing more
  try {
    std::span<const uint8_t> data(static_cast<const uint8_t*>(buf), n);
    out->sha.Update(data);
    out->sink->Write(data);
    out->bytes += n;
    return static_cast<la_ssize_t>(n);
  } catch (const std::exception& e) {
    out->error = e.what();
    return -1;
  }
}

std::string Describe(struct archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  return fmt::format("{}: {}", what, msg ? msg : "libarchive error");
}

uint64_t TotalContent(const std::filesystem::path& root, const std::vector<std::string>& globs) {
  uint64_t total = 0;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string rel = it->path().lexically_relative(root).string();
    if (Excluded(rel, globs)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  }
  return total;
}

class Writer {
 public:
  Writer(const BackupOptions& options, Sink& sink)
      : options_(options),
        disk_(archive_read_disk_new(), archive_read_free),
        out_(archive_write_new(), archive_write_free) {
    output_.sink = &sink;
  }

  void Abort() {
    if (output_.error.empty()) output_.error = "aborted";
  }

  BackupStats Run() {
    total_ = options_.progress ? TotalContent(options_.upper, options_.excludes) : 0;
    OpenOutput();
    // Numeric owners only: names belong to the live image's /etc/passwd.
    archive_read_disk_set_symlink_physical(disk_.get());
    archive_read_disk_set_behavior(disk_.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
    if (archive_read_disk_open(disk_.get(), options_.upper.c_str()) != ARCHIVE_OK) {
      throw std::runtime_error(Describe(disk_.get(), options_.upper));
    }
    std::unique_ptr<archive_entry_linkresolver, void (*)(archive_entry_linkresolver*)> links(
        archive_entry_linkresolver_new(), archive_entry_linkresolver_free);
    archive_entry_linkresolver_set_strategy(links.get(), archive_format(out_.get()));
    while (true) {
      EntryPtr entry(archive_entry_new(), archive_entry_free);
      int r = archive_read_next_header2(disk_.get(), entry.get());
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN)
        throw std::runtime_error(Describe(disk_.get(), "reading the upper dir"));
      std::string rel = Relative(archive_entry_pathname(entry.get()));
      bool is_dir = archive_entry_filetype(entry.get()) == AE_IFDIR;
      if (rel == kManifestName || (rel != "." && Excluded(rel, options_.excludes))) {
        ++stats_.excluded;
        continue;  // not descending into an excluded directory
      }
      if (is_dir && archive_read_disk_can_descend(disk_.get())) {
        archive_read_disk_descend(disk_.get());
      }
      archive_entry_copy_pathname(entry.get(), rel.c_str());
      struct archive_entry* e = entry.release();
      struct archive_entry* spare = nullptr;
      archive_entry_linkify(links.get(), &e, &spare);
      EntryPtr owned(e, archive_entry_free);
      if (spare) archive_entry_free(spare);
      WriteEntry(owned.get());
    }
    archive_read_close(disk_.get());
    WriteManifest();
    if (archive_write_close(out_.get()) != ARCHIVE_OK) Fail("finishing the archive");
    Trailer t{options_.compression, output_.sha.Final(), output_.bytes};
    stats_.sha256 = Hex(t.sha256);
    std::vector<uint8_t> trailer;
    AppendTrailer(t, trailer);
    output_.sink->Write(trailer);
    stats_.archive_bytes = output_.bytes + trailer.size();
    output_.sink->Commit();
    return stats_;
  }

 private:
  void OpenOutput() {
    struct archive* a = out_.get();
    archive_write_set_format_pax(a);  // always a pax header: nanosecond mtimes
    int r = options_.compression == Compression::kZstd ? archive_write_add_filter_zstd(a)
                                                       : archive_write_add_filter_gzip(a);
    if (r != ARCHIVE_OK) throw std::runtime_error(Describe(a, "setting up compression"));
    if (options_.compression == Compression::kZstd) {
      // Compress on every CPU while this thread reads and hashes; a warning
      // from a libzstd built without threads is harmless.
      std::string threads = std::to_string(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
      archive_write_set_filter_option(a, "zstd", "threads", threads.c_str());
    }
    // No zero padding after the compressed stream: the trailer must follow it.
    archive_write_set_bytes_per_block(a, 64 * 1024);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open2(a, &output_, nullptr, WriteCallback, nullptr, nullptr) != ARCHIVE_OK) {
      Fail("opening the archive");
    }
  }

  std::string Relative(std::string_view full) const {
    std::string_view root = options_.upper;
    while (root.size() > 1 && root.back() == '/')
      root.remove_suffix(1);
    if (full == root) return ".";
    if (full.substr(0, root.size()) == root && full.size() > root.size() &&
        full[root.size()] == '/') {
      full.remove_prefix(root.size() + 1);
    } else if (root == "/" && !full.empty() && full[0] == '/') {
      full.remove_prefix(1);
    }
    return std::string(full);
  }

  [[noreturn]] void Fail(const std::string& what) {
    std::string why = output_.error.empty() ? Describe(out_.get(), what)
                                            : fmt::format("{}: {}", what, output_.error);
    if (output_.error.empty()) output_.error = "aborted";
    throw std::runtime_error(why);
  }

  void Count(struct archive_entry* e, ManifestEntry& m) {
    ++stats_.entries;
    const char* hardlink = archive_entry_hardlink(e);
    switch (archive_entry_filetype(e)) {
      case AE_IFREG:
        m.type = hardlink ? 'h' : 'f';
        ++(hardlink ? stats_.hardlinks : stats_.files);
        break;
      case AE_IFDIR:
        m.type = 'd';
        ++stats_.directories;
        break;
      case AE_IFLNK:
        m.type = 'l';
        ++stats_.symlinks;
        break;
      case AE_IFCHR:
        m.type = 'c';
        if (archive_entry_rdev(e) == 0) ++stats_.whiteouts;
        break;
      case AE_IFBLK:
        m.type = 'b';
        break;
      case AE_IFIFO:
        m.type = 'p';
        break;
      default:
        m.type = 's';
        break;
    }
    const char* name;
    const void* value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      ++stats_.xattrs;
      if (std::strcmp(name, "trusted.overlay.opaque") == 0) ++stats_.opaque_directories;
    }
    if (archive_entry_sparse_count(e) > 0) ++stats_.sparse_files;
  }

  void WriteEntry(struct archive_entry* e) {
    ManifestEntry m;
    m.path = archive_entry_pathname(e);
    Count(e, m);
    if (m.type == 'h') m.size = 0;
    int r = archive_write_header(out_.get(), e);
    if (r < ARCHIVE_WARN) Fail(m.path);
    if (m.type == 'f') {
      m.size = static_cast<uint64_t>(archive_entry_size(e));
      CopyData(m);
    }
    manifest_.entries.push_back(std::move(m));
  }

  // Copies one file's data from the disk reader, writing holes as zeros
  // (the pax writer drops them again from its sparse map) and hashing them.
  void CopyData(ManifestEntry& m) {
    Sha256 sha;
    uint64_t pos = 0;
    const void* buf;
    size_t len;
    la_int64_t offset;
    static const std::vector<uint8_t> kZeros(64 * 1024, 0);
    int r;
    while ((r = archive_read_data_block(disk_.get(), &buf, &len, &offset)) == ARCHIVE_OK) {
      uint64_t off = static_cast<uint64_t>(offset);
      while (pos < off) {
        size_t k = static_cast<size_t>(std::min<uint64_t>(off - pos, kZeros.size()));
        if (archive_write_data(out_.get(), kZeros.data(), k) < 0) Fail(m.path);
        sha.Update({kZeros.data(), k});
        pos += k;
      }
      if (len > 0 && archive_write_data(out_.get(), buf, len) < 0) Fail(m.path);
      sha.Update({static_cast<const uint8_t*>(buf), len});
      pos += len;
      Progress(len);
    }
    if (r != ARCHIVE_EOF) throw std::runtime_error(Describe(disk_.get(), m.path));
    if (pos > m.size)
      throw std::runtime_error(fmt::format("{}: file grew while being read", m.path));
    sha.UpdateZeros(m.size - pos);  // a trailing hole
    stats_.content_bytes += m.size;
    m.sha256 = Hex(sha.Final());
  }

  void Progress(uint64_t n) {
    done_ += n;
    if (options_.progress) options_.progress(done_, std::max(done_, total_));
  }

  void WriteManifest() {
    std::vector<uint8_t> text;
    AppendManifest(manifest_, text);
    EntryPtr e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), kManifestName);
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0600);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(text.size()));
    archive_entry_set_mtime(e.get(), ::time(nullptr), 0);
    if (archive_write_header(out_.get(), e.get()) < ARCHIVE_WARN ||
        archive_write_data(out_.get(), text.data(), text.size()) < 0) {
      Fail("writing the manifest");
    }
  }

  const BackupOptions& options_;
  Output output_;  // before out_: freeing out_ may still call back into it
  ArchivePtr disk_;
  ArchivePtr out_;
  Manifest manifest_;
  BackupStats stats_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
};

}  // namespace

bool Excluded(const std::string& rel, const std::vector<std::string>& globs) {
  if (globs.empty()) return false;
  size_t slash = rel.rfind('/');
  const char* name = rel.c_str() + (slash == std::string::npos ? 0 : slash + 1);
  for (const auto& g : globs) {
    if (::fnmatch(g.c_str(), rel.c_str(), 0) == 0 || ::fnmatch(g.c_str(), name, 0) == 0)
      return true;
  }
  return false;
}

BackupStats Backup(const BackupOptions& options, Sink& sink) {
  Writer writer(options, sink);
  try {
    return writer.Run();
  } catch (...) {
    writer.Abort();  // so that freeing the archive writes nothing more to the sink
    throw;
  }
}

}  // namespace isoboot::overlay
