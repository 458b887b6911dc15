//! Splits libphonenumber's metadata by country calling code, so a function loads only the
//! codes it meets (`src/phone.rs`, README "Benchmark").
//!
//! rlibphonenumber builds its `PhoneNumberUtil` from the metadata of every region at once
//! (about 6 ms of create's init); it accepts any `PhoneMetadataCollection` instead
//! (`new_for_metadata`), but keeps its own bundled bytes private. This script finds those bytes
//! in the rlibphonenumber package this build resolved (`cargo metadata`, offline: nothing is
//! downloaded, nothing is copied into the repository) and writes to `OUT_DIR`:
//! - `phone_metadata.bin`: the same records, grouped by calling code (ascending), each group in
//!   the crate's order;
//! - `phone_calling_codes.rs`: `CALLING_CODES`, the code and byte range of every group.
//!
//! A collection's encoding is its records one after another (`repeated PhoneMetadata metadata =
//! 1`), so a group's bytes decode as a collection of that code's records alone. The records
//! are copied byte for byte; reading their `country_code` (field 10) needs only the protobuf
//! wire format, so this script decodes nothing else.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where rlibphonenumber keeps its compiled metadata, inside its package.
const METADATA_IN_PACKAGE: &str = "src/generated/metadata/metadata.bin";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A new rlibphonenumber version arrives through the lock file.
    println!("cargo:rerun-if-changed=../Cargo.lock");
    let source = metadata_file();
    println!("cargo:rerun-if-changed={}", source.display());
    let bytes =
        std::fs::read(&source).unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    let groups = split_by_calling_code(&bytes)
        .unwrap_or_else(|e| panic!("{} is not the metadata expected: {e}", source.display()));

    let mut blob = Vec::with_capacity(bytes.len());
    let mut table = String::from(
        "/// Every country calling code libphonenumber knows (ascending), with the byte range of\n\
         /// its records in `phone_metadata.bin`.\n\
         pub(crate) const CALLING_CODES: &[(u16, u32, u32)] = &[\n",
    );
    for (code, records) in &groups {
        let start = blob.len();
        for record in records {
            blob.extend_from_slice(record);
        }
        let _ = writeln!(table, "    ({code}, {start}, {}),", blob.len());
    }
    table.push_str("];\n");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    write(&out.join("phone_metadata.bin"), &blob);
    write(&out.join("phone_calling_codes.rs"), table.as_bytes());
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The metadata file of the rlibphonenumber package in this workspace's resolved graph.
fn metadata_file() -> PathBuf {
    // Offline first: the build has fetched rlibphonenumber already. But the listing covers the
    // whole workspace, dev-dependencies included, which a first `cargo build` of one package
    // has not fetched; then cargo may fetch them (the versions in Cargo.lock), as `cargo
    // fetch` would. Filtered to the target platform: the others' packages are never needed.
    let listing = cargo_metadata(true)
        .or_else(|offline| cargo_metadata(false).map_err(|online| format!("{offline}\n{online}")));
    let listing = listing.unwrap_or_else(|e| {
        panic!(
            "cannot list the packages to find rlibphonenumber's metadata (try `cargo fetch`): {e}"
        )
    });
    let manifests: Vec<&str> = listing["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "rlibphonenumber")
        .filter_map(|p| p["manifest_path"].as_str())
        .collect();
    let [manifest] = manifests[..] else {
        panic!("expected one rlibphonenumber package in the build, found {manifests:?}");
    };
    let package = Path::new(manifest)
        .parent()
        .expect("a manifest is in a folder");
    package.join(METADATA_IN_PACKAGE)
}

/// `cargo metadata` of this workspace, for the target platform.
fn cargo_metadata(offline: bool) -> Result<serde_json::Value, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let mut command = Command::new(cargo);
    command
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &target,
        ])
        .current_dir(manifest_dir);
    if offline {
        command.arg("--offline");
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata{} failed: {}",
            if offline { " --offline" } else { "" },
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata printed: {e}"))
}

/// The records of a `PhoneMetadataCollection`, grouped by their `country_code`.
fn split_by_calling_code(bytes: &[u8]) -> Result<BTreeMap<u16, Vec<&[u8]>>, String> {
    let mut groups: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tag, after) = varint(rest)?;
        // Field 1, wire type 2 (length-delimited).
        if tag != 0x0A {
            return Err(format!("unexpected collection field tag {tag}"));
        }
        let (len, after) = varint(after)?;
        let len = usize::try_from(len).map_err(|_| "record too long")?;
        let header = rest.len() - after.len();
        if after.len() < len {
            return Err("truncated record".into());
        }
        let whole = &rest[..header + len];
        let code = country_code(&after[..len])?.ok_or("a record without country_code")?;
        groups.entry(code).or_default().push(whole);
        rest = &rest[header + len..];
    }
    if groups.len() < 200 {
        return Err(format!("only {} calling codes", groups.len()));
    }
    Ok(groups)
}

/// Field 10 (`country_code`, varint) of one `PhoneMetadata` record.
fn country_code(mut record: &[u8]) -> Result<Option<u16>, String> {
    let mut code = None;
    while !record.is_empty() {
        let (tag, after) = varint(record)?;
        let (field, wire_type) = (tag >> 3, tag & 7);
        record = match wire_type {
            0 => {
                let (value, after) = varint(after)?;
                if field == 10 {
                    code = Some(u16::try_from(value).map_err(|_| "country_code too large")?);
                }
                after
            }
            1 => after.get(8..).ok_or("truncated fixed64")?,
            2 => {
                let (len, after) = varint(after)?;
                let len = usize::try_from(len).map_err(|_| "field too long")?;
                after.get(len..).ok_or("truncated field")?
            }
            5 => after.get(4..).ok_or("truncated fixed32")?,
            other => return Err(format!("unexpected wire type {other}")),
        };
    }
    Ok(code)
}

/// A protobuf base-128 varint and what follows it.
fn varint(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err("truncated varint".into())
}
