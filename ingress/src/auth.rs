//! Bearer JWTs (HS256, claims `sub`, `role`, `exp`, and `nbf`, `iss`, `aud` when present
//! or configured): minting them, checking them, and the
//! extractors that hand a handler its authenticated [`Caller`] or reject the request with
//! 401 (no or bad token) or 403 (the wrong role).

use crate::AppState;
use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::actor::{Actor, Role};
use domain::ids::UserId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Clock skew tolerated on `exp` and `nbf`: none. A token is refused from the first
/// second past its `exp`, so `usher token --ttl 1s` is refused two seconds later, as its
/// holder would expect; an issuer whose clock runs ahead should back-date `nbf`.
const LEEWAY_SECS: u64 = 0;

/// The HS256 signing secret. Its `Debug` never shows the value.
#[derive(Debug, Clone)]
pub struct JwtSecret(SecretString);

impl JwtSecret {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// A fresh random secret (244 bits from two v4 uuids), for `usher dev` to persist.
    pub fn generate() -> Self {
        let raw = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        Self(SecretString::from(raw))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<SecretString> for JwtSecret {
    fn from(secret: SecretString) -> Self {
        Self::new(secret)
    }
}

/// What `usher token` signs.
#[derive(Debug, Serialize)]
struct Claims {
    sub: String,
    role: Role,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// What a verified token says of its caller. `exp`, `nbf`, `iss` and `aud` are the
/// validation's to check, from the raw claims: there an `aud` may be one string or an
/// array of them (RFC 7519 §4.1.3), and one of them must match `USHER_JWT_AUDIENCE`.
#[derive(Debug, Deserialize)]
struct Verified {
    sub: String,
    role: Role,
}

/// Signs a token for `sub` with `role`, valid for `ttl` from now.
pub fn mint_token(secret: &JwtSecret, sub: &str, role: Role, ttl: Duration) -> String {
    mint_token_for(secret, sub, role, ttl, &Audience::default())
}

/// Who a token is for: `USHER_JWT_ISSUER` and `USHER_JWT_AUDIENCE`, when configured.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// As [`mint_token`], with `iss` and `aud` from `to` when set. A `ttl` so long that the
/// expiry does not fit is clamped to the far future (`usher token` refuses it first).
pub fn mint_token_for(secret: &JwtSecret, sub: &str, role: Role, ttl: Duration, to: &Audience) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let exp = now.as_secs().saturating_add(ttl.as_secs());
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        exp,
        iat: Some(now.as_secs()),
        iss: to.issuer.clone(),
        aud: to.audience.clone(),
    };
    let key = EncodingKey::from_secret(secret.expose().as_bytes());
    // HMAC accepts any key length and the claims are plain strings and numbers.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .expect("HS256 signing of plain claims cannot fail")
}

/// Checks tokens against the configured secret and, during a rotation, the previous one.
pub struct TokenVerifier {
    key: DecodingKey,
    /// `USHER_JWT_PREVIOUS_SECRET`: tokens minted before the rotation stay valid until
    /// they expire or the variable is removed.
    previous: Option<DecodingKey>,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(secret: &JwtSecret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key: DecodingKey::from_secret(secret.expose().as_bytes()), previous: None, validation }
    }

    /// Requires `iss` and `aud` to be present and to match, for each one that is set.
    pub fn requiring(mut self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = issuer {
            self.validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = audience {
            self.validation.set_audience(&[audience]);
            self.validation.validate_aud = true;
            required.push("aud");
        }
        self.validation.set_required_spec_claims(&required);
        self
    }

    /// Also accepts tokens signed with `previous` (the secret before a rotation).
    pub fn accepting_previous(mut self, previous: Option<&JwtSecret>) -> Self {
        self.previous = previous.map(|p| DecodingKey::from_secret(p.expose().as_bytes()));
        self
    }

    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let mut decoded = jsonwebtoken::decode::<Verified>(token, &self.key, &self.validation);
        if let (Err(e), Some(previous)) = (&decoded, &self.previous) {
            // Only a signature mismatch can be the rotation; an expired or malformed token
            // is refused for what it is.
            if matches!(e.kind(), ErrorKind::InvalidSignature) {
                decoded = jsonwebtoken::decode::<Verified>(token, previous, &self.validation);
            }
        }
        let data = decoded.map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => ApiError::Unauthorized("the token has expired".into()),
            ErrorKind::ImmatureSignature => ApiError::Unauthorized("the token is not valid yet (nbf)".into()),
            ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                ApiError::Unauthorized("the token is for another issuer or audience".into())
            }
            _ => ApiError::Unauthorized("the token is not valid".into()),
        })?;
        let Verified { sub, role } = data.claims;
        if !crate::routes::is_id(&sub) {
            return Err(ApiError::Unauthorized("the token's sub is not valid".into()));
        }
        Ok(Caller { sub: UserId::new(sub), role })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: UserId,
    pub role: Role,
}

