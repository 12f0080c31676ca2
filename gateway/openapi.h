// /openapi.json over several services: their OpenAPI 2 documents merged into one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace hotpath::gateway {

// One document describing every path of documents: the first document with the others' paths,
// definitions and tags added (a path or definition already there is kept). Empty documents are
// skipped; a single document comes back byte for byte, and the first one's text is kept as it is
// around what is added. INVALID_ARGUMENT when one is not a JSON object.
absl::StatusOr<std::string> MergeOpenApi(const std::vector<std::string_view>& documents);

}  // namespace hotpath::gateway
