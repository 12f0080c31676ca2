// ItemLinesReader against the plain reading: protobuf's JsonStringToMessage on each line alone,
// then the strict check that refuses what protobuf 3.21 reads and strict JSON readers read
// otherwise (server/json/fields_once.h). Same items, same first error naming the same line, for
// valid files and for lines built to fool a join (two objects on one line, one object over two,
// single quotes), and for random corruptions of valid files.
#include "client/item_lines.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/demo_items.h"
#include "server/json/fields_once.h"

namespace hotpath::client {
namespace {

struct Outcome {
  std::vector<std::string> items;  // each item's text format
  std::string error;               // the error, "" if none
  bool operator==(const Outcome&) const = default;
};

// What `hotpath import` did before the reader: each line alone.
Outcome LineByLine(const std::string& text) {
  Outcome outcome;
  std::istringstream in(text);
  std::string line;
  std::int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    catalog::v1::Item item;
    const auto parsed = google::protobuf::util::JsonStringToMessage(line, &item);
    const absl::Status status = parsed.ok()
                                    ? json::CheckFieldsOnce(line, item.GetDescriptor())
                                    : absl::InvalidArgumentError(std::string(parsed.message()));
    if (!status.ok()) {
      outcome.error = absl::StrCat("in.jsonl:", number, ": ", status.message());
      break;
    }
    outcome.items.push_back(item.DebugString());
  }
  return outcome;
}

Outcome Reader(const std::string& text) {
  Outcome outcome;
  std::istringstream in(text);
  ItemLinesReader reader(in, "in.jsonl");
  catalog::v1::Item item;
  while (reader.Next(&item)) outcome.items.push_back(item.DebugString());
  outcome.error = reader.error();
  return outcome;
}

std::string DemoLine(int n) {
  std::string line;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(DemoItem(n), &line).ok());
  return line;
}

// n demo lines, a blank line every 7th, CRLF every 5th.
std::vector<std::string> DemoLines(int n) {
  std::vector<std::string> lines;
  for (int i = 1; i <= n; ++i) {
    lines.push_back(DemoLine(i) + (i % 5 == 0 ? "\r" : ""));
    if (i % 7 == 0) lines.push_back(i % 2 == 0 ? "" : "  \t");
  }
  return lines;
}

void ExpectSame(const std::string& text) {
  const Outcome expected = LineByLine(text);
  const Outcome got = Reader(text);
  EXPECT_EQ(got.error, expected.error) << text.substr(0, 300);
  EXPECT_EQ(got.items.size(), expected.items.size()) << text.substr(0, 300);
  EXPECT_TRUE(got == expected) << text.substr(0, 300);
}

TEST(ItemLinesReaderTest, ReadsEveryItemOfAValidFileAcrossBatches) {
  const std::vector<std::string> lines = DemoLines(3 * ItemLinesReader::kBatchLines + 17);
  const std::string text = absl::StrJoin(lines, "\n");
  const Outcome got = Reader(text);
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.items.size(), 3u * ItemLinesReader::kBatchLines + 17);
  ExpectSame(text);
  ExpectSame(text + "\n");
  ExpectSame("");
  ExpectSame("\n \n\t\n");
}

TEST(ItemLinesReaderTest, LinesThatWouldJoinWrongAreReadAlone) {
  const std::string good = DemoLine(1);
  const std::vector<std::string> tricks = {
      R"({"sku":"A-1","name":"a"},{"sku":"B-1","name":"b"})",  // two objects on one line
      R"({"sku":"A-1","name":"a"})"
      "\n"
      R"("x"})",  // ...
      R"({"sku":"A-1",)"
      "\n"
      R"("name":"a"})",               // one object over two lines
      R"({"sku":'A-1',"name":'a'})",  // single quotes
      R"({"sku":'x"}"})"
      "\n"
      R"({"name":'y'})",  // a quote that strict JSON reads otherwise
      R"({"sku":"A-1"} trailing)",
      R"({"sku":"A-1"}})",
      R"([{"sku":"A-1"}])",
      "null",
      "42",
      R"("text")",
      R"({"nope":1})",
      R"({"stock":"many"})",
      R"({"priceCents":1e400})",
      R"({"tags":[1,2]})",
      R"({"createTime":"yesterday"})",
      "{\"name\":\"\xff\xfe\"}",                       // invalid UTF-8
      R"({"name":"\ud800"})",                          // a lone surrogate
      R"({"sku":"A-1","sku":"A-2"})",                  // the same field twice
      std::string(200, '{') + std::string(200, '}'),   // deep
      R"({"stock":1,})",                               // trailing comma
      R"({"id":"9223372036854775808"})",               // int64 out of range
      R"({"id":"12","priceCents":12.0,"stock":"7"})",  // numbers as strings and floats
  };
  for (const std::string& trick : tricks) {
    // Alone, first, in the middle of a batch, last.
    ExpectSame(trick);
    ExpectSame(absl::StrCat(trick, "\n", good));
    std::vector<std::string> lines = DemoLines(ItemLinesReader::kBatchLines + 30);
    lines.insert(lines.begin() + 100, trick);
    ExpectSame(absl::StrJoin(lines, "\n"));
    lines.push_back(trick);
    ExpectSame(absl::StrJoin(lines, "\n"));
  }
}

