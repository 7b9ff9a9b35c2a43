//! INCRBYFLOAT's arithmetic, reproducing Redis on x86-64 exactly: Redis
//! parses both operands with `strtold` into an x87 80-bit `long double`,
//! adds them in that precision, and prints the sum with `%.17Lf` minus
//! trailing zeros. So `INCRBYFLOAT k 1000.1` on a missing key answers
//! `1000.09999999999999998`, and clients (and tests recorded against
//! Redis) expect those digits.
//!
//! The 80-bit arithmetic is software (`rustc_apfloat`, LLVM's APFloat:
//! correctly rounded parse and add); the printing is exact decimal
//! expansion with round-half-even at the 17th fractional digit, as glibc
//! prints. Deterministic on every platform: apply never uses the host's
//! floating point here.

use rustc_apfloat::ieee::X87DoubleExtended as F80;
use rustc_apfloat::{Float, Round, Status};

/// The Redis reply to an operand `strtold` would not take whole.
pub const ERROR_NOT_FLOAT: &str = "ERR value is not a valid float";
/// The Redis reply when the sum is infinite or NaN.
pub const ERROR_NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";

/// Longest operand Redis parses (`MAX_LONG_DOUBLE_CHARS`).
const OPERAND_BYTES_MAX: usize = 5 * 1024;

/// Parse `text` as Redis's `string2ld` would: all of it, no leading space,
/// a decimal or hexadecimal float or inf/infinity (any case); not NaN, not
/// a value that overflows or underflows to zero. `None`: not a valid float.
pub fn parse(text: &[u8]) -> Option<F80> {
    if text.is_empty() || text.len() >= OPERAND_BYTES_MAX {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let (negative, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        let inf = F80::INFINITY;
        return Some(if negative { -inf } else { inf });
    }
    let normalized =
        if let Some(hex) = lower.strip_prefix("0x") { normalize_hex(hex)? } else { normalize_decimal(&lower)? };
    let signed = if negative { format!("-{normalized}") } else { normalized };
    let parsed = F80::from_str_r(&signed, Round::NearestTiesToEven).ok()?;
    if parsed.status.contains(Status::OVERFLOW) || parsed.value.is_infinite() || parsed.value.is_nan() {
        return None;
    }
    if parsed.value.is_zero() && parsed.status.contains(Status::UNDERFLOW) {
        return None;
    }
    Some(parsed.value)
}

/// `digits [. digits] [e [sign] digits]` with at least one mantissa digit.
fn normalize_decimal(body: &str) -> Option<String> {
    let (mantissa, exponent) = match body.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int) || !digits_ok(frac) || int.len() + frac.len() == 0 {
        return None;
    }
    if let Some(exponent) = exponent {
        let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if unsigned.is_empty() || !digits_ok(unsigned) {
            return None;
        }
    }
    let int = if int.is_empty() { "0" } else { int };
    let frac = if frac.is_empty() { "0" } else { frac };
    Some(match exponent {
        Some(exponent) => format!("{int}.{frac}e{exponent}"),
        None => format!("{int}.{frac}"),
    })
}

/// `hexdigits [. hexdigits] [p [sign] digits]` (after `0x`).
fn normalize_hex(body: &str) -> Option<String> {
    let (mantissa, exponent) = match body.split_once('p') {
        Some((m, e)) => (m, e),
        None => (body, "0"),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let hex_ok = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if !hex_ok(int) || !hex_ok(frac) || int.len() + frac.len() == 0 || unsigned.is_empty() {
        return None;
    }
    if !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = if int.is_empty() { "0" } else { int };
    Some(if frac.is_empty() { format!("0x{int}p{exponent}") } else { format!("0x{int}.{frac}p{exponent}") })
}

/// `current + increment` as Redis stores and answers it, or the error.
/// `current` is the key's value (`None`: missing, which counts as 0).
pub fn incr_by_float(current: Option<&[u8]>, increment: &[u8]) -> Result<String, &'static str> {
    let base = match current {
        None => F80::ZERO,
        Some(text) => parse(text).ok_or(ERROR_NOT_FLOAT)?,
    };
    let increment = parse(increment).ok_or(ERROR_NOT_FLOAT)?;
    let sum = base.add_r(increment, Round::NearestTiesToEven).value;
    if sum.is_nan() || sum.is_infinite() {
        return Err(ERROR_NAN_OR_INFINITY);
    }
    Ok(format_human(sum))
}

/// `%.17Lf` of a finite value, trailing fractional zeros and a bare `.`
/// removed, `-0` printed as `0`.
pub fn format_human(value: F80) -> String {
    let bits = value.to_bits();
    let negative = (bits >> 79) & 1 == 1;
    let biased = ((bits >> 64) & 0x7fff) as i32;
    let significand = bits as u64;
    // value = significand * 2^exp2 (the integer bit is explicit).
    let exp2 = if biased == 0 { 1 - 16383 - 63 } else { biased - 16383 - 63 };
    let mut text = if exp2 >= 0 {
        let mut digits = big_decimal(significand, exp2 as u32);
        digits.push_str(".00000000000000000");
        digits
    } else {
        fixed_17(significand, (-exp2) as u32)
    };
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    if negative && text != "0" {
        text.insert(0, '-');
    }
    text
}

