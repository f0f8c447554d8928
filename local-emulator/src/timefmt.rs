//! Timestamps in the formats API Gateway uses.

/// (year, month, day, hour, minute, second, millis) of a Unix time in ms.
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days → civil date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        millis,
    )
}

/// `22/Nov/2026:16:00:00 +0000`, API Gateway's `requestTime`.
pub(crate) fn request_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _) = civil(ms);
    let month = MONTHS.get(mo as usize - 1).copied().unwrap_or("Jan");
    format!("{d:02}/{month}/{y}:{h:02}:{mi:02}:{s:02} +0000")
}

/// `2026/11/22` of a Unix time in ms: the day in a Lambda log stream name.
pub(crate) fn date_slashed(ms: i64) -> String {
    let (y, mo, d, ..) = civil(ms);
    format!("{y}/{mo:02}/{d:02}")
}

/// `2026-11-22T16:00:00.000Z`, the Management API's timestamps.
pub(crate) fn iso8601(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// `2026-11-22T16:00:00Z`, an EventBridge event's `time`.
pub(crate) fn iso8601_seconds(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_like_api_gateway() {
        // 2026-11-28T16:00:00.123Z
        let ms = 1_795_881_600_123;
        assert_eq!(iso8601(ms), "2026-11-28T16:00:00.123Z");
        assert_eq!(request_time(ms), "28/Nov/2026:16:00:00 +0000");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_seconds(ms), "2026-11-28T16:00:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