// Lines in and just outside the forms read without protobuf: each read as protobuf reads it
// alone, or failing with its error.
TEST(ItemLinesReaderTest, FormsReadDirectlyMatchProtobuf) {
  const std::string good = DemoLine(1);
  const std::vector<std::string> lines = {
      R"({"id":"12","sku":"S","name":"N","description":"D","category":"c","priceCents":"1","stock":3,"tags":["x","y"],"etag":"e"})",
      R"({})",
      R"({"price_cents":"5","sku":"A"})",
      R"({"priceCents":"5","price_cents":"6"})",
      R"({"priceCents":"0"})",
      R"({"priceCents":"-0"})",
      R"({"priceCents":"007"})",
      R"({"priceCents":" 7"})",
      R"({"priceCents":"+7"})",
      R"({"priceCents":""})",
      R"({"priceCents":"1e3"})",
      R"({"priceCents":"9223372036854775807"})",
      R"({"priceCents":"-9223372036854775808"})",
      R"({"priceCents":"9223372036854775808"})",
      R"({"priceCents":"-9223372036854775809"})",
      R"({"priceCents":"99999999999999999999"})",
      R"({"priceCents":9223372036854775807})",
      R"({"priceCents":-9223372036854775808})",
      R"({"priceCents":18446744073709551615})",
      R"({"priceCents":-1})",
      R"({"priceCents":true})",
      R"({"stock":2147483647})",
      R"({"stock":-2147483648})",
      R"({"stock":2147483648})",
      R"({"stock":-2147483649})",
      R"({"stock":"7"})",
      R"({"stock":7.0})",
      R"({"stock":-0})",
      R"({"stock":1e2})",
      R"({"id":null})",
      R"({"sku":null})",
      R"({"id":true})",
      R"({"s\u006bu":"A-1"})",
      R"({"SKU":"A-1"})",
      R"({"name":"a\u0000b\"\\\/\b\f\n\r\t"})",
      R"({"name":"\ud83d\ude00 é 漢"})",
      R"({"name":"x","name":"y"})",
      R"({"tags":[]})",
      R"({"tags":["a",null]})",
      R"({"tags":null})",
      R"({"tags":"a"})",
      R"({"tags":[["a"]]})",
      R"({"tags":["a"],"tags":["b"]})",
      R"({"etag":"W/\"1\""})",
      R"({"createTime":"2026-12-01T00:00:00Z","sku":"A"})",
      R"({"create_time":"2026-12-01T00:00:00.123456789Z"})",
  };
  for (const std::string& line : lines) {
    ExpectSame(line);
    ExpectSame(absl::StrCat(good, "\n", line, "\n", good));
  }
}

TEST(ItemLinesReaderTest, RandomCorruptionsReadAsEachLineAlone) {
  std::mt19937 random(20261201);
  const std::string significant = "{}[]\",:'\\ \n\r\t0-eE.ntrufals";
  const std::vector<std::string> lines = DemoLines(40);
  const std::string clean = absl::StrJoin(lines, "\n");
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text = clean;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = random() % text.size();
      const char c = significant[random() % significant.size()];
      switch (random() % 3) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(at, 1, c);
          break;
        default:
          text.erase(at, 1);
          break;
      }
    }
    ExpectSame(text);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace hotpath::client
