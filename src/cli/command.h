#pragma once
// How subcommands plug into main: each cli/<layer>.cc defines one
// Add<Layer>Command that registers its CLI11 subcommand(s) and, when that
// subcommand is chosen, stores the function main runs after parsing. Setup
// errors thrown from it are caught once in main, printed as one line, and
// exit non-zero. main.cc lists the commands in one table (kCommands).

#include <functional>

#include <CLI/CLI.hpp>

namespace isoboot::cli {

using Run = std::function<int()>;
using AddCommand = void (*)(CLI::App& app, Run& run);

void AddAoeCommand(CLI::App& app, Run& run);
void AddBmcCommand(CLI::App& app, Run& run);
void AddBootCommand(CLI::App& app, Run& run);
void AddIsoCommand(CLI::App& app, Run& run);
void AddNbdCommand(CLI::App& app, Run& run);
void AddOverlayCommand(CLI::App& app, Run& run);
void AddServeCommand(CLI::App& app, Run& run);
// `isoboot status`, with the bmc layer's HTTP client (cli/status.cc).
void AddStatusCommand(CLI::App& app, Run& run);
// `isoboot overlay key`, with the serve layer (cli/overlay_key.cc).
void AddOverlayKeyCommand(CLI::App* overlay, Run& run);

}  // namespace isoboot::cli
