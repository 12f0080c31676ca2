#include "gateway/openapi.h"

#include <google/protobuf/descriptor.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/rpc/status.pb.h"

namespace hotpath::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::ordered_json;

// The message behind a field, or null.
const Descriptor* MessageOf(const FieldDescriptor* field) {
  return field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? field->message_type() : nullptr;
}

bool HasEtag(const Descriptor* message) {
  return message != nullptr && message->FindFieldByName("etag") != nullptr;
}

// Summaries and descriptions from protoc-gen-swagger documents: operations by path and method,
// definitions by protoc-gen-swagger's name for a message (its package's last part and its name,
// e.g. "v1Item"), properties and parameters by proto name.
class Descriptions {
 public:
  absl::Status Add(const std::string& document) {
    if (document.empty()) return absl::OkStatus();
    Json parsed = Json::parse(document, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      return absl::InvalidArgumentError("a service's OpenAPI document is not a JSON object");
    }
    const Json paths = parsed.value("paths", Json::object());
    for (const auto& [path, methods] : paths.items()) {
      for (const auto& [method, operation] : methods.items()) {
        operations_[path][method] = operation;
      }
    }
    const Json definitions = parsed.value("definitions", Json::object());
    for (const auto& [name, schema] : definitions.items()) definitions_[name] = schema;
    return absl::OkStatus();
  }

  const Json* Operation(const std::string& path, const std::string& method) const {
    auto p = operations_.find(path);
    if (p == operations_.end()) return nullptr;
    auto m = p->second.find(absl::AsciiStrToLower(method));
    return m == p->second.end() ? nullptr : &m->second;
  }

  const Json* Definition(const Descriptor* message) const {
    std::string name = message->name();
    for (const Descriptor* outer = message->containing_type(); outer != nullptr;
         outer = outer->containing_type()) {
      name = absl::StrCat(outer->name(), name);
    }
    const std::vector<std::string> package = absl::StrSplit(message->file()->package(), '.');
    auto it = definitions_.find(absl::StrCat(package.back(), name));
    return it == definitions_.end() ? nullptr : &it->second;
  }

  // A parameter's description in an operation, by its proto name ("min_price_cents", "item.id").
  static std::string ParameterDescription(const Json* operation, const std::string& name) {
    if (operation == nullptr) return "";
    for (const Json& parameter : operation->value("parameters", Json::array())) {
      if (parameter.value("name", "") == name) return parameter.value("description", "");
    }
    return "";
  }

 private:
  std::map<std::string, std::map<std::string, Json>> operations_;  // path -> method -> operation
  std::map<std::string, Json> definitions_;                        // name -> schema
};

// One document, in either form: schemas are the same (JSON Schema), only where they live and how
// parameters, bodies and answers point at them differ.
class Writer {
 public:
  Writer(bool v3, const Descriptions& descriptions) : v3_(v3), descriptions_(descriptions) {}

  Json Document(const std::vector<const HttpBinding*>& bindings, const OpenApiOptions& options) {
    Json paths = Json::object();
    std::map<std::string, int> operation_ids;
    for (const HttpBinding* binding : bindings) {
      const std::string path = PathOf(binding->path);
      const std::string method = absl::AsciiStrToLower(binding->http_method);
      std::string id = binding->method->name();
      if (const int n = ++operation_ids[id]; n > 1) absl::StrAppend(&id, n);
      paths[path][method] = Operation(*binding, path, id);
    }
    Json document = Json::object();
    if (v3_) {
      document["openapi"] = "3.0.3";
    } else {
      document["swagger"] = "2.0";
    }
    document["info"] = {{"title", options.title}, {"version", options.version}};
    if (!v3_) {
      document["consumes"] = {"application/json"};
      document["produces"] = {"application/json"};
    }
    document["paths"] = std::move(paths);
    // Bearer tokens, when the server requires them (--auth_tokens_file): optional here.
    document["security"] = Json::array({Json::object(), Json{{"bearer", Json::array()}}});
    if (v3_) {
      document["components"] = {
          {"schemas", schemas_},
          {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}};
    } else {
      document["definitions"] = schemas_;
      document["securityDefinitions"] = {
          {"bearer", {{"type", "apiKey"}, {"name", "Authorization"}, {"in", "header"}}}};
    }
    return document;
  }

