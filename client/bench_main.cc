// hotpath-bench: a gRPC load generator for the catalog, in the spirit of ghz.
//
//   hotpath-bench --method=get --ids=10000 --concurrency=64 --connections=4 --duration=10s
//   hotpath-bench --method=get --rate=20000 --duration=10s        # open loop, fixed arrival rate
//   hotpath-bench --method=get --path=/ceilbench.Ceil/Get ...      # a peer with the same request
//   hotpath-bench --method=staleness --addr=A --read_addr=B        # replica coherence
//   (staleness.h)
//
// Closed loop (default): `concurrency` calls are kept in flight; each completion starts the next.
// Open loop (--rate): calls start on a fixed schedule whatever the server does, and latency is
// measured from each call's intended start, so a stall shows in the percentiles instead of
// silently lowering the offered load (no coordinated omission).
//
// Requests are built with the generated messages and sent through the generic stub as bytes;
// responses are counted, not decoded, so the client spends its CPU on load, not on parsing.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/demo_items.h"
#include "client/latency_histogram.h"
#include "client/staleness.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/app/flag_ranges.h"
#include "server/app/mutexes.h"
#include "server/rpc/grpc_handoff.h"

ABSL_FLAG(std::string, addr, "localhost:50051", "server address");
ABSL_FLAG(std::string, method, "get",
          "get (GetItem, random ids), batch (BatchGetItems), list (ListItems), search "
          "(SearchItems), stats (GetCategoryStats), create (CreateItem, unique skus), staleness "
          "(writes through --addr, reads through --read_addr)");
ABSL_FLAG(std::string, path, "",
          "send --method's requests to this method instead (\"/pkg.Service/Method\"), for a peer "
          "server whose method takes the same request, e.g. the gRPC ceilings' /ceilbench.Ceil/Get "
          "for --method=get");
ABSL_FLAG(int, ids, 10000, "get/batch: ids are drawn uniformly from 1..ids");
ABSL_FLAG(int, batch_size, 10, "batch: ids per BatchGetItems");
ABSL_FLAG(int, page_size, 50, "list/search: page size");
ABSL_FLAG(std::string, query, "item", "search: the query");
ABSL_FLAG(int, concurrency, 64, "closed loop: calls in flight; open loop: the cap on them");
ABSL_FLAG(int, connections, 4, "HTTP/2 connections (separate channels), used round-robin");
// One by default: with two, the threads wake each other to hand over completions (2.1-2.5 context
// switches a call in open loop against 0.6, about 10 us more CPU a call, at the same closed-loop
// peak; bench/NOTES.md).
ABSL_FLAG(int, threads, 1, "completion-queue threads of the client");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to measure (unless --requests)");
ABSL_FLAG(int64_t, requests, 0, "stop after this many measured calls instead of --duration");
ABSL_FLAG(double, rate, 0, "open loop: calls per second (0: closed loop)");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "load before measuring, not counted");
ABSL_FLAG(bool, gzip, true, "accept gzip responses (false: identity only)");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(5), "deadline of each call");
ABSL_FLAG(bool, latency_from_send, false,
          "open loop: measure latency from when a call is sent, not from when it was due (shows "
          "the server's share when the client itself cannot keep up with --rate)");
ABSL_FLAG(std::string, token, "",
          "bearer token sent with every call (create on a server with tokens)");
ABSL_FLAG(bool, json, false, "print the report as one JSON object");
ABSL_FLAG(absl::Duration, window, absl::ZeroDuration(),
          "also report p99 and max per window of this length (by each call's start), to see when "
          "a tail forms; keeps 16 bytes a call; at least 1ms, at most 100000 windows; 0: none");
ABSL_FLAG(std::string, read_addr, "",
          "staleness: the replica whose answers are watched (writes go to --addr)");
ABSL_FLAG(int, probes, 200, "staleness: writes measured");
ABSL_FLAG(absl::Duration, poll, absl::Microseconds(500), "staleness: between reads of --read_addr");
ABSL_FLAG(std::string, sku_prefix, "", "create: sku prefix (default: BENCH-<pid>-)");