impl Caller {
    /// Whether the caller may read a resource that belongs to `owner`.
    pub fn may_read(&self, owner: &UserId) -> bool {
        self.role.is_staff() || &self.sub == owner
    }

    pub fn actor(&self) -> Actor {
        Actor { sub: self.sub.clone(), role: self.role }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
        let caller = state.verifier.verify(token)?;
        if caller.role == Role::Agent {
            state.agents_seen.note(&caller.sub, &state.backend).await;
        }
        Ok(caller)
    }
}

/// Agents this process has already recorded in the user directory, so that only an
/// agent's first request of the process pays a store write.
#[derive(Debug, Default)]
pub struct AgentsSeen(std::sync::Mutex<std::collections::HashSet<UserId>>);

impl AgentsSeen {
    /// Records `agent` once. A failed write is logged and tried again on the next request:
    /// it must not fail the request that happened to carry the token.
    async fn note(&self, agent: &UserId, backend: &infra::Backend) {
        let known = self.0.lock().map(|seen| seen.contains(agent)).unwrap_or(false);
        if known {
            return;
        }
        match backend.users.record_user(agent, Role::Agent, backend.clock.now()).await {
            Ok(()) => {
                if let Ok(mut seen) = self.0.lock() {
                    seen.insert(agent.clone());
                }
            }
            Err(e) => tracing::warn!(user = %agent, error = %e, "cannot record an agent"),
        }
    }
}

/// A caller with the `agent` or `admin` role; a customer gets 403.
#[derive(Debug, Clone)]
pub struct Staff(pub Caller);

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.role.is_staff() {
            return Err(ApiError::Forbidden("agent or admin"));
        }
        Ok(Staff(caller))
    }
}

