//! The `/v1` routes, declared once: [`v1_routes`] builds the router from the table and
//! `GET /v1/openapi.json` describes the very same table, so the document cannot miss a route.
//!
//! Every request body, query and response named in the table is a type of
//! `lifeline_model::api`; their JSON Schemas come from those types (schemars), so the document
//! says exactly what the handlers read and write.

use std::sync::OnceLock;

use axum::Json;
use axum::Router;
use lifeline_model::api::{
    AuditEntry, AuditQuery, BatchStatus, BatchStatusRequest, EndpointRegistered, EndpointShares,
    EndpointSummary, ErrorBody, Event, EventsQuery, Failures, FailuresQuery, FunctionInfo,
    FunctionRegistered, GroupPage, GroupsQuery, Health, NewToken, NewUser, RegisterEndpoint,
    RegisterFunction, ShareEndpoint, StatsQuery, StatsSummary, StatusDocument, StreamTicket,
    SubmitRequest, Submitted, TaskListQuery, TaskPage, Timeline, TimelineQuery, TokenCreated,
    TokenInfo, TokenListQuery, UserCreated, UserInfo, UserQuotas, WaitQuery,
};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::{
    AppState, audit, endpoints, events, failures, functions, listing, status, tasks, users,
};

/// A schema of one type, made by the document's generator (which collects the components).
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// What a route answers when it succeeds.
enum Answer {
    /// A JSON body of this schema.
    Json(SchemaFn),
    /// A stream of Server-Sent Events whose `data` has this schema.
    Events(SchemaFn),
    /// No body (204) or a protocol switch (101).
    Empty,
}

/// One route's documentation.
struct RouteDoc {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    query: Option<SchemaFn>,
    body: Option<SchemaFn>,
    ok: u16,
    answer: Answer,
}

fn reference<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn inline<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    T::json_schema(generator)
}

/// Task arguments and results as any JSON value.
type Json_ = serde_json::Value;

macro_rules! routes {
    ($( $method:ident $path:literal => $handler:path {
        summary: $summary:literal,
        $( query: $query:ty, )?
        $( body: $body:ty, )?
        ok: $ok:literal $( $kind:ident $answer:ty )? $(,)?
    } )*) => {
        /// Every `/v1` route (paths relative to `/v1`).
        pub(super) fn v1_routes() -> Router<AppState> {
            Router::new() $( .route($path, axum::routing::$method($handler)) )*
        }

        fn table() -> Vec<RouteDoc> {
            vec![ $( RouteDoc {
                method: stringify!($method),
                path: $path,
                summary: $summary,
                query: routes!(@schema inline $( $query )?),
                body: routes!(@schema reference $( $body )?),
                ok: $ok,
                answer: routes!(@answer $( $kind $answer )?),
            } ),* ]
        }
    };
    (@schema $how:ident $t:ty) => { Some($how::<$t> as SchemaFn) };
    (@schema $how:ident) => { None };
    (@answer json $t:ty) => { Answer::Json(reference::<$t>) };
    (@answer events $t:ty) => { Answer::Events(reference::<$t>) };
    (@answer) => { Answer::Empty };
}

