//! The live event stream's wire type, shared by the service that sends it and the dashboard that
//! reads it.

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{EndpointId, FunctionId, TaskGroupId, TaskId};
use crate::report::EndpointReport;
use crate::state::{Actor, State};
use crate::status::TransitionRecord;
use crate::time::Timestamp;

/// One change, numbered by the service's global, gap-free sequence. A client that has seen
/// event `seq` has seen every event before it.
///
/// On the wire its body's fields sit beside `seq`, with `type` naming the body.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    pub seq: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventBody {
    Transition(TransitionEvent),
    Endpoint(EndpointStatus),
}

/// A task moved from one state to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TransitionEvent {
    pub task_id: TaskId,
    /// The submission the task belongs to; given with its first event, `received`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group_id: Option<TaskGroupId>,
    pub endpoint_id: EndpointId,
    pub function_id: FunctionId,
    /// The state the task left; absent for its first entry, `received`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<State>,
    pub to: State,
    pub actor: Actor,
    /// The task's attempt after the transition.
    pub attempt: u32,
    pub max_retries: u32,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TransitionEvent {
    /// The entry this event adds to the task's log.
    pub fn record(&self) -> TransitionRecord {
        TransitionRecord {
            state: self.to,
            actor: self.actor,
            attempt: self.attempt,
            at: self.at,
            reason: self.reason.clone(),
        }
    }
}

/// An endpoint came online, went offline, or sent a heartbeat report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointStatus {
    pub endpoint_id: EndpointId,
    pub name: String,
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<EndpointReport>,
}

/// Every field an event may carry, read in one pass. Deriving `Deserialize` for [`Event`] would
/// read the object twice (`flatten` buffers every field, then the `type` tag buffers the body's
/// again), which costs each streamed event two copies of its fields and each reader of the
/// stream a second, buffered deserializer of every type the events carry.
#[derive(Deserialize)]
struct EventFields {
    seq: u64,
    #[serde(rename = "type")]
    kind: EventKind,
    endpoint_id: EndpointId,
    task_id: Option<TaskId>,
    task_group_id: Option<TaskGroupId>,
    function_id: Option<FunctionId>,
    from: Option<State>,
    to: Option<State>,
    actor: Option<Actor>,
    attempt: Option<u32>,
    max_retries: Option<u32>,
    at: Option<Timestamp>,
    reason: Option<String>,
    name: Option<String>,
    online: Option<bool>,
    last_heartbeat: Option<Timestamp>,
    report: Option<EndpointReport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum EventKind {
    Transition,
    Endpoint,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let f = EventFields::deserialize(deserializer)?;
        let kind = match f.kind {
            EventKind::Transition => "transition",
            EventKind::Endpoint => "endpoint",
        };
        let missing =
            |field: &'static str| D::Error::custom(format!("{kind} event without `{field}`"));
        let body = match f.kind {
            EventKind::Transition => EventBody::Transition(TransitionEvent {
                task_id: f.task_id.ok_or_else(|| missing("task_id"))?,
                task_group_id: f.task_group_id,
                endpoint_id: f.endpoint_id,
                function_id: f.function_id.ok_or_else(|| missing("function_id"))?,
                from: f.from,
                to: f.to.ok_or_else(|| missing("to"))?,
                actor: f.actor.ok_or_else(|| missing("actor"))?,
                attempt: f.attempt.ok_or_else(|| missing("attempt"))?,
                max_retries: f.max_retries.ok_or_else(|| missing("max_retries"))?,
                at: f.at.ok_or_else(|| missing("at"))?,
                reason: f.reason,
            }),
            EventKind::Endpoint => EventBody::Endpoint(EndpointStatus {
                endpoint_id: f.endpoint_id,
                name: f.name.ok_or_else(|| missing("name"))?,
                online: f.online.ok_or_else(|| missing("online"))?,
                last_heartbeat: f.last_heartbeat,
                report: f.report,
            }),
        };
        Ok(Event { seq: f.seq, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition() -> Event {
        Event {
            seq: 7,
            body: EventBody::Transition(TransitionEvent {
                task_id: TaskId::from_u128(1),
                task_group_id: Some(TaskGroupId::from_u128(2)),
                endpoint_id: EndpointId::from_u128(3),
                function_id: FunctionId::from_u128(4),
                from: Some(State::Running),
                to: State::Success,
                actor: Actor::Worker,
                attempt: 1,
                max_retries: 3,
                at: Timestamp::from_micros(1_700_000_000_123_456),
                reason: Some("done".into()),
            }),
        }
    }

    #[test]
    fn events_read_back_as_written() {
        let endpoint = Event {
            seq: 8,
            body: EventBody::Endpoint(EndpointStatus {
                endpoint_id: EndpointId::from_u128(3),
                name: "hpc".into(),
                online: false,
                last_heartbeat: Some(Timestamp::from_micros(5)),
                report: None,
            }),
        };
        for event in [transition(), endpoint] {
            let text = serde_json::to_string(&event).expect("serializes");
            let back: Event = serde_json::from_str(&text).expect("reads back");
            assert_eq!(back, event, "{text}");
        }
    }

    #[test]
    fn the_type_may_come_anywhere_and_unknown_fields_are_ignored() {
        let text = serde_json::to_string(&transition()).expect("serializes");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let serde_json::Value::Object(mut fields) = value else {
            panic!("an object: {text}");
        };
        let kind = fields.remove("type").expect("a type");
        fields.insert("later".into(), serde_json::json!({"a": [1]}));
        fields.insert("type".into(), kind);
        let moved = serde_json::to_string(&fields).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Event>(&moved).expect("reads"),
            transition()
        );
    }

    #[test]
    fn a_body_without_its_fields_is_refused_by_name() {
        let error = serde_json::from_str::<Event>(
            r#"{"seq":1,"type":"transition","endpoint_id":"00000000-0000-0000-0000-000000000003"}"#,
        )
        .expect_err("no task");
        assert!(
            error
                .to_string()
                .contains("transition event without `task_id`"),
            "{error}"
        );
        let error = serde_json::from_str::<Event>(r#"{"seq":1,"type":"gone","endpoint_id":"x"}"#)
            .expect_err("no such type");
        assert!(
            error.to_string().contains("unknown variant `gone`"),
            "{error}"
        );
    }
}
