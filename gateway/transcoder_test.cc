#include "gateway/transcoder.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "hotpath/catalog/v1/catalog.pb.h"

namespace hotpath::gateway {
namespace {

namespace v1 = ::hotpath::catalog::v1;
using ::testing::HasSubstr;

const google::protobuf::MethodDescriptor* Method(const char* name) {
  return v1::Item::descriptor()
      ->file()
      ->FindServiceByName("CatalogService")
      ->FindMethodByName(name);
}

HttpBinding Binding(const char* method, const char* http_method, const char* path,
                    const char* body) {
  return HttpBinding{Method(method), http_method, *PathTemplate::Parse(path), body, ""};
}

struct QueryCase {
  const char* query;
  const char* want_json;  // the request as JSON, or "" when an error is expected
  const char* error;      // substring of the error
};

class ListQueryTest : public ::testing::TestWithParam<QueryCase> {};

TEST_P(ListQueryTest, FillsTheRequest) {
  const QueryCase& c = GetParam();
  v1::ListItemsRequest request;
  const absl::Status status =
      BuildRequest(Binding("ListItems", "GET", "/v1/items", ""), {}, c.query, "", {}, &request);
  if (std::string(c.want_json).empty()) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.error));
    return;
  }
  ASSERT_TRUE(status.ok()) << status;
  v1::ListItemsRequest want;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(c.want_json, &want).ok());
  EXPECT_EQ(request.DebugString(), want.DebugString());
}

INSTANTIATE_TEST_SUITE_P(
    Queries, ListQueryTest,
    ::testing::Values(
        QueryCase{"", "{}", ""}, QueryCase{"pageSize=10", "{\"pageSize\":10}", ""},
        QueryCase{"page_size=10", "{\"pageSize\":10}", ""},  // proto name
        QueryCase{"category=cat%2D3&pageToken=abc",
                  "{\"category\":\"cat-3\",\"pageToken\":\"abc\"}", ""},
        QueryCase{"category=a+b", "{\"category\":\"a b\"}", ""},  // + is a space
        QueryCase{"minPriceCents=100&max_price_cents=200",        // wrappers
                  "{\"minPriceCents\":\"100\",\"maxPriceCents\":\"200\"}", ""},
        QueryCase{"minPriceCents=0", "{\"minPriceCents\":\"0\"}", ""},  // 0 is set
        QueryCase{"pageSize=ten", "", "not a 32-bit integer"},
        QueryCase{"pageSize=99999999999", "", "not a 32-bit integer"},
        QueryCase{"minPriceCents=x", "", "not a valid google.protobuf.Int64Value"},
        QueryCase{"nope=1", "{}", ""},  // names no field: ignored
        QueryCase{"_=1700000000&pageSize=5", "{\"pageSize\":5}", ""},
        QueryCase{"utm_source=%zz", "{}", ""},  // an ignored value is not read
        QueryCase{"category.x=1", "", "has no fields"},
        QueryCase{"category=%ff", "", "not valid UTF-8"},
        QueryCase{"category=%zz", "", "malformed percent-encoding"},
        // One field, one value: a second is refused, in either name.
        QueryCase{"category=a&category=b", "", "\"category\": is given more than once"},
        QueryCase{"pageSize=1&page_size=2", "", "\"page_size\": is given more than once"},
        QueryCase{"minPriceCents=1&minPriceCents=2", "", "is given more than once"}),
    [](const ::testing::TestParamInfo<QueryCase>& info) {
      return "Case" + std::to_string(info.index);
    });

TEST(BuildRequest, StrictQueryParametersRefuseOnesThatNameNoField) {
  v1::ListItemsRequest request;
  const absl::Status status =
      BuildRequest(Binding("ListItems", "GET", "/v1/items", ""), {}, "nope=1", "",
                   {.strict_query_parameters = true}, &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no field \"nope\""));
}

TEST(BuildRequest, RepeatedQueryKeysAppend) {
  v1::BatchGetItemsRequest request;
  ASSERT_TRUE(BuildRequest(Binding("BatchGetItems", "GET", "/v1/items:batchGet", ""), {},
                           "ids=3&ids=1&ids=2", "", {}, &request)
                  .ok());
  EXPECT_THAT(request.ids(), ::testing::ElementsAre(3, 1, 2));
}

