#pragma once
// Which root transports an initrd carries, from the names of its files and
// the contents of a few of its scripts: KIWI's kiwi-live (AoE; http in newer
// KIWI), dracut's livenet + dmsquash-live (http), dracut's nbd, Debian's
// live-boot (fetch=) and Ubuntu's casper (url=). Pure: lists in, facts out.

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace isoboot::initrd {

struct InitrdFiles;

enum class Transport {
  kAoe,
  kHttp,
  kNbd
};
std::string_view ToString(Transport t);  // "aoe", "http", "nbd"

// The kernel command line the initrd understands for its root.
enum class RootForm {
  kKiwi,        // rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1, or root=live:URL (newer KIWI)
  kDracutLive,  // root=live:URL rd.live.image (livenet), root=nbd:... (nbd)
  kLiveBoot,    // boot=live fetch=URL
  kCasper,      // boot=casper url=URL
};

// One way the initrd may reach its root, and whether it has what it needs.
struct RootWay {
  Transport transport = Transport::kHttp;
  RootForm form = RootForm::kDracutLive;
  bool ok = false;
  // ok: what provides it ("kiwi-live + aoe.ko"); else what is missing
  // ("kiwi-live's parser has no http root").
  std::string reason;
};

struct RootSupport {
  // What the initrd is, for messages: "kiwi-live, dracut 059-4", "live-boot".
  std::string name;
  std::vector<RootWay> ways;  // the usable ones first, in order of preference

  // The preferred usable way for `t`, or null.
  const RootWay* Best(Transport t) const;
  std::vector<Transport> Available() const;
  // Why `t` cannot be used: the reasons of its unusable ways ("no
  // nbd-client; no nbd.ko"), or "nothing in it handles <t>".
  std::string Missing(Transport t) const;
  // "aoe (kiwi-live + aoe.ko), http (dracut livenet + dmsquash-live, curl)" or "none".
  std::string Summary() const;
};

// Whether DetectRootSupport reads the contents of `path` (a few small scripts).
bool WantsContents(std::string_view path);

// `paths` as stored in the initrd ("usr/lib/modules/..." or "lib/..."),
// `contents` of those WantsContents chose.
RootSupport DetectRootSupport(const std::vector<std::string>& paths,
                              const std::map<std::string, std::string>& contents);
RootSupport DetectRootSupport(const InitrdFiles& files);

}  // namespace isoboot::initrd
