//! The steps an operation goes through and the state of each step's record. Their names are
//! stored in the operation's detail (`step`, `steps[].id`, `steps[].state`, `error.step`) and
//! shown by the API, so they become text here and only here (through serde and `as_str`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// One step of an operation. Which steps a kind has, in order, is `OperationKind::steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Send the request to the vendor (or find what an earlier attempt sent).
    Submit,
    /// Wait until the vendor's new cluster runs.
    Provision,
    /// Make the node pools the spec asks for that the vendor did not make with the cluster.
    NodePools,
    /// Fetch the kubeconfig and attach the cluster.
    Connect,
    /// Wait until the vendor has done what `Submit` asked.
    Wait,
    /// Forget a deleted cluster here.
    Forget,
    /// Issue a new pull credential and rewrite the pull secrets that hold the old one.
    Renew,
    /// Revoke the pull credentials no Secret holds any more.
    Revoke,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Submit,
        Step::Provision,
        Step::NodePools,
        Step::Connect,
        Step::Wait,
        Step::Forget,
        Step::Renew,
        Step::Revoke,
    ];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Submit => "submit",
            Step::Provision => "provision",
            Step::NodePools => "node_pools",
            Step::Connect => "connect",
            Step::Wait => "wait",
            Step::Forget => "forget",
            Step::Renew => "renew",
            Step::Revoke => "revoke",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Step, D::Error> {
        let text = String::deserialize(deserializer)?;
        Step::parse(&text).ok_or_else(|| D::Error::custom(format!("unknown step {text:?}")))
    }
}

/// The state of one step's record. The names are `OperationState`'s, so the API shows a step
/// with the same enum as an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Running,
    Succeeded,
    Failed,
}

impl StepState {
    pub const ALL: [StepState; 3] = [StepState::Running, StepState::Succeeded, StepState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Running => "RUNNING",
            StepState::Succeeded => "SUCCEEDED",
            StepState::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<StepState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl Serialize for StepState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StepState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StepState, D::Error> {
        let text = String::deserialize(deserializer)?;
        StepState::parse(&text)
            .ok_or_else(|| D::Error::custom(format!("unknown step state {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The names are written out by hand: they are what the database holds and clients see.
    #[test]
    fn steps_have_their_stored_names_and_round_trip() {
        let names = [
            (Step::Submit, "submit"),
            (Step::Provision, "provision"),
            (Step::NodePools, "node_pools"),
            (Step::Connect, "connect"),
            (Step::Wait, "wait"),
            (Step::Forget, "forget"),
            (Step::Renew, "renew"),
            (Step::Revoke, "revoke"),
        ];
        assert_eq!(names.len(), Step::ALL.len());
        for (step, name) in names {
            assert_eq!(step.as_str(), name);
            assert_eq!(step.to_string(), name);
            assert_eq!(Step::parse(name), Some(step));
            let json = serde_json::to_string(&step).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Step>(&json).unwrap(), step);
        }
    }

    #[test]
    fn step_states_have_their_stored_names_and_round_trip() {
        let names = [
            (StepState::Running, "RUNNING"),
            (StepState::Succeeded, "SUCCEEDED"),
            (StepState::Failed, "FAILED"),
        ];
        assert_eq!(names.len(), StepState::ALL.len());
        for (state, name) in names {
            assert_eq!(state.as_str(), name);
            assert_eq!(StepState::parse(name), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<StepState>(&json).unwrap(), state);
        }
    }

    #[test]
    fn unknown_names_are_refused_not_guessed() {
        for bad in ["", "Submit", "SUBMIT", "nodepools", "node-pools", "done"] {
            assert_eq!(Step::parse(bad), None, "{bad:?}");
            assert!(serde_json::from_str::<Step>(&format!("\"{bad}\"")).is_err());
        }
        for bad in ["", "running", "PENDING", "CANCELLED"] {
            assert_eq!(StepState::parse(bad), None, "{bad:?}");
            assert!(serde_json::from_str::<StepState>(&format!("\"{bad}\"")).is_err());
        }
    }
}
