//! PostgreSQL identifier rules and connection-password scrubbing, written once for
//! vigil-features and vigil-tuning.
//!
//! The library crates never depend on each other, so this file is compiled into each
//! of them (`mod sql_ident;` here, `#[path = ...] mod sql_ident;` in vigil-tuning):
//! one source of the rules, no shared crate. It therefore imports nothing from either
//! crate; callers map [`IdentifierError`] into their own error type.
//!
//! The rule: an identifier is 1 to 63 bytes of ASCII letters, digits and `_`, not
//! starting with a digit. That is the unquoted-safe subset of what PostgreSQL accepts
//! (it also takes non-ASCII letters and `$`, and truncates names longer than 63 bytes
//! silently). Upper case is accepted and kept: both crates always emit identifiers
//! double-quoted ([`quote_identifier`]), so `Plant_A` names `"Plant_A"` (and a
//! reserved word such as `user` works too). Hand-written SQL that refers to such a
//! name unquoted sees it folded to lower case, so lower-case names are the easy choice.

use std::fmt;

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`).
pub(crate) const MAX_IDENTIFIER_BYTES: usize = 63;

/// What is wrong with a name passed to [`check_identifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdentifierError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_IDENTIFIER_BYTES`].
    TooLong,
    /// The name holds something other than ASCII letters, digits and `_`.
    BadCharacter,
    /// The name starts with a digit.
    LeadingDigit,
}

impl IdentifierError {
    /// The rule that was broken, for an error message.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            IdentifierError::Empty => "empty name",
            IdentifierError::TooLong => "longer than 63 bytes",
            IdentifierError::BadCharacter => "only ASCII letters, digits and underscores",
            IdentifierError::LeadingDigit => "must not start with a digit",
        }
    }
}

impl fmt::Display for IdentifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Checks one identifier (a schema, table, column or index name, without dots).
pub(crate) fn check_identifier(name: &str) -> Result<(), IdentifierError> {
    if name.is_empty() {
        return Err(IdentifierError::Empty);
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(IdentifierError::TooLong);
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(IdentifierError::BadCharacter);
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(IdentifierError::LeadingDigit);
    }
    Ok(())
}

/// `name` double-quoted for SQL text. Embedded quotes are doubled, as PostgreSQL
/// reads them, so the result is one identifier even for a name that skipped
/// [`check_identifier`].
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What stands in for a password in scrubbed text.
pub(crate) const REDACTED: &str = "<redacted>";

/// `message` with every occurrence of `password` replaced by [`REDACTED`].
pub(crate) fn scrub_password(message: &str, password: &str) -> String {
    if password.is_empty() {
        message.to_owned()
    } else {
        message.replace(password, REDACTED)
    }
}

/// `message` with the password of the connection string `conninfo` scrubbed: a URL
/// (`postgres://user:password@host/db`, raw and percent-decoded) or `key=value` pairs
/// (`password=...`, quoted or not).
pub(crate) fn scrub_conninfo_password(message: &str, conninfo: &str) -> String {
    let mut secrets = conninfo_passwords(conninfo);
    // Longest first, so that a password containing another one is hidden whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.iter().fold(message.to_owned(), |text, secret| {
        scrub_password(&text, secret)
    })
}

/// Every spelling of a password in `conninfo` that an error message could echo.
fn conninfo_passwords(conninfo: &str) -> Vec<String> {
    let trimmed = conninfo.trim();
    let url = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| trimmed.strip_prefix(scheme));
    match url {
        Some(rest) => url_passwords(rest),
        None => keyword_passwords(trimmed),
    }
}

/// The password of a URL after its scheme: between the first `:` and the first `@`,
/// as the driver reads it.
fn url_passwords(rest: &str) -> Vec<String> {
    let Some((userinfo, _)) = rest.split_once('@') else {
        return Vec::new();
    };
    let Some((_, raw)) = userinfo.split_once(':') else {
        return Vec::new();
    };
    let mut out = vec![raw.to_owned()];
    let decoded = percent_decode(raw);
    if decoded != raw {
        out.push(decoded);
    }
    out.retain(|s| !s.is_empty());
    out
}

