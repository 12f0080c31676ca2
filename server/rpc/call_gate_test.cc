#include "server/rpc/call_gate.h"

#include <vector>

#include "gtest/gtest.h"
#include "hotpath/catalog/v1/catalog.pb.h"

namespace hotpath::rpc {
namespace {

const google::protobuf::MethodDescriptor& GetItem() {
  // Naming a message of the file links its descriptors in.
  return *catalog::v1::GetItemRequest::descriptor()
              ->file()
              ->FindServiceByName("CatalogService")
              ->FindMethodByName("GetItem");
}

// One connection must not hold every slot: past its share its calls are refused, while other
// connections (and calls from inside the process, with no peer) are still admitted.
TEST(CallGateTest, OneConnectionGetsItsShareAndNoMore) {
  CallGate gate(CallGateOptions{.max_in_flight = 16, .max_in_flight_per_connection = 3});
  std::vector<CallGate::Ticket> held;
  for (int i = 0; i < 3; ++i) {
    auto ticket = gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4000");
    ASSERT_TRUE(ticket.ok()) << ticket.status();
    held.push_back(*std::move(ticket));
  }
  auto refused = gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4000");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("this connection"), std::string::npos);
  EXPECT_EQ(gate.in_flight(), 3);

  auto other = gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4001");
  EXPECT_TRUE(other.ok());
  auto local = gate.Admit(GetItem(), "");
  EXPECT_TRUE(local.ok());

  held.pop_back();  // a slot of the first connection comes back
  EXPECT_TRUE(gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4000").ok());
}

TEST(CallGateTest, ShareDefaultsToAnEighthOfTheCap) {
  CallGate gate(CallGateOptions{.max_in_flight = 16});
  std::vector<CallGate::Ticket> held;
  for (int i = 0; i < 2; ++i) held.push_back(*gate.Admit(GetItem(), "", "peer"));
  EXPECT_FALSE(gate.Admit(GetItem(), "", "peer").ok());
  held.clear();
  EXPECT_EQ(gate.in_flight(), 0);
}

// An answered call gives its in-flight slot back at once, and its connection's share only when
// its ticket goes (the answer delivered): answers a client leaves unread count against its share.
TEST(CallGateTest, AnAnswerKeepsItsConnectionsShareUntilItIsDelivered) {
  CallGate gate(CallGateOptions{.max_in_flight = 16, .max_in_flight_per_connection = 2});
  std::vector<CallGate::Ticket> held;
  for (int i = 0; i < 2; ++i) held.push_back(*gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4000"));
  held[0].Answered();
  held[0].Answered();  // once is all it counts
  EXPECT_EQ(gate.in_flight(), 1);
  auto refused = gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4000");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("answers not yet read"), std::string::npos)
      << refused.status();
  EXPECT_TRUE(gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4001").ok());
  held.erase(held.begin());  // delivered
  EXPECT_EQ(gate.in_flight(), 1);
  EXPECT_TRUE(gate.Admit(GetItem(), "", "ipv4:10.0.0.1:4000").ok());
}

}  // namespace
}  // namespace hotpath::rpc
