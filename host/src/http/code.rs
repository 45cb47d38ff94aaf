//! The routes that run code: `/v1/eval`, `/v1/run` (API mode), the Express
//! and web-standard handler routes, and their deprecated v0 forms.

use super::errors::{ApiError, ApiResult};
use super::extract::{as_caller, read_body, JsonBody, QueryArgs};
use super::openapi::{
    BadInput, BodyErrors, EvalRequest, Missing, OptionalKey, RunErrors, RunRequest, TAG_CODE,
};
use super::streaming;
use super::AppState;
use crate::request_args;
use crate::service::{ExpressMode, ExpressResponse, RunAnswer};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// `user.val` from a path.
pub fn split_target(target: &str) -> ApiResult<(String, String)> {
    request_args::split_target(target).map_err(ApiError::bad_request)
}

/// Evaluate an expression (URL-encoded in the path) as the key's user, or anonymously.
#[utoipa::path(get, path = "/v1/eval/{*code}", tag = TAG_CODE,
    params(("code" = String, Path, description = "An expression or function body, URL-encoded", min_length = 1)),
    security((), ("bearer" = ["run"])),
    responses((status = 200, description = "The result, as JSON", body = Value), OptionalKey, RunErrors))]
pub async fn eval_get(
    State(state): Shared,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let result = as_caller(&state, &headers, "run", move |service, user| {
        service.eval(user, &code, "[]")
    })
    .await?;
    Ok(Json(result))
}

/// Deprecated v0 form of `GET /v1/eval/{code}` (Restricted Library semantics).
#[deprecated = "v0 route: use `GET /v1/eval/{code}`"]
#[utoipa::path(get, path = "/eval/{*code}", tag = TAG_CODE,
    params(("code" = String, Path, description = "An expression or function body, URL-encoded", min_length = 1)),
    security((), ("bearer" = ["run"])),
    responses((status = 200, description = "The result, as JSON", body = Value), OptionalKey, RunErrors))]
pub async fn eval_v0(
    state: Shared,
    code: Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    eval_get(state, code, headers).await
}

/// Evaluate code (`{code, args}`) as the key's user, or anonymously.
#[utoipa::path(post, path = "/v1/eval", tag = TAG_CODE,
    request_body(content = EvalRequest, description = "The code and its arguments"),
    security((), ("bearer" = ["run"])),
    responses((status = 200, description = "The result, as JSON", body = Value), OptionalKey, BodyErrors, RunErrors))]
pub async fn eval_post(
    State(state): Shared,
    headers: HeaderMap,
    JsonBody(body): JsonBody<EvalRequest>,
) -> ApiResult<Json<Value>> {
    let args = request_args::args_json(body.args);
    let result = as_caller(&state, &headers, "run", move |service, user| {
        service.eval(user, &body.code, &args)
    })
    .await?;
    Ok(Json(result))
}

/// `GET /v1/run`'s query.
#[derive(serde::Deserialize)]
pub struct ArgsQuery {
    args: Option<String>,
}

/// Run `user.val` in API mode: it runs as its author with the JSON
/// arguments of `?args=[...]`. A val that returns a `Response` answers with it.
#[utoipa::path(get, path = "/v1/run/{target}", tag = TAG_CODE,
    params(
        ("target" = String, Path, description = "`user.val`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$"),
        ("args" = Option<Vec<Value>>, Query, description = "The arguments, as a JSON array (`?args=[1,2]`)")),
    security((), ("bearer" = ["run"])),
    responses(
        (status = 200, description = "The val's result as JSON, or the `Response` it returned (any content type)",
            content((Value = "application/json"), (String = "*/*"))),
        OptionalKey, Missing, BadInput, RunErrors))]
pub async fn run_get(
    State(state): Shared,
    Path(target): Path<String>,
    QueryArgs(query): QueryArgs<ArgsQuery>,
    headers: HeaderMap,
) -> Response {
    let args = request_args::run_args_from_query(query.args.as_deref());
    run(state, target, args, headers).await
}

