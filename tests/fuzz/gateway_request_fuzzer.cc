// The gateway's whole request path on arbitrary input: route matching, path and query parsing,
// headers, gzip and JSON bodies transcoded to request messages, and the answer rendered back.
// Every unary catalog method is answered in process by a handler that echoes an empty response;
// server streams go to a channel whose socket does not exist (they fail UNAVAILABLE), so no
// server or database is involved.
//
// Input: "METHOD TARGET\n" then "Name: value\n" header lines, a blank line, and the body.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_split.h"
#include "gateway/gateway.h"
#include "hotpath/catalog/v1/catalog.grpc.pb.h"
#include "server/rpc/local_handlers.h"

namespace {

using hotpath::http::Request;
using hotpath::http::Response;

class DiscardingSink final : public hotpath::http::Responder::Sink {
 public:
  void Whole(Response response, absl::FunctionRef<void(int)> decided) override {
    answered = true;
    decided(response.result_int());
  }
  void Start(Response header, std::function<void(bool)> on_written) override { answered = true; }
  void Chunk(std::string data, std::function<void(bool)> on_written) override {}
  void Finish() override {}
  bool answered = false;
};

struct Harness {
  hotpath::rpc::LocalHandlers local;
  std::shared_ptr<hotpath::gateway::Gateway> gateway;

  Harness() {
    // Through a message's file: that links the generated code, which registers the service.
    const auto* service =
        hotpath::catalog::v1::Item::descriptor()->file()->FindServiceByName("CatalogService");
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const auto* output = google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          method->output_type());
      local.Add(method, [output](const google::protobuf::Message&, const hotpath::rpc::LocalCall&,
                                 hotpath::rpc::LocalDone done) {
        done(grpc::Status::OK, output, nullptr);
      });
    }
    hotpath::gateway::GatewayOptions options;
    options.local = &local;
    options.max_body_bytes = 1 << 16;
    options.cors.allowed_origins = {"https://shop.example", "http://127.0.0.1:8000"};
    auto created = hotpath::gateway::Gateway::Create(
        {hotpath::catalog::v1::CatalogService::service_full_name()},
        std::make_unique<hotpath::gateway::Dispatcher>(grpc::CreateChannel(
            "unix:/nonexistent/hotpath-fuzz.sock", grpc::InsecureChannelCredentials())),
        options);
    gateway = *std::move(created);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Harness* harness = new Harness();
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t head_end = input.find("\n\n");
  const std::string head = input.substr(0, head_end);
  const std::string body = head_end == std::string::npos ? "" : input.substr(head_end + 2);
  std::vector<std::string> lines = absl::StrSplit(head, '\n');
  std::vector<std::string> start = absl::StrSplit(lines[0], absl::MaxSplits(' ', 1));
  if (start.size() != 2 || start[0].empty() || start[1].empty()) return 0;

  Request request;
  try {
    request.method_string(start[0]);
    request.target(start[1]);
    for (std::size_t i = 1; i < lines.size(); ++i) {
      std::vector<std::string> field = absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
      if (field.size() == 2 && !field[0].empty()) request.insert(field[0], field[1]);
    }
  } catch (const std::exception&) {
    return 0;  // Beast refuses the field itself: the HTTP parser would never deliver it
  }
  request.version(11);
  request.body() = body;
  auto sink = std::make_shared<DiscardingSink>();
  std::string route;
  harness->gateway->Handle(request, hotpath::http::Responder(sink), &route);
  return 0;
}
