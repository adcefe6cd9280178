use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Timestamps are stored as microseconds since the Unix epoch on both backends, so filters and
/// sorting on `meta.created` / `meta.lastModified` are plain integer comparisons.
pub fn now_micros() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1000).unwrap_or(i64::MAX)
}

pub use proto::render::format_rfc3339;

/// Parse an RFC 3339 timestamp (as sent in a filter) to stored microseconds.
pub(crate) fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}