/// The `password` values of a `key=value` connection string, both as written and
/// unescaped.
fn keyword_passwords(conninfo: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = conninfo.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        let (value, raw_len) = keyword_value(rest[eq + 1..].trim_start());
        let after = rest[eq + 1..].trim_start();
        if key == "password" {
            out.push(after[..raw_len].to_owned());
            out.push(value);
        }
        rest = after[raw_len..].trim_start();
    }
    out.retain(|s| !s.is_empty());
    out
}

/// One value of a `key=value` string (`'quoted \' value'` or `bare\ value`): the
/// unescaped value and how many bytes of `text` it took.
fn keyword_value(text: &str) -> (String, usize) {
    let quoted = text.starts_with('\'');
    let mut value = String::new();
    let mut chars = text.char_indices().skip(usize::from(quoted));
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => return (value, text.len()),
            },
            '\'' if quoted => return (value, i + 1),
            c if !quoted && c.is_whitespace() => return (value, i),
            c => value.push(c),
        }
    }
    (value, text.len())
}

/// `%XX` sequences decoded (invalid ones kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_unquoted_safe_rules() {
        for ok in [
            "telemetry",
            "plant_a",
            "_x",
            "Plant_A",
            "t1",
            "user",
            &"a".repeat(63),
        ] {
            assert_eq!(check_identifier(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", IdentifierError::Empty),
            (&"a".repeat(64) as &str, IdentifierError::TooLong),
            ("1abc", IdentifierError::LeadingDigit),
            ("a.b", IdentifierError::BadCharacter),
            ("tele metry", IdentifierError::BadCharacter),
            ("t\"x", IdentifierError::BadCharacter),
            ("x--", IdentifierError::BadCharacter),
            ("telemetry; DROP TABLE users", IdentifierError::BadCharacter),
            ("é", IdentifierError::BadCharacter),
            ("a$b", IdentifierError::BadCharacter),
        ];
        for (bad, why) in cases {
            assert_eq!(check_identifier(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn quoting_keeps_case_and_doubles_quotes() {
        assert_eq!(quote_identifier("Plant_A"), "\"Plant_A\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn error_reasons_name_the_rule() {
        assert_eq!(IdentifierError::TooLong.to_string(), "longer than 63 bytes");
        assert!(IdentifierError::LeadingDigit.reason().contains("digit"));
    }

    #[test]
    fn passwords_are_scrubbed_from_messages() {
        assert_eq!(
            scrub_password("bad pw hunter2", "hunter2"),
            "bad pw <redacted>"
        );
        assert_eq!(scrub_password("no password", ""), "no password");
    }

    #[test]
    fn url_passwords_are_scrubbed_raw_and_decoded() {
        let url = "postgres://vigil:p%40ss-w0rd@db.example:5432/vigil";
        let message = format!("failed for {url}; the driver held p@ss-w0rd");
        let scrubbed = scrub_conninfo_password(&message, url);
        assert!(!scrubbed.contains("p%40ss-w0rd"), "{scrubbed}");
        assert!(!scrubbed.contains("p@ss-w0rd"), "{scrubbed}");
        assert!(
            scrubbed.contains("postgres://vigil:<redacted>@db.example"),
            "{scrubbed}"
        );
        let pg = "postgresql://u:secret@h/db";
        assert_eq!(scrub_conninfo_password("secret!", pg), "<redacted>!");
        // No password, nothing to hide.
        for url in ["postgres://u@h/db", "postgres://h/db", "postgres://u:@h/db"] {
            assert_eq!(scrub_conninfo_password("u h db", url), "u h db");
        }
    }

    #[test]
    fn keyword_passwords_are_scrubbed_quoted_or_not() {
        let conninfo = "host=h user=u password=s3cr3t dbname=d";
        assert_eq!(
            scrub_conninfo_password("auth s3cr3t failed", conninfo),
            "auth <redacted> failed"
        );
        let quoted = r"host=h password = 'it\'s a secret' dbname=d";
        let scrubbed = scrub_conninfo_password(r"saw it's a secret in 'it\'s a secret'", quoted);
        assert!(!scrubbed.contains("a secret"), "{scrubbed}");
        assert_eq!(keyword_value(r"'a\'b' rest"), ("a'b".to_owned(), 6));
        assert_eq!(keyword_value(r"a\ b rest"), ("a b".to_owned(), 4));
        assert_eq!(
            keyword_value("'unterminated"),
            ("unterminated".to_owned(), 13)
        );
    }

    #[test]
    fn percent_decoding_keeps_invalid_sequences() {
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }
}
