//! Random identifiers: session ids and the write tokens that guard rollbacks.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The operating system's random source failed (never seen on Lambda, but not a panic).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(getrandom::Error);

/// `len` random base62 characters (each carries log2(62) ≈ 5.95 bits).
pub fn random_base62(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf)?;
        // Rejection sampling keeps the distribution uniform: 248 = 4 * 62.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(BASE62[(b % 62) as usize] as char);
        }
    }
    Ok(out)
}

/// Base62 characters that hold any 128-bit number (62^22 > 2^128).
pub const BASE62_128_CHARS: usize = 22;

/// `value` in base62, most significant digit first, padded with `0` to
/// [`BASE62_128_CHARS`]: the same number always gives the same text.
pub fn base62_of(mut value: u128) -> String {
    let mut digits = [b'0'; BASE62_128_CHARS];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| b as char).collect()
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(RandomError)
}

/// True when `s` is exactly `len` base62 characters.
pub fn is_base62(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_128_bit_number_is_22_base62_characters_that_read_back_as_it() {
        for value in [0, 1, 61, 62, u128::from(u64::MAX), u128::MAX] {
            let text = base62_of(value);
            assert!(is_base62(&text, BASE62_128_CHARS), "{text}");
            let back = text.bytes().fold(0u128, |n, b| {
                n * 62 + BASE62.iter().position(|&c| c == b).unwrap() as u128
            });
            assert_eq!(back, value, "{text}");
        }
        assert_eq!(base62_of(0), "0".repeat(22));
        assert_eq!(base62_of(61), format!("{}z", "0".repeat(21)));
    }
}