TEST(BuildRequest, TwoFieldsOfOneOneofAreRefused) {
  // No hotpath message has a oneof yet; the gateway serves any service's, so one is built here.
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(name: "oneof_test.proto"
           syntax: "proto3"
           package: "t"
           message_type {
             name: "Inner"
             field { name: "n" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
           }
           message_type {
             name: "Request"
             oneof_decl { name: "key" }
             field { name: "id" number: 1 type: TYPE_INT64 label: LABEL_OPTIONAL oneof_index: 0 }
             field { name: "sku" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL oneof_index: 0 }
             field {
               name: "inner"
               number: 3
               type: TYPE_MESSAGE
               type_name: ".t.Inner"
               label: LABEL_OPTIONAL
               oneof_index: 0
             }
           })pb",
      &file));
  google::protobuf::DescriptorPool pool;
  ASSERT_NE(pool.BuildFile(file), nullptr);
  google::protobuf::DynamicMessageFactory factory(&pool);
  const google::protobuf::Message* prototype =
      factory.GetPrototype(pool.FindMessageTypeByName("t.Request"));
  const HttpBinding binding = Binding("ListItems", "GET", "/v1/items", "");
  for (const auto& [query, error] : std::vector<std::pair<const char*, const char*>>{
           {"id=1&sku=a",
            "invalid parameter \"sku\": field \"id\" of oneof \"key\" is set already"},
           {"sku=a&inner.n=2", "invalid parameter \"inner.n\": field \"sku\" of oneof \"key\""},
           {"inner.n=2&id=1", "invalid parameter \"id\": field \"inner\" of oneof \"key\""},
           {"id=1&id=2", "invalid parameter \"id\": is given more than once"}}) {
    std::unique_ptr<google::protobuf::Message> request(prototype->New());
    const absl::Status status = BuildRequest(binding, {}, query, "", {}, request.get());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << query;
    EXPECT_THAT(std::string(status.message()), HasSubstr(error)) << query;
  }
  std::unique_ptr<google::protobuf::Message> request(prototype->New());
  ASSERT_TRUE(BuildRequest(binding, {}, "sku=a", "", {}, request.get()).ok());
  EXPECT_EQ(request->ShortDebugString(), "sku: \"a\"");
}

TEST(BuildRequest, PathVariablesAndBodyField) {
  v1::UpdateItemRequest request;
  const HttpBinding binding = Binding("UpdateItem", "PATCH", "/v1/items/{item.id}", "item");
  ASSERT_TRUE(BuildRequest(binding, {{"item.id", "42"}}, "updateMask=name,priceCents",
                           R"({"name":"New","price_cents":"5","id":"7"})", {}, &request)
                  .ok());
  EXPECT_EQ(request.item().id(), 42);  // the path wins over the body
  EXPECT_EQ(request.item().name(), "New");
  EXPECT_EQ(request.item().price_cents(), 5);
  EXPECT_THAT(request.update_mask().paths(), ::testing::ElementsAre("name", "price_cents"));
}

TEST(BuildRequest, ABodyThatSetsAFieldTwiceOrIsNotStrictJsonIsRefused) {
  const HttpBinding create = Binding("CreateItem", "POST", "/v1/items", "item");
  for (const auto& [body, error] : std::vector<std::pair<const char*, const char*>>{
           {R"({"sku":"a","sku":"b"})",
            "invalid JSON body: \"sku\" sets field sku of hotpath.catalog.v1.Item a second time"},
           {R"({"priceCents":"1","price_cents":"2"})", "\"price_cents\" sets field price_cents"},
           {R"({sku:"a"})", "invalid JSON body: not RFC 8259 JSON"},
           {R"({"sku":'a'})", "invalid JSON body: not RFC 8259 JSON"},
           {R"({"sku":"a",})", "invalid JSON body: not RFC 8259 JSON"}}) {
    v1::CreateItemRequest request;
    const absl::Status status = BuildRequest(create, {}, "", body, {}, &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(std::string(status.message()), HasSubstr(error)) << body;
  }
  v1::UpdateItemRequest update;
  const absl::Status status =
      BuildRequest(Binding("UpdateItem", "PATCH", "/v1/items/{item.id}", "item"),
                   {{"item.id", "4"}}, "", R"({"stock":1,"stock":2})", {}, &update);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"stock\" sets field stock"));
}

