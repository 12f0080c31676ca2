// The gateway's API as OpenAPI documents, built from the route table it matches requests with, so
// the documents cannot drift from what it serves: OpenAPI 3.0 (/openapi3.json) and Swagger 2.0
// (/openapi.json), the same content in each form.
//
// What they say is what the gateway does: JSON names (lowerCamelCase) as answers print them,
// 64-bit integers as strings (proto3 JSON), every field a GET takes as a query parameter (repeated
// ones as the parameter repeated, ids=1&ids=2), path variables, bodies, server streams as NDJSON
// lines ({"result": ...} or a final {"error": ...}), 304 where answers carry an etag, and the
// JSON error (google.rpc.Status) every operation may answer. Summaries and descriptions come
// from the services' own protoc-gen-swagger documents (their proto comments), when given.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/transcoder.h"

namespace hotpath::gateway {

struct OpenApiOptions {
  std::string title = "hotpath";
  std::string version = "v1";
  // The services' OpenAPI 2 documents made by protoc-gen-swagger from their protos: where
  // summaries and descriptions are taken from (by path and method, by message and field). Empty
  // ones are skipped.
  std::vector<std::string> described_by;
};

struct OpenApiDocuments {
  std::string v3;  // OpenAPI 3.0.3
  std::string v2;  // Swagger 2.0
};

// The documents of bindings, in their order. INVALID_ARGUMENT when a described_by document is not
// JSON.
absl::StatusOr<OpenApiDocuments> DescribeRoutes(const std::vector<const HttpBinding*>& bindings,
                                                const OpenApiOptions& options);

}  // namespace hotpath::gateway
