//! The OpenAPI document, generated from the handlers' own annotations and
//! types (utoipa): the routes are registered through `utoipa_axum`, so a
//! route cannot exist without its operation. Here: the document's frame,
//! the shared schemas (the error shape, request bodies, list wrappers) and
//! the error responses routes share.

pub use crate::request_args::{EvalRequest, RunRequest};
use crate::service::ErrorType;
use crate::store::{StoredEmail, StoredEvaluation, ValMeta};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// Tag of the routes that run code.
pub const TAG_CODE: &str = "code";
/// Tag of the val management routes.
pub const TAG_VALS: &str = "vals";
/// Tag of users, secrets, records and emails.
pub const TAG_ACCOUNT: &str = "account";
/// Tag of the job queue routes.
pub const TAG_JOBS: &str = "jobs";
/// Tag of the operator's routes (admin key).
pub const TAG_ADMIN: &str = "admin";
/// Tag of probes, metrics and this document.
pub const TAG_OPERATE: &str = "operate";

/// The document's frame; operations are added as routes are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "valbox",
        description = "Store JavaScript vals and run them in WebAssembly sandboxes with Restricted Library Mode (SPEC §3)."
    ),
    components(schemas(ApiErrorBody, ErrorDetail, ErrorType)),
    modifiers(&BearerScheme),
    tags(
        (name = "code", description = "Running code: eval, run (API mode), Express and web-standard handlers"),
        (name = "vals", description = "Saving, reading and deleting vals"),
        (name = "account", description = "Users, secrets, evaluation records and emails"),
        (name = "jobs", description = "The job queue"),
        (name = "admin", description = "The operator's routes, with the admin key"),
        (name = "operate", description = "Probes, metrics and this document")
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A user's API key: `Authorization: Bearer vbk_…`. An operation's \
                         requirement names the scope the key must hold (none: any key).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's admin key (VALBOX_ADMIN_KEY)"))
                    .build(),
            ),
        );
    }
}

/// Finishes the generated document as JSON: axum's wildcard segments
/// (`{*code}`) become plain path parameters (`{code}`), a handler that
/// serves several methods gets one operation id per method (`run_get`),
/// and `/v1/run`'s `args` query parameter is described as what it is, JSON
/// text (OpenAPI's `content`, which utoipa cannot spell).
pub fn finish(document: Document) -> Value {
    let mut document = serde_json::to_value(document).expect("the OpenAPI document serializes");
    let Some(Value::Object(paths)) = document.get_mut("paths").map(std::mem::take) else {
        return document;
    };
    let mut uses: BTreeMap<String, usize> = BTreeMap::new();
    for item in paths.values() {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                *uses.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    let paths: serde_json::Map<String, Value> = paths
        .into_iter()
        .map(|(path, mut item)| {
            for (method, operation) in item.as_object_mut().into_iter().flatten() {
                let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                if uses.get(id).copied().unwrap_or(0) > 1 {
                    let unique = format!("{id}_{method}");
                    operation["operationId"] = unique.into();
                }
                for parameter in operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if parameter["in"] == "query" && parameter["name"] == "args" {
                        if let Some(schema) =
                            parameter.as_object_mut().and_then(|p| p.remove("schema"))
                        {
                            parameter["content"] =
                                serde_json::json!({"application/json": {"schema": schema}});
                        }
                    }
                }
            }
            (path.replace("{*", "{"), item)
        })
        .collect();
    document["paths"] = Value::Object(paths);
    document
}

/// The document itself.
#[utoipa::path(get, path = "/openapi.json", tag = TAG_OPERATE,
    responses((status = 200, description = "This OpenAPI document", body = Object)))]
pub async fn openapi(axum::Extension(document): axum::Extension<Arc<Value>>) -> Json<Value> {
    Json((*document).clone())
}

