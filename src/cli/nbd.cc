// `isoboot nbd export`: read-only NBD exports of files (what `nbdkit file`
// or `qemu-nbd --read-only` do), for clients beyond the AoE segment.

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/logging.h"
#include "cli/command.h"
#include "cli/signals.h"
#include "linux/file_limit.h"
#include "nbd/server.h"
#include "nbd/tls.h"
#include "vfs/vfs.h"

namespace isoboot::cli {
namespace {

struct ExportArgs {
  std::vector<std::string> files;
  std::vector<std::string> exports;  // NAME=FILE
  std::string address = "0.0.0.0";
  std::string description;
  uint16_t port = 10809;
  size_t max_connections = 1024;
  size_t max_connections_per_client = 64;
  unsigned handshake_timeout_ms = 10'000;
  std::string tls = "off";
  std::string tls_certificates;
  bool tls_verify_peer = false;
};

nbd::TlsMode ParseTlsMode(const std::string& mode) {
  if (mode == "on") return nbd::TlsMode::kOn;
  if (mode == "require") return nbd::TlsMode::kRequire;
  return nbd::TlsMode::kOff;
}

std::shared_ptr<const nbd::TlsContext> LoadNbdTls(nbd::TlsMode mode, const std::string& dir,
                                                  bool verify_peer, const std::string& flag) {
  if (mode == nbd::TlsMode::kOff) {
    if (verify_peer) throw std::runtime_error(flag + "-verify-peer needs " + flag + " on|require");
    return nullptr;
  }
  if (dir.empty())
    throw std::runtime_error(flag + " on|require needs " + flag + "-certificates DIR");
  return nbd::TlsContext::Load(dir, verify_peer, flag + "-certificates");
}

int RunExport(const ExportArgs& a) {
  std::vector<std::pair<std::string, std::string>> specs;  // name, file
  for (const std::string& f : a.files)
    specs.emplace_back(std::filesystem::path(f).filename().string(), f);
  for (const std::string& e : a.exports) {
    auto eq = e.find('=');
    if (eq == std::string::npos) throw std::runtime_error("--export wants NAME=FILE");
    specs.emplace_back(e.substr(0, eq), e.substr(eq + 1));
  }
  if (specs.empty()) throw std::runtime_error("nothing to export (give FILE or --export)");
  std::vector<nbd::Export> exports;
  for (const auto& [name, file] : specs) {
    for (const nbd::Export& e : exports) {
      if (e.name == name) throw std::runtime_error(fmt::format("export '{}' given twice", name));
    }
    exports.push_back({name, a.description, OrThrow(vfs::HostFileSource(file)), {}});
  }
  // Before anything listens: bad credentials are a one-line startup error.
  nbd::TlsMode tls = ParseTlsMode(a.tls);
  auto tls_context = LoadNbdTls(tls, a.tls_certificates, a.tls_verify_peer, "--tls");
  sys::FileLimit limit = sys::RaiseFileLimit();
  Logger log = GetLogger("nbd");
  if (auto warning = sys::CheckFileLimit(limit, {a.max_connections, 0, 64})) {
    log->warn("{}", *warning);
  }
  nbd::ServerOptions o;
  o.address = a.address;
  o.port = a.port;
  o.max_connections = a.max_connections;
  o.max_connections_per_client = a.max_connections_per_client;
  o.handshake_timeout = std::chrono::milliseconds(a.handshake_timeout_ms);
  o.tls = tls;
  o.tls_context = tls_context;
  StopOnSignal on_signal;  // before the server starts its threads
  nbd::Server server(std::move(exports), o, log);
  log->info("nbd: serving {} export(s) on {} port {}{}", specs.size(), a.address, server.port(),
            tls == nbd::TlsMode::kOff  ? ""
            : tls == nbd::TlsMode::kOn ? " (TLS offered)"
                                       : " (TLS required)");
  std::stop_callback stop(on_signal.token(), [&] {
    log->info("signal {}: shutting down", on_signal.signal());
    server.Stop();
  });
  server.Run();
  nbd::ServerStats s = server.Stats();
  log->info(
      "nbd: stats connections={} refused_full={} refused_per_client={} handshake_failures={} "
      "handshake_timeouts={} bad_options={} bad_requests={} protocol_errors={} requests={} "
      "bytes_read={} read_errors={} accept_errors={} tls_sessions={} tls_handshake_failures={}",
      s.connections, s.refused_full, s.refused_per_client, s.handshake_failures,
      s.handshake_timeouts, s.bad_options, s.bad_requests, s.protocol_errors, s.requests,
      s.bytes_read, s.read_errors, s.accept_errors, s.tls_sessions, s.tls_handshake_failures);
  return 0;
}

}  // namespace

void AddNbdCommand(CLI::App& app, Run& run) {
  auto* nbd = app.add_subcommand("nbd", "Network Block Device server (read-only exports)");
  nbd->require_subcommand(1);
  auto a = std::make_shared<ExportArgs>();
  auto* e = nbd->add_subcommand(
      "export", "export files read-only over NBD (like nbdkit file, qemu-nbd --read-only)");
  e->add_option("files", a->files,
                "files, each exported under its base name; the first also as the default "
                "export \"\"");
  e->add_option("--export", a->exports, "NAME=FILE (repeatable)")->allow_extra_args(false);
  e->add_option("--address", a->address, "address to listen on")->capture_default_str();
  e->add_option("--port,-p", a->port, "TCP port (0: any)")->capture_default_str();
  e->add_option("--description", a->description, "description sent to clients that ask");
  e->add_option("--max-connections", a->max_connections, "connections open at once")
      ->capture_default_str();
  e->add_option("--max-connections-per-client", a->max_connections_per_client,
                "connections open at once from one IP address")
      ->capture_default_str();
  e->add_option("--handshake-timeout", a->handshake_timeout_ms,
                "milliseconds a client has to finish the handshake (the TLS handshake included)")
      ->capture_default_str();
  e->add_option("--tls", a->tls,
                "NBD_OPT_STARTTLS: off; on (offered, plaintext allowed); require (every option "
                "before STARTTLS is refused with NBD_REP_ERR_TLS_REQD). TLS 1.2 or later")
      ->check(CLI::IsMember({"off", "on", "require"}))
      ->capture_default_str();
  e->add_option("--tls-certificates", a->tls_certificates,
                "DIR holding server-cert.pem and server-key.pem (and ca-cert.pem for "
                "--tls-verify-peer), as nbdkit's and qemu's x509 directories");
  e->add_flag("--tls-verify-peer", a->tls_verify_peer,
              "require client certificates signed by DIR/ca-cert.pem");
  e->callback([&run, a] { run = [a] { return RunExport(*a); }; });
}

}  // namespace isoboot::cli
