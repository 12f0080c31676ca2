#include "gateway/json_printer.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "hotpath/catalog/v1/catalog.pb.h"

namespace hotpath::gateway {
namespace {

namespace v1 = ::hotpath::catalog::v1;

// What protobuf's own printer writes, with the gateway's options.
std::string Reference(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &json, options).ok());
  return json;
}

void ExpectSameAsProtobuf(const google::protobuf::Message& m) {
  std::string fast;
  ASSERT_TRUE(AppendCanonicalJson(m, &fast)) << m.GetTypeName();
  EXPECT_EQ(fast, Reference(m));
}

v1::Item FullItem() {
  v1::Item item;
  item.set_id(9007199254740993);  // beyond double precision: must stay a string
  item.set_sku("SKU-1");
  item.set_name(
      "Quote \" backslash \\ tab \t newline \n <tag> & 'x' = é 中文 \xE2\x80\xA8 \x01 \x7f");
  item.set_description("");
  item.set_category("cat-1");
  item.set_price_cents(-5);
  item.set_stock(0);
  item.add_tags("a");
  item.add_tags("");
  item.mutable_create_time()->set_seconds(1'700'000'000);
  item.mutable_create_time()->set_nanos(123'456'000);
  item.mutable_update_time()->set_seconds(-62'135'596'800);  // 0001-01-01
  item.set_etag("3");
  return item;
}

TEST(JsonPrinter, MatchesProtobufOnItems) {
  ExpectSameAsProtobuf(v1::Item());
  ExpectSameAsProtobuf(FullItem());
  v1::Item item = FullItem();
  for (int nanos : {0, 1, 1000, 1000000, 999999999, 120000000}) {
    item.mutable_create_time()->set_nanos(nanos);
    ExpectSameAsProtobuf(item);
  }
  // Leap days, the epoch's edges, the last second protobuf accepts.
  for (std::int64_t seconds : {0LL, -1LL, 951'782'400LL, 951'868'799LL, 4'107'542'400LL,
                               -2'208'988'800LL, 253'402'300'799LL}) {
    item.mutable_update_time()->set_seconds(seconds);
    ExpectSameAsProtobuf(item);
  }
}

// UTF-8 of code point cp.
std::string Utf8(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
  return out;
}

// Every Unicode scalar value, each between two ASCII letters, 2048 to a string: the gateway's bytes
// must be protobuf's for all of them (the format characters protobuf escapes among them: soft
// hyphen, zero-width joiner, direction marks, BOM, language tags, ...).
TEST(JsonPrinter, MatchesProtobufOnEveryCodePoint) {
  v1::Item item = FullItem();
  std::string text;
  int in_text = 0;
  for (char32_t cp = 0; cp <= 0x10ffff; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;  // surrogates are not characters
    text += 'a';
    text += Utf8(cp);
    if (++in_text == 2048 || cp == 0x10ffff) {
      text += 'z';
      item.set_name(text);
      std::string fast;
      ASSERT_TRUE(AppendCanonicalJson(item, &fast));
      const std::string reference = Reference(item);
      if (fast != reference) {
        // Name the first code point that differs.
        for (std::size_t at = 0; at < std::min(fast.size(), reference.size()); ++at) {
          if (fast[at] != reference[at]) {
            FAIL() << "up to U+" << std::hex << static_cast<std::uint32_t>(cp) << ": gateway \""
                   << fast.substr(at > 20 ? at - 20 : 0, 60) << "\" protobuf \""
                   << reference.substr(at > 20 ? at - 20 : 0, 60) << "\"";
          }
        }
        FAIL() << "lengths differ";
      }
      text.clear();
      in_text = 0;
    }
  }
  // The issue's example.
  item.set_name("a\u200db\u00adc");
  std::string fast;
  ASSERT_TRUE(AppendCanonicalJson(item, &fast));
  EXPECT_NE(fast.find(R"("name":"a\u200db\u00adc")"), std::string::npos) << fast;
}

TEST(JsonPrinter, MatchesProtobufOnEveryResponse) {
  v1::ListItemsResponse list;
  *list.add_items() = FullItem();
  *list.add_items() = v1::Item();
  list.set_next_page_token("tok");
  ExpectSameAsProtobuf(list);
  ExpectSameAsProtobuf(v1::ListItemsResponse());
  v1::CategoryStats stats;
  stats.set_category("c");
  stats.set_item_count(500);
  for (double avg : {0.0, 47141.0, 0.1, 1e21, 123456.789, -2.5e-10}) {
    stats.set_avg_price_cents(avg);
    ExpectSameAsProtobuf(stats);
  }
  ExpectSameAsProtobuf(v1::DeleteItemResponse());
  v1::UpdateItemRequest update;
  update.mutable_update_mask()->add_paths("price_cents");
  update.mutable_update_mask()->add_paths("name");
  ExpectSameAsProtobuf(update);
  v1::ListItemsRequest filters;
  filters.mutable_min_price_cents()->set_value(0);
  filters.mutable_max_price_cents()->set_value(-7);
  ExpectSameAsProtobuf(filters);
}

TEST(JsonPrinter, DeclinesWhatItLeavesToProtobuf) {
  google::rpc::Status status;
  status.add_details()->PackFrom(google::rpc::BadRequest());
  std::string out;
  EXPECT_FALSE(AppendCanonicalJson(status, &out));  // google.protobuf.Any
}

}  // namespace
}  // namespace hotpath::gateway
