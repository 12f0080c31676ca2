#include "server/json/fields_once.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hotpath/catalog/v1/catalog.pb.h"

namespace hotpath::json {
namespace {

namespace v1 = ::hotpath::catalog::v1;
using ::testing::HasSubstr;

std::string Refusal(absl::string_view json, const google::protobuf::Descriptor* descriptor) {
  const absl::Status status = CheckFieldsOnce(json, descriptor);
  return status.ok() ? "" : std::string(status.message());
}

TEST(CheckFieldsOnce, EachFieldOnceInEitherNamePasses) {
  for (const char* json :
       {R"({})", R"({"sku":"a","name":"b","priceCents":"1","tags":["x","x"]})",
        R"({"price_cents":"1","stock":2,"createTime":"2020-01-01T00:00:00Z","id":null})",
        R"({"sku":"a","unknown":{"b":1},"other":[{"b":1},{"b":2}]})"}) {
    EXPECT_EQ(Refusal(json, v1::Item::descriptor()), "") << json;
  }
  EXPECT_EQ(
      Refusal(R"({"item":{"sku":"a"},"updateMask":"name"})", v1::UpdateItemRequest::descriptor()),
      "");
}

TEST(CheckFieldsOnce, AFieldSetTwiceIsNamed) {
  EXPECT_EQ(Refusal(R"({"sku":"a","name":"x","sku":"b"})", v1::Item::descriptor()),
            "\"sku\" sets field sku of hotpath.catalog.v1.Item a second time");
  EXPECT_EQ(Refusal(R"({"priceCents":"1","price_cents":"2"})", v1::Item::descriptor()),
            "\"price_cents\" sets field price_cents of hotpath.catalog.v1.Item a second time");
  EXPECT_EQ(Refusal(R"({"sku":"a","s\u006bu":"b"})", v1::Item::descriptor()),
            "\"sku\" sets field sku of hotpath.catalog.v1.Item a second time");
  EXPECT_EQ(Refusal(R"({"tags":["a"],"tags":null})", v1::Item::descriptor()),
            "\"tags\" sets field tags of hotpath.catalog.v1.Item a second time");
  // Nested messages against their own type; objects of no known type by their names.
  EXPECT_THAT(Refusal(R"({"item":{"stock":1,"stock":2}})", v1::UpdateItemRequest::descriptor()),
              HasSubstr("\"stock\" sets field stock of hotpath.catalog.v1.Item"));
  EXPECT_EQ(Refusal(R"({"x":{"a":1,"a":2}})", v1::Item::descriptor()),
            "\"a\" appears twice in one object");
  EXPECT_EQ(Refusal(R"({"x":[{"a":1},{"b":1,"b":1}]})", v1::Item::descriptor()),
            "\"b\" appears twice in one object");
}

TEST(CheckFieldsOnce, MapKeysAndWellKnownTypesByTheirNames) {
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(name: "maps_test.proto"
           syntax: "proto3"
           package: "t"
           dependency: "google/protobuf/struct.proto"
           message_type {
             name: "Labelled"
             field {
               name: "labels"
               number: 1
               type: TYPE_MESSAGE
               type_name: ".t.Labelled.LabelsEntry"
               label: LABEL_REPEATED
             }
             field {
               name: "extra"
               number: 2
               type: TYPE_MESSAGE
               type_name: ".google.protobuf.Struct"
               label: LABEL_OPTIONAL
             }
             nested_type {
               name: "LabelsEntry"
               options { map_entry: true }
               field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
               field { name: "value" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL }
             }
           })pb",
      &file));
  google::protobuf::DescriptorPool pool(google::protobuf::DescriptorPool::generated_pool());
  const google::protobuf::FileDescriptor* built = pool.BuildFile(file);
  ASSERT_NE(built, nullptr);
  const google::protobuf::Descriptor* labelled = built->FindMessageTypeByName("Labelled");
  EXPECT_EQ(Refusal(R"({"labels":{"a":"1","b":"2"},"extra":{"a":1,"b":{"a":2}}})", labelled), "");
  EXPECT_EQ(Refusal(R"({"labels":{"a":"1","a":"2"}})", labelled),
            "\"a\" is a key given twice in map labels");
  EXPECT_EQ(Refusal(R"({"extra":{"k":1,"k":2}})", labelled), "\"k\" appears twice in one object");
}

TEST(CheckFieldsOnce, WhatIsNotStrictJsonIsRefused) {
  // Protobuf 3.21 reads each of these; a strict parser in front of hotpath would not.
  for (const char* json :
       {R"({sku:"a"})", R"({'sku':'a'})", R"({"sku":"a",})", R"({"sku":"a"} x)"}) {
    EXPECT_THAT(Refusal(json, v1::Item::descriptor()), HasSubstr("not RFC 8259 JSON")) << json;
  }
  for (const char* json : {R"({"x":1e400})", R"({"x":18446744073709551616})"}) {
    EXPECT_EQ(Refusal(json, v1::Item::descriptor()),
              "a number past what this service reads: 64-bit integers, and doubles")
        << json;
  }
}

TEST(CheckFieldsOnce, AnObjectOfManyNamesIsCheckedWhole) {
  std::string json = R"({"x":{)";
  for (int i = 0; i < 100'000; ++i) absl::StrAppend(&json, i ? "," : "", "\"k", i, "\":0");
  EXPECT_EQ(Refusal(json + "}}", v1::Item::descriptor()), "");
  EXPECT_EQ(Refusal(json + R"(,"k99999":1}})", v1::Item::descriptor()),
            "\"k99999\" appears twice in one object");
}

TEST(CheckFieldsOnce, LargeDocumentsUseAParserOfTheirOwn) {
  std::string json = R"({"description":")" + std::string(200 * 1024, 'd') + R"(","sku":"a")";
  EXPECT_EQ(Refusal(json + "}", v1::Item::descriptor()), "");
  EXPECT_EQ(Refusal(json + R"(,"sku":"b"})", v1::Item::descriptor()),
            "\"sku\" sets field sku of hotpath.catalog.v1.Item a second time");
}

}  // namespace
}  // namespace hotpath::json