namespace {

namespace v1 = hotpath::catalog::v1;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kMaxWindows = 100000;  // --window's bound

// The canonical name ("NOT_FOUND"): gRPC's codes are absl's.
std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Builds one request of the chosen method, as bytes.
class RequestMaker {
 public:
  RequestMaker() : sku_prefix_(absl::GetFlag(FLAGS_sku_prefix)) {
    if (sku_prefix_.empty()) sku_prefix_ = absl::StrCat("BENCH-", getpid(), "-");
    const std::string m = absl::GetFlag(FLAGS_method);
    const std::string service = "/hotpath.catalog.v1.CatalogService/";
    if (m == "get")
      path_ = service + "GetItem";
    else if (m == "batch")
      path_ = service + "BatchGetItems";
    else if (m == "list")
      path_ = service + "ListItems";
    else if (m == "search")
      path_ = service + "SearchItems";
    else if (m == "stats")
      path_ = service + "GetCategoryStats";
    else if (m == "create")
      path_ = service + "CreateItem";
    method_ = m;
    if (!path_.empty() && !absl::GetFlag(FLAGS_path).empty()) path_ = absl::GetFlag(FLAGS_path);
  }
  bool valid() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  std::string Make(std::mt19937_64& random) {
    std::uniform_int_distribution<std::int64_t> id(1, absl::GetFlag(FLAGS_ids));
    if (method_ == "get") {
      v1::GetItemRequest r;
      r.set_id(id(random));
      return r.SerializeAsString();
    }
    if (method_ == "batch") {
      v1::BatchGetItemsRequest r;
      for (int i = 0; i < absl::GetFlag(FLAGS_batch_size); ++i) r.add_ids(id(random));
      return r.SerializeAsString();
    }
    if (method_ == "list") {
      v1::ListItemsRequest r;
      r.set_page_size(absl::GetFlag(FLAGS_page_size));
      return r.SerializeAsString();
    }
    if (method_ == "search") {
      v1::SearchItemsRequest r;
      r.set_query(absl::GetFlag(FLAGS_query));
      r.set_page_size(absl::GetFlag(FLAGS_page_size));
      return r.SerializeAsString();
    }
    if (method_ == "stats") {
      v1::GetCategoryStatsRequest r;
      r.set_category(absl::StrCat("cat-", id(random) % 20));
      return r.SerializeAsString();
    }
    v1::CreateItemRequest r;  // create
    const std::int64_t n = next_sku_.fetch_add(1);
    *r.mutable_item() = hotpath::client::DemoItem(n + 1);
    r.mutable_item()->set_sku(absl::StrCat(sku_prefix_, n));
    return r.SerializeAsString();
  }

 private:
  std::string method_;                     // the --method flag
  std::string path_;                       // "/pkg.Service/Method"
  std::string sku_prefix_;                 // create: unique per run
  std::atomic<std::int64_t> next_sku_{0};  // create: next sku number
};

// What each completion-queue thread measures.
struct ThreadStats {
  hotpath::client::LatencyHistogram latency;       // measured calls only
  hotpath::client::LatencyHistogram ok_latency;    // measured calls answered OK
  hotpath::client::LatencyHistogram send_lag;      // open loop: how late each call was sent
  std::map<grpc::StatusCode, std::int64_t> codes;  // by final status
  std::int64_t bytes = 0;                          // response bytes
  // With --window: each measured call's start and latency (ns), for the per-window report.
  std::vector<std::pair<Clock::time_point, std::int64_t>> timeline;
};

struct Shared {
  RequestMaker maker;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;  // one per connection
  std::atomic<std::int64_t> next_stub{0};
  std::atomic<bool> measuring{false};
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> measured{0};
  std::atomic<std::int64_t> outstanding{0};
  std::atomic<std::int64_t> dropped{0};  // open loop: calls not sent because the cap was reached
  bool timeline = false;                 // --window set: ThreadStats::timeline is kept
  std::int64_t max_requests = 0;
  absl::Duration deadline;
  std::string authorization;  // "Bearer <token>", or empty
};

// One call in flight; its tag on the completion queue.
struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  Clock::time_point start;  // intended start (open loop) or actual start (closed loop)
  Clock::time_point sent;   // when the client sent it: after start when the pacer ran late
  bool counted = false;     // started while measuring
  bool closed_loop = true;  // start another on completion
};

void StartCall(Shared& shared, grpc::CompletionQueue* cq, std::mt19937_64& random,
               Clock::time_point start, bool closed_loop) {
  auto* call = new Call();
  call->start = start;
  call->closed_loop = closed_loop;
  call->counted = shared.measuring.load(std::memory_order_relaxed);
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + shared.deadline));
  if (!shared.authorization.empty())
    call->context.AddMetadata("authorization", shared.authorization);
  const std::string bytes = shared.maker.Make(random);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  auto& stub =
      *shared.stubs[static_cast<std::size_t>(shared.next_stub.fetch_add(1)) % shared.stubs.size()];
  call->reader = stub.PrepareUnaryCall(&call->context, shared.maker.path(), request, cq);
  shared.outstanding.fetch_add(1);
  call->sent = Clock::now();
  // Another poller may take the call back and delete it as soon as Finish has queued it.
  hotpath::rpc::HandingToGrpc handing(call);
  call->reader->StartCall();
  call->reader->Finish(&call->response, &call->status, call);
}

