#include "gateway/transcoder.h"

#include <google/protobuf/util/json_util.h>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gateway/json_printer.h"
#include "google/rpc/status.pb.h"
#include "server/http/json_quote.h"
#include "server/json/field_names.h"
#include "server/json/fields_once.h"
#include "server/text/utf8.h"

namespace hotpath::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status BadParameter(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid parameter \"", name, "\": ", why));
}

// Refuses a field whose oneof holds another of its fields already: setting it would clear that one.
absl::Status OneofFree(const Message& message, const FieldDescriptor* f,
                       absl::string_view parameter) {
  const auto* oneof = f->real_containing_oneof();
  if (oneof == nullptr) return absl::OkStatus();
  const FieldDescriptor* held = message.GetReflection()->GetOneofFieldDescriptor(message, oneof);
  if (held == nullptr || held == f) return absl::OkStatus();
  return BadParameter(parameter, absl::StrCat("field \"", held->name(), "\" of oneof \"",
                                              oneof->name(), "\" is set already"));
}

// The singular fields a query has set so far, each as its message and field.
using FieldsSet = std::vector<std::pair<const Message*, const FieldDescriptor*>>;

// Sets one field (dotted path, names in either form) from its text form, as a path variable or
// query parameter carries it. Repeated fields get the value appended. With `once`, a singular
// field already in it, or a second member of a oneof, is refused rather than overwritten: two
// values for one field (`category=a&category=b`, or `page_size` beside `pageSize`) would leave the
// server and a proxy or cache in front of it each free to read a different one.
absl::Status SetFromText(Message* message, absl::string_view dotted, absl::string_view value,
                         absl::string_view parameter, FieldsSet* once = nullptr) {
  const std::vector<absl::string_view> parts = absl::StrSplit(dotted, '.');
  Message* target = message;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const FieldDescriptor* f = json::FindFieldByAnyName(target->GetDescriptor(), parts[i]);
    if (f == nullptr) return BadParameter(parameter, absl::StrCat("no field \"", parts[i], "\""));
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      return BadParameter(parameter, absl::StrCat("\"", parts[i], "\" has no fields"));
    }
    if (once != nullptr) {
      if (absl::Status s = OneofFree(*target, f, parameter); !s.ok()) return s;
    }
    target = target->GetReflection()->MutableMessage(target, f);
  }
  const FieldDescriptor* f = json::FindFieldByAnyName(target->GetDescriptor(), parts.back());
  if (f == nullptr) return BadParameter(parameter, absl::StrCat("no field \"", parts.back(), "\""));
  if (f->is_map()) return BadParameter(parameter, "map fields cannot be set from a URL");
  const Reflection* r = target->GetReflection();
  const bool repeated = f->is_repeated();
  if (once != nullptr && !repeated) {
    if (absl::c_linear_search(*once, std::make_pair(static_cast<const Message*>(target), f))) {
      return BadParameter(parameter, "is given more than once, and is not a repeated field");
    }
    if (absl::Status s = OneofFree(*target, f, parameter); !s.ok()) return s;
    once->emplace_back(target, f);
  }
  const std::string text(value);
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      std::int32_t v;
      if (!absl::SimpleAtoi(text, &v))
        return BadParameter(
            parameter, absl::StrCat("\"", absl::CHexEscape(text), "\" is not a 32-bit integer"));
      repeated ? r->AddInt32(target, f, v) : r->SetInt32(target, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      std::int64_t v;
      if (!absl::SimpleAtoi(text, &v))
        return BadParameter(
            parameter, absl::StrCat("\"", absl::CHexEscape(text), "\" is not a 64-bit integer"));
      repeated ? r->AddInt64(target, f, v) : r->SetInt64(target, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      std::uint32_t v;
      if (!absl::SimpleAtoi(text, &v))
        return BadParameter(parameter, absl::StrCat("\"", absl::CHexEscape(text),
                                                    "\" is not an unsigned 32-bit integer"));
      repeated ? r->AddUInt32(target, f, v) : r->SetUInt32(target, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      std::uint64_t v;
      if (!absl::SimpleAtoi(text, &v))
        return BadParameter(parameter, absl::StrCat("\"", absl::CHexEscape(text),
                                                    "\" is not an unsigned 64-bit integer"));
      repeated ? r->AddUInt64(target, f, v) : r->SetUInt64(target, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(text, &v)) return BadParameter(parameter, "not a number");
      repeated ? r->AddDouble(target, f, v) : r->SetDouble(target, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(text, &v)) return BadParameter(parameter, "not a number");
      repeated ? r->AddFloat(target, f, v) : r->SetFloat(target, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (!absl::SimpleAtob(text, &v)) return BadParameter(parameter, "not true or false");
      repeated ? r->AddBool(target, f, v) : r->SetBool(target, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* e = f->enum_type()->FindValueByName(text);
      int number;
      if (e == nullptr && absl::SimpleAtoi(text, &number))
        e = f->enum_type()->FindValueByNumber(number);
      if (e == nullptr)
        return BadParameter(parameter,
                            absl::StrCat("not a value of ", f->enum_type()->full_name()));
      repeated ? r->AddEnum(target, f, e) : r->SetEnum(target, f, e);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v = text;
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        if (!absl::Base64Unescape(text, &v) && !absl::WebSafeBase64Unescape(text, &v)) {
          return BadParameter(parameter, "not base64");
        }
      } else if (!text::IsValidUtf8(v)) {
        return BadParameter(parameter, "not valid UTF-8");
      }
      repeated ? r->AddString(target, f, std::move(v)) : r->SetString(target, f, std::move(v));
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      // Well-known types in their JSON string form: FieldMask "a,b", Timestamp, Duration, wrappers.
      Message* sub = repeated ? r->AddMessage(target, f) : r->MutableMessage(target, f);
      if (sub->GetDescriptor()->file()->package() != "google.protobuf") {
        return BadParameter(parameter, "a message: set its fields with dotted names");
      }
      auto parsed = google::protobuf::util::JsonStringToMessage(http::JsonQuote(text), sub);
      if (!parsed.ok()) parsed = google::protobuf::util::JsonStringToMessage(text, sub);
      if (!parsed.ok()) {
        return BadParameter(parameter,
                            absl::StrCat("not a valid ", sub->GetDescriptor()->full_name()));
      }
      break;
    }
  }
  return absl::OkStatus();
}

// The JSON parser's complaint as one line, with where it happened. Protobuf reports
// "<what>\n<excerpt of the input>\n<spaces>^": the excerpt is found in the body to give the offset.
std::string ParseError(const google::protobuf::util::Status& status, absl::string_view body) {
  const std::vector<std::string> lines = absl::StrSplit(std::string(status.message()), '\n');
  if (lines.size() >= 3) {
    const std::size_t caret = lines[2].find('^');
    const std::size_t at = body.find(lines[1]);
    if (caret != std::string::npos && at != absl::string_view::npos) {
      return absl::StrCat("invalid JSON body at byte ", at + caret, ": ", lines[0]);
    }
  }
  std::string message = absl::StrJoin(lines, " ");
  return absl::StrCat("invalid JSON body: ", message);
}

google::protobuf::util::JsonParseOptions ParseOptions(const TranscodeOptions& options) {
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = options.ignore_unknown_fields;
  return parse;
}

google::protobuf::util::JsonPrintOptions PrintOptions() {
  google::protobuf::util::JsonPrintOptions print;
  print.always_print_primitive_fields = true;
  print.preserve_proto_field_names = false;
  return print;
}

// A body protobuf has read, refused if it sets a field twice or is not strict JSON.
absl::Status StrictBody(absl::string_view json, const Descriptor* descriptor) {
  const absl::Status once = json::CheckFieldsOnce(json, descriptor);
  if (once.ok()) return once;
  return absl::InvalidArgumentError(absl::StrCat("invalid JSON body: ", once.message()));
}

// The first segment of a dotted field path.
absl::string_view Head(absl::string_view dotted) { return dotted.substr(0, dotted.find('.')); }

}  // namespace

