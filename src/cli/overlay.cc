// `isoboot overlay backup|restore`: keep what was changed on a live system.

#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "overlay/backup.h"
#include "overlay/restore.h"
#include "overlay/transport.h"
#include "overlay/upper.h"

extern char** environ;

namespace isoboot::cli {
namespace {

using namespace isoboot::overlay;

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", b, units[u]);
}

// One status line on stderr, redrawn at most 4 times a second, only when
// stderr is a terminal: scripts and pipes see nothing.
class Progress {
 public:
  explicit Progress(const char* verb) : verb_(verb), enabled_(::isatty(STDERR_FILENO)) {}
  ~Progress() { Done(); }
  // Ends the status line, so that what is printed next starts on its own.
  void Done() {
    if (drawn_) std::fputs("\n", stderr);
    drawn_ = false;
  }
  ProgressFn Fn() {
    if (!enabled_) return nullptr;
    return [this](uint64_t done, uint64_t total) { Update(done, total); };
  }

 private:
  void Update(uint64_t done, uint64_t total) {
    auto now = Clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(250) && done < total) return;
    last_ = now;
    drawn_ = true;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? done / secs : 0;
    std::string eta = "--:--";
    if (rate > 0 && total >= done) {
      auto left = static_cast<uint64_t>((total - done) / rate);
      eta = fmt::format("{}:{:02}", left / 60, left % 60);
    }
    fmt::print(stderr, "\r{} {} / {}  {}/s  ETA {}   ", verb_, Bytes(done), Bytes(total),
               Bytes(rate), eta);
    std::fflush(stderr);
  }

  using Clock = std::chrono::steady_clock;
  const char* verb_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_ = Clock::now(), last_;
};

struct SshFlags {
  std::string identity, known_hosts;
};

void AddSshFlags(CLI::App* app, SshFlags& ssh) {
  app->add_option("-i,--identity", ssh.identity,
                  "ssh:// private key file (default: ssh agent, then ~/.ssh/id_*)");
  app->add_option("--known-hosts", ssh.known_hosts,
                  "ssh:// known_hosts file (default: ~/.ssh/known_hosts)");
}

TransportOptions Transport(const std::string& token_file, const SshFlags& ssh) {
  TransportOptions t;
  t.ssh_identity = ssh.identity;
  t.known_hosts = ssh.known_hosts;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read the token file", token_file));
    std::getline(in, t.bearer_token);
  } else if (const char* env = std::getenv("ISOBOOT_TOKEN")) {
    t.bearer_token = env;
  }
  return t;
}

