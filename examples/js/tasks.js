// The example:poly tasks in JavaScript (world js-tasks-world), built with componentize-js.
// Each exported object implements one exported interface; imports come from the WIT names.

import {
  beginTransaction,
  currentTaskRun,
  endTransaction,
  flowRunId,
  get as getValue,
  log,
  set as setValue,
} from "cachehost:task/runtime@0.1.0";

const U32_MAX = 4294967295;

const asciiUpper = (text) => text.replace(/[a-z]/g, (c) => c.toUpperCase());
const asciiLower = (text) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

export const jsTasks = {
  greet(name, punctuation) {
    const run = currentTaskRun();
    const runName = run === undefined ? "no task run" : run.name;
    log("info", `greeting ${name} in JavaScript (${runName})`);
    return `Hello, ${name}${punctuation === undefined ? "!" : punctuation}`;
  },

  // Unicode scalar values, not UTF-16 code units (`word.length`).
  wordLengths(words) {
    return words.map((word) => [...word].length);
  },

  // u64 values arrive and leave as BigInt.
  summarize(items) {
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

  // A thrown value becomes the `err` of the result.
  parseQuantity(text) {
    if (!/^[0-9]{1,10}$/.test(text) || Number(text) > U32_MAX) {
      throw `not a quantity: ${text}`;
    }
    return Number(text);
  },

  shout(word) {
    return asciiUpper(word);
  },

  ledger(entry) {
    // The run context: this task run, in the flow run the runtime reports (if any).
    const run = currentTaskRun();
    if (run === undefined || run.task !== "ledger" || run.flowRunId !== flowRunId()) {
      throw new Error(`ledger runs in a task run of its own, not ${JSON.stringify(run)}`);
    }
    // A transaction inside the task run's own; a failure to open it throws.
    beginTransaction({});
    setValue("entry", JSON.stringify(entry));
    const stored = getValue("entry");
    if (stored === undefined || JSON.parse(stored) !== entry) {
      throw new Error(`get returned ${stored}, not the value set`);
    }
    const committed = endTransaction(false);
    return `${entry} recorded in a ledger transaction, committed=${committed}`;
  },

  // list<u8> arrives as a Uint8Array; reverse() runs natively, in place.
  reverseBytes(data) {
    return data.reverse();
  },
};

const declare = (task, cachePolicy) => ({ task, cachePolicy });

export const options = {
  taskOptions() {
    return [
      declare("greet", "INPUTS"),
      declare("summarize", "INPUTS"),
      declare("parse-quantity", "INPUTS"),
      declare("shout", "KEY_FN"),
      declare("ledger", "INPUTS"),
      declare("reverse-bytes", "INPUTS"),
    ];
  },
};

export const keys = {
  cacheKey(taskRun, inputs) {
    if (taskRun.task !== "shout") {
      return undefined;
    }
    const word = JSON.parse(new Map(inputs).get("word"));
    return `shout-${asciiLower(word)}`;
  },
};
