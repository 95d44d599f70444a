// isoboot: boot fleets of machines from one live ISO image over the network.
// main only wires subcommands (one file each under cli/) and reports errors.

#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/logging.h"
#include "cli/command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "isoboot: boot machines from one live ISO image, over the network or BMC virtual media"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "isoboot " ISOBOOT_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();

  isoboot::cli::Run run;
#define ISOBOOT_COMMAND(Name) isoboot::cli::Add##Name##Command(app, run);
#include "cli/commands.inc"
#undef ISOBOOT_COMMAND

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    isoboot::SetLogLevel(log_level);
    return run ? run() : 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "isoboot: error: {}\n", e.what());
    return 1;
  }
}
