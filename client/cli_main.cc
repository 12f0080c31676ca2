// hotpath: the catalog's command-line client. One subcommand per RPC, JSON out.
//
//   hotpath get 42                     hotpath list --category cat-3 --page_size 10
//   hotpath create --sku A-1 --name Anvil --category tools --price_cents 1999
//   hotpath update 42 --stock 7 [--etag 3]     hotpath delete 42 [--etag 3]
//   hotpath search "blue widget"       hotpath stats cat-3       hotpath batch-get 1 2 3
//   hotpath export [--category c] > items.jsonl                  hotpath import items.jsonl
//   hotpath seed --items 10000         hotpath health
//   hotpath --after 0/3000148 get 42   (includes the write that printed x-hotpath-lsn: 0/3000148)
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/demo_items.h"
#include "client/item_lines.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "hotpath/catalog/v1/catalog.grpc.pb.h"
#include "server/app/env.h"
#include "server/app/flag_ranges.h"
#include "server/app/mutexes.h"
#include "server/rpc/consistency.h"
#include "server/rpc/tls.h"

using hotpath::app::EnvOr;
using hotpath::client::ItemLinesReader;

ABSL_FLAG(std::string, addr, EnvOr("HOTPATH_ADDR", "localhost:50051"),
          "server address host:port (env HOTPATH_ADDR)");
ABSL_FLAG(std::string, tls_ca_file, EnvOr("HOTPATH_TLS_CA_FILE", ""),
          "call over TLS, trusting this CA's PEM certificate (env HOTPATH_TLS_CA_FILE)");
ABSL_FLAG(std::string, token, EnvOr("HOTPATH_TOKEN", ""),
          "bearer token sent with every call, for servers that require one (env HOTPATH_TOKEN)");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(10), "deadline of each call (e.g. 500ms, 10s)");
ABSL_FLAG(std::string, after, EnvOr("HOTPATH_LSN", ""),
          "reads include the write that answered this position: what a write through a server "
          "with read replicas prints on stderr as x-hotpath-lsn (env HOTPATH_LSN)");
ABSL_FLAG(std::string, sku, "", "item sku (create, update)");
ABSL_FLAG(std::string, name, "", "item name (create, update)");
ABSL_FLAG(std::string, description, "", "item description (create, update)");
ABSL_FLAG(std::string, category, "", "item category (create, update), or a filter (list, export)");
ABSL_FLAG(int64_t, price_cents, 0, "item price in cents (create, update)");
ABSL_FLAG(int32_t, stock, 0, "units in stock (create, update)");
ABSL_FLAG(std::vector<std::string>, tags, {}, "comma-separated tags (create, update)");
ABSL_FLAG(std::string, etag, "",
          "precondition: the etag the item must still have (update, delete)");
ABSL_FLAG(int64_t, min_price_cents, 0, "filter: lowest price (list, export)");
ABSL_FLAG(int64_t, max_price_cents, 0, "filter: highest price (list, export)");
ABSL_FLAG(std::string, order_by, "", "list order: id or category,id");
ABSL_FLAG(int32_t, page_size, 0, "items per page (list, search)");
ABSL_FLAG(std::string, page_token, "", "page to fetch, from a previous next_page_token");
ABSL_FLAG(int64_t, items, 10000, "demo items to load (seed)");
ABSL_FLAG(bool, force, false, "seed even when the catalog already has items");
ABSL_FLAG(int64_t, first, 1, "seed, demo-items: number of the first demo item");
ABSL_FLAG(bool, csv, false,
          "demo-items: CSV for COPY (sku,name,description,category,price_cents,stock,tags)");

namespace {

namespace v1 = hotpath::catalog::v1;
using google::protobuf::util::JsonPrintOptions;

// Flags named on the command line, so an update's mask holds exactly what the user set.
std::set<std::string>& GivenFlags() {
  static std::set<std::string> given;
  return given;
}

void RecordGivenFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    GivenFlags().insert(std::string(arg.substr(0, arg.find('='))));
  }
}

bool Specified(const std::string& flag) { return GivenFlags().count(flag) > 0; }

void PrintJson(const google::protobuf::Message& message, bool one_line = false) {
  JsonPrintOptions options;
  options.add_whitespace = !one_line;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = false;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!json.empty() && json.back() == '\n') json.pop_back();
  std::cout << json << "\n";
}

