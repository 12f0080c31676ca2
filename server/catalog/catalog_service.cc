#include "server/catalog/catalog_service.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/rpc/status.h"

namespace hotpath::catalog {
namespace {

// The request fields a list token is bound to: change any of them and old tokens are refused.
std::string ListScope(const v1::ListItemsRequest& r) {
  return absl::StrCat("list|", r.category(), "|", r.has_min_price_cents() ? absl::StrCat(r.min_price_cents()) : "",
                      "|", r.has_max_price_cents() ? absl::StrCat(r.max_price_cents()) : "", "|",
                      r.order_by());
}

std::string SearchScope(const v1::SearchItemsRequest& r) { return absl::StrCat("search|", r.query()); }

template <class Request>
ItemFilter FilterOf(const Request& r) {
  ItemFilter filter;
  filter.category = r.category();
  if (r.has_min_price_cents()) filter.min_price_cents = r.min_price_cents();
  if (r.has_max_price_cents()) filter.max_price_cents = r.max_price_cents();
  return filter;
}

// A write's unique violation is always the sku: say so plainly.
absl::Status ExplainConflict(const absl::Status& status, const std::string& sku) {
  if (!absl::IsAlreadyExists(status)) return status;
  return absl::AlreadyExistsError(absl::StrCat("an item with sku \"", sku, "\" already exists"));
}

class ExportSource final : public rpc::StreamSource<v1::Item> {
 public:
  ExportSource(ItemStore* store, ItemFilter filter, absl::Time deadline)
      : store_(store), filter_(std::move(filter)), deadline_(deadline) {}

  absl::Status Next(std::vector<v1::Item>* batch, bool* done) override {
    auto items = store_->List(filter_, after_, CatalogService::kExportBatchSize, deadline_);
    if (!items.ok()) return items.status();
    *done = items->size() < static_cast<std::size_t>(CatalogService::kExportBatchSize);
    if (!items->empty()) after_.last_id = items->back().id();
    *batch = *std::move(items);
    return absl::OkStatus();
  }

 private:
  ItemStore* store_;     // where items are read
  ItemFilter filter_;    // which items
  absl::Time deadline_;  // the call's deadline
  PageCursor after_;     // last id sent
};

class ImportSink final : public rpc::StreamSink<v1::CreateItemRequest, v1::ImportItemsResponse> {
 public:
  ImportSink(ItemStore* store, absl::Time deadline) : store_(store), deadline_(deadline) {}

  absl::Status Consume(std::vector<v1::CreateItemRequest>& batch) override {
    std::vector<v1::Item> items;
    items.reserve(batch.size());
    for (auto& request : batch) {
      const std::int64_t index = received_++;
      rpc::FieldViolations violations;
      const std::string prefix = absl::StrCat("items[", index, "]");
      if (!request.has_item()) {
        violations.Add(prefix, "is required");
      } else {
        ValidateItemFields(request.item(), ItemFields::All(), prefix, violations);
      }
      if (!violations.empty()) {
        return rpc::WithMessagePrefix(violations.ToStatus(),
                                      absl::StrCat("item ", index, " rejected, nothing imported: "));
      }
      items.push_back(std::move(*request.mutable_item()));
    }
    if (import_ == nullptr) {
      auto import = store_->BeginImport(deadline_);
      if (!import.ok()) return import.status();
      import_ = *std::move(import);
    }
    return import_->Write(items, received_ - static_cast<std::int64_t>(items.size()));
  }

  absl::StatusOr<v1::ImportItemsResponse> Finish(const std::atomic<bool>& cancelled) override {
    if (cancelled.load() || absl::Now() > deadline_) {
      return absl::CancelledError("import cancelled before it completed; nothing imported");
    }
    v1::ImportItemsResponse response;
    if (import_ == nullptr) return response;  // an empty stream
    auto count = import_->Commit();
    if (!count.ok()) return count.status();
    response.set_imported_count(*count);
    return response;
  }

 private:
  ItemStore* store_;                      // where items go
  absl::Time deadline_;                   // the call's deadline
  std::int64_t received_ = 0;             // messages seen so far
  std::unique_ptr<ItemImport> import_;    // opened with the first batch
};

}  // namespace

absl::StatusOr<v1::Item> CatalogService::CreateItem(const v1::CreateItemRequest& request,
                                                    absl::Time deadline) {
  if (absl::Status s = ValidateCreate(request); !s.ok()) return s;
  auto item = store_->Create(request.item(), deadline);
  if (!item.ok()) return ExplainConflict(item.status(), request.item().sku());
  return item;
}

absl::StatusOr<v1::Item> CatalogService::GetItem(const v1::GetItemRequest& request,
                                                 absl::Time deadline) {
  if (absl::Status s = ValidateGet(request); !s.ok()) return s;
  return store_->Get(request.id(), deadline);
}

absl::StatusOr<v1::BatchGetItemsResponse> CatalogService::BatchGetItems(
    const v1::BatchGetItemsRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateBatchGet(request); !s.ok()) return s;
  auto items = store_->BatchGet({request.ids().begin(), request.ids().end()}, deadline);
  if (!items.ok()) return items.status();
  v1::BatchGetItemsResponse response;
  response.mutable_items()->Reserve(static_cast<int>(items->size()));
  for (auto& item : *items) *response.add_items() = std::move(item);
  return response;
}

