// cachehost's JavaScript SDK for components built by componentize-js: task options with
// Prefect's names (camelCase), the generated options and keys exports, transactions,
// submit and logging over the host's `cachehost:task/runtime` interface.
//
//   import { INPUTS, keys, options, task, tasks } from "./cachehost.js";
//   export const jsTasks = tasks({
//     greet: task((name) => `Hello, ${name}!`, { cachePolicy: INPUTS.minus("debug"), cacheExpiration: "1d" }),
//   });
//   export { options, keys };
//
// The world must import cachehost:task/runtime@0.1.0 and export cachehost:task/options@0.1.0
// (and cachehost:task/keys@0.1.0 for cacheKeyFn).

import {
  beginTransaction,
  currentTaskRun as rawCurrentTaskRun,
  endTransaction,
  flowRunId as rawFlowRunId,
  get as getValue,
  isCommitted,
  lastState as rawLastState,
  log as rawLog,
  rollback,
  set as setValue,
  stage,
  submit as rawSubmit,
  submittedState,
  wait,
} from "cachehost:task/runtime@0.1.0";

import { taskDefaults, witName } from "./policies.js";

export * from "./policies.js";

// Every declared task's record, by WIT function name, and the key functions.
const declared = new Map();
const keyFns = new Map();
const OPTIONS_OF = Symbol("cachehost task options");

const register = (name, fn, given) => {
  if (declared.has(name)) throw new Error(`task '${name}' is declared twice`);
  declared.set(name, taskDefaults(name, given));
  if (given.cacheKeyFn !== undefined) keyFns.set(name, given.cacheKeyFn);
  fn.taskName = name;
  fn.submit = (args) => submit(name, args);
};

/**
 * Declares a task's options (Prefect's `@task(...)`); returns `fn`, which stays the task.
 * Options are checked at once, when componentize-js evaluates the module: a wrong one fails
 * the build. The task is named by `name`, else by its key in `tasks({...})`, else `fn.name`.
 */
export function task(fn, given = {}) {
  if (typeof fn !== "function") throw new TypeError("task() takes the task's function first");
  taskDefaults(given.name, given);
  fn[OPTIONS_OF] = given;
  if (given.name !== undefined) register(given.name, fn, given);
  return fn;
}

/** The object of an exported interface: each function is a task named after its key. */
export function tasks(object) {
  for (const [key, fn] of Object.entries(object)) {
    if (typeof fn === "function" && fn.taskName === undefined) register(witName(key), fn, fn[OPTIONS_OF] ?? {});
  }
  return object;
}

/** The `cachehost:task/options` export: every declared task's options. */
export const options = {
  taskOptions() {
    return [...declared.values()];
  },
};

/** The `cachehost:task/keys` export: the `cacheKeyFn` of the task being keyed. */
export const keys = {
  cacheKey(taskRun, inputs) {
    const keyFn = keyFns.get(taskRun.task);
    if (keyFn === undefined) return undefined;
    const parameters = Object.fromEntries(inputs.map(([name, json]) => [name, JSON.parse(json)]));
    const key = keyFn(taskRun, parameters);
    if (key !== undefined && key !== null && typeof key !== "string") {
      throw new TypeError(`the cacheKeyFn of '${taskRun.task}' returned ${String(key)}, not a string`);
    }
    return key ?? undefined;
  },
};

/** The id of the flow run this code runs in; undefined for a standalone task run. */
export const flowRunId = () => rawFlowRunId();
/** The task run this code runs in ({ id, name, task, flowRunId }); undefined in a flow body. */
export const currentTaskRun = () => rawCurrentTaskRun();
/** The state of the last task call this instance made ({ name, type, message, cacheKey }). */
export const lastState = () => rawLastState();

/** Log lines on the current flow or task run (Prefect's `get_run_logger()`). */
export const logger = Object.freeze({
  debug: (message) => rawLog("debug", String(message)),
  info: (message) => rawLog("info", String(message)),
  warning: (message) => rawLog("warning", String(message)),
  error: (message) => rawLog("error", String(message)),
});

/** The open transaction of a `transaction()` body; values are JSON-compatible. */
class Transaction {
  constructor() {
    /** Whether it committed at its end; undefined while it is open. */
    this.committed = undefined;
  }
  /** Sets a value on the transaction. */
  set(name, value) {
    setValue(name, JSON.stringify(value));
  }
  /** A value of the transaction or its parents; `fallback` when unset. */
  get(name, fallback = undefined) {
    const stored = getValue(name);
    return stored === undefined ? fallback : JSON.parse(stored);
  }
  /** Stages a value as the keyed transaction's record. */
  stage(value) {
    stage(JSON.stringify(value));
  }
  /** Whether it is committed (a keyed one: its record exists). */
  isCommitted() {
    return isCommitted();
  }
  /** Rolls it back now; returns whether it did. */
  rollback() {
    return rollback();
  }
}

const COMMIT_MODES = ["lazy", "eager", "off"];

/**
 * Runs `body(txn)` in a transaction (Prefect's `with transaction(...)`): task calls it makes
 * are its children. A throw (or a rejected promise) rolls it back and is passed on; else it
 * commits as its mode says and `txn.committed` tells whether it did. Options: key,
 * commitMode ("lazy", "eager", "off"), isolationLevel, lockManager, writeOnCommit, overwrite.
 */
export function transaction(optionsOrBody, maybeBody) {
  const [given, body] = typeof optionsOrBody === "function" ? [{}, optionsOrBody] : [optionsOrBody, maybeBody];
  const known = ["key", "commitMode", "isolationLevel", "lockManager", "writeOnCommit", "overwrite"];
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) throw new TypeError(`transaction() got an unknown option '${name}'`);
  }
  if (given.commitMode !== undefined && !COMMIT_MODES.includes(given.commitMode)) {
    throw new RangeError(`unknown commitMode ${String(given.commitMode)}: use "lazy", "eager" or "off"`);
  }
  beginTransaction({ ...given });
  const txn = new Transaction();
  const end = (failed) => {
    txn.committed = endTransaction(failed);
  };
  let result;
  try {
    result = body(txn);
  } catch (error) {
    end(true);
    throw error;
  }
  if (result !== null && typeof result === "object" && typeof result.then === "function") {
    return result.then(
      (value) => {
        end(false);
        return value;
      },
      (error) => {
        end(true);
        throw error;
      },
    );
  }
  end(false);
  return result;
}

/**
 * Submits a call of `task` (function name or full name) with arguments as an object of
 * JSON-compatible values; it runs on the host's pool (Prefect's `.submit()`). The handle's
 * `result()` waits and returns the decoded result (a failed call throws its message).
 */
export function submit(task, args = {}) {
  const handle = rawSubmit(
    task,
    Object.entries(args).map(([name, value]) => [name, JSON.stringify(value)]),
  );
  let done = false;
  let value;
  return {
    task,
    result() {
      if (!done) {
        value = JSON.parse(wait(handle));
        done = true;
      }
      return value;
    },
    get state() {
      return submittedState(handle);
    },
  };
}
