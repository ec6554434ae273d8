//! Bearer tokens: HS256 JWTs whose claims name the user, the organization
//! and the role. Verifying one yields [`Claims`]; the [`Authenticator`]
//! turns them into a [`Principal`] by provisioning the organization and
//! user on first sight. HTTP requests and WebSocket connections both go
//! through the one [`Authenticator`].

mod cache;

use std::{fs, io::Write, path::Path, time::Duration};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

pub use entity::enums::Role;

pub use crate::store::Principal;
use crate::{
    config::{Config, RoleArg, TokenArgs},
    error::AppError,
    store::orgs::{self, Identity},
};
use cache::PrincipalCache;

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
    /// Not valid before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Verifies bearer tokens and provisions their callers: the one way a
/// request or a WebSocket connection learns who it serves.
#[derive(Clone)]
pub struct Authenticator {
    keys: TokenKeys,
    db: DatabaseConnection,
    cache: PrincipalCache,
}

impl Authenticator {
    /// An authenticator with these keys over this database, reusing a
    /// resolved caller for `cache_ttl`.
    pub fn new(keys: TokenKeys, db: DatabaseConnection, cache_ttl: Duration) -> Self {
        Authenticator {
            keys,
            db,
            cache: PrincipalCache::new(cache_ttl),
        }
    }

    /// Forgets the cached callers of an organization whose settings changed.
    pub fn forget_org(&self, org_id: &str) {
        self.cache.forget_org(org_id);
    }

    /// The keys tokens are signed with.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The caller an `Authorization` header value names. A bad token is
    /// `UNAUTHENTICATED`; a failure to provision the caller (the database
    /// is down) is `INTERNAL`, so a client retries instead of logging out.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AppError> {
        Ok(self.authenticate_with_expiry(header).await?.0)
    }

    /// The caller, and when their token expires (seconds since the epoch):
    /// a WebSocket closes then.
    pub async fn authenticate_with_expiry(
        &self,
        header: Option<&str>,
    ) -> Result<(Principal, u64), AppError> {
        let (claims, role) = self.keys.verify_header(header)?;
        let identity = Identity {
            org: &claims.org,
            subject: &claims.sub,
            email: &claims.email,
            name: &claims.name,
            role,
        };
        let principal = match self.cache.get(&identity) {
            Some(principal) => principal,
            None => {
                let principal = orgs::provision(&self.db, identity).await?;
                self.cache.put(&identity, &principal);
                principal
            }
        };
        Ok((principal, claims.exp))
    }
}

/// Signing and verifying keys derived from the configured secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Furthest ahead a token's `exp` may be: a token that lives for years
    /// cannot be taken back short of rotating the secret.
    max_lifetime: u64,
}

/// Default furthest `exp` ahead (`AUTH_MAX_TOKEN_LIFETIME`): 31 days.
pub const DEFAULT_MAX_TOKEN_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(31 * 24 * 3600);

/// Longest `sub`, `name` or `email` claim, in characters.
pub const MAX_CLAIM_CHARS: usize = 320;

impl TokenKeys {
    /// Keys for an HS256 secret.
    pub fn from_secret(secret: &str) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME.as_secs(),
        }
    }

    /// The same keys, refusing tokens whose `exp` is more than `lifetime` ahead.
    pub fn with_max_lifetime(mut self, lifetime: std::time::Duration) -> Self {
        self.max_lifetime = lifetime.as_secs();
        self
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
            nbf: None,
        };
        self.validate_claims(&claims)
            .map_err(|e| anyhow::anyhow!(e.message()))?;
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
        // Clocks of well-run hosts agree within seconds; a minute of leeway
        // (the library's default) would keep expired tokens alive.
        validation.leeway = JWT_LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                    ErrorKind::InvalidSignature => "the token's signature does not match",
                    ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => {
                        "the token lacks required claims (sub, email, org, role, exp)"
                    }
                    _ => "the token is not a valid HS256 JWT",
                };
                AppError::Unauthenticated(format!("Authentication failed: {why}."))
            })?;
        let role = self.validate_claims(&data.claims)?;
        Ok((data.claims, role))
    }

    /// Checks the claims okr-pulse relies on and returns the role.
    fn validate_claims(&self, claims: &Claims) -> Result<Role, AppError> {
        let latest = jsonwebtoken::get_current_timestamp() + self.max_lifetime + JWT_LEEWAY_SECONDS;
        if claims.exp > latest {
            return Err(AppError::Unauthenticated(format!(
                "Authentication failed: the token expires more than {} days ahead (AUTH_MAX_TOKEN_LIFETIME); mint one that expires sooner.",
                self.max_lifetime / 86_400
            )));
        }
        for (claim, value) in [
            ("sub", &claims.sub),
            ("name", &claims.name),
            ("email", &claims.email),
        ] {
            if value.chars().count() > MAX_CLAIM_CHARS {
                return Err(AppError::Unauthenticated(format!(
                    "Authentication failed: the token's {claim} claim is longer than {MAX_CLAIM_CHARS} characters."
                )));
            }
        }
        check_claims(claims)
    }
}

