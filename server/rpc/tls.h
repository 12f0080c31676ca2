// gRPC credentials from PEM files: TLS when files are named, plaintext when not.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace hotpath::rpc {

// cert_file and key_file: the server's certificate chain and private key; empty cert_file means
// plaintext. client_ca_file: when set, clients must present a certificate signed by it.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file);

// ca_file: the CA that signed the server's certificate; empty means plaintext. cert_file and
// key_file: the client's own certificate, for servers that require one (may be empty).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const std::string& ca_file, const std::string& cert_file = "",
    const std::string& key_file = "");

}  // namespace hotpath::rpc
