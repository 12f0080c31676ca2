// The catalog as a hotpathd module: its tables and statements, its caches, its methods (declared
// once each, in catalog_module.cc) and its OpenAPI document.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/catalog/catalog_api.h"
#include "server/catalog/catalog_service.h"
#include "server/catalog/page_token.h"
#include "server/catalog/pg_item_store.h"
#include "server/module/service_module.h"

namespace hotpath::catalog {

// Its schema migrations, from server/catalog/migrations/*.sql, in version order.
const std::vector<db::Migration>& Migrations();

struct CatalogModuleOptions {
  // The caches: items, list pages, category stats (see CatalogCacheOptions).
  CatalogCacheOptions cache;
  // HMAC key for page tokens; empty: random per process (tokens then fail on other replicas).
  std::string page_token_secret;
};

class CatalogModule final : public module::ServiceModule {
 public:
  // Messages per ImportItems batch handed to the database at once.
  static constexpr std::size_t kImportBatchSize = 1000;

  explicit CatalogModule(CatalogModuleOptions options) : options_(std::move(options)) {}

  std::vector<db::Migration> Migrations() const override { return catalog::Migrations(); }
  std::vector<db::PreparedStatement> Statements() const override {
    return PgItemStore::Statements();
  }
  absl::Status Start(const module::ModuleContext& context) override;
  rpc::ServiceBindings& bindings() override { return *bindings_; }
  std::vector<cache::CacheProbe> Caches() const override;
  std::vector<db::ChangeSubscription> ChangeSubscriptions() override;
  std::string_view OpenApiJson() const override { return kCatalogOpenApi; }

  // After Start.
  CatalogService& service() { return *service_; }

 private:
  const CatalogModuleOptions options_;              // as given
  std::unique_ptr<PageTokenCodec> tokens_;          // signs page tokens
  std::unique_ptr<ItemStore> store_;                // the catalog's SQL
  std::unique_ptr<CatalogService> service_;         // the catalog's logic
  std::unique_ptr<rpc::ServiceBindings> bindings_;  // its methods on the wire
};

}  // namespace hotpath::catalog
