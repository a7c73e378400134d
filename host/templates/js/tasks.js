// The {{name}} component's tasks and flow (wit/world.wit), on cachehost's JavaScript SDK
// (cachehost.js and policies.js, beside this file).

import { greet, wordCount } from "local:{{name}}/tasks";
import { INPUTS, LockManager, TASK_SOURCE, keys, logger, options, task, tasks as taskObject } from "./cachehost.js";

// The SDK's exports of cachehost:task/options and cachehost:task/keys, generated from task().
export { options, keys };

// Each key is the WIT function's name in camelCase: wordCount is word-count.
export const tasks = taskObject({
  greet: task(
    (name, verbose) => {
      logger.info(`greeting ${name}`);
      if (verbose) logger.info("verbosely");
      return `Hello, ${name}!`;
    },
    {
      cachePolicy: INPUTS.minus("verbose").plus(TASK_SOURCE),
      cacheExpiration: "1d",
      retries: 2,
      retryDelaySeconds: 1,
      timeoutSeconds: 30,
    },
  ),
  wordCount: task((text) => text.split(/\s+/).filter((word) => word !== "").length, {
    // Prefect's cache_key_fn(context, parameters): the parameters arrive decoded.
    cacheKeyFn: (taskRun, parameters) => `words-${parameters.text.toLowerCase()}`,
    persistResult: true,
    isolationLevel: "SERIALIZABLE",
    lockManager: LockManager.memory(),
  }),
});

export const flow = {
  // Calls through the import run through cachehost: the second greet is a cache hit.
  main(name) {
    const quiet = greet(name, false);
    const verbose = greet(name, true);
    return [quiet, verbose, String(wordCount(quiet))];
  },
};
