// A service as hotpathd runs it: everything the service brings (schema migrations, prepared
// statements, caches, its methods, its OpenAPI document) behind one interface, so hotpathd takes a
// list of modules and knows none of them. A module is built from its own options before hotpathd
// starts; Start gives it the shared pool and executor. See README "Adding a service" and
// tests/library/library_module.cc, the smallest complete one.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "server/cache/ttl_cache.h"
#include "server/db/change_feed.h"
#include "server/db/migrations.h"
#include "server/db/pg_pool.h"
#include "server/db/read_replicas.h"
#include "server/rpc/executor.h"
#include "server/rpc/service_bindings.h"

namespace hotpath::module {

// What hotpathd shares with every module. Everything here outlives the module's calls.
struct ModuleContext {
  db::PgPool* pool = nullptr;  // the database, with every module's statements prepared
  // Hot standbys to read from (their pools prepare the same statements); null: none, every read
  // goes to pool. A store that reads them keeps read-your-writes (server/db/read_replicas.h).
  db::ReadReplicas* read_replicas = nullptr;
  rpc::Executor* executor = nullptr;  // runs whatever blocks (database work)
  cache::Scheduler scheduler;         // the executor, as caches schedule their loads
  // A few threads at the normal priority for reads that calls wait on and that are bounded in
  // number (a batch loader's queries, cache::BatchLoader): the executor's threads yield to the
  // threads that read and refuse calls, which would leave every caller of a batch behind the load
  // it offers. Empty: use scheduler.
  cache::Scheduler read_scheduler;
  // Tells the other replicas about a write that committed: payload goes out on the NOTIFY channel
  // (server/db/change_announcer.h), batched with others. Null when the change feed is off (the
  // triggers announce every write then). Call after the commit, after invalidating locally.
  std::function<void(std::string_view channel, std::string_view payload)> announce;
  // The largest message a gRPC call may answer (--max_message_bytes). A module keeps its answers
  // under it: a page stops short (with a next page token), a batch that cannot fit is refused
  // naming the limit. An answer over it ends the call INTERNAL (rpc::OversizeAnswer).
  std::size_t max_message_bytes = 4 * 1024 * 1024;
};

class ServiceModule {
 public:
  virtual ~ServiceModule() = default;

  // Schema migrations, applied at start in this order, after those of the modules listed before
  // it. Versions are recorded in schema_migrations, so they must be unique among all modules.
  virtual std::vector<db::Migration> Migrations() const { return {}; }
  // Prepared on every connection of the pool; names unique among all modules.
  virtual std::vector<db::PreparedStatement> Statements() const { return {}; }

  // Builds the service on the shared pool and executor and declares its methods. Once, before
  // anything below is asked for.
  virtual absl::Status Start(const ModuleContext& context) = 0;
  // Its methods, each declared once (gRPC calls and in-process gateway handlers).
  virtual rpc::ServiceBindings& bindings() = 0;
  // Its caches, reported by /metrics as hotpath_cache_*{cache="name"}.
  virtual std::vector<cache::CacheProbe> Caches() const { return {}; }
  // What keeps its caches coherent with writes made elsewhere (other replicas, psql): NOTIFY
  // channels its migrations' triggers send on, and what to do with each payload, a lost feed and
  // a restored one (server/db/change_feed.h). After Start.
  virtual std::vector<db::ChangeSubscription> ChangeSubscriptions() { return {}; }
  // Its protoc-gen-swagger document (OpenAPI 2 JSON, from its protos' comments): where the
  // gateway's documents (gateway/openapi.h) take summaries and descriptions; empty: none.
  virtual std::string_view OpenApiJson() const { return {}; }
};

using ServiceModules = std::vector<std::unique_ptr<ServiceModule>>;

}  // namespace hotpath::module
