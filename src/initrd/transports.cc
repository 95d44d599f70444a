#include "initrd/transports.h"

#include <algorithm>

#include <fmt/format.h>

#include "initrd/reader.h"

namespace isoboot::initrd {
namespace {

// Merged /usr or not: "usr/lib/modules/..." and "lib/modules/..." alike.
std::string_view Unprefixed(std::string_view path) {
  if (path.starts_with("usr/")) path.remove_prefix(4);
  return path;
}

std::string_view Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool IsKiwiScript(std::string_view path) {
  return Basename(path).find("kiwi-live") != std::string_view::npos;
}
// live-boot's scripts: not all end in .sh (bookworm's fetch= parser is
// usr/lib/live/boot/9990-cmdline-old).
bool IsLiveBootScript(std::string_view path) {
  return Unprefixed(path).starts_with("lib/live/boot/");
}
bool IsCasperScript(std::string_view path) {
  return Unprefixed(path).starts_with("scripts/casper");
}
bool IsModulesBuiltin(std::string_view path) {
  return Unprefixed(path).starts_with("lib/modules/") && Basename(path) == "modules.builtin";
}

class Facts {
 public:
  Facts(const std::vector<std::string>& paths, const std::map<std::string, std::string>& contents)
      : paths_(paths), contents_(contents) {}

  bool HasBasename(std::initializer_list<std::string_view> names) const {
    return std::any_of(paths_.begin(), paths_.end(), [&](const std::string& p) {
      std::string_view b = Basename(p);
      return std::find(names.begin(), names.end(), b) != names.end();
    });
  }
  bool HasBasenameEnding(std::string_view suffix) const {
    return std::any_of(paths_.begin(), paths_.end(),
                       [&](const std::string& p) { return Basename(p).ends_with(suffix); });
  }
  bool HasPath(std::string_view unprefixed) const {
    return std::any_of(paths_.begin(), paths_.end(),
                       [&](const std::string& p) { return Unprefixed(p) == unprefixed; });
  }
  bool HasProgram(std::string_view name) const {
    return HasPath(fmt::format("bin/{}", name)) || HasPath(fmt::format("sbin/{}", name));
  }
  // A kernel module shipped as a file (.ko, .ko.xz, .ko.zst) or built in.
  bool HasModule(std::string_view module_path) const {  // "drivers/block/aoe/aoe.ko"
    std::string in_tree = fmt::format("/kernel/{}", module_path);
    for (const std::string& p : paths_) {
      std::string_view u = Unprefixed(p);
      if (!u.starts_with("lib/modules/")) continue;
      size_t at = u.find(in_tree);
      if (at != std::string_view::npos &&
          (u.size() == at + in_tree.size() || u[at + in_tree.size()] == '.'))
        return true;
    }
    return AnyContent(IsModulesBuiltin, module_path);
  }
  bool AnyContent(bool (*of)(std::string_view), std::string_view text) const {
    return std::any_of(contents_.begin(), contents_.end(), [&](const auto& kv) {
      return of(kv.first) && kv.second.find(text) != std::string::npos;
    });
  }
  bool Any(bool (*of)(std::string_view)) const {
    return std::any_of(paths_.begin(), paths_.end(), [&](const std::string& p) { return of(p); });
  }
  std::string DracutVersion() const {
    for (const std::string& p : paths_) {
      std::string_view u = Unprefixed(p);
      if (u.starts_with("lib/dracut/dracut-") && u.find('/', 11) == std::string_view::npos)
        return fmt::format("dracut {}", u.substr(18));
    }
    return "";
  }

 private:
  const std::vector<std::string>& paths_;
  const std::map<std::string, std::string>& contents_;
};

RootWay Way(Transport t, RootForm form, std::string provided,
            std::vector<std::pair<bool, std::string>> needs) {
  RootWay way{t, form, true, std::move(provided)};
  std::vector<std::string> missing;
  for (auto& [have, why] : needs)
    if (!have) missing.push_back(std::move(why));
  if (!missing.empty()) {
    way.ok = false;
    way.reason = fmt::format("{}", fmt::join(missing, ", "));
  }
  return way;
}

}  // namespace

std::string_view ToString(Transport t) {
  switch (t) {
    case Transport::kAoe:
      return "aoe";
    case Transport::kHttp:
      return "http";
    case Transport::kNbd:
      return "nbd";
  }
  return "unknown";
}

bool WantsContents(std::string_view path) {
  return IsKiwiScript(path) || IsLiveBootScript(path) || IsCasperScript(path) ||
         IsModulesBuiltin(path);
}

const RootWay* RootSupport::Best(Transport t) const {
  for (const RootWay& w : ways)
    if (w.ok && w.transport == t) return &w;
  return nullptr;
}

std::vector<Transport> RootSupport::Available() const {
  std::vector<Transport> out;
  for (const RootWay& w : ways)
    if (w.ok && std::find(out.begin(), out.end(), w.transport) == out.end())
      out.push_back(w.transport);
  return out;
}

std::string RootSupport::Missing(Transport t) const {
  std::vector<std::string> reasons;
  for (const RootWay& w : ways)
    if (!w.ok && w.transport == t) reasons.push_back(w.reason);
  if (reasons.empty()) return fmt::format("nothing in it handles an {} root", ToString(t));
  return fmt::format("{}", fmt::join(reasons, "; "));
}

std::string RootSupport::Summary() const {
  std::vector<std::string> parts;
  for (const RootWay& w : ways)
    if (w.ok) parts.push_back(fmt::format("{} ({})", ToString(w.transport), w.reason));
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, ", "));
}

