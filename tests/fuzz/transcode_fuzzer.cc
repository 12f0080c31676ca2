// JSON-to-request transcoding on arbitrary input, for every REST binding of the catalog: the
// first byte picks the binding, the rest is "query\nbody". Then the message goes back to JSON.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/transcoder.h"
#include "google/api/annotations.pb.h"
#include "hotpath/catalog/v1/catalog.grpc.pb.h"

namespace {

using hotpath::gateway::HttpBinding;

std::vector<HttpBinding> CatalogBindings() {
  std::vector<HttpBinding> bindings;
  // Through a message's file: that links the generated code, which registers the service.
  const auto* service =
      hotpath::catalog::v1::Item::descriptor()->file()->FindServiceByName("CatalogService");
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    if (!method->options().HasExtension(google::api::http)) continue;
    const auto& rule = method->options().GetExtension(google::api::http);
    HttpBinding binding;
    binding.method = method;
    binding.body = rule.body();
    binding.response_body = rule.response_body();
    bindings.push_back(std::move(binding));
  }
  return bindings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<HttpBinding>* bindings = new std::vector<HttpBinding>(CatalogBindings());
  if (size < 1) return 0;
  const HttpBinding& binding = (*bindings)[data[0] % bindings->size()];
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t split = input.find('\n');
  const std::string query = input.substr(0, split);
  const std::string body = split == std::string::npos ? "" : input.substr(split + 1);

  const auto* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(
      binding.method->input_type());
  std::unique_ptr<google::protobuf::Message> request(prototype->New());
  hotpath::gateway::Bindings path_variables;
  if (!query.empty() && query[0] == 'v') path_variables.emplace_back("id", query.substr(1));
  for (bool ignore_unknown : {false, true}) {
    request->Clear();
    hotpath::gateway::TranscodeOptions options;
    options.ignore_unknown_fields = ignore_unknown;
    if (hotpath::gateway::BuildRequest(binding, path_variables, query, body, options, request.get())
            .ok()) {
      (void)hotpath::gateway::MessageJson(*request);
    }
  }
  return 0;
}