// A write's commit position (servers with read replicas answer one), on stderr so stdout stays
// JSON: passed back as --after, a read through any replica includes the write.
void PrintPosition(const grpc::ClientContext& context) {
  const auto& metadata = context.GetServerInitialMetadata();
  const auto it = metadata.find(hotpath::rpc::Consistency::kMetadataKey);
  if (it == metadata.end()) return;
  std::cerr << hotpath::rpc::Consistency::kMetadataKey << ": "
            << std::string_view(it->second.data(), it->second.size()) << "\n";
}

int Fail(const grpc::Status& status) {
  std::cerr << "error: " << status.error_code() << " " << status.error_message() << "\n";
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::BadRequest bad_request;
      if (any.UnpackTo(&bad_request)) {
        for (const auto& v : bad_request.field_violations()) {
          std::cerr << "  " << v.field() << ": " << v.description() << "\n";
        }
      }
    }
  }
  return 1;
}

int Usage(const std::string& why) {
  std::cerr << "hotpath: " << why << "\n"
            << "commands: get ID | batch-get ID... | list | create | update ID | delete ID | "
               "search QUERY | stats CATEGORY | export | import FILE | seed | health | demo-items\n"
               "run 'hotpath --help' for flags\n";
  return 2;
}

class Cli final {
 public:
  explicit Cli(std::shared_ptr<grpc::Channel> channel)
      : channel_(channel), stub_(v1::CatalogService::NewStub(channel)) {}

  int Run(const std::vector<std::string>& args) {
    const std::string& cmd = args[0];
    if (cmd == "get" && args.size() == 2) {
      v1::GetItemRequest request;
      if (!ParseId(args[1], &request)) return Usage("get takes one numeric id");
      return Unary(&v1::CatalogService::Stub::GetItem, request);
    }
    if (cmd == "batch-get" && args.size() >= 2) {
      v1::BatchGetItemsRequest request;
      for (std::size_t i = 1; i < args.size(); ++i) {
        std::int64_t id;
        if (!absl::SimpleAtoi(args[i], &id)) return Usage("batch-get takes numeric ids");
        request.add_ids(id);
      }
      return Unary(&v1::CatalogService::Stub::BatchGetItems, request);
    }
    if (cmd == "list" && args.size() == 1) return List();
    if (cmd == "create" && args.size() == 1) {
      v1::CreateItemRequest request;
      FillItem(request.mutable_item(), nullptr);
      return Unary(&v1::CatalogService::Stub::CreateItem, request);
    }
    if (cmd == "update" && args.size() == 2) {
      v1::UpdateItemRequest request;
      std::int64_t id;
      if (!absl::SimpleAtoi(args[1], &id)) return Usage("update takes one numeric id");
      request.mutable_item()->set_id(id);
      FillItem(request.mutable_item(), request.mutable_update_mask());
      request.mutable_item()->set_etag(absl::GetFlag(FLAGS_etag));
      return Unary(&v1::CatalogService::Stub::UpdateItem, request);
    }
    if (cmd == "delete" && args.size() == 2) {
      v1::DeleteItemRequest request;
      if (!ParseId(args[1], &request)) return Usage("delete takes one numeric id");
      request.set_etag(absl::GetFlag(FLAGS_etag));
      return Unary(&v1::CatalogService::Stub::DeleteItem, request);
    }
    if (cmd == "search" && args.size() == 2) {
      v1::SearchItemsRequest request;
      request.set_query(args[1]);
      request.set_page_size(absl::GetFlag(FLAGS_page_size));
      request.set_page_token(absl::GetFlag(FLAGS_page_token));
      return Unary(&v1::CatalogService::Stub::SearchItems, request);
    }
    if (cmd == "stats" && args.size() == 2) {
      v1::GetCategoryStatsRequest request;
      request.set_category(args[1]);
      return Unary(&v1::CatalogService::Stub::GetCategoryStats, request);
    }
    if (cmd == "export" && args.size() == 1) return Export();
    if (cmd == "import" && args.size() == 2) return Import(args[1]);
    if (cmd == "seed" && args.size() == 1) return Seed();
    if (cmd == "health" && args.size() == 1) return Health();
    if (cmd == "demo-items" && args.size() == 1) return DemoItems();
    return Usage("unknown command or wrong arguments: " + cmd);
  }

