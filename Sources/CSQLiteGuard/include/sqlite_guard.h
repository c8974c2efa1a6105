#ifndef KAIFANG_SQLITE_GUARD_H
#define KAIFANG_SQLITE_GUARD_H

// The sandbox's second wall around SQLite (docs/sandbox-guide.md). The pointers are `sqlite3 *`, typed
// `void *` here so Swift does not see <sqlite3.h> twice (GRDBSQLite already exports it).

/// Turns on SQLITE_DBCONFIG_DEFENSIVE, turns off trusted_schema, extension loading, triggers,
/// views and double-quoted string literals, tightens sqlite3_limit()s, and installs the
/// allowlist authorizer and the deadline progress handler. Returns 0 on success.
int kaifang_sqlite_harden(void *db, double deadline_seconds, long long heap_limit_bytes, int sorter_threads);

/// One malloc arena for every thread of the process (glibc would reserve another 64 MiB of
/// address space for each thread's own; the job's address space is limited).
void kaifang_single_malloc_arena(void);

/// The server's heap: one arena, and blocks of 4 MiB and more mapped on their own (glibc
/// otherwise raises that threshold after the first large free, and an import's index keys then
/// stay in the heap after it ends).
void kaifang_server_malloc_settings(void);

/// Gives free heap memory back to the system (glibc's malloc_trim; nothing elsewhere).
void kaifang_trim_malloc(void);

/// Whether the deadline set by kaifang_sqlite_harden has passed (the query was interrupted).
int kaifang_sqlite_deadline_passed(void);

/// How many authorizer denials happened, and the last denied action's code (for error messages).
int kaifang_sqlite_denials(void);
int kaifang_sqlite_last_denied_action(void);

/// Whether the runner that started this process is gone (the progress handler then stops the
/// query, so a job never outlives its runner). PR_SET_PDEATHSIG is not used: it fires when the
/// spawning *thread* exits, which in a thread pool is any time.
int kaifang_parent_gone(void);

/// The runner's pid (given by the runner, so a child started after its runner died still knows).
void kaifang_set_runner(int pid);

#endif
