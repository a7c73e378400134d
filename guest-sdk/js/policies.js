// cachehost's JavaScript SDK, the part that needs no host: cache policies and the checking
// of task options into the records of the `cachehost:task/options` export. cachehost.js
// re-exports all of it; node's tests (test/) import it directly.

const quote = (name) => {
  if (typeof name !== "string") {
    throw new TypeError(`a cache policy excludes a parameter by its name (a string), not ${String(name)}`);
  }
  if (name === "") throw new RangeError("a cache policy cannot exclude a parameter with an empty name");
  if (!name.includes("'")) return `'${name}'`;
  if (!name.includes('"')) return `"${name}"`;
  throw new RangeError(`the parameter name ${name} holds both quote characters, which a policy cannot express`);
};

/** A cache policy: which parts make up a task's cache key (Prefect's `CachePolicy`). */
export class CachePolicy {
  /** A policy of an expression as cachehost.toml writes it, e.g. `INPUTS - 'debug'`. */
  constructor(expression, settings = {}, compound = false) {
    this.expression = expression;
    this.settings = settings;
    this.compound = compound;
    Object.freeze(this);
  }

  /** The parts of both policies (Prefect's `+`). */
  plus(other) {
    if (!(other instanceof CachePolicy)) throw new TypeError(`plus() takes a cache policy, not ${String(other)}`);
    const right = other.compound ? `(${other.expression})` : other.expression;
    return new CachePolicy(`${this.expression} + ${right}`, { ...other.settings, ...this.settings }, true);
  }

  /** This policy with a parameter left out of INPUTS (Prefect's `- "name"`). */
  minus(name) {
    return new CachePolicy(`${this.expression} - ${quote(name)}`, this.settings, true);
  }

  /** A copy with `keyStorage`, `lockManager` or `isolationLevel` set (Prefect's `configure`). */
  configure(settings) {
    const known = ["keyStorage", "lockManager", "isolationLevel"];
    for (const name of Object.keys(settings)) {
      if (!known.includes(name)) throw new TypeError(`configure() got an unknown setting '${name}'`);
    }
    return new CachePolicy(this.expression, { ...this.settings, ...settings }, this.compound);
  }

  /** The policy expression. */
  toString() {
    return this.expression;
  }
}

/** The task's arguments. */
export const INPUTS = new CachePolicy("INPUTS");
/** The providing component's bytes and the task's name. */
export const TASK_SOURCE = new CachePolicy("TASK_SOURCE");
/** The flow run id, or the task run id of a standalone task run. */
export const RUN_ID = new CachePolicy("RUN_ID");
/** The enclosing flow run's parameters. */
export const FLOW_PARAMETERS = new CachePolicy("FLOW_PARAMETERS");
/** No key: no lookup, no lock, no write. */
export const NONE = new CachePolicy("NONE");
/** Prefect's other name for NONE. */
export const NO_CACHE = NONE;
/** INPUTS + TASK_SOURCE + RUN_ID. */
export const DEFAULT = new CachePolicy("DEFAULT");

/** Prefect's isolation levels. */
export const IsolationLevel = Object.freeze({ READ_COMMITTED: "READ_COMMITTED", SERIALIZABLE: "SERIALIZABLE" });

/** The lock managers of SERIALIZABLE, as the specifications cachehost takes. */
export const LockManager = Object.freeze({
  memory: () => "memory",
  file: (directory) => (directory === undefined ? "file" : `file:${directory}`),
  redis: (host = "localhost", port = 6379) => `redis://${host}:${port}`,
});

/** The options `task()` takes: Prefect's parameter names in camelCase. */
export const OPTIONS = Object.freeze([
  "name",
  "cachePolicy",
  "cacheKeyFn",
  "cacheExpiration",
  "refreshCache",
  "persistResult",
  "resultStorage",
  "keyStorage",
  "retries",
  "retryDelaySeconds",
  "timeoutSeconds",
  "isolationLevel",
  "lockManager",
  "replayable",
]);

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration: `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, or a number of seconds. */
export function durationMs(option, value) {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${option} must be a number of seconds from 0`);
    return BigInt(Math.round(value * 1000));
  }
  const match = typeof value === "string" ? /^\s*([0-9]+)\s*(ms|s|m|h|d)\s*$/.exec(value) : null;
  if (match === null) {
    throw new TypeError(
      `${option} must be a duration like "500ms", "30s", "5m", "2h" or "1d", or a number of seconds, not ${String(value)}`,
    );
  }
  return BigInt(match[1]) * BigInt(UNITS[match[2]]);
}

