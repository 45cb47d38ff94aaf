//! The HTTP API of SPEC §3 (axum on hyper). Routes are registered through
//! `utoipa_axum` from their handlers' annotations, so the OpenAPI document
//! at `/openapi.json` is generated from the same code that serves them.
//! Every error is `{"error": {"type", "message", ...}}` ([`errors`]).

mod account;
mod admin;
mod code;
mod errors;
mod extract;
mod jobs;
mod keys;
mod observe;
mod openapi;
mod streaming;
mod vals;
mod workers;

use crate::service::Service;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use observe::REQUEST_ID;

/// What every handler shares.
pub struct AppState {
    /// The service (shared with the job workers).
    pub service: Arc<Service>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Set once shutdown begins: `/readyz` answers 503.
    draining: AtomicBool,
    /// The threads that run requests' blocking work.
    workers: workers::Workers,
}

impl AppState {
    /// The state of a server that is ready.
    pub fn new(service: Arc<Service>, max_body_bytes: usize) -> Self {
        AppState {
            service,
            max_body_bytes,
            draining: AtomicBool::new(false),
            workers: workers::Workers::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
        }
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Every route with its documentation, before the state is given.
// The v0 routes are marked deprecated, which the document says too.
#[allow(deprecated)]
fn documented_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(observe::healthz))
        .routes(routes!(observe::readyz))
        .routes(routes!(observe::metrics))
        .routes(routes!(openapi::openapi))
        .routes(routes!(code::eval_get))
        .routes(routes!(code::eval_post))
        .routes(routes!(code::run_get, code::run_post))
        .routes(routes!(code::express))
        .routes(routes!(code::express_root))
        .routes(routes!(code::express_path))
        .routes(routes!(code::eval_v0))
        .routes(routes!(code::express_v0))
        .routes(routes!(account::create_user, admin::list_users))
        .routes(routes!(account::me))
        .routes(routes!(
            vals::put_val,
            vals::get_val,
            vals::patch_val,
            vals::delete_val
        ))
        .routes(routes!(vals::val_versions))
        .routes(routes!(vals::val_references))
        .routes(routes!(vals::val_referenced_by))
        .routes(routes!(vals::fork_val))
        .routes(routes!(vals::val_upstream))
        .routes(routes!(vals::pin_references))
        .routes(routes!(vals::call_sites))
        .routes(routes!(vals::fix_call_sites))
        .routes(routes!(vals::list_schedules))
        .routes(routes!(vals::user_vals))
        .routes(routes!(account::put_secret, account::delete_secret))
        .routes(routes!(account::list_secrets))
        .routes(routes!(account::list_evaluations))
        .routes(routes!(account::get_evaluation))
        .routes(routes!(account::list_emails))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(admin::delete_user))
        .routes(routes!(admin::user_keys))
        .routes(routes!(admin::revoke_user_key))
        .routes(routes!(jobs::submit_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job))
}

/// The OpenAPI document of every route valbox serves.
pub fn openapi_document() -> serde_json::Value {
    openapi::finish(documented_routes().into_openapi())
}

/// The router of every route valbox serves.
pub fn router(state: Arc<AppState>) -> Router {
    let (router, document) = documented_routes().split_for_parts();
    let document = openapi::finish(document);
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ))
        .layer(axum::Extension(Arc::new(document)))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> errors::ApiError {
    errors::ApiError(crate::service::ServiceError::NotFound(format!(
        "no route {}",
        uri.path()
    )))
}

/// Serves the API on `listener` until `stop` resolves, then shuts down
/// gracefully: `/readyz` answers 503, no new connection is accepted,
/// requests in flight finish (within `grace`), idle connections close.
/// Returns whether every request finished within the grace period.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<bool> {
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let mut stopped_for_server = stopped.clone();
    let server = axum::serve(listener, router(state.clone())).with_graceful_shutdown(async move {
        let _ = stopped_for_server.wait_for(|stop| *stop).await;
    });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map(|()| true),
        () = stop => {}
    }
    state.draining.store(true, Ordering::SeqCst);
    tracing::info!(
        grace_s = grace.as_secs_f64(),
        "shutting down: no new connections; finishing requests in flight"
    );
    let _ = stopping.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map(|()| true),
        Err(_) => {
            tracing::warn!("the grace period ended with requests still in flight");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::openapi_document;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn operations(document: &Value) -> Vec<(String, String, &Value)> {
        let mut list = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                list.push((path.clone(), method.clone(), operation));
            }
        }
        list
    }

    #[test]
    fn every_operation_has_a_unique_id_and_its_path_parameters() {
        let document = openapi_document();
        let mut ids = BTreeSet::new();
        for (path, method, operation) in operations(&document) {
            let id = operation["operationId"].as_str().unwrap().to_string();
            assert!(
                ids.insert(id.clone()),
                "{method} {path}: {id} is used twice"
            );
            assert!(!path.contains("{*"), "{path} keeps axum's wildcard syntax");
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "{method} {path}");
                    p["name"].as_str().unwrap()
                })
                .collect();
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(declared, in_path, "{method} {path}");
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
        }
    }

    #[test]
    fn bodies_keys_and_targets_are_spelled_out() {
        let document = openapi_document();
        let operation = |path: &str, method: &str| document["paths"][path][method].clone();
        for (path, method) in [
            ("/v1/eval", "post"),
            ("/v1/vals/{target}", "put"),
            ("/v1/vals/{target}", "patch"),
            ("/v1/secrets/{key}", "put"),
            ("/v1/users", "post"),
            ("/v1/jobs", "post"),
        ] {
            assert_eq!(
                operation(path, method)["requestBody"]["required"],
                true,
                "{method} {path}"
            );
        }
        // Needs a key: bearer only, and 401 documented.
        let me = operation("/v1/me", "get");
        assert_eq!(me["security"], serde_json::json!([{"bearer": []}]));
        assert!(me["responses"]["401"].is_object());
        // Anonymous allowed: an empty requirement too.
        let run = operation("/v1/run/{target}", "get");
        assert_eq!(
            run["security"],
            serde_json::json!([{}, {"bearer": ["run"]}])
        );
        let target = &run["parameters"][0]["schema"]["pattern"];
        let pattern = target.as_str().unwrap();
        assert!(
            pattern.starts_with('^') && pattern.contains("\\."),
            "{pattern}"
        );
        // The error shape every non-2xx answer has.
        assert_eq!(
            run["responses"]["404"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        assert!(document["components"]["schemas"]["Error"].is_object());
        // `args` is JSON text, described as such.
        let args = run["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "args")
            .unwrap();
        assert!(
            args["content"]["application/json"]["schema"].is_object(),
            "{args}"
        );
    }
}
