#include "server/catalog/catalog_rpc.h"

#include "absl/strings/str_cat.h"

namespace hotpath::catalog {
namespace {

// A unary handler that runs (catalog->*method)(request, deadline) on the executor.
template <class Request, class Response>
auto OnExecutor(CatalogService* catalog, rpc::Executor* executor,
                absl::StatusOr<Response> (CatalogService::*method)(const Request&, absl::Time)) {
  return [=](grpc::ServerContext& context, const Request& request,
             rpc::UnaryResponder<Response> responder) {
    const absl::Time deadline = rpc::DeadlineOf(context);
    // The call, and so request, lives until the responder answers.
    rpc::RunOnExecutor(*executor, std::move(responder), [catalog, method, &request, deadline] {
      return (catalog->*method)(request, deadline);
    });
  };
}

// A unary handler for the cached reads: a hit answers here, on the completion-queue thread.
template <class Request, class Response>
auto Cached(CatalogService* catalog,
            void (CatalogService::*method)(const Request&, absl::Time,
                                           CatalogService::Done<Response>)) {
  return [=](grpc::ServerContext& context, const Request& request,
             rpc::UnaryResponder<Response> responder) {
    auto shared = std::make_shared<rpc::UnaryResponder<Response>>(std::move(responder));
    (catalog->*method)(request, rpc::DeadlineOf(context),
                       [shared](const absl::StatusOr<std::shared_ptr<const Response>>& result) {
                         if (result.ok()) {
                           shared->Finish(**result);
                         } else {
                           shared->Finish(rpc::ToGrpcStatus(result.status()));
                         }
                       });
  };
}

// The local form of an executor method.
template <class Request, class Response>
rpc::LocalHandler LocalOnExecutor(CatalogService* catalog, rpc::Executor* executor,
                                  absl::StatusOr<Response> (CatalogService::*method)(const Request&,
                                                                                     absl::Time)) {
  return [=](const google::protobuf::Message& message, const rpc::LocalCall& call,
             rpc::LocalDone done) {
    const auto& request = static_cast<const Request&>(message);
    auto shared = std::make_shared<rpc::LocalDone>(std::move(done));
    const absl::Time deadline = call.deadline;
    const bool queued = executor->Submit(
        [catalog, method, &request, deadline, shared, cancellation = call.cancellation] {
          rpc::Cancellation::Scope scope(cancellation.get());
          const absl::StatusOr<Response> result = (catalog->*method)(request, deadline);
          if (result.ok()) return (*shared)(grpc::Status::OK, &*result, nullptr);
          (*shared)(rpc::ToGrpcStatus(result.status()), nullptr, nullptr);
        });
    if (!queued) (*shared)(rpc::ExecutorRefusedStatus(), nullptr, nullptr);
  };
}

// The local form of a cached method: a hit answers on the caller's thread. from_cache: its answers
// are the objects a cache holds (rpc::LocalDone's shared), not assembled per call.
template <class Request, class Response>
rpc::LocalHandler LocalCached(CatalogService* catalog,
                              void (CatalogService::*method)(const Request&, absl::Time,
                                                             CatalogService::Done<Response>),
                              bool from_cache) {
  return [=](const google::protobuf::Message& message, const rpc::LocalCall& call,
             rpc::LocalDone done) {
    (catalog->*method)(static_cast<const Request&>(message), call.deadline,
                       [done = std::move(done),
                        from_cache](const absl::StatusOr<std::shared_ptr<const Response>>& r) {
                         if (!r.ok()) return done(rpc::ToGrpcStatus(r.status()), nullptr, nullptr);
                         if (from_cache) return done(grpc::Status::OK, r->get(), *r);
                         done(grpc::Status::OK, r->get(), nullptr);
                       });
  };
}

const google::protobuf::ServiceDescriptor* CatalogDescriptor() {
  return google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      v1::CatalogService::service_full_name());
}

const google::protobuf::MethodDescriptor* Method(const char* name) {
  return CatalogDescriptor()->FindMethodByName(name);
}

}  // namespace