absl::StatusOr<v1::ListItemsResponse> CatalogService::ListItems(const v1::ListItemsRequest& request,
                                                                absl::Time deadline) {
  if (absl::Status s = ValidateList(request); !s.ok()) return s;
  const std::string scope = ListScope(request);
  PageCursor after;
  if (!request.page_token().empty()) {
    auto cursor = tokens_->Decode(request.page_token(), scope);
    if (!cursor.ok()) return cursor.status();
    after = *std::move(cursor);
  }
  ItemFilter filter = FilterOf(request);
  filter.order_by_category = request.order_by() == "category,id";
  const int page_size = EffectivePageSize(request.page_size());
  auto items = store_->List(filter, after, page_size + 1, deadline);
  if (!items.ok()) return items.status();
  v1::ListItemsResponse response;
  const bool more = items->size() > static_cast<std::size_t>(page_size);
  if (more) items->pop_back();
  for (auto& item : *items) *response.add_items() = std::move(item);
  if (more) {
    const v1::Item& last = response.items(response.items_size() - 1);
    response.set_next_page_token(
        tokens_->Encode({.last_id = last.id(), .last_category = last.category()}, scope));
  }
  return response;
}

absl::StatusOr<v1::Item> CatalogService::UpdateItem(const v1::UpdateItemRequest& request,
                                                    absl::Time deadline) {
  auto fields = ValidateUpdate(request);
  if (!fields.ok()) return fields.status();
  std::optional<std::int64_t> expected_version;
  if (!request.item().etag().empty()) {
    auto version = ParseEtag(request.item().etag(), "item.etag");
    if (!version.ok()) return version.status();
    expected_version = *version;
  }
  auto item = store_->Update(request.item(), *fields, expected_version, deadline);
  if (!item.ok()) return ExplainConflict(item.status(), request.item().sku());
  return item;
}

absl::StatusOr<v1::DeleteItemResponse> CatalogService::DeleteItem(
    const v1::DeleteItemRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateDelete(request); !s.ok()) return s;
  std::optional<std::int64_t> expected_version;
  if (!request.etag().empty()) {
    auto version = ParseEtag(request.etag(), "etag");
    if (!version.ok()) return version.status();
    expected_version = *version;
  }
  if (absl::Status s = store_->Delete(request.id(), expected_version, deadline); !s.ok()) return s;
  return v1::DeleteItemResponse();
}

absl::StatusOr<v1::SearchItemsResponse> CatalogService::SearchItems(
    const v1::SearchItemsRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateSearch(request); !s.ok()) return s;
  const std::string scope = SearchScope(request);
  std::optional<PageCursor> after;
  if (!request.page_token().empty()) {
    auto cursor = tokens_->Decode(request.page_token(), scope);
    if (!cursor.ok()) return cursor.status();
    after = *std::move(cursor);
  }
  const int page_size = EffectivePageSize(request.page_size());
  auto hits = store_->Search(request.query(), after, page_size + 1, deadline);
  if (!hits.ok()) return hits.status();
  v1::SearchItemsResponse response;
  const bool more = hits->size() > static_cast<std::size_t>(page_size);
  if (more) {
    hits->pop_back();
    response.set_next_page_token(tokens_->Encode(
        {.last_id = hits->back().item.id(), .last_rank = hits->back().rank}, scope));
  }
  for (auto& hit : *hits) *response.add_items() = std::move(hit.item);
  return response;
}

absl::StatusOr<v1::CategoryStats> CatalogService::GetCategoryStats(
    const v1::GetCategoryStatsRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateCategoryStats(request); !s.ok()) return s;
  return store_->CategoryStats(request.category(), deadline);
}

absl::StatusOr<std::unique_ptr<rpc::StreamSource<v1::Item>>> CatalogService::ExportItems(
    const v1::ExportItemsRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateExport(request); !s.ok()) return s;
  return std::make_unique<ExportSource>(store_, FilterOf(request), deadline);
}

std::unique_ptr<rpc::StreamSink<v1::CreateItemRequest, v1::ImportItemsResponse>>
CatalogService::ImportItems(absl::Time deadline) {
  return std::make_unique<ImportSink>(store_, deadline);
}

}  // namespace hotpath::catalog
