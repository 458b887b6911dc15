//! A webhook's `customHeaders` (pure): checked once when set, sent on every delivery.

use reqwest::header::{HeaderName, HeaderValue};

/// At most this many custom headers per webhook.
pub const MAX_CUSTOM_HEADERS: usize = 10;

/// A custom header value is at most this many characters.
pub const MAX_HEADER_VALUE_CHARS: usize = 1_024;

/// Names a user may not set: the ones the delivery itself sets or that frame the message
/// (a user's `content-length` or `transfer-encoding` would corrupt the request).
const RESERVED_NAMES: [&str; 9] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// Name prefixes a user may not set: the signature and event headers.
const RESERVED_PREFIXES: [&str; 2] = ["webhook-", "x-zernio-"];

/// A webhook's custom headers: valid names, not reserved, valid values, at most ten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomHeaders(Vec<(HeaderName, HeaderValue)>);

/// Why a set of custom headers is refused; each names the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// More than [`MAX_CUSTOM_HEADERS`].
    #[error("at most {MAX_CUSTOM_HEADERS} custom headers are allowed, got {0}")]
    TooMany(usize),
    /// Not an HTTP token (RFC 9110 `tchar`s).
    #[error("{0:?} is not a valid header name")]
    InvalidName(String),
    /// A header the delivery sets itself.
    #[error("{0:?} is reserved and cannot be set")]
    Reserved(String),
    /// The same name twice (names are case-insensitive).
    #[error("{0:?} is given more than once")]
    Duplicate(String),
    /// Longer than [`MAX_HEADER_VALUE_CHARS`].
    #[error("the value of {0:?} is longer than {MAX_HEADER_VALUE_CHARS} characters")]
    ValueTooLong(String),
    /// A line break or another control character, which could smuggle a header.
    #[error("the value of {0:?} contains a line break or a control character")]
    InvalidValue(String),
}

impl CustomHeaders {
    /// Checks `pairs` (name, value): first their count, then each in order; the first problem
    /// is the error. Counting first keeps the refusal of any list linear in its length: the
    /// duplicate check then compares at most [`MAX_CUSTOM_HEADERS`] names with each other.
    pub fn parse<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self, HeaderError>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let pairs: Vec<(N, V)> = pairs.into_iter().collect();
        if pairs.len() > MAX_CUSTOM_HEADERS {
            return Err(HeaderError::TooMany(pairs.len()));
        }
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(pairs.len());
        for (name, value) in &pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            // `HeaderName` accepts exactly the token characters (and lowercases them).
            let parsed = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HeaderError::InvalidName(name.to_owned()))?;
            if is_reserved(parsed.as_str()) {
                return Err(HeaderError::Reserved(name.to_owned()));
            }
            if headers.iter().any(|(seen, _)| *seen == parsed) {
                return Err(HeaderError::Duplicate(name.to_owned()));
            }
            if value.chars().count() > MAX_HEADER_VALUE_CHARS {
                return Err(HeaderError::ValueTooLong(name.to_owned()));
            }
            // Tab is the one control character a field value may hold.
            if value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(HeaderError::InvalidValue(name.to_owned()));
            }
            let value = HeaderValue::from_bytes(value.as_bytes())
                .map_err(|_| HeaderError::InvalidValue(name.to_owned()))?;
            headers.push((parsed, value));
        }
        Ok(Self(headers))
    }

    /// The headers, names lowercased, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter().map(|(name, value)| (name, value))
    }
}

/// Whether a user may not set `name` (lowercase) as a custom header.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name) || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<CustomHeaders, HeaderError> {
        CustomHeaders::parse([(name, value)])
    }

    #[test]
    fn valid_headers_are_kept_in_order_with_names_lowercased() {
        let headers =
            CustomHeaders::parse([("X-Api-Key", "abc"), ("Authorization", "Bearer t\tok")])
                .unwrap();
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("x-api-key", b"abc".as_slice()),
                ("authorization", b"Bearer t\tok".as_slice())
            ]
        );
        assert!(one("X-Unicode", "café ✓").is_ok());
    }

    #[test]
    fn reserved_names_are_refused_whatever_their_case() {
        for name in [
            "Host",
            "content-type",
            "Content-Length",
            "Transfer-Encoding",
            "webhook-signature",
            "Webhook-Id",
            "X-Zernio-Signature",
            "x-zernio-anything",
        ] {
            assert_eq!(
                one(name, "v"),
                Err(HeaderError::Reserved(name.into())),
                "{name}"
            );
        }
        assert!(
            one("X-Webhook-Source", "v").is_ok(),
            "only the prefix is reserved"
        );
    }

    #[test]
    fn names_must_be_tokens() {
        for name in ["", "X Space", "X:Colon", "X-Ünï", "X\r\nInjected"] {
            assert_eq!(
                one(name, "v"),
                Err(HeaderError::InvalidName(name.into())),
                "{name:?}"
            );
        }
    }

    #[test]
    fn values_are_at_most_1024_characters_without_line_breaks() {
        assert!(one("X-A", &"é".repeat(1_024)).is_ok());
        assert_eq!(
            one("X-A", &"a".repeat(1_025)),
            Err(HeaderError::ValueTooLong("X-A".into()))
        );
        // U+0085 is Unicode's "next line", which HeaderValue alone would let through as bytes.
        for value in ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\0b", "a\u{85}b"] {
            assert_eq!(
                one("X-A", value),
                Err(HeaderError::InvalidValue("X-A".into())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn at_most_ten_headers_and_no_name_twice() {
        let names: Vec<String> = (0..11).map(|i| format!("X-H{i}")).collect();
        assert!(CustomHeaders::parse(names[..10].iter().map(|n| (n, "v"))).is_ok());
        assert_eq!(
            CustomHeaders::parse(names.iter().map(|n| (n, "v"))),
            Err(HeaderError::TooMany(11))
        );
        assert_eq!(
            CustomHeaders::parse([("X-A", "1"), ("x-a", "2")]),
            Err(HeaderError::Duplicate("x-a".into()))
        );
    }

    /// A header name that counts how often it is read.
    struct Counted<'a>(String, &'a std::cell::Cell<usize>);

    impl AsRef<str> for Counted<'_> {
        fn as_ref(&self) -> &str {
            self.1.set(self.1.get() + 1);
            &self.0
        }
    }

    #[test]
    fn too_many_headers_are_refused_by_their_count_before_any_name_is_read() {
        // About as many names as a 256 KiB body holds, the last two the same name: refused for
        // the count alone, so the refusal costs one pass, never a comparison of each pair.
        let reads = std::cell::Cell::new(0);
        let mut names: Vec<String> = (0..28_999).map(|i| format!("x{i}")).collect();
        names.push("X0".into());
        let pairs = names.into_iter().map(|n| (Counted(n, &reads), "v"));
        assert_eq!(
            CustomHeaders::parse(pairs),
            Err(HeaderError::TooMany(29_000))
        );
        assert_eq!(reads.get(), 0, "no name was read");
    }
}
