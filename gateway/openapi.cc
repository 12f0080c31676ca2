#include "gateway/openapi.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

// The documents are merged as text, member by member, with a small scanner rather than through
// google.protobuf.Struct: Struct's map fields are compiled into Debian's libprotobuf, whose
// MapFieldBase has another layout than the one its headers give ThreadSanitizer builds, so
// touching a Struct from our code crashed there.
namespace hotpath::gateway {
namespace {

constexpr std::size_t kBad = std::string_view::npos;

// For absl::StrCat, which Debian's abseil gives its own string_view.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::size_t SkipSpace(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  return i;
}

// The end of the JSON value that starts at i (after any space), or kBad.
std::size_t ValueEnd(std::string_view s, std::size_t i) {
  i = SkipSpace(s, i);
  if (i >= s.size()) return kBad;
  if (s[i] == '"') {
    for (++i; i < s.size(); ++i) {
      if (s[i] == '\\') {
        ++i;
      } else if (s[i] == '"') {
        return i + 1;
      }
    }
    return kBad;
  }
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      if (s[i] == '"') {
        i = ValueEnd(s, i);
        if (i == kBad) return kBad;
        --i;
      } else if (s[i] == '{' || s[i] == '[') {
        ++depth;
      } else if ((s[i] == '}' || s[i] == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return kBad;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t') {
    ++i;
  }
  return i;
}

struct Member {
  std::string_view name;  // as written, quotes included
  std::string_view text;  // the whole member: "name": value
  std::size_t value = 0;  // where its value starts in the document
};

// The members of the object (or, with names empty, the elements of the array) that starts at i;
// *close: the offset of its closing bracket. False when it is not well formed.
bool Children(std::string_view s, std::size_t i, std::vector<Member>* out, std::size_t* close) {
  i = SkipSpace(s, i);
  if (i >= s.size() || (s[i] != '{' && s[i] != '[')) return false;
  const bool object = s[i] == '{';
  const char end = object ? '}' : ']';
  i = SkipSpace(s, i + 1);
  while (i < s.size() && s[i] != end) {
    Member member;
    const std::size_t start = i;
    if (object) {
      const std::size_t name_end = ValueEnd(s, i);
      if (name_end == kBad || s[i] != '"') return false;
      member.name = s.substr(i, name_end - i);
      i = SkipSpace(s, name_end);
      if (i >= s.size() || s[i] != ':') return false;
      ++i;
    }
    member.value = SkipSpace(s, i);
    const std::size_t value_end = ValueEnd(s, i);
    if (value_end == kBad) return false;
    member.text = s.substr(start, value_end - start);
    out->push_back(member);
    i = SkipSpace(s, value_end);
    if (i < s.size() && s[i] == ',') i = SkipSpace(s, i + 1);
  }
  if (i >= s.size()) return false;
  *close = i;
  return true;
}

const Member* Find(const std::vector<Member>& members, std::string_view name) {
  for (const Member& member : members) {
    if (member.name == name) return &member;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::string> MergeOpenApi(const std::vector<std::string_view>& documents) {
  std::vector<std::string_view> present;
  for (std::string_view document : documents) {
    if (!document.empty()) present.push_back(document);
  }
  if (present.empty()) return std::string();
  if (present.size() == 1) return std::string(present.front());

  std::vector<std::vector<Member>> tops(present.size());
  std::vector<std::size_t> ends(present.size());
  for (std::size_t d = 0; d < present.size(); ++d) {
    const std::size_t start = SkipSpace(present[d], 0);
    if (start >= present[d].size() || present[d][start] != '{' ||
        !Children(present[d], start, &tops[d], &ends[d])) {
      return absl::InvalidArgumentError(
          absl::StrCat("OpenAPI document ", d + 1, " is not a JSON object"));
    }
  }
  const std::string_view first = present[0];
  // Insertions into the first document, by offset.
  std::vector<std::pair<std::size_t, std::string>> insertions;
  for (const char* key : {"\"paths\"", "\"definitions\"", "\"tags\""}) {
    const bool list = std::string_view(key) == "\"tags\"";
    std::vector<Member> have;
    std::size_t close = 0;
    const Member* own = Find(tops[0], key);
    if (own != nullptr && !Children(first, own->value, &have, &close)) {
      return absl::InvalidArgumentError(absl::StrCat("OpenAPI document 1: ", key, " is malformed"));
    }
    std::set<std::string_view> names;
    for (const Member& member : have) names.insert(list ? member.text : member.name);
    std::string added;
    for (std::size_t d = 1; d < present.size(); ++d) {
      const Member* theirs = Find(tops[d], key);
      if (theirs == nullptr) continue;
      std::vector<Member> children;
      std::size_t their_close = 0;
      if (!Children(present[d], theirs->value, &children, &their_close)) {
        return absl::InvalidArgumentError(
            absl::StrCat("OpenAPI document ", d + 1, ": ", key, " is malformed"));
      }
      for (const Member& child : children) {
        if (!names.insert(list ? child.text : child.name).second) continue;  // kept as it was
        absl::StrAppend(&added, have.empty() && added.empty() ? "" : ",", A(child.text));
      }
    }
    if (added.empty()) continue;
    if (own != nullptr) {
      insertions.emplace_back(close, std::move(added));
    } else {
      const char* open = list ? "[" : "{";
      const char* shut = list ? "]" : "}";
      insertions.emplace_back(
          ends[0], absl::StrCat(tops[0].empty() ? "" : ",", key, ":", open, added, shut));
    }
  }
  std::sort(insertions.begin(), insertions.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string merged;
  std::size_t at = 0;
  for (const auto& [offset, text] : insertions) {
    absl::StrAppend(&merged, A(first.substr(at, offset - at)), text);
    at = offset;
  }
  absl::StrAppend(&merged, A(first.substr(at)));
  return merged;
}

}  // namespace hotpath::gateway
