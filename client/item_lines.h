// Items from JSON lines (`hotpath export`'s output, `hotpath import`'s input): one proto3 JSON
// Item per line, blank lines skipped, read exactly as protobuf's JsonStringToMessage reads each
// line alone, and about twice as fast.
//
// Why batches: protobuf 3.21's JSON parser pays a fixed ~10 us per call (it builds its type
// information and a writer stack each time) against ~5 us of real work for an item, so the
// reader parses up to kBatchLines lines in one call, as the items of one
// {"items":[line,line,...]}. Joining lines is only safe when each one is a single JSON object on
// its own (otherwise `{"name":"x"` and `"sku":"y"}` on two lines would join into one item): a line
// goes into a batch only when it is strict RFC 8259 JSON whose value is an object (simdjson's
// validating parser, under half a microsecond a line; nlohmann::json::accept took ~3 us), and its
// element of the array is then exactly its own text.
// Any batch that fails to parse, or holds any other line, is parsed line by line instead, so
// errors (and the line they name) are those of the line alone.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "hotpath/catalog/v1/catalog.pb.h"

namespace simdjson::dom {
class parser;
}  // namespace simdjson::dom

namespace hotpath::client {

class ItemLinesReader final {
 public:
  // Lines parsed per protobuf call at most.
  static constexpr int kBatchLines = 256;

  // name: how errors name the input (a path). in must outlive the reader.
  ItemLinesReader(std::istream& in, std::string name);
  ~ItemLinesReader();

  // The next item into *item; false at the end of the input or at a line that is not an Item
  // (then error() says "name:line: why" and no item of that line or after it is returned).
  bool Next(catalog::v1::Item* item);
  const std::string& error() const { return error_; }

 private:
  // Reads and parses the next lines; false when there are none or they hold an error.
  bool Refill();
  // Parses lines_ one by one into batch_, stopping at the first error.
  void ParseEachLine();
  // Whether line is one strict JSON object and nothing else (whitespace aside); may grow its
  // capacity.
  bool IsOneJsonObject(std::string& line);

  std::istream& in_;                      // the JSON lines
  const std::string name_;                // how errors name in_
  std::int64_t line_number_ = 0;          // lines read so far, blank ones included
  std::vector<std::string> lines_;        // the lines of the current batch, blank ones left out
  std::vector<std::int64_t> numbers_;     // each one's line number
  catalog::v1::ListItemsResponse batch_;  // their items (only `items` is used)
  int next_ = 0;                          // the next of batch_'s items to hand out
  std::string error_;                     // the first error; empty while there is none
  std::unique_ptr<simdjson::dom::parser> validator_;  // IsOneJsonObject's, reused
};

}  // namespace hotpath::client
