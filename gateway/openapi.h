// The OpenAPI 2 document of hotpath.catalog.v1, generated at build time by protoc-gen-swagger.
#pragma once

namespace hotpath::gateway {

extern const char kCatalogOpenApi[];

}  // namespace hotpath::gateway
