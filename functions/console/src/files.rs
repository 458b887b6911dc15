//! The console's files, embedded at build time (`build.rs` writes the table from
//! `console/src`).

/// One embedded file.
#[derive(Debug)]
pub struct File {
    /// Its name in `console/src`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its strong `ETag` (quoted): a hash of its bytes.
    pub etag: &'static str,
    /// Its bytes (every file is text).
    pub body: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/console.rs"));

/// The asset named `<version>/<name>` (the part of the path after `/console/`), if it is one of
/// this build's.
pub fn asset(path: &str) -> Option<&'static File> {
    let (version, name) = path.split_once('/')?;
    if version != VERSION {
        return None;
    }
    ASSETS.iter().find(|f| f.name == name)
}
