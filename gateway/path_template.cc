#include "gateway/path_template.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace hotpath::gateway {
namespace {

class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  absl::StatusOr<PathTemplate> Run() {
    PathTemplate t;
    t.text = std::string(text_);
    if (!Consume('/')) return Error("must start with '/'");
    if (absl::Status s = Segments(t, /*in_variable=*/false); !s.ok()) return s;
    if (Consume(':')) {
      t.verb = Literal();
      if (t.verb.empty()) return Error("empty verb");
    }
    if (pos_ != text_.size())
      return Error(absl::StrCat("unexpected '", text_.substr(pos_, 1), "'"));
    for (std::size_t i = 0; i + 1 < t.segments.size(); ++i) {
      if (t.segments[i].kind == PathTemplate::Kind::kMulti) return Error("'**' must be last");
    }
    return t;
  }

 private:
  absl::Status Segments(PathTemplate& t, bool in_variable) {
    do {
      if (absl::Status s = Segment(t, in_variable); !s.ok()) return s;
    } while (Consume('/'));
    return absl::OkStatus();
  }

  absl::Status Segment(PathTemplate& t, bool in_variable) {
    if (Consume('{')) {
      if (in_variable) return Error("nested variable");
      PathTemplate::Variable v;
      v.field_path = FieldPath();
      if (v.field_path.empty()) return Error("variable without a field path");
      v.first_segment = static_cast<int>(t.segments.size());
      if (Consume('=')) {
        if (absl::Status s = Segments(t, true); !s.ok()) return s;
      } else {
        t.segments.push_back({PathTemplate::Kind::kSingle, ""});
      }
      if (!Consume('}')) return Error("missing '}'");
      v.end_segment = t.segments.back().kind == PathTemplate::Kind::kMulti
                          ? -1
                          : static_cast<int>(t.segments.size());
      t.variables.push_back(std::move(v));
      return absl::OkStatus();
    }
    if (Consume('*')) {
      t.segments.push_back(
          {Consume('*') ? PathTemplate::Kind::kMulti : PathTemplate::Kind::kSingle, ""});
      return absl::OkStatus();
    }
    std::string literal = Literal();
    if (literal.empty()) return Error("empty segment");
    t.segments.push_back({PathTemplate::Kind::kLiteral, std::move(literal)});
    return absl::OkStatus();
  }

  std::string Literal() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '/' && text_[pos_] != ':' && text_[pos_] != '{' &&
           text_[pos_] != '}' && text_[pos_] != '*' && text_[pos_] != '=') {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  std::string FieldPath() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() &&
           (absl::ascii_isalnum(text_[pos_]) || text_[pos_] == '_' || text_[pos_] == '.')) {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  bool Consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  absl::Status Error(absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("bad path template \"", text_, "\" at ", pos_, ": ", why));
  }

  absl::string_view text_;  // the template
  std::size_t pos_ = 0;     // next character to read
};

}  // namespace

absl::StatusOr<PathTemplate> PathTemplate::Parse(absl::string_view text) {
  return Parser(text).Run();
}

}  // namespace hotpath::gateway
