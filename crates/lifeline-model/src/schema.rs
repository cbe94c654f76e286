//! JSON Schemas of the types whose serde form is written by hand (ids, times, counts), for the
//! service's OpenAPI document. Built only with the `schema` feature; describing a type is not I/O.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::api::{RegisterFunction, name_schema};
use crate::ids::{EndpointId, FunctionId, TaskGroupId, TaskId};
use crate::report::StateCounts;
use crate::state::State;
use crate::time::Timestamp;

macro_rules! uuid_schema {
    ($($name:ident),*) => {$(
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "format": "uuid",
                    "pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$",
                })
            }
        }
    )*};
}

uuid_schema!(TaskId, TaskGroupId, FunctionId, EndpointId);

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "description": "Seconds since the Unix epoch, to the microsecond.",
        })
    }
}

impl JsonSchema for StateCounts {
    fn schema_name() -> Cow<'static, str> {
        "StateCounts".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let count = generator.subschema_for::<u64>();
        let properties: serde_json::Map<String, serde_json::Value> = State::ALL
            .iter()
            .map(|s| (s.wire().to_owned(), count.clone().into()))
            .collect();
        json_schema!({
            "type": "object",
            "description": "Tasks per state; states with none are left out.",
            "properties": properties,
            "additionalProperties": false,
        })
    }
}

impl JsonSchema for RegisterFunction {
    fn schema_name() -> Cow<'static, str> {
        "RegisterFunction".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let name = name_schema(generator);
        let text = json_schema!({ "type": "string", "pattern": "\\S" });
        json_schema!({
            "description": "`POST /v1/functions`: a Python function (source and entry point) or a shell command.",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "name": name,
                        "kind": { "const": "python" },
                        "source": text,
                        "entrypoint": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
                    },
                    "required": ["name", "kind", "source", "entrypoint"],
                    "additionalProperties": false,
                },
                {
                    "type": "object",
                    "properties": {
                        "name": name,
                        "kind": { "const": "shell" },
                        "command": text,
                    },
                    "required": ["name", "kind", "command"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}
