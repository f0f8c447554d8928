//! How option values are written on the command line: durations
//! (`500ms`, `2s`, `10m`, `2h`) and template parameters (`Name=Value`).

use std::time::Duration;

/// Parses `500ms`, `2s`, `10m`, `2h` (a bare number is seconds).
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 2s, 10m or 2h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => return Err(format!("unknown unit {other:?}; use ms, s, m or h")),
    };
    if d.is_zero() {
        return Err("a duration must be positive".into());
    }
    Ok(d)
}

/// `Name=Value`, or SAM's `ParameterKey=Name,ParameterValue=Value`.
pub fn parameter(raw: &str) -> Result<(String, String), String> {
    let (name, value) = match raw.strip_prefix("ParameterKey=") {
        Some(rest) => rest
            .split_once(",ParameterValue=")
            .ok_or_else(|| format!("{raw:?}: expected ParameterKey=K,ParameterValue=V"))?,
        None => raw
            .split_once('=')
            .ok_or_else(|| format!("{raw:?}: expected Name=Value"))?,
    };
    if name.is_empty() {
        return Err(format!("{raw:?}: the parameter name is empty"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_must_be_positive() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(duration("0s").is_err());
        assert!(duration("3d").is_err());
        assert!(duration("soon").is_err());
    }

    #[test]
    fn parameters_take_both_forms() {
        assert_eq!(parameter("A=1"), Ok(("A".into(), "1".into())));
        assert_eq!(
            parameter("ParameterKey=A,ParameterValue=x=y"),
            Ok(("A".into(), "x=y".into()))
        );
        assert!(parameter("=1").is_err());
        assert!(parameter("A").is_err());
        assert!(parameter("ParameterKey=A").is_err());
    }
}
