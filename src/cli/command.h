#pragma once
// How subcommands plug into main: each cli/<name>.cc defines one Add*Command
// that registers its CLI11 subcommand(s) and, when that subcommand is
// chosen, stores the function main runs after parsing. Setup errors thrown
// from it are caught once in main, printed as one line, and exit non-zero.

#include <functional>

#include <CLI/CLI.hpp>

namespace isoboot::cli {

using Run = std::function<int()>;

void AddIsoCommand(CLI::App& app, Run& run);

}  // namespace isoboot::cli
