// Binds CatalogService to gRPC's async API: each handler only translates, and every call that
// touches the database runs on the executor.
#pragma once

#include <string>

#include "hotpath/catalog/v1/catalog.grpc.pb.h"
#include "server/catalog/catalog_service.h"
#include "server/rpc/async_calls.h"
#include "server/rpc/async_server.h"
#include "server/rpc/executor.h"
#include "server/rpc/local_handlers.h"

namespace hotpath::catalog {

class CatalogRpc final : public rpc::RpcModule {
 public:
  // Messages per ImportItems batch handed to the database at once.
  static constexpr std::size_t kImportBatchSize = 1000;

  CatalogRpc(CatalogService* catalog, rpc::Executor* executor);

  grpc::Service* service() override { return service_.service(); }
  std::string name() const override { return v1::CatalogService::service_full_name(); }
  void Arm(grpc::ServerCompletionQueue* cq, const rpc::CallOptions& options) override;

  // The unary methods as in-process handlers (same validation, cache and store code).
  rpc::LocalHandlers& local_handlers() { return local_; }

 private:
  template <class Request, class Response>
  using Unary = rpc::UnaryCall<Request, Response>;

  rpc::RawServiceOf<v1::CatalogService::Service> service_;  // the generated service, raw
  Unary<v1::CreateItemRequest, v1::Item>::Method create_item_;
  Unary<v1::GetItemRequest, v1::Item>::Method get_item_;
  Unary<v1::BatchGetItemsRequest, v1::BatchGetItemsResponse>::Method batch_get_items_;
  Unary<v1::ListItemsRequest, v1::ListItemsResponse>::Method list_items_;
  Unary<v1::UpdateItemRequest, v1::Item>::Method update_item_;
  Unary<v1::DeleteItemRequest, v1::DeleteItemResponse>::Method delete_item_;
  Unary<v1::SearchItemsRequest, v1::SearchItemsResponse>::Method search_items_;
  Unary<v1::GetCategoryStatsRequest, v1::CategoryStats>::Method get_category_stats_;
  rpc::ServerStreamCall<v1::ExportItemsRequest, v1::Item>::Method export_items_;
  rpc::ClientStreamCall<v1::CreateItemRequest, v1::ImportItemsResponse>::Method import_items_;
  rpc::LocalHandlers local_;  // the unary methods without gRPC
};

}  // namespace hotpath::catalog
