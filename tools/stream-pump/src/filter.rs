//! The event source mappings' `FilterCriteria`, applied as Lambda applies them: a record is
//! handed over when any pattern matches it. Only the part of Lambda's filter syntax the
//! template's patterns use is implemented (nested objects; lists of literals, `prefix` and
//! `exists`); a pattern using anything else is refused when parsed, never silently passed.
//!
//! The patterns are template.yaml's, written here once per function (`tests/api/template.rs`
//! checks they are the same), so `make dev` passes a function exactly what AWS passes it.

use serde_json::Value;

/// The events function's mapping: session and conversation items, the only items whose
/// changes are events.
pub const EVENTS: [&str; 1] =
    [r#"{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "USER#"}, {"prefix": "CONV#"}]}}}}"#];

/// The phone function's mapping: a session whose new image has a template's id, an outbound
/// conversation item whose new image has a message id, both to a `+1` number.
pub const PHONE: [&str; 2] = [
    r#"{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "USER#"}]}}, "NewImage": {"activationMessageId": {"S": [{"exists": true}]}, "phoneE164": {"S": [{"prefix": "1"}]}}}}"#,
    r#"{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "CONV#"}]}}, "NewImage": {"messageId": {"S": [{"exists": true}]}, "direction": {"S": ["outbound"]}, "phone": {"S": [{"prefix": "1"}]}}}}"#,
];

/// A mapping's filter: any of its patterns.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    patterns: Vec<Value>,
}

impl Filter {
    /// The filter of the mapping that feeds `function` in template.yaml, if there is one.
    pub fn for_function(function: &str) -> Option<Self> {
        let patterns: &[&str] = match function {
            "events" => &EVENTS,
            "phone" => &PHONE,
            _ => return None,
        };
        Self::parse(patterns).ok()
    }

    /// The filter of these patterns (each a JSON object, as `FilterCriteria.Filters[].Pattern`
    /// writes it), or what is wrong with one.
    pub fn parse(patterns: &[&str]) -> Result<Self, String> {
        let patterns = patterns
            .iter()
            .map(|p| {
                let v: Value =
                    serde_json::from_str(p).map_err(|e| format!("pattern {p}: not JSON: {e}"))?;
                check(&v).map_err(|e| format!("pattern {p}: {e}"))?;
                Ok(v)
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { patterns })
    }

    /// Whether the mapping hands `record` (a stream record as Lambda's JSON) over.
    pub fn passes(&self, record: &Value) -> bool {
        self.patterns.iter().any(|p| matches(p, Some(record)))
    }
}

/// Refuses what [`matches`] does not implement.
fn check(pattern: &Value) -> Result<(), String> {
    let Value::Object(fields) = pattern else {
        return Err("a pattern level must be an object".into());
    };
    for (name, inner) in fields {
        match inner {
            Value::Object(_) => check(inner)?,
            Value::Array(rules) => {
                for rule in rules {
                    match rule {
                        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {}
                        Value::Object(op) if op.len() == 1 => match op.iter().next() {
                            Some((k, Value::String(_))) if k == "prefix" => {}
                            Some((k, Value::Bool(_))) if k == "exists" => {}
                            _ => return Err(format!("{name}: unsupported rule {rule}")),
                        },
                        _ => return Err(format!("{name}: unsupported rule {rule}")),
                    }
                }
            }
            _ => return Err(format!("{name}: a field's rules must be a list")),
        }
    }
    Ok(())
}

/// Whether `value` (absent: `None`) satisfies `pattern`: every field of an object pattern
/// matches the value's field of that name; a list of rules, any one of them.
fn matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(name, inner)| matches(inner, value.and_then(|v| v.get(name)))),
        Value::Array(rules) => rules.iter().any(|rule| match rule {
            Value::Object(op) => match op.iter().next() {
                Some((k, Value::String(prefix))) if k == "prefix" => value
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with(prefix.as_str())),
                Some((k, Value::Bool(wanted))) if k == "exists" => value.is_some() == *wanted,
                _ => false,
            },
            literal => value == Some(literal),
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(pk: &str, new_image: Value) -> Value {
        json!({ "eventName": "MODIFY",
                "dynamodb": { "Keys": { "pk": { "S": pk }, "sk": { "S": "x" } },
                              "NewImage": new_image, "SequenceNumber": "1" } })
    }

    #[test]
    fn the_events_filter_passes_user_and_conversation_items_only() {
        let events = Filter::for_function("events").unwrap();
        assert!(events.passes(&record("USER#u1", json!({}))));
        assert!(events.passes(&record("CONV#u1", json!({}))));
        for other in [
            "KEY#abc",
            "WHDLV#u1",
            "WEBHOOKS#u1",
            "WHLOG#u1",
            "user#u1",
            "",
        ] {
            assert!(!events.passes(&record(other, json!({}))), "{other}");
        }
        assert!(!events.passes(&json!({ "dynamodb": {} })));
    }

    #[test]
    fn the_phone_filter_passes_sends_to_plus_one_numbers_only() {
        let phone = Filter::for_function("phone").unwrap();
        let session = |image: Value| record("USER#u1", image);
        let sent = json!({ "activationMessageId": { "S": "wamid.A" },
                           "phoneE164": { "S": "12015550150" } });
        assert!(phone.passes(&session(sent)));
        let pending = json!({ "phoneE164": { "S": "12015550150" } });
        assert!(!phone.passes(&session(pending)), "no template yet");
        let spain = json!({ "activationMessageId": { "S": "wamid.A" },
                            "phoneE164": { "S": "34688246216" } });
        assert!(!phone.passes(&session(spain)));
        let message = |direction: &str| {
            record(
                "CONV#u1",
                json!({ "messageId": { "S": "wamid.M" }, "direction": { "S": direction },
                        "phone": { "S": "12015550100" } }),
            )
        };
        assert!(phone.passes(&message("outbound")));
        assert!(!phone.passes(&message("inbound")));
        let removed = json!({ "eventName": "REMOVE",
                              "dynamodb": { "Keys": { "pk": { "S": "USER#u1" } } } });
        assert!(!phone.passes(&removed));
        assert_eq!(Filter::for_function("create"), None);
    }

    #[test]
    fn a_pattern_the_pump_cannot_apply_is_refused() {
        assert!(Filter::parse(&[r#"{"a": [{"suffix": "x"}]}"#]).is_err());
        assert!(Filter::parse(&[r#"{"a": "x"}"#]).is_err());
        assert!(Filter::parse(&["[1]"]).is_err());
        assert!(Filter::parse(&["not json"]).is_err());
    }
}
