//! `token` and `verifyToken`: the hub's HS256 tokens, signed and checked by core.

use crate::error;
use hubbub_core::auth::{self, Claims, DEFAULT_TOKEN_TTL};
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::{Map, Value};

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

/// How `verifyToken` checks.
#[napi(object)]
#[derive(Default)]
pub struct VerifyOptions {
    /// Refuse a token without `exp` (`INVALID_CREDENTIALS`), as a hub does unless its config
    /// sets `token_require_exp = false`. Default true.
    pub require_exp: Option<bool>,
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

/// The secret as bytes: a missing or empty one is a mistake in the caller's setup (an
/// environment variable not set), said plainly rather than as a type conversion.
fn secret_bytes(secret: &Option<String>) -> Result<&[u8]> {
    match secret.as_deref() {
        None => Err(error::invalid_arg(
            "the token secret is missing (undefined or null): pass the hub's token_secret, \
             e.g. process.env.HUBBUB_TOKEN_SECRET, and check that it is set",
        )),
        Some("") => Err(error::invalid_arg("the token secret is empty")),
        Some(s) => Ok(s.as_bytes()),
    }
}

/// Mints a token for `options.user`, signed with `secret` (the hub's `token_secret`).
#[napi(ts_args_type = "secret: string, options: TokenOptions")]
pub fn token(env: &Env, secret: Option<String>, options: TokenOptions) -> Result<String> {
    let key = secret_bytes(&secret)?;
    let expires_in = options
        .expires_in
        .map_or(DEFAULT_TOKEN_TTL as f64, f64::from);
    let claims = Claims {
        read: options.read.unwrap_or_default(),
        write: options.write.unwrap_or_default(),
        info: options.info,
        ..Claims::new(options.user)
    }
    .issued_now(Some(expires_in));
    auth::sign(key, &claims).map_err(|r| error::rejection(env, r))
}

/// Checks a token against `secret` the way a hub does and returns its claims:
/// `INVALID_CREDENTIALS` for a bad signature, another algorithm than HS256, a malformed
/// token, or no `exp` (unless `options.requireExp` is false); `TOKEN_EXPIRED` when its
/// `exp` is past.
#[napi(ts_args_type = "secret: string, token: string, options?: VerifyOptions")]
pub fn verify_token(
    env: &Env,
    secret: Option<String>,
    token: String,
    options: Option<VerifyOptions>,
) -> Result<TokenClaims> {
    let key = secret_bytes(&secret)?;
    let require_exp = options.unwrap_or_default().require_exp.unwrap_or(true);
    let claims = auth::verify(key, &token, require_exp).map_err(|r| error::rejection(env, r))?;
    Ok(TokenClaims {
        sub: claims.sub,
        exp: claims.exp.map(|t| t as i64),
        iat: claims.iat.map(|t| t as i64),
        read: claims.read,
        write: claims.write,
        info: claims.info,
    })
}
