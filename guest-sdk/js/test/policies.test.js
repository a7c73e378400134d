// The SDK's checks and records on node (no component build): what task() options become in
// the task-defaults records of the options export, and the errors they raise at build time.
// Run: node --test guest-sdk/js/test/ (make test does).

import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT, FLOW_PARAMETERS, INPUTS, LockManager, NONE, RUN_ID, TASK_SOURCE, taskDefaults, witName } from "../policies.js";

test("policies render the expressions cachehost.toml takes", () => {
  assert.equal(String(INPUTS.minus("debug").plus(TASK_SOURCE)), "INPUTS - 'debug' + TASK_SOURCE");
  assert.equal(String(TASK_SOURCE.plus(INPUTS.minus("x"))), "TASK_SOURCE + (INPUTS - 'x')");
  assert.equal(String(DEFAULT.plus(FLOW_PARAMETERS).plus(RUN_ID)), "DEFAULT + FLOW_PARAMETERS + RUN_ID");
  assert.equal(String(NONE), "NONE");
  assert.throws(() => INPUTS.minus(`a'b"c`), /both quote characters/);
  assert.throws(() => INPUTS.minus(""), /empty name/);
});

test("every option becomes its field", () => {
  const record = taskDefaults("every-option", {
    cachePolicy: INPUTS.minus("debug"),
    cacheExpiration: "1d",
    refreshCache: true,
    persistResult: false,
    resultStorage: "s3://bucket/results",
    keyStorage: "keys",
    retries: 3,
    retryDelaySeconds: 1.5,
    timeoutSeconds: 30,
    isolationLevel: "SERIALIZABLE",
    lockManager: LockManager.redis("redis", 6380),
    replayable: true,
  });
  assert.deepEqual(record, {
    task: "every-option",
    cachePolicy: "INPUTS - 'debug'",
    cacheExpirationMs: 86400000n,
    refreshCache: true,
    persistResult: false,
    resultStorage: "s3://bucket/results",
    keyStorage: "keys",
    retries: 3,
    retryDelayMs: 1500n,
    timeoutMs: 30000n,
    isolationLevel: "SERIALIZABLE",
    lockManager: "redis://redis:6380",
    replayable: true,
  });
});

test("a key function makes the policy KEY_FN, configure() the lock settings", () => {
  assert.equal(taskDefaults("t", { cachePolicy: INPUTS, cacheKeyFn: () => "k" }).cachePolicy, "KEY_FN");
  const configured = INPUTS.configure({ isolationLevel: "SERIALIZABLE", lockManager: LockManager.file() });
  assert.deepEqual(taskDefaults("t", { cachePolicy: configured }), {
    task: "t",
    cachePolicy: "INPUTS",
    isolationLevel: "SERIALIZABLE",
    lockManager: "file",
  });
});

test("an unknown option is an error naming the closest", () => {
  assert.throws(() => taskDefaults("t", { cachePolcy: INPUTS }), /task 't' got an unknown option 'cachePolcy'; did you mean cachePolicy\?/);
  assert.throws(() => taskDefaults(undefined, { retires: 2 }), /task\(\) got an unknown option 'retires'; did you mean retries\?/);
  assert.throws(() => taskDefaults("t", { cache_policy: INPUTS }), /did you mean cachePolicy\?/);
});

test("wrong values are errors", () => {
  const cases = [
    [{ cacheExpiration: "1 week" }, /duration like/],
    [{ retries: -1 }, /whole number/],
    [{ retryDelaySeconds: [1, 2] }, /one number/],
    [{ isolationLevel: "SERIAL" }, /unknown isolationLevel/],
    [{ lockManager: "etcd" }, /unknown lockManager/],
    [{ persistResult: "yes" }, /true or false/],
    [{ cachePolicy: 3 }, /cachePolicy/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => taskDefaults("t", options), message, JSON.stringify(options));
  }
});

test("WIT names come from camelCase keys", () => {
  assert.equal(witName("parseQuantity"), "parse-quantity");
  assert.equal(witName("greet"), "greet");
});
