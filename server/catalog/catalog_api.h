// The catalog's contract as the runtime needs it: its service descriptor and its OpenAPI document.
// Shared by the catalog module and the standalone gateway, which serves the contract without the
// service.
#pragma once

#include <google/protobuf/descriptor.h>

namespace hotpath::catalog {

// hotpath.catalog.v1.CatalogService (naming it links its descriptors in).
const google::protobuf::ServiceDescriptor* CatalogServiceDescriptor();
// The OpenAPI 2 document of hotpath.catalog.v1, generated from the proto by protoc-gen-swagger.
extern const char kCatalogOpenApi[];

}  // namespace hotpath::catalog
