//! The HTTP API of SPEC §3 (axum on hyper). Routes are declared once in
//! [`router`], which also produces the OpenAPI document, so a route cannot
//! exist without being documented. Every error is `{"error": {"type",
//! "message", ...}}` with its status chosen in [`ApiError::into_response`].

use crate::request_args;
use crate::service::{ExpressMode, RunAnswer, Service, ServiceError};
use crate::store::{Privacy, User};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What every handler shares.
pub struct AppState {
    /// The service (shared with the job workers).
    pub service: Arc<Service>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

type Shared = State<Arc<AppState>>;

/// An error answered as JSON with a fitting status.
pub struct ApiError(ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use ServiceError::*;
        let status = match &self.0 {
            BadRequest(_) | Compile(_) => StatusCode::BAD_REQUEST,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            NotFound(_) => StatusCode::NOT_FOUND,
            Conflict(_) => StatusCode::CONFLICT,
            Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Limit(_) | Threw(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            TooBusy(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        (status, Json(json!({ "error": self.0.to_json() }))).into_response()
    }
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({"error": {"type": "too_large", "message": format!("the request body is larger than {limit} bytes")}})),
    )
        .into_response()
}

type ApiResult<T> = Result<T, ApiError>;

/// One documented route.
struct RouteDoc {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: &'static str,
}

/// Routes and their documentation, built together.
struct Routes {
    router: Router<Arc<AppState>>,
    docs: Vec<RouteDoc>,
}

impl Routes {
    fn add<H, T>(
        mut self,
        methods: &[&'static str],
        path: &'static str,
        summary: &'static str,
        auth: &'static str,
        handler: H,
    ) -> Self
    where
        H: axum::handler::Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let mut filter: Option<MethodFilter> = None;
        for method in methods {
            let one = match *method {
                "GET" => MethodFilter::GET,
                "POST" => MethodFilter::POST,
                "PUT" => MethodFilter::PUT,
                "PATCH" => MethodFilter::PATCH,
                "DELETE" => MethodFilter::DELETE,
                "HEAD" => MethodFilter::HEAD,
                "OPTIONS" => MethodFilter::OPTIONS,
                other => panic!("unsupported method {other}"),
            };
            filter = Some(filter.map_or(one, |f| f.or(one)));
            self.docs.push(RouteDoc {
                method,
                path,
                summary,
                auth,
            });
        }
        self.router = self
            .router
            .route(path, on(filter.expect("at least one method"), handler));
        self
    }
}

const ANY: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The router of every route valbox serves, and the OpenAPI document of them.
pub fn router(state: Arc<AppState>) -> Router {
    let routes = Routes {
        router: Router::new(),
        docs: Vec::new(),
    }
    .add(&["GET"], "/healthz", "Liveness probe", "none", healthz)
    .add(&["GET"], "/readyz", "Readiness probe", "none", readyz)
    .add(
        &["GET"],
        "/v1/eval/{*code}",
        "Evaluate an expression (URL-encoded) as the key's user, or anonymously",
        "optional",
        eval_get,
    )
    .add(
        &["POST"],
        "/v1/eval",
        "Evaluate code ({code, args}) as the key's user, or anonymously",
        "optional",
        eval_post,
    )
    .add(
        &["GET", "POST"],
        "/v1/run/{target}",
        "Run user.val in API mode (args: ?args=[...], {\"args\": [...]} or a bare array)",
        "optional",
        run,
    )
    .add(
        ANY,
        "/v1/express/{target}",
        "Call user.val as an Express or web-standard handler in API mode",
        "optional",
        express,
    )
    .add(
        ANY,
        "/v1/express/{target}/",
        "Call user.val as an Express or web-standard handler in API mode, at path /",
        "optional",
        express,
    )
    .add(
        ANY,
        "/v1/express/{target}/{*rest}",
        "Call user.val as an Express or web-standard handler in API mode, with a path",
        "optional",
        express,
    )
    .add(
        &["GET"],
        "/eval/{*code}",
        "Deprecated v0: evaluate code in Restricted Library semantics",
        "optional",
        eval_get,
    )
    .add(
        &["GET", "POST"],
        "/express/{*expression}",
        "Deprecated v0: call @user.val as an Express handler in Restricted Library semantics",
        "optional",
        express_v0,
    )
    .add(
        &["POST"],
        "/v1/users",
        "Create a user ({handle, email}); admin key",
        "admin",
        create_user,
    )
    .add(&["GET"], "/v1/me", "The key's user", "required", me)
    .add(
        &["PUT"],
        "/v1/vals/{target}",
        "Create or save a new version of my val `name` ({code, privacy})",
        "required",
        put_val,
    )
    .add(
        &["GET"],
        "/v1/vals/{target}",
        "A val `user.name` (?version=N): metadata and code",
        "optional",
        get_val,
    )
    .add(
        &["PATCH"],
        "/v1/vals/{target}",
        "Change my val's privacy ({privacy})",
        "required",
        patch_val,
    )
    .add(
        &["DELETE"],
        "/v1/vals/{target}",
        "Delete my val and all its versions",
        "required",
        delete_val,
    )
    .add(
        &["GET"],
        "/v1/vals/{target}/versions",
        "Versions of `user.name`",
        "optional",
        val_versions,
    )
    .add(
        &["GET"],
        "/v1/users/{user}/vals",
        "A user's vals (private ones to their owner only)",
        "optional",
        user_vals,
    )
    .add(
        &["PUT"],
        "/v1/secrets/{key}",
        "Set a secret ({value})",
        "required",
        put_secret,
    )
    .add(
        &["GET"],
        "/v1/secrets",
        "Names of my secrets",
        "required",
        list_secrets,
    )
    .add(
        &["DELETE"],
        "/v1/secrets/{key}",
        "Delete a secret",
        "required",
        delete_secret,
    )
    .add(
        &["GET"],
        "/v1/evaluations",
        "My evaluation records (?limit&before)",
        "required",
        list_evaluations,
    )
    .add(
        &["GET"],
        "/v1/evaluations/{id}",
        "One of my evaluation records",
        "required",
        get_evaluation,
    )
    .add(
        &["GET"],
        "/v1/emails",
        "Emails console.email sent to me",
        "required",
        list_emails,
    )
    .add(
        &["GET"],
        "/metrics",
        "Prometheus metrics (text format)",
        "none",
        metrics,
    )
    .add(
        &["POST"],
        "/v1/jobs",
        "Queue a job ({kind: \"run\", target: \"user.val\", args} or {kind: \"eval\", code, args}); runs as me",
        "required",
        submit_job,
    )
    .add(
        &["GET"],
        "/v1/jobs/{id}",
        "One of my jobs: status, attempts, result or error",
        "required",
        get_job,
    )
    .add(&["GET"], "/openapi.json", "This document", "none", openapi);
    let document = openapi_document(&routes.docs);
    routes
        .router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_request,
        ))
        .layer(axum::Extension(Arc::new(document)))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Counts every request by its route's template and the status answered.
