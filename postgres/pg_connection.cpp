#include <shardflow/postgres/pg_connection.hpp>

#include <utility>

#include <libpq-fe.h>

namespace shardflow::postgres {

namespace {

// libpq's messages end in a newline and may span lines; ours are one line.
std::string trimmed(const char* text) {
  std::string s;
  for (const char* p = text != nullptr ? text : ""; *p != '\0'; ++p) {
    if (*p == '\n' || *p == '\t') {
      if (!s.empty() && s.back() != ' ')
        s.push_back(' ');
    } else {
      s.push_back(*p);
    }
  }
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

// A connection the server refused for good: the reasons no new attempt can fix.
bool refused_for_good(const std::string& message) {
  for (const char* what : {"authentication failed", "no password supplied", "does not exist",
                           "password is required", "no pg_hba.conf entry", "invalid "})
    if (message.find(what) != std::string::npos)
      return true;
  return false;
}

} // namespace

pg_failure::pg_failure(std::string message, std::string sqlstate, bool transient)
  : std::runtime_error(std::move(message)), sqlstate_(std::move(sqlstate)), transient_(transient) {
  // nop
}

bool transient_sqlstate(const std::string& sqlstate) {
  if (sqlstate.size() != 5)
    return true; // no SQLSTATE: the connection broke
  const auto cls = sqlstate.substr(0, 2);
  return cls == "08" || cls == "40" || cls == "53" || cls == "58" || sqlstate.rfind("57P", 0) == 0;
}

void check_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    auto why = trimmed(err != nullptr ? err : "out of memory");
    PQfreemem(err);
    throw pg_failure{"not a libpq connection string or URI: " + why, "", false};
  }
  PQconninfoFree(opts);
}

namespace {

extern "C" void forward_notice(void* arg, const char* message) {
  const auto& notices = static_cast<const pg_connection*>(arg)->notices();
  notices(log_level::warning, "postgres: " + trimmed(message));
}

} // namespace

pg_connection::pg_connection(const std::string& conninfo, log_sink notices)
  : notices_(std::move(notices)) {
  check_conninfo(conninfo);
  conn_ = PQconnectdb(conninfo.c_str());
  if (conn_ != nullptr && notices_)
    PQsetNoticeProcessor(conn_, forward_notice, this);
  if (conn_ == nullptr)
    throw pg_failure{"cannot connect to PostgreSQL: out of memory", "", true};
  if (PQstatus(conn_) != CONNECTION_OK) {
    auto why = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw pg_failure{"cannot connect to PostgreSQL: " + why, "", !refused_for_good(why)};
  }
}

pg_connection::~pg_connection() {
  if (conn_ != nullptr)
    PQfinish(conn_);
}

void pg_connection::fail(pg_result* res, const std::string& what) {
  std::string sqlstate;
  std::string message;
  if (res != nullptr) {
    if (const char* code = PQresultErrorField(res, PG_DIAG_SQLSTATE))
      sqlstate = code;
    message = trimmed(PQresultErrorMessage(res));
    PQclear(res);
  }
  if (message.empty())
    message = trimmed(PQerrorMessage(conn_));
  const bool lost = PQstatus(conn_) != CONNECTION_OK;
  throw pg_failure{what + ": " + message, sqlstate, lost || transient_sqlstate(sqlstate)};
}

void pg_connection::check(pg_result* res, int expected, const std::string& what) {
  if (res == nullptr || PQresultStatus(res) != expected)
    fail(res, what);
  PQclear(res);
}

void pg_connection::exec(const std::string& sql) {
  auto* res = PQexec(conn_, sql.c_str());
  if (res != nullptr && PQresultStatus(res) == PGRES_TUPLES_OK) {
    PQclear(res);
    return;
  }
  check(res, PGRES_COMMAND_OK, sql.substr(0, sql.find(' ')));
}

std::vector<std::vector<std::string>> pg_connection::query(const std::string& sql,
                                                           const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (auto& p : params)
    values.push_back(p.c_str());
  auto* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                           values.data(), nullptr, nullptr, 0);
  if (res == nullptr || PQresultStatus(res) != PGRES_TUPLES_OK)
    fail(res, "query");
  std::vector<std::vector<std::string>> rows;
  for (int r = 0; r < PQntuples(res); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < PQnfields(res); ++c)
      row.emplace_back(PQgetvalue(res, r, c));
    rows.push_back(std::move(row));
  }
  PQclear(res);
  return rows;
}

void pg_connection::copy_in(const std::string& sql, const std::vector<const std::string*>& data) {
  auto* res = PQexec(conn_, sql.c_str());
  if (res == nullptr || PQresultStatus(res) != PGRES_COPY_IN)
    fail(res, "COPY");
  PQclear(res);
  constexpr std::size_t chunk = 1 << 20;
  for (const auto* piece : data) {
    for (std::size_t at = 0; at < piece->size(); at += chunk) {
      const auto n = std::min(chunk, piece->size() - at);
      if (PQputCopyData(conn_, piece->data() + at, static_cast<int>(n)) != 1)
        fail(nullptr, "COPY");
    }
  }
  if (PQputCopyEnd(conn_, nullptr) != 1)
    fail(nullptr, "COPY");
  res = PQgetResult(conn_);
  if (res == nullptr || PQresultStatus(res) != PGRES_COMMAND_OK) {
    while (auto* more = PQgetResult(conn_)) // drain before the connection is reused
      PQclear(more);
    fail(res, "COPY");
  }
  PQclear(res);
  while (auto* more = PQgetResult(conn_))
    PQclear(more);
}

std::string pg_connection::database() const {
  return PQdb(conn_);
}

// -- pg_connections ------------------------------------------------------------------------------

pg_connections::pg_connections(std::string conninfo, std::function<void(pg_connection&)> on_connect,
                               log_sink notices)
  : conninfo_(std::move(conninfo)), on_connect_(std::move(on_connect)), notices_(std::move(notices)) {
  // nop
}

std::unique_ptr<pg_connection> pg_connections::take() {
  {
    std::lock_guard<std::mutex> guard{mu_};
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
  }
  auto conn = std::make_unique<pg_connection>(conninfo_, notices_);
  if (on_connect_)
    on_connect_(*conn);
  return conn;
}

void pg_connections::give_back(std::unique_ptr<pg_connection> conn) {
  std::lock_guard<std::mutex> guard{mu_};
  idle_.push_back(std::move(conn));
}

} // namespace shardflow::postgres
