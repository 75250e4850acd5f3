//! `token` and `verifyToken`: the hub's HS256 tokens, signed and checked by core.

use crate::failure::Failure;
use hubbub_core::auth::{self, Claims};
use napi::Result;
use napi_derive::napi;
use serde_json::{Map, Value};

/// How long a token lives, in seconds, when the options give no `expiresIn`.
pub const DEFAULT_EXPIRES_IN: u32 = 3600;

/// What a token grants.
#[napi(object)]
pub struct TokenOptions {
    /// The user's id: the token's `sub`, and the connection's identity on the hub.
    pub user: String,
    /// Channel patterns the user may subscribe to (`*` matches any run of characters).
    pub read: Option<Vec<String>>,
    /// Channel patterns the user may broadcast to.
    pub write: Option<Vec<String>>,
    /// Anything the application wants others to see in presence.
    pub info: Option<Map<String, Value>>,
    /// Seconds until the token expires. Default 3600.
    pub expires_in: Option<u32>,
}

/// The claims of a verified token.
#[napi(object)]
pub struct TokenClaims {
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: Option<i64>,
    /// Issue time, seconds since the Unix epoch.
    pub iat: Option<i64>,
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub info: Option<Map<String, Value>>,
}

/// Mints a token for `options.user`, signed with `secret` (the hub's `token_secret`).
#[napi]
pub fn token(secret: String, options: TokenOptions) -> Result<String> {
    let expires_in = options.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
    let claims = Claims {
        read: options.read.unwrap_or_default(),
        write: options.write.unwrap_or_default(),
        info: options.info,
        ..Claims::new(options.user)
    }
    .issued_now(Some(f64::from(expires_in)));
    auth::sign(secret.as_bytes(), &claims).map_err(|r| Failure::from(r).into())
}

/// Checks a token against `secret` and returns its claims: `INVALID_CREDENTIALS` for a bad
/// signature, another algorithm than HS256 or a malformed token, `TOKEN_EXPIRED` when its
/// `exp` is past. A token without `exp` is accepted.
#[napi]
pub fn verify_token(secret: String, token: String) -> Result<TokenClaims> {
    let claims = auth::verify(secret.as_bytes(), &token, false)
        .map_err(|r| napi::Error::from(Failure::from(r)))?;
    Ok(TokenClaims {
        sub: claims.sub,
        exp: claims.exp.map(|t| t as i64),
        iat: claims.iat.map(|t| t as i64),
        read: claims.read,
        write: claims.write,
        info: claims.info,
    })
}
