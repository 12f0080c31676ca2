// The catalog through the generated clients its users call it with, each from Debian's packages
// (or npm, for Node's test tooling), not through hotpath's own C++ stubs: Python's grpcio with
// stubs from grpc_python_plugin, Go's grpc-go with stubs from protoc-gen-go and
// protoc-gen-go-grpc, Node's @grpc/grpc-js with stubs from @grpc/proto-loader. Each runs the same
// scenario (tests/clients/): a create with x-process-time in its initial metadata, a get with it
// in its trailers, NOT_FOUND naming the id, INVALID_ARGUMENT with a google.rpc.BadRequest the
// client's own library decodes, an etag conflict (ABORTED) and an update through a FieldMask, a
// client-streaming import, pages by token, a server-streaming export, a gzip-compressed call.
// Every language must print the same lines.
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

// What every client prints (tests/clients/catalog_client.py says what each line checks).
constexpr char kTranscript[] =
    "create OK etag=1 sku=1 tags=heavy,iron create_time=yes x-process-time=yes\n"
    "get OK same=yes x-process-time=yes\n"
    "get_missing NOT_FOUND names_id=yes\n"
    "create_invalid INVALID_ARGUMENT "
    "violations=item.category,item.name,item.price_cents,item.sku\n"
    "update_stale ABORTED\n"
    "update OK etag=2 stock=5 name=Anvil\n"
    "import OK imported=3\n"
    "list OK first=3 second=1 last_token=empty\n"
    "export OK items=4 in_order=yes\n"
    "gzip OK stock=5\n";

class ClientsTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(Options());
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    address_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    char pattern[] = "/tmp/hotpath-clients.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    work_ = pattern;
  }
  void TearDown() override {
    if (!work_.empty()) RunCommand(absl::StrCat("rm -rf ", work_));
    ServerTest::TearDown();
  }

  // Runs command; its output, or the exit status and output when it fails.
  static std::string Run(const std::string& command) {
    int exit_code = 0;
    const std::string output = RunCommand(command, &exit_code);
    if (exit_code != 0) return absl::StrCat("exit ", exit_code, ": ", output);
    return output;
  }

  const std::string protos_ = absl::StrCat(HOTPATH_SOURCE_DIR, "/proto");
  const std::string clients_ = absl::StrCat(HOTPATH_SOURCE_DIR, "/tests/clients");
  std::string address_;  // the server's gRPC port
  std::string work_;     // generated stubs and built clients
};

TEST_F(ClientsTest, PythonGrpcioWithGeneratedStubs) {
  const std::string generated = Run(absl::StrCat(
      "protoc -I", protos_, " -I", HOTPATH_GOOGLEAPIS_DIR, " -I/usr/include",
      " --python_out=", work_, " --grpc_python_out=", work_,
      " --plugin=protoc-gen-grpc_python=$(command -v grpc_python_plugin)",
      " hotpath/catalog/v1/catalog.proto google/api/annotations.proto",
      " google/api/http.proto google/rpc/status.proto", " google/rpc/error_details.proto"));
  ASSERT_EQ(generated, "");
  // Debian's interpreter, with Debian's grpcio and protobuf (not whatever python3 is first on
  // PATH).
  EXPECT_EQ(Run(absl::StrCat("PYTHONPATH=", work_, " timeout 60 /usr/bin/python3 ", clients_,
                             "/catalog_client.py ", address_, " python")),
            kTranscript);
}

TEST_F(ClientsTest, GoGrpcWithGeneratedStubs) {
  // The Go build cache outlives the test (in the build tree), so later runs link in seconds.
  const std::string built =
      Run(absl::StrCat("GOCACHE=", HOTPATH_GO_CACHE, " timeout 300 ", clients_, "/go/build.sh ",
                       work_, "/catalog_client ", protos_, " ", HOTPATH_GOOGLEAPIS_DIR));
  ASSERT_EQ(built, "");
  EXPECT_EQ(Run(absl::StrCat("timeout 60 ", work_, "/catalog_client ", address_, " go")),
            kTranscript);
}

TEST_F(ClientsTest, NodeGrpcJsWithProtoLoaderStubs) {
  EXPECT_EQ(
      Run(absl::StrCat("cd ", clients_, "/node && timeout 60 node catalog_client.mjs ", address_,
                       " node ", protos_, " ", HOTPATH_GOOGLEAPIS_DIR, " /usr/include")),
      kTranscript)
      << "(tests/clients/node/node_modules comes from scripts/test's npm ci)";
}

}  // namespace
}  // namespace hotpath::testing
