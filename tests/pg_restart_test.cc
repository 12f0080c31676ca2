// PostgreSQL restarts under a running hotpathd: calls fail fast while it is down, and the service
// heals by itself once it is back. Restarts the shared test cluster, so ctest runs it alone.
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

int PgCtl(const char* command) {
  const char* script = std::getenv("HOTPATH_TEST_PG_SCRIPT");
  const char* base = std::getenv("HOTPATH_TEST_PG_BASE");
  return std::system(absl::StrCat(script, " ", command, " ", base).c_str());
}

class PgRestartTest : public ServerTest {
 protected:
  void SetUp() override {
    if (std::getenv("HOTPATH_TEST_PG_SCRIPT") == nullptr ||
        std::getenv("HOTPATH_TEST_PG_BASE") == nullptr) {
      GTEST_SKIP() << "needs HOTPATH_TEST_PG_SCRIPT and HOTPATH_TEST_PG_BASE (set by scripts/test)";
    }
    ServerTest::SetUp();
    StartServer(Options());
  }

  grpc::Status Get(std::int64_t id, absl::Duration deadline) {
    v1::GetItemRequest request;
    request.set_id(id);
    v1::Item item;
    return stub_->GetItem(Context(deadline).get(), request, &item);
  }

  // A read the cache never answers.
  grpc::Status List(absl::Duration deadline) {
    v1::ListItemsRequest request;
    v1::ListItemsResponse response;
    return stub_->ListItems(Context(deadline).get(), request, &response);
  }
};

TEST_F(PgRestartTest, CallsFailFastDuringTheOutageAndRecoverAfter) {
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(Get(item.id(), absl::Seconds(5)).ok());  // now cached
  // Warm every pooled connection, so all of them are stale after the restart.
  std::vector<std::thread> warmers;
  for (int i = 0; i < 8; ++i)
    warmers.emplace_back([&] { EXPECT_TRUE(List(absl::Seconds(5)).ok()); });
  for (auto& t : warmers) t.join();

  ASSERT_EQ(PgCtl("stop"), 0);
  for (int i = 0; i < 10; ++i) {
    const absl::Time start = absl::Now();
    const grpc::Status status = List(absl::Seconds(2));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "a call hung while the database was down";
    EXPECT_EQ(Get(item.id() + 1000, absl::Seconds(2)).error_code(), grpc::StatusCode::UNAVAILABLE);
    // The cached item is still served while the database is away.
    EXPECT_TRUE(Get(item.id(), absl::Seconds(2)).ok());
    v1::CreateItemRequest create;
    create.mutable_item()->set_sku(absl::StrCat("OUTAGE-", i));
    create.mutable_item()->set_name("written during the outage");
    create.mutable_item()->set_category("c");
    v1::Item created;
    EXPECT_EQ(stub_->CreateItem(Context(absl::Seconds(2)).get(), create, &created).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }

  ASSERT_EQ(PgCtl("start"), 0);
  const absl::Time back = absl::Now();
  while (!List(absl::Seconds(1)).ok() && absl::Now() - back < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_LT(absl::Now() - back, absl::Seconds(2)) << "service took too long to recover";

  // Every connection works again, writes included, and no lease leaked.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (!List(absl::Seconds(5)).ok()) ++failures;
      v1::Item created = CreateDemo(100 + i);
      if (created.id() == 0) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(database_->Query("SELECT count(*) FROM items WHERE sku LIKE 'OUTAGE-%'"), "0");
  EXPECT_EQ(server_->pool().stats().in_use, 0);
}

}  // namespace
}  // namespace hotpath::testing
