// Virtual media: eject, insert (standard action with its retry ladder,
// PATCH, or the vendor's OEM action) and the bounded mount check.

#include <fmt/format.h>

#include "bmc/client.h"

namespace isoboot::bmc {
namespace {

using nlohmann::json;

std::string Target(const json& actions, const std::string& name) {
  if (!actions.is_object()) return "";
  auto a = actions.find(name);
  if (a == actions.end() || !a->is_object()) return "";
  return a->value("target", "");
}

std::string StandardAction(const json& slot, const char* name) {
  return Target(slot.value("Actions", json::object()), name);
}

// iLO: Oem.Hpe.Actions["#HpeiLOVirtualMedia.InsertVirtualMedia"] (Hp on iLO 4).
std::string HpeAction(const json& slot, const std::string& oem, const char* verb) {
  if (oem.empty()) return "";
  json o = slot.value("Oem", json::object());
  if (!o.is_object() || !o.contains(oem) || !o[oem].is_object()) return "";
  std::string prefix = oem == "Hp" ? "#HpiLOVirtualMedia." : "#HpeiLOVirtualMedia.";
  return Target(o[oem].value("Actions", json::object()), prefix + verb);
}

bool AllowsPatch(const std::string& allow, bool has_any_action) {
  // Without an Allow header, PATCH is the only way left when no action exists.
  if (allow.empty()) return !has_any_action;
  return allow.find("PATCH") != std::string::npos;
}

std::string SchemeProtocol(const std::string& url) {
  return url.rfind("https:", 0) == 0 ? "HTTPS" : "HTTP";
}

// What the image URL answers from this host (a HEAD, 5 s at most), for the
// message when the BMC never mounts it: the BMC does not say why. "" for
// URLs that are not HTTP(S) (NFS, CIFS).
std::string ProbeFromHere(const std::string& url, const std::stop_token& stop) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) return "";
  try {
    HttpOptions options;
    options.timeout_ms = 5000;
    options.connect_timeout_ms = 3000;
    HttpClient http(options);
    HttpRequest head;
    head.method = "HEAD";
    head.url = url;
    auto r = http.Send(head, stop);
    if (!r) {
      // "HEAD URL: reason" -> "reason"
      const std::string& m = r.error().message;
      auto colon = m.find(": ", 5 + url.size());
      return "from here: " + (colon == std::string::npos ? m : m.substr(colon + 2));
    }
    if (r->status >= 200 && r->status < 300) {
      std::string length = r->Header("content-length");
      return fmt::format("from here it answers {}{}, so the BMC cannot reach it or refuses it",
                         r->status, length.empty() ? "" : " with " + length + " bytes");
    }
    return fmt::format("from here it answers {}", r->status);
  } catch (const std::exception& e) {
    return std::string("from here: ") + e.what();
  }
}

}  // namespace

void BmcClient::Eject() {
  Slot s = FindCdSlot();
  Progress("ejecting");
  EjectSlot(s);
  // The data slot only when it holds something: a BMC without one, or with
  // it empty, is done.
  Slot d = FindDataSlot(false);
  if (d.path.empty()) return;
  MediaState m = ReadMedia(d);
  if (!m.inserted && m.image.empty()) return;
  Progress("ejecting the data image");
  EjectSlot(d);
}

void BmcClient::EjectSlot(const Slot& s) {
  std::string action = StandardAction(s.body, "#VirtualMedia.EjectMedia");
  std::string oem = HpeAction(s.body, profile_.hp_oem, "EjectVirtualMedia");
  Reply r;
  if (!action.empty()) {
    // iLO answers 400/415 to an eject without a JSON body: always send {}.
    r = WaitTask(rf_.Post(action, json::object()), Failure::kInsert, "eject");
  } else if (AllowsPatch(s.allow, !oem.empty())) {
    json body = profile_.patch_image_only ? json{{"Image", nullptr}}
                                          : json{{"Image", nullptr}, {"Inserted", false}};
    r = WaitTask(rf_.Patch(s.path, body, s.etag), Failure::kInsert, "eject");
  } else if (!oem.empty()) {
    r = WaitTask(rf_.Post(oem, json::object()), Failure::kInsert, "eject");
  } else {
    throw BmcError(Failure::kNoVirtualMedia,
                   fmt::format("{}: slot {} offers no way to eject", host_, s.path));
  }
  for (int i = 0; i <= options_.eject_polls; ++i) {
    MediaState m = ReadMedia(ReadSlot(s.path));
    if (!m.inserted) {
      // iLO refuses to eject an empty slot; the slot is empty, so that is fine.
      if (!r.ok()) log_->debug("{}: eject refused but nothing is inserted", host_);
      return;
    }
    if (!r.ok()) Fail(Failure::kInsert, "eject of " + m.image + " from " + s.path, r);
    // iDRAC may report stale Inserted briefly after an eject.
    Sleep();
  }
  throw BmcError(Failure::kInsert, fmt::format("{}: {} still inserted after eject", host_, s.path));
}

void BmcClient::Insert(const std::string& url, const std::string& data_url) {
  Slot cd = FindCdSlot();
  // Both slots are found before anything changes: a BMC without a second
  // slot fails with nothing inserted.
  Slot data = data_url.empty() ? Slot{} : FindDataSlot(true);
  InsertInto(std::move(cd), url, "the image");
  if (!data_url.empty()) InsertInto(ReadSlot(data.path), data_url, "the data image");
}

