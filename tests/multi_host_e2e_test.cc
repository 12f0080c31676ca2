// A database URL naming several hosts (libpq's multi-host form, as README's "Failover" says to
// deploy it) whose first host does not answer at all: a machine gone, its address still listed.
// libpq waits connect_timeout for it on every connection it opens with the hosts in the order
// given; hotpathd tries the host its last connection reached first (server/db/host_order.h), so it
// waits for the silent one once, not once per connection.
#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using MultiHostTest = ServerTest;

TEST_F(MultiHostTest, AHostThatDoesNotAnswerIsWaitedForOnceNotOncePerConnection) {
  DatabaseProxy silent(database_->url(), /*silent=*/true);
  ASSERT_NE(silent.port(), 0);
  const std::string database = database_->url();
  ServerOptions options = Options();
  options.database.database_url =
      absl::StrCat("host=127.0.0.1,", ConninfoValue(database, "host"), " port=", silent.port(), ",",
                   ConninfoValue(database, "port"), " user=postgres dbname=", database_->name(),
                   " target_session_attrs=read-write");
  options.database.connect_timeout = absl::Seconds(2);  // libpq's least
  options.database.max_size = 8;
  StartServer(options);
  // Before its first connection it asked each host whether it takes writes: the silent one once.
  EXPECT_EQ(silent.accepted(), 1);
  const double opened = Metric(server_->http_port(), "hotpath_db_pool_opened_total");

  // Eight threads creating and searching need more connections than were open: each goes
  // straight to the host the others reached.
  std::atomic<int> ok{0};
  {
    GrpcLoad load(channel_, 8, absl::Seconds(10),
                  [&](const grpc::Status& status, std::int64_t, absl::Time, absl::Time) {
                    if (status.ok()) ++ok;
                  });
    for (int i = 0; i < 200 && ok.load() < 400; ++i) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(ok.load(), 1);
  EXPECT_GT(Metric(server_->http_port(), "hotpath_db_pool_opened_total"), opened)
      << "the load opened no connection";
  EXPECT_EQ(silent.accepted(), 1) << "new connections tried the silent host first again";
}

}  // namespace
}  // namespace hotpath::testing