 private:
  // "/v1/items/{item.id}": literals as they are, each variable once by its field path.
  static std::string PathOf(const PathTemplate& path) {
    std::string out;
    int unnamed = 0;
    for (std::size_t i = 0; i < path.segments.size(); ++i) {
      const PathTemplate::Variable* variable = nullptr;
      for (const auto& v : path.variables) {
        if (v.first_segment == static_cast<int>(i)) variable = &v;
      }
      if (variable != nullptr) {
        absl::StrAppend(&out, "/{", variable->field_path, "}");
        const int end = variable->end_segment < 0 ? static_cast<int>(path.segments.size())
                                                  : variable->end_segment;
        i = static_cast<std::size_t>(end - 1);
        continue;
      }
      const auto& segment = path.segments[i];
      if (segment.kind == PathTemplate::Kind::kLiteral) {
        absl::StrAppend(&out, "/", segment.literal);
      } else {
        absl::StrAppend(&out, "/{_", ++unnamed, "}");
      }
    }
    if (out.empty()) out.push_back('/');  // (not out = "/": g++ 12 -Wrestrict misfires)
    if (!path.verb.empty()) absl::StrAppend(&out, ":", path.verb);
    return out;
  }

  std::string Ref(const Descriptor* message) {
    Define(message);
    return absl::StrCat(v3_ ? "#/components/schemas/" : "#/definitions/", message->full_name());
  }

  // Well-known types as proto3 JSON writes them; null for other messages.
  static Json WellKnown(const Descriptor* message) {
    const std::string& name = message->full_name();
    if (name == "google.protobuf.Timestamp") return {{"type", "string"}, {"format", "date-time"}};
    if (name == "google.protobuf.Duration") {
      return {{"type", "string"}, {"description", "seconds with an s suffix, e.g. \"1.5s\""}};
    }
    if (name == "google.protobuf.FieldMask") {
      return {{"type", "string"}, {"description", "field paths, comma-separated"}};
    }
    if (name == "google.protobuf.Int64Value") return {{"type", "string"}, {"format", "int64"}};
    if (name == "google.protobuf.UInt64Value") return {{"type", "string"}, {"format", "uint64"}};
    if (name == "google.protobuf.Int32Value") return {{"type", "integer"}, {"format", "int32"}};
    if (name == "google.protobuf.UInt32Value") return {{"type", "integer"}, {"format", "int64"}};
    if (name == "google.protobuf.DoubleValue") return {{"type", "number"}, {"format", "double"}};
    if (name == "google.protobuf.FloatValue") return {{"type", "number"}, {"format", "float"}};
    if (name == "google.protobuf.BoolValue") return {{"type", "boolean"}};
    if (name == "google.protobuf.StringValue") return {{"type", "string"}};
    if (name == "google.protobuf.BytesValue") return {{"type", "string"}, {"format", "byte"}};
    if (name == "google.protobuf.Struct" || name == "google.protobuf.Empty") {
      return {{"type", "object"}};
    }
    if (name == "google.protobuf.Value") return Json::object();
    if (name == "google.protobuf.ListValue") return {{"type", "array"}, {"items", Json::object()}};
    if (name == "google.protobuf.Any") {
      return {{"type", "object"},
              {"properties", {{"@type", {{"type", "string"}}}}},
              {"additionalProperties", true}};
    }
    return nullptr;
  }

  // Whether a query parameter can carry the field (a scalar, or a well-known type written as one).
  static bool QueryLeaf(const FieldDescriptor* field) {
    const Descriptor* message = MessageOf(field);
    if (message == nullptr) return true;
    const Json known = WellKnown(message);
    return !known.is_null() && known.value("type", "") != "object" &&
           known.value("type", "") != "array" && !known.empty();
  }

