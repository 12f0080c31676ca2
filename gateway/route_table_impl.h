// Template definitions of route_table.h.
#pragma once

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace hotpath::gateway {

template <class Target>
absl::Status RouteTable<Target>::Add(const std::string& method, const PathTemplate& t,
                                     Target target) {
  Node* node = &root_;
  for (const auto& segment : t.segments) {
    std::unique_ptr<Node>* next;
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
void RouteTable<Target>::Walk(const Node& node, const std::vector<std::string>& segments,
                              std::size_t at, const std::string& verb,
                              std::vector<const Node*>& ends) const {
  if (at == segments.size()) {
    ends.push_back(&node);
    return;
  }
  if (auto it = node.literals.find(segments[at]); it != node.literals.end()) {
    Walk(*it->second, segments, at + 1, verb, ends);
  }
  if (node.single != nullptr) Walk(*node.single, segments, at + 1, verb, ends);
  if (node.multi != nullptr) ends.push_back(node.multi.get());
}

template <class Target>
typename RouteTable<Target>::Match RouteTable<Target>::Find(const std::string& method,
                                                            absl::string_view path) const {
  Match match;
  if (path.empty() || path.front() != '/') return match;
  // A custom verb is the part of the last segment after its last ':'. Try the split first, then
  // the whole segment (a template without a verb whose literal contains ':').
  std::vector<std::string> raw = absl::StrSplit(path.substr(1), '/');
  std::vector<std::pair<std::vector<std::string>, std::string>> candidates;
  if (const std::size_t colon = raw.back().rfind(':');
      colon != std::string::npos && colon + 1 < raw.back().size()) {
    auto split = raw;
    split.back() = raw.back().substr(0, colon);
    candidates.emplace_back(std::move(split), raw.back().substr(colon + 1));
  }
  candidates.emplace_back(raw, "");
  for (auto& [segments, verb] : candidates) {
    std::vector<const Node*> ends;
    Walk(root_, segments, 0, verb, ends);
    for (const Node* end : ends) {
      for (const auto& [route_method, by_verb] : end->routes) {
        auto it = by_verb.find(verb);
        if (it == by_verb.end()) continue;
        if (route_method != method) {
          match.allowed.insert(route_method);
          continue;
        }
        if (match.target != nullptr) continue;  // the first (most literal) match wins
        const Route& route = *it->second;
        Bindings bindings;
        bool decoded = true;
        for (const auto& v : route.path_template.variables) {
          const std::size_t end_at =
              v.end_segment < 0 ? segments.size() : static_cast<std::size_t>(v.end_segment);
          std::vector<std::string> parts;
          for (std::size_t i = static_cast<std::size_t>(v.first_segment);
               i < end_at && i < segments.size(); ++i) {
            std::string part;
            decoded = decoded && PercentDecode(segments[i], &part, false);
            parts.push_back(std::move(part));
          }
          bindings.emplace_back(v.field_path, absl::StrJoin(parts, "/"));
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
      return match;
    }
  }
  return match;
}

}  // namespace hotpath::gateway
