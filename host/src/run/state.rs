//! Run states, as Prefect names and prints them.

use serde::Serialize;

use crate::value::{Ty, Value};

/// The name of a terminal state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StateName {
    /// The body ran and returned.
    Completed,
    /// The result came from the cache; the body did not run (type COMPLETED).
    Cached,
    /// The body trapped, returned `err`, or the run could not start.
    Failed,
    /// The run exceeded its wall-clock timeout (type FAILED).
    TimedOut,
    /// The host failed while running it (type CRASHED).
    Crashed,
}

/// A terminal state with its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Which state.
    pub name: StateName,
    /// Why, for failures.
    pub message: Option<String>,
}

impl State {
    /// `Completed()`.
    pub fn completed() -> State {
        State { name: StateName::Completed, message: None }
    }

    /// `Cached(type=COMPLETED)`.
    pub fn cached() -> State {
        State { name: StateName::Cached, message: None }
    }

    /// `Failed('message')`.
    pub fn failed(message: impl Into<String>) -> State {
        State { name: StateName::Failed, message: Some(message.into()) }
    }

    /// The state type: `COMPLETED`, `FAILED` or `CRASHED`.
    pub fn type_name(&self) -> &'static str {
        match self.name {
            StateName::Completed | StateName::Cached => "COMPLETED",
            StateName::Failed | StateName::TimedOut => "FAILED",
            StateName::Crashed => "CRASHED",
        }
    }

    /// The state's name as a string.
    pub fn name_str(&self) -> &'static str {
        match self.name {
            StateName::Completed => "Completed",
            StateName::Cached => "Cached",
            StateName::Failed => "Failed",
            StateName::TimedOut => "TimedOut",
            StateName::Crashed => "Crashed",
        }
    }

    /// Whether the state is of type COMPLETED.
    pub fn is_completed(&self) -> bool {
        self.type_name() == "COMPLETED"
    }
}

/// Prints like Prefect's `State.__str__`: `Completed()`, `Cached(type=COMPLETED)`,
/// `Failed('why')`; `type=` appears only when the name differs from the type.
impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name_str();
        let mut args = Vec::new();
        if let Some(message) = &self.message {
            args.push(format!("'{}'", message.replace('\'', "\\'")));
        }
        if !name.eq_ignore_ascii_case(self.type_name()) {
            args.push(format!("type={}", self.type_name()));
        }
        write!(f, "{name}({})", args.join(", "))
    }
}

/// What a task call produced.
pub struct TaskOutcome {
    /// The task run's final state.
    pub state: State,
    /// The cache key it used.
    pub cache_key: Option<String>,
    /// The returned value (also for a Failed run that returned `err`).
    pub value: Option<Value>,
    /// Set when the task trapped: the caller must trap too.
    pub trap: Option<String>,
    /// The returned value as JSON text, for submitted calls (set by [`TaskOutcome::with_json`]).
    pub value_json: Option<String>,
}

impl TaskOutcome {
    /// The outcome with `value_json` set from its value of type `ty`: only submitted calls
    /// read it, so a direct call does not pay for it.
    pub fn with_json(mut self, ty: Option<&Ty>) -> TaskOutcome {
        self.value_json = match (ty, &self.value) {
            (Some(ty), Some(value)) => value.to_json(ty).ok().map(|json| json.to_string()),
            _ => None,
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_print_as_prefect_prints_them() {
        assert_eq!(State::completed().to_string(), "Completed()");
        assert_eq!(State::cached().to_string(), "Cached(type=COMPLETED)");
        assert_eq!(State::failed("boom").to_string(), "Failed('boom')");
        let timed_out = State { name: StateName::TimedOut, message: Some("late".into()) };
        assert_eq!(timed_out.to_string(), "TimedOut('late', type=FAILED)");
    }
}
