//! Token verification, three ways:
//! - any text as a token: `verify` never panics, and whatever it accepts is a token whose
//!   claims hold (a non-empty `sub`, an `exp` in the future);
//! - any header and claims JSON, correctly signed: the claims reader (fractional dates,
//!   odd types) is reached past the signature and still never panics;
//! - any claims, signed then verified: the same claims come back, or the refusal that the
//!   claims call for (expired, not valid yet, no `exp` where one is required); another
//!   secret is always refused.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hubbub_core::auth::{sign, unix_now, verify, Claims};
use hubbub_core::Error;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Case {
    AnyToken {
        secret: Vec<u8>,
        token: String,
        require_exp: bool,
    },
    SignedJson {
        secret: Vec<u8>,
        header: String,
        claims: String,
        require_exp: bool,
    },
    RoundTrip {
        secret: Vec<u8>,
        sub: String,
        exp: Option<Date>,
        nbf: Option<Date>,
        iat: Option<u64>,
        read: Vec<String>,
        write: Vec<String>,
        require_exp: bool,
    },
}

/// A date near now (the interesting boundary) or anywhere.
#[derive(Debug, Arbitrary)]
enum Date {
    FromNow(i16),
    Absolute(u64),
}

impl Date {
    fn seconds(&self, now: u64) -> u64 {
        match *self {
            Date::FromNow(d) => now.saturating_add_signed(i64::from(d)),
            Date::Absolute(s) => s,
        }
    }
}

/// Claims that `verify` accepted must be usable as they are.
fn check_accepted(claims: &Claims, require_exp: bool, before: u64) {
    assert!(!claims.sub.is_empty(), "accepted an empty sub");
    match claims.exp {
        Some(exp) => assert!(exp > before, "accepted exp {exp} at {before}"),
        None => assert!(!require_exp, "accepted a token without exp"),
    }
    if let Some(nbf) = claims.nbf {
        assert!(nbf <= unix_now(), "accepted nbf {nbf}");
    }
}

fuzz_target!(|case: Case| {
    match case {
        Case::AnyToken {
            secret,
            token,
            require_exp,
        } => {
            let before = unix_now();
            if let Ok(claims) = verify(&secret, &token, require_exp) {
                check_accepted(&claims, require_exp, before);
            }
        }
        Case::SignedJson {
            secret,
            header,
            claims,
            require_exp,
        } => {
            let message = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims)
            );
            let signature = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(&secret),
                Algorithm::HS256,
            )
            .expect("HS256 signs anything");
            let before = unix_now();
            if let Ok(claims) = verify(&secret, &format!("{message}.{signature}"), require_exp) {
                check_accepted(&claims, require_exp, before);
            }
        }
        Case::RoundTrip {
            secret,
            sub,
            exp,
            nbf,
            iat,
            read,
            write,
            require_exp,
        } => {
            let now = unix_now();
            let claims = Claims {
                exp: exp.map(|d| d.seconds(now)),
                nbf: nbf.map(|d| d.seconds(now)),
                iat,
                read,
                write,
                ..Claims::new(sub)
            };
            let token = match sign(&secret, &claims) {
                Ok(token) => token,
                Err(e) => {
                    assert!(claims.sub.is_empty(), "refused to sign {claims:?}: {e:?}");
                    return;
                }
            };
            // Dates beyond 1e15 s are refused as malformed (no real token has them).
            let far = |d: Option<u64>| d.is_some_and(|d| d > 1_000_000_000_000_000);
            let result = verify(&secret, &token, require_exp);
            let after = unix_now();
            match result {
                Ok(back) => {
                    assert_eq!(back, claims);
                    check_accepted(&back, require_exp, now);
                }
                Err(e) => {
                    let expected = far(claims.exp)
                        || far(claims.nbf)
                        || far(claims.iat)
                        || (claims.exp.is_none() && require_exp)
                        || claims.exp.is_some_and(|exp| exp <= after)
                        || claims.nbf.is_some_and(|nbf| nbf > now);
                    assert!(expected, "refused {claims:?}: {e:?}");
                    if e.error == Error::TokenExpired {
                        assert!(claims.exp.is_some_and(|exp| exp <= after));
                    }
                }
            }
            // The same token under any other secret is refused.
            let mut other = secret.clone();
            // (Not a trailing zero byte: HMAC pads short keys with zeros, so K and K+[0] are one key.)
            other.push(1);
            assert!(verify(&other, &token, false).is_err());
        }
    }
});
