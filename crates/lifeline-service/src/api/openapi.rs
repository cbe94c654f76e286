//! `GET /v1/openapi.json`.
pub(super) async fn document() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({}))
}
