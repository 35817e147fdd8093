//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30-second steps, ±1 step accepted.
//! A code is accepted only for a step after the last one used (no replay).

use ring::hmac;

use crate::crypto::random_bytes;
use crate::error::AuthError;

pub const STEP_S: i64 = 30;
pub const DIGITS: u32 = 6;
pub const SECRET_LEN: usize = 20;

pub fn generate_secret() -> Result<[u8; SECRET_LEN], AuthError> {
    random_bytes::<SECRET_LEN>()
}

/// The HOTP value for `counter`, `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = (u32::from(mac[offset]) & 0x7f) << 24
        | u32::from(mac[offset + 1]) << 16
        | u32::from(mac[offset + 2]) << 8
        | u32::from(mac[offset + 3]);
    binary % 10u32.pow(digits)
}

pub fn step_at(now_s: i64) -> i64 {
    now_s.div_euclid(STEP_S)
}

pub fn code_at(secret: &[u8], now_s: i64) -> String {
    format!("{:06}", hotp(secret, step_at(now_s).max(0) as u64, DIGITS))
}

/// The step the code belongs to when it is valid at `now_s` (±1 step) and newer than
/// `last_used_step`; `None` otherwise. All candidate steps are computed (no early exit).
pub fn verify(secret: &[u8], code: &str, now_s: i64, last_used_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code.parse().ok()?;
    let now = step_at(now_s);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        if step < 0 {
            continue;
        }
        let matches = hotp(secret, step as u64, DIGITS) == given;
        if matches && last_used_step.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect in `otpauth://` URIs.
pub fn base32(data: &[u8]) -> String {
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The provisioning URI an authenticator app reads (usually shown as a QR code).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let issuer_enc = utf8_percent_encode(issuer, NON_ALPHANUMERIC);
    let account_enc = utf8_percent_encode(account, NON_ALPHANUMERIC);
    format!(
        "otpauth://totp/{issuer_enc}:{account_enc}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        for (time, expected) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(
                hotp(RFC_SECRET, step_at(time) as u64, 8),
                expected,
                "t={time}"
            );
            assert_eq!(
                code_at(RFC_SECRET, time),
                format!("{:06}", expected % 1_000_000)
            );
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), *value);
        }
    }

    #[test]
    fn window_and_replay() {
        let now = 1_700_000_000;
        let code = code_at(RFC_SECRET, now);
        let step = step_at(now);
        assert_eq!(verify(RFC_SECRET, &code, now, None), Some(step));
        assert_eq!(
            verify(RFC_SECRET, &code, now + STEP_S, None),
            Some(step),
            "one step late"
        );
        assert_eq!(
            verify(RFC_SECRET, &code, now - STEP_S, None),
            Some(step),
            "one step early"
        );
        assert_eq!(
            verify(RFC_SECRET, &code, now + 2 * STEP_S, None),
            None,
            "too late"
        );
        assert_eq!(verify(RFC_SECRET, &code, now, Some(step)), None, "replay");
        assert_eq!(verify(RFC_SECRET, &code, now, Some(step - 1)), Some(step));
        assert_eq!(verify(RFC_SECRET, "12345", now, None), None);
        assert_eq!(verify(RFC_SECRET, "abcdef", now, None), None);
    }

    #[test]
    fn base32_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), encoded);
        }
        let uri = otpauth_uri("medicus", "alice@example", RFC_SECRET);
        assert!(uri.starts_with(
            "otpauth://totp/medicus:alice%40example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"
        ));
    }
}