void Remount(const OverlayMount& m) {
  const char* argv[] = {"mount", "-o", "remount", m.mount_point.c_str(), nullptr};
  pid_t pid;
  if (posix_spawnp(&pid, "mount", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    throw std::runtime_error("--remount: cannot run mount(8)");
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(fmt::format("mount -o remount {} failed", m.mount_point));
  }
}

struct BackupArgs {
  std::string upper, dest = "-", token_file;
  bool gzip = false, exclude_squashfs = false, json = false;
  std::vector<std::string> excludes;
  SshFlags ssh;
};

int RunBackup(BackupArgs& args) {
  Upper upper = FindUpper(args.upper);
  BackupOptions options;
  options.upper = upper.path;
  options.compression = args.gzip ? Compression::kGzip : Compression::kZstd;
  options.excludes = args.excludes;
  if (args.exclude_squashfs) options.excludes.push_back("*.squashfs");
  // A backup written inside the overlay would otherwise contain its own partial self,
  // and a restore's staging directory (inside an upper dir that is a mount point).
  options.excludes.push_back(".*.isoboot-partial-*");
  options.excludes.push_back(".isoboot-restore-*");
  Progress progress("backup");
  options.progress = progress.Fn();
  auto start = std::chrono::steady_clock::now();
  auto sink = OpenSink(args.dest, Transport(args.token_file, args.ssh));
  BackupStats s = Backup(options, *sink);
  progress.Done();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  FILE* out = args.dest == "-" ? stderr : stdout;
  if (args.json) {
    nlohmann::json j = {{"upper", upper.path},
                        {"destination", args.dest},
                        {"compression", args.gzip ? "gzip" : "zstd"},
                        {"sha256", s.sha256},
                        {"archive_bytes", s.archive_bytes},
                        {"content_bytes", s.content_bytes},
                        {"entries", s.entries},
                        {"files", s.files},
                        {"directories", s.directories},
                        {"symlinks", s.symlinks},
                        {"hardlinks", s.hardlinks},
                        {"whiteouts", s.whiteouts},
                        {"opaque_directories", s.opaque_directories},
                        {"xattrs", s.xattrs},
                        {"sparse_files", s.sparse_files},
                        {"excluded", s.excluded},
                        {"seconds", secs}};
    fmt::print(out, "{}\n", j.dump());
  } else {
    fmt::print(out,
               "backed up {} to {}: {} entries ({} files, {} dirs, {} whiteouts, {} opaque dirs, "
               "{} hard links, "
               "{} xattrs), {} of content in {} archive, sha256 {}\n",
               upper.path, args.dest, s.entries, s.files, s.directories, s.whiteouts,
               s.opaque_directories, s.hardlinks, s.xattrs,
               Bytes(static_cast<double>(s.content_bytes)),
               Bytes(static_cast<double>(s.archive_bytes)), s.sha256);
  }
  return 0;
}

struct RestoreArgs {
  std::string upper, src, token_file;
  bool dry_run = false, remount = false, json = false;
  SshFlags ssh;
  TransportOptions limits;  // the download's timeouts and size limit
  VerifyLimits verify;
};

int RunRestore(RestoreArgs& args) {
  Upper upper = FindUpper(args.upper);
  if (args.remount && !upper.mount) {
    throw std::runtime_error(
        fmt::format("--remount: {} is not the upper directory of a mounted overlay", upper.path));
  }
  TransportOptions transport = Transport(args.token_file, args.ssh);
  transport.connect_timeout_s = args.limits.connect_timeout_s;
  transport.low_speed_bytes = args.limits.low_speed_bytes;
  transport.low_speed_time_s = args.limits.low_speed_time_s;
  transport.max_time_s = args.limits.max_time_s;
  transport.max_size = args.limits.max_size;
  UniqueFd fd = OpenSource(args.src, transport);
  Verified v = [&] {
    Progress progress("verify");
    auto r = Verify(fd.get(), progress.Fn(), args.verify);
    if (!r)
      throw std::runtime_error(
          fmt::format("{}: refused, nothing was written: {}", args.src, r.error().message));
    return std::move(*r);
  }();
  RestoreOptions options{upper.path, args.dry_run, nullptr};
  Progress progress(args.dry_run ? "compare" : "restore");
  options.progress = progress.Fn();
  RestoreStats s = Apply(fd.get(), v, options);
  progress.Done();
  if (args.remount && !args.dry_run) Remount(*upper.mount);
  if (args.json) {
    nlohmann::json changes = nlohmann::json::array();
    for (const auto& c : s.changes)
      changes.push_back({{"change", std::string(1, c.kind)}, {"path", c.path}});
    nlohmann::json j = {{"upper", upper.path},
                        {"source", args.src},
                        {"dry_run", args.dry_run},
                        {"sha256", Hex(v.trailer.sha256)},
                        {"archive_bytes", v.archive_bytes},
                        {"content_bytes", v.content_bytes},
                        {"entries", s.entries},
                        {"remounted", args.remount && !args.dry_run}};
    if (args.dry_run) {
      j["changes"] = changes;
      j["unchanged"] = s.unchanged;
    }
    fmt::print("{}\n", j.dump());
    return 0;
  }
  if (args.dry_run) {
    for (const auto& c : s.changes)
      fmt::print("{} {}\n", c.kind, c.path);
    fmt::print("dry run: {} of {} entries would change in {}; nothing was written\n",
               s.changes.size(), s.entries, upper.path);
    return 0;
  }
  fmt::print("restored {} entries into {} (archive sha256 {} verified)\n", s.entries, upper.path,
             Hex(v.trailer.sha256));
  if (upper.mount && !args.remount) {
    fmt::print(
        stderr,
        "isoboot: note: {} is the upper directory of the overlay on {}; run `mount -o remount {}` "
        "(or pass --remount) or reboot for the merged view to show every change\n",
        upper.path, upper.mount->mount_point, upper.mount->mount_point);
  }
  return 0;
}

}  // namespace

