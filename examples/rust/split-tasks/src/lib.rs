//! A task-only component: exports `example:split/tasks` (INPUTS policy) and no flow; `split-flow` calls it. Run:
//! `cachehost run build/examples/split-flow.wasm --tasks build/examples/split-tasks.wasm --param 'name="Ada"'`.

wit_bindgen::generate!({
    world: "example:split/split-tasks",
    path: ["../../../wit", "wit"],
});

use cachehost_guest::TaskOptions;

struct Component;

impl exports::example::split::tasks::Guest for Component {
    fn add_one(x: i64) -> i64 {
        x + 1
    }

    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }
}

cachehost_guest::export_task_options!(
    Component,
    [TaskOptions::new("add-one").cache_policy("INPUTS"), TaskOptions::new("greet").cache_policy("INPUTS"),]
);

export!(Component);
