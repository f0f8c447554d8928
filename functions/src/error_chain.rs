//! An error and its causes on one line: `dispatch failure: io error: tcp
//! connect error: Connection refused (os error 111)`. The SDK's
//! `DisplayErrorContext` ends with the error's `Debug` form, a dump of
//! nested structs that no operator or CLI user should have to read.

/// `e`'s message, then each cause's that adds something, joined by `: `.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // Some errors repeat their cause in their own message.
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("io error: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn causes_are_joined_once_without_debug_dumps() {
        let e = Outer(Middle(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused\n(os error 111)",
        )));
        assert_eq!(
            one_line(&e),
            "dispatch failure: io error: Connection refused (os error 111)"
        );
    }
}