  // One value of the field (not the repeated or map wrapping).
  Json Single(const FieldDescriptor* field) {
    switch (field->type()) {
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32:
        return {{"type", "integer"}, {"format", "int32"}};
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        return {{"type", "integer"}, {"format", "int64"}, {"minimum", 0}};
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64:
        return {{"type", "string"}, {"format", "int64"}};
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        return {{"type", "string"}, {"format", "uint64"}};
      case FieldDescriptor::TYPE_DOUBLE:
        return {{"type", "number"}, {"format", "double"}};
      case FieldDescriptor::TYPE_FLOAT:
        return {{"type", "number"}, {"format", "float"}};
      case FieldDescriptor::TYPE_BOOL:
        return {{"type", "boolean"}};
      case FieldDescriptor::TYPE_STRING:
        return {{"type", "string"}};
      case FieldDescriptor::TYPE_BYTES:
        return {{"type", "string"}, {"format", "byte"}};
      case FieldDescriptor::TYPE_ENUM: {
        Json names = Json::array();
        for (int i = 0; i < field->enum_type()->value_count(); ++i) {
          names.push_back(field->enum_type()->value(i)->name());
        }
        return {{"type", "string"}, {"enum", std::move(names)}};
      }
      case FieldDescriptor::TYPE_MESSAGE:
      case FieldDescriptor::TYPE_GROUP: {
        Json known = WellKnown(field->message_type());
        if (!known.is_null()) return known;
        return {{"$ref", Ref(field->message_type())}};
      }
    }
    return Json::object();
  }

  Json FieldSchema(const FieldDescriptor* field) {
    if (field->is_map()) {
      return {{"type", "object"},
              {"additionalProperties", Single(field->message_type()->map_value())}};
    }
    if (field->is_repeated()) return {{"type", "array"}, {"items", Single(field)}};
    return Single(field);
  }

  // A definition's property, or null.
  static const Json* PropertyOf(const Json* definition, const std::string& name) {
    if (definition == nullptr) return nullptr;
    auto properties = definition->find("properties");
    if (properties == definition->end() || !properties->is_object()) return nullptr;
    auto property = properties->find(name);
    return property == properties->end() || !property->is_object() ? nullptr : &*property;
  }

  void Define(const Descriptor* message) {
    const std::string& name = message->full_name();
    if (schemas_.contains(name) || defining_.count(name)) return;
    defining_.insert(name);
    const Json* described = descriptions_.Definition(message);
    Json properties = Json::object();
    for (int i = 0; i < message->field_count(); ++i) {
      const FieldDescriptor* field = message->field(i);
      Json property = FieldSchema(field);
      if (const Json* from = PropertyOf(described, field->name());
          from != nullptr && from->contains("description") && !property.contains("$ref")) {
        property["description"] = from->at("description");
      }
      properties[field->json_name()] = std::move(property);
    }
    Json schema = {{"type", "object"}, {"properties", std::move(properties)}};
    if (described != nullptr && described->contains("description")) {
      schema["description"] = described->at("description");
    }
    schemas_[name] = std::move(schema);
    defining_.erase(name);
  }

  // A parameter: v3 puts its type under "schema", v2 beside it.
  Json Parameter(const std::string& name, const char* in, bool required, Json schema,
                 const std::string& description) {
    Json parameter = {{"name", name}, {"in", in}};
    if (!description.empty()) parameter["description"] = description;
    parameter["required"] = required;
    const bool array = schema.value("type", "") == "array";
    if (v3_) {
      if (array) {
        parameter["style"] = "form";
        parameter["explode"] = true;
      }
      parameter["schema"] = std::move(schema);
    } else {
      for (auto& [key, value] : schema.items()) parameter[key] = value;
      if (array) parameter["collectionFormat"] = "multi";
    }
    return parameter;
  }

