// The catalog's logic, one plain method per RPC: validate, call the store, shape the answer.
// Knows nothing of gRPC or HTTP; catalog_rpc.h binds it to the wire.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/catalog/item_store.h"
#include "server/catalog/page_token.h"
#include "server/rpc/streams.h"

namespace hotpath::catalog {

class CatalogService final {
 public:
  // Items per ExportItems batch (one query each).
  static constexpr int kExportBatchSize = 500;

  CatalogService(ItemStore* store, const PageTokenCodec* tokens) : store_(store), tokens_(tokens) {}

  absl::StatusOr<v1::Item> CreateItem(const v1::CreateItemRequest& request, absl::Time deadline);
  absl::StatusOr<v1::Item> GetItem(const v1::GetItemRequest& request, absl::Time deadline);
  absl::StatusOr<v1::BatchGetItemsResponse> BatchGetItems(const v1::BatchGetItemsRequest& request,
                                                          absl::Time deadline);
  absl::StatusOr<v1::ListItemsResponse> ListItems(const v1::ListItemsRequest& request,
                                                  absl::Time deadline);
  absl::StatusOr<v1::Item> UpdateItem(const v1::UpdateItemRequest& request, absl::Time deadline);
  absl::StatusOr<v1::DeleteItemResponse> DeleteItem(const v1::DeleteItemRequest& request,
                                                    absl::Time deadline);
  absl::StatusOr<v1::SearchItemsResponse> SearchItems(const v1::SearchItemsRequest& request,
                                                      absl::Time deadline);
  absl::StatusOr<v1::CategoryStats> GetCategoryStats(const v1::GetCategoryStatsRequest& request,
                                                     absl::Time deadline);

  // Validates now (no I/O); the source reads kExportBatchSize items per Next, in id order.
  absl::StatusOr<std::unique_ptr<rpc::StreamSource<v1::Item>>> ExportItems(
      const v1::ExportItemsRequest& request, absl::Time deadline);
  // An import that validates every item and stores all of them, or none.
  std::unique_ptr<rpc::StreamSink<v1::CreateItemRequest, v1::ImportItemsResponse>> ImportItems(
      absl::Time deadline);

 private:
  ItemStore* store_;               // where items live
  const PageTokenCodec* tokens_;  // signs and checks page tokens
};

}  // namespace hotpath::catalog