/// A caller with the `admin` role; anyone else authenticated gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden("admin"));
        }
        Ok(Admin(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> JwtSecret {
        JwtSecret::new(SecretString::from(s))
    }

    #[test]
    fn a_minted_token_verifies_to_its_caller() {
        let s = secret("k1");
        let token = mint_token(&s, "alice", Role::Agent, Duration::from_secs(60));
        let caller = TokenVerifier::new(&s).verify(&token).unwrap();
        assert_eq!(caller, Caller { sub: UserId::new("alice"), role: Role::Agent });
    }

    #[test]
    fn tokens_signed_with_another_secret_or_garbage_are_refused() {
        let token = mint_token(&secret("k1"), "alice", Role::Admin, Duration::from_secs(60));
        let verifier = TokenVerifier::new(&secret("k2"));
        assert!(matches!(verifier.verify(&token), Err(ApiError::Unauthorized(_))));
        assert!(matches!(verifier.verify("not.a.jwt"), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn during_a_rotation_tokens_of_the_previous_secret_still_verify() {
        let (old, new) = (secret("old-secret"), secret("new-secret"));
        let verifier = TokenVerifier::new(&new).accepting_previous(Some(&old));
        let before = mint_token(&old, "alice", Role::Customer, Duration::from_secs(60));
        let after = mint_token(&new, "bob", Role::Agent, Duration::from_secs(60));
        assert_eq!(verifier.verify(&before).unwrap().sub, UserId::new("alice"));
        assert_eq!(verifier.verify(&after).unwrap(), Caller { sub: UserId::new("bob"), role: Role::Agent });
        // A third secret is still refused, and so is an expired token of the previous one.
        let stranger = mint_token(&secret("other"), "eve", Role::Admin, Duration::from_secs(60));
        assert!(matches!(verifier.verify(&stranger), Err(ApiError::Unauthorized(_))));
        let claims = Claims { sub: "alice".into(), role: Role::Customer, exp: 1_000, iat: None, iss: None, aud: None };
        let key = EncodingKey::from_secret(b"old-secret");
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert_eq!(verifier.verify(&expired).unwrap_err().to_string(), "the token has expired");
        // Once the rotation is over (no previous secret), old tokens stop working.
        assert!(matches!(TokenVerifier::new(&new).verify(&before), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let s = secret("k1");
        let claims = Claims { sub: "alice".into(), role: Role::Customer, exp: 1_000, iat: None, iss: None, aud: None };
        let key = EncodingKey::from_secret(b"k1");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        let err = TokenVerifier::new(&s).verify(&token).unwrap_err();
        assert_eq!(err.to_string(), "the token has expired");
    }

    fn signed(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(b"k1")).unwrap()
    }

    fn in_secs(delta: i64) -> u64 {
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + delta) as u64
    }

    #[test]
    fn a_token_is_refused_from_the_second_after_its_exp() {
        let verifier = TokenVerifier::new(&secret("k1"));
        let lapsed = signed(&serde_json::json!({"sub": "alice", "role": "customer", "exp": in_secs(-2)}));
        assert_eq!(verifier.verify(&lapsed).unwrap_err().to_string(), "the token has expired");
        let live = signed(&serde_json::json!({"sub": "alice", "role": "customer", "exp": in_secs(2)}));
        assert!(verifier.verify(&live).is_ok());
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let verifier = TokenVerifier::new(&secret("k1"));
        let early =
            signed(&serde_json::json!({"sub": "alice", "role": "customer", "exp": in_secs(600), "nbf": in_secs(2)}));
        assert_eq!(verifier.verify(&early).unwrap_err().to_string(), "the token is not valid yet (nbf)");
        let ready =
            signed(&serde_json::json!({"sub": "alice", "role": "customer", "exp": in_secs(600), "nbf": in_secs(-1)}));
        assert!(verifier.verify(&ready).is_ok());
    }

    #[test]
    fn issuer_and_audience_when_set_must_match() {
        let s = secret("k1");
        let verifier = TokenVerifier::new(&s).requiring(Some("usher"), Some("api"));
        let to = Audience { issuer: Some("usher".into()), audience: Some("api".into()) };
        let ok = mint_token_for(&s, "alice", Role::Customer, Duration::from_secs(60), &to);
        assert_eq!(verifier.verify(&ok).unwrap().sub, UserId::new("alice"));
        let bare = mint_token(&s, "alice", Role::Customer, Duration::from_secs(60));
        assert!(matches!(verifier.verify(&bare), Err(ApiError::Unauthorized(_))), "iss and aud are required");
        let other = Audience { issuer: Some("usher".into()), audience: Some("elsewhere".into()) };
        let wrong = mint_token_for(&s, "alice", Role::Customer, Duration::from_secs(60), &other);
        assert_eq!(verifier.verify(&wrong).unwrap_err().to_string(), "the token is for another issuer or audience");
        // Unset, neither is checked.
        assert!(TokenVerifier::new(&s).verify(&ok).is_ok());
    }

    #[test]
    fn an_audience_may_be_an_array_that_names_ours() {
        let verifier = TokenVerifier::new(&secret("k1")).requiring(None, Some("api"));
        let token = |aud: serde_json::Value| {
            signed(&serde_json::json!({"sub": "alice", "role": "customer", "exp": in_secs(600), "aud": aud}))
        };
        assert!(verifier.verify(&token(serde_json::json!(["billing", "api"]))).is_ok());
        assert!(verifier.verify(&token(serde_json::json!("api"))).is_ok());
        assert!(verifier.verify(&token(serde_json::json!(["billing"]))).is_err());
        // Without a configured audience, any `aud` is let through.
        assert!(TokenVerifier::new(&secret("k1")).verify(&token(serde_json::json!(["billing"]))).is_ok());
    }

    #[test]
    fn the_secret_never_prints() {
        assert!(!format!("{:?}", secret("hunter2")).contains("hunter2"));
    }
}
