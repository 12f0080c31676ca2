// Maps (HTTP method, path) to a route in one walk of a trie of path segments built once at start:
// literal segments first, then "*", then "**", backtracking only where a literal branch dead-ends.
// A path that some route matches under another method yields the methods for an Allow header.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gateway/path_template.h"

namespace hotpath::gateway {

// Path variables bound by a match: field path -> decoded value.
using Bindings = std::vector<std::pair<std::string, std::string>>;

template <class Target>
class RouteTable final {
 public:
  // Adds a route; ALREADY_EXISTS when the same method, segments and verb are taken.
  absl::Status Add(const std::string& method, const PathTemplate& path_template, Target target);

  struct Match {
    const Target* target = nullptr;               // null: no route for this method
    const PathTemplate* path_template = nullptr;  // the matched template
    Bindings bindings;                            // variables, decoded
    std::set<std::string> allowed;  // when target is null: methods that do match the path
    bool malformed = false;         // a route matched but a variable's %-escape is broken
  };
  // path: the request path without the query, still percent-encoded.
  Match Find(const std::string& method, absl::string_view path) const;

 private:
  struct Route {
    PathTemplate path_template;  // as parsed
    Target target;               // what it leads to
  };
  // The maps compare with std::less<> so that a request's segments, views into its path, look
  // them up without a copy.
  struct Node {
    std::map<std::string, std::unique_ptr<Node>, std::less<>> literals;  // by segment text
    std::unique_ptr<Node> single;                                        // "*" or "{var}"
    std::unique_ptr<Node> multi;                                         // "**" (a leaf)
    // Routes ending here: method -> verb -> route.
    std::map<std::string, std::map<std::string, std::unique_ptr<Route>, std::less<>>, std::less<>>
        routes;
  };
  // A request path's segments, still percent-encoded; most paths have few.
  using Segments = absl::InlinedVector<absl::string_view, 8>;
  using Ends = absl::InlinedVector<const Node*, 4>;

  void Walk(const Node& node, const Segments& segments, std::size_t at, Ends& ends) const;
  // Fills `match` from the routes that `segments` with `verb` reach; true when one has `method`.
  bool MatchAt(const std::string& method, const Segments& segments, absl::string_view verb,
               Match& match) const;

  Node root_;  // the trie
};

// Percent-decodes a path segment or query component ("+" stays "+" in paths). False when an
// escape is malformed.
bool PercentDecode(absl::string_view in, std::string* out, bool plus_is_space);

}  // namespace hotpath::gateway

#include "gateway/route_table_impl.h"
