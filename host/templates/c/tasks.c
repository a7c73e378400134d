// The {{name}} component's tasks and flow (wit/world.wit), with cachehost.h for options and
// logging. `wit-bindgen c` generates {{snake}}.h/.c at build time. The callee frees its
// arguments; returned values are freed by the generated post-return functions.

#include <stdlib.h>
#include <string.h>

#define CACHEHOST_WORLD {{snake}}
#include "{{snake}}.h"
#include "cachehost.h"

typedef {{snake}}_string_t string_t;

CACHEHOST_TASK_OPTIONS(
    {.task = "greet",
     .cache_policy = "INPUTS - 'verbose' + TASK_SOURCE",
     .cache_expiration = CACHEHOST_DAYS(1),
     .retries = CACHEHOST_SOME(2),
     .retry_delay = CACHEHOST_SECONDS(1),
     .timeout = CACHEHOST_SECONDS(30)},
    {.task = "word-count",
     .cache_policy = "KEY_FN",
     .persist_result = CACHEHOST_TRUE,
     .isolation_level = "SERIALIZABLE",
     .lock_manager = "memory"},
)

void exports_local_{{snake}}_tasks_greet(string_t *name, bool verbose, string_t *ret) {
    cachehost_info("greeting %.*s", (int)name->len, (const char *)name->ptr);
    if (verbose) cachehost_info("verbosely");
    size_t len = strlen("Hello, ") + name->len + 1;
    uint8_t *out = malloc(len);
    memcpy(out, "Hello, ", strlen("Hello, "));
    memcpy(out + strlen("Hello, "), name->ptr, name->len);
    out[len - 1] = '!';
    ret->ptr = out;
    ret->len = len;
    {{snake}}_string_free(name);
}

uint32_t exports_local_{{snake}}_tasks_word_count(string_t *text) {
    uint32_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < text->len; i++) {
        bool space = text->ptr[i] == ' ' || text->ptr[i] == '\t' || text->ptr[i] == '\n' || text->ptr[i] == '\r';
        if (!space && !in_word) words++;
        in_word = !space;
    }
    {{snake}}_string_free(text);
    return words;
}

// The key function (Prefect's cache_key_fn): `words-` + the text in lower case. The text
// arrives as JSON; a text with escapes (quotes, backslashes, control characters) is left
// uncached rather than decoded here.
bool exports_cachehost_task_keys_cache_key(exports_cachehost_task_keys_task_run_info_t *task_run,
                                           {{snake}}_list_tuple2_string_string_t *inputs, string_t *ret) {
    bool found = false;
    bool is_word_count = task_run->task.len == strlen("word-count") &&
                         memcmp(task_run->task.ptr, "word-count", task_run->task.len) == 0;
    for (size_t i = 0; is_word_count && i < inputs->len; i++) {
        string_t *json = &inputs->ptr[i].f1;
        if (inputs->ptr[i].f0.len != 4 || memcmp(inputs->ptr[i].f0.ptr, "text", 4) != 0) continue;
        if (json->len < 2 || memchr(json->ptr + 1, '\\', json->len - 2) != NULL) break;
        size_t len = strlen("words-") + json->len - 2;
        uint8_t *key = malloc(len);
        memcpy(key, "words-", strlen("words-"));
        for (size_t j = 1; j + 1 < json->len; j++) {
            uint8_t c = json->ptr[j];
            key[strlen("words-") + j - 1] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
        }
        ret->ptr = key;
        ret->len = len;
        found = true;
    }
    exports_cachehost_task_keys_task_run_info_free(task_run);
    {{snake}}_list_tuple2_string_string_free(inputs);
    return found;
}

static void push(string_t *list, size_t *count, string_t value) { list[(*count)++] = value; }

// Calls through the import run through cachehost: the second greet is a cache hit.
void exports_local_{{snake}}_flow_main(string_t *name, {{snake}}_list_string_t *ret) {
    string_t quiet, verbose, count;
    local_{{snake}}_tasks_greet(name, false, &quiet);
    local_{{snake}}_tasks_greet(name, true, &verbose);
    uint32_t words = local_{{snake}}_tasks_word_count(&quiet);
    char digits[16];
    snprintf(digits, sizeof digits, "%u", (unsigned)words);
    {{snake}}_string_dup(&count, digits);
    ret->ptr = malloc(3 * sizeof(string_t));
    ret->len = 0;
    push(ret->ptr, &ret->len, quiet);
    push(ret->ptr, &ret->len, verbose);
    push(ret->ptr, &ret->len, count);
    {{snake}}_string_free(name);
}
