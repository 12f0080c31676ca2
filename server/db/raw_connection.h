// libpq's handle of a libpqxx connection, for what libpqxx 6.4 does not wrap (non-blocking
// statements, the parameters the server reports).
#pragma once

#include <libpq-fe.h>

#include <pqxx/connection>
#include <pqxx/dbtransaction>
#include <pqxx/largeobject>

namespace hotpath::db {

// libpqxx 6.4 keeps a connection's PGconn to itself but for large objects, whose subclasses may
// ask for it through a transaction (largeobject::raw_connection, protected). A transaction that
// never begins (libpqxx sends BEGIN only on a transaction's first statement) is enough to ask: no
// round trip, but no other transaction may be open on the connection.
class RawConnection final : private pqxx::largeobject {
 public:
  static PGconn* Of(pqxx::connection& connection) {
    const Unbegun unbegun(connection);
    return raw_connection(unbegun);
  }

 private:
  class Unbegun final : public pqxx::dbtransaction {
   public:
    explicit Unbegun(pqxx::connection_base& connection)
        : namedclass("unbegun"), dbtransaction(connection) {}
    ~Unbegun() override { End(); }

   private:
    void do_commit() override {}
  };
};

}  // namespace hotpath::db
