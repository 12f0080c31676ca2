#include "server/catalog/catalog_api.h"

#include "hotpath/catalog/v1/catalog.pb.h"

namespace hotpath::catalog {

const google::protobuf::ServiceDescriptor* CatalogServiceDescriptor() {
  return v1::Item::descriptor()->file()->FindServiceByName("CatalogService");
}

}  // namespace hotpath::catalog
