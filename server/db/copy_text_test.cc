#include "server/db/copy_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hotpath::db {
namespace {

TEST(CopyTextTest, EscapesWhatTheTextFormatGivesMeaningToAndNothingElse) {
  CopyText rows;
  rows.Text("tab\there");
  rows.Text("two\nlines\r\n");
  rows.Text("back\\slash and \\N");
  rows.Text("caf\xC3\xA9 \xF0\x9F\x98\x80 \"quoted\" {braces},");
  rows.Text("");
  rows.EndRow();
  EXPECT_EQ(rows.text(),
            "tab\\there\ttwo\\nlines\\r\\n\tback\\\\slash and \\\\N\t"
            "caf\xC3\xA9 \xF0\x9F\x98\x80 \"quoted\" {braces},\t\n");
  EXPECT_EQ(rows.rows(), 1u);
}

TEST(CopyTextTest, WritesIntegersAndRowsOneAfterAnother) {
  CopyText rows;
  rows.Integer(0);
  rows.Integer(-42);
  rows.EndRow();
  rows.Integer(9223372036854775807);
  rows.Text("x");
  rows.EndRow();
  EXPECT_EQ(rows.text(), "0\t-42\n9223372036854775807\tx\n");
  EXPECT_EQ(rows.rows(), 2u);
  rows.Clear();
  EXPECT_EQ(rows.text(), "");
  EXPECT_EQ(rows.rows(), 0u);
  rows.Text("again");
  rows.EndRow();
  EXPECT_EQ(rows.text(), "again\n");
}

// An array literal's elements are quoted, their quotes and backslashes escaped for the array
// parser, and the whole field then escaped for COPY (so each of those backslashes doubles).
TEST(CopyTextTest, QuotesEveryArrayElementAndEscapesItTwice) {
  CopyText rows;
  rows.TextArray(std::vector<std::string>{"plain", "NULL", "say \"hi\"", "a\\b", "x,y {z}", ""});
  rows.TextArray(std::vector<std::string>{});
  rows.EndRow();
  EXPECT_EQ(rows.text(),
            "{\"plain\",\"NULL\",\"say \\\\\"hi\\\\\"\",\"a\\\\\\\\b\",\"x,y {z}\",\"\"}\t{}\n");
}

}  // namespace
}  // namespace hotpath::db
