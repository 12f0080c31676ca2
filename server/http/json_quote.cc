#include "server/http/json_quote.h"

#include <array>
#include <cstdio>
#include <string>
#include <utility>

namespace hotpath::http {
namespace {

// Whether protobuf 3.21's JSON printer writes code point cp (past ASCII) as \u escapes
// (util/internal/json_escaping.cc): the C1 controls, and format characters that are invisible in
// text or reorder it (soft hyphen, Arabic and Syriac marks, zero-width and direction marks, the
// line and paragraph separators, word joiners, the byte order mark, interlinear annotations,
// musical formatting, language tags).
constexpr bool ProtobufEscapes(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || (cp >= 0x600 && cp <= 0x603) || cp == 0x6dd ||
         cp == 0x70f || cp == 0x17b4 || cp == 0x17b5 || (cp >= 0x200b && cp <= 0x200f) ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
         (cp >= 0x206a && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
         (cp >= 0x1d173 && cp <= 0x1d17a) || cp == 0xe0001 || (cp >= 0xe0020 && cp <= 0xe007f);
}

// Bytes that need a look: ASCII that is escaped, and the lead bytes of the UTF-8 sequences that
// may encode a code point ProtobufEscapes (U+0080-00BF, U+0600-063F, U+06C0-073F, U+1000-1FFF,
// U+2000-2FFF, U+F000-FFFF, U+10000-3FFFF, U+C0000-FFFFF). Everything else is copied as it is.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  for (unsigned char c : {'"', '\\', '<', '>', '\x7f'}) table[c] = true;
  for (int c : {0xc2, 0xd8, 0xdb, 0xdc, 0xe1, 0xe2, 0xef, 0xf0, 0xf3}) table[c] = true;
  return table;
}();

void AppendEscape(char32_t unit, std::string* out) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(unit));
  out->append(buffer);
}

// The code point of the UTF-8 sequence at s[i] (lead byte at least 0xc2) and its length; length 0
// when the bytes there are not a whole sequence.
std::pair<char32_t, std::size_t> Decode(absl::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char lead = byte(0);
  const std::size_t length = lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
  if (i + length > s.size()) return {0, 0};
  char32_t cp = lead & (0xff >> (length + 1));
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(k) & 0xc0) != 0x80) return {0, 0};
    cp = (cp << 6) | (byte(k) & 0x3f);
  }
  return {cp, length};
}

}  // namespace

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!kNeedsEscape[c]) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        continue;
      case '\\':
        out->append("\\\\");
        continue;
      case '\b':
        out->append("\\b");
        continue;
      case '\f':
        out->append("\\f");
        continue;
      case '\n':
        out->append("\\n");
        continue;
      case '\r':
        out->append("\\r");
        continue;
      case '\t':
        out->append("\\t");
        continue;
      case '<':
        out->append("\\u003c");
        continue;
      case '>':
        out->append("\\u003e");
        continue;
      default:
        break;
    }
    if (c >= 0x80) {
      const auto [cp, length] = Decode(s, i);
      if (length == 0 || !ProtobufEscapes(cp)) {
        out->push_back(static_cast<char>(c));  // a character written as it is
        continue;
      }
      if (cp >= 0x10000) {  // as UTF-16 does: a surrogate pair
        AppendEscape(0xd800 + ((cp - 0x10000) >> 10), out);
        AppendEscape(0xdc00 + ((cp - 0x10000) & 0x3ff), out);
      } else {
        AppendEscape(cp, out);
      }
      i += length - 1;
      run = i + 1;
      continue;
    }
    AppendEscape(c, out);
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

std::string JsonQuote(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  AppendJsonString(text, &out);
  return out;
}

}  // namespace hotpath::http
