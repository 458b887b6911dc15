//! The layering, read from the source: the domain modules and the store never name the HTTP
//! edge or the handlers (nor the store Meta's payloads), so an import circle like the old `store → message → edge → store`
//! cannot come back unnoticed. The compiler allows such circles inside one crate; this test
//! does not.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// What the pure domain modules, which the store, the Graph client and the handlers stand on,
/// may not name: anything that does I/O or speaks HTTP.
const NOT_IN_DOMAIN: &[&str] = &["edge", "api", "store", "graph"];

/// Each rule: files under `shared/src/` whose path starts with the first part may not name the
/// top-level modules of the second.
const RULES: &[(&str, &[&str])] = &[
    ("message.rs", NOT_IN_DOMAIN),
    ("session.rs", NOT_IN_DOMAIN),
    ("phone.rs", NOT_IN_DOMAIN),
    ("bsuid.rs", NOT_IN_DOMAIN),
    ("limits.rs", NOT_IN_DOMAIN),
    ("meta/", NOT_IN_DOMAIN),
    // The webhooks' rules answer `WebhookError`; the edge maps it to the envelope.
    ("webhooks.rs", NOT_IN_DOMAIN),
    // The store answers `StoreError`; the edge turns that into an answer, never the reverse.
    // It keeps domain values (`PhoneE164`, `Bsuid`), not Meta's payloads or their meaning.
    ("store/", &["edge", "api", "meta"]),
    // Meta, real or virtual, answers `SendError`s and deliveries; the handlers decide what
    // they mean for a request, and hand deliveries to the webhook (`virtual_phones`).
    ("graph/", &["edge", "api", "virtual_phones"]),
];

#[test]
fn domain_modules_and_the_store_never_name_the_edge_or_the_handlers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src, &src);
    let mut broken = Vec::new();
    for (prefix, forbidden) in RULES {
        let ruled: Vec<_> = files
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .collect();
        assert!(
            !ruled.is_empty(),
            "no file under src/ matches {prefix}: renamed?"
        );
        for (path, source) in ruled {
            for module in modules_named(source) {
                if forbidden.contains(&module.as_str()) {
                    broken.push(format!("{path} uses crate::{module}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn modules_named_sees_plain_and_grouped_paths_but_not_comments() {
    let source = "use crate::edge::ApiError;\n\
                  use crate::{session::{Session, UserId}, api as handlers,\n    graph};\n\
                  /// Doc link to [`crate::store::Key`].\n\
                  fn f() { crate::limits::utc_date(0); } // crate::ids\n\
                  use other_crate::phone;\n";
    let named: Vec<_> = modules_named(source).into_iter().collect();
    assert_eq!(named, ["api", "edge", "graph", "limits", "session"]);
}

/// `(path relative to src/ with '/' separators, contents)` of every `.rs` file under `dir`.
fn rust_files(root: &Path, dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("src/ is readable").path();
        if path.is_dir() {
            files.extend(rust_files(root, &path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src/");
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((
                relative,
                fs::read_to_string(&path).expect("source is UTF-8"),
            ));
        }
    }
    files
}

/// The top-level modules of the crate a file's code names (`crate::x`, `crate::{x, y::{z}}`);
/// comments, doc links included, do not count.
fn modules_named(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut named = BTreeSet::new();
    for (at, root) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + root.len()..];
        match rest.strip_prefix('{') {
            Some(group) => named.extend(top_level_items(group).filter_map(first_ident)),
            None => named.extend(first_ident(rest)),
        }
    }
    named
}

/// The items of a `{...}` group up to its closing brace, split at its own commas only.
fn top_level_items(group: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter()
}

/// The identifier a path starts with (`edge::ApiError` → `edge`).
fn first_ident(path: &str) -> Option<String> {
    let ident: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty() && ident != "self").then_some(ident)
}
