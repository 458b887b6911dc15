//! A webhook's URL (pure): checked when a webhook is created or updated.
//!
//! Only what can be known without a lookup is checked here: the scheme, the length, and an
//! IP-literal host. A name is judged when a delivery resolves it ([`super::egress`]), since its
//! addresses can change after this check.

use reqwest::Url;

use super::egress::{literal_refusal, Refused, Targets};

/// The longest URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2_048;

/// A webhook URL: absolute, `https` (or `http` where private targets are allowed), with a host
/// that is not a refused IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Longer than [`MAX_URL_CHARS`].
    #[error("the URL is longer than {MAX_URL_CHARS} characters")]
    TooLong,
    /// Not an absolute URL with a host.
    #[error("expected an absolute URL such as https://example.com/webhooks")]
    NotAbsolute,
    /// A scheme other than `https` (or `http` where allowed).
    #[error("the URL must use https")]
    NotHttps,
    /// An IP-literal host in a refused range.
    #[error(transparent)]
    Refused(#[from] Refused),
}

impl WebhookUrl {
    /// Checks `s` against what `targets` allows.
    pub fn parse(s: &str, targets: Targets) -> Result<Self, UrlError> {
        if s.chars().count() > MAX_URL_CHARS {
            return Err(UrlError::TooLong);
        }
        let url = Url::parse(s).map_err(|_| UrlError::NotAbsolute)?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NotAbsolute);
        }
        match (url.scheme(), targets) {
            ("https", _) | ("http", Targets::PrivateAllowed) => {}
            _ => return Err(UrlError::NotHttps),
        }
        if let Some(refused) = literal_refusal(&url, targets) {
            return Err(refused.into());
        }
        Ok(Self(url))
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL as text, as stored.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::super::egress::Rule;
    use super::*;

    const PUBLIC: Targets = Targets::PublicOnly;

    #[test]
    fn an_https_url_with_a_public_host_is_accepted() {
        let url = WebhookUrl::parse("https://hooks.example.com/zernio?x=1", PUBLIC).unwrap();
        assert_eq!(url.as_str(), "https://hooks.example.com/zernio?x=1");
        assert!(WebhookUrl::parse("https://93.184.215.14:8443/", PUBLIC).is_ok());
    }

    #[test]
    fn plain_http_only_where_private_targets_are_allowed() {
        assert_eq!(
            WebhookUrl::parse("http://hooks.example.com/", PUBLIC),
            Err(UrlError::NotHttps)
        );
        assert!(WebhookUrl::parse("http://127.0.0.1:3000/", Targets::PrivateAllowed).is_ok());
        for other in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "ws://example.com/",
        ] {
            assert!(
                WebhookUrl::parse(other, Targets::PrivateAllowed).is_err(),
                "{other}"
            );
        }
    }

    #[test]
    fn relative_or_hostless_urls_are_refused() {
        for s in [
            "/webhooks",
            "example.com/webhooks",
            "https://",
            "mailto:a@b.c",
            "",
        ] {
            assert!(WebhookUrl::parse(s, PUBLIC).is_err(), "{s:?}");
        }
    }

    #[test]
    fn a_url_of_2048_characters_is_accepted_and_one_more_is_not() {
        let base = "https://example.com/";
        let exact = format!("{base}{}", "a".repeat(MAX_URL_CHARS - base.len()));
        assert!(WebhookUrl::parse(&exact, PUBLIC).is_ok());
        assert_eq!(
            WebhookUrl::parse(&format!("{exact}a"), PUBLIC),
            Err(UrlError::TooLong)
        );
    }

    #[test]
    fn a_refused_ip_literal_is_refused_at_once_naming_the_rule() {
        let cases = [
            ("https://127.0.0.1/", Rule::Loopback),
            ("https://[::1]/", Rule::Loopback),
            ("https://[::ffff:169.254.169.254]/", Rule::LinkLocal),
            ("https://169.254.169.254/latest/meta-data/", Rule::LinkLocal),
            // The URL parser reads these spellings as 127.0.0.1 and 10.0.0.1.
            ("https://2130706433/", Rule::Loopback),
            ("https://0x0a.0.0.1/", Rule::Private),
            ("https://127.0.0.1./", Rule::Loopback),
            ("https://[0:0:0:0:0:ffff:7f00:1]/", Rule::Loopback),
        ];
        for (s, rule) in cases {
            match WebhookUrl::parse(s, PUBLIC) {
                Err(UrlError::Refused(refused)) => {
                    assert_eq!(refused.rule, rule, "{s}");
                    assert!(refused.to_string().contains(rule.name()), "{refused}");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        assert!(WebhookUrl::parse("http://127.0.0.1/", Targets::PrivateAllowed).is_ok());
    }
}
