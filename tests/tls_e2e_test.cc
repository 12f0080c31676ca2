// TLS for gRPC and HTTPS for the gateway from certificate files, through a throwaway CA made with
// openssl for this test; mutual TLS when a client CA is configured. Plaintext stays the default.
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "server/rpc/tls.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;

class TlsTest : public ServerTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(::testing::TempDir(), "hotpath-tls-", getpid()));
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    int code = 0;
    const std::string out = RunCommand(
        absl::StrCat(
            "set -e; mkdir -p ", *dir_, " && cd ", *dir_, " && ", "openssl req -x509 ", key,
            " -keyout ca.key -out ca.pem -days 1 -subj /CN=hotpath-test-ca"
            " && openssl req ",
            key, " -keyout server.key -out server.csr -subj /CN=localhost",
            " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext",
            " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial",
            " -out server.pem -days 1 -extfile san.ext", " && openssl req ", key,
            " -keyout client.key -out client.csr -subj /CN=client",
            " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial",
            " -out client.pem -days 1"),
        &code);
    ASSERT_EQ(code, 0) << out;
  }
  static void TearDownTestSuite() {
    RunCommand(absl::StrCat("rm -rf ", *dir_));
    delete dir_;
  }
  static std::string File(const char* name) { return absl::StrCat(*dir_, "/", name); }

  ServerOptions TlsOptions() const {
    ServerOptions options = Options();
    options.tls_cert_file = options.http.tls_cert_file = File("server.pem");
    options.tls_key_file = options.http.tls_key_file = File("server.key");
    return options;
  }

  // A stub over TLS trusting the test CA, with the client's certificate when asked.
  std::unique_ptr<v1::CatalogService::Stub> TlsStub(bool client_certificate) {
    auto credentials =
        client_certificate
            ? rpc::ChannelCredentials(File("ca.pem"), File("client.pem"), File("client.key"))
            : rpc::ChannelCredentials(File("ca.pem"));
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    return v1::CatalogService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), *credentials, args));
  }

  grpc::Status Create(v1::CatalogService::Stub& stub) {
    v1::CreateItemRequest request;
    auto* item = request.mutable_item();
    item->set_sku("TLS-1");
    item->set_name("over tls");
    item->set_category("c");
    item->set_price_cents(1);
    v1::Item created;
    return stub.CreateItem(Context(absl::Seconds(5)).get(), request, &created);
  }

  static std::string* dir_;  // the test CA and certificates
};

std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, GrpcAndHttpsServeThroughTheCertificateAndRefusePlaintext) {
  StartServer(TlsOptions());
  auto stub = TlsStub(/*client_certificate=*/false);
  const grpc::Status created = Create(*stub);
  ASSERT_TRUE(created.ok()) << created.error_code() << " " << created.error_message();
  v1::GetItemRequest get;
  get.set_id(1);
  v1::Item item;
  ASSERT_TRUE(stub->GetItem(Context().get(), get, &item).ok());
  EXPECT_EQ(item.sku(), "TLS-1");

  // stub_ speaks plaintext: the TLS port does not answer it.
  EXPECT_EQ(stub_->GetItem(Context(absl::Seconds(2)).get(), get, &item).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  const int port = server_->http_port();
  int code = 0;
  std::string out = RunCommand(absl::StrCat("curl -sS --cacert ", File("ca.pem"),
                                            " https://localhost:", port, "/v1/items/1"),
                               &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("\"sku\":\"TLS-1\""));
  // Without the CA the certificate is not trusted; plaintext HTTP gets no answer.
  RunCommand(absl::StrCat("curl -sS https://localhost:", port, "/healthz"), &code);
  EXPECT_NE(code, 0);
  RunCommand(absl::StrCat("curl -sS -m 5 http://127.0.0.1:", port, "/healthz"), &code);
  EXPECT_NE(code, 0);
  // The server is unharmed by the plaintext attempt.
  out = RunCommand(
      absl::StrCat("curl -sS --cacert ", File("ca.pem"), " https://localhost:", port, "/healthz"),
      &code);
  EXPECT_EQ(code, 0) << out;
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificate) {
  ServerOptions options = TlsOptions();
  options.tls_client_ca_file = File("ca.pem");
  StartServer(options);
  EXPECT_EQ(Create(*TlsStub(/*client_certificate=*/false)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Create(*TlsStub(/*client_certificate=*/true)).ok());
}

TEST_F(TlsTest, AMissingCertificateFileFailsTheStartWithItsName) {
  ServerOptions options = Options();
  options.tls_cert_file = File("nope.pem");
  options.tls_key_file = File("server.key");
  auto server = StartCatalogServer(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("nope.pem"));
}

}  // namespace
}  // namespace hotpath::testing
