/* cachehost.h: task options and logging for cachehost components written in C.
 *
 * Header-only, over the bindings `wit-bindgen c` generates for the component's world. Name
 * the world's C prefix (the name of its generated header), include that header, then this:
 *
 *     #define CACHEHOST_WORLD c_tasks_world
 *     #include "c_tasks_world.h"
 *     #include "cachehost.h"
 *
 *     CACHEHOST_TASK_OPTIONS(
 *         {.task = "greet", .cache_policy = "INPUTS - 'debug'", .cache_expiration = CACHEHOST_DAYS(1)},
 *         {.task = "fetch", .retries = CACHEHOST_SOME(3), .timeout = CACHEHOST_SECONDS(30)},
 *     )
 *
 *     cachehost_info("greeting %s", name);
 *
 * CACHEHOST_TASK_OPTIONS defines the world's `cachehost:task/options` export (the world must
 * export cachehost:task/options@0.1.0); each entry is a `struct cachehost_task`, whose fields
 * are Prefect's options. An unknown option is a compile error (no such field); a bad policy
 * expression fails when cachehost loads the component, with cachehost.toml's message. The
 * logging functions need the world to import cachehost:task/runtime@0.1.0.
 */
#ifndef CACHEHOST_H
#define CACHEHOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CACHEHOST_WORLD
#error "define CACHEHOST_WORLD as the world's C name (e.g. c_tasks_world) before including cachehost.h"
#endif

#define CACHEHOST_CAT_(a, b) a##b
#define CACHEHOST_CAT(a, b) CACHEHOST_CAT_(a, b)
/* A name of the world's bindings: CACHEHOST_W(_string_dup) is c_tasks_world_string_dup. */
#define CACHEHOST_W(suffix) CACHEHOST_CAT(CACHEHOST_WORLD, suffix)

/* An option that is set or not: unset fields of a `struct cachehost_task` are zero. */
struct cachehost_u64 { bool is_some; uint64_t val; };
/* A count that is set or not. */
struct cachehost_u32 { bool is_some; uint32_t val; };
/* A flag that is set (true or false) or not. */
struct cachehost_bool { bool is_some; bool val; };

/* A set option: `.retries = CACHEHOST_SOME(2)`. */
#define CACHEHOST_SOME(value) {true, (value)}
/* A set flag. */
#define CACHEHOST_TRUE {true, true}
/* A flag set to false. */
#define CACHEHOST_FALSE {true, false}
/* Durations, in the milliseconds the options take. */
#define CACHEHOST_MILLIS(n) CACHEHOST_SOME((uint64_t)(n))
#define CACHEHOST_SECONDS(n) CACHEHOST_SOME((uint64_t)(n) * 1000u)
#define CACHEHOST_MINUTES(n) CACHEHOST_SOME((uint64_t)(n) * 60000u)
#define CACHEHOST_HOURS(n) CACHEHOST_SOME((uint64_t)(n) * 3600000u)
#define CACHEHOST_DAYS(n) CACHEHOST_SOME((uint64_t)(n) * 86400000u)

/* One task's options (Prefect's @task arguments); NULL strings and zero options are unset. */
struct cachehost_task {
    /* The task: its WIT function name (`parse-quantity`) or full name. Required. */
    const char *task;
    /* A policy expression: DEFAULT, INPUTS, TASK_SOURCE, FLOW_PARAMETERS, RUN_ID, NONE,
     * KEY_FN joined with + and - 'name', e.g. "INPUTS - 'debug' + TASK_SOURCE". */
    const char *cache_policy;
    /* How long a written record stays valid (CACHEHOST_DAYS(1), ...). */
    struct cachehost_u64 cache_expiration;
    /* CACHEHOST_TRUE: always run and overwrite the record. */
    struct cachehost_bool refresh_cache;
    /* Whether the result is written to the cache. */
    struct cachehost_bool persist_result;
    /* "READ_COMMITTED" or "SERIALIZABLE". */
    const char *isolation_level;
    /* "memory", "file" or "redis://host:port". */
    const char *lock_manager;
    /* Where cache keys (record metadata) are stored, apart from results. */
    const char *key_storage;
    /* Where results are stored: a folder or "s3://bucket/prefix". */
    const char *result_storage;
    /* How many times a failed run is retried. */
    struct cachehost_u32 retries;
    /* The wait before each retry (CACHEHOST_SECONDS(1), ...). */
    struct cachehost_u64 retry_delay;
    /* The wall-clock limit of one run (CACHEHOST_SECONDS(30), ...). */
    struct cachehost_u64 timeout;
    /* CACHEHOST_TRUE: records keep the call's inputs, for `cachehost cache verify`. */
    struct cachehost_bool replayable;
};