 private:
  template <class Request>
  static bool ParseId(const std::string& text, Request* request) {
    std::int64_t id;
    if (!absl::SimpleAtoi(text, &id)) return false;
    request->set_id(id);
    return true;
  }

  // Deadline and credentials of every call.
  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_deadline)));
    if (const std::string token = absl::GetFlag(FLAGS_token); !token.empty()) {
      context->AddMetadata("authorization", "Bearer " + token);
    }
    if (const std::string after = absl::GetFlag(FLAGS_after); !after.empty()) {
      context->AddMetadata(hotpath::rpc::Consistency::kMetadataKey, after);
    }
  }

  template <class Request, class Response>
  int Unary(grpc::Status (v1::CatalogService::Stub::*method)(grpc::ClientContext*, const Request&,
                                                             Response*),
            const Request& request) {
    grpc::ClientContext context;
    Prepare(&context);
    Response response;
    const grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) return Fail(status);
    PrintJson(response);
    PrintPosition(context);
    return 0;
  }

  // Sets the item fields given as flags; with a mask, names each of them in it.
  static void FillItem(v1::Item* item, google::protobuf::FieldMask* mask) {
    auto use = [mask](const char* flag, const char* path) {
      const bool given = Specified(flag);
      if (given && mask != nullptr) mask->add_paths(path);
      return given || mask == nullptr;
    };
    if (use("sku", "sku")) item->set_sku(absl::GetFlag(FLAGS_sku));
    if (use("name", "name")) item->set_name(absl::GetFlag(FLAGS_name));
    if (use("description", "description")) item->set_description(absl::GetFlag(FLAGS_description));
    if (use("category", "category")) item->set_category(absl::GetFlag(FLAGS_category));
    if (use("price_cents", "price_cents")) item->set_price_cents(absl::GetFlag(FLAGS_price_cents));
    if (use("stock", "stock")) item->set_stock(absl::GetFlag(FLAGS_stock));
    if (use("tags", "tags")) {
      for (const auto& tag : absl::GetFlag(FLAGS_tags)) item->add_tags(tag);
    }
  }

  template <class Request>
  static void FillFilter(Request* request) {
    request->set_category(absl::GetFlag(FLAGS_category));
    if (Specified("min_price_cents"))
      request->mutable_min_price_cents()->set_value(absl::GetFlag(FLAGS_min_price_cents));
    if (Specified("max_price_cents"))
      request->mutable_max_price_cents()->set_value(absl::GetFlag(FLAGS_max_price_cents));
  }

  int List() {
    v1::ListItemsRequest request;
    FillFilter(&request);
    request.set_page_size(absl::GetFlag(FLAGS_page_size));
    request.set_page_token(absl::GetFlag(FLAGS_page_token));
    request.set_order_by(absl::GetFlag(FLAGS_order_by));
    return Unary(&v1::CatalogService::Stub::ListItems, request);
  }

  int Export() {
    v1::ExportItemsRequest request;
    FillFilter(&request);
    grpc::ClientContext context;
    Prepare(&context);
    auto reader = stub_->ExportItems(&context, request);
    v1::Item item;
    while (reader->Read(&item)) PrintJson(item, /*one_line=*/true);
    const grpc::Status status = reader->Finish();
    return status.ok() ? 0 : Fail(status);
  }

  // Streams items to ImportItems; next(item) fills the next one and returns false at the end, or
  // sets *error.
  template <class Next>
  int StreamImport(Next next) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(&context, &response);
    v1::CreateItemRequest request;
    std::string error;
    while (next(request.mutable_item(), &error)) {
      // buffer_hint: gRPC may coalesce messages into fewer frames and writes. A write that fails:
      // the server ended the call, and Finish says why.
      if (!writer->Write(request, grpc::WriteOptions().set_buffer_hint())) break;
      request.Clear();
    }
    if (!error.empty()) {
      context.TryCancel();
      writer->Finish();
      std::cerr << "error: " << error << "; nothing imported\n";
      return 1;
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    if (!status.ok()) return Fail(status);
    PrintJson(response);
    PrintPosition(context);
    return 0;
  }

  int Import(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
      std::cerr << "error: cannot open " << path << "\n";
      return 1;
    }
    ItemLinesReader lines(in, path);
    return StreamImport([&](v1::Item* item, std::string* error) {
      if (lines.Next(item)) return true;
      *error = lines.error();
      return false;
    });
  }

  int Seed() {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ListItemsRequest probe;
    probe.set_page_size(1);
    v1::ListItemsResponse existing;
    const grpc::Status status = stub_->ListItems(&context, probe, &existing);
    if (!status.ok()) return Fail(status);
    if (existing.items_size() > 0 && !absl::GetFlag(FLAGS_force)) {
      std::cerr << "seed: the catalog already has items; nothing loaded (--force to load anyway)\n";
      return 0;
    }
    const std::int64_t first = absl::GetFlag(FLAGS_first);
    const std::int64_t end = first + absl::GetFlag(FLAGS_items);
    std::int64_t n = first;
    return StreamImport([&](v1::Item* item, std::string*) {
      if (n >= end) return false;
      *item = hotpath::client::DemoItem(n++);
      return true;
    });
  }

  // Prints demo items (no server involved): JSON lines for `import`, or CSV for psql's \copy.
  static int DemoItems() {
    const std::int64_t first = absl::GetFlag(FLAGS_first);
    const std::int64_t end = first + absl::GetFlag(FLAGS_items);
    const bool csv = absl::GetFlag(FLAGS_csv);
    std::string out;
    for (std::int64_t n = first; n < end; ++n) {
      const v1::Item item = hotpath::client::DemoItem(n);
      if (csv) {
        auto quote = [](const std::string& s) {
          return "\"" + absl::StrReplaceAll(s, {{"\"", "\"\""}}) + "\"";
        };
        std::string tags = "{";
        for (int i = 0; i < item.tags_size(); ++i)
          absl::StrAppend(&tags, i ? "," : "", item.tags(i));
        tags += "}";
        absl::StrAppend(&out, quote(item.sku()), ",", quote(item.name()), ",",
                        quote(item.description()), ",", quote(item.category()), ",",
                        item.price_cents(), ",", item.stock(), ",", quote(tags), "\n");
      } else {
        std::string json;
        (void)google::protobuf::util::MessageToJsonString(item, &json);
        absl::StrAppend(&out, json, "\n");
      }
      if (out.size() > (1 << 20)) {
        std::cout << out;
        out.clear();
      }
    }
    std::cout << out << std::flush;
    return 0;
  }

  int Health() {
    // An empty service name asks for the server as a whole.
    grpc::ClientContext context;
    Prepare(&context);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = grpc::health::v1::Health::NewStub(channel_)->Check(
        &context, grpc::health::v1::HealthCheckRequest(), &response);
    if (!status.ok()) return Fail(status);
    std::cout << "{\"status\": \""
              << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
              << "\"}\n";
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
  }

  std::shared_ptr<grpc::Channel> channel_;          // to the server
  std::unique_ptr<v1::CatalogService::Stub> stub_;  // catalog calls
};

}  // namespace

int main(int argc, char** argv) {
  hotpath::app::ConfigureMutexDeadlockDetection();
  absl::SetProgramUsageMessage("hotpath: catalog command-line client (see the file header)");
  RecordGivenFlags(argc, argv);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  if (args.empty()) return Usage("no command");
  // What the server checks reaches it as given; these the CLI uses itself.
  absl::Status invalid = hotpath::app::CheckFlagRanges({
      {"items", absl::GetFlag(FLAGS_items), 0, 1'000'000'000},
      {"first", absl::GetFlag(FLAGS_first), 1, 1'000'000'000'000},
  });
  if (invalid.ok()) {
    invalid = hotpath::app::CheckFlagRanges({
        {"deadline", absl::GetFlag(FLAGS_deadline), absl::Milliseconds(1)},
    });
  }
  if (!invalid.ok()) return Usage(std::string(invalid.message()));
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  auto credentials = hotpath::rpc::ChannelCredentials(absl::GetFlag(FLAGS_tls_ca_file));
  if (!credentials.ok()) return Usage(std::string(credentials.status().message()));
  auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_addr), *credentials, channel_args);
  return Cli(channel).Run(args);
}
