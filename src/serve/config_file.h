#pragma once
// `isoboot serve --config FILE`: a TOML file whose keys are the serve flags
// without their dashes (dhcp = "full", dhcp-range = "10.0.0.100,10.0.0.200",
// http-only = true). Read with toml++; the command line applies the values
// to its flags, and flags given on the command line win.

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace isoboot::serve {

// Each top-level key with its value(s) as the text a flag would take
// (strings as they are, numbers in decimal, booleans "true"/"false", arrays
// as several values). Nested tables are rejected. Errors name the file, line
// and problem.
Result<std::vector<std::pair<std::string, std::vector<std::string>>>> ReadConfigFile(
    const std::string& path);

}  // namespace isoboot::serve
