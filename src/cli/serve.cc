// `isoboot serve IMAGE --interface IFACE`: boot clients from one live ISO
// (DHCP/ProxyDHCP, TFTP, HTTP, AoE, generated boot entries).

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "aoe/codec.h"
#include "base/logging.h"
#include "base/mac.h"
#include "cli/command.h"
#include "cli/signals.h"
#include "linux/privilege.h"
#include "linux/service_notify.h"
#include "linux/syscall_filter.h"
#include "serve/backup_store.h"
#include "serve/config_file.h"
#include "serve/daemon.h"

namespace isoboot::cli {
namespace {

// Sets every flag named in the TOML file that the command line did not
// give; returns the options it set.
std::vector<CLI::Option*> ApplyConfigFile(CLI::App& command, const std::string& path) {
  auto entries = serve::ReadConfigFile(path);
  if (!entries) throw CLI::ValidationError("--config", entries.error().message);
  std::vector<CLI::Option*> set;
  for (const auto& [key, values] : *entries) {
    // The positional IMAGE is `image` in the file.
    CLI::Option* option = command.get_option_no_throw(key == "image" ? "IMAGE" : "--" + key);
    if (!option || key == "config") {
      throw CLI::ValidationError("--config", path + ": unknown option \"" + key + "\"");
    }
    if (option->count() > 0) continue;  // given on the command line
    for (const auto& v : values)
      option->add_result(v);
    option->run_callback();
    set.push_back(option);
  }
  return set;
}

// The flags that name a choice, as typed; turned into serve::Options' types
// once, by ApplyChoices.
struct ChoiceFlags {
  std::string dhcp = "proxy";
  std::string root;  // empty: what the image's initrd can do
  std::string aoe = "e0.1";
  std::string bios_loader = "ipxe";
  std::string uefi_loader = "ipxe.efi";
  std::string ipv6_ra = "auto";
  std::string nbd_tls = "off";
  std::string backup_max_size = "8G";
  std::vector<std::string> nodes;       // MAC=ARGS
  std::vector<std::string> node_files;  // MAC=DIR
};

template <typename T>
T Choice(const std::map<std::string, T>& choices, const std::string& value) {
  return choices.at(value);  // CLI::IsMember checked it
}

void ApplyChoices(const ChoiceFlags& f, serve::Options& o) {
  using serve::BiosLoader, serve::DhcpMode, serve::RouterAdverts, serve::UefiLoader;
  o.dhcp = Choice<DhcpMode>(
      {{"proxy", DhcpMode::kProxy}, {"full", DhcpMode::kFull}, {"off", DhcpMode::kOff}}, f.dhcp);
  o.root = f.root.empty()
               ? std::nullopt
               : std::optional(Choice<boot::RootTransport>({{"aoe", boot::RootTransport::kAoe},
                                                            {"http", boot::RootTransport::kHttp},
                                                            {"nbd", boot::RootTransport::kNbd}},
                                                           f.root));
  o.bios_loader = Choice<BiosLoader>(
      {{"ipxe", BiosLoader::kIpxe}, {"pxelinux", BiosLoader::kPxelinux}}, f.bios_loader);
  o.uefi_loader = Choice<UefiLoader>(
      {{"ipxe.efi", UefiLoader::kIpxeEfi}, {"snponly.efi", UefiLoader::kSnponly}}, f.uefi_loader);
  o.ipv6_ra = Choice<RouterAdverts>(
      {{"auto", RouterAdverts::kAuto}, {"on", RouterAdverts::kOn}, {"off", RouterAdverts::kOff}},
      f.ipv6_ra);
  o.nbd_tls = Choice<nbd::TlsMode>(
      {{"off", nbd::TlsMode::kOff}, {"on", nbd::TlsMode::kOn}, {"require", nbd::TlsMode::kRequire}},
      f.nbd_tls);
  auto target = aoe::ParseTargetName(f.aoe);
  if (!target) throw CLI::ValidationError("--aoe", target.error().message);
  std::tie(o.aoe_shelf, o.aoe_slot) = *target;
  auto max = serve::ParseSize(f.backup_max_size);
  if (!max) {
    throw CLI::ValidationError("--backup-max-size",
                               f.backup_max_size + ": not a size like 8G, 512M or 1000000");
  }
  o.backup_max_bytes = *max;
  o.nodes.clear();
  for (const auto& spec : f.nodes) {
    size_t eq = spec.find('=');
    auto mac = ParseMac(std::string_view(spec).substr(0, eq));
    if (eq == std::string::npos || !mac) {
      throw CLI::ValidationError("--node", spec + ": expected MAC=KERNEL-ARGS");
    }
    o.nodes.push_back({*mac, spec.substr(eq + 1)});
  }
  o.node_files.clear();
  for (const auto& spec : f.node_files) {
    size_t eq = spec.find('=');
    auto mac = ParseMac(std::string_view(spec).substr(0, eq));
    if (eq == std::string::npos || !mac || eq + 1 == spec.size()) {
      throw CLI::ValidationError("--node-files", spec + ": expected MAC=DIR");
    }
    o.node_files.push_back({*mac, spec.substr(eq + 1)});
  }
}

// The options serve runs with: the command line's, then --config's for the
// flags the command line did not give. Read once at start and again on
// every SIGHUP, on the daemon's thread, while main's CLI::App lives.
class OptionsReader {
 public:
  OptionsReader(CLI::App& command, std::shared_ptr<serve::Options> options,
                std::shared_ptr<ChoiceFlags> flags, std::string config)
      : command_(command),
        options_(std::move(options)),
        flags_(std::move(flags)),
        config_(std::move(config)),
        command_line_options_(*options_),
        command_line_flags_(*flags_) {}

