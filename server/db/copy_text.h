// Rows for `COPY ... FROM STDIN` in PostgreSQL's text format, written into one buffer.
//
// libpqxx 6.4's stream_to makes each field a string of its own, escapes it a byte at a time (every
// byte past ASCII as a four-byte octal escape), joins the fields into another string per row and
// sends each row on its own: about a fifth of hotpathd's CPU in a bulk import (bench/NOTES.md,
// issue #19). CopyText appends the rows of a whole batch to one reused buffer, escaping only
// what the format requires (backslash, newline, carriage return, tab), so UTF-8 passes through
// as it is; the batch then goes to the server in one piece (CopyWriter).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pqxx {
class tablewriter;
class transaction_base;
}  // namespace pqxx

namespace hotpath::db {

// PostgreSQL's literal of a text[] holding values: every element in double quotes, its quotes
// and backslashes escaped (so no element reads as NULL or splits at a comma). A statement's
// parameter as it is; inside COPY text, escaped once more (CopyText::TextArray).
template <class Strings>
std::string TextArrayLiteral(const Strings& values) {
  std::string literal = "{";
  bool first = true;
  for (const auto& value : values) {
    if (!first) literal += ',';
    first = false;
    literal += '"';
    for (const char c : value) {
      if (c == '"' || c == '\\') literal += '\\';
      literal += c;
    }
    literal += '"';
  }
  literal += '}';
  return literal;
}

class CopyText final {
 public:
  // A text field, escaped.
  void Text(std::string_view value);
  void Integer(std::int64_t value);
  // A text[] field: TextArrayLiteral(values), escaped.
  template <class Strings>
  void TextArray(const Strings& values) {
    Text(TextArrayLiteral(values));
  }
  // Ends the row; the next field starts the next one.
  void EndRow();

  // The rows so far, each ending in a newline.
  const std::string& text() const { return text_; }
  std::size_t rows() const { return rows_; }
  void Clear();

 private:
  void BeginField();
  void AppendEscaped(std::string_view value);

  std::string text_;          // every row so far, and the one being written
  bool row_started_ = false;  // a field of the current row was written
  std::size_t rows_ = 0;      // rows ended
};

// A COPY into table (columns) in the text format, fed whole batches of CopyText. Errors are
// libpqxx's exceptions, as with stream_to: PostgreSQL names a bad row "COPY <table>, line N",
// and N counts rows across every batch.
class CopyWriter final {
 public:
  CopyWriter(pqxx::transaction_base& transaction, const std::string& table,
             const std::vector<std::string>& columns);
  ~CopyWriter();

  void Write(const CopyText& rows);
  // Ends the COPY; the caller then commits or aborts the transaction.
  void Complete();

 private:
  std::unique_ptr<pqxx::tablewriter> writer_;
};

}  // namespace hotpath::db
