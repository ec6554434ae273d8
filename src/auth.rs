//! Bearer tokens: HS256 JWTs whose claims name the user, the organization
//! and the role. Verifying one yields [`Claims`]; the store turns them into a
//! [`Principal`] by provisioning the organization and user on first sight.

use std::{fs, io::Write, path::Path};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    config::{Config, RoleArg, TokenArgs},
    error::AppError,
};

/// Longest organization slug accepted in a token.
const MAX_SLUG_CHARS: usize = 64;

/// What a token says about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id at the identity provider.
    pub sub: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Organization slug.
    pub org: String,
    /// `admin` or `member`.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// A user's role in their organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    /// The stored and public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Member => "MEMBER",
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: entity::organization::Model,
    pub user: entity::user::Model,
    pub role: Role,
}

impl Principal {
    /// Refuses anyone but an admin of the organization.
    pub fn require_admin(&self, action: &str) -> Result<(), AppError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Only an admin of this organization may {action}."
            )))
        }
    }
}

/// Signing and verifying keys derived from the configured secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// Keys for an HS256 secret.
    pub fn from_secret(secret: &str) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// Signs a token for these claims.
    pub fn mint(&self, claims: &Claims) -> anyhow::Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .context("signing a token")
    }

    /// Mints a token from the `token` subcommand's arguments.
    pub fn mint_for(&self, args: &TokenArgs) -> anyhow::Result<String> {
        let exp = jsonwebtoken::get_current_timestamp() + args.ttl.as_secs();
        let name = args
            .name
            .clone()
            .unwrap_or_else(|| args.email.split('@').next().unwrap_or("").to_owned());
        let claims = Claims {
            sub: args.sub.clone().unwrap_or_else(|| args.email.clone()),
            email: args.email.clone(),
            name,
            org: args.org.clone(),
            role: match args.role {
                RoleArg::Admin => "admin",
                RoleArg::Member => "member",
            }
            .to_owned(),
            exp,
        };
        validate_claims(&claims).map_err(|e| anyhow::anyhow!(e.message()))?;
        self.mint(&claims)
    }

    /// Verifies an `Authorization` header value and returns its claims.
    pub fn verify_header(&self, header: Option<&str>) -> Result<(Claims, Role), AppError> {
        let header = header.ok_or_else(|| {
            AppError::Unauthenticated(
                "Send an 'Authorization: Bearer <token>' header; `okr-pulse token` mints one."
                    .to_owned(),
            )
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                AppError::Unauthenticated(
                    "The Authorization header must be 'Bearer <token>'.".to_owned(),
                )
            })?
            .trim();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidSignature => "the token's signature does not match",
                    ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => {
                        "the token lacks required claims (sub, email, org, role, exp)"
                    }
                    _ => "the token is not a valid HS256 JWT",
                };
                AppError::Unauthenticated(format!("Authentication failed: {why}."))
            })?;
        let role = validate_claims(&data.claims)?;
        Ok((data.claims, role))
    }
}

/// Checks the claims okr-pulse relies on and returns the role.
fn validate_claims(claims: &Claims) -> Result<Role, AppError> {
    let role = match claims.role.to_ascii_lowercase().as_str() {
        "admin" => Role::Admin,
        "member" => Role::Member,
        other => {
            return Err(AppError::Unauthenticated(format!(
                "Authentication failed: role '{other}' is neither 'admin' nor 'member'."
            )));
        }
    };
    let slug_ok = !claims.org.is_empty()
        && claims.org.len() <= MAX_SLUG_CHARS
        && claims
            .org
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !slug_ok {
        return Err(AppError::Unauthenticated(format!(
            "Authentication failed: org '{}' must be 1–{MAX_SLUG_CHARS} lowercase letters, digits, '-' or '_'.",
            claims.org
        )));
    }
    if claims.sub.trim().is_empty() || claims.email.trim().is_empty() {
        return Err(AppError::Unauthenticated(
            "Authentication failed: the token's sub and email must not be empty.".to_owned(),
        ));
    }
    Ok(role)
}

/// The secret in force: the configured one, or the one generated into the
/// data folder on first start (mode 0600), so tokens survive restarts.
pub fn load_or_create_secret(config: &Config) -> anyhow::Result<String> {
    if let Some(secret) = &config.auth_jwt_secret {
        anyhow::ensure!(
            secret.len() >= 16,
            "AUTH_JWT_SECRET must be at least 16 characters long"
        );
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("jwt-secret");
    if path.exists() {
        let secret = fs::read_to_string(&path)
            .with_context(|| format!("reading the JWT secret from {}", path.display()))?;
        return Ok(secret.trim().to_owned());
    }
    fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data folder {}", config.data_dir.display()))?;
    let secret = generate_secret();
    write_private(&path, &secret)?;
    Ok(secret)
}

/// 32 random bytes as hex.
fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: &str, org: &str) -> Claims {
        Claims {
            sub: "u1".into(),
            email: "a@example.com".into(),
            name: "A".into(),
            org: org.into(),
            role: role.into(),
            exp: jsonwebtoken::get_current_timestamp() + 60,
        }
    }

    #[test]
    fn a_token_signed_with_the_secret_verifies_with_its_role() {
        let keys = TokenKeys::from_secret("0123456789abcdef");
        let token = keys.mint(&claims("admin", "acme")).unwrap();
        let (c, role) = keys
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(c.org, "acme");
        assert_eq!(role, Role::Admin);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = TokenKeys::from_secret("another-secret-123")
            .mint(&claims("admin", "acme"))
            .unwrap();
        let err = TokenKeys::from_secret("0123456789abcdef")
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap_err();
        assert_eq!(err.extension_code(), "UNAUTHENTICATED");
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::from_secret("0123456789abcdef");
        let mut c = claims("member", "acme");
        c.exp = jsonwebtoken::get_current_timestamp() - 3600;
        let token = keys.mint(&c).unwrap();
        let err = keys
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap_err();
        assert!(err.message().contains("expired"), "{}", err.message());
    }

    #[test]
    fn unknown_roles_and_malformed_org_slugs_are_refused() {
        let keys = TokenKeys::from_secret("0123456789abcdef");
        for c in [claims("owner", "acme"), claims("admin", "Acme Corp")] {
            let token = keys.mint(&c).unwrap();
            assert!(
                keys.verify_header(Some(&format!("Bearer {token}")))
                    .is_err()
            );
        }
    }

    #[test]
    fn a_missing_or_non_bearer_header_is_unauthenticated() {
        let keys = TokenKeys::from_secret("0123456789abcdef");
        assert_eq!(
            keys.verify_header(None).unwrap_err().extension_code(),
            "UNAUTHENTICATED"
        );
        assert!(keys.verify_header(Some("Basic abc")).is_err());
    }
}