async fn count_request(
    State(state): Shared,
    route: Option<MatchedPath>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state
        .service
        .metrics()
        .http_request(route, response.status().as_str());
    response
}

async fn submit_job(
    State(state): Shared,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let job = as_user(&state, &headers, move |service, user| {
        service.submit_job(user, &body)
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": job.id, "status": job.status})),
    )
        .into_response())
}

async fn get_job(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let job = as_user(&state, &headers, move |service, user| {
        service.job(user, &id)
    })
    .await?;
    Ok(ok(job))
}

async fn metrics(State(state): Shared) -> ApiResult<Response> {
    // Reading the queue's depth may ask Redis.
    let text = tokio::task::spawn_blocking(move || state.service.metrics_text())
        .await
        .map_err(|e| ServiceError::Internal(format!("collecting metrics failed: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

fn openapi_document(docs: &[RouteDoc]) -> Value {
    let mut paths = serde_json::Map::new();
    for doc in docs {
        let path = doc.path.replace("{*", "{");
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match doc.auth {
            "none" => json!([]),
            "optional" => json!([{}, {"bearer": []}]),
            _ => json!([{"bearer": []}]),
        };
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[doc.method.to_ascii_lowercase()] = json!({
            "summary": doc.summary,
            "parameters": parameters,
            "security": security,
            "responses": {
                "200": {"description": "Success (JSON)"},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "valbox", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Store JavaScript vals and run them in WebAssembly sandboxes with Restricted Library Mode."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object",
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}}, "required": ["type", "message"]}}}}
        }
    })
}

async fn openapi(axum::Extension(document): axum::Extension<Arc<Value>>) -> Json<Value> {
    Json((*document).clone())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError(ServiceError::NotFound(format!("no route {}", uri.path())))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready once the sandbox and the store are open, which `serve` does before binding.
async fn readyz() -> Json<Value> {
    Json(json!({"status": "ready"}))
}

/// The bearer key of a request: `None` without an `Authorization` header.
fn bearer(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ServiceError::Unauthorized("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(Some(key.trim().to_string()))
        }
        _ => Err(ServiceError::Unauthorized("use `Authorization: Bearer <key>`".into()).into()),
    }
}