/// Every error: `{"error": {"type", "message", ...}}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ApiErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error's fields.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The kind of error.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// A sentence for humans.
    pub message: String,
    /// `compile_error`: the line of the offending code.
    pub line: Option<u32>,
    /// `compile_error`: its column.
    pub column: Option<u32>,
    /// `val_error`: the JavaScript error's name (`TypeError`, ...).
    pub name: Option<String>,
    /// `val_error`: the JavaScript stack.
    pub stack: Option<String>,
}

/// `/healthz` and `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `shutting_down`.
    pub status: &'static str,
}

/// `PUT /v1/vals/{name}`.
#[derive(Deserialize, ToSchema)]
pub struct SaveValRequest {
    /// The module's source.
    pub code: String,
    /// `public` or `private` (a new val is private unless said).
    #[serde(default)]
    pub privacy: Option<crate::store::Privacy>,
    /// Runs the val on a schedule (`null` removes it; absent keeps it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ScheduleRequest>)]
    pub schedule: Option<serde_json::Value>,
    /// Pauses (`true`) or resumes (`false`) the val's schedule.
    #[serde(default)]
    pub paused: Option<bool>,
}

/// `PATCH /v1/vals/{name}`: what to change (absent fields stay as they are).
#[derive(Deserialize, ToSchema)]
pub struct PatchValRequest {
    /// The new privacy.
    #[serde(default)]
    pub privacy: Option<crate::store::Privacy>,
    /// A new schedule, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ScheduleRequest>)]
    pub schedule: Option<serde_json::Value>,
    /// Pauses (`true`) or resumes (`false`) the val's schedule.
    #[serde(default)]
    pub paused: Option<bool>,
}

/// A schedule: `{"every": "15m"}` or `{"cron": "0 9 * * 1-5", "timezone":
/// "Europe/Paris"}`, with `"version": N` to pin a version (else the latest
/// runs). The val's export runs as its author with one argument `{lastRunAt,
/// scheduledAt, attempt, skippedTicks}`.
#[derive(ToSchema)]
#[allow(dead_code)] // only describes the schema; the service reads the JSON
pub struct ScheduleRequest {
    /// An interval (`30s`, `15m`, `2h`, `1d`), at least the server's minimum.
    #[schema(pattern = r"^[1-9][0-9]{0,4}[smhd]$")]
    every: Option<String>,
    /// A 5-field cron expression (minute hour day month weekday).
    cron: Option<String>,
    /// The IANA time zone the cron fields are read in (default `UTC`).
    timezone: Option<String>,
    /// The pinned version.
    #[schema(minimum = 1)]
    version: Option<u32>,
}

/// An optional `u32` that JSON may also spell as a whole float (`3.0`):
/// JSON Schema's integers include those.
fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    match Option::<f64>::deserialize(deserializer)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => {
            Ok(Some(n as u32))
        }
        Some(n) => Err(serde::de::Error::custom(format!(
            "{n} is not a version number"
        ))),
    }
}

/// A field that is present (even `null`) becomes `Some`; absent stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// `POST /v1/vals/{user}.{name}/fork`.
#[derive(Deserialize, ToSchema)]
pub struct ForkRequest {
    /// The fork's name in my account (default: the original's).
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")]
    pub name: Option<String>,
    /// The version to fork (default: the latest).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1)]
    pub version: Option<u32>,
    /// The fork's privacy (default: private).
    #[serde(default)]
    pub privacy: Option<crate::store::Privacy>,
}

/// `POST /v1/me/pin`.
#[derive(Deserialize, ToSchema)]
pub struct PinRequest {
    /// Save the rewritten vals (default: only show them).
    #[serde(default)]
    pub apply: bool,
}

/// `GET /v1/me/call-sites`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallSitesQuery {
    /// Only call sites in this state: `broken` (Restricted Library Mode
    /// changes what they get), `unknown` (cannot tell statically) or `ok`.
    pub status: Option<CallSiteStatus>,
}

