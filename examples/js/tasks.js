// The example:poly tasks in JavaScript (world js-tasks-world), built with componentize-js.
// The exported object implements the exported interface; task() declares each task's options
// with Prefect's names (the SDK, guest-sdk/js, is copied beside this file by tools/build-guest.sh).

import {
  INPUTS,
  LockManager,
  currentTaskRun,
  flowRunId,
  keys,
  logger,
  options,
  task,
  tasks,
  transaction,
} from "./cachehost.js";

// The SDK's exports of cachehost:task/options and cachehost:task/keys, generated from task().
export { options, keys };

const U32_MAX = 4294967295;

const asciiUpper = (text) => text.replace(/[a-z]/g, (c) => c.toUpperCase());
const asciiLower = (text) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

// Each key is the WIT function's name in camelCase: parseQuantity is parse-quantity.
export const jsTasks = tasks({
  greet: task(
    (name, punctuation) => {
      const run = currentTaskRun();
      const runName = run === undefined ? "no task run" : run.name;
      logger.info(`greeting ${name} in JavaScript (${runName})`);
      return `Hello, ${name}${punctuation === undefined ? "!" : punctuation}`;
    },
    { cachePolicy: INPUTS, cacheExpiration: "1d" },
  ),

  // No cachePolicy: the default policy, and results are not persisted (Prefect's default).
  // Unicode scalar values, not UTF-16 code units (`word.length`).
  wordLengths: task((words) => words.map((word) => [...word].length), { retries: 2, retryDelaySeconds: 0.5 }),

  // u64 values arrive and leave as BigInt.
  summarize: task(
    (items) => {
      let total = 0n;
      let mostExpensive;
      let topPrice = 0n;
      for (const item of items) {
        total = BigInt.asUintN(64, total + BigInt(item.quantity) * item.priceCents);
        if (mostExpensive === undefined || item.priceCents > topPrice) {
          mostExpensive = item.name;
          topPrice = item.priceCents;
        }
      }
      return {
        count: items.length,
        totalCents: total,
        names: items.map((item) => item.name),
        mostExpensive,
      };
    },
    { cachePolicy: INPUTS, persistResult: true },
  ),

  // A thrown value becomes the `err` of the result.
  parseQuantity: task(
    (text) => {
      if (!/^[0-9]{1,10}$/.test(text) || Number(text) > U32_MAX) {
        throw `not a quantity: ${text}`;
      }
      return Number(text);
    },
    { cachePolicy: INPUTS, timeoutSeconds: 60, replayable: true },
  ),

  // Prefect's cache_key_fn(context, parameters): the parameters arrive decoded from JSON.
  shout: task((word) => asciiUpper(word), {
    cacheKeyFn: (taskRun, parameters) => `shout-${asciiLower(parameters.word)}`,
    refreshCache: false,
  }),

  ledger: task(
    (entry) => {
      // The run context: this task run, in the flow run the runtime reports (if any).
      const run = currentTaskRun();
      if (run === undefined || run.task !== "ledger" || run.flowRunId !== flowRunId()) {
        throw new Error(`ledger runs in a task run of its own, not ${JSON.stringify(run)}`);
      }
      // A transaction inside the task run's own; a failure to open it throws.
      let ledgerTxn;
      transaction((txn) => {
        ledgerTxn = txn;
        txn.set("entry", entry);
        const stored = txn.get("entry");
        if (stored !== entry) {
          throw new Error(`get returned ${stored}, not the value set`);
        }
      });
      return `${entry} recorded in a ledger transaction, committed=${ledgerTxn.committed}`;
    },
    { cachePolicy: INPUTS, isolationLevel: "READ_COMMITTED", lockManager: LockManager.memory() },
  ),

  // list<u8> arrives as a Uint8Array; reverse() runs natively, in place.
  reverseBytes: task((data) => data.reverse(), { cachePolicy: INPUTS }),
  // list<f64> arrives as a Float64Array (or an array): reversed in place, bits untouched.
  reverseFloats: task((xs) => xs.reverse(), { cachePolicy: INPUTS }),
});
