#include "server/catalog/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdio>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/rpc/status.h"

namespace hotpath::catalog {
namespace {

constexpr std::size_t kMacBytes = 16;
constexpr char kVersion[] = "1";
constexpr char kSeparator = '\x1f';  // ASCII unit separator: never in an id, rank or category

absl::Status BadToken(absl::string_view why) {
  rpc::FieldViolations violations;
  violations.Add("page_token", std::string(why));
  return violations.ToStatus();
}

}  // namespace

PageTokenCodec::PageTokenCodec(std::string secret) : secret_(std::move(secret)) {
  if (secret_.empty()) {
    secret_.resize(32);
    RAND_bytes(reinterpret_cast<unsigned char*>(secret_.data()), static_cast<int>(secret_.size()));
  }
}

std::string PageTokenCodec::Mac(absl::string_view payload, absl::string_view scope) const {
  const std::string message = absl::StrCat(scope, absl::string_view("\0", 1), payload);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), kMacBytes);
}

std::string RankText(float rank) {
  char buffer[32];  // 9 significant digits: enough for any float to survive a round trip
  std::snprintf(buffer, sizeof buffer, "%.9g", static_cast<double>(rank));
  return buffer;
}

std::string PageTokenCodec::Encode(const PageCursor& cursor, absl::string_view scope) const {
  const std::string rank = cursor.last_rank.has_value() ? RankText(*cursor.last_rank) : "";
  const std::string payload =
      absl::StrCat(kVersion, std::string(1, kSeparator), cursor.last_id, std::string(1, kSeparator),
                   rank, std::string(1, kSeparator), cursor.last_category);
  return absl::WebSafeBase64Escape(absl::StrCat(payload, Mac(payload, scope)));
}

absl::StatusOr<PageCursor> PageTokenCodec::Decode(absl::string_view token,
                                                  absl::string_view scope) const {
  std::string raw;
  if (token.size() > 1024 || !absl::WebSafeBase64Unescape(token, &raw) || raw.size() <= kMacBytes) {
    return BadToken("is not a page token issued by this service");
  }
  const absl::string_view payload(raw.data(), raw.size() - kMacBytes);
  const std::string expected = Mac(payload, scope);
  if (CRYPTO_memcmp(expected.data(), raw.data() + payload.size(), kMacBytes) != 0) {
    return BadToken("was altered, or belongs to a request with other filters");
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(payload, kSeparator);
  PageCursor cursor;
  if (parts.size() != 4 || parts[0] != kVersion || !absl::SimpleAtoi(parts[1], &cursor.last_id)) {
    return BadToken("has an unknown format");
  }
  if (!parts[2].empty()) {
    float rank;
    if (!absl::SimpleAtof(parts[2], &rank)) return BadToken("has an unknown format");
    cursor.last_rank = rank;
  }
  cursor.last_category = std::string(parts[3]);
  return cursor;
}

}  // namespace hotpath::catalog
