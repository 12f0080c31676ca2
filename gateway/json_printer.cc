#include "gateway/json_printer.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/strutil.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/http/json_quote.h"

namespace hotpath::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void AppendString(const std::string& s, std::string* out) { http::AppendJsonString(s, out); }

void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) return out->append("\"NaN\""), void();
  if (std::isinf(v)) return out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\""), void();
  out->append(google::protobuf::SimpleDtoa(v));
}

void AppendFloat(float v, std::string* out) {
  if (std::isnan(v)) return out->append("\"NaN\""), void();
  if (std::isinf(v)) return out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\""), void();
  out->append(google::protobuf::SimpleFtoa(v));
}

// value (0 <= value < 10^width) as exactly `width` digits, zero-padded, at p; returns the end.
char* WritePadded(std::int64_t value, int width, char* p) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return p + width;
}

// Fractional seconds as protobuf writes them: none, or 3, 6 or 9 digits.
char* WriteNanos(std::int32_t nanos, char* p) {
  if (nanos == 0) return p;
  *p++ = '.';
  if (nanos % 1000000 == 0) return WritePadded(nanos / 1000000, 3, p);
  if (nanos % 1000 == 0) return WritePadded(nanos / 1000, 6, p);
  return WritePadded(nanos, 9, p);
}

void AppendNanos(std::int32_t nanos, std::string* out) {
  char buffer[16];
  out->append(buffer, static_cast<std::size_t>(WriteNanos(nanos, buffer) - buffer));
}

// A Timestamp's JSON string: RFC 3339 in UTC with protobuf's fraction ("2026-11-28T08:42:24Z"),
// built in one buffer.
void AppendTimestamp(std::int64_t seconds, std::int32_t nanos, std::string* out) {
  constexpr std::int64_t kDay = 86400;
  const std::int64_t days = seconds >= 0 ? seconds / kDay : (seconds - kDay + 1) / kDay;
  const std::int64_t of_day = seconds - days * kDay;
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{days}}};
  const int year = static_cast<int>(date.year());
  if (year < 0 || year > 9999) {  // outside Timestamp's range: as absl prints it
    out->push_back('"');
    out->append(absl::FormatTime("%4Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(seconds),
                                 absl::UTCTimeZone()));
    AppendNanos(nanos, out);
    out->append("Z\"");
    return;
  }
  char buffer[48];
  char* p = buffer;
  *p++ = '"';
  p = WritePadded(year, 4, p);
  *p++ = '-';
  p = WritePadded(static_cast<unsigned>(date.month()), 2, p);
  *p++ = '-';
  p = WritePadded(static_cast<unsigned>(date.day()), 2, p);
  *p++ = 'T';
  p = WritePadded(of_day / 3600, 2, p);
  *p++ = ':';
  p = WritePadded(of_day / 60 % 60, 2, p);
  *p++ = ':';
  p = WritePadded(of_day % 60, 2, p);
  p = WriteNanos(nanos, p);
  *p++ = 'Z';
  *p++ = '"';
  out->append(buffer, static_cast<std::size_t>(p - buffer));
}

bool AppendMessage(const Message& message, std::string* out);