RootSupport DetectRootSupport(const std::vector<std::string>& paths,
                              const std::map<std::string, std::string>& contents) {
  Facts f(paths, contents);
  const bool curl = f.HasProgram("curl");
  const bool downloader = curl || f.HasProgram("wget") || f.HasProgram("busybox");
  RootSupport s;
  std::vector<RootWay> ways;

  // KIWI's kiwi-live: AoE through its AOEINTERFACE root (up to KIWI 9.x),
  // root=live:http(s)/ftp downloaded with curl in newer KIWI (10.x). 9.24's
  // parser knows CDLABEL= and AOEINTERFACE= only.
  const bool kiwi = f.Any(IsKiwiScript);
  if (kiwi) {
    s.name = "kiwi-live";
    ways.push_back(Way(Transport::kAoe, RootForm::kKiwi, "kiwi-live + aoe.ko",
                       {{f.AnyContent(IsKiwiScript, "AOEINTERFACE"), "kiwi-live has no AoE root"},
                        {f.HasModule("drivers/block/aoe/aoe.ko"), "no aoe kernel module"}}));
    ways.push_back(Way(Transport::kHttp, RootForm::kKiwi, "kiwi-live + curl",
                       {{f.AnyContent(IsKiwiScript, "http"), "kiwi-live's parser has no http root"},
                        {curl, "no curl"}}));
  }
  // dracut's livenet downloads root=live:URL (curl, url-lib) and hands the
  // file to dmsquash-live.
  const bool livenet =
      f.HasBasename({"livenetroot", "livenetroot.sh"}) || f.HasBasenameEnding("parse-livenet.sh");
  const bool dmsquash = f.HasBasename({"dmsquash-live-root", "dmsquash-live-root.sh"}) ||
                        f.HasBasenameEnding("parse-dmsquash-live.sh");
  if (livenet || dmsquash) {
    if (s.name.empty())
      s.name = livenet ? "dracut dmsquash-live + livenet" : "dracut dmsquash-live";
    ways.push_back(Way(Transport::kHttp, RootForm::kDracutLive,
                       "dracut livenet + dmsquash-live, curl",
                       {{livenet, "no dracut livenet module"},
                        {dmsquash, "no dracut dmsquash-live module"},
                        {curl, "no curl"}}));
  }
  const bool nbd_dracut =
      f.HasBasename({"nbdroot", "nbdroot.sh"}) || f.HasBasenameEnding("parse-nbdroot.sh");
  const bool nbd_client = f.HasProgram("nbd-client");
  const bool nbd_ko = f.HasModule("drivers/block/nbd.ko");
  if (nbd_dracut || nbd_client) {
    // The export is the whole image: dmsquash-live finds the live root on it.
    ways.push_back(Way(Transport::kNbd, RootForm::kDracutLive,
                       "dracut nbd + dmsquash-live, nbd-client, nbd.ko",
                       {{nbd_dracut, "no dracut nbd module"},
                        {nbd_client, "no nbd-client"},
                        {nbd_ko, "no nbd kernel module"},
                        {dmsquash, "no dracut dmsquash-live module"}}));
  } else {
    ways.push_back(Way(Transport::kNbd, RootForm::kDracutLive, "",
                       {{false, "no dracut nbd module and no nbd-client"}}));
  }
  // Debian's live-boot (initramfs-tools): fetch=URL of the squashfs.
  if (f.HasPath("scripts/live")) {
    if (s.name.empty()) s.name = "live-boot";
    ways.push_back(Way(Transport::kHttp, RootForm::kLiveBoot, "live-boot fetch=",
                       {{f.AnyContent(IsLiveBootScript, "fetch="), "live-boot without fetch="},
                        {downloader, "no wget, busybox or curl"}}));
  }
  // Ubuntu's casper: url= of the ISO (netboot=url).
  if (f.HasPath("scripts/casper")) {
    if (s.name.empty()) s.name = "casper";
    ways.push_back(Way(Transport::kHttp, RootForm::kCasper, "casper url=",
                       {{f.AnyContent(IsCasperScript, "url="), "casper without url="},
                        {downloader, "no wget, busybox or curl"}}));
  }
  std::string dracut = f.DracutVersion();
  if (s.name.empty()) {
    s.name = dracut.empty() ? "of a kind isoboot does not know" : dracut;
  } else if (!dracut.empty()) {
    s.name += fmt::format(", {}", dracut);
  }
  std::stable_partition(ways.begin(), ways.end(), [](const RootWay& w) { return w.ok; });
  s.ways = std::move(ways);
  return s;
}

RootSupport DetectRootSupport(const InitrdFiles& files) {
  return DetectRootSupport(files.paths, files.contents);
}

}  // namespace isoboot::initrd