  // Every field the query may set: leaves of the request not bound elsewhere, dotted by JSON
  // name; messages are walked into (once each along a path, four deep at most).
  void QueryParameters(const Descriptor* message, const std::string& proto_prefix,
                       const std::string& json_prefix, const std::set<std::string>& bound,
                       const Json* operation, int depth, std::set<const Descriptor*>& walking,
                       Json& out) {
    if (depth > 4 || !walking.insert(message).second) return;
    for (int i = 0; i < message->field_count(); ++i) {
      const FieldDescriptor* field = message->field(i);
      const std::string proto_name = absl::StrCat(proto_prefix, field->name());
      const std::string json_name = absl::StrCat(json_prefix, field->json_name());
      if (bound.count(proto_name) || field->is_map()) continue;
      if (QueryLeaf(field)) {
        out.push_back(Parameter(json_name, "query", false, FieldSchema(field),
                                Descriptions::ParameterDescription(operation, proto_name)));
      } else if (!field->is_repeated() && WellKnown(field->message_type()).is_null()) {
        QueryParameters(field->message_type(), proto_name + ".", json_name + ".", bound, operation,
                        depth + 1, walking, out);
      }
    }
    walking.erase(message);
  }

  Json Headers(bool etag) {
    Json headers = {
        {"X-Request-Id", {{"description", "the request's X-Request-Id, or one made for it"}}},
        {"X-Process-Time", {{"description", "seconds the gateway took, e.g. 0.000123"}}}};
    if (etag) headers["ETag"] = {{"description", "the answer's etag, quoted"}};
    for (auto& [name, header] : headers.items()) {
      if (v3_) {
        header["schema"] = {{"type", "string"}};
      } else {
        header["type"] = "string";
      }
    }
    return headers;
  }

  Json Answer(const std::string& description, const char* type, Json schema, Json headers) {
    Json answer = {{"description", description}};
    if (!headers.empty()) answer["headers"] = std::move(headers);
    if (v3_) {
      answer["content"] = {{type, {{"schema", std::move(schema)}}}};
    } else {
      answer["schema"] = std::move(schema);
    }
    return answer;
  }