void AddOverlayCommand(CLI::App& app, Run& run) {
  auto* overlay =
      app.add_subcommand("overlay", "back up and restore a live system's overlay upper directory");
  overlay->require_subcommand(1);

  auto b = std::make_shared<BackupArgs>();
  auto* backup = overlay->add_subcommand(
      "backup", "archive the overlay upper dir (zstd tar + manifest + sha256)");
  backup->add_option("--upper", b->upper,
                     "upper directory (default: detected from the mount table)");
  backup
      ->add_option("-o,--output", b->dest,
                   "file, - (stdout), http(s)://server/path (PUT) or ssh://[user@]host[:port]/path")
      ->capture_default_str();
  backup->add_flag("--gzip", b->gzip, "gzip instead of zstd");
  backup->add_option("--exclude", b->excludes, "skip paths matching GLOB (repeatable)");
  backup->add_flag("--exclude-squashfs", b->exclude_squashfs, "skip *.squashfs files");
  backup->add_flag("--json", b->json, "print a JSON summary");
  backup->add_option("--token-file", b->token_file,
                     "bearer token for http(s) (default: $ISOBOOT_TOKEN)");
  AddSshFlags(backup, b->ssh);
  backup->callback([&run, b] { run = [b] { return RunBackup(*b); }; });

  auto r = std::make_shared<RestoreArgs>();
  auto* restore = overlay->add_subcommand(
      "restore", "verify an overlay backup, then write it into the upper dir");
  restore->add_option("SRC", r->src, "file, - (stdin), http(s):// or ssh:// URL")->required();
  restore->add_option("--upper", r->upper,
                      "upper directory (default: detected from the mount table)");
  restore->add_flag("--dry-run", r->dry_run, "list what would change; write nothing");
  restore->add_flag("--remount", r->remount, "mount -o remount the overlay afterwards");
  restore->add_flag("--json", r->json, "print a JSON summary");
  restore->add_option("--token-file", r->token_file,
                      "bearer token for http(s) (default: $ISOBOOT_TOKEN)");
  restore
      ->add_option("--connect-timeout", r->limits.connect_timeout_s,
                   "http(s): seconds to wait for the connection")
      ->capture_default_str();
  restore
      ->add_option("--speed-limit", r->limits.low_speed_bytes,
                   "http(s): abort when fewer bytes/s than this arrive for --speed-time (0: never)")
      ->capture_default_str();
  restore
      ->add_option("--speed-time", r->limits.low_speed_time_s,
                   "http(s): seconds below --speed-limit before the download is aborted")
      ->capture_default_str();
  restore
      ->add_option("--max-time", r->limits.max_time_s,
                   "http(s): seconds the whole download may take (0: no limit)")
      ->capture_default_str();
  restore
      ->add_option("--max-size", r->limits.max_size,
                   "largest archive accepted from http(s), ssh:// or stdin (e.g. 8G)")
      ->transform(CLI::AsSizeValue(false))
      ->default_str("8G");
  restore
      ->add_option("--max-content", r->verify.max_bytes,
                   "largest total the archive may unpack to, holes included (e.g. 64G)")
      ->transform(CLI::AsSizeValue(false))
      ->default_str("64G");
  AddSshFlags(restore, r->ssh);
  restore->callback([&run, r] { run = [r] { return RunRestore(*r); }; });
#ifdef ISOBOOT_CLI_SERVE
  AddOverlayKeyCommand(overlay, run);
#endif
}

}  // namespace isoboot::cli