/// Checks the claims okr-pulse relies on and returns the role.
fn check_claims(claims: &Claims) -> Result<Role, AppError> {
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

/// Seconds of clock difference tolerated on `exp` and `nbf`.
const JWT_LEEWAY_SECONDS: u64 = 5;

/// Fewest bytes an HS256 secret may have.
pub const MIN_SECRET_BYTES: usize = 32;

/// The HS256 secret in force, and where it came from.
pub struct Secret {
    pub value: String,
    /// Whether the server generated it into its data folder (first-run
    /// mode, where it prints a ready admin token) rather than being given one.
    pub generated: bool,
}

/// The secret in force: the configured one, or the one generated into the
/// data folder on first start (mode 0600), so tokens survive restarts. A
/// short secret, or a secret file that is short, blank or readable by
/// others, stops the server with what to do about it.
pub fn load_or_create_secret(config: &Config) -> anyhow::Result<Secret> {
    if let Some(secret) = &config.auth.jwt_secret {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "AUTH_JWT_SECRET has {} bytes; use at least {MIN_SECRET_BYTES} random bytes (for example `openssl rand -hex 32`)",
            secret.len()
        );
        return Ok(Secret {
            value: secret.clone(),
            generated: false,
        });
    }
    let dir = &config.server.data_dir;
    let path = dir.join("jwt-secret");
    if !path.exists() {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the data folder {}", dir.display()))?;
        write_private_atomically(&path, &generate_secret())?;
    }
    Ok(Secret {
        value: read_secret_file(&path)?,
        generated: true,
    })
}

/// Reads a secret file, refusing one that others may read or that is too short.
fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let secret = fs::read_to_string(path)
        .with_context(|| format!("reading the JWT secret from {}", path.display()))?;
    let secret = secret.trim();
    anyhow::ensure!(
        secret.len() >= MIN_SECRET_BYTES,
        "{} holds {} bytes, fewer than the {MIN_SECRET_BYTES} a JWT secret needs; delete it to have a new one generated (tokens signed with the old one stop working), or write at least {MIN_SECRET_BYTES} random bytes into it",
        path.display(),
        secret.len()
    );
    Ok(secret.to_owned())
}

/// 32 random bytes as hex.
fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file only its owner can read: into a temporary file (created
/// 0600) beside it, then renamed into place, so nobody ever sees it half
/// written or with wider permissions.
fn write_private_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("creating {}", path.display()))?;
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
            nbf: None,
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
    fn a_token_that_lives_too_long_or_carries_huge_claims_is_refused() {
        let keys = TokenKeys::from_secret("0123456789abcdef");
        let mut c = claims("member", "acme");
        c.exp = jsonwebtoken::get_current_timestamp() + 400 * 86_400;
        let token = keys.mint(&c).unwrap();
        let err = keys
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap_err();
        assert!(err.message().contains("31 days"), "{}", err.message());
        let short = keys
            .clone()
            .with_max_lifetime(std::time::Duration::from_secs(60));
        let mut c = claims("member", "acme");
        c.exp = jsonwebtoken::get_current_timestamp() + 3600;
        assert!(
            short
                .verify_header(Some(&format!("Bearer {}", short.mint(&c).unwrap())))
                .is_err()
        );
        for field in ["name", "email"] {
            let mut c = claims("member", "acme");
            let long = "x".repeat(MAX_CLAIM_CHARS + 1);
            if field == "name" {
                c.name = long;
            } else {
                c.email = long;
            }
            let token = keys.mint(&c).unwrap();
            let err = keys
                .verify_header(Some(&format!("Bearer {token}")))
                .unwrap_err();
            assert!(err.message().contains(field), "{}", err.message());
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

    fn config_in(dir: &Path, secret: Option<&str>) -> Config {
        use clap::Parser;
        let mut config = Config::try_parse_from(["okr-pulse"]).unwrap();
        config.server.data_dir = dir.to_path_buf();
        config.auth.jwt_secret = secret.map(str::to_owned);
        config
    }

    #[test]
    fn a_generated_secret_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(&config_in(dir.path(), None)).unwrap();
        assert!(first.generated);
        assert!(first.value.len() >= MIN_SECRET_BYTES);
        let mode = fs::metadata(dir.path().join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create_secret(&config_in(dir.path(), None)).unwrap();
        assert_eq!(again.value, first.value);
    }

    #[test]
    fn a_blank_short_or_readable_secret_file_stops_the_server() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt-secret");
        for (contents, mode) in [
            ("", 0o600),
            ("  \n", 0o600),
            ("short", 0o600),
            (&*"x".repeat(64), 0o644),
        ] {
            fs::write(&path, contents).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = load_or_create_secret(&config_in(dir.path(), None))
                .err()
                .expect("refused");
            assert!(err.to_string().contains("jwt-secret"), "{err}");
        }
    }

    #[test]
    fn a_configured_secret_needs_32_bytes_and_is_not_first_run() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_or_create_secret(&config_in(dir.path(), Some("too-short-secret"))).is_err());
        let ok = load_or_create_secret(&config_in(dir.path(), Some(&"k".repeat(32)))).unwrap();
        assert!(!ok.generated);
        assert!(!dir.path().join("jwt-secret").exists());
    }
}
