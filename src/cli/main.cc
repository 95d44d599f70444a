// isoboot: boot fleets of machines from one live ISO image over the network.
// main only wires subcommands (one file each under cli/) and reports errors.

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/logging.h"
#include "cli/command.h"
#include "cli/signals.h"

namespace {

using isoboot::cli::AddCommand;

struct Command {
  std::string_view name;  // as typed, also the layer it drives
  AddCommand add;
};

// Every subcommand, in the order `isoboot --help` lists them (ninja's kTools).
// A build of some layers only (ISOBOOT_LAYERS) leaves out the others.
constexpr Command kCommands[] = {
#ifdef ISOBOOT_CLI_SERVE
    {"serve", isoboot::cli::AddServeCommand},
#endif
#ifdef ISOBOOT_CLI_STATUS
    {"status", isoboot::cli::AddStatusCommand},
#endif
#ifdef ISOBOOT_CLI_BOOT
    {"pxe", isoboot::cli::AddBootCommand},
#endif
#ifdef ISOBOOT_CLI_ISO
    {"iso", isoboot::cli::AddIsoCommand},
#endif
#ifdef ISOBOOT_CLI_AOE
    {"aoe", isoboot::cli::AddAoeCommand},
#endif
#ifdef ISOBOOT_CLI_NBD
    {"nbd", isoboot::cli::AddNbdCommand},
#endif
#ifdef ISOBOOT_CLI_BMC
    {"bmc", isoboot::cli::AddBmcCommand},
#endif
#ifdef ISOBOOT_CLI_OVERLAY
    {"overlay", isoboot::cli::AddOverlayCommand},
#endif
};

// The first word that is not an option of isoboot itself, or "".
std::string_view FirstCommandWord(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--log-level") {
      ++i;  // its value
      continue;
    }
    if (arg.starts_with("-")) continue;
    return arg;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  isoboot::cli::IgnoreSigpipe();
  CLI::App app{
      "isoboot: boot machines from one live ISO image, over the network or BMC virtual media"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "isoboot " ISOBOOT_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();

  isoboot::cli::Run run;
  for (const Command& c : kCommands)
    c.add(app, run);

  // CLI11 answers --help before it looks at the words, so `isoboot frob
  // --help` would print the top-level help and exit 0: a typo must fail.
  if (std::string_view word = FirstCommandWord(argc, argv); !word.empty()) {
    bool known_word = false;
    for (const Command& c : kCommands)
      known_word = known_word || c.name == word;
    if (!known_word) {
      std::string known;
      for (const Command& c : kCommands)
        known += fmt::format("{}{}", known.empty() ? "" : ", ", c.name);
      fmt::print(stderr, "isoboot: unknown command '{}' (commands: {})\n", word, known);
      return static_cast<int>(CLI::ExitCodes::ExtrasError);
    }
  }

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
