// postgres/pg_connection.hpp - one libpq connection, its failures sorted into "try again" and
// "give up", and a set of idle connections the writers of many shards share.
//
// `pg_connection` owns a PGconn in blocking mode. Every call either succeeds or throws `pg_failure`,
// whose `transient` says whether a new connection may succeed where this one failed: the
// connection was lost or refused, the server is starting or shutting down (SQLSTATE classes 08,
// 57P, 53, 58, 40), as opposed to a wrong password, a missing database, table or column, or a row
// the table refuses (classes 28, 3D, 42, 22, 23 and every other), which no retry can fix.
//
// Threading: a connection is used by one thread at a time (libpq's rule); `pg_connections` hands
// each to one writer at a time and is safe to share.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <shardflow/core/log.hpp>

struct pg_conn;
struct pg_result;

namespace shardflow::postgres {

/// A failed libpq call: the server's message (or libpq's), its SQLSTATE if any, and whether a
/// retry on a new connection may succeed.
class pg_failure : public std::runtime_error {
public:
  pg_failure(std::string message, std::string sqlstate, bool transient);

  /// Returns the five-character SQLSTATE, or "" when the server sent none (a lost connection).
  const std::string& sqlstate() const noexcept {
    return sqlstate_;
  }

  /// Returns whether a new connection may succeed where this call failed.
  bool transient() const noexcept {
    return transient_;
  }

private:
  std::string sqlstate_;
  bool transient_;
};

/// Returns whether a failure with `sqlstate` may go away on a new connection.
bool transient_sqlstate(const std::string& sqlstate);

/// Checks that `conninfo` is a connection string or URI libpq can parse.
/// @throws pg_failure (not transient) with libpq's reason when it is not.
void check_conninfo(const std::string& conninfo);

/// One blocking libpq connection.
class pg_connection {
public:
  /// Connects. @throws pg_failure: transient when the server could not be reached or is not ready,
  ///         not transient when it refused us (authentication, a missing database or role).
  /// The server's notices and the messages libpq gets while idle ("FATAL:  terminating connection
  /// due to administrator command") go to `notices` as warnings, prefixed "postgres: "; without a
  /// sink libpq prints them to stderr itself.
  explicit pg_connection(const std::string& conninfo, log_sink notices = {});
  ~pg_connection();

  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  /// Runs `sql` (no result rows expected). @throws pg_failure
  void exec(const std::string& sql);

  /// Runs `sql` with text parameters and returns the rows as text (NULL as the empty string).
  /// @throws pg_failure
  std::vector<std::vector<std::string>> query(const std::string& sql,
                                              const std::vector<std::string>& params = {});

  /// Runs `COPY ... FROM STDIN` statement `sql` and sends the pieces of `data` one after the other.
  /// @throws pg_failure
  void copy_in(const std::string& sql, const std::vector<const std::string*>& data);

  /// Returns the name of the database connected to.
  std::string database() const;

  /// Returns where the connection's notices go (empty: libpq's stderr).
  const log_sink& notices() const noexcept {
    return notices_;
  }

private:
  [[noreturn]] void fail(pg_result* res, const std::string& what);
  void check(pg_result* res, int expected, const std::string& what);

  pg_conn* conn_ = nullptr;
  log_sink notices_;
};

/// Idle connections to one server, shared by the writers of many shards: a writer takes one (or a
/// new one is made), uses it, and gives it back unless it failed.
class pg_connections {
public:
  /// `on_connect` runs on each new connection before it is handed out (e.g. to create a staging
  /// table); it may throw pg_failure.
  pg_connections(std::string conninfo, std::function<void(pg_connection&)> on_connect,
                 log_sink notices = {});

  /// Returns an idle connection, or a new one. @throws pg_failure when connecting fails.
  std::unique_ptr<pg_connection> take();

  /// Gives back a connection that is still good.
  void give_back(std::unique_ptr<pg_connection> conn);

private:
  std::string conninfo_;
  std::function<void(pg_connection&)> on_connect_;
  log_sink notices_;
  std::mutex mu_;
  std::vector<std::unique_ptr<pg_connection>> idle_;
};

} // namespace shardflow::postgres
