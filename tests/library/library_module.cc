#include "tests/library/library_module.h"

#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "hotpath/library/v1/library.grpc.pb.h"
#include "server/db/with_connection.h"

namespace hotpath::library {
namespace {

constexpr char kInsertBook[] = "library_insert_book";
constexpr char kGetBook[] = "library_get_book";
constexpr char kListTitles[] = "library_list_titles";

// Titles per CountTitles batch.
constexpr int kCountBatch = 10;

class Counter final : public rpc::StreamSource<v1::Title> {
 public:
  explicit Counter(v1::CountTitlesRequest request) : request_(std::move(request)) {}
  absl::Status Next(std::vector<v1::Title>* batch, bool* done) override {
    for (int i = 0; i < kCountBatch && next_ < request_.n(); ++i) {
      batch->emplace_back().set_text(absl::StrCat("title ", next_++));
    }
    if (next_ < request_.n()) return absl::OkStatus();
    if (request_.fail() && batch->empty()) return absl::AbortedError("ran out of titles");
    *done = !request_.fail();
    return absl::OkStatus();
  }

 private:
  const v1::CountTitlesRequest request_;  // how many, and whether to fail
  int next_ = 0;                          // the next title's number
};

}  // namespace

std::vector<db::Migration> LibraryModule::Migrations() const {
  return {{"library_0001_books", R"sql(
CREATE TABLE books (
  name  text PRIMARY KEY,
  shelf text NOT NULL,
  title text NOT NULL,
  pages integer NOT NULL DEFAULT 0
))sql"}};
}

std::vector<db::PreparedStatement> LibraryModule::Statements() const {
  return {
      {kInsertBook, "INSERT INTO books (name, shelf, title, pages) VALUES ($1, $2, $3, $4)"},
      {kGetBook, "SELECT shelf, title, pages FROM books WHERE name = $1"},
      {kListTitles, "SELECT title FROM books ORDER BY name"},
  };
}

absl::Status LibraryModule::Start(const module::ModuleContext& context) {
  pool_ = context.pool;
  books_ = std::make_unique<cache::TtlCache<std::string, v1::Book>>(
      cache::CacheOptions{.name = "books", .max_entries = 1000, .ttl = absl::Seconds(60)},
      [this](const std::string& name, absl::Time deadline) -> absl::StatusOr<v1::Book> {
        return db::WithConnection<v1::Book>(
            *pool_, "reading a book", deadline, true,
            [&name](pqxx::connection& c) -> absl::StatusOr<v1::Book> {
              pqxx::nontransaction tx(c);
              const pqxx::result rows = tx.exec_prepared(kGetBook, name);
              if (rows.empty()) return absl::NotFoundError(absl::StrCat(name, " not found"));
              v1::Book book;
              book.set_name(name);
              book.set_shelf(rows[0][0].c_str());
              book.set_title(rows[0][1].c_str());
              book.set_pages(rows[0][2].as<int>());
              return book;
            });
      },
      context.scheduler);
  bindings_ = rpc::ServiceBindings::For<v1::LibraryService>(context.executor);
  (*bindings_)
      .Cached("GetBook", this, &LibraryModule::GetBook, rpc::Answers::kHeld)
      .OnExecutor("CreateBook", this, &LibraryModule::CreateBook)
      .OnExecutor("ListTitles", this, &LibraryModule::ListTitles)
      .ServerStream("CountTitles", this, &LibraryModule::CountTitles)
      .Cached("Echo", this, &LibraryModule::Echo, rpc::Answers::kBuilt);
  return bindings_->Check();
}

void LibraryModule::GetBook(const v1::GetBookRequest& request, absl::Time deadline,
                            rpc::SharedDone<v1::Book> done) {
  books_->Get(request.name(), std::move(done), deadline);
}

absl::StatusOr<v1::Book> LibraryModule::CreateBook(const v1::Book& book, absl::Time deadline) {
  if (book.shelf().empty() ||
      !absl::StartsWith(book.name(), absl::StrCat(book.shelf(), "/books/"))) {
    return absl::InvalidArgumentError("a book's name must be <shelf>/books/<id>");
  }
  auto stored = db::WithConnection<v1::Book>(
      *pool_, "storing a book", deadline, false,
      [&book](pqxx::connection& c) -> absl::StatusOr<v1::Book> {
        pqxx::work tx(c);
        tx.exec_prepared(kInsertBook, book.name(), book.shelf(), book.title(), book.pages());
        tx.commit();
        return book;
      });
  // A cached NOT_FOUND of this name is stale now.
  if (stored.ok()) books_->Invalidate(book.name());
  return stored;
}

absl::StatusOr<v1::ListTitlesResponse> LibraryModule::ListTitles(const v1::ListTitlesRequest&,
                                                                 absl::Time deadline) {
  return db::WithConnection<v1::ListTitlesResponse>(
      *pool_, "listing titles", deadline, true,
      [](pqxx::connection& c) -> absl::StatusOr<v1::ListTitlesResponse> {
        pqxx::nontransaction tx(c);
        v1::ListTitlesResponse response;
        for (const auto& row : tx.exec_prepared(kListTitles)) {
          response.add_titles()->set_text(row[0].c_str());
        }
        return response;
      });
}

absl::StatusOr<std::unique_ptr<rpc::StreamSource<v1::Title>>> LibraryModule::CountTitles(
    const v1::CountTitlesRequest& request, absl::Time) {
  if (request.n() < 0 || request.n() > 10'000) {
    return absl::InvalidArgumentError("n must be within 0..10000");
  }
  return std::make_unique<Counter>(request);
}

void LibraryModule::Echo(const v1::EchoRequest& request, absl::Time,
                         rpc::SharedDone<v1::EchoRequest> done) {
  done(std::make_shared<const v1::EchoRequest>(request));
}

}  // namespace hotpath::library