/// Runs blocking service work (SQLite, the sandbox) off the async threads,
/// with the caller's user (`None` when anonymous).
async fn as_caller<T: Send + 'static>(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    work: impl FnOnce(&Service, Option<&User>) -> Result<T, ServiceError> + Send + 'static,
) -> ApiResult<T> {
    let key = bearer(headers)?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let user = state.service.authenticate(key.as_deref())?;
        work(&state.service, user.as_ref())
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("the request's worker failed: {e}")))?
    .map_err(ApiError)
}

/// Like [`as_caller`], for routes that need a key.
async fn as_user<T: Send + 'static>(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    work: impl FnOnce(&Service, &User) -> Result<T, ServiceError> + Send + 'static,
) -> ApiResult<T> {
    as_caller(state, headers, move |service, user| match user {
        Some(user) => work(service, user),
        None => Err(ServiceError::Unauthorized(
            "this route needs `Authorization: Bearer <key>`".into(),
        )),
    })
    .await
}

/// Reads a body up to the configured limit.
async fn read_body(state: &AppState, body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| too_large(state.max_body_bytes))
}

/// A JSON request body, read under the size limit; a body that is too
/// large or not JSON is answered with the JSON error before the handler runs.
struct JsonBody(Value);

impl axum::extract::FromRequest<Arc<AppState>> for JsonBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        json_body(state, request.into_body()).await.map(JsonBody)
    }
}

/// Reads and parses a JSON body.
async fn json_body(state: &AppState, body: Body) -> Result<Value, Response> {
    let bytes = read_body(state, body).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError(ServiceError::BadRequest(format!(
            "the body is not valid JSON: {e}"
        )))
        .into_response()
    })
}

fn privacy_field(body: &Value) -> Result<Option<Privacy>, ApiError> {
    match body.get("privacy") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|_| {
                ServiceError::BadRequest("`privacy` must be \"public\" or \"private\"".into())
                    .into()
            }),
    }
}

fn ok(value: impl serde::Serialize) -> Response {
    Json(value).into_response()
}

async fn eval_get(
    State(state): Shared,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let result = as_caller(&state, &headers, move |service, user| {
        service.eval(user, &code, "[]")
    })
    .await?;
    Ok(ok(result))
}

async fn eval_post(
    State(state): Shared,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (code, args) = request_args::eval_request(&body).map_err(bad_request)?;
    let result = as_caller(&state, &headers, move |service, user| {
        service.eval(user, &code, &args)
    })
    .await?;
    Ok(ok(result))
}

#[derive(serde::Deserialize)]
struct ArgsQuery {
    args: Option<String>,
}