const flag = (option, value) => {
  if (typeof value !== "boolean") throw new TypeError(`${option} must be true or false, not ${String(value)}`);
  return value;
};

const isolation = (value) => {
  if (value !== "READ_COMMITTED" && value !== "SERIALIZABLE") {
    throw new RangeError(`unknown isolationLevel ${String(value)}: use IsolationLevel.READ_COMMITTED or SERIALIZABLE`);
  }
  return value;
};

const lockManager = (value) => {
  if (typeof value === "string" && (value === "memory" || value === "file" || /^(file:|redis:\/\/)/.test(value))) {
    return value;
  }
  throw new RangeError(`unknown lockManager ${String(value)}: use LockManager.memory(), .file() or .redis(host, port)`);
};

// Levenshtein distance, to suggest the option the author meant.
const distance = (a, b) => {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
};

/** The WIT name of an exported function: `parseQuantity` is `parse-quantity`. */
export const witName = (key) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The task-defaults record of one task's options (camelCase fields, unset ones left out); `task`
 * may be undefined while the task has no name yet. */
export function taskDefaults(task, options) {
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) {
      const plain = (text) => text.toLowerCase().replace(/_/g, "");
      const close = OPTIONS.find((known) => distance(plain(known), plain(name)) <= 2);
      const hint = close ? `; did you mean ${close}?` : `; the options are ${OPTIONS.join(", ")}`;
      const who = task === undefined ? "task()" : `task '${task}'`;
      throw new TypeError(`${who} got an unknown option '${name}'${hint}`);
    }
  }
  const record = { task };
  const policy = options.cachePolicy;
  if (policy !== undefined) {
    if (policy instanceof CachePolicy) {
      record.cachePolicy = policy.expression;
      const { keyStorage, lockManager: manager, isolationLevel } = policy.settings;
      if (keyStorage !== undefined) record.keyStorage = String(keyStorage);
      if (manager !== undefined) record.lockManager = lockManager(manager);
      if (isolationLevel !== undefined) record.isolationLevel = isolation(isolationLevel);
    } else if (typeof policy === "string") {
      record.cachePolicy = policy;
    } else {
      throw new TypeError(`cachePolicy must be a cache policy such as INPUTS or an expression string`);
    }
  }
  if (options.cacheKeyFn !== undefined) {
    if (typeof options.cacheKeyFn !== "function") throw new TypeError("cacheKeyFn must be a function");
    // Prefect 2.3: a key function replaces any policy.
    record.cachePolicy = "KEY_FN";
  }
  if (options.cacheExpiration !== undefined) {
    record.cacheExpirationMs = durationMs("cacheExpiration", options.cacheExpiration);
  }
  if (options.refreshCache !== undefined) record.refreshCache = flag("refreshCache", options.refreshCache);
  if (options.persistResult !== undefined) record.persistResult = flag("persistResult", options.persistResult);
  if (options.replayable !== undefined) record.replayable = flag("replayable", options.replayable);
  if (options.resultStorage !== undefined) record.resultStorage = String(options.resultStorage);
  if (options.keyStorage !== undefined) record.keyStorage = String(options.keyStorage);
  if (options.retries !== undefined) {
    if (!Number.isInteger(options.retries) || options.retries < 0 || options.retries > 4294967295) {
      throw new TypeError(`retries must be a whole number from 0, not ${String(options.retries)}`);
    }
    record.retries = options.retries;
  }
  if (options.retryDelaySeconds !== undefined) {
    if (typeof options.retryDelaySeconds !== "number") {
      throw new TypeError("retryDelaySeconds must be one number of seconds (cachehost takes one delay for every retry)");
    }
    record.retryDelayMs = durationMs("retryDelaySeconds", options.retryDelaySeconds);
  }
  if (options.timeoutSeconds !== undefined) {
    if (typeof options.timeoutSeconds !== "number") throw new TypeError("timeoutSeconds must be a number of seconds");
    record.timeoutMs = durationMs("timeoutSeconds", options.timeoutSeconds);
  }
  if (options.isolationLevel !== undefined) record.isolationLevel = isolation(options.isolationLevel);
  if (options.lockManager !== undefined) record.lockManager = lockManager(options.lockManager);
  return record;
}