void BmcClient::InsertInto(Slot s, const std::string& url, const std::string& what) {
  MediaState m = ReadMedia(s);
  bool data = what != "the image";
  if (m.inserted && m.image == url) {
    Progress(data ? "data image already inserted" : "already inserted");
  } else {
    if (m.inserted || !m.image.empty()) {
      Progress("ejecting " + (m.image.empty() ? std::string("old media") : m.image));
      EjectSlot(s);
      s = ReadSlot(s.path);
    }
    Progress(data ? "inserting the data image" : "inserting");
    InsertSlot(s, url);
  }
  VerifyMounted(s.path, url, what);
}

void BmcClient::InsertSlot(const Slot& s, const std::string& url) {
  std::string action = StandardAction(s.body, "#VirtualMedia.InsertMedia");
  std::string oem = HpeAction(s.body, profile_.hp_oem, "InsertVirtualMedia");
  Reply last;
  if (!action.empty()) {
    // Start with Image alone (Supermicro rejects Inserted/WriteProtected) and
    // add what the BMC's error names, one field per attempt.
    json body = {{"Image", url}};
    for (int attempt = 0; attempt < 4; ++attempt) {
      last = WaitTask(rf_.Post(action, body), Failure::kInsert, "insert");
      if (last.ok()) return;
      if (last.status == 404 || last.status == 405 || last.status == 501) break;
      const json& e = last.body;
      if ((HasMessageId(e, "ValueNotInList") || HasMessageId(e, ".ActionParameterNotSupported")) &&
          body.contains("TransferProtocolType")) {
        throw BmcError(Failure::kInsert,
                       fmt::format("{}: the BMC does not mount {} images ({}); it may only mount "
                                   "NFS/CIFS shares",
                                   host_, SchemeProtocol(url), DescribeError(last.status, e)));
      }
      if (MentionsProperty(e, "TransferProtocolType") && !body.contains("TransferProtocolType")) {
        body["TransferProtocolType"] = SchemeProtocol(url);
      } else if (MentionsProperty(e, "TransferMethod") && !body.contains("TransferMethod")) {
        body["TransferMethod"] = "Stream";
      } else if ((MentionsProperty(e, "UserName") || MentionsProperty(e, "Password")) &&
                 !body.contains("UserName")) {
        // The image server needs no login; these BMCs only want the fields.
        // Never the BMC's own password.
        body["UserName"] = "none";
        body["Password"] = "none";
      } else {
        break;
      }
      log_->info("{}: insert refused ({}), retrying with {}", host_, DescribeError(last.status, e),
                 body.dump());
    }
    if (oem.empty()) Fail(Failure::kInsert, "insert of " + url + " refused", last);
  }
  if (AllowsPatch(s.allow, !action.empty() || !oem.empty())) {
    json body = profile_.patch_image_only
                    ? json{{"Image", url}}
                    : json{{"Image", url}, {"Inserted", true}, {"WriteProtected", true}};
    Reply r = rf_.Patch(s.path, body, s.etag);
    if (r.status == 412) r = rf_.Patch(s.path, body, ReadSlot(s.path).etag);
    r = WaitTask(r, Failure::kInsert, "insert");
    if (r.ok()) return;
    if (oem.empty()) Fail(Failure::kInsert, "insert of " + url + " by PATCH refused", r);
    last = r;
  }
  if (!oem.empty()) {
    Reply r = WaitTask(rf_.Post(oem, json{{"Image", url}}), Failure::kInsert, "insert");
    if (r.ok()) return;
    Fail(Failure::kInsert, "insert of " + url + " (OEM action) refused", r);
  }
  if (last.status != 0) Fail(Failure::kInsert, "insert of " + url + " refused", last);
  throw BmcError(Failure::kNoVirtualMedia,
                 fmt::format("{}: slot {} offers no way to insert media (no InsertMedia action, "
                             "no PATCH, no OEM action)",
                             host_, s.path));
}

void BmcClient::VerifyMounted(const std::string& path, const std::string& url,
                              const std::string& what) {
  MediaState m;
  for (int i = 0; i < options_.verify_polls; ++i) {
    m = ReadMedia(ReadSlot(path));
    bool connected = m.connected_via.empty() || m.connected_via != "NotConnected";
    bool redirected = !profile_.wait_ami_redirection || m.redirection.empty() ||
                      m.redirection.find("Started") != std::string::npos;
    if (m.inserted && connected && redirected) {
      if (!m.image.empty() && m.image != url) {
        throw BmcError(Failure::kNotMounted,
                       fmt::format("{}: {} holds {}, not {}", host_, path, m.image, url));
      }
      Progress(what == "the image" ? "mounted" : what + " mounted");
      return;
    }
    Progress("waiting for the BMC to mount " + what);
    Sleep();
  }
  std::string probe = ProbeFromHere(url, options_.stop);
  throw BmcError(Failure::kNotMounted,
                 fmt::format("{}: the BMC accepted {} but did not mount it after {} checks "
                             "(Inserted={}, ConnectedVia={}{}); check that the BMC can reach "
                             "that URL{}",
                             host_, url, options_.verify_polls, m.inserted,
                             m.connected_via.empty() ? "?" : m.connected_via,
                             m.redirection.empty() ? "" : ", RedirectionStatus=" + m.redirection,
                             probe.empty() ? "" : " (" + probe + ")"));
}

}  // namespace isoboot::bmc
