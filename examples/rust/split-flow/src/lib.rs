//! A flow that only imports its tasks: the host finds `example:split/tasks` in the component given with `--tasks`. Run:
//! `cachehost run build/examples/split-flow.wasm --tasks build/examples/split-tasks.wasm --param 'name="Ada"'`.

wit_bindgen::generate!({
    world: "example:split-flow/split-flow",
    path: ["../../../wit", "../split-tasks/wit", "wit"],
    // The tasks' interface belongs to another package (split-tasks' WIT): generate it here.
    with: { "example:split/tasks": generate },
});

use example::split::tasks;
use exports::example::split_flow::flow::Summary;

struct Component;

impl exports::example::split_flow::flow::Guest for Component {
    fn split_flow(name: String) -> Summary {
        Summary { sums: vec![tasks::add_one(1), tasks::add_one(1), tasks::add_one(2)], greeting: tasks::greet(&name) }
    }
}

export!(Component);