/// What Restricted Library Mode does to a call site.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum CallSiteStatus {
    /// Some path changes its outcome.
    Broken,
    /// Only computed calls on the way: cannot tell statically.
    Unknown,
    /// Nothing changes.
    Ok,
}

impl CallSiteStatus {
    /// The status as the finder names it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallSiteStatus::Broken => "broken",
            CallSiteStatus::Unknown => "unknown",
            CallSiteStatus::Ok => "ok",
        }
    }
}

/// `POST /v1/me/call-sites/fix`: call sites as `GET /v1/me/call-sites`
/// lists them (only `val`, `version`, `line` and `column` are read).
#[derive(Deserialize, ToSchema)]
pub struct FixBody {
    /// The call sites to rewrite (`findings` is accepted too).
    #[serde(alias = "findings")]
    #[schema(min_items = 1)]
    pub call_sites: Vec<FixSite>,
}

/// One call site to rewrite.
#[derive(Deserialize, ToSchema)]
pub struct FixSite {
    /// My val holding the call: `name` or `me.name`'s `user.name`.
    #[schema(pattern = r"^([A-Za-z][A-Za-z0-9_]{0,31}\.)?[A-Za-z_$][A-Za-z0-9_$]{0,63}$")]
    pub val: String,
    /// The version the position is in; when given, it must be the latest.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1)]
    pub version: Option<u32>,
    /// 1-based line of the `@` reference.
    #[serde(deserialize_with = "position")]
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub line: u32,
    /// 1-based column.
    #[serde(deserialize_with = "position")]
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub column: u32,
}

impl From<FixBody> for crate::service::FixRequest {
    fn from(body: FixBody) -> Self {
        crate::service::FixRequest {
            call_sites: body
                .call_sites
                .into_iter()
                .map(|site| crate::service::FixTarget {
                    val: site.val,
                    version: site.version,
                    line: site.line,
                    column: site.column,
                })
                .collect(),
        }
    }
}

/// A 1-based line or column (a whole number, even when written `3.0`).
fn position<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    whole_number(deserializer)?.ok_or_else(|| serde::de::Error::custom("a position is a number"))
}

/// `GET /v1/jobs`.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<crate::store::StoredJob>,
}

/// `GET /v1/schedules`.
#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    /// The caller's schedules, by val name.
    pub schedules: Vec<crate::service::ScheduleView>,
}

/// `PUT /v1/secrets/{key}`.
#[derive(Deserialize, ToSchema)]
pub struct SecretRequest {
    /// The secret (sealed at rest, never shown again).
    pub value: String,
}

/// `POST /v1/users`.
#[derive(Deserialize, ToSchema)]
pub struct NewUserRequest {
    /// A letter, then up to 31 letters, digits or `_` (lower-cased).
    #[schema(pattern = r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]
    pub handle: String,
    /// Where `console.email` sends their mail.
    #[schema(
        pattern = r"^[ \t\n\r\f\v]*[^ \t\n\r\f\v]*@[^ \t\n\r\f\v]*[ \t\n\r\f\v]*$",
        max_length = 254
    )]
    pub email: String,
}

/// `POST /v1/jobs`.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobRequest {
    /// Run `user.val` in API mode, as `/v1/run`.
    Run {
        /// `user.val`.
        #[schema(pattern = r"^@?[A-Za-z][A-Za-z0-9_]{0,31}\.[A-Za-z_$][A-Za-z0-9_$]{0,63}$")]
        target: String,
        /// Its arguments.
        #[serde(default)]
        args: Option<Vec<Value>>,
    },
    /// Evaluate code as `/v1/eval`.
    Eval {
        /// An expression, or the body of an async function.
        code: String,
        /// Its `arguments`.
        #[serde(default)]
        args: Option<Vec<Value>>,
    },
}

/// `201` of `POST /v1/users`.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    /// The handle, lower-cased.
    pub handle: String,
    /// The API key, shown once.
    pub api_key: String,
}

