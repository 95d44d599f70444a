#include "overlay/upper.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace isoboot::overlay {
namespace {

// mountinfo writes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? p : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return p;
  return buf;
}

bool IsDir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::vector<OverlayMount> ParseOverlayMounts(std::string_view text) {
  std::vector<OverlayMount> out;
  for (std::string_view line : Split(text, '\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    auto f = Split(line, ' ');
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 3 >= f.size()) continue;
    if (f[dash + 1] != "overlay") continue;
    OverlayMount m;
    m.mount_point = Unescape(f[4]);
    for (std::string_view opt : Split(f[dash + 3], ',')) {
      auto take = [&](std::string_view key, std::string& dst) {
        if (opt.substr(0, key.size()) == key) dst = Unescape(opt.substr(key.size()));
      };
      take("upperdir=", m.upperdir);
      take("workdir=", m.workdir);
      take("lowerdir=", m.lowerdir);
    }
    out.push_back(std::move(m));
  }
  return out;
}

Upper FindUpper(const std::string& explicit_dir, const std::string& mountinfo_path) {
  std::ifstream in(mountinfo_path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto mounts = ParseOverlayMounts(ss.str());
  auto using_dir = [&](const std::string& dir) -> std::optional<OverlayMount> {
    std::string real = RealPath(dir);
    for (const auto& m : mounts) {
      if (!m.upperdir.empty() && RealPath(m.upperdir) == real) return m;
    }
    return std::nullopt;
  };
  if (!explicit_dir.empty()) {
    if (!IsDir(explicit_dir))
      throw std::runtime_error(fmt::format("{}: not a directory", explicit_dir));
    return Upper{explicit_dir, using_dir(explicit_dir)};
  }
  for (const char* dir : kKnownUppers) {
    if (!IsDir(dir)) continue;
    if (auto m = using_dir(dir)) return Upper{dir, m};
  }
  for (const auto& m : mounts) {
    if (m.mount_point == "/" && !m.upperdir.empty() && IsDir(m.upperdir))
      return Upper{m.upperdir, m};
  }
  throw std::runtime_error(fmt::format(
      "this is not a live overlay system: no overlay with an upper directory is mounted on / "
      "and neither {} nor {} is the upperdir of a mounted overlay; pass --upper DIR to use a "
      "directory",
      kKnownUppers[0], kKnownUppers[1]));
}

}  // namespace isoboot::overlay