  // Throws CLI::Error (one line) when the file or a value is wrong.
  serve::Options Read() {
    // Back to the command line alone: the file's values of the last read
    // go, so a key taken out of the file goes back to its default.
    for (CLI::Option* option : from_file_)
      option->clear();
    from_file_.clear();
    *options_ = command_line_options_;
    *flags_ = command_line_flags_;
    if (!config_.empty()) from_file_ = ApplyConfigFile(command_, config_);
    if (options_->image.empty())
      throw CLI::RequiredError("IMAGE (or image = \"PATH\" in --config)");
    ApplyChoices(*flags_, *options_);
    return *options_;
  }
  const std::string& config() const { return config_; }

 private:
  CLI::App& command_;
  std::shared_ptr<serve::Options> options_;  // what the CLI's options write into
  std::shared_ptr<ChoiceFlags> flags_;
  const std::string config_;
  const serve::Options command_line_options_;
  const ChoiceFlags command_line_flags_;
  std::vector<CLI::Option*> from_file_;
};

// A directory serve writes into after dropping root: made for `user` when
// it does not exist yet (the daemon would make it as root).
void PrepareStateDir(const std::string& dir, const passwd& user) {
  if (dir.empty() || ::mkdir(dir.c_str(), 0700) != 0) return;  // exists, or the daemon says why
  if (::chown(dir.c_str(), user.pw_uid, user.pw_gid) != 0) {
    throw std::system_error(errno, std::generic_category(), "chown " + dir);
  }
}

void CheckWritable(const std::string& dir, const std::string& what, const std::string& user) {
  if (dir.empty() || ::access(dir.c_str(), W_OK | X_OK) == 0) return;
  throw std::runtime_error(fmt::format("{} {}: user {} cannot write it ({}); chown -R {} {}", what,
                                       dir, user, std::strerror(errno), user, dir));
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Once every socket is bound and before any server thread starts: the user
// of --user with no capabilities at all (nothing serve does from here on
// needs one: sending on an open packet socket does not, TFTP's transfer
// sockets bind port 0), and a system call filter for what serve never does
// (linux/syscall_filter.h).
void DropRoot(const serve::Options& o, const Logger& log) {
  if (o.user.empty()) {
    if (::geteuid() == 0) {
      log->warn("running as root: pass --user USER so serve drops root once its sockets are bound");
    } else if (sys::HasCapability(sys::Capability::kNetRaw) ||
               sys::HasCapability(sys::Capability::kNetBindService)) {
      // Started with capabilities (systemd's AmbientCapabilities=, setcap):
      // they were for binding, which is done.
      sys::DropReport report = OrThrow(sys::DropPrivileges({}), "dropping capabilities");
      log->info("{}", report.summary);
    }
  } else {
    sys::DropReport report = OrThrow(sys::DropPrivileges({o.user, {}}), "--user");
    log->info("{}", report.summary);
    CheckWritable(o.backup_dir, "--backup-dir", o.user);
    if (!o.lease_file.empty())
      CheckWritable(DirOf(o.lease_file), "--lease-file's directory", o.user);
  }
  OrThrow(sys::InstallSeccompFilter(), "installing the system call filter");
}

void Notify(const sys::ServiceNotifier& notifier, const std::string& state, const Logger& log) {
  if (auto r = notifier.Send(state); !r) log->warn("{}", r.error().message);
}

// Runs the daemon until SIGINT or SIGTERM (exit 0) or until a server fails;
// SIGHUP reloads. Under systemd (Type=notify) it says when it is ready,
// reloading and stopping.
int RunDaemon(const serve::Options& options, OptionsReader& reader) {
  StopOnSignal on_signal(StopOnSignal::Hangup::kReload);  // before the daemon starts any thread
  Logger log = GetLogger("serve");
  const sys::ServiceNotifier notifier = OrThrow(sys::ServiceNotifier::FromEnvironment());
  if (!options.user.empty() && ::geteuid() == 0) {
    if (passwd* pw = ::getpwnam(options.user.c_str())) PrepareStateDir(options.backup_dir, *pw);
  }
  serve::Daemon daemon(options, log);
  DropRoot(options, log);
  std::stop_callback on_stop(on_signal.token(), [&] {
    if (int sig = on_signal.signal()) log->info("signal {}: shutting down", sig);
  });
  auto ready = [&](const std::string& status) {
    Notify(notifier, "READY=1\nSTATUS=" + status, log);
  };
  serve::RunHooks hooks;
  hooks.on_ready = ready;
  hooks.take_reload = [&]() -> std::optional<serve::Options> {
    if (!on_signal.TakeReload()) return std::nullopt;
    Notify(notifier, sys::ServiceNotifier::Reloading(), log);
    log->info("SIGHUP: reloading{}", reader.config().empty() ? "" : " " + reader.config());
    try {
      return reader.Read();
    } catch (const CLI::Error& e) {
      std::string status = fmt::format("reload failed, still serving as before: {}", e.what());
      log->error("{}", status);
      ready(status);
      return std::nullopt;
    }
  };
  hooks.on_reloaded = ready;
  hooks.on_stopping = [&] { Notify(notifier, "STOPPING=1", log); };
  return daemon.Run(on_signal.token(), hooks);
}

}  // namespace

void AddServeCommand(CLI::App& app, Run& run) {
  auto* serve = app.add_subcommand(
      "serve", "Boot clients from IMAGE: DHCP/ProxyDHCP, TFTP, HTTP and AoE, all from the ISO");
  auto o = std::make_shared<serve::Options>();
  auto flags = std::make_shared<ChoiceFlags>();
  // Every flag can also come from a TOML file (key = flag name without --).
  auto config = std::make_shared<std::string>();
  serve->add_option("--config", *config,
                    "TOML file with any of these options, e.g. dhcp = \"full\" (flags win)");
  // Required, but may come from --config (image = "..."): checked below.
  serve->add_option("IMAGE", o->image, "Live ISO image (in --config: image = \"PATH\")");
  serve->add_option("-i,--interface", o->interface, "Interface of the boot network (e.g. br0)");
  serve->add_option("--server-ip", o->server_ip,
                    "Address clients reach this server at (default: the interface's IPv4)");
  serve
      ->add_option("--dhcp", flags->dhcp,
                   "proxy: PXE answers beside the site's DHCP server; full: lease addresses "
                   "(needs --dhcp-range); off")
      ->check(CLI::IsMember({"proxy", "full", "off"}))
      ->capture_default_str();
  serve->add_option("--dhcp-range", o->dhcp_range,
                    "Full DHCP: START,END[,NETMASK], once per subnet: the boot interface's for "
                    "attached clients, others for clients behind DHCP relays (by giaddr)");
  serve->add_option("--lease-file", o->lease_file, "Full DHCP: file the leases persist in");
  serve
      ->add_option("--root", flags->root,
                   "How the initrd reaches its root: aoe (KIWI), http, or nbd (the image as a "
                   "read-only NBD export on --nbd-port; dracut live initrds) (default: aoe when "
                   "the image's initrd can do AoE, else http)")
      ->check(CLI::IsMember({"aoe", "http", "nbd"}));
  serve->add_option("--aoe", flags->aoe, "AoE target to export the image as")
      ->capture_default_str();
  serve->add_option("--append", o->append, "Extra kernel arguments, e.g. console=ttyS0");
  serve
      ->add_option("--bios-loader", flags->bios_loader,
                   "BIOS clients: ipxe (undionly.kpxe, then HTTP) or pxelinux (TFTP)")
      ->check(CLI::IsMember({"ipxe", "pxelinux"}))
      ->capture_default_str();
  serve
      ->add_option("--uefi-loader", flags->uefi_loader,
                   "UEFI x86-64 clients: ipxe.efi or snponly.efi")
      ->check(CLI::IsMember({"ipxe.efi", "snponly.efi"}))
      ->capture_default_str();
  serve->add_option("--tftp-address", o->tftp_address,
                    "Address to take TFTP requests on (default: --server-ip, on the boot network "
                    "only)");
  serve->add_option("--tftp-port", o->tftp_port)->capture_default_str();
  serve->add_option("--http-address", o->http_address,
                    "Address to take HTTP requests on (default: --server-ip, on the boot network "
                    "only; with --http-only: every address)");
  serve->add_option("--http-port", o->http_port, "0 picks a free port")->capture_default_str();
  serve->add_option("--nbd-address", o->nbd_address,
                    "Address to take NBD connections on with --root nbd (default: --server-ip, "
                    "on the boot network only)");
  serve->add_option("--nbd-port", o->nbd_port, "NBD port with --root nbd")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  serve
      ->add_option("--nbd-tls", flags->nbd_tls,
                   "TLS (NBD_OPT_STARTTLS) on the NBD export: off, on (offered), require. Keep "
                   "off for booting: dracut's nbd module connects without TLS")
      ->check(CLI::IsMember({"off", "on", "require"}))
      ->capture_default_str();
  serve->add_option("--nbd-tls-certificates", o->nbd_tls_certificates,
                    "DIR with server-cert.pem and server-key.pem (ca-cert.pem for "
                    "--nbd-tls-verify-peer), as nbdkit's --tls-certificates");
  serve->add_flag("--nbd-tls-verify-peer", o->nbd_tls_verify_peer,
                  "require NBD client certificates signed by DIR/ca-cert.pem");
  serve
      ->add_option("--stall-after", o->stall_seconds,
                   "Seconds without progress after which the status page (/status) marks a "
                   "booting node stalled")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  serve
      ->add_option("--announce", o->announce_seconds,
                   "Seconds between unsolicited AoE announcements (0: off)")
      ->capture_default_str();
  serve
      ->add_option("--ipv6-ra", flags->ipv6_ra,
                   "Answer IPv6 router solicitations with an empty advertisement so iPXE does "
                   "not wait ~16 s for IPv6: auto (with --dhcp full), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  serve->add_option("--user", o->user,
                    "Run as USER once every socket is bound, with no capabilities (started as "
                    "root); --backup-dir and the lease file's directory must be writable by USER");
  serve->add_flag("--http-only", o->http_only,
                  "Serve only HTTP (the ISO and its files, e.g. for BMC virtual media)");
  serve->add_option("--node", flags->nodes,
                    "MAC=ARGS: kernel arguments for one node, in its own boot entries "
                    "(repeatable), e.g. 52:54:00:12:34:56=hostname=node1");
  serve->add_option("--node-files", flags->node_files,
                    "MAC=DIR: put DIR's tree into that node's image, /nodes/<mac>.iso "
                    "(repeatable; symlinks must stay inside DIR)");
  serve
      ->add_option("--node-files-path", o->node_files_path, "Where --node-files go in a node image")
      ->capture_default_str();
  serve->add_option("--backup-dir", o->backup_dir,
                    "Keep overlay backups here (PUT by `isoboot overlay backup URL/overlay/NAME`); "
                    "nodes named by MAC boot with their newest one restored");
  serve->add_option("--backup-token-file", o->backup_token_file,
                    "Bearer token for the backup store (default: DIR/.token, made when missing)");
  serve
      ->add_option("--backup-max-size", flags->backup_max_size, "Largest backup accepted (K/M/G/T)")
      ->capture_default_str();
  serve->add_option("--backup-keep", o->backup_keep, "Versions kept per backup name")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  serve->add_option("--initrd-add", o->loaders.extra_initrds,
                    "Initramfs archive to load after the image's initrd (repeatable), e.g. the "
                    "overlay restore hook from contrib/dracut/make-initrd-addon.sh");
  serve->add_option("--pxelinux", o->loaders.pxelinux, "pxelinux.0 to serve")
      ->capture_default_str();
  serve->add_option("--ldlinux", o->loaders.ldlinux, "ldlinux.c32 to serve")->capture_default_str();
  serve->add_option("--undionly", o->loaders.undionly, "undionly.kpxe to serve")
      ->capture_default_str();
  serve->add_option("--ipxe-efi", o->loaders.ipxe_efi, "ipxe.efi to serve")->capture_default_str();
  serve->add_option("--snponly", o->loaders.snponly, "snponly.efi to serve")->capture_default_str();
  serve->callback([&run, o, flags, config, serve] {
    auto reader = std::make_shared<OptionsReader>(*serve, o, flags, *config);
    serve::Options options = reader->Read();
    run = [reader, options] { return RunDaemon(options, *reader); };
  });
}

}  // namespace isoboot::cli