// Well-known types with a JSON form of their own. Returns false for types left to protobuf; sets
// *handled when the message was a well-known type it printed.
// d and r: message's descriptor and reflection (each lookup costs a call_once in protobuf).
bool AppendWellKnown(const Message& message, const Descriptor* d, const Reflection* r,
                     std::string* out, bool* handled) {
  *handled = false;
  if (d->file()->name().rfind("google/protobuf/", 0) != 0) return true;
  const std::string& name = d->full_name();
  if (name == "google.protobuf.Timestamp") {
    AppendTimestamp(r->GetInt64(message, d->field(0)), r->GetInt32(message, d->field(1)), out);
  } else if (name == "google.protobuf.Duration") {
    std::int64_t seconds = r->GetInt64(message, d->field(0));
    std::int32_t nanos = r->GetInt32(message, d->field(1));
    out->push_back('"');
    if (seconds < 0 || nanos < 0) {
      out->push_back('-');
      seconds = -seconds;
      nanos = -nanos;
    }
    absl::StrAppend(out, seconds);
    AppendNanos(nanos, out);
    out->append("s\"");
  } else if (name == "google.protobuf.FieldMask") {
    const FieldDescriptor* paths = d->FindFieldByNumber(1);
    std::string joined;
    for (int i = 0; i < r->FieldSize(message, paths); ++i) {
      if (i > 0) joined.push_back(',');
      // snake_case -> lowerCamelCase, per segment.
      bool upper = false;
      for (const char c : r->GetRepeatedString(message, paths, i)) {
        if (c == '_') {
          upper = true;
        } else {
          joined.push_back(upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
          upper = false;
        }
      }
    }
    AppendString(joined, out);
  } else if (name == "google.protobuf.DoubleValue" || name == "google.protobuf.FloatValue" ||
             name == "google.protobuf.Int64Value" || name == "google.protobuf.UInt64Value" ||
             name == "google.protobuf.Int32Value" || name == "google.protobuf.UInt32Value" ||
             name == "google.protobuf.BoolValue" || name == "google.protobuf.StringValue" ||
             name == "google.protobuf.BytesValue") {
    return false;  // handled by the caller as the wrapped scalar
  } else if (name == "google.protobuf.Empty") {
    out->append("{}");
  } else {
    return false;  // Any, Struct, Value, ListValue: protobuf's printer
  }
  *handled = true;
  return true;
}

// r: m's reflection.
bool AppendScalar(const Message& m, const Reflection* r, const FieldDescriptor* f, int index,
                  std::string* out) {
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f), "\"");
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendDouble(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendFloat(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      if (f->enum_type()->full_name() == "google.protobuf.NullValue") return false;
      const auto* value = f->enum_type()->FindValueByNumber(number);
      if (value != nullptr) {
        AppendString(value->name(), out);
      } else {
        absl::StrAppend(out, number);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        out->push_back('"');
        out->append(absl::Base64Escape(s));
        out->push_back('"');
      } else {
        AppendString(s, out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
      return AppendMessage(sub, out);
    }
  }
  return true;
}

bool AppendMessage(const Message& message, std::string* out) {
  const Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  bool handled;
  if (!AppendWellKnown(message, d, r, out, &handled)) {
    // A wrapper prints as its value.
    if (d->file()->name() == "google/protobuf/wrappers.proto") {
      return AppendScalar(message, r, d->FindFieldByNumber(1), -1, out);
    }
    return false;
  }
  if (handled) return true;
  // protobuf's order: the fields without presence (scalars, lists) in declaration order, then the
  // set fields with presence (messages, oneofs, optionals) in field-number order.
  absl::InlinedVector<const FieldDescriptor*, 32> fields;
  absl::InlinedVector<const FieldDescriptor*, 16> present;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated() || !f->has_presence()) {
      fields.push_back(f);
    } else if (r->HasField(message, f)) {
      present.push_back(f);
    }
  }
  std::sort(present.begin(), present.end(), [](const FieldDescriptor* a, const FieldDescriptor* b) {
    return a->number() < b->number();
  });
  fields.insert(fields.end(), present.begin(), present.end());
  out->push_back('{');
  bool first = true;
  for (const FieldDescriptor* f : fields) {
    if (f->is_map()) return false;
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    out->append(f->json_name());
    out->append("\":");
    if (f->is_repeated()) {
      out->push_back('[');
      const int n = r->FieldSize(message, f);
      for (int i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        if (!AppendScalar(message, r, f, i, out)) return false;
      }
      out->push_back(']');
    } else if (!AppendScalar(message, r, f, -1, out)) {
      return false;
    }
  }
  out->push_back('}');
  return true;
}

}  // namespace

bool AppendCanonicalJson(const Message& message, std::string* out) {
  return AppendMessage(message, out);
}

}  // namespace hotpath::gateway
