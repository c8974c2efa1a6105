#include "sqlite_guard.h"
#include <sqlite3.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <stdlib.h>
#endif

static pid_t parent_pid = 0;
static int parent_gone = 0;

int kaifang_parent_gone(void) { return parent_gone; }
void kaifang_set_runner(int pid) { parent_pid = (pid_t)pid; }

static double deadline = 0;
static int deadline_passed = 0;
static int denials = 0;
static int last_denied = 0;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int progress(void *arg) {
    (void)arg;
    if (now_seconds() > deadline) { deadline_passed = 1; return 1; }
    if (parent_pid != 0 && getppid() != parent_pid) { parent_gone = 1; return 1; }
    return 0;
}

/* Functions a job may call. The sandbox's own rewrites use only these too. */
static const char *allowed_functions[] = {
    "count", "sum", "total", "avg", "min", "max", "round", "abs", "coalesce", "ifnull", "nullif",
    "substr", "length", "lower", "upper", "trim", "date", "strftime", "julianday", "like",
    /* the runner's own aggregates for the rules' material; the checker refuses them in a job's SQL */
    "kaifang_units", "kaifang_dominance", NULL
};

static int deny(int action) { denials++; last_denied = action; return SQLITE_DENY; }

static int authorizer(void *arg, int action, const char *a, const char *b, const char *db, const char *trigger) {
    (void)arg; (void)db; (void)trigger;
    switch (action) {
    case SQLITE_SELECT:
        return SQLITE_OK;
    case SQLITE_READ:
        /* Only the data table of an attached version file; never sqlite_master, never metadata. */
        if (a && strcmp(a, "rows") == 0) return SQLITE_OK;
        return deny(action);
    case SQLITE_FUNCTION:
        if (b) {
            for (const char **f = allowed_functions; *f; f++) {
                if (strcasecmp(*f, b) == 0) return SQLITE_OK;
            }
        }
        return deny(action);
    default:
        return deny(action);
    }
}

int kaifang_sqlite_harden(void *handle, double deadline_seconds, long long heap_limit_bytes, int sorter_threads) {
    sqlite3 *db = (sqlite3 *)handle;
    int on = 0;
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK || on != 1) return 1;
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on) != SQLITE_OK || on != 0) return 2;
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &on) != SQLITE_OK || on != 0) return 3;
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &on) != SQLITE_OK) return 4;
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, &on) != SQLITE_OK) return 5;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, (void *)0);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, (void *)0);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000000);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 200000);
    sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 200);
    sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 200);
    sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 1);
    sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 250000);
    sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 8);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 200);
    sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 0);
    sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
    sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, sorter_threads);   /* what PRAGMA threads sets */
    if (heap_limit_bytes > 0) sqlite3_hard_heap_limit64(heap_limit_bytes);
    deadline = now_seconds() + deadline_seconds;
    deadline_passed = 0;
    if (parent_pid == 0) parent_pid = getppid();
    sqlite3_progress_handler(db, 1000, progress, 0);
    if (sqlite3_set_authorizer(db, authorizer, 0) != SQLITE_OK) return 6;
    return 0;
}

int kaifang_sqlite_deadline_passed(void) { return deadline_passed; }
int kaifang_sqlite_denials(void) { return denials; }
int kaifang_sqlite_last_denied_action(void) { return last_denied; }

void kaifang_single_malloc_arena(void) {
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 1);
#endif
}

void kaifang_server_malloc_settings(void) {
#ifdef __GLIBC__
    // KAIFANG_BENCH_MALLOC_DEFAULTS=1 keeps glibc's defaults: bench/upload.sh's control, never a setting.
    const char *control = getenv("KAIFANG_BENCH_MALLOC_DEFAULTS");
    if (control && strcmp(control, "1") == 0) return;
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
#endif
}

void kaifang_trim_malloc(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}
