//! The phone number type: once a value is a [`PhoneE164`], it is a valid international number.

use std::fmt;
use std::sync::OnceLock;

use prost::Message as _;
use rlibphonenumber::{ParseError, PhoneMetadataCollection, PhoneNumberFormat, PhoneNumberUtil};

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
    /// More characters than the contract's `PhoneInput` allows, separators included.
    #[error("phone is too long: at most 32 characters, spaces and punctuation included")]
    TooManyCharacters,
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
/// The longest input accepted, separators included (`PhoneInput.maxLength` in openapi.yaml).
pub const MAX_INPUT_CHARS: usize = 32;

impl PhoneE164 {
    /// Normalizes caller input: one optional leading `+`, digits, spaces, dashes, dots and
    /// parentheses are accepted; the digits must form a valid international number.
    ///
    /// Exactly the shape `PhoneInput` in openapi.yaml declares (at most 32 characters; only
    /// spaces may precede the `+`), so whatever breaks that schema is refused here too.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        if input.chars().count() > MAX_INPUT_CHARS {
            return Err(PhoneError::TooManyCharacters);
        }
        let trimmed = input.trim_matches(' ');
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
        // No country calling code libphonenumber knows: what its parse answers for any `+`
        // followed by such digits (INVALID_COUNTRY_CODE). (Also if the code's metadata did not
        // load, which a test rules out for every code and which is logged as an error.)
        let util = util_for(&digits).ok_or(PhoneError::Invalid)?;
        libphonenumber_e164(util, &digits).map(Self)
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

impl PhoneE164 {
    /// This number and the other forms WhatsApp may use for the same phone, this one first.
    ///
    /// A user types one form and Meta's `wa_id` / inbound `from` can carry another, so a rule
    /// about a phone (an opt-out, a per-recipient counter) must match every form. Meta's
    /// send-messages guide says the Cloud API may change the added prefix of Brazilian and
    /// Mexican numbers (reference `whatsapp-cloud-api.md` §1, summary item 8); §7 and public
    /// reports (chatwoot/chatwoot#13932) add Argentina's `549…` vs `54…`. The forms:
    /// - Brazil `+55`: mobile with or without the ninth digit, `55 AA 9XXXXXXXX` ⇄
    ///   `55 AA XXXXXXXX` (two-digit area code without zeros, the 8-digit form starting 6-9);
    /// - Mexico `+52`: with or without the `1` after the country code, `521` + 10 ⇄ `52` + 10;
    /// - Argentina `+54`: with or without the mobile `9`, `549` + 10 ⇄ `54` + 10.
    ///
    /// Any other number has only itself.
    pub fn whatsapp_forms(&self) -> Vec<PhoneE164> {
        let mut forms = vec![self.clone()];
        if let Some(other) = other_whatsapp_form(&self.0) {
            forms.push(Self(other));
        }
        forms
    }
}

impl PhoneE164 {
    /// The line of a virtual phone (`+1 NXX 555 01XX`), if this number is one: a North
    /// American number whose exchange is 555 and whose line is 0100-0199. NANPA reserves
    /// those lines for fiction, so no subscriber holds one; the service plays them
    /// (`VIRTUAL_PHONES`, README "Virtual phones"). Whether the service does is configuration;
    /// this only says what the number is.
    pub fn virtual_line(&self) -> Option<VirtualLine> {
        let d = self.0.as_bytes();
        let shaped =
            d.len() == 11 && d[0] == b'1' && matches!(d[1], b'2'..=b'9') && &d[4..9] == b"55501";
        shaped.then(|| VirtualLine((d[9] - b'0') * 10 + (d[10] - b'0')))
    }
}

/// A virtual phone's line: the last two digits of `+1 NXX 555 01XX` (0-99), which choose
/// what the phone does ([`VirtualLine::behaviour`]). Only [`PhoneE164::virtual_line`] makes
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VirtualLine(u8);

/// What a virtual phone does, by its line (the table, README "Virtual phones").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 00-49: each message is reported `sent`, `delivered`, `read`; it answers only when told.
    Reachable,
    /// 50-59: as [`Behaviour::Reachable`], and it taps Activate once its template is delivered.
    TapsActivate,
    /// 60-69: Meta accepts each send, then reports it `failed` (131026, undeliverable).
    Unreachable,
    /// 70-79: Meta refuses each send at once (131030, not in the allowed list).
    Refused,
    /// 80-89: as [`Behaviour::Reachable`], and it answers its first template with `STOP`.
    AnswersStop,
    /// 90-99: a WhatsApp-username user: its statuses carry its business-scoped user id beside
    /// the phone, its messages only that id.
    Username,
}

impl VirtualLine {
    /// The last two digits.
    pub fn number(self) -> u8 {
        self.0
    }

