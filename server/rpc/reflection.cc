#include "server/rpc/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hotpath::rpc {

namespace {

// gRPC keeps the method names' pointers.
constexpr const char* kMethodNames[] = {
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
};
// The same, as protobuf names them (for the CallObserver).
constexpr std::string_view kFullNames[] = {
    "grpc.reflection.v1.ServerReflection.ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo",
};

using Response = ReflectionService::Response;

void Refuse(grpc::StatusCode code, std::string message, Response* response) {
  response->mutable_error_response()->set_error_code(code);
  response->mutable_error_response()->set_error_message(std::move(message));
}

// file, then each of its dependencies (transitively) not yet in sent.
void AddFiles(const google::protobuf::FileDescriptor* file, std::set<std::string>* sent,
              Response* response) {
  auto* files = response->mutable_file_descriptor_response();
  std::vector<const google::protobuf::FileDescriptor*> queue = {file};
  for (std::size_t i = 0; i < queue.size(); ++i) {
    const google::protobuf::FileDescriptor* next = queue[i];
    // The file asked for always goes; a dependency once per stream.
    if (!sent->insert(next->name()).second && i > 0) continue;
    google::protobuf::FileDescriptorProto proto;
    next->CopyTo(&proto);
    files->add_file_descriptor_proto(proto.SerializeAsString());
    for (int d = 0; d < next->dependency_count(); ++d) queue.push_back(next->dependency(d));
  }
}

}  // namespace

// One stream: read a request, write its answer, until the client stops writing. Always one
// operation out, so a cancelled call completes it with !ok and finishes.
class ReflectionService::Call final : public CompletionHandler {
 public:
  static void Arm(ReflectionService* owner, int index, grpc::ServerCompletionQueue* cq) {
    new Call(owner, index, cq);
  }

  void OnComplete(bool ok) override {
    switch (state_) {
      case State::kAwaiting:
        if (!ok) break;  // the server shut down before a call came
        live_.Enter(owner_->options_.live_calls, cq_);
        observation_.Matched(owner_->options_.observer, kFullNames[index_],
                             CallObserver::RpcType::BIDI_STREAMING);
        Arm(owner_, index_, cq_);
        return Read();
      case State::kReading: {
        if (!ok) return Finish(grpc::Status::OK);  // the client is done asking
        observation_.Received();
        Request request;
        const grpc::Status parsed =
            ParseMessage(&request_bytes_, &request, owner_->options_.max_message_bytes);
        if (!parsed.ok()) return Finish(parsed);
        state_ = State::kWriting;
        const Response answer = owner_->Answer(request, &sent_);
        observation_.Sending(context_);
        HandingToGrpc handing(this);
        stream_.Write(SerializeMessage(answer), this);
        return;
      }
      case State::kWriting:
        if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
        return Read();
      case State::kFinishing:
        break;
    }
    delete this;
  }

 private:
  enum class State { kAwaiting, kReading, kWriting, kFinishing };

  Call(ReflectionService* owner, int index, grpc::ServerCompletionQueue* cq)
      : owner_(owner), index_(index), cq_(cq), stream_(&context_) {
    HandingToGrpc handing(this);
    owner_->service_.Request(index_, &context_, &stream_, cq_, this);
  }

  void Read() {
    state_ = State::kReading;
    HandingToGrpc handing(this);
    stream_.Read(&request_bytes_, this);
  }

  void Finish(const grpc::Status& status) {
    state_ = State::kFinishing;
    observation_.Finishing(context_, status);
    HandingToGrpc handing(this);
    stream_.Finish(status, this);
  }

  LiveCalls::Presence live_;         // counted from match to destruction (first: destroyed last)
  ReflectionService* owner_;         // the service, outlives every call
  const int index_;                  // which version's method
  grpc::ServerCompletionQueue* cq_;  // the queue this call lives on
  grpc::ServerContext context_;      // per-call metadata
  CallObservation observation_;      // x-process-time and the observer's hooks
  grpc::ByteBuffer request_bytes_;   // the message being read
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_;  // the call
  std::set<std::string> sent_;      // files sent on this stream
  State state_ = State::kAwaiting;  // where the state machine is
};

ReflectionService::Methods::Methods() {
  for (int i = 0; i < 2; ++i) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        kMethodNames[i], grpc::internal::RpcMethod::BIDI_STREAMING, nullptr));
    MarkMethodRaw(i);
  }
}

void ReflectionService::Methods::Request(
    int index, grpc::ServerContext* context,
    grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream,
    grpc::ServerCompletionQueue* cq, void* tag) {
  RequestAsyncBidiStreaming(index, context, stream, cq, cq, tag);
}

ReflectionService::ReflectionService() { SetServices({}); }

void ReflectionService::SetServices(std::vector<std::string> names) {
  names_ = std::move(names);
  names_.push_back(kV1);
  names_.push_back(kV1Alpha);
  std::sort(names_.begin(), names_.end());
  names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
}

void ReflectionService::Arm(grpc::ServerCompletionQueue* cq, const CallOptions& options) {
  options_ = options;
  options_.gate = nullptr;  // tooling asks before it calls anything; never shed
  for (int index = 0; index < 2; ++index) Call::Arm(this, index, cq);
}

ReflectionService::Response ReflectionService::Answer(const Request& request,
                                                      std::set<std::string>* sent) const {
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  Response response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  // The file found with its dependencies, or NOT_FOUND naming what was asked.
  const auto files = [&](const google::protobuf::FileDescriptor* file, const std::string& asked) {
    if (file == nullptr) return Refuse(grpc::StatusCode::NOT_FOUND, "no " + asked, &response);
    AddFiles(file, sent, &response);
  };
  switch (request.message_request_case()) {
    case Request::kFileByFilename:
      files(pool->FindFileByName(request.file_by_filename()),
            absl::StrCat("file ", request.file_by_filename()));
      break;
    case Request::kFileContainingSymbol:
      files(pool->FindFileContainingSymbol(request.file_containing_symbol()),
            absl::StrCat("symbol ", request.file_containing_symbol()));
      break;
    case Request::kFileContainingExtension: {
      const auto& asked = request.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(asked.containing_type());
      const auto* extension =
          type == nullptr ? nullptr : pool->FindExtensionByNumber(type, asked.extension_number());
      files(extension == nullptr ? nullptr : extension->file(),
            absl::StrCat("extension ", asked.extension_number(), " of ", asked.containing_type()));
      break;
    }
    case Request::kAllExtensionNumbersOfType: {
      const auto* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        Refuse(grpc::StatusCode::NOT_FOUND,
               absl::StrCat("no type ", request.all_extension_numbers_of_type()), &response);
        break;
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* numbers = response.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const auto* extension : extensions) numbers->add_extension_number(extension->number());
      break;
    }
    case Request::kListServices:
      for (const std::string& name : names_) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    case Request::MESSAGE_REQUEST_NOT_SET:
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "the request asks for nothing", &response);
      break;
  }
  return response;
}

}  // namespace hotpath::rpc
