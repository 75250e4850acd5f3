//! Identities and permissions: configured users, HS256 tokens, anonymous sessions.
//!
//! A permission is a channel pattern in which `*` matches any run of characters (including
//! none). An [`Identity`] holds a `read` and a `write` list of patterns; the
//! [`Authenticator`] turns credentials into an identity or refuses them with the
//! protocol's error name.

use crate::error::{Error, Rejection};
use crate::protocol::Credentials;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Whether `channel` matches `pattern`, where `*` in the pattern matches any run of
/// characters, including none.
pub fn pattern_matches(pattern: &str, channel: &str) -> bool {
    wildcard_matches(pattern.as_bytes(), channel.as_bytes(), |_| true)
}

/// Whether a browser's `Origin` matches an `allowed_origins` pattern, ignoring case. The
/// pattern `*` alone allows every origin; elsewhere `*` matches a run of letters, digits
/// and `-` (one host label, or a port), never a `.`, `/`, `:` or `@`, so that
/// `https://*.example.com` allows `https://eu.example.com` and not
/// `https://evil.com/.example.com` or `https://evil.com:1.example.com`.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern = pattern.to_ascii_lowercase();
    let origin = origin.to_ascii_lowercase();
    wildcard_matches(pattern.as_bytes(), origin.as_bytes(), |b| {
        b.is_ascii_alphanumeric() || b == b'-'
    })
}

