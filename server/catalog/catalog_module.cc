#include "server/catalog/catalog_module.h"

#include "hotpath/catalog/v1/catalog.grpc.pb.h"

namespace hotpath::catalog {

absl::Status CatalogModule::Start(const module::ModuleContext& context) {
  tokens_ = std::make_unique<PageTokenCodec>(options_.page_token_secret);
  store_ = std::make_unique<PgItemStore>(context.pool, context.read_replicas);
  service_ = std::make_unique<CatalogService>(store_.get(), tokens_.get(), context.scheduler,
                                              options_.cache, context.read_scheduler);
  CatalogService* catalog = service_.get();
  catalog->set_max_answer_bytes(context.max_message_bytes);
  if (context.announce) {
    catalog->set_announce([announce = context.announce](std::string_view payload) {
      announce(CatalogService::kChangeChannel, payload);
    });
  }
  bindings_ = rpc::ServiceBindings::For<v1::CatalogService>(context.executor);
  // One line per method. Cached reads answer a hit on the calling thread; the rest run on the
  // executor, where a client that departs cancels their statements.
  const auto held = [](const void* cache) {
    return cache != nullptr ? rpc::Answers::kHeld : rpc::Answers::kBuilt;
  };
  (*bindings_)
      .OnExecutor("CreateItem", catalog, &CatalogService::CreateItem)
      .Cached("GetItem", catalog, &CatalogService::GetItem, held(catalog->item_cache()))
      .Cached("BatchGetItems", catalog, &CatalogService::BatchGetItems, rpc::Answers::kBuilt)
      .OnExecutor("UpdateItem", catalog, &CatalogService::UpdateItem)
      .OnExecutor("DeleteItem", catalog, &CatalogService::DeleteItem)
      .OnExecutor("SearchItems", catalog, &CatalogService::SearchItems)
      .Cached("GetCategoryStats", catalog, &CatalogService::GetCategoryStats,
              held(catalog->category_stats_cache()))
      .ServerStream("ExportItems", catalog, &CatalogService::ExportItems)
      .ClientStream("ImportItems", catalog, &CatalogService::ImportItems, kImportBatchSize);
  if (catalog->list_cache() != nullptr || catalog->list_reads() != nullptr) {
    // Pages from the cache, or one read shared by identical lists: a departing client leaves it
    // to the others (it ends by the latest of their deadlines).
    bindings_->Cached("ListItems", catalog, &CatalogService::ListItems, rpc::Answers::kHeld);
  } else {
    bindings_->OnExecutor("ListItems", catalog, &CatalogService::ListItemsNow);
  }
  return bindings_->Check();
}

std::vector<db::ChangeSubscription> CatalogModule::ChangeSubscriptions() {
  if (service_->item_cache() == nullptr && service_->list_cache() == nullptr) return {};
  CatalogService* catalog = service_.get();
  return {{.channel = CatalogService::kChangeChannel,
           .on_change = [catalog](
                            std::string_view payload,
                            std::uint64_t position) { catalog->OnItemsChanged(payload, position); },
           .on_lost = [catalog](absl::Duration max_age) { catalog->DistrustCaches(max_age); },
           .on_restored = [catalog] { catalog->TrustCaches(); }}};
}

std::vector<cache::CacheProbe> CatalogModule::Caches() const {
  std::vector<cache::CacheProbe> caches;
  if (const auto* items = service_->item_cache()) caches.push_back(items->probe());
  if (const auto* stats = service_->category_stats_cache()) caches.push_back(stats->probe());
  if (const auto* lists = service_->list_cache()) caches.push_back(lists->probe());
  return caches;
}

}  // namespace hotpath::catalog
