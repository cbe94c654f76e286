//! Every call the dashboard makes to the service, and the one error type they share.

use std::fmt;

use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiError {
    /// The token was refused: sign in again.
    Unauthorized,
    /// The service answered with an error.
    Http { status: u16, message: String },
    /// The service could not be reached.
    Network(String),
    /// The answer was not what the dashboard expects.
    Decode(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str("The service refused the token. Sign in again."),
            ApiError::Http { status, message } => {
                write!(f, "The service answered {status}: {message}")
            }
            ApiError::Network(why) => write!(f, "Cannot reach the service ({why})."),
            ApiError::Decode(why) => write!(f, "Unexpected answer from the service: {why}"),
        }
    }
}

/// Where the service is and the token to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Api {
    /// The service's base URL, empty when it serves this page.
    pub base: String,
    pub token: String,
}

fn js_error(value: wasm_bindgen::JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            js_sys::JSON::stringify(&value)
                .ok()
                .and_then(|s| s.as_string())
        })
        .unwrap_or_else(|| "unknown error".into())
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The event stream's URL (EventSource cannot send headers, so the token rides along).
    pub fn events_url(&self, after: u64) -> String {
        self.url(&format!(
            "/v1/events?after={after}&access_token={}",
            self.token
        ))
    }

    async fn fetch(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<String, ApiError> {
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        let headers = web_sys::Headers::new().map_err(|e| ApiError::Network(js_error(e)))?;
        headers
            .set("Authorization", &format!("Bearer {}", self.token))
            .map_err(|e| ApiError::Network(js_error(e)))?;
        if let Some(body) = &body {
            headers
                .set("Content-Type", "application/json")
                .map_err(|e| ApiError::Network(js_error(e)))?;
            init.set_body(&wasm_bindgen::JsValue::from_str(body));
        }
        init.set_headers(&headers);
        let request = web_sys::Request::new_with_str_and_init(&self.url(path), &init)
            .map_err(|e| ApiError::Network(js_error(e)))?;
        let window = web_sys::window().ok_or_else(|| ApiError::Network("no window".into()))?;
        let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(|e| ApiError::Network(js_error(e)))?
            .dyn_into()
            .map_err(|_| ApiError::Decode("not a response".into()))?;
        let text = JsFuture::from(
            response
                .text()
                .map_err(|e| ApiError::Network(js_error(e)))?,
        )
        .await
        .map_err(|e| ApiError::Network(js_error(e)))?
        .as_string()
        .unwrap_or_default();
        match response.status() {
            200..=299 => Ok(text),
            401 => Err(ApiError::Unauthorized),
            status => {
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or(text);
                Err(ApiError::Http { status, message })
            }
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let text = self.fetch("GET", path, None).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ApiError> {
        let text = self.fetch("POST", path, Some(body.to_string())).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
    }
}
