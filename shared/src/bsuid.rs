//! The business-scoped user id type: once a value is a [`Bsuid`], it is one Meta could have
//! sent (since 2026, beside or instead of a user's phone).

/// The longest BSUID accepted (Meta's look like `US.13491208655302741918`, or
/// `US.ENT.11815799212886844830` for a parent id).
const MAX_BSUID_LEN: usize = 128;

/// A business-scoped user id, as Meta spells it: letters, digits, `.`, `_`, `-`, and not
/// only digits (that would be a phone). Only [`Bsuid::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bsuid(String);

impl Bsuid {
    /// A BSUID, or `None` for anything that cannot be one.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MAX_BSUID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsuids_are_never_phones_or_keys_with_separators() {
        assert!(Bsuid::parse("US.13491208655302741918").is_some());
        assert!(Bsuid::parse("US.ENT.11815799212886844830").is_some());
        for bad in ["", "34688246216", "US#1", "US 1", &"A".repeat(129)] {
            assert_eq!(Bsuid::parse(bad), None, "{bad:?}");
        }
    }
}
