// bench/result_format's client: PostgreSQL's CPU for hotpath's batch read (items by id, as
// PgItemStore's batch_get_items) with results in text format, as hotpath asks for them, and in
// binary, on one connection, one query at a time.
//
//   result_format CONNINFO QUERIES IDS_PER_QUERY ROUNDS
//
// Prints, for each round of each format, the backend's CPU (utime + stime from /proc) and the
// wall time per query.
#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace {

// CPU the process pid has used, in clock ticks.
long CpuTicks(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));  // from field 3, the state
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stol(field);  // utime, stime
  }
  return ticks;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s CONNINFO QUERIES IDS_PER_QUERY ROUNDS\n", argv[0]);
    return 2;
  }
  PGconn* connection = PQconnectdb(argv[1]);
  if (PQstatus(connection) != CONNECTION_OK) {
    std::fprintf(stderr, "%s", PQerrorMessage(connection));
    return 1;
  }
  const int queries = std::atoi(argv[2]);
  const int ids = std::atoi(argv[3]);
  const int rounds = std::atoi(argv[4]);
  // As hotpath's pooled sessions are set (server/db/pg_pool.h): one plan per statement, times
  // printed in UTC.
  PQclear(PQexec(connection,
                 "SET plan_cache_mode = force_generic_plan; SET TimeZone = 'UTC'; "
                 "SET DateStyle = 'ISO, YMD'"));
  PQclear(PQprepare(connection, "batch",
                    "SELECT id, sku, name, description, category, price_cents, stock, tags, "
                    "create_time, update_time, version FROM items WHERE id = ANY($1::bigint[])",
                    1, nullptr));
  const int backend = PQbackendPID(connection);
  std::mt19937 random(1);
  for (int round = 0; round < rounds; ++round) {
    for (const int format : {0, 1}) {
      const long cpu_before = CpuTicks(backend);
      const auto wall_before = std::chrono::steady_clock::now();
      for (int q = 0; q < queries; ++q) {
        std::string array = "{";
        for (int i = 0; i < ids; ++i) {
          if (i > 0) array += ",";
          array += std::to_string(1 + random() % 10000);
        }
        array += "}";
        const char* values[] = {array.c_str()};
        PGresult* result = PQexecPrepared(connection, "batch", 1, values, nullptr, nullptr, format);
        if (PQresultStatus(result) != PGRES_TUPLES_OK) {
          std::fprintf(stderr, "%s", PQerrorMessage(connection));
          return 1;
        }
        PQclear(result);
      }
      const double cpu_us =
          (CpuTicks(backend) - cpu_before) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
      const double wall_us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - wall_before)
              .count();
      std::printf("| %d | %s | %d | %.1f | %.1f |\n", round + 1, format == 0 ? "text" : "binary",
                  ids, cpu_us / queries, wall_us / queries);
    }
  }
  PQfinish(connection);
}
