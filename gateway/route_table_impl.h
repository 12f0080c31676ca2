// Template definitions of route_table.h.
#pragma once

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hotpath::gateway {

template <class Target>
absl::Status RouteTable<Target>::Add(const std::string& method, const PathTemplate& t,
                                     Target target) {
  Node* node = &root_;
  for (const auto& segment : t.segments) {
    std::unique_ptr<Node>* next = nullptr;
    switch (segment.kind) {
      case PathTemplate::Kind::kLiteral:
        next = &node->literals[segment.literal];
        break;
      case PathTemplate::Kind::kSingle:
        next = &node->single;
        break;
      case PathTemplate::Kind::kMulti:
        next = &node->multi;
        break;
    }
    if (*next == nullptr) *next = std::make_unique<Node>();
    node = next->get();
  }
  auto& slot = node->routes[method][t.verb];
  if (slot != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat(method, " ", t.text, " clashes with ", slot->path_template.text));
  }
  slot = std::make_unique<Route>(Route{t, std::move(target)});
  return absl::OkStatus();
}

template <class Target>
void RouteTable<Target>::Walk(const Node& node, const Segments& segments, std::size_t at,
                              Ends& ends) const {
  if (at == segments.size()) {
    ends.push_back(&node);
    return;
  }
  if (auto it = node.literals.find(segments[at]); it != node.literals.end()) {
    Walk(*it->second, segments, at + 1, ends);
  }
  if (node.single != nullptr) Walk(*node.single, segments, at + 1, ends);
  if (node.multi != nullptr) ends.push_back(node.multi.get());
}

template <class Target>
bool RouteTable<Target>::MatchAt(const std::string& method, const Segments& segments,
                                 absl::string_view verb, Match& match) const {
  Ends ends;
  Walk(root_, segments, 0, ends);
  // Other methods that match the path are only wanted (for Allow) when this one does not.
  absl::InlinedVector<const std::string*, 4> others;
  for (const Node* end : ends) {
    for (const auto& [route_method, by_verb] : end->routes) {
      auto it = by_verb.find(verb);
      if (it == by_verb.end()) continue;
      if (route_method != method) {
        others.push_back(&route_method);
        continue;
      }
      if (match.target != nullptr) continue;  // the first (most literal) match wins
      const Route& route = *it->second;
      Bindings bindings;
      bindings.reserve(route.path_template.variables.size());
      bool decoded = true;
      for (const auto& v : route.path_template.variables) {
        const std::size_t end_at =
            v.end_segment < 0 ? segments.size() : static_cast<std::size_t>(v.end_segment);
        std::string value, part;
        for (std::size_t i = static_cast<std::size_t>(v.first_segment);
             i < end_at && i < segments.size(); ++i) {
          decoded = decoded && PercentDecode(segments[i], &part, false);
          if (i > static_cast<std::size_t>(v.first_segment)) value.push_back('/');
          value += part;
        }
        bindings.emplace_back(v.field_path, std::move(value));
      }
      if (!decoded) {
        match.malformed = true;
        continue;
      }
      match.target = &route.target;
      match.path_template = &route.path_template;
      match.bindings = std::move(bindings);
    }
  }
  if (match.target != nullptr) {
    match.allowed.clear();
    match.malformed = false;
    return true;
  }
  for (const std::string* other : others) match.allowed.insert(*other);
  return false;
}

template <class Target>
typename RouteTable<Target>::Match RouteTable<Target>::Find(const std::string& method,
                                                            absl::string_view path) const {
  Match match;
  if (path.empty() || path.front() != '/') return match;
  Segments segments;
  for (absl::string_view segment : absl::StrSplit(path.substr(1), '/')) segments.push_back(segment);
  // A custom verb is the part of the last segment after its last ':'. Try the split first, then
  // the whole segment (a template without a verb whose literal contains ':').
  const absl::string_view last = segments.back();
  if (const std::size_t colon = last.rfind(':');
      colon != absl::string_view::npos && colon + 1 < last.size()) {
    Segments split = segments;
    split.back() = last.substr(0, colon);
    if (MatchAt(method, split, last.substr(colon + 1), match)) return match;
  }
  MatchAt(method, segments, "", match);
  return match;
}

}  // namespace hotpath::gateway
