// Test-only: runs dhcp::Server with flags until SIGTERM/SIGINT, so shell tests
// can put real DHCP clients (udhcpc, dhclient) in front of it. The on_client
// hook appends "MAC IP pxe|plain" lines to --events. Prints stats at exit.

#include <csignal>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/logging.h"
#include "dhcp/server.h"

namespace {
isoboot::dhcp::Server* g_server = nullptr;
void OnSignal(int) {
  if (g_server) g_server->Stop();  // atomic store + eventfd write: signal-safe
}
}  // namespace

int main(int argc, char** argv) {
  using namespace isoboot::dhcp;
  using isoboot::FormatMac;
  using isoboot::MacAddress;
  CLI::App app{"dhcp_test_server"};
  ServerConfig config;
  std::string mode = "proxy", server_ip, router, events;
  std::vector<std::string> ranges;
  app.add_option("--mode", mode, "proxy or full");
  app.add_option("--interface", config.interface);
  app.add_option("--server-ip", server_ip)->required();
  app.add_option("--range", ranges, "START,END[,NETMASK], repeatable");
  app.add_option("--router", router);
  app.add_option("--bios-file", config.protocol.bios_file);
  app.add_option("--uefi-file", config.protocol.uefi_x64_file);
  app.add_option("--arm64-file", config.protocol.uefi_arm64_file);
  app.add_option("--ipxe-url", config.protocol.ipxe_script_url);
  app.add_option("--lease-file", config.lease_file);
  app.add_option("--lease-seconds", config.protocol.lease_seconds);
  app.add_option("--port", config.server_port);
  app.add_option("--client-port", config.client_port);
  app.add_option("--proxy-port", config.proxy_port);
  app.add_option("--events", events, "file the on_client hook appends to");
  CLI11_PARSE(app, argc, argv);

  try {
    isoboot::SetLogLevel("debug");
    config.protocol.mode = mode == "full" ? Mode::kFull : Mode::kProxy;
    auto ip = ParseIp(server_ip);
    if (!ip) throw std::runtime_error("bad --server-ip");
    config.protocol.server_ip = *ip;
    for (const auto& range : ranges)
      isoboot::OrThrow(ParseRange(range, config.protocol));
    if (!router.empty()) config.protocol.router = ParseIp(router).value_or(0);
    if (!events.empty()) {
      config.on_client = [events](const ClientEvent& c) {
        std::ofstream(events, std::ios::app) << FormatMac(c.mac) << ' ' << FormatIp(c.ip) << ' '
                                             << (c.is_pxe ? "pxe" : "plain") << '\n';
      };
    }
    Server server(config, isoboot::GetLogger("dhcp"));
    g_server = &server;
    std::signal(SIGTERM, OnSignal);
    std::signal(SIGINT, OnSignal);
    std::puts("ready");
    std::fflush(stdout);
    server.Run();
    g_server = nullptr;
    ServerStats s = server.stats();
    fmt::print(
        "received {} answered {} dropped_bad {} ignored {} no_range {} relayed {} lease_writes {} "
        "acks_held {} acks_dropped {}\n",
        s.received, s.answered, s.dropped_bad, s.ignored, s.no_range, s.relayed, s.lease_writes,
        s.acks_held, s.acks_dropped);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dhcp_test_server: error: {}\n", e.what());
    return 1;
  }
}