/// Run `user.val` in API mode with the arguments in the body: `{"args":
/// [...]}` or a bare array (none when the body is empty).
#[utoipa::path(post, path = "/v1/run/{target}", tag = TAG_CODE,
    params(
        ("target" = String, Path, description = "`user.val`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    request_body(content = Option<RunRequest>, description = "The arguments (none when empty)"),
    security((), ("bearer" = ["run"])),
    responses(
        (status = 200, description = "The val's result as JSON, or the `Response` it returned (any content type)",
            content((Value = "application/json"), (String = "*/*"))),
        OptionalKey, Missing, BodyErrors, RunErrors))]
pub async fn run_post(
    State(state): Shared,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body(&state, body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let args = request_args::run_args_from_body(&bytes);
    run(state, target, args, headers).await
}

/// Both `/v1/run` methods, once the arguments are read.
async fn run(
    state: Arc<AppState>,
    target: String,
    args: Result<String, String>,
    headers: HeaderMap,
) -> Response {
    let deadline = state.service.deadline();
    let start = move |sink| async move {
        let args = args.map_err(ApiError::bad_request)?;
        let (user, name) = split_target(&target)?;
        as_caller(&state, &headers, "run", move |service, viewer| {
            service.run(viewer, &user, &name, &args, Some(sink))
        })
        .await
    };
    streaming::answer(deadline, start, |answer| match answer {
        RunAnswer::Json(value) => Json(value).into_response(),
        // A val that returns a Response answers with it, as a handler would.
        RunAnswer::Response(built) => express_response(built),
    })
    .await
}

/// The request an Express handler sees.
fn express_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    base: &str,
    rest: &str,
    body: &[u8],
) -> Value {
    let mut header_map = BTreeMap::new();
    for (name, value) in headers {
        if name == header::AUTHORIZATION {
            continue;
        }
        if let Ok(value) = value.to_str() {
            header_map.insert(name.as_str().to_string(), value.to_string());
        }
    }
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .unwrap_or_default()
                .into_iter()
                .collect()
        })
        .unwrap_or_default();
    let path = format!("/{rest}");
    // The web `Request`'s URL: the val is the whole site, so its path is
    // the path inside the val; the Host header keeps only the characters a
    // host can have ("localhost" when there is none).
    let host: String = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty())
        .unwrap_or("localhost")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.:-[]".contains(*c))
        .collect();
    let search = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let protocol = "http";
    let mut described = json!({
        "method": method.as_str(),
        "url": format!("{protocol}://{host}{path}{search}"),
        "path": path,
        "originalUrl": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "baseUrl": base,
        "query": query,
        "params": {},
        "headers": header_map,
        "body": String::from_utf8_lossy(body),
        "protocol": protocol,
    });
    // A body that is not UTF-8 also goes as one character per byte, so the
    // handler gets its exact bytes (`req.arrayBuffer()`, Express's
    // `req.body` as a Uint8Array).
    if std::str::from_utf8(body).is_err() {
        described["bodyLatin1"] = body
            .iter()
            .map(|&b| char::from(b))
            .collect::<String>()
            .into();
    }
    described
}

/// Turns what the handler built into the HTTP response (with the sandbox
/// headers of [`streaming::with_head`]).
fn express_response(built: ExpressResponse) -> Response {
    let (status, pairs, body) = built.into_parts();
    streaming::with_head(status, pairs, Body::from(body))
}

/// Call `user.val` as an Express `(req, res)` or web-standard `(Request) =>
/// Response` handler in API mode; the answer is whatever the handler built,
/// with `Content-Security-Policy: sandbox`.
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/express/{target}", tag = TAG_CODE,
    params(("target" = String, Path, description = "`user.val`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    security((), ("bearer" = ["run"])),
    responses((status = "default", description = "The handler's own response (any status, headers and body)"),
        OptionalKey, Missing, BodyErrors, RunErrors))]
