// gRPC server reflection, both versions clients ask for: grpc.reflection.v1 (current grpcurl,
// Postman, grpc-js tooling try it first) and grpc.reflection.v1alpha (older clients). The two are
// the same messages under two package names, so one implementation answers both, on the server's
// own completion queues.
//
// gRPC 1.51's plugin (grpc++_reflection) serves v1alpha only, as a synchronous service: one is
// enough for gRPC to start a pool of threads of its own beside the completion-queue threads. This
// one is a raw bidirectional method per version, with the messages generated from Debian's copy
// of reflection.proto (golang-google-grpc-dev). Like health, reflection bypasses the CallGate.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/async_stream.h>

#include <set>
#include <string>
#include <vector>

#include "grpc_reflection_v1alpha/reflection.pb.h"
#include "server/rpc/async_server.h"

namespace hotpath::rpc {

class ReflectionService final : public RpcModule {
 public:
  // The services' full names, as they answer.
  static constexpr char kV1[] = "grpc.reflection.v1.ServerReflection";
  static constexpr char kV1Alpha[] = "grpc.reflection.v1alpha.ServerReflection";

  ReflectionService();

  // What ListServices answers: the server's services (this one's two names are added). Before
  // the server starts.
  void SetServices(std::vector<std::string> names);

  grpc::Service* service() override { return &service_; }
  std::string name() const override { return kV1; }
  void Arm(grpc::ServerCompletionQueue* cq, const CallOptions& options) override;

  using Request = ::grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = ::grpc::reflection::v1alpha::ServerReflectionResponse;
  // The answer to one request of a stream; sent: files already sent on it (dependencies sent
  // once per stream, as gRPC's own reflection does), updated.
  Response Answer(const Request& request, std::set<std::string>* sent) const;

 private:
  class Call;
  // Two raw bidirectional methods, v1 (index 0) and v1alpha (index 1).
  class Methods final : public grpc::Service {
   public:
    Methods();
    void Request(int index, grpc::ServerContext* context,
                 grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream,
                 grpc::ServerCompletionQueue* cq, void* tag);
  };

  Methods service_;                 // registered with the server
  std::vector<std::string> names_;  // ListServices' answer, sorted
  CallOptions options_;             // the server's (live calls, message size), set by Arm
};

}  // namespace hotpath::rpc