TEST(BuildRequest, BodyErrors) {
  const HttpBinding create = Binding("CreateItem", "POST", "/v1/items", "item");
  v1::CreateItemRequest request;
  absl::Status s = BuildRequest(create, {}, "", R"({"sku": "x",)", {}, &request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("invalid JSON body"));
  s = BuildRequest(create, {}, "", R"({"sku": "x" "name": 1})", {}, &request);
  EXPECT_THAT(std::string(s.message()), HasSubstr("invalid JSON body at byte 12:"));

  s = BuildRequest(create, {}, "", R"({"sku": "x", "colour": "red"})", {}, &request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("colour"));
  EXPECT_TRUE(BuildRequest(create, {}, "", R"({"sku": "x", "colour": "red"})",
                           {.ignore_unknown_fields = true}, &request)
                  .ok());

  s = BuildRequest(create, {}, "", R"({"stock": "many"})", {}, &request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  s = BuildRequest(create, {}, "", R"([1,2])", {}, &request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "{\"item\":";
  s = BuildRequest(create, {}, "", deep, {}, &request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  s = BuildRequest(create, {}, "item.sku=x", "{}", {}, &request);  // item is carried by the body
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  v1::GetItemRequest get;
  s = BuildRequest(Binding("GetItem", "GET", "/v1/items/{id}", ""), {{"id", "1"}}, "", "{}", {},
                   &get);
  EXPECT_THAT(std::string(s.message()), HasSubstr("takes no request body"));
  s = BuildRequest(Binding("GetItem", "GET", "/v1/items/{id}", ""), {{"id", "1"}}, "id=2", "", {},
                   &get);
  EXPECT_THAT(std::string(s.message()), HasSubstr("bound by the path"));
}

TEST(RenderResponse, CanonicalJsonWithZeroValues) {
  v1::Item item;
  item.set_id(5);
  item.set_sku("S");
  auto json = RenderResponse(Binding("GetItem", "GET", "/v1/items/{id}", ""), item);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"id\":\"5\""));          // int64 as a string
  EXPECT_THAT(*json, HasSubstr("\"priceCents\":\"0\""));  // zero values emitted, lowerCamelCase
  EXPECT_THAT(*json, HasSubstr("\"tags\":[]"));

  HttpBinding list = Binding("ListItems", "GET", "/v1/items", "");
  list.response_body = "items";
  v1::ListItemsResponse response;
  response.add_items()->set_id(1);
  response.add_items()->set_id(2);
  json = RenderResponse(list, response);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->front(), '[');
}

TEST(Errors, StatusTableAndBody) {
  const std::vector<std::pair<grpc::StatusCode, int>> table = {
      {grpc::StatusCode::OK, 200},
      {grpc::StatusCode::CANCELLED, 499},
      {grpc::StatusCode::UNKNOWN, 500},
      {grpc::StatusCode::INVALID_ARGUMENT, 400},
      {grpc::StatusCode::DEADLINE_EXCEEDED, 504},
      {grpc::StatusCode::NOT_FOUND, 404},
      {grpc::StatusCode::ALREADY_EXISTS, 409},
      {grpc::StatusCode::PERMISSION_DENIED, 403},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, 429},
      {grpc::StatusCode::FAILED_PRECONDITION, 400},
      {grpc::StatusCode::ABORTED, 409},
      {grpc::StatusCode::OUT_OF_RANGE, 400},
      {grpc::StatusCode::UNIMPLEMENTED, 501},
      {grpc::StatusCode::INTERNAL, 500},
      {grpc::StatusCode::UNAVAILABLE, 503},
      {grpc::StatusCode::DATA_LOSS, 500},
      {grpc::StatusCode::UNAUTHENTICATED, 401}};
  for (const auto& [code, http] : table) EXPECT_EQ(HttpStatusForCode(code), http) << code;

  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field("item.sku");
  v->set_description("is required");
  google::rpc::Status details;
  details.set_code(3);
  details.add_details()->PackFrom(bad);
  const std::string json = StatusJson(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad \"sku\"", details.SerializeAsString()));
  EXPECT_THAT(json, HasSubstr("\"code\":3"));
  EXPECT_THAT(json, HasSubstr("\"message\":\"bad \\\"sku\\\"\""));
  EXPECT_THAT(json, HasSubstr("\"@type\":\"type.googleapis.com/google.rpc.BadRequest\""));
  EXPECT_THAT(json, HasSubstr("\"field\":\"item.sku\""));
  EXPECT_EQ(StatusJson(grpc::Status(grpc::StatusCode::NOT_FOUND, "gone")),
            "{\"code\":5,\"message\":\"gone\",\"details\":[]}");
}

}  // namespace
}  // namespace hotpath::gateway