/// `202` of `POST /v1/jobs`.
#[derive(Serialize, ToSchema)]
pub struct AcceptedJob {
    /// Poll `GET /v1/jobs/{id}`.
    pub id: String,
    /// `queued` (or `failed` when it could not be queued).
    pub status: crate::store::JobStatus,
}

/// A user's vals.
#[derive(Serialize, ToSchema)]
pub struct ValList {
    /// Newest first.
    pub vals: Vec<ValMeta>,
}

/// One version in a val's history.
#[derive(Serialize, ToSchema)]
pub struct VersionInfo {
    /// Its number.
    pub version: u32,
    /// When it was saved (Unix seconds).
    pub created_at: i64,
}

/// A val's versions.
#[derive(Serialize, ToSchema)]
pub struct VersionList {
    /// Oldest first.
    pub versions: Vec<VersionInfo>,
}

/// Names of the caller's secrets.
#[derive(Serialize, ToSchema)]
pub struct SecretNames {
    /// Sorted.
    pub secrets: Vec<String>,
}

/// A page of evaluation records.
#[derive(Serialize, ToSchema)]
pub struct EvaluationList {
    /// Newest first.
    pub evaluations: Vec<StoredEvaluation>,
}

/// Emails sent to the caller.
#[derive(Serialize, ToSchema)]
pub struct EmailList {
    /// Newest first.
    pub emails: Vec<StoredEmail>,
}

/// `{"deleted": true}`.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    /// Always true.
    pub deleted: bool,
}

/// `{"revoked": true}`.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Always true.
    pub revoked: bool,
}

/// `{"saved": true}`.
#[derive(Serialize, ToSchema)]
pub struct Saved {
    /// Always true.
    pub saved: bool,
}

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
        .into()
}

fn errors(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error(description)))
        .collect()
}

/// A route that needs a key: 401 without a valid one (checked before the body).
pub struct NeedsKey;

impl IntoResponses for NeedsKey {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (
                "401",
                "`unauthorized`: no key, or an unknown, revoked or expired one",
            ),
            (
                "403",
                "`forbidden`: the key lacks the scope this route needs",
            ),
        ])
    }
}

/// A route that takes a key when given: 401 for an unknown one.
pub struct OptionalKey;

impl IntoResponses for OptionalKey {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (
                "401",
                "`unauthorized`: an unknown, revoked, expired or malformed key",
            ),
            (
                "403",
                "`forbidden`: the key lacks the scope this route needs",
            ),
        ])
    }
}

/// A route with a JSON body: 400 when it is not the documented shape, 413 when too large.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (
                "400",
                "`bad_request` (the body or a parameter is malformed) or, where code is saved, `compile_error` (no version is made)",
            ),
            ("413", "`too_large`: the body is over the size limit"),
            (
                "507",
                "`quota_exceeded` (the user's storage quota) or `storage_full` (the server's disk): nothing was written",
            ),
        ])
    }
}

/// A route with parameters only: 400 when one is malformed.
pub struct BadInput;

impl IntoResponses for BadInput {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[("400", "`bad_request`: a parameter is malformed")])
    }
}

/// 404.
pub struct Missing;

impl IntoResponses for Missing {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[(
            "404",
            "`not_found`: not there, or not visible to the caller",
        )])
    }
}

/// What running code can end in besides its result.
pub struct RunErrors;

impl IntoResponses for RunErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (
                "400",
                "`bad_request` (malformed arguments) or `compile_error` (the code does not compile)",
            ),
            ("408", "`timeout`: the call tree ran past its deadline"),
            (
                "429",
                "`capacity`: the caller's calls or sandbox instances (nested calls included) are all in use; retry after `Retry-After` seconds",
            ),
            (
                "503",
                "`capacity`: the server's calls or sandbox instances are all in use; retry after `Retry-After` seconds",
            ),
            (
                "500",
                "`val_error` (the val threw: its own error, by design) or `limit_exceeded` (a sandbox limit)",
            ),
        ])
    }
}
