// The demo catalog: item n (1-based) is the same row shared/peers/schema.sql makes, so hotpath and
// its peers are measured on the same data (tags de-duplicated: an item's tags are a set here).
#pragma once

#include <cstdint>

#include "hotpath/catalog/v1/catalog.pb.h"

namespace hotpath::client {

hotpath::catalog::v1::Item DemoItem(std::int64_t n);

}  // namespace hotpath::client