routes! {
    get "/openapi.json" => document { summary: "This document.", ok: 200 json Json_ }
    post "/endpoints" => endpoints::register {
        summary: "Register an endpoint; the answer holds its id and its token (shown once).",
        body: RegisterEndpoint,
        ok: 201 json EndpointRegistered,
    }
    get "/endpoints" => endpoints::list {
        summary: "Every endpoint: name, online or offline (from heartbeats), last heartbeat and the per-executor report.",
        ok: 200 json Vec<EndpointSummary>,
    }
    get "/endpoints/{id}" => endpoints::get_one { summary: "One endpoint.", ok: 200 json EndpointSummary }
    delete "/endpoints/{id}" => endpoints::delete {
        summary: "Delete an endpoint: its unfinished tasks are cancelled and its token stops working.",
        ok: 204,
    }
    post "/endpoints/{id}/submit" => tasks::submit {
        summary: "Submit tasks (calls of registered functions) to an endpoint.",
        body: SubmitRequest<Json_>,
        ok: 202 json Submitted,
    }
    get "/endpoints/{id}/connect" => endpoints::connect {
        summary: "The endpoint agent's WebSocket, authenticated with the endpoint's token.",
        ok: 101,
    }
    get "/connect" => endpoints::connect_self {
        summary: "The endpoint agent's WebSocket for the endpoint its token belongs to.",
        ok: 101,
    }
    post "/functions" => functions::register {
        summary: "Register a Python function or a shell command.",
        body: RegisterFunction,
        ok: 201 json FunctionRegistered,
    }
    get "/functions" => functions::list {
        summary: "Your functions (admin: everyone's), newest first.",
        ok: 200 json Vec<FunctionInfo>,
    }
    get "/functions/{id}" => functions::get_one { summary: "One function.", ok: 200 json FunctionInfo }
    get "/tasks" => listing::list {
        summary: "Tasks, newest first, one page at a time.",
        query: TaskListQuery,
        ok: 200 json TaskPage,
    }
    post "/tasks/batch_status" => status::batch_status {
        summary: "Status documents of many tasks; unknown ids get a per-id error. With ?wait=S the answer waits (up to S seconds) until every task asked about is finished.",
        query: WaitQuery,
        body: BatchStatusRequest,
        ok: 200 json BatchStatus<Json_>,
    }
    get "/tasks/{id}" => status::get_one {
        summary: "A task's status document: {pending, status, result | exception, completion_t, details}. With ?wait=S the answer waits (up to S seconds) until the task is finished. A task that finished longer ago than the retention answers 410 with error `expired`.",
        query: WaitQuery,
        ok: 200 json StatusDocument<Json_>,
    }
    post "/tasks/{id}/cancel" => tasks::cancel {
        summary: "Cancel a pending task (409 when it already finished).",
        ok: 200 json StatusDocument<Json_>,
    }
    get "/stats" => listing::stats {
        summary: "Tasks per state, transitions per edge and time-in-state percentiles, with the event sequence they include.",
        query: StatsQuery,
        ok: 200 json StatsSummary,
    }
    post "/endpoints/{id}/share" => endpoints::share {
        summary: "Share an endpoint with a user (`with`), or open it to every user (`public`); its owner's or admin's to do.",
        body: ShareEndpoint,
        ok: 200 json EndpointShares,
    }
    post "/users" => users::add {
        summary: "Add a user (admin); the answer holds their first token (shown once).",
        body: NewUser,
        ok: 201 json UserCreated,
    }
    get "/users" => users::list { summary: "Every user, with their quotas (admin).", ok: 200 json Vec<UserInfo> }
    patch "/users/{name}" => users::set_quotas {
        summary: "Set a user's quotas (admin).",
        body: UserQuotas,
        ok: 200 json UserInfo,
    }
    delete "/users/{name}" => users::remove {
        summary: "Remove a user (admin): their tokens stop working at once; their tasks stay.",
        ok: 204,
    }
    get "/me" => users::me { summary: "The signed-in user.", ok: 200 json UserInfo }
    post "/tokens" => users::create_token {
        summary: "Make a token for yourself (admin: for anyone); the answer holds it (shown once).",
        body: NewToken,
        ok: 201 json TokenCreated,
    }
    get "/tokens" => users::list_tokens {
        summary: "Your tokens (admin: anyone's, or everyone's with user=*), never the tokens themselves.",
        query: TokenListQuery,
        ok: 200 json Vec<TokenInfo>,
    }
    delete "/tokens/{id}" => users::revoke_token {
        summary: "Revoke a token: refused at once, and streams opened with it close.",
        ok: 204,
    }
    post "/events/ticket" => users::ticket {
        summary: "A ticket for GET /v1/events?ticket=...: valid once, within a minute (for clients that cannot send headers).",
        ok: 200 json StreamTicket,
    }
    get "/audit" => audit::list {
        summary: "The audit log of admin actions (admin).",
        query: AuditQuery,
        ok: 200 json Vec<AuditEntry>,
    }
    get "/timeline" => listing::timeline {
        summary: "Points spread over the stored history (sequence number, time, transitions so far) for a timeline with its throughput; any point's figures come from GET /v1/stats?at_seq=.",
        query: TimelineQuery,
        ok: 200 json Timeline,
    }
    get "/groups" => listing::groups {
        summary: "Submissions (task groups) newest first, each with its endpoint, function, size and tasks per state; paged like the task list.",
        query: GroupsQuery,
        ok: 200 json GroupPage,
    }
    get "/failures" => failures::list {
        summary: "Failed tasks and retried attempts grouped by cause (reason kind and message with ids, addresses and numbers masked), the largest group first; GET /v1/tasks?failure=KEY lists a group's tasks.",
        query: FailuresQuery,
        ok: 200 json Failures,
    }
    get "/events" => events::stream {
        summary: "Server-Sent Events: every transition and endpoint status change; the event id is the global sequence. Resume with Last-Event-ID; resuming from before an event retention removed first gets `event: reset` (data: StreamReset) and goes on from the head.",
        query: EventsQuery,
        ok: 200 events Event,
    }
}

/// Query parameters from the schema of a query type: one per property.
fn parameters(query: Schema) -> Vec<Value> {
    let object = query.as_object().cloned().unwrap_or_default();
    let required: Vec<Value> = object
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let properties = object
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    properties
        .into_iter()
        .map(|(name, mut schema)| {
            let description = schema
                .as_object_mut()
                .and_then(|s| s.remove("description"))
                .unwrap_or(Value::Null);
            let schema = not_null(schema);
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&Value::String(name.clone())),
                "description": description,
                "schema": schema,
            })
        })
        .collect()
}

