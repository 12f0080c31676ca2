#include "server/db/copy_text.h"

#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include "absl/strings/str_cat.h"

namespace hotpath::db {

void CopyText::BeginField() {
  if (row_started_) text_ += '\t';
  row_started_ = true;
}

void CopyText::Text(std::string_view value) {
  BeginField();
  AppendEscaped(value);
}

void CopyText::Integer(std::int64_t value) {
  BeginField();
  absl::StrAppend(&text_, value);
}

void CopyText::EndRow() {
  text_ += '\n';
  row_started_ = false;
  ++rows_;
}

void CopyText::Clear() {
  text_.clear();
  row_started_ = false;
  rows_ = 0;
}

// The text format gives meaning to backslash, and ends fields and rows at tab, newline and
// carriage return: those four are escaped, every other byte is itself.
void CopyText::AppendEscaped(std::string_view value) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '\t' && c != '\n' && c != '\r') continue;
    text_.append(value.data() + start, i - start);
    text_ += '\\';
    text_ += c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
    start = i + 1;
  }
  text_.append(value.data() + start, value.size() - start);
}

// libpqxx 6.4 sends ready-made COPY lines only through tablewriter, deprecated there in favour of
// stream_to, which has no such call until 7.x.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
CopyWriter::CopyWriter(pqxx::transaction_base& transaction, const std::string& table,
                       const std::vector<std::string>& columns)
    : writer_(std::make_unique<pqxx::tablewriter>(transaction, table, columns.begin(),
                                                  columns.end())) {}
#pragma GCC diagnostic pop

CopyWriter::~CopyWriter() = default;

void CopyWriter::Write(const CopyText& rows) {
  if (rows.rows() > 0) writer_->write_raw_line(rows.text());
}

void CopyWriter::Complete() { writer_->complete(); }

}  // namespace hotpath::db
