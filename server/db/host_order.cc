#include "server/db/host_order.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <pqxx/nontransaction>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/db/answer_watch.h"
#include "server/db/raw_connection.h"

namespace hotpath::db {
namespace {

// url with one more libpq parameter (a later one wins over an earlier one of the same name);
// value must need no quoting.
std::string WithParameter(const std::string& url, absl::string_view name, absl::string_view value) {
  const bool is_uri = url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
  const char* separator = !is_uri ? " " : url.find('?') == std::string::npos ? "?" : "&";
  return absl::StrCat(url, separator, name, "=", value);
}

// A primary's timeline is in the name of the WAL file it writes; a standby has none of its own.
constexpr char kTimelineOfWrites[] =
    "SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
    "ELSE pg_walfile_name(pg_current_wal_insert_lsn()) END";

// url with libpq's connect_timeout (whole seconds, at least 2).
std::string WithTimeout(const std::string& url, absl::Duration timeout) {
  const std::int64_t seconds = std::max<std::int64_t>(2, absl::ToInt64Seconds(timeout));
  return WithParameter(url, "connect_timeout", absl::StrCat(seconds));
}

// A keyword/value string's value: quoted, with quotes and backslashes escaped.
std::string Quoted(absl::string_view value) {
  std::string quoted = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return quoted.append("'");
}

// list rotated to start at its first-th entry (an empty list stays empty).
std::vector<std::string> Rotated(std::vector<std::string> list, int first) {
  if (static_cast<std::size_t>(first) < list.size()) {
    std::rotate(list.begin(), list.begin() + first, list.end());
  }
  return list;
}

}  // namespace

HostOrder& HostOrder::For(const std::string& url) {
  // Never destroyed: connections may still open while the process exits.
  static auto* const mu = new std::mutex;
  static auto* const orders = new std::map<std::string, std::unique_ptr<HostOrder>>;
  std::lock_guard lock(*mu);
  auto& order = (*orders)[url];
  if (order == nullptr) order = std::make_unique<HostOrder>(url);
  return *order;
}

HostOrder::HostOrder(std::string url) : url_(std::move(url)) {
  PQconninfoOption* options = PQconninfoParse(url_.c_str(), nullptr);
  if (options == nullptr) return;
  for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    const absl::string_view keyword = option->keyword;
    std::vector<std::string>* list = keyword == "host"       ? &hosts_
                                     : keyword == "hostaddr" ? &addresses_
                                     : keyword == "port"     ? &ports_
                                                             : nullptr;
    if (list != nullptr) {
      *list = absl::StrSplit(option->val, ',');
      continue;
    }
    parameters_.push_back({option->keyword, option->val});
    if (keyword == "target_session_attrs") {
      wants_primary_ =
          parameters_.back().value == "read-write" || parameters_.back().value == "primary";
    }
  }
  PQconninfoFree(options);
  // libpq's own rules: hostaddr, when given, has an entry per host; port one for all or one each.
  const std::size_t count = std::max(hosts_.size(), addresses_.size());
  if ((!hosts_.empty() && hosts_.size() != count) ||
      (!addresses_.empty() && addresses_.size() != count) ||
      (ports_.size() > 1 && ports_.size() != count)) {
    hosts_.clear();  // libpq will refuse it: leave it to say why
    addresses_.clear();
  }
  if (hosts_.empty()) hosts_.resize(addresses_.size());
}

std::string HostOrder::Conninfo(const std::vector<std::string>& hosts,
                                const std::vector<std::string>& addresses,
                                const std::vector<std::string>& ports) const {
  std::vector<std::string> pairs;
  for (const Parameter& parameter : parameters_) {
    pairs.push_back(absl::StrCat(parameter.keyword, "=", Quoted(parameter.value)));
  }
  if (std::any_of(hosts.begin(), hosts.end(), [](const auto& host) { return !host.empty(); })) {
    pairs.push_back(absl::StrCat("host=", Quoted(absl::StrJoin(hosts, ","))));
  }
  if (!addresses.empty()) {
    pairs.push_back(absl::StrCat("hostaddr=", Quoted(absl::StrJoin(addresses, ","))));
  }
  if (!ports.empty()) pairs.push_back(absl::StrCat("port=", Quoted(absl::StrJoin(ports, ","))));
  return absl::StrJoin(pairs, " ");
}