/// A parameter's schema without the `null` an `Option` adds: a query parameter is either
/// absent or has a value.
fn not_null(mut schema: Value) -> Value {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [one] = types.as_slice() {
            schema["type"] = one.clone();
        }
        return schema;
    }
    if let Some(Value::Array(options)) = schema.get("anyOf") {
        let rest: Vec<&Value> = options.iter().filter(|o| o["type"] != "null").collect();
        if let [one] = rest.as_slice() {
            return (*one).clone();
        }
    }
    schema
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
    })
}

fn operation(route: &RouteDoc, generator: &mut SchemaGenerator) -> Value {
    let mut parameters_list: Vec<Value> = Vec::new();
    if route.path.contains("{id}") {
        // Tokens are known by a short hex id; everything else by a UUID.
        let schema = if route.path.starts_with("/tokens/") {
            json!({ "type": "string", "pattern": "^[0-9a-f]{16}$" })
        } else {
            json!({ "type": "string", "format": "uuid" })
        };
        parameters_list.push(json!({
            "name": "id", "in": "path", "required": true, "schema": schema,
        }));
    }
    if route.path.contains("{name}") {
        parameters_list.push(json!({
            "name": "name", "in": "path", "required": true,
            "schema": { "type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$" },
        }));
    }
    if let Some(query) = route.query {
        parameters_list.extend(parameters(query(generator)));
    }
    let success = match &route.answer {
        Answer::Json(schema) => json!({
            "description": "Success.",
            "content": { "application/json": { "schema": schema(generator) } },
        }),
        Answer::Events(schema) => json!({
            "description": "A stream of events; each `data` line is one JSON event.",
            "content": { "text/event-stream": { "schema": schema(generator) } },
        }),
        Answer::Empty => json!({ "description": "Success, with no body." }),
    };
    let mut responses = Map::new();
    responses.insert(route.ok.to_string(), success);
    responses.insert(
        "4XX".into(),
        error_response(
            "Bad input, no or wrong token, unknown id, expired task (410), conflict, too large, over a quota (429, with Retry-After).",
        ),
    );
    responses.insert(
        "503".into(),
        error_response("The service is shutting down."),
    );
    let mut op = json!({
        "summary": route.summary,
        "operationId": format!("{}{}", route.method, route.path.replace(['/', '{', '}', '.'], "_")),
        "parameters": parameters_list,
        "responses": responses,
    });
    if let Some(body) = route.body {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": body(generator) } },
        });
    }
    if route.path != "/openapi.json" {
        op["security"] = json!([{ "bearer": [] }]);
    }
    op
}

/// Builds the document (once per process: it never changes).
pub fn openapi() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut generator = SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .into_generator();
        let mut paths = Map::new();
        for route in table() {
            let entry = paths
                .entry(format!("/v1{}", route.path))
                .or_insert_with(|| json!({}));
            entry[route.method] = operation(&route, &mut generator);
        }
        let health = reference::<Health>(&mut generator);
        paths.insert(
            "/healthz".into(),
            json!({ "get": {
                "summary": "Liveness, with the last event's sequence number.",
                "operationId": "get_healthz",
                "responses": { "200": {
                    "description": "Up.",
                    "content": { "application/json": { "schema": health } },
                } },
            } }),
        );
        let error = reference::<ErrorBody>(&mut generator);
        reference::<lifeline_model::api::StreamReset>(&mut generator);
        paths.insert(
            "/metrics".into(),
            json!({ "get": {
                "summary": "Prometheus metrics (text format), every name prefixed `lifeline_`; for the scrape token (`metrics_token`) or an admin's token.",
                "operationId": "get_metrics",
                "security": [{ "bearer": [] }],
                "responses": {
                    "200": {
                        "description": "The metrics.",
                        "content": { "text/plain": { "schema": { "type": "string" } } },
                    },
                    "401": {
                        "description": "No token, or one that is not valid.",
                        "content": { "application/json": { "schema": error.clone() } },
                    },
                    "403": {
                        "description": "A token of a user who is not an admin.",
                        "content": { "application/json": { "schema": error } },
                    },
                },
            } }),
        );
        let schemas = generator.take_definitions(true);
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Lifeline",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Run functions on endpoints and follow every task's life cycle.",
            },
            "paths": paths,
            "components": {
                "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
                "schemas": schemas,
            },
        })
    })
}

/// `GET /v1/openapi.json`.
pub(super) async fn document() -> Json<Value> {
    Json(openapi().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(list) => list.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_body_has_a_schema() {
        let doc = openapi();
        if std::env::var_os("LIFELINE_PRINT_OPENAPI").is_some() {
            println!("{doc:#}");
        }
        let mut found = Vec::new();
        refs(doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} points outside the components"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} does not resolve"
            );
        }
        let submit = &doc["paths"]["/v1/endpoints/{id}/submit"]["post"];
        assert_eq!(
            submit["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/SubmitRequest"
        );
        let limit = doc["paths"]["/v1/tasks"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "limit")
            .expect("limit")
            .clone();
        assert_eq!(limit["schema"]["maximum"], 10000, "{limit}");
        assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
    }
}