/// Matches `c` against `p`, where `*` in `p` matches any run of bytes for which
/// `star_takes` holds.
fn wildcard_matches(p: &[u8], c: &[u8], star_takes: impl Fn(u8) -> bool) -> bool {
    let (mut pi, mut ci) = (0, 0);
    // Where the last `*` was, and how much of the channel it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while ci < c.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ci));
            pi += 1;
        } else if pi < p.len() && p[pi] == c[ci] {
            pi += 1;
            ci += 1;
        } else if let Some((sp, sc)) = star.filter(|&(_, sc)| star_takes(c[sc])) {
            pi = sp + 1;
            ci = sc + 1;
            star = Some((sp, sc + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Read and write patterns.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
}

impl Permissions {
    /// Permissions from two pattern lists.
    pub fn new(read: Vec<String>, write: Vec<String>) -> Permissions {
        Permissions { read, write }
    }

    /// May this identity subscribe to `channel`?
    pub fn can_read(&self, channel: &str) -> bool {
        self.read.iter().any(|p| pattern_matches(p, channel))
    }

    /// May this identity broadcast to `channel`?
    pub fn can_write(&self, channel: &str) -> bool {
        self.write.iter().any(|p| pattern_matches(p, channel))
    }
}

/// Who a connection is, and what it may do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identity {
    /// The user's name or the token's `sub`; `None` for an anonymous session.
    pub user: Option<String>,
    /// The token's `info` claim, shown in presence.
    pub info: Option<serde_json::Map<String, serde_json::Value>>,
    pub permissions: Permissions,
}

impl Identity {
    /// An anonymous session that may read `read` and never writes.
    pub fn anonymous(read: Vec<String>) -> Identity {
        Identity {
            user: None,
            info: None,
            permissions: Permissions::new(read, Vec::new()),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.user.is_none()
    }
}

/// How long a token lasts, in seconds, when whoever mints it gives no lifetime: an hour.
pub const DEFAULT_TOKEN_TTL: u64 = 3600;

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A user configured under `[[users]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub secret: String,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    /// Shown to others in presence and join frames, like a token's `info` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The claims of a hubbub token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id; becomes the connection's identity.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch (a fractional value, which RFC 7519 allows,
    /// is read rounded up).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub exp: Option<u64>,
    /// Not valid before, seconds since the Unix epoch (rounded up, like `exp`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub nbf: Option<u64>,
    /// Issue time, seconds since the Unix epoch.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub iat: Option<u64>,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    /// Anything the application wants others to see in presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Claims {
    /// Claims for `sub` with no permissions, no expiry and no info.
    pub fn new(sub: impl Into<String>) -> Claims {
        Claims {
            sub: sub.into(),
            exp: None,
            nbf: None,
            iat: None,
            read: Vec::new(),
            write: Vec::new(),
            info: None,
        }
    }

    /// Stamps the claims as issued now (`iat`), expiring `ttl_seconds` from now (`exp`), or
    /// never where `ttl_seconds` is `None`. A negative `ttl_seconds` gives a token that has
    /// already expired.
    pub fn issued_now(self, ttl_seconds: Option<f64>) -> Claims {
        let iat = unix_now();
        Claims {
            iat: Some(iat),
            exp: ttl_seconds.map(|ttl| (iat as f64 + ttl).max(0.0).round() as u64),
            ..self
        }
    }

    /// The identity these claims grant.
    pub fn into_identity(self) -> Identity {
        Identity {
            user: Some(self.sub),
            info: self.info,
            permissions: Permissions::new(self.read, self.write),
        }
    }
}

/// Reads a JWT NumericDate: seconds since the Unix epoch, which may be fractional; a
/// fraction is rounded up, so that a token is never taken as valid for longer than it says
/// (`exp`) or sooner than it says (`nbf`).
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(seconds) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if !seconds.is_finite() || !(0.0..=1e15).contains(&seconds) {
        return Err(serde::de::Error::custom("not a date in seconds"));
    }
    Ok(Some(seconds.ceil() as u64))
}

#[cfg(feature = "jwt")]
mod token {
    use super::Claims;
    use crate::error::{Error, Rejection};
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

    /// Signs `claims` as an HS256 JWT with `secret`.
    pub fn sign(secret: &[u8], claims: &Claims) -> Result<String, Rejection> {
        if claims.sub.is_empty() {
            return Err(Error::InvalidPayload.because("token sub is empty"));
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .map_err(|e| Error::InvalidPayload.because(format!("cannot sign token: {e}")))
    }

    /// Checks an HS256 JWT against `secret` and returns its claims.
    ///
    /// A bad signature, any algorithm but HS256 (`none` included), a malformed token or
    /// claims of the wrong shape are `INVALID_CREDENTIALS`; a good signature whose `exp`
    /// is past is `TOKEN_EXPIRED`. Without `require_exp`, a token without `exp` is
    /// accepted (one with `exp` is still checked).
    pub fn verify(secret: &[u8], token: &str, require_exp: bool) -> Result<Claims, Rejection> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        // `exp` and `nbf` are checked below, from claims read as RFC 7519 allows
        // (fractional seconds included), which jsonwebtoken does not.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.required_spec_claims.insert("sub".to_owned());
        let data =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
                .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    Error::TokenExpired.because("the token's exp is past")
                }
                ErrorKind::InvalidSignature => {
                    Error::InvalidCredentials.because("bad token signature")
                }
                ErrorKind::InvalidAlgorithm => {
                    Error::InvalidCredentials.because("tokens must be signed with HS256")
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    Error::InvalidCredentials.because(format!("the token has no {claim} claim"))
                }
                _ => Error::InvalidCredentials.because(format!("malformed token: {e}")),
            })?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(Error::InvalidCredentials.because("the token's sub is empty"));
        }
        let now = super::unix_now();
        match claims.exp {
            None if require_exp => {
                return Err(Error::InvalidCredentials.because("the token has no exp claim"))
            }
            Some(exp) if exp <= now => {
                return Err(Error::TokenExpired.because("the token's exp is past"))
            }
            _ => {}
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(Error::InvalidCredentials.because("the token is not valid yet (nbf)"));
        }
        Ok(claims)
    }
}

#[cfg(feature = "jwt")]
pub use token::{sign, verify};

/// Checks an HTTP API key (the `Bearer` value, if any) against the configured keys, in
/// constant time. With no keys configured, every caller is accepted.
pub fn check_api_key(keys: &[String], given: Option<&str>) -> Result<(), Rejection> {
    if keys.is_empty() {
        return Ok(());
    }
    let Some(given) = given else {
        return Err(Error::InvalidCredentials.because("missing Authorization: Bearer <api-key>"));
    };
    let mut known = false;
    for key in keys {
        known |= constant_time_eq::constant_time_eq(key.as_bytes(), given.as_bytes());
    }
    if known {
        Ok(())
    } else {
        Err(Error::InvalidCredentials.because("unknown API key"))
    }
}

/// Turns credentials into identities, from the configured users, the token secret and the
/// anonymous read patterns.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    users: HashMap<String, User>,
    // Read only where tokens are built in.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    token_secret: Option<Vec<u8>>,
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    token_require_exp: bool,
    anonymous_read: Vec<String>,
}

impl Authenticator {
    /// An authenticator that knows `users`, accepts tokens signed with `token_secret`
    /// (none when unset) and lets anonymous sessions read `anonymous_read`.
    pub fn new(
        users: impl IntoIterator<Item = User>,
        token_secret: Option<&str>,
        token_require_exp: bool,
        anonymous_read: Vec<String>,
    ) -> Authenticator {
        Authenticator {
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            token_secret: token_secret.map(|s| s.as_bytes().to_vec()),
            token_require_exp,
            anonymous_read,
        }
    }

    /// The identity of a new or logged-out connection.
    pub fn anonymous(&self) -> Identity {
        Identity::anonymous(self.anonymous_read.clone())
    }

    /// Checks credentials: `INVALID_USER`, `INVALID_CREDENTIALS` or `TOKEN_EXPIRED` when
    /// they do not hold.
    pub fn authenticate(&self, credentials: &Credentials) -> Result<Identity, Rejection> {
        self.authenticate_with_expiry(credentials)
            .map(|(identity, _)| identity)
    }

    /// Checks credentials as [`Authenticator::authenticate`] does, and also tells when the
    /// identity ends: a token's `exp` (seconds since the Unix epoch), if it has one.
    pub fn authenticate_with_expiry(
        &self,
        credentials: &Credentials,
    ) -> Result<(Identity, Option<u64>), Rejection> {
        match credentials {
            Credentials::User { user, secret } => {
                let known = self.users.get(user).ok_or(Error::InvalidUser)?;
                if !constant_time_eq::constant_time_eq(known.secret.as_bytes(), secret.as_bytes()) {
                    return Err(Error::InvalidCredentials.into());
                }
                let identity = Identity {
                    user: Some(known.name.clone()),
                    info: known.info.clone(),
                    permissions: Permissions::new(known.read.clone(), known.write.clone()),
                };
                Ok((identity, None))
            }
            Credentials::Token { token } => self.verify_token(token),
        }
    }

    #[cfg(feature = "jwt")]
    fn verify_token(&self, token: &str) -> Result<(Identity, Option<u64>), Rejection> {
        let secret = self.token_secret.as_deref().ok_or_else(|| {
            Error::InvalidCredentials.because("tokens are not accepted: no token_secret is set")
        })?;
        let claims = verify(secret, token, self.token_require_exp)?;
        // A token must not pass for a configured user: `direct` by user and presence
        // would mix the two up.
        if self.users.contains_key(&claims.sub) {
            return Err(Error::InvalidCredentials
                .because("the token's sub is the name of a configured user"));
        }
        let exp = claims.exp;
        Ok((claims.into_identity(), exp))
    }

    #[cfg(not(feature = "jwt"))]
    fn verify_token(&self, _token: &str) -> Result<(Identity, Option<u64>), Rejection> {
        Err(Error::InvalidCredentials.because("built without token support"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("room:*", "room:1", true),
            ("room:*", "room:", true),
            ("room:*", "room", false),
            ("room:*", "lobby:1", false),
            ("*:staff", "room:staff", true),
            ("*:staff", "room:staff:x", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("user:42", "user:42", true),
            ("user:42", "user:420", false),
            ("**", "x", true),
            ("a*a", "aaa", true),
            ("a*ab", "aaab", true),
        ];
        for (p, c, want) in cases {
            assert_eq!(pattern_matches(p, c), want, "{p} ~ {c}");
        }
    }

    #[test]
    fn origins() {
        let cases = [
            ("*", "https://anything.example", true),
            ("https://app.example", "https://app.example", true),
            ("https://app.example", "HTTPS://APP.Example", true),
            ("https://app.example", "https://app.example.evil", false),
            ("https://*.example.com", "https://eu.example.com", true),
            ("https://*.example.com", "https://EU.example.com", true),
            (
                "https://*.example.com",
                "https://evil.com/.example.com",
                false,
            ),
            (
                "https://*.example.com",
                "https://evil.com:1.example.com",
                false,
            ),
            ("https://*.example.com", "https://a.b.example.com", false),
            ("https://*.example.com", "https://example.com", false),
            ("http://localhost:*", "http://localhost:5173", true),
            (
                "http://localhost:*",
                "http://localhost:5173.evil.com",
                false,
            ),
        ];
        for (p, o, want) in cases {
            assert_eq!(origin_matches(p, o), want, "{p} ~ {o}");
        }
    }

    fn authenticator() -> Authenticator {
        Authenticator::new(
            [User {
                name: "alice".into(),
                secret: "s3cret".into(),
                read: vec!["*".into()],
                write: vec!["chat:*".into()],
                info: None,
            }],
            Some("token-secret"),
            true,
            vec!["public:*".into()],
        )
    }

    #[test]
    fn users() {
        let a = authenticator();
        let id = a
            .authenticate(&Credentials::User {
                user: "alice".into(),
                secret: "s3cret".into(),
            })
            .unwrap();
        assert_eq!(id.user.as_deref(), Some("alice"));
        assert!(id.permissions.can_write("chat:1"));
        assert!(!id.permissions.can_write("news"));
        let wrong = a.authenticate(&Credentials::User {
            user: "alice".into(),
            secret: "nope".into(),
        });
        assert_eq!(wrong.unwrap_err().error, Error::InvalidCredentials);
        let unknown = a.authenticate(&Credentials::User {
            user: "bob".into(),
            secret: "s3cret".into(),
        });
        assert_eq!(unknown.unwrap_err().error, Error::InvalidUser);
    }

    #[test]
    fn api_keys() {
        let keys = vec!["k1".to_owned(), "k2".to_owned()];
        assert!(check_api_key(&[], None).is_ok());
        assert!(check_api_key(&keys, Some("k2")).is_ok());
        assert_eq!(
            check_api_key(&keys, Some("k3")).unwrap_err().error,
            Error::InvalidCredentials
        );
        assert_eq!(
            check_api_key(&keys, None).unwrap_err().error,
            Error::InvalidCredentials
        );
    }

    #[test]
    fn anonymous_reads_only_its_patterns_and_never_writes() {
        let anon = authenticator().anonymous();
        assert!(anon.is_anonymous());
        assert!(anon.permissions.can_read("public:news"));
        assert!(!anon.permissions.can_read("private"));
        assert!(!anon.permissions.can_write("public:news"));
    }

    #[cfg(feature = "jwt")]
    mod tokens {
        use super::*;
        use base64::Engine;

        fn now() -> u64 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        }

        fn claims(exp: Option<u64>) -> Claims {
            Claims {
                sub: "42".into(),
                exp,
                nbf: None,
                iat: Some(now()),
                read: vec!["room:*".into()],
                write: vec!["room:1".into()],
                info: Some(
                    serde_json::json!({"name": "ann"})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            }
        }

        fn b64(s: &str) -> String {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        }

        #[test]
        fn sign_and_verify() {
            let c = claims(Some(now() + 60));
            let t = sign(b"k", &c).unwrap();
            assert_eq!(verify(b"k", &t, true).unwrap(), c);
            let id = authenticator()
                .authenticate(&Credentials::Token {
                    token: sign(b"token-secret", &c).unwrap(),
                })
                .unwrap();
            assert_eq!(id.user.as_deref(), Some("42"));
            assert!(id.permissions.can_read("room:9"));
            assert!(id.permissions.can_write("room:1"));
            assert!(!id.permissions.can_write("room:2"));
        }

        #[test]
        fn refusals() {
            let good = claims(Some(now() + 60));
            let cases: Vec<(String, Error)> = vec![
                (sign(b"other", &good).unwrap(), Error::InvalidCredentials),
                (
                    sign(b"k", &claims(Some(now() - 5))).unwrap(),
                    Error::TokenExpired,
                ),
                (
                    sign(b"k", &claims(None)).unwrap(),
                    Error::InvalidCredentials,
                ),
                ("not a token".into(), Error::InvalidCredentials),
                ("a.b.c".into(), Error::InvalidCredentials),
                (
                    format!(
                        "{}.{}.",
                        b64(r#"{"alg":"none","typ":"JWT"}"#),
                        b64(&serde_json::to_string(&good).unwrap())
                    ),
                    Error::InvalidCredentials,
                ),
                (
                    jsonwebtoken::encode(
                        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
                        &good,
                        &jsonwebtoken::EncodingKey::from_secret(b"k"),
                    )
                    .unwrap(),
                    Error::InvalidCredentials,
                ),
            ];
            for (token, want) in cases {
                assert_eq!(
                    verify(b"k", &token, true).unwrap_err().error,
                    want,
                    "{token}"
                );
            }
        }

        #[test]
        fn issued_now_stamps_iat_and_exp() {
            let c = Claims::new("42").issued_now(Some(3600.0));
            let iat = c.iat.unwrap();
            assert!(iat.abs_diff(now()) <= 1);
            assert_eq!(c.exp, Some(iat + 3600));
            assert_eq!(Claims::new("42").issued_now(None).exp, None);
            let expired = Claims::new("42").issued_now(Some(-10.0));
            assert_eq!(expired.exp, Some(iat - 10));
        }

        #[test]
        fn exp_may_be_optional() {
            let t = sign(b"k", &claims(None)).unwrap();
            assert!(verify(b"k", &t, false).is_ok());
            let expired = sign(b"k", &claims(Some(now() - 5))).unwrap();
            assert_eq!(
                verify(b"k", &expired, false).unwrap_err().error,
                Error::TokenExpired
            );
        }

        /// Signs raw claims, as another JWT library might write them.
        fn raw(claims: serde_json::Value) -> String {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(b"k"),
            )
            .unwrap()
        }

        #[test]
        fn fractional_dates_and_not_before() {
            let later = now() as f64 + 60.5;
            let ok = verify(
                b"k",
                &raw(serde_json::json!({"sub": "1", "exp": later})),
                true,
            )
            .unwrap();
            assert_eq!(ok.exp, Some(later.ceil() as u64));
            let past = now() as f64 - 5.25;
            assert_eq!(
                verify(
                    b"k",
                    &raw(serde_json::json!({"sub": "1", "exp": past})),
                    true
                )
                .unwrap_err()
                .error,
                Error::TokenExpired
            );
            let not_yet = serde_json::json!({"sub": "1", "exp": now() + 60, "nbf": now() + 30});
            let err = verify(b"k", &raw(not_yet), true).unwrap_err();
            assert_eq!(err.error, Error::InvalidCredentials);
            assert!(err.reason.unwrap().contains("nbf"));
            let started = serde_json::json!({"sub": "1", "exp": now() + 60, "nbf": now() - 1});
            assert!(verify(b"k", &raw(started), true).is_ok());
            for bad in [
                serde_json::json!({"sub": "1", "exp": "soon"}),
                serde_json::json!({"sub": "1", "exp": -1}),
                serde_json::json!({"sub": "1", "exp": 1e300}),
            ] {
                assert_eq!(
                    verify(b"k", &raw(bad.clone()), true).unwrap_err().error,
                    Error::InvalidCredentials,
                    "{bad}"
                );
            }
        }

        #[test]
        fn a_token_cannot_pass_for_a_configured_user() {
            let alice = Claims {
                exp: Some(now() + 60),
                ..Claims::new("alice")
            };
            let token = sign(b"token-secret", &alice).unwrap();
            let err = authenticator()
                .authenticate(&Credentials::Token { token })
                .unwrap_err();
            assert_eq!(err.error, Error::InvalidCredentials);
        }

        #[test]
        fn no_secret_no_tokens() {
            let a = Authenticator::new([], None, true, vec![]);
            let t = sign(b"k", &claims(Some(now() + 60))).unwrap();
            let err = a
                .authenticate(&Credentials::Token { token: t })
                .unwrap_err();
            assert_eq!(err.error, Error::InvalidCredentials);
        }
    }
}