  Json Operation(const HttpBinding& binding, const std::string& path, const std::string& id) {
    const auto* method = binding.method;
    const Descriptor* request = method->input_type();
    const Json* described = descriptions_.Operation(path, binding.http_method);
    Json operation = Json::object();
    for (const char* key : {"summary", "description"}) {
      if (described != nullptr && described->contains(key)) operation[key] = described->at(key);
    }
    operation["operationId"] = id;
    operation["tags"] = {method->service()->name()};

    Json parameters = Json::array();
    std::set<std::string> bound;  // proto field paths the path or body sets
    for (const auto& variable : binding.path.variables) {
      bound.insert(variable.field_path);
      // The leaf field of the variable's path.
      const Descriptor* at = request;
      const FieldDescriptor* field = nullptr;
      for (absl::string_view part : absl::StrSplit(variable.field_path, '.')) {
        field = at == nullptr ? nullptr : at->FindFieldByName(std::string(part));
        at = field == nullptr ? nullptr : MessageOf(field);
      }
      Json schema = field != nullptr ? Single(field) : Json{{"type", "string"}};
      std::string description = Descriptions::ParameterDescription(described, variable.field_path);
      const int end = variable.end_segment;
      if (end < 0 || end - variable.first_segment > 1) {
        std::vector<std::string> pattern;
        for (int s = variable.first_segment;
             s < (end < 0 ? static_cast<int>(binding.path.segments.size()) : end); ++s) {
          const auto& segment = binding.path.segments[static_cast<std::size_t>(s)];
          pattern.push_back(segment.kind == PathTemplate::Kind::kLiteral  ? segment.literal
                            : segment.kind == PathTemplate::Kind::kSingle ? "*"
                                                                          : "**");
        }
        absl::StrAppend(&description, description.empty() ? "" : " ", "(",
                        absl::StrJoin(pattern, "/"), ")");
      }
      parameters.push_back(
          Parameter(variable.field_path, "path", true, std::move(schema), description));
    }
    Json body_schema;
    if (binding.body == "*") {
      body_schema = {{"$ref", Ref(request)}};
    } else if (!binding.body.empty()) {
      const FieldDescriptor* field = request->FindFieldByName(binding.body);
      if (field != nullptr) {
        bound.insert(field->name());
        body_schema = FieldSchema(field);
      }
    }
    if (binding.body != "*") {
      std::set<const Descriptor*> walking;
      QueryParameters(request, "", "", bound, described, 0, walking, parameters);
    }
    // Headers the gateway reads.
    const bool safe = binding.http_method == "GET";
    const Descriptor* written = binding.body.empty() || binding.body == "*"
                                    ? request
                                    : MessageOf(request->FindFieldByName(binding.body));
    const Descriptor* response = method->output_type();
    if (!binding.response_body.empty()) {
      const FieldDescriptor* field = response->FindFieldByName(binding.response_body);
      response = field != nullptr ? MessageOf(field) : nullptr;
    }
    const bool etag = !method->server_streaming() && HasEtag(response);
    parameters.push_back(Parameter("X-Request-Id", "header", false, {{"type", "string"}},
                                   "echoed in the answer; one is made when absent"));
    if (safe && etag) {
      parameters.push_back(Parameter("If-None-Match", "header", false, {{"type", "string"}},
                                     "the etag held: 304 when it is still current"));
    }
    if (!safe && (HasEtag(written) || HasEtag(request))) {
      parameters.push_back(Parameter("If-Match", "header", false, {{"type", "string"}},
                                     "the etag the write expects: 412 when it changed"));
    }
    operation["parameters"] = std::move(parameters);
    if (!body_schema.is_null()) {
      if (v3_) {
        operation["requestBody"] = {
            {"required", true},
            {"content", {{"application/json", {{"schema", std::move(body_schema)}}}}}};
      } else {
        operation["parameters"].push_back(
            {{"name", "body"}, {"in", "body"}, {"required", true}, {"schema", body_schema}});
      }
    }

    Json answers = Json::object();
    const Json error = {{"$ref", Ref(google::rpc::Status::descriptor())}};
    if (method->server_streaming()) {
      Json line = {
          {"type", "object"},
          {"description",
           "one per line: {\"result\": ...} for each message, or a last {\"error\": "
           "...} when the stream fails after it began"},
          {"properties", {{"result", {{"$ref", Ref(method->output_type())}}}, {"error", error}}}};
      answers["200"] = Answer("A stream of JSON lines (NDJSON).", "application/x-ndjson",
                              std::move(line), Headers(false));
      if (!v3_) operation["produces"] = {"application/x-ndjson"};
    } else {
      Json schema =
          response != nullptr
              ? Json{{"$ref", Ref(response)}}
              : FieldSchema(method->output_type()->FindFieldByName(binding.response_body));
      answers["200"] = Answer("OK", "application/json", std::move(schema), Headers(etag));
    }
    if (safe && etag) answers["304"] = {{"description", "Not Modified: If-None-Match is current"}};
    answers["default"] =
        Answer("An error: the gRPC status as JSON, its code mapped to the HTTP status",
               "application/json", error, Headers(false));
    operation["responses"] = std::move(answers);
    return operation;
  }

  const bool v3_;                     // OpenAPI 3, else Swagger 2
  const Descriptions& descriptions_;  // summaries and descriptions
  Json schemas_ = Json::object();     // every message referred to, by full name
  std::set<std::string> defining_;    // messages being defined (recursive types)
};

}  // namespace

absl::StatusOr<OpenApiDocuments> DescribeRoutes(const std::vector<const HttpBinding*>& bindings,
                                                const OpenApiOptions& options) {
  Descriptions descriptions;
  for (const std::string& document : options.described_by) {
    if (absl::Status s = descriptions.Add(document); !s.ok()) return s;
  }
  OpenApiDocuments documents;
  documents.v3 = Writer(true, descriptions).Document(bindings, options).dump(2);
  documents.v2 = Writer(false, descriptions).Document(bindings, options).dump(2);
  return documents;
}

}  // namespace hotpath::gateway