const FRACTION_SCALE: u128 = 100_000_000_000_000_000; // 10^17

/// `significand / 2^shift` with 17 fractional digits, rounded half to even.
fn fixed_17(significand: u64, shift: u32) -> String {
    // significand * 10^17 < 2^64 * 2^57: fits in u128.
    let scaled = u128::from(significand) * FRACTION_SCALE;
    let units = if shift >= 128 {
        0 // below 2^-6 of one unit: rounds to zero
    } else {
        let quotient = scaled >> shift;
        let remainder = scaled - (quotient << shift);
        let half = 1u128 << (shift - 1);
        if remainder > half || (remainder == half && quotient & 1 == 1) {
            quotient + 1
        } else {
            quotient
        }
    };
    format!("{}.{:017}", units / FRACTION_SCALE, units % FRACTION_SCALE)
}

/// The decimal digits of `significand * 2^shift` (an integer).
fn big_decimal(significand: u64, shift: u32) -> String {
    const BASE: u64 = 1_000_000_000;
    // Little-endian limbs in base 10^9.
    let mut limbs: Vec<u64> = vec![significand % BASE, (significand / BASE) % BASE, significand / BASE / BASE];
    let mut remaining = shift;
    while remaining > 0 {
        let step = remaining.min(29); // limb * 2^29 + carry < 2^64
        let mut carry = 0u64;
        for limb in limbs.iter_mut() {
            let product = (*limb << step) + carry;
            *limb = product % BASE;
            carry = product / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
        remaining -= step;
    }
    while limbs.len() > 1 && *limbs.last().expect("non-empty") == 0 {
        limbs.pop();
    }
    let mut text = limbs.last().expect("non-empty").to_string();
    for limb in limbs.iter().rev().skip(1) {
        text.push_str(&format!("{limb:09}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(current: Option<&str>, by: &str) -> Result<String, &'static str> {
        incr_by_float(current.map(str::as_bytes), by.as_bytes())
    }

    /// Every expected string below is what redis-server 7.0.15 answered
    /// on x86-64 to the same INCRBYFLOAT.
    #[test]
    fn sums_print_the_digits_redis_prints() {
        assert_eq!(incr(None, "1000.1").unwrap(), "1000.09999999999999998");
        assert_eq!(incr(None, "0.1").unwrap(), "0.1");
        assert_eq!(incr(None, "123456.789").unwrap(), "123456.78900000000000148");
        assert_eq!(incr(None, "1e20").unwrap(), "100000000000000000000");
        assert_eq!(incr(None, "3.0e3").unwrap(), "3000");
        assert_eq!(incr(None, "-0").unwrap(), "0");
        assert_eq!(incr(None, "1e-20").unwrap(), "0");
        assert_eq!(incr(None, "-1e-20").unwrap(), "0");
        assert_eq!(incr(None, "99999999.99").unwrap(), "99999999.98999999999796273");
        assert_eq!(incr(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(incr(Some("1000.1"), "1000.2").unwrap(), "2000.30000000000000004");
        assert_eq!(incr(None, "1.5e-10").unwrap(), "0.00000000015");
        assert_eq!(incr(None, "5e-18").unwrap(), "0");
        assert_eq!(incr(None, "6e-18").unwrap(), "0.00000000000000001");
        assert_eq!(incr(None, "0x10").unwrap(), "16");
        assert_eq!(incr(None, "0x1p3").unwrap(), "8");
        assert_eq!(incr(None, "+5").unwrap(), "5");
        assert_eq!(incr(None, ".5").unwrap(), "0.5");
        assert_eq!(incr(None, "5.").unwrap(), "5");
        assert_eq!(incr(None, "0.1e1").unwrap(), "1");
        assert_eq!(incr(None, "1E2").unwrap(), "100");
        assert_eq!(incr(None, "1e-4940").unwrap(), "0");
        assert!(incr(None, "1e300").unwrap().starts_with("1000000000000000000008997324079559193870523944273290747938"));
    }

    #[test]
    fn invalid_operands_and_infinite_sums_are_errors() {
        for bad in ["nan", " 1", "1 ", "1e5000", "1e-5000", "1e", "", ".", "e5", "0x", "1.2.3", "--1", "1e+"] {
            assert_eq!(incr(None, bad), Err(ERROR_NOT_FLOAT), "{bad:?}");
        }
        for infinite in ["inf", "infinity", "-INF", "+Inf"] {
            assert_eq!(incr(None, infinite), Err(ERROR_NAN_OR_INFINITY), "{infinite:?}");
        }
        assert_eq!(incr(Some("abc"), "1"), Err(ERROR_NOT_FLOAT));
        assert_eq!(incr(Some("1e4932"), "1e4932"), Err(ERROR_NAN_OR_INFINITY));
    }
}
