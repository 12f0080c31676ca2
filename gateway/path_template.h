// google.api.http path templates, parsed once:
//
//   Template = "/" Segments [ Verb ] ;       Segment  = "*" | "**" | LITERAL | Variable ;
//   Segments = Segment { "/" Segment } ;     Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   Verb     = ":" LITERAL ;                 FieldPath = IDENT { "." IDENT } ;
//
// "{id}" is "{id=*}". A variable may span several segments ("{name=shelves/*/books/*}"), and "**"
// (allowed only last) matches the rest of the path.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hotpath::gateway {

struct PathTemplate {
  enum class Kind { kLiteral, kSingle, kMulti };  // "abc", "*", "**"
  struct Segment {
    Kind kind;            // what it matches
    std::string literal;  // for kLiteral
  };
  struct Variable {
    std::string field_path;  // "item.id"
    int first_segment;       // index of its first segment
    int end_segment;         // one past its last; -1: to the end of the path ("**")
  };
  std::vector<Segment> segments;    // in order
  std::vector<Variable> variables;  // in order of appearance
  std::string verb;                 // custom verb without ':' ("search"), or empty
  std::string text;                 // the template as written (the metrics' route label)

  static absl::StatusOr<PathTemplate> Parse(absl::string_view text);
};

}  // namespace hotpath::gateway