CatalogRpc::CatalogRpc(CatalogService* catalog, rpc::Executor* executor)
    : service_(CatalogDescriptor()),
      create_item_{&service_, Method("CreateItem"),
                   OnExecutor(catalog, executor, &CatalogService::CreateItem),
                   /*cancellable=*/true},
      get_item_{&service_, Method("GetItem"), Cached(catalog, &CatalogService::GetItem)},
      batch_get_items_{&service_, Method("BatchGetItems"),
                       Cached(catalog, &CatalogService::BatchGetItems)},
      // Pages cached: a hit answers on the completion-queue thread. Not cached: the query runs on
      // the executor, and a client that cancels cancels it.
      list_items_{&service_, Method("ListItems"),
                  catalog->list_cache() != nullptr
                      ? Unary<v1::ListItemsRequest, v1::ListItemsResponse>::Handler(
                            Cached(catalog, &CatalogService::ListItems))
                      : OnExecutor(catalog, executor, &CatalogService::ListItemsNow),
                  /*cancellable=*/catalog->list_cache() == nullptr},
      update_item_{&service_, Method("UpdateItem"),
                   OnExecutor(catalog, executor, &CatalogService::UpdateItem),
                   /*cancellable=*/true},
      delete_item_{&service_, Method("DeleteItem"),
                   OnExecutor(catalog, executor, &CatalogService::DeleteItem),
                   /*cancellable=*/true},
      search_items_{&service_, Method("SearchItems"),
                    OnExecutor(catalog, executor, &CatalogService::SearchItems),
                    /*cancellable=*/true},
      get_category_stats_{&service_, Method("GetCategoryStats"),
                          Cached(catalog, &CatalogService::GetCategoryStats)},
      export_items_{&service_, Method("ExportItems"),
                    [catalog](grpc::ServerContext& context, const v1::ExportItemsRequest& request) {
                      return catalog->ExportItems(request, rpc::DeadlineOf(context));
                    },
                    executor},
      import_items_{&service_, Method("ImportItems"),
                    [catalog](grpc::ServerContext& context)
                        -> absl::StatusOr<std::unique_ptr<
                            rpc::StreamSink<v1::CreateItemRequest, v1::ImportItemsResponse>>> {
                      return catalog->ImportItems(rpc::DeadlineOf(context));
                    },
                    executor, kImportBatchSize} {
  local_.Add(Method("CreateItem"), LocalOnExecutor(catalog, executor, &CatalogService::CreateItem));
  local_.Add(Method("GetItem"),
             LocalCached(catalog, &CatalogService::GetItem, catalog->item_cache() != nullptr));
  // Assembled per call from cached items.
  local_.Add(Method("BatchGetItems"),
             LocalCached(catalog, &CatalogService::BatchGetItems, /*from_cache=*/false));
  local_.Add(Method("ListItems"),
             catalog->list_cache() != nullptr
                 ? LocalCached(catalog, &CatalogService::ListItems, /*from_cache=*/true)
                 : LocalOnExecutor(catalog, executor, &CatalogService::ListItemsNow));
  local_.Add(Method("UpdateItem"), LocalOnExecutor(catalog, executor, &CatalogService::UpdateItem));
  local_.Add(Method("DeleteItem"), LocalOnExecutor(catalog, executor, &CatalogService::DeleteItem));
  local_.Add(Method("SearchItems"),
             LocalOnExecutor(catalog, executor, &CatalogService::SearchItems));
  local_.Add(Method("GetCategoryStats"), LocalCached(catalog, &CatalogService::GetCategoryStats,
                                                     catalog->category_stats_cache() != nullptr));
}

void CatalogRpc::Arm(grpc::ServerCompletionQueue* cq, const rpc::CallOptions& options) {
  const int count = options.pending_calls;
  for (int i = 0; i < count; ++i) {
    Unary<v1::CreateItemRequest, v1::Item>::Arm(&create_item_, cq, &options);
    Unary<v1::GetItemRequest, v1::Item>::Arm(&get_item_, cq, &options);
    Unary<v1::BatchGetItemsRequest, v1::BatchGetItemsResponse>::Arm(&batch_get_items_, cq,
                                                                    &options);
    Unary<v1::ListItemsRequest, v1::ListItemsResponse>::Arm(&list_items_, cq, &options);
    Unary<v1::UpdateItemRequest, v1::Item>::Arm(&update_item_, cq, &options);
    Unary<v1::DeleteItemRequest, v1::DeleteItemResponse>::Arm(&delete_item_, cq, &options);
    Unary<v1::SearchItemsRequest, v1::SearchItemsResponse>::Arm(&search_items_, cq, &options);
    Unary<v1::GetCategoryStatsRequest, v1::CategoryStats>::Arm(&get_category_stats_, cq, &options);
  }
  // Streams are long and rare: a few pending calls are plenty.
  for (int i = 0; i < std::max(1, count / 4); ++i) {
    rpc::ServerStreamCall<v1::ExportItemsRequest, v1::Item>::Arm(&export_items_, cq, &options);
    rpc::ClientStreamCall<v1::CreateItemRequest, v1::ImportItemsResponse>::Arm(&import_items_, cq,
                                                                               &options);
  }
}

}  // namespace hotpath::catalog
