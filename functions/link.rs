//! The build script of every function binary (and of `tools/floor`, so the bench's floor is
//! linked the same way): two linker settings that make the Lambda binary smaller and its load
//! cheaper (README, "Benchmark"). Only this package's binaries get them, never a proc-macro or
//! a test.
//!
//! - `-no-pie`: a fixed-address executable has no relative relocations to store and apply at
//!   every start (about 5 % of the file). The code itself stays position-independent, and
//!   shared libraries, stack and heap are still randomized; only the binary's own image is
//!   not. The functions are memory-safe Rust in a single-tenant Lambda sandbox.
//! - `--icf=all`: the linker folds identical functions and read-only data into one copy
//!   (monomorphized generics often are identical: three of the SDK's response deserializers,
//!   for one). Rust gives function addresses no identity (rustc marks functions
//!   `unnamed_addr`), so folding them changes no behavior; `--icf=safe` folds only functions
//!   whose address is never taken, and left the webhook over its size budget. zig's linker
//!   driver (cargo lambda's) refuses the flag, so `make build`'s binaries go without it.
//!
//! The console function's build script embeds its files first, then runs this one as a module
//! (`link::main`), hence `pub`.

pub fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
        // zig's linker driver (cargo lambda's, so `make build`'s) refuses `--icf`.
        let zig = std::env::var("RUSTC_LINKER").is_ok_and(|linker| linker.contains("zig"));
        if !zig {
            println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
        }
    }
    // Nothing in the package feeds this script (a change to the script itself reruns it).
    println!("cargo:rerun-if-env-changed=CARGO_CFG_TARGET_OS");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
}