async fn run(
    State(state): Shared,
    Path(target): Path<String>,
    Query(query): Query<ArgsQuery>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let args = if method == Method::POST {
        match json_body(&state, body).await {
            Ok(body) => request_args::run_args_from_body(&body),
            Err(response) => return response,
        }
    } else {
        request_args::run_args_from_query(query.args.as_deref())
    };
    let work = async {
        let args = args.map_err(bad_request)?;
        let (user, name) = split_target(&target)?;
        let answer = as_caller(&state, &headers, move |service, viewer| {
            service.run(viewer, &user, &name, &args)
        })
        .await?;
        Ok::<_, ApiError>(match answer {
            RunAnswer::Json(value) => ok(value),
            // A val that returns a Response answers with it, as a handler would.
            RunAnswer::Response(built) => express_response(built),
        })
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
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
    json!({
        "method": method.as_str(),
        "path": format!("/{rest}"),
        "originalUrl": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "baseUrl": base,
        "query": query,
        "params": {},
        "headers": header_map,
        "body": String::from_utf8_lossy(body),
        "protocol": "http",
    })
}

/// Turns what the handler built into the HTTP response. User content never
/// runs with the API's origin: `Content-Security-Policy: sandbox`.
fn express_response(built: crate::service::ExpressResponse) -> Response {
    let (status, pairs, body) = built.into_parts();
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.as_u16() >= 100)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in pairs {
        let skip = [
            "content-length",
            "transfer-encoding",
            "connection",
            "content-security-policy",
        ];
        if skip.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn express(
    State(state): Shared,
    Path(params): Path<BTreeMap<String, String>>,
    request: Request,
) -> Response {
    let target = params.get("target").cloned().unwrap_or_default();
    let rest = params.get("rest").cloned().unwrap_or_default();
    let base = format!("/v1/express/{target}");
    call_express(state, request, base, target, rest, ExpressMode::Api).await
}

async fn express_v0(
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

/// Both Express routes: the handler `target` (`user.val`) gets the request
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
    let work = async {
        let (user, name) = split_target(&target)?;
        let described = express_request(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &base,
            &rest,
            &body,
        );
        let built = as_caller(&state, &parts.headers, move |service, viewer| {
            service.express(viewer, &user, &name, &described, mode)
        })
        .await?;
        Ok::<_, ApiError>(express_response(built))
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}

async fn create_user(
    State(state): Shared,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let handle = field(&body, "handle")?.to_string();
    let email = field(&body, "email")?.to_string();
    let admin = bearer(&headers)?;
    let state = state.clone();
    let (handle, key) = tokio::task::spawn_blocking(move || {
        state.service.create_user(admin.as_deref(), &handle, &email)
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))??;
    Ok((
        StatusCode::CREATED,
        Json(json!({"handle": handle, "api_key": key})),
    )
        .into_response())
}

async fn me(State(state): Shared, headers: HeaderMap) -> ApiResult<Response> {
    let user = as_user(&state, &headers, |_, user| Ok(user.clone())).await?;
    Ok(ok(user))
}

async fn put_val(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let code = field(&body, "code")?.to_string();
    let privacy = privacy_field(&body)?;
    let meta = as_user(&state, &headers, move |service, user| {
        service.save_val(user, &name, &code, privacy)
    })
    .await?;
    Ok(ok(meta))
}

#[derive(serde::Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

async fn get_val(
    State(state): Shared,
    Path(target): Path<String>,
    Query(query): Query<VersionQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (user, name) = split_target(&target)?;
    let version = match query.version {
        None => None,
        Some(v) => Some(v.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
            ServiceError::BadRequest("`version` must be a positive integer".into())
        })?),
    };
    let view = as_caller(&state, &headers, move |service, viewer| {
        service.val(viewer, &user, &name, version)
    })
    .await?;
    Ok(ok(view))
}

async fn patch_val(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let privacy = privacy_field(&body)?
        .ok_or_else(|| ServiceError::BadRequest("the body needs `privacy`".into()))?;
    let meta = as_user(&state, &headers, move |service, user| {
        service.set_privacy(user, &name, privacy)
    })
    .await?;
    Ok(ok(meta))
}

async fn delete_val(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    as_user(&state, &headers, move |service, user| {
        service.delete_val(user, &name)
    })
    .await?;
    Ok(ok(json!({"deleted": true})))
}

async fn val_versions(
    State(state): Shared,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (user, name) = split_target(&target)?;
    let versions = as_caller(&state, &headers, move |service, viewer| {
        service.versions(viewer, &user, &name)
    })
    .await?;
    let versions: Vec<Value> = versions
        .into_iter()
        .map(|(version, created_at)| json!({"version": version, "created_at": created_at}))
        .collect();
    Ok(ok(json!({ "versions": versions })))
}

async fn user_vals(
    State(state): Shared,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let vals = as_caller(&state, &headers, move |service, viewer| {
        service.list_vals(viewer, &user)
    })
    .await?;
    Ok(ok(json!({ "vals": vals })))
}

async fn put_secret(
    State(state): Shared,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let value = field(&body, "value")?.to_string();
    as_user(&state, &headers, move |service, user| {
        service.put_secret(user, &key, &value)
    })
    .await?;
    Ok(ok(json!({"saved": true})))
}

async fn list_secrets(State(state): Shared, headers: HeaderMap) -> ApiResult<Response> {
    let names = as_user(&state, &headers, |service, user| service.secret_names(user)).await?;
    Ok(ok(json!({ "secrets": names })))
}

async fn delete_secret(
    State(state): Shared,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    as_user(&state, &headers, move |service, user| {
        service.delete_secret(user, &key)
    })
    .await?;
    Ok(ok(json!({"deleted": true})))
}

#[derive(serde::Deserialize)]
struct EvaluationsQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn list_evaluations(
    State(state): Shared,
    Query(query): Query<EvaluationsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let limit = query.limit.unwrap_or(20);
    let records = as_user(&state, &headers, move |service, user| {
        service.evaluations(user, limit, query.before)
    })
    .await?;
    Ok(ok(json!({ "evaluations": records })))
}

async fn get_evaluation(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| ServiceError::NotFound(format!("no evaluation {id}")))?;
    let record = as_user(&state, &headers, move |service, user| {
        service.evaluation(user, id)
    })
    .await?;
    Ok(ok(record))
}

async fn list_emails(State(state): Shared, headers: HeaderMap) -> ApiResult<Response> {
    let emails = as_user(&state, &headers, |service, user| service.emails(user)).await?;
    Ok(ok(json!({ "emails": emails })))
}

/// Serves the API on `listener` until Ctrl-C.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn bad_request(message: String) -> ApiError {
    ApiError(ServiceError::BadRequest(message))
}

fn field<'a>(body: &'a Value, name: &str) -> ApiResult<&'a str> {
    request_args::string_field(body, name).map_err(bad_request)
}

fn split_target(target: &str) -> ApiResult<(String, String)> {
    request_args::split_target(target).map_err(bad_request)
}