    /// What the phone on this line does.
    pub fn behaviour(self) -> Behaviour {
        match self.0 {
            0..=49 => Behaviour::Reachable,
            50..=59 => Behaviour::TapsActivate,
            60..=69 => Behaviour::Unreachable,
            70..=79 => Behaviour::Refused,
            80..=89 => Behaviour::AnswersStop,
            _ => Behaviour::Username,
        }
    }
}

/// `+digits` as libphonenumber parses, validates and formats it with `util`'s metadata: E.164
/// digits, no `+`.
fn libphonenumber_e164(util: &PhoneNumberUtil, digits: &str) -> Result<String, PhoneError> {
    let number = util
        .parse(format!("+{digits}"), None)
        .map_err(|e| match e {
            ParseError::TooShortNsn | ParseError::TooShortAfterIdd => PhoneError::TooShort,
            ParseError::TooLongNsn => PhoneError::TooLong,
            _ => PhoneError::Invalid,
        })?;
    if !util.is_valid_number(&number) {
        return Err(PhoneError::Invalid);
    }
    let e164 = util.format(&number, PhoneNumberFormat::E164);
    Ok(e164.trim_start_matches('+').to_owned())
}

/// libphonenumber, one country calling code at a time.
///
/// rlibphonenumber's own `PhoneNumberUtil` decodes the metadata of every region when it is
/// built (about 6 ms, which was most of create's init). This module keeps the same metadata
/// split by calling code (`build.rs`) and builds a util for a code on its first number:
/// about 0.7 ms, once per code per container. A number's digits after the `+` start with its
/// calling code, and calling codes are prefix-free (ITU-T E.164), so the code, and with it every
/// region a full util would consider (all of NANPA's for `1`, Russia and Kazakhstan for `7`),
/// is known before parsing; the util of that code parses, validates and formats the number as
/// the full one does (`tests::per_code_metadata_agrees_with_the_whole_metadata`).
mod metadata {
    use super::*;

    include!(concat!(env!("OUT_DIR"), "/phone_calling_codes.rs"));

    /// libphonenumber's records, grouped by calling code (`CALLING_CODES` has the ranges).
    static RECORDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/phone_metadata.bin"));

    /// One util per calling code, built on the code's first number (`None`: its records did
    /// not load, logged once). Boxed: a util is a few kilobytes, and an array of them would be
    /// written out in the binary's data section (0.3 MB) rather than zeroed at load.
    static UTILS: [OnceLock<Option<Box<PhoneNumberUtil>>>; CALLING_CODES.len()] =
        [const { OnceLock::new() }; CALLING_CODES.len()];

    /// The util of the calling code `digits` (E.164, no `+`) starts with, if any.
    pub(super) fn util_for(digits: &str) -> Option<&'static PhoneNumberUtil> {
        let index = (1..=3)
            .filter_map(|n| digits.get(..n)?.parse::<u16>().ok())
            .find_map(|code| {
                CALLING_CODES
                    .binary_search_by_key(&code, |&(c, _, _)| c)
                    .ok()
            })?;
        UTILS[index].get_or_init(|| load(index)).as_deref()
    }

    fn load(index: usize) -> Option<Box<PhoneNumberUtil>> {
        let (code, start, end) = CALLING_CODES[index];
        let loaded = RECORDS
            .get(start as usize..end as usize)
            .ok_or_else(|| "range outside the records".to_owned())
            .and_then(|bytes| PhoneMetadataCollection::decode(bytes).map_err(|e| e.to_string()))
            .and_then(|records| {
                PhoneNumberUtil::new_for_metadata(records)
                    .map(Box::new)
                    .map_err(|e| e.to_string())
            });
        loaded
            .inspect_err(|error| {
                tracing::error!(code, %error, "libphonenumber metadata of a calling code did not load")
            })
            .ok()
    }
}

use metadata::util_for;