/* Copies a C string into an option<string> of the bindings (malloc'd: the caller frees it). */
#define CACHEHOST_OPTION_STRING_(out, text)                                                                \
    do {                                                                                               \
        (out).is_some = (text) != NULL;                                                                \
        if ((text) != NULL) CACHEHOST_W(_string_dup)(&(out).val, (text));                              \
    } while (0)
#define CACHEHOST_OPTION_(out, option)                                                                     \
    do {                                                                                               \
        (out).is_some = (option).is_some;                                                              \
        (out).val = (option).val;                                                                      \
    } while (0)

/* Defines the world's cachehost:task/options export from `struct cachehost_task` entries. */
#define CACHEHOST_TASK_OPTIONS(...)                                                                        \
    static const struct cachehost_task cachehost_declared_tasks_[] = {__VA_ARGS__};                    \
    void exports_cachehost_task_options_task_options(exports_cachehost_task_options_list_task_defaults_t *ret) { \
        size_t count = sizeof cachehost_declared_tasks_ / sizeof cachehost_declared_tasks_[0];        \
        ret->len = count;                                                                              \
        ret->ptr = calloc(count + 1, sizeof *ret->ptr);                                                \
        for (size_t i = 0; i < count; i++) {                                                           \
            const struct cachehost_task *in = &cachehost_declared_tasks_[i];                           \
            exports_cachehost_task_options_task_defaults_t *out = &ret->ptr[i];                        \
            if (in->task == NULL) abort(); /* every entry names its task */                            \
            CACHEHOST_W(_string_dup)(&out->task, in->task);                                            \
            CACHEHOST_OPTION_STRING_(out->cache_policy, in->cache_policy);                             \
            CACHEHOST_OPTION_(out->cache_expiration_ms, in->cache_expiration);                         \
            CACHEHOST_OPTION_(out->refresh_cache, in->refresh_cache);                                  \
            CACHEHOST_OPTION_(out->persist_result, in->persist_result);                                \
            CACHEHOST_OPTION_STRING_(out->isolation_level, in->isolation_level);                       \
            CACHEHOST_OPTION_STRING_(out->lock_manager, in->lock_manager);                             \
            CACHEHOST_OPTION_STRING_(out->key_storage, in->key_storage);                               \
            CACHEHOST_OPTION_STRING_(out->result_storage, in->result_storage);                         \
            CACHEHOST_OPTION_(out->retries, in->retries);                                              \
            CACHEHOST_OPTION_(out->retry_delay_ms, in->retry_delay);                                   \
            CACHEHOST_OPTION_(out->timeout_ms, in->timeout);                                           \
            CACHEHOST_OPTION_(out->replayable, in->replayable);                                        \
        }                                                                                              \
    }

/* Writes a printf-style log line on the current flow or task run at `level`
 * (CACHEHOST_TASK_TYPES_LOG_LEVEL_DEBUG, _INFO, _WARNING or _ERROR). */
static inline void cachehost_vlog(cachehost_task_types_log_level_t level, const char *format, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int needed = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (needed < 0) return;
    char *message = malloc((size_t)needed + 1);
    if (message == NULL) return;
    vsnprintf(message, (size_t)needed + 1, format, args);
    CACHEHOST_W(_string_t) text;
    CACHEHOST_W(_string_set)(&text, message);
    cachehost_task_runtime_log(level, &text);
    free(message);
}

/* A printf-style log line at `level`. */
static inline __attribute__((format(printf, 2, 3))) void cachehost_log(cachehost_task_types_log_level_t level,
                                                                      const char *format, ...) {
    va_list args;
    va_start(args, format);
    cachehost_vlog(level, format, args);
    va_end(args);
}

/* Defines cachehost_debug, cachehost_info, ...: a printf-style log line at that level. */
#define CACHEHOST_LOG_AT_(name, level)                                                                     \
    static inline __attribute__((format(printf, 1, 2))) void name(const char *format, ...) {          \
        va_list args;                                                                                  \
        va_start(args, format);                                                                        \
        cachehost_vlog(level, format, args);                                                           \
        va_end(args);                                                                                  \
    }
CACHEHOST_LOG_AT_(cachehost_debug, CACHEHOST_TASK_TYPES_LOG_LEVEL_DEBUG)
CACHEHOST_LOG_AT_(cachehost_info, CACHEHOST_TASK_TYPES_LOG_LEVEL_INFO)
CACHEHOST_LOG_AT_(cachehost_warning, CACHEHOST_TASK_TYPES_LOG_LEVEL_WARNING)
CACHEHOST_LOG_AT_(cachehost_error, CACHEHOST_TASK_TYPES_LOG_LEVEL_ERROR)

#endif /* CACHEHOST_H */
