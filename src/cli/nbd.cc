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
};

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
  StopOnSignal on_signal;  // before the server starts its threads
  nbd::Server server(std::move(exports), o, log);
  log->info("nbd: serving {} export(s) on {} port {}", specs.size(), a.address, server.port());
  std::stop_callback stop(on_signal.token(), [&] {
    log->info("signal {}: shutting down", on_signal.signal());
    server.Stop();
  });
  server.Run();
  nbd::ServerStats s = server.Stats();
  log->info(
      "nbd: stats connections={} refused_full={} refused_per_client={} handshake_failures={} "
      "handshake_timeouts={} bad_options={} bad_requests={} protocol_errors={} requests={} "
      "bytes_read={} read_errors={} accept_errors={}",
      s.connections, s.refused_full, s.refused_per_client, s.handshake_failures,
      s.handshake_timeouts, s.bad_options, s.bad_requests, s.protocol_errors, s.requests,
      s.bytes_read, s.read_errors, s.accept_errors);
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
                "milliseconds a client has to finish the handshake")
      ->capture_default_str();
  e->callback([&run, a] { run = [a] { return RunExport(*a); }; });
}

}  // namespace isoboot::cli
