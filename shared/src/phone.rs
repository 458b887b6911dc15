//! The phone number type: once a value is a [`PhoneE164`], it is a valid international number.

use std::fmt;

use rlibphonenumber::{ParseError, PhoneNumberFormat, PHONE_NUMBER_UTIL};

/// What is wrong with a phone number, in words a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but whitespace and punctuation.
    #[error("phone is empty")]
    Empty,
    /// A character outside digits, spaces, dashes, dots, parentheses and one leading `+`.
    #[error("phone contains {0:?}; only digits, spaces, dashes, dots, parentheses and one leading + are allowed")]
    InvalidCharacter(char),
    /// A `+` that is not the first character, or more than one.
    #[error("phone may contain a single + only at the start")]
    MisplacedPlus,
    /// Fewer digits than any international number has.
    #[error("phone is too short to be an international number (include the country calling code)")]
    TooShort,
    /// More digits than E.164 allows (15).
    #[error("phone is too long: an international number has at most 15 digits")]
    TooLong,
    /// The digits are not a valid number for any country by libphonenumber's metadata.
    #[error("phone is not a valid international number; include the country calling code, e.g. +34 688 246 216")]
    Invalid,
}

/// An international phone number in E.164 form, held as digits only (no `+`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneE164(String);

/// E.164 numbers have at most 15 digits; the shortest real ones (small island plans) have 7.
const MAX_DIGITS: usize = 15;
const MIN_DIGITS: usize = 7;

impl PhoneE164 {
    /// Normalizes caller input: one optional leading `+`, digits, spaces, dashes, dots and
    /// parentheses are accepted; the digits must form a valid international number.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        let mut digits = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.char_indices() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                '+' => return Err(PhoneError::MisplacedPlus),
                ' ' | '-' | '.' | '(' | ')' => {}
                other => return Err(PhoneError::InvalidCharacter(other)),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        if digits.len() > MAX_DIGITS {
            return Err(PhoneError::TooLong);
        }
        if digits.len() < MIN_DIGITS {
            return Err(PhoneError::TooShort);
        }
        let number = PHONE_NUMBER_UTIL
            .parse(format!("+{digits}"), None)
            .map_err(|e| match e {
                ParseError::TooShortNsn | ParseError::TooShortAfterIdd => PhoneError::TooShort,
                ParseError::TooLongNsn => PhoneError::TooLong,
                _ => PhoneError::Invalid,
            })?;
        if !PHONE_NUMBER_UTIL.is_valid_number(&number) {
            return Err(PhoneError::Invalid);
        }
        let e164 = PHONE_NUMBER_UTIL.format(&number, PhoneNumberFormat::E164);
        Ok(Self(e164.trim_start_matches('+').to_owned()))
    }

    /// Loads libphonenumber's metadata and compiles the parser's shared patterns now rather
    /// than inside the first request: the create function calls it at init. (A country's own
    /// patterns are still compiled on its first number.)
    pub fn load_metadata() {
        let _ = Self::parse("+34688246216");
    }

    /// Rebuilds a number this service stored earlier (already normalized); `None` if it is
    /// not digits-only E.164.
    pub fn from_stored(digits: &str) -> Option<Self> {
        let ok = (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(digits.to_owned()))
    }

    /// Digits only, no `+` (the API's `phoneE164`).
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// `+` and the digits: the form Meta should receive and the form messages show.
    pub fn with_plus(&self) -> String {
        format!("+{}", self.0)
    }

    /// For logs: every digit but the last four replaced by `*`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }
}

/// Masks any phone-like string for logging, keeping only its last four characters.
pub fn mask_digits(s: &str) -> String {
    let n = s.chars().count();
    s.chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

impl fmt::Display for PhoneE164 {
    /// Displays masked, so a number never reaches a log by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spellings_of_a_spanish_mobile() {
        for s in [
            "+34 688-246-216",
            "+34688246216",
            "34688246216",
            " +34 (688) 24.62.16 ",
        ] {
            assert_eq!(PhoneE164::parse(s).unwrap().digits(), "34688246216", "{s}");
        }
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(
            PhoneE164::parse("+34 68a"),
            Err(PhoneError::InvalidCharacter('a'))
        );
        assert_eq!(
            PhoneE164::parse("++34688246216"),
            Err(PhoneError::MisplacedPlus)
        );
        assert_eq!(
            PhoneE164::parse("3468+8246216"),
            Err(PhoneError::MisplacedPlus)
        );
        assert_eq!(PhoneE164::parse("+34 6"), Err(PhoneError::TooShort));
        assert_eq!(
            PhoneE164::parse("+3468824621612345"),
            Err(PhoneError::TooLong)
        );
        assert_eq!(PhoneE164::parse(" - "), Err(PhoneError::Empty));
        assert!(matches!(
            PhoneE164::parse("+٣٤٦٨٨٢٤٦٢١٦"),
            Err(PhoneError::InvalidCharacter(_))
        ));
    }

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(
            PhoneE164::parse("+34688246216").unwrap().masked(),
            "*******6216"
        );
        assert_eq!(mask_digits("123"), "123");
    }
}
