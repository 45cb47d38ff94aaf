//! Natives of `intl.js`: IANA time zones from the bundled time zone
//! database (the `jiff` crate), since the guest has no system one.

use jiff::{tz::TimeZone, Timestamp};

fn zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

/// `tzResolve(name)`: the IANA name of a time zone, or `undefined`.
pub(super) fn resolve(name: String) -> Option<String> {
    let tz = zone(&name)?;
    Some(tz.iana_name().unwrap_or("UTC").to_string())
}

fn timestamp(milliseconds: f64) -> Option<Timestamp> {
    Timestamp::from_millisecond(milliseconds as i64).ok()
}

/// `tzOffset(name, ms)`: the zone's offset from UTC at that instant, in minutes.
pub(super) fn offset(name: String, milliseconds: f64) -> Option<f64> {
    let tz = zone(&name)?;
    Some(f64::from(tz.to_offset(timestamp(milliseconds)?).seconds()) / 60.0)
}

/// `tzAbbreviation(name, ms)`: the zone's abbreviation at that instant
/// (`PST`, `CET`, or an offset such as `+0530` where the database has none).
pub(super) fn abbreviation(name: String, milliseconds: f64) -> Option<String> {
    let tz = zone(&name)?;
    let info = tz.to_offset_info(timestamp(milliseconds)?);
    Some(info.abbreviation().to_string())
}