absl::Status BuildRequest(const HttpBinding& binding, const Bindings& path_variables,
                          absl::string_view query, absl::string_view body,
                          const TranscodeOptions& options, Message* request) {
  const Descriptor* descriptor = request->GetDescriptor();
  // Body first, so path variables (which name the resource) win over it.
  if (binding.body.empty()) {
    if (!absl::StripAsciiWhitespace(body).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(binding.http_method, " ", binding.path.text, " takes no request body"));
    }
  } else {
    const absl::string_view json = absl::StripAsciiWhitespace(body).empty() ? "{}" : body;
    // Protobuf's parse first, for its errors' byte offsets; then what it reads leniently.
    if (binding.body == "*") {
      const auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), request,
                                                                      ParseOptions(options));
      if (!parsed.ok()) return absl::InvalidArgumentError(ParseError(parsed, json));
      if (absl::Status s = StrictBody(json, descriptor); !s.ok()) return s;
    } else {
      const FieldDescriptor* f = json::FindFieldByAnyName(descriptor, binding.body);
      if (f == nullptr)
        return absl::InternalError(
            absl::StrCat("body field ", binding.body, " not in ", descriptor->full_name()));
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated()) {
        const auto parsed = google::protobuf::util::JsonStringToMessage(
            std::string(json), request->GetReflection()->MutableMessage(request, f),
            ParseOptions(options));
        if (!parsed.ok()) return absl::InvalidArgumentError(ParseError(parsed, json));
        if (absl::Status s = StrictBody(json, f->message_type()); !s.ok()) return s;
      } else {
        const std::string wrapped =
            absl::StrCat("{", http::JsonQuote(f->json_name()), ":", json, "}");
        const auto parsed =
            google::protobuf::util::JsonStringToMessage(wrapped, request, ParseOptions(options));
        if (!parsed.ok()) return absl::InvalidArgumentError(ParseError(parsed, wrapped));
        if (absl::Status s = StrictBody(wrapped, descriptor); !s.ok()) return s;
      }
    }
  }
  for (const auto& [field, value] : path_variables) {
    if (absl::Status s = SetFromText(request, field, value, field); !s.ok()) return s;
  }
  if (query.empty()) return absl::OkStatus();
  FieldsSet set_by_query;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const std::size_t eq = pair.find('=');
    std::string name, value;
    if (!PercentDecode(pair.substr(0, eq), &name, true)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed percent-encoding in query parameter \"", absl::CHexEscape(pair), "\""));
    }
    const FieldDescriptor* head = json::FindFieldByAnyName(descriptor, Head(name));
    if (head == nullptr && !options.strict_query_parameters) continue;  // names no field: ignored
    if (!PercentDecode(eq == absl::string_view::npos ? "" : pair.substr(eq + 1), &value, true)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed percent-encoding in query parameter \"", absl::CHexEscape(pair), "\""));
    }
    if (binding.body == "*") {
      return absl::InvalidArgumentError(
          "query parameters are not accepted here: the body carries every field");
    }
    // Fields bound by the path or the body cannot be set again from the query.
    if (head != nullptr && !binding.body.empty() &&
        json::FindFieldByAnyName(descriptor, binding.body) == head) {
      return BadParameter(name, "is carried by the request body");
    }
    for (const auto& [field, unused] : path_variables) {
      const FieldDescriptor* bound = json::FindFieldByAnyName(descriptor, Head(field));
      if (bound != nullptr && bound == head && (field == name || Head(field) == name)) {
        return BadParameter(name, "is bound by the path");
      }
    }
    if (absl::Status s = SetFromText(request, name, value, name, &set_by_query); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::string MessageJson(const Message& message) {
  std::string json;
  // JSON runs to about one and a half times the wire size (names, quotes, decimal digits):
  // one allocation instead of doubling up from a small buffer (ten times for a 50-item page).
  json.reserve(64 + message.ByteSizeLong() * 3 / 2);
  if (AppendCanonicalJson(message, &json)) return json;
  json.clear();  // a type the fast printer leaves to protobuf
  (void)google::protobuf::util::MessageToJsonString(message, &json, PrintOptions());
  return json;
}

absl::StatusOr<std::string> RenderResponse(const HttpBinding& binding, const Message& response) {
  if (binding.response_body.empty()) return MessageJson(response);
  const FieldDescriptor* f =
      json::FindFieldByAnyName(response.GetDescriptor(), binding.response_body);
  if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return absl::InternalError(
        absl::StrCat("response_body ", binding.response_body, " is not a message field"));
  }
  const Reflection* r = response.GetReflection();
  if (!f->is_repeated()) return MessageJson(r->GetMessage(response, f));
  std::vector<std::string> items;
  for (int i = 0; i < r->FieldSize(response, f); ++i)
    items.push_back(MessageJson(r->GetRepeatedMessage(response, f, i)));
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

int HttpStatusForCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::UNKNOWN:
      return 500;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 400;
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::INTERNAL:
      return 500;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DATA_LOSS:
      return 500;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    default:
      return 500;
  }
}

google::rpc::Status RpcStatusOf(const grpc::Status& status) {
  google::rpc::Status rpc_status;
  if (status.error_details().empty() || !rpc_status.ParseFromString(status.error_details())) {
    rpc_status.Clear();
  }
  rpc_status.set_code(static_cast<int>(status.error_code()));
  rpc_status.set_message(status.error_message());
  return rpc_status;
}

std::string StatusJson(const google::rpc::Status& rpc_status) {
  std::string json;
  google::protobuf::util::JsonPrintOptions print = PrintOptions();
  if (!google::protobuf::util::MessageToJsonString(rpc_status, &json, print).ok()) {
    // A detail of a type this binary does not know: drop the details, keep code and message.
    google::rpc::Status bare;
    bare.set_code(rpc_status.code());
    bare.set_message(rpc_status.message());
    json.clear();
    (void)google::protobuf::util::MessageToJsonString(bare, &json, print);
  }
  return json;
}

std::string StatusJson(const grpc::Status& status) { return StatusJson(RpcStatusOf(status)); }

}  // namespace hotpath::gateway
