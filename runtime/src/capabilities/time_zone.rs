//! `time-zone`: what `Intl.DateTimeFormat` needs to know about an IANA time
//! zone at an instant. Not a capability: the time zone database carries
//! nobody's state, so no policy is asked. It lives on the host so its data
//! is not in every instance's memory.

use super::{Answer, Stop};
use crate::state::CallState;
use jiff::{tz::TimeZone, Timestamp};
use serde_json::{json, Value};
use wasmtime::Caller;

/// `{name, ms}` → `{name, offset, abbreviation}` (the IANA name, minutes
/// east of UTC, and the database's abbreviation at that instant), or
/// `undefined` for a name the database does not know.
pub(super) fn lookup(_: &mut Caller<'_, CallState>, request: &Value) -> Result<Answer, Stop> {
    let name = request.get("name").and_then(Value::as_str).unwrap_or("");
    let milliseconds = request.get("ms").and_then(Value::as_f64).unwrap_or(0.0);
    let (Ok(zone), Ok(at)) = (
        TimeZone::get(name),
        Timestamp::from_millisecond(milliseconds as i64),
    ) else {
        return Ok(Answer::Undefined);
    };
    let info = zone.to_offset_info(at);
    let answer = json!({
        "name": zone.iana_name().unwrap_or("UTC"),
        "offset": f64::from(info.offset().seconds()) / 60.0,
        "abbreviation": info.abbreviation(),
    });
    Ok(Answer::Ok(answer.to_string()))
}