std::string HostOrder::Ordered() const {
  const int first = this->first();
  if (first == 0) return url_;
  return Conninfo(Rotated(hosts_, first), Rotated(addresses_, first),
                  ports_.size() > 1 ? Rotated(ports_, first) : ports_);
}

void HostOrder::Survey(absl::Duration connect_timeout) {
  if (surveyed_.load()) return;
  std::lock_guard lock(survey_mu_);
  if (surveyed_.load()) return;
  if (wants_primary_ && hosts_.size() > 1) {
    // Each host's timeline while it accepts writes (the first 8 hex digits of the WAL file it
    // writes to); 0 for one in recovery or out of reach.
    std::vector<std::uint32_t> timelines(hosts_.size(), 0);
    std::vector<std::thread> askers;
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      askers.emplace_back([&, i] {
        const std::vector<std::string> one = {hosts_[i]};
        const std::vector<std::string> address =
            addresses_.empty() ? std::vector<std::string>() : std::vector{addresses_[i]};
        const std::vector<std::string> port = ports_.size() > 1 ? std::vector{ports_[i]} : ports_;
        try {
          pqxx::connection connection(WithTimeout(
              Conninfo(one, address, port) + " target_session_attrs=any", connect_timeout));
          const Watched watched(connection.sock(), connect_timeout);
          const pqxx::row row = pqxx::nontransaction(connection).exec1(kTimelineOfWrites);
          if (!row[0].is_null()) {
            timelines[i] = static_cast<std::uint32_t>(
                std::stoul(row[0].as<std::string>().substr(0, 8), nullptr, 16));
          }
        } catch (const std::exception&) {
          // out of reach: libpq will pass it over
        }
      });
    }
    for (std::thread& asker : askers) asker.join();
    const auto latest = std::max_element(timelines.begin(), timelines.end());
    if (*latest > 0) first_.store(static_cast<int>(latest - timelines.begin()));
  }
  surveyed_.store(true);
}

bool HostOrder::Keeps(pqxx::connection& connection) const {
  return !wants_primary_ || TakesWrites(RawConnection::Of(connection));
}

bool HostOrder::TakesWrites(PGconn* connection) {
  const auto on = [connection](const char* parameter) {
    const char* value = PQparameterStatus(connection, parameter);
    return value != nullptr && absl::string_view(value) == "on";
  };
  return !on("in_hot_standby") && !on("default_transaction_read_only");
}

void HostOrder::Reached(pqxx::connection& connection) {
  const char* host = connection.hostname();
  const char* port = connection.port();
  if (host != nullptr && port != nullptr) Reached(host, port);
}

void HostOrder::Reached(absl::string_view host, absl::string_view port) {
  if (hosts_.size() < 2) return;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    const absl::string_view name =
        !hosts_[i].empty() || addresses_.empty() ? hosts_[i] : addresses_[i];
    const absl::string_view its_port = ports_.size() > 1 ? ports_[i]
                                       : ports_.empty()  ? absl::string_view()
                                                         : ports_[0];
    if (!name.empty() && name == host && (its_port.empty() || its_port == port)) {
      first_.store(static_cast<int>(i), std::memory_order_relaxed);
      return;
    }
  }
}

std::unique_ptr<pqxx::connection> Connect(const std::string& url, absl::Duration connect_timeout,
                                          absl::string_view application_name) {
  HostOrder& order = HostOrder::For(url);
  order.Survey(connect_timeout);
  std::string conninfo = WithTimeout(order.Ordered(), connect_timeout);
  if (!application_name.empty()) {
    conninfo = WithParameter(conninfo, "application_name", application_name);
  }
  auto connection = std::make_unique<pqxx::connection>(conninfo);
  order.Reached(*connection);
  return connection;
}

}  // namespace hotpath::db