/// The one other WhatsApp form of E.164 digits, if their country has one (see
/// [`PhoneE164::whatsapp_forms`]).
fn other_whatsapp_form(digits: &str) -> Option<String> {
    let all_digits = digits.bytes().all(|b| b.is_ascii_digit());
    if !all_digits {
        return None;
    }
    let (country, rest) = digits.split_at(digits.len().min(2));
    match (country, rest.len()) {
        // Brazil: area code (two digits, no zero) then the subscriber number.
        ("55", 10 | 11) => {
            let (area, subscriber) = rest.split_at(2);
            if area.bytes().any(|b| b == b'0') {
                return None;
            }
            let mobile_8 = |s: &str| s.len() == 8 && matches!(s.as_bytes()[0], b'6'..=b'9');
            match subscriber.strip_prefix('9') {
                Some(eight) if subscriber.len() == 9 && mobile_8(eight) => {
                    Some(format!("55{area}{eight}"))
                }
                _ if mobile_8(subscriber) => Some(format!("55{area}9{subscriber}")),
                _ => None,
            }
        }
        // Mexico: `521` + 10 digits ⇄ `52` + 10 digits.
        ("52", 11) => rest.strip_prefix('1').map(|ten| format!("52{ten}")),
        ("52", 10) => Some(format!("521{rest}")),
        // Argentina: `549` + 10 digits ⇄ `54` + 10 digits.
        ("54", 11) => rest.strip_prefix('9').map(|ten| format!("54{ten}")),
        ("54", 10) => Some(format!("549{rest}")),
        _ => None,
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
        // Only spaces are separators: other whitespace is not in the contract's pattern.
        assert_eq!(
            PhoneE164::parse("\t+34688246216"),
            Err(PhoneError::InvalidCharacter('\t'))
        );
        assert_eq!(
            PhoneE164::parse("+34688246216\n"),
            Err(PhoneError::InvalidCharacter('\n'))
        );
        let padded = format!("+34 688 246 216{}", " ".repeat(MAX_INPUT_CHARS - 15));
        assert_eq!(PhoneE164::parse(&padded).unwrap().digits(), "34688246216");
        assert_eq!(
            PhoneE164::parse(&format!("{padded} ")),
            Err(PhoneError::TooManyCharacters)
        );
        assert!(matches!(
            PhoneE164::parse("+٣٤٦٨٨٢٤٦٢١٦"),
            Err(PhoneError::InvalidCharacter(_))
        ));
    }

    /// What `PhoneE164::parse` answered when it used rlibphonenumber's util of the whole
    /// bundled metadata, for digits that passed the character and length checks.
    fn parse_with_whole_metadata(digits: &str) -> Result<String, PhoneError> {
        libphonenumber_e164(&rlibphonenumber::PHONE_NUMBER_UTIL, digits)
    }

    #[test]
    fn every_calling_code_loads_its_own_regions_only() {
        use rlibphonenumber::PHONE_NUMBER_UTIL;
        let whole: Vec<u16> = PHONE_NUMBER_UTIL
            .get_supported_calling_codes()
            .map(|c| u16::try_from(c).unwrap())
            .collect();
        let split: Vec<u16> = metadata::CALLING_CODES.iter().map(|c| c.0).collect();
        assert_eq!(split, whole, "the split has every calling code, in order");
        for code in split {
            let util = util_for(&format!("{code}0000000")).expect("its records load");
            let codes: Vec<i32> = util.get_supported_calling_codes().collect();
            assert_eq!(codes, [i32::from(code)]);
            let regions: Vec<_> = util
                .get_regions_for_country_calling_code(code.into())
                .unwrap()
                .collect();
            let whole_regions: Vec<_> = PHONE_NUMBER_UTIL
                .get_regions_for_country_calling_code(code.into())
                .unwrap()
                .collect();
            assert_eq!(
                regions, whole_regions,
                "+{code}: same regions, same main region"
            );
        }
    }

    /// Every example number libphonenumber has (each region's and non-geographic entity's, of
    /// every type), the same with its last digit changed, one digit less and one more, and
    /// pseudo-random digit strings under every calling code: parsing with one code's metadata
    /// answers exactly as parsing with the whole metadata did.
    #[test]
    fn per_code_metadata_agrees_with_the_whole_metadata() {
        use rlibphonenumber::PHONE_NUMBER_UTIL;
        let e164 = |n: &rlibphonenumber::PhoneNumber| {
            let f = PHONE_NUMBER_UTIL.format(n, PhoneNumberFormat::E164);
            f.trim_start_matches('+').to_owned()
        };
        let mut examples = Vec::new();
        for region in PHONE_NUMBER_UTIL.get_supported_regions() {
            for kind in PHONE_NUMBER_UTIL
                .get_supported_types_for_region(region)
                .unwrap_or_default()
            {
                if let Ok(n) =
                    PHONE_NUMBER_UTIL.get_example_number_for_type_and_region(region, kind)
                {
                    examples.push(e164(&n));
                }
            }
        }
        for code in PHONE_NUMBER_UTIL.get_supported_global_network_calling_codes() {
            if let Ok(n) = PHONE_NUMBER_UTIL.get_example_number_for_non_geo_entity(code) {
                examples.push(e164(&n));
            }
        }
        assert!(examples.len() > 1_000, "{} examples", examples.len());
        let mut numbers = Vec::new();
        for digits in &examples {
            let last = digits.as_bytes()[digits.len() - 1];
            let changed = if last == b'9' {
                '0'
            } else {
                char::from(last + 1)
            };
            numbers.push(digits.clone());
            numbers.push(format!("{}{changed}", &digits[..digits.len() - 1]));
            numbers.push(digits[..digits.len() - 1].to_owned());
            numbers.push(format!("{digits}5"));
        }
        let mut state = 0x2026_1204_u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 33
        };
        for &(code, _, _) in metadata::CALLING_CODES {
            for _ in 0..20 {
                let mut digits = code.to_string();
                let len = MIN_DIGITS + (next() as usize) % (MAX_DIGITS - MIN_DIGITS + 1);
                while digits.len() < len {
                    digits.push(char::from(b'0' + (next() % 10) as u8));
                }
                numbers.push(digits);
            }
        }
        // Digit counts outside E.164's are refused before libphonenumber is asked.
        numbers.retain(|d| (MIN_DIGITS..=MAX_DIGITS).contains(&d.len()));
        let mut valid = 0;
        for digits in &numbers {
            let split = PhoneE164::parse(digits).map(|p| p.digits().to_owned());
            assert_eq!(split, parse_with_whole_metadata(digits), "+{digits}");
            valid += usize::from(split.is_ok());
        }
        assert!(valid > 1_000, "{valid} of {} valid", numbers.len());
    }

    #[test]
    fn a_number_under_no_calling_code_is_invalid_as_with_the_whole_metadata() {
        // 28x, 42x, 80x... : no country has these codes.
        for digits in ["2801234567", "4221234567", "8091234567", "0034688246216"] {
            assert_eq!(
                PhoneE164::parse(digits),
                Err(PhoneError::Invalid),
                "{digits}"
            );
            assert_eq!(parse_with_whole_metadata(digits), Err(PhoneError::Invalid));
        }
    }

    #[test]
    fn the_virtual_range_is_plus_one_nxx_555_0100_to_0199_and_valid_for_libphonenumber() {
        use Behaviour::*;
        let expected = |line: u8| match line {
            0..=49 => Reachable,
            50..=59 => TapsActivate,
            60..=69 => Unreachable,
            70..=79 => Refused,
            80..=89 => AnswersStop,
            _ => Username,
        };
        for area in ["201", "212", "415", "617", "907"] {
            for line in 0..100u8 {
                let typed = format!("+1 {area} 555 01{line:02}");
                let phone = PhoneE164::parse(&typed).unwrap_or_else(|e| panic!("{typed}: {e}"));
                let virtual_line = phone.virtual_line().unwrap_or_else(|| panic!("{typed}"));
                assert_eq!(virtual_line.number(), line, "{typed}");
                assert_eq!(virtual_line.behaviour(), expected(line), "{typed}");
            }
        }
        // Around the range: other lines and exchanges, another country, not NANP-shaped.
        for digits in [
            "12015550099",
            "12015550200",
            "12015560150",
            "12015450150",
            "11015550150",
            "10015550150",
            "442015550150",
            "34688246216",
            "120155501501",
        ] {
            let phone = PhoneE164::from_stored(digits).unwrap();
            assert_eq!(phone.virtual_line(), None, "{digits}");
        }
    }

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(
            PhoneE164::parse("+34688246216").unwrap().masked(),
            "*******6216"
        );
        assert_eq!(mask_digits("123"), "123");
    }

    #[test]
    fn whatsapp_forms_of_brazil_mexico_argentina_and_others() {
        // (number, its other form or "" for none)
        let cases = [
            // Brazil mobile, São Paulo: with the ninth digit ⇄ without.
            ("5511987654321", "551187654321"),
            ("551187654321", "5511987654321"),
            ("5521996543210", "552196543210"),
            ("552166543210", "5521966543210"),
            // Brazil landline (8 digits starting 2-5) and a 9-digit number whose rest is not
            // mobile-shaped: only themselves.
            ("551132654321", ""),
            ("5511932654321", ""),
            // Mexico: with the `1` after 52 ⇄ without.
            ("5215512345678", "525512345678"),
            ("525512345678", "5215512345678"),
            // Argentina: with the `9` after 54 ⇄ without.
            ("5491123456789", "541123456789"),
            ("541123456789", "5491123456789"),
            // Other countries: only themselves.
            ("34688246216", ""),
            ("12029087457", ""),
            ("447700900123", ""),
        ];
        for (number, other) in cases {
            let phone = PhoneE164::from_stored(number).unwrap();
            let forms: Vec<String> = phone
                .whatsapp_forms()
                .iter()
                .map(|p| p.digits().to_owned())
                .collect();
            let mut expected = vec![number.to_owned()];
            if !other.is_empty() {
                expected.push(other.to_owned());
            }
            assert_eq!(forms, expected, "{number}");
        }
    }

    #[test]
    fn whatsapp_forms_are_symmetric() {
        for number in ["5511987654321", "525512345678", "5491123456789"] {
            let forms = PhoneE164::from_stored(number).unwrap().whatsapp_forms();
            let back = forms[1].whatsapp_forms();
            assert_eq!(back, [forms[1].clone(), forms[0].clone()], "{number}");
        }
    }
}
