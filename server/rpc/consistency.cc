#include "server/rpc/consistency.h"

#include <charconv>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace hotpath::rpc {

std::string Consistency::Format(std::uint64_t position) {
  return absl::AsciiStrToUpper(
      absl::StrCat(absl::Hex(position >> 32), "/", absl::Hex(position & 0xffffffffu)));
}

std::uint64_t Consistency::Parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash > 8 || text.size() - slash - 1 > 8 ||
      text.size() == slash + 1) {
    return 0;
  }
  const auto hex = [](std::string_view digits, std::uint64_t* value) {
    const auto [end, error] =
        std::from_chars(digits.data(), digits.data() + digits.size(), *value, 16);
    return error == std::errc() && end == digits.data() + digits.size();
  };
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  if (!hex(text.substr(0, slash), &high) || !hex(text.substr(slash + 1), &low)) return 0;
  return high << 32 | low;
}

}  // namespace hotpath::rpc
