#include "server/hotpathd.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/db/migrations.h"

namespace hotpath {

absl::StatusOr<std::unique_ptr<Hotpathd>> Hotpathd::Start(HotpathdOptions options) {
  std::unique_ptr<Hotpathd> d(new Hotpathd());
  if (options.migrate) {
    if (absl::Status s = db::Migrate(options.database.database_url, db::BuiltinMigrations());
        !s.ok()) {
      return s;
    }
  }
  options.database.statements = catalog::ItemStore::Statements();
  const int pool_max = options.database.max_size;
  auto pool = db::PgPool::Create(std::move(options.database));
  if (!pool.ok()) return pool.status();
  d->pool_ = *std::move(pool);
  d->tokens_ = std::make_unique<catalog::PageTokenCodec>(options.page_token_secret);
  d->store_ = std::make_unique<catalog::ItemStore>(d->pool_.get());
  d->executor_ = std::make_unique<rpc::Executor>(
      options.executor_threads > 0 ? options.executor_threads : pool_max, options.executor_queue);
  d->catalog_ = std::make_unique<catalog::CatalogService>(
      d->store_.get(), d->tokens_.get(),
      [executor = d->executor_.get()](std::function<void()> task) {
        return executor->Submit(std::move(task));
      },
      options.cache);
  d->catalog_rpc_ = std::make_unique<catalog::CatalogRpc>(d->catalog_.get(), d->executor_.get());
  d->server_ = std::make_unique<rpc::AsyncServer>(
      rpc::AsyncServerOptions{.address = options.grpc_address,
                              .completion_queues = options.completion_queues,
                              .pending_calls_per_method = options.pending_calls_per_method},
      std::vector<rpc::RpcModule*>{d->catalog_rpc_.get()});
  if (absl::Status s = d->server_->Start(); !s.ok()) return s;
  return d;
}

Hotpathd::~Hotpathd() { Shutdown(absl::ZeroDuration()); }

void Hotpathd::Shutdown(absl::Duration grace) {
  if (stopped_) return;
  stopped_ = true;
  if (server_ != nullptr) server_->Shutdown(grace);
  if (executor_ != nullptr) executor_->Stop();
  if (server_ != nullptr) server_->StopPolling();
  if (pool_ != nullptr) pool_->Close();
}

}  // namespace hotpath
