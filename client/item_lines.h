// Items from JSON lines (`hotpath export`'s output, `hotpath import`'s input): one proto3 JSON
// Item per line, blank lines skipped, read exactly as protobuf's JsonStringToMessage reads each
// line alone, several times faster.
//
// Every line first goes through simdjson's validating parser (strict RFC 8259). A line that is one
// object whose members are all in the forms export and demo-items write (string fields as strings,
// int64 as a JSON integer or a string of digits, stock as a JSON integer, tags as strings, each
// field once, by its JSON or proto name) is read from that parse into the Item directly. Anything
// else (timestamps, nulls, other number forms, unknown or repeated fields) is read by protobuf,
// whose reading and errors are the reference.
//
// Protobuf 3.21's JSON parser pays a fixed ~10 us per call (it builds its type information and a
// writer stack each time) against ~5 us of real work for an item, so a batch of up to kBatchLines
// lines that are not all read directly is parsed in one call, as the items of one
// {"items":[line,line,...]}. Joining lines is only safe when each one is a single JSON object on
// its own (otherwise `{"name":"x"` and `"sku":"y"}` on two lines would join into one item), which
// the simdjson parse tells, and its element of the array is then exactly its own text.
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
  enum class Shape {
    kItem,    // one strict JSON object, read into the item given
    kObject,  // one strict JSON object (whitespace aside), left to protobuf
    kOther,   // anything else
  };
  // What line is; reads it into *item when item is not null and the line is an Item in the forms
  // export and demo-items write (see ReadItem in the .cc). May grow the line's capacity.
  Shape ReadLine(std::string& line, catalog::v1::Item* item);

  std::istream& in_;                      // the JSON lines
  const std::string name_;                // how errors name in_
  std::int64_t line_number_ = 0;          // lines read so far, blank ones included
  std::vector<std::string> lines_;        // the lines of the current batch, blank ones left out
  std::vector<std::int64_t> numbers_;     // each one's line number
  catalog::v1::ListItemsResponse batch_;  // their items (only `items` is used)
  int next_ = 0;                          // the next of batch_'s items to hand out
  std::string error_;                     // the first error; empty while there is none
  std::unique_ptr<simdjson::dom::parser> parser_;  // ReadLine's, reused
};

}  // namespace hotpath::client
