//! The `/v1` routes, declared once: [`v1_routes`] builds the router from the table and
//! `GET /v1/openapi.json` describes the very same table, so the document cannot miss a route.

use axum::Json;
use axum::Router;
use lifeline_model::{Actor, State};
use serde_json::{Map, Value, json};

use super::{AppState, endpoints, events, functions, tasks};

/// One route's documentation.
struct RouteDoc {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// Query parameters: (name, description).
    query: &'static [(&'static str, &'static str)],
    /// The request body's shape, in words and an example, if it takes one.
    body: Option<&'static str>,
    /// The success status.
    ok: u16,
}

macro_rules! routes {
    ($( $method:ident $path:literal => $handler:path {
        summary: $summary:literal,
        $( query: [$( ($q:literal, $qd:literal) ),* $(,)?], )?
        $( body: $body:literal, )?
        ok: $ok:literal $(,)?
    } )*) => {
        /// Every `/v1` route (paths relative to `/v1`).
        pub(super) fn v1_routes() -> Router<AppState> {
            Router::new() $( .route($path, axum::routing::$method($handler)) )*
        }

        const ROUTES: &[RouteDoc] = &[ $( RouteDoc {
            method: stringify!($method),
            path: $path,
            summary: $summary,
            query: &[ $( $( ($q, $qd) ),* )? ],
            body: routes!(@opt $( $body )?),
            ok: $ok,
        } ),* ];
    };
    (@opt $body:literal) => { Some($body) };
    (@opt) => { None };
}

routes! {
    get "/openapi.json" => document { summary: "This document.", ok: 200 }
    post "/endpoints" => endpoints::register {
        summary: "Register an endpoint; the answer holds its id and its token (shown once).",
        body: r#"{"name": "my-cluster"}"#,
        ok: 201,
    }
    get "/endpoints" => endpoints::list {
        summary: "Every endpoint: name, online or offline (from heartbeats), last heartbeat and the per-executor report.",
        ok: 200,
    }
    get "/endpoints/{id}" => endpoints::get_one { summary: "One endpoint.", ok: 200 }
    delete "/endpoints/{id}" => endpoints::delete {
        summary: "Delete an endpoint: its unfinished tasks are cancelled and its token stops working.",
        ok: 204,
    }
    post "/endpoints/{id}/submit" => tasks::submit {
        summary: "Submit tasks (calls of registered functions) to an endpoint.",
        body: r#"{"tasks": [{"function_id": "<uuid>", "args": [1, 2], "kwargs": {"x": 3}}], "max_retries": 3}"#,
        ok: 202,
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
        body: r#"{"name": "add", "kind": "python", "source": "def add(a, b):\n    return a + b\n", "entrypoint": "add"} or {"name": "greet", "kind": "shell", "command": "echo hello {name}"}"#,
        ok: 201,
    }
    get "/functions/{id}" => functions::get_one { summary: "One function.", ok: 200 }
    get "/tasks" => tasks::list {
        summary: "Tasks, newest first, one page at a time.",
        query: [
            ("endpoint_id", "One endpoint id or several, comma-separated."),
            ("state", "One state or several, comma-separated."),
            ("function_id", "Only calls of this function."),
            ("task_group_id", "Only the tasks of this submission."),
            ("cursor", "The next_cursor of the previous page."),
            ("limit", "Page size, 1 to 10000 (default 100)."),
        ],
        ok: 200,
    }
    post "/tasks/batch_status" => tasks::batch_status {
        summary: "Status documents of many tasks; unknown ids get a per-id error.",
        body: r#"{"task_ids": ["<uuid>", "<uuid>"]}"#,
        ok: 200,
    }
    get "/tasks/{id}" => tasks::get_one {
        summary: "A task's status document: {pending, status, result | exception, completion_t, details}.",
        ok: 200,
    }
    post "/tasks/{id}/cancel" => tasks::cancel {
        summary: "Cancel a pending task (409 when it already finished).",
        ok: 200,
    }
    get "/stats" => tasks::stats {
        summary: "Tasks per state, transitions per edge and time-in-state percentiles, with the event sequence they include.",
        query: [("endpoint_id", "Only these endpoints (one id, or several comma-separated).")],
        ok: 200,
    }
    get "/events" => events::stream {
        summary: "Server-Sent Events: every transition and endpoint status change; the event id is the global sequence. Resume with Last-Event-ID.",
        query: [
            ("endpoint_id", "Only this endpoint's events."),
            ("after", "Start after this sequence number (as Last-Event-ID)."),
            ("access_token", "The token, for clients that cannot send headers."),
        ],
        ok: 200,
    }
}

fn operation(route: &RouteDoc) -> Value {
    let mut parameters: Vec<Value> = Vec::new();
    if route.path.contains("{id}") {
        parameters.push(json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }));
    }
    for (name, description) in route.query {
        parameters.push(json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } }));
    }
    let mut op = json!({
        "summary": route.summary,
        "parameters": parameters,
        "responses": {
            route.ok.to_string(): { "description": "Success." },
            "4XX": { "description": "Bad input.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
        },
    });
    if let Some(example) = route.body {
        op["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "example": example } } });
    }
    if route.path != "/openapi.json" {
        op["security"] = json!([{ "bearer": [] }]);
    }
    op
}

/// `GET /v1/openapi.json`.
pub(super) async fn document() -> Json<Value> {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(format!("/v1{}", route.path))
            .or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    paths.insert(
        "/healthz".into(),
        json!({ "get": { "summary": "Liveness, with the last event's sequence number.", "responses": { "200": { "description": "Up." } } } }),
    );
    let states: Vec<&str> = State::ALL.iter().map(|s| s.wire()).collect();
    let actors: Vec<&str> = Actor::ALL.iter().map(|a| a.wire()).collect();
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": "Lifeline", "version": env!("CARGO_PKG_VERSION"), "description": "Run functions on endpoints and follow every task's life cycle." },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": { "error": { "type": "string" }, "message": { "type": "string" } },
                },
                "TaskState": { "type": "string", "enum": states },
                "Actor": { "type": "string", "enum": actors },
            },
        },
    }))
}