void PollLoop(Shared& shared, grpc::CompletionQueue* cq, ThreadStats& stats, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    hotpath::rpc::TakeBack(call);
    const auto now = Clock::now();
    shared.outstanding.fetch_sub(1);
    if (call->counted) {
      const auto nanos =
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - call->start).count();
      stats.latency.Record(nanos);
      if (call->status.ok()) stats.ok_latency.Record(nanos);
      stats.send_lag.Record(
          std::chrono::duration_cast<std::chrono::nanoseconds>(call->sent - call->start).count());
      if (shared.timeline) stats.timeline.emplace_back(call->start, nanos);
      ++stats.codes[call->status.error_code()];
      stats.bytes += static_cast<std::int64_t>(call->response.Length());
      const std::int64_t n = shared.measured.fetch_add(1) + 1;
      if (shared.max_requests > 0 && n >= shared.max_requests) shared.stopping = true;
    }
    const bool again = call->closed_loop && !shared.stopping.load(std::memory_order_relaxed);
    delete call;
    if (again) StartCall(shared, cq, random, Clock::now(), true);
  }
}

}  // namespace

int main(int argc, char** argv) {
  hotpath::app::ConfigureMutexDeadlockDetection();
  absl::SetProgramUsageMessage("hotpath-bench: gRPC load for the catalog (see the file header)");
  absl::ParseCommandLine(argc, argv);
  absl::Status invalid = hotpath::app::CheckFlagRanges({
      {"ids", absl::GetFlag(FLAGS_ids), 1},
      {"batch_size", absl::GetFlag(FLAGS_batch_size), 1},
      {"page_size", absl::GetFlag(FLAGS_page_size), 1},
      {"concurrency", absl::GetFlag(FLAGS_concurrency), 1},
      {"connections", absl::GetFlag(FLAGS_connections), 1, 1024},
      {"threads", absl::GetFlag(FLAGS_threads), 1, 1024},
      {"requests", absl::GetFlag(FLAGS_requests), 0, std::numeric_limits<std::int64_t>::max()},
      {"probes", absl::GetFlag(FLAGS_probes), 1},
  });
  if (const double rate = absl::GetFlag(FLAGS_rate);
      invalid.ok() && !(rate >= 0 && std::isfinite(rate))) {
    invalid = absl::InvalidArgumentError(
        "--rate must be 0 (closed loop) or a positive number of calls a second");
  }
  if (!invalid.ok()) {
    std::cerr << "hotpath-bench: " << invalid.message() << "\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_method) == "staleness") {
    return hotpath::client::RunStaleness({.write_addr = absl::GetFlag(FLAGS_addr),
                                          .read_addr = absl::GetFlag(FLAGS_read_addr),
                                          .probes = absl::GetFlag(FLAGS_probes),
                                          .interval = absl::Milliseconds(20),
                                          .poll = absl::GetFlag(FLAGS_poll),
                                          .give_up = absl::Seconds(1),
                                          .json = absl::GetFlag(FLAGS_json)});
  }
  Shared shared;
  if (!shared.maker.valid()) {
    std::cerr << "hotpath-bench: unknown --method " << absl::GetFlag(FLAGS_method) << "\n";
    return 2;
  }
  shared.deadline = absl::GetFlag(FLAGS_deadline);
  if (const std::string token = absl::GetFlag(FLAGS_token); !token.empty()) {
    shared.authorization = "Bearer " + token;
  }
  shared.max_requests = absl::GetFlag(FLAGS_requests);
  const absl::Duration window = absl::GetFlag(FLAGS_window);
  shared.timeline = window > absl::ZeroDuration();
  if (shared.timeline &&
      (window < absl::Milliseconds(1) || absl::GetFlag(FLAGS_duration) / window > kMaxWindows)) {
    std::cerr << "hotpath-bench: --window must be at least 1ms and make at most " << kMaxWindows
              << " windows of --duration\n";
    return 2;
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_connections); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("hotpath.bench.connection", i);  // distinct arguments: a connection of its own
    if (!absl::GetFlag(FLAGS_gzip)) {
      args.SetInt(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET, 1 << GRPC_COMPRESS_NONE);
    }
    auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_addr),
                                             grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::cerr << "hotpath-bench: cannot connect to " << absl::GetFlag(FLAGS_addr) << "\n";
      return 1;
    }
    shared.stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
  }

  const int threads = absl::GetFlag(FLAGS_threads);
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
  std::vector<ThreadStats> stats(static_cast<std::size_t>(threads));
  std::vector<std::thread> pollers;
  for (int t = 0; t < threads; ++t) queues.push_back(std::make_unique<grpc::CompletionQueue>());
  for (int t = 0; t < threads; ++t) {
    pollers.emplace_back(PollLoop, std::ref(shared), queues[static_cast<std::size_t>(t)].get(),
                         std::ref(stats[static_cast<std::size_t>(t)]),
                         1000 + static_cast<std::uint64_t>(t));
  }

  const double rate = absl::GetFlag(FLAGS_rate);
  if (shared.timeline) {
    // Reserved up front: a vector doubling mid-run copies megabytes on a polling thread, and that
    // stall showed in the very windows it is meant to explain.
    const double expected = (rate > 0 ? rate : 100000) *
                            absl::ToDoubleSeconds(absl::GetFlag(FLAGS_duration)) * 1.25 / threads;
    for (auto& s : stats) s.timeline.reserve(static_cast<std::size_t>(expected) + 1024);
  }
  const bool from_send = absl::GetFlag(FLAGS_latency_from_send);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const auto begin = Clock::now();
  const auto warmup = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_warmup));
  const auto duration = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_duration));
  Clock::time_point measure_start, measure_end;
  std::mt19937_64 random(42);
  if (rate <= 0) {
    for (int i = 0; i < concurrency; ++i) {
      StartCall(shared, queues[static_cast<std::size_t>(i % threads)].get(), random, Clock::now(),
                true);
    }
    std::this_thread::sleep_for(warmup);
    measure_start = Clock::now();
    shared.measuring = true;
    while (!shared.stopping &&
           (shared.max_requests > 0 || Clock::now() - measure_start < duration)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    shared.stopping = true;
    measure_end = Clock::now();
  } else {
    // Open loop: call i is due at begin + i / rate and is sent then, whatever happened before; its
    // latency counts from that moment. The pacer wakes every 200 us and sends what has come due,
    // rather than once per call, so that it does not eat the CPU it is measuring.
    const auto interval = std::chrono::duration<double>(1.0 / rate);
    std::int64_t i = 0;
    bool done = false;
    while (!done) {
      const auto now = Clock::now();
      for (;; ++i) {
        const auto due =
            begin + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
        if (due > now) break;
        if (!shared.measuring && due - begin >= warmup) {
          shared.measuring = true;
          measure_start = due;
        }
        if (shared.measuring &&
            (shared.stopping || (shared.max_requests == 0 && due - measure_start >= duration))) {
          done = true;
          break;
        }
        if (shared.outstanding.load() >= concurrency) {
          if (shared.measuring) shared.dropped.fetch_add(1);
          continue;
        }
        StartCall(shared, queues[static_cast<std::size_t>(i % threads)].get(), random,
                  from_send ? Clock::now() : due, false);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    shared.stopping = true;
    measure_end = Clock::now();
  }
  // Let calls in flight finish (they count), then stop the pollers.
  while (shared.outstanding.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (auto& q : queues) q->Shutdown();
  for (auto& p : pollers) p.join();

  ThreadStats total;
  for (const auto& s : stats) {
    total.latency.Merge(s.latency);
    total.ok_latency.Merge(s.ok_latency);
    total.send_lag.Merge(s.send_lag);
    for (const auto& [code, n] : s.codes) total.codes[code] += n;
    total.bytes += s.bytes;
  }
  const double seconds = std::chrono::duration<double>(measure_end - measure_start).count();
  // --window: p99 and max of the calls that started in each window since the measurement began
  // (a call's latencies sorted per window: memory stays what the timeline already holds).
  std::vector<std::vector<std::int64_t>> windows;
  if (shared.timeline) {
    const auto length = absl::ToChronoNanoseconds(window);
    windows.resize(std::min<std::size_t>(
        kMaxWindows + 1, static_cast<std::size_t>(seconds / absl::ToDoubleSeconds(window)) + 1));
    for (const auto& s : stats) {
      for (const auto& [start, nanos] : s.timeline) {
        const auto i = std::max<std::int64_t>(0, (start - measure_start) / length);
        if (static_cast<std::size_t>(i) < windows.size()) windows[i].push_back(nanos);
      }
    }
    for (auto& w : windows) std::sort(w.begin(), w.end());
  }
  // The smallest latency at or below which a fraction q of the window's calls lie, in ms.
  auto window_ms = [](const std::vector<std::int64_t>& w, double q) {
    if (w.empty()) return 0.0;
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(w.size())));
    return static_cast<double>(w[std::max<std::size_t>(rank, 1) - 1]) / 1e6;
  };
  std::string window_json;
  for (const auto& w : windows) {
    absl::StrAppendFormat(&window_json, "%s{\"calls\":%d,\"p99\":%.3f,\"max\":%.3f}",
                          window_json.empty() ? "" : ",", w.size(), window_ms(w, 0.99),
                          window_ms(w, 1.0));
  }
  const std::int64_t calls = total.latency.count();
  std::int64_t errors = 0;
  for (const auto& [code, n] : total.codes) {
    if (code != grpc::StatusCode::OK) errors += n;
  }
  auto ms = [&](double q) { return static_cast<double>(total.latency.Percentile(q)) / 1e6; };
  auto ok_ms = [&](double q) { return static_cast<double>(total.ok_latency.Percentile(q)) / 1e6; };
  auto lag_ms = [&](double q) { return static_cast<double>(total.send_lag.Percentile(q)) / 1e6; };
  const double rps = seconds > 0 ? static_cast<double>(calls) / seconds : 0;
  if (absl::GetFlag(FLAGS_json)) {
    std::string codes;
    for (const auto& [code, n] : total.codes) {
      absl::StrAppend(&codes, codes.empty() ? "" : ",", "\"", CodeName(code), "\":", n);
    }
    std::cout << absl::StrFormat(
        "{\"method\":\"%s\",\"mode\":\"%s\",\"requests\":%d,\"seconds\":%.3f,\"rps\":%.1f,"
        "\"errors\":%d,"
        "\"codes\":{%s},\"dropped\":%d,\"response_bytes\":%d,\"latency_ms\":{\"mean\":%.3f,\"p50\":"
        "%.3f,"
        "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
        "\"ok_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
        "\"send_lag_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}%s}\n",
        absl::GetFlag(FLAGS_method), rate > 0 ? "open" : "closed", calls, seconds, rps, errors,
        codes, shared.dropped.load(), total.bytes, total.latency.mean() / 1e6, ms(0.5), ms(0.9),
        ms(0.99), ms(0.999), static_cast<double>(total.latency.max()) / 1e6, ok_ms(0.5),
        ok_ms(0.99), static_cast<double>(total.ok_latency.max()) / 1e6, lag_ms(0.5), lag_ms(0.99),
        static_cast<double>(total.send_lag.max()) / 1e6,
        shared.timeline ? absl::StrCat(",\"windows\":[", window_json, "]") : "");
  } else {
    std::cout << absl::StrFormat("%s, %s loop: %d calls in %.2f s = %.0f calls/s, %d errors\n",
                                 absl::GetFlag(FLAGS_method), rate > 0 ? "open" : "closed", calls,
                                 seconds, rps, errors);
    for (const auto& [code, n] : total.codes)
      std::cout << "  " << CodeName(code) << ": " << n << "\n";
    if (shared.dropped > 0) std::cout << "  not sent (cap reached): " << shared.dropped << "\n";
    std::cout << absl::StrFormat(
        "latency ms: mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
        total.latency.mean() / 1e6, ms(0.5), ms(0.9), ms(0.99), ms(0.999),
        static_cast<double>(total.latency.max()) / 1e6);
    for (std::size_t i = 0; i < windows.size(); ++i) {
      std::cout << absl::StrFormat("  window %d (from %s): %d calls, p99 %.3f ms, max %.3f ms\n", i,
                                   absl::FormatDuration(window * static_cast<double>(i)),
                                   windows[i].size(), window_ms(windows[i], 0.99),
                                   window_ms(windows[i], 1.0));
    }
    if (rate > 0) {
      std::cout << absl::StrFormat("sent after due, ms: p50 %.3f  p99 %.3f  max %.3f\n",
                                   lag_ms(0.5), lag_ms(0.99),
                                   static_cast<double>(total.send_lag.max()) / 1e6);
    }
    if (errors > 0) {
      std::cout << absl::StrFormat("calls answered OK, latency ms: p50 %.3f  p99 %.3f  max %.3f\n",
                                   ok_ms(0.5), ok_ms(0.99),
                                   static_cast<double>(total.ok_latency.max()) / 1e6);
    }
  }
  return errors > 0 && errors == calls ? 1 : 0;
}
