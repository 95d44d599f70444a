#include "bmc/redfish.h"

#include <fmt/format.h>

#include "bmc/errors.h"

namespace isoboot::bmc {

namespace {

using nlohmann::json;

std::string BaseUrl(const std::string& host) {
  std::string base = host.find("://") == std::string::npos ? "https://" + host : host;
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  return base;
}

// Location may be absolute ("https://bmc/redfish/v1/...") or a path.
std::string PathOf(const std::string& base, const std::string& location) {
  if (location.rfind(base, 0) == 0) return location.substr(base.size());
  auto scheme = location.find("://");
  if (scheme != std::string::npos) {
    auto slash = location.find('/', scheme + 3);
    return slash == std::string::npos ? "/" : location.substr(slash);
  }
  return location;
}

}  // namespace

Redfish::Redfish(const std::string& host, Credentials credentials, HttpOptions options, Logger log,
                 std::stop_token stop)
    : base_(BaseUrl(host)),
      credentials_(std::move(credentials)),
      http_(std::move(options)),
      log_(std::move(log)),
      stop_(std::move(stop)) {}

Redfish::~Redfish() {
  Logout();
}

const json& Redfish::Connect() {
  Reply r = Send("GET", "/redfish/v1/", nullptr, "", false);
  if (!r.ok() || !r.body.is_object()) {
    throw BmcError(Failure::kConnect,
                   fmt::format("{}: not a Redfish service (GET /redfish/v1/: {})", base_,
                               DescribeError(r.status, r.body)));
  }
  root_ = r.body;
  Login();
  return root_;
}

void Redfish::Login() {
  std::string sessions = "/redfish/v1/SessionService/Sessions";
  if (auto l = root_.find("Links"); l != root_.end() && l->is_object()) {
    if (auto s = l->find("Sessions"); s != l->end() && s->is_object()) {
      sessions = s->value("@odata.id", sessions);
    }
  }
  json body = {{"UserName", credentials_.user}, {"Password", credentials_.password}};
  Reply r = Send("POST", sessions, &body, "", false);
  if (r.ok() && !last_token_.empty()) {
    token_ = last_token_;
    session_path_ = !r.location.empty() ? PathOf(base_, r.location)
                                        : (r.body.is_object() ? r.body.value("@odata.id", "") : "");
    basic_ = false;
    log_->debug("{}: logged in with a session", base_);
    return;
  }
  if (r.status == 401 || r.status == 403) {
    throw BmcError(Failure::kAuth, fmt::format("{}: login as {} refused ({})", base_,
                                               credentials_.user, DescribeError(r.status, r.body)));
  }
  // No session service, or the session limit is reached: Basic auth still
  // works on every BMC we know, and leaves nothing to clean up.
  log_->warn("{}: no session ({}), using Basic auth", base_, DescribeError(r.status, r.body));
  token_.clear();
  basic_ = true;
  Reply probe = Send("GET", "/redfish/v1/Systems", nullptr, "", false);
  if (probe.status == 401 || probe.status == 403) {
    throw BmcError(Failure::kAuth,
                   fmt::format("{}: login as {} refused ({})", base_, credentials_.user,
                               DescribeError(probe.status, probe.body)));
  }
}

void Redfish::Logout() {
  if (token_.empty()) return;
  std::string path = session_path_;
  Reply r;
  if (!path.empty()) r = Send("DELETE", path, nullptr, "", false, /*cancellable=*/false);
  if (path.empty() || (!r.ok() && r.status != 404)) {
    log_->warn("{}: could not delete session {} ({})", base_, path,
               path.empty() ? "no session URI" : DescribeError(r.status, r.body));
  }
  token_.clear();
  session_path_.clear();
}

Reply Redfish::Get(const std::string& path) {
  return Send("GET", path, nullptr, "", true);
}
Reply Redfish::Post(const std::string& path, const json& body) {
  return Send("POST", path, &body, "", true);
}
Reply Redfish::Patch(const std::string& path, const json& body, const std::string& if_match) {
  return Send("PATCH", path, &body, if_match, true);
}
Reply Redfish::Delete(const std::string& path) {
  return Send("DELETE", path, nullptr, "", true);
}

json Redfish::GetJson(const std::string& path) {
  Reply r = Get(path);
  if (!r.ok() || !r.body.is_object()) {
    throw BmcError(Failure::kConnect,
                   fmt::format("{}: GET {}: {}", base_, path, DescribeError(r.status, r.body)));
  }
  return r.body;
}

Reply Redfish::Send(const std::string& method, const std::string& path, const json* body,
                    const std::string& if_match, bool retry_login, bool cancellable) {
  if (cancellable && stop_.stop_requested()) throw Interrupted();
  HttpRequest req;
  req.method = method;
  req.url = base_ + PathOf(base_, path);
  req.headers = {"Accept: application/json", "OData-Version: 4.0"};
  if (body) {
    req.has_body = true;
    req.body = body->dump();
    req.headers.push_back("Content-Type: application/json");
  }
  if (!if_match.empty()) req.headers.push_back("If-Match: " + if_match);
  if (!token_.empty()) req.headers.push_back("X-Auth-Token: " + token_);
  if (basic_) {
    req.basic_user = credentials_.user;
    req.basic_password = credentials_.password;
  }
  auto res = http_.Send(req, cancellable ? stop_ : std::stop_token());
  if (!res && res.error().Is(ErrorKind::kCancelled)) throw Interrupted();
  if (!res) throw BmcError(Failure::kConnect, res.error().message);
  Reply r;
  r.status = res->status;
  r.location = res->Header("location");
  r.allow = res->Header("allow");
  r.etag = res->Header("etag");
  if (!res->body.empty()) r.body = json::parse(res->body, nullptr, false);
  if (r.body.is_discarded()) r.body = nullptr;
  if (r.etag.empty() && r.body.is_object()) r.etag = r.body.value("@odata.etag", "");
  // Only the method and path are logged: bodies may carry credentials.
  log_->debug("{} {} -> {}", method, path, r.status);
  last_token_ = res->Header("x-auth-token");
  if (r.status == 401 && retry_login && !token_.empty()) {
    // The session expired (AMI's are short): log in again once.
    log_->info("{}: session expired, logging in again", base_);
    token_.clear();
    session_path_.clear();
    Login();
    return Send(method, path, body, if_match, false);
  }
  return r;
}

}  // namespace isoboot::bmc