pub async fn express(
    State(state): Shared,
    Path(target): Path<String>,
    request: Request,
) -> Response {
    let base = format!("/v1/express/{target}");
    call_express(
        state,
        request,
        base,
        target,
        String::new(),
        ExpressMode::Api,
    )
    .await
}

/// The same at path `/` (a trailing slash).
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/express/{target}/", tag = TAG_CODE,
    params(("target" = String, Path, description = "`user.val`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")),
    security((), ("bearer" = ["run"])),
    responses((status = "default", description = "The handler's own response (any status, headers and body)"),
        OptionalKey, Missing, BodyErrors, RunErrors))]
pub async fn express_root(state: Shared, target: Path<String>, request: Request) -> Response {
    express(state, target, request).await
}

/// The same with a path inside the val (`req.path`, the `Request`'s URL).
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/express/{target}/{*rest}", tag = TAG_CODE,
    params(
        ("target" = String, Path, description = "`user.val`", pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$"),
        ("rest" = String, Path, description = "The path inside the val")),
    security((), ("bearer" = ["run"])),
    responses((status = "default", description = "The handler's own response (any status, headers and body)"),
        OptionalKey, Missing, BodyErrors, RunErrors))]
pub async fn express_path(
    State(state): Shared,
    Path((target, rest)): Path<(String, String)>,
    request: Request,
) -> Response {
    let base = format!("/v1/express/{target}");
    call_express(state, request, base, target, rest, ExpressMode::Api).await
}

/// Deprecated v0: call `@user.val` as an Express handler in Restricted
/// Library semantics (the caller's frame).
#[deprecated = "v0 route: use `/v1/express/{target}`"]
#[utoipa::path(method(get, post), path = "/express/{*expression}", tag = TAG_CODE,
    params(("expression" = String, Path, description = "`@user.val`, then an optional path",
        pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}(/.*)?$")),
    security((), ("bearer" = ["run"])),
    responses((status = "default", description = "The handler's own response (any status, headers and body)"),
        OptionalKey, Missing, BodyErrors, RunErrors))]
pub async fn express_v0(
    State(state): Shared,
    Path(expression): Path<String>,
    request: Request,
) -> Response {
    let (target, rest) = expression
        .split_once('/')
        .unwrap_or((expression.as_str(), ""));
    let base = format!("/express/{target}");
    call_express(
        state,
        request,
        base,
        target.to_string(),
        rest.to_string(),
        ExpressMode::Restricted,
    )
    .await
}

/// Every Express route: the handler `target` (`user.val`) gets the request
/// with `rest` as its path, in the frame `mode` says.
async fn call_express(
    state: Arc<AppState>,
    request: Request,
    base: String,
    target: String,
    rest: String,
    mode: ExpressMode,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(&state, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let deadline = state.service.deadline();
    let start = move |sink| async move {
        let (user, name) = split_target(&target)?;
        let described = express_request(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &base,
            &rest,
            &body,
        );
        as_caller(&state, &parts.headers, "run", move |service, viewer| {
            service.express(viewer, &user, &name, &described, mode, Some(sink))
        })
        .await
    };
    streaming::answer(deadline, start, express_response).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The web `Request`'s URL is the path inside the val with the query,
    /// on the Host header stripped of what a host cannot hold, so a Host
    /// header cannot make the URL say another path or user.
    #[test]
    fn the_request_url_keeps_only_what_a_host_can_hold() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "evil.com/@x\"y:8080".parse().unwrap());
        let uri: Uri = "/v1/express/a.b/p/q?x=1&y".parse().unwrap();
        let described =
            express_request(&Method::GET, &uri, &headers, "/v1/express/a.b", "p/q", b"");
        assert_eq!(described["url"], "http://evil.comxy:8080/p/q?x=1&y");

        let uri: Uri = "/v1/express/a.b".parse().unwrap();
        let described = express_request(
            &Method::GET,
            &uri,
            &HeaderMap::new(),
            "/v1/express/a.b",
            "",
            b"",
        );
        assert_eq!(described["url"], "http://localhost/");
    }
}
