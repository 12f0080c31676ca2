#include "client/staleness.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/demo_items.h"
#include "hotpath/catalog/v1/catalog.grpc.pb.h"

namespace hotpath::client {
namespace {

namespace v1 = catalog::v1;

std::unique_ptr<v1::CatalogService::Stub> StubFor(const std::string& addr) {
  return v1::CatalogService::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
}

void WithDeadline(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
}

double Percentile(std::vector<double> sorted, double p) {
  if (sorted.empty()) return 0;
  const std::size_t at = std::min(sorted.size() - 1, static_cast<std::size_t>(p * sorted.size()));
  return sorted[at];
}

}  // namespace

int RunStaleness(const StalenessOptions& options) {
  auto writer = StubFor(options.write_addr);
  auto reader = StubFor(options.read_addr);
  // One item of its own, read once through B so that B holds it in its cache.
  v1::CreateItemRequest create;
  *create.mutable_item() = DemoItem(absl::ToUnixNanos(absl::Now()) % 1'000'000'000);
  create.mutable_item()->set_sku(absl::StrFormat("STALENESS-%d", absl::ToUnixNanos(absl::Now())));
  v1::Item item;
  {
    grpc::ClientContext context;
    WithDeadline(context);
    if (grpc::Status s = writer->CreateItem(&context, create, &item); !s.ok()) {
      std::fprintf(stderr, "staleness: create failed: %s\n", s.error_message().c_str());
      return 2;
    }
  }
  std::vector<double> ms;
  int missed = 0;
  for (int probe = 1; probe <= options.probes; ++probe) {
    v1::GetItemRequest get;
    get.set_id(item.id());
    {
      grpc::ClientContext context;
      WithDeadline(context);
      v1::Item cached;
      reader->GetItem(&context, get, &cached);  // B caches the current row
    }
    v1::UpdateItemRequest update;
    update.mutable_item()->set_id(item.id());
    update.mutable_item()->set_stock(probe);
    update.mutable_update_mask()->add_paths("stock");
    v1::Item updated;
    grpc::ClientContext context;
    WithDeadline(context);
    if (grpc::Status s = writer->UpdateItem(&context, update, &updated); !s.ok()) {
      std::fprintf(stderr, "staleness: update failed: %s\n", s.error_message().c_str());
      return 2;
    }
    const absl::Time committed = absl::Now();
    absl::Duration seen = options.give_up;
    while (absl::Now() - committed < options.give_up) {
      grpc::ClientContext read_context;
      WithDeadline(read_context);
      v1::Item now;
      if (reader->GetItem(&read_context, get, &now).ok() && now.stock() == probe) {
        seen = absl::Now() - committed;
        break;
      }
      absl::SleepFor(options.poll);
    }
    if (seen >= options.give_up) ++missed;
    ms.push_back(absl::ToDoubleMilliseconds(seen));
    absl::SleepFor(options.interval);
  }
  std::sort(ms.begin(), ms.end());
  const double p50 = Percentile(ms, 0.5), p99 = Percentile(ms, 0.99), max = ms.back();
  if (options.json) {
    std::printf(
        "{\"probes\":%d,\"missed\":%d,\"staleness_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
        options.probes, missed, p50, p99, max);
  } else {
    std::printf(
        "%d probes, %d not seen within %s; staleness p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
        options.probes, missed, absl::FormatDuration(options.give_up).c_str(), p50, p99, max);
  }
  return missed == 0 ? 0 : 1;
}

}  // namespace hotpath::client
