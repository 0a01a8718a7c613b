//! The Amazon MSK IAM authentication token (SASL/OAUTHBEARER on MSK's IAM listener, port 9098),
//! as AWS's own signers produce it (`aws-msk-iam-sasl-signer-python`, the Java
//! `aws-msk-iam-auth`, `aws-msk-iam-sasl-signer-go`): a SigV4 query-presigned URL
//!
//! ```text
//! https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect
//!     &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key id>%2F<date>%2F<region>%2Fkafka-cluster%2Faws4_request
//!     &X-Amz-Date=<time>&X-Amz-Expires=900&X-Amz-SignedHeaders=host
//!     [&X-Amz-Security-Token=<session token>]&X-Amz-Signature=<signature>&User-Agent=<signer>
//! ```
//!
//! (service `kafka-cluster`, method `GET`, the empty body's SHA-256 as the payload hash, only
//! `host` signed, the `User-Agent` parameter added
//! after signing), base64url-encoded without padding. The parameters are in the order the
//! Python signer (botocore) writes them; a unit test compares a token byte for byte with one the
//! Python signer produced for the same credentials and signing time.
//!
//! [`MskTokenProvider`] caches the token and signs a new one when the cached one has less than
//! [`REFRESH_BUFFER`] left (Kafka's `sasl.login.refresh.buffer.seconds` default); a token is
//! valid until its signing time plus 900 s or until the credentials expire, whichever is first.
//! The credentials come from a provider (the default chain of `aws-config` unless one is
//! given: on Lambda the function's role credentials from the environment), which caches and
//! refreshes them itself.

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a token is valid after it was signed (`X-Amz-Expires`, as every AWS signer sets it).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// A cached token is handed out only while it is valid for at least this long (Kafka's
/// `sasl.login.refresh.buffer.seconds` default): a connection that authenticates with it does
/// not race its expiry.
pub const REFRESH_BUFFER: Duration = Duration::from_secs(300);
/// The SigV4 signing name of MSK's IAM access control.
pub const SIGNING_NAME: &str = "kafka-cluster";
/// The action the token is signed for.
pub const ACTION: &str = "kafka-cluster:Connect";
/// The `User-Agent` query parameter of this signer (the AWS signers name themselves there:
/// `aws-msk-iam-sasl-signer-python/1.0.2`, `aws-msk-iam-auth/…`).
pub const USER_AGENT: &str = concat!("huleedu-ras-aws-msk-iam/", env!("CARGO_PKG_VERSION"));

/// Why no token could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("loading AWS credentials for the MSK IAM token: {0}")]
    Credentials(String),
    #[error("signing the MSK IAM token: {0}")]
    Signing(String),
}

/// A signed token and the moment it stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MskToken {
    /// base64url (no padding) of the presigned URL: the OAUTHBEARER token.
    pub token: String,
    /// Signing time + [`TOKEN_LIFETIME`], or the credentials' expiry if that is earlier.
    pub expires_at: SystemTime,
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (SigV4's and
/// botocore's `quote(…, safe='-_.~')`).
fn uri_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The presigned URL for `region`, signed with `credentials` at `at`, with `user_agent` as the
/// `User-Agent` parameter (not signed, as in the AWS signers).
pub fn presigned_url(
    region: &str,
    credentials: &Credentials,
    at: SystemTime,
    user_agent: &str,
) -> Result<String, TokenError> {
    let signing = |e: &dyn std::fmt::Display| TokenError::Signing(e.to_string());
    let host = format!("kafka.{region}.amazonaws.com");
    let unsigned = format!("https://{host}/?Action={}", uri_encode(ACTION));
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| signing(&e))?;
    let request = SignableRequest::new(
        "GET",
        &unsigned,
        std::iter::empty(),
        // The SHA-256 of the empty body, as botocore hashes it here (not `UNSIGNED-PAYLOAD`).
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| signing(&e))?;
    let (instructions, _signature) = sign(request, &params.into())
        .map_err(|e| signing(&e))?
        .into_parts();
    let signed = instructions.params();
    let value = |name: &str| {
        signed
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    };
    // botocore's order: the request's own parameter, the authentication parameters, the
    // session token, the signature; then the User-Agent the signer adds.
    let mut url = unsigned;
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    ] {
        match value(name) {
            Some(v) => url.push_str(&format!("&{name}={}", uri_encode(v))),
            None if name == "X-Amz-Security-Token" => {}
            None => return Err(TokenError::Signing(format!("the signer gave no {name}"))),
        }
    }
    url.push_str(&format!("&User-Agent={}", uri_encode(user_agent)));
    Ok(url)
}

/// The OAUTHBEARER token: base64url without padding of [`presigned_url`], valid until the
/// returned [`MskToken::expires_at`].
pub fn sign_token(
    region: &str,
    credentials: &Credentials,
    at: SystemTime,
    user_agent: &str,
) -> Result<MskToken, TokenError> {
    let url = presigned_url(region, credentials, at, user_agent)?;
    let mut expires_at = at + TOKEN_LIFETIME;
    if let Some(expiry) = credentials.expiry() {
        expires_at = expires_at.min(expiry);
    }
    Ok(MskToken {
        token: URL_SAFE_NO_PAD.encode(url.as_bytes()),
        expires_at,
    })
}

/// The time source of a [`MskTokenProvider`] (the system clock; tests inject their own).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Where the credentials come from.
enum CredentialSource {
    /// `aws-config`'s default chain, built on first use (no I/O before the first token).
    DefaultChain(tokio::sync::OnceCell<SharedCredentialsProvider>),
    Given(SharedCredentialsProvider),
}

/// Tokens for one region, cached until [`REFRESH_BUFFER`] before they expire.
pub struct MskTokenProvider {
    region: String,
    credentials: CredentialSource,
    clock: Clock,
    cached: tokio::sync::Mutex<Option<MskToken>>,
}

impl std::fmt::Debug for MskTokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskTokenProvider")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl MskTokenProvider {
    /// Credentials from `aws-config`'s default provider chain (on Lambda: the environment),
    /// loaded when the first token is needed.
    pub fn default_chain(region: impl Into<String>) -> Self {
        Self::build(
            region.into(),
            CredentialSource::DefaultChain(tokio::sync::OnceCell::new()),
        )
    }

    /// Credentials from `provider` (e.g. the function's `SdkConfig::credentials_provider()`).
    pub fn with_credentials(
        region: impl Into<String>,
        provider: SharedCredentialsProvider,
    ) -> Self {
        Self::build(region.into(), CredentialSource::Given(provider))
    }

    fn build(region: String, credentials: CredentialSource) -> Self {
        MskTokenProvider {
            region,
            credentials,
            clock: Arc::new(SystemTime::now),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The same provider with another time source (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    async fn provider(&self) -> SharedCredentialsProvider {
        match &self.credentials {
            CredentialSource::Given(p) => p.clone(),
            CredentialSource::DefaultChain(cell) => cell
                .get_or_init(|| async {
                    let chain =
                        aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                            .region(aws_config::Region::new(self.region.clone()))
                            .build()
                            .await;
                    SharedCredentialsProvider::new(chain)
                })
                .await
                .clone(),
        }
    }

    /// A token valid for at least [`REFRESH_BUFFER`] when the credentials allow it: the cached
    /// one while it is, a newly signed one otherwise.
    pub async fn token(&self) -> Result<String, TokenError> {
        Ok(self.current().await?.token)
    }

    /// [`MskTokenProvider::token`] with its expiry.
    pub async fn current(&self) -> Result<MskToken, TokenError> {
        let mut cached = self.cached.lock().await;
        let now = (self.clock)();
        if let Some(token) = cached.as_ref() {
            if now + REFRESH_BUFFER < token.expires_at {
                return Ok(token.clone());
            }
        }
        let credentials = self
            .provider()
            .await
            .provide_credentials()
            .await
            .map_err(|e| TokenError::Credentials(format!("{e}: {e:?}")))?;
        let token = sign_token(&self.region, &credentials, now, USER_AGENT)?;
        *cached = Some(token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SESSION_KEY_ID: &str = "ASIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE/session+token==";
    const PYTHON_USER_AGENT: &str = "aws-msk-iam-sasl-signer-python/1.0.2";

    /// 2026-12-06T15:30:00Z.
    fn signing_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_571_000)
    }

    fn credentials(key_id: &str, token: Option<&str>) -> Credentials {
        Credentials::new(key_id, SECRET, token.map(String::from), None, "test")
    }

    fn decode(token: &str) -> String {
        String::from_utf8(URL_SAFE_NO_PAD.decode(token).expect("base64url")).expect("utf-8")
    }

    // Vectors from the AWS signer for Python, `aws-msk-iam-sasl-signer-python==1.0.2` (botocore
    // 1.44.18), in a throw-away venv, with botocore's clock fixed at 2026-12-06T15:30:00Z:
    //
    //   python3 -m venv /tmp/iam-signer-venv
    //   /tmp/iam-signer-venv/bin/pip install 'aws-msk-iam-sasl-signer-python==1.0.2'
    //   /tmp/iam-signer-venv/bin/python vector.py AKIAIOSFODNN7EXAMPLE \
    //       'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' ['IQoJb3JpZ2luX2VjEXAMPLE/session+token==']
    //
    // where vector.py is
    //
    //   import base64, datetime, sys
    //   import botocore.auth
    //   from botocore.credentials import Credentials
    //   from aws_msk_iam_sasl_signer import MSKAuthTokenProvider as P
    //   fixed = datetime.datetime(2026, 12, 6, 15, 30, 0)
    //   botocore.auth.get_current_datetime = lambda remove_tzinfo=True: fixed
    //   creds = Credentials(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    //   tok, exp = getattr(P, "__construct_auth_token")("eu-north-1", creds)
    //   print(tok); print(exp)
    //
    // (`__construct_auth_token` is what every public `generate_auth_token*` calls; it printed
    // the expiry 1796571900000 ms = signing time + 900 s for both.)
    const PYTHON_TOKEN: &str = "aHR0cHM6Ly9rYWZrYS5ldS1ub3J0aC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1rYWZrYS1jbHVzdGVyJTNBQ29ubmVjdCZYLUFtei1BbGdvcml0aG09QVdTNC1ITUFDLVNIQTI1NiZYLUFtei1DcmVkZW50aWFsPUFLSUFJT1NGT0ROTjdFWEFNUExFJTJGMjAyNjEyMDYlMkZldS1ub3J0aC0xJTJGa2Fma2EtY2x1c3RlciUyRmF3czRfcmVxdWVzdCZYLUFtei1EYXRlPTIwMjYxMjA2VDE1MzAwMFomWC1BbXotRXhwaXJlcz05MDAmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0JlgtQW16LVNpZ25hdHVyZT1mYTY5NDFlMjNmYzM5ODRhOTBlMDQzYTU1N2Y0M2RiNDViYzgzMzQyN2FjMTBlMTQ0OTcwMWNiZjFjY2U5ZjdkJlVzZXItQWdlbnQ9YXdzLW1zay1pYW0tc2FzbC1zaWduZXItcHl0aG9uJTJGMS4wLjI";
    const PYTHON_SESSION_TOKEN: &str = "aHR0cHM6Ly9rYWZrYS5ldS1ub3J0aC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1rYWZrYS1jbHVzdGVyJTNBQ29ubmVjdCZYLUFtei1BbGdvcml0aG09QVdTNC1ITUFDLVNIQTI1NiZYLUFtei1DcmVkZW50aWFsPUFTSUFJT1NGT0ROTjdFWEFNUExFJTJGMjAyNjEyMDYlMkZldS1ub3J0aC0xJTJGa2Fma2EtY2x1c3RlciUyRmF3czRfcmVxdWVzdCZYLUFtei1EYXRlPTIwMjYxMjA2VDE1MzAwMFomWC1BbXotRXhwaXJlcz05MDAmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0JlgtQW16LVNlY3VyaXR5LVRva2VuPUlRb0piM0pwWjJsdVgyVmpFWEFNUExFJTJGc2Vzc2lvbiUyQnRva2VuJTNEJTNEJlgtQW16LVNpZ25hdHVyZT1lZDFjZmE1MWZjNTE3MjhiZGEyYjFiNjgzNmZlY2FkMjQ2MmU3YzI5Y2UwODliOTM5ODdhYWM1OWM1MjIyYjk3JlVzZXItQWdlbnQ9YXdzLW1zay1pYW0tc2FzbC1zaWduZXItcHl0aG9uJTJGMS4wLjI";

    #[test]
    fn token_is_byte_identical_to_the_python_signers() {
        let ours = sign_token(
            "eu-north-1",
            &credentials(KEY_ID, None),
            signing_time(),
            PYTHON_USER_AGENT,
        )
        .expect("sign");
        assert_eq!(decode(&ours.token), decode(PYTHON_TOKEN));
        assert_eq!(ours.token, PYTHON_TOKEN);
        assert_eq!(
            ours.expires_at,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_571_900_000)
        );
    }

    #[test]
    fn session_token_is_signed_and_encoded_like_the_python_signer() {
        let ours = sign_token(
            "eu-north-1",
            &credentials(SESSION_KEY_ID, Some(SESSION_TOKEN)),
            signing_time(),
            PYTHON_USER_AGENT,
        )
        .expect("sign");
        assert_eq!(decode(&ours.token), decode(PYTHON_SESSION_TOKEN));
        assert_eq!(ours.token, PYTHON_SESSION_TOKEN);
    }

    #[test]
    fn token_structure_with_our_user_agent() {
        let token = sign_token(
            "us-east-1",
            &credentials(KEY_ID, None),
            signing_time(),
            USER_AGENT,
        )
        .expect("sign")
        .token;
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'));
        let url = decode(&token);
        let (base, query) = url.split_once('?').expect("query");
        assert_eq!(base, "https://kafka.us-east-1.amazonaws.com/");
        let params: Vec<(&str, &str)> = query
            .split('&')
            .map(|p| p.split_once('=').expect("name=value"))
            .collect();
        let names: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Action",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
                "X-Amz-Signature",
                "User-Agent"
            ]
        );
        let get = |n: &str| params.iter().find(|(k, _)| *k == n).expect(n).1;
        assert_eq!(get("Action"), "kafka-cluster%3AConnect");
        assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            get("X-Amz-Credential"),
            "AKIAIOSFODNN7EXAMPLE%2F20261206%2Fus-east-1%2Fkafka-cluster%2Faws4_request"
        );
        assert_eq!(get("X-Amz-Date"), "20261206T153000Z");
        assert_eq!(get("X-Amz-Expires"), "900");
        assert_eq!(get("X-Amz-SignedHeaders"), "host");
        assert_eq!(get("X-Amz-Signature").len(), 64);
        assert_eq!(
            get("User-Agent"),
            format!("huleedu-ras-aws-msk-iam%2F{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn token_expires_with_the_credentials_when_they_expire_first() {
        let at = signing_time();
        let soon = at + Duration::from_secs(120);
        let creds = Credentials::new(KEY_ID, SECRET, None, Some(soon), "test");
        let token = sign_token("eu-north-1", &creds, at, USER_AGENT).expect("sign");
        assert_eq!(token.expires_at, soon);
    }

    #[test]
    fn uri_encoding_keeps_only_unreserved_characters() {
        assert_eq!(uri_encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(uri_encode("a/b+c=d:e f"), "a%2Fb%2Bc%3Dd%3Ae%20f");
        assert_eq!(uri_encode("å"), "%C3%A5");
    }

    /// A provider that counts how often credentials are asked for, with a settable expiry.
    #[derive(Clone, Debug, Default)]
    struct Counting {
        calls: Arc<AtomicU64>,
        expiry: Arc<Mutex<Option<SystemTime>>>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let expiry = *self.expiry.lock().expect("lock");
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                KEY_ID, SECRET, None, expiry, "counting",
            )))
        }
    }

    fn clocked(counting: &Counting) -> (MskTokenProvider, Arc<Mutex<SystemTime>>) {
        let now = Arc::new(Mutex::new(signing_time()));
        let clock_now = Arc::clone(&now);
        let provider = MskTokenProvider::with_credentials(
            "eu-north-1",
            SharedCredentialsProvider::new(counting.clone()),
        )
        .with_clock(Arc::new(move || *clock_now.lock().expect("lock")));
        (provider, now)
    }

    fn advance(now: &Mutex<SystemTime>, secs: u64) {
        *now.lock().expect("lock") += Duration::from_secs(secs);
    }

    #[tokio::test]
    async fn a_token_is_reused_until_the_refresh_buffer_then_signed_anew() {
        let counting = Counting::default();
        let (provider, now) = clocked(&counting);
        let first = provider.current().await.expect("token");
        assert_eq!(first.expires_at, signing_time() + TOKEN_LIFETIME);
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        // 599 s later the token has 301 s left: still handed out.
        advance(&now, 599);
        assert_eq!(provider.current().await.expect("token"), first);
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        // 600 s after signing it has exactly the buffer left: a new one, signed now.
        advance(&now, 1);
        let second = provider.current().await.expect("token");
        assert_ne!(second.token, first.token);
        assert_eq!(
            second.expires_at,
            signing_time() + Duration::from_secs(600) + TOKEN_LIFETIME
        );
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
        assert!(decode(&second.token).contains("X-Amz-Date=20261206T154000Z"));
    }

    #[tokio::test]
    async fn a_token_is_renewed_before_the_credentials_expire() {
        let counting = Counting::default();
        *counting.expiry.lock().expect("lock") = Some(signing_time() + Duration::from_secs(400));
        let (provider, now) = clocked(&counting);
        let first = provider.current().await.expect("token");
        assert_eq!(first.expires_at, signing_time() + Duration::from_secs(400));
        // 99 s later: 301 s left, reused.
        advance(&now, 99);
        assert_eq!(provider.current().await.expect("token"), first);
        // 100 s later only 300 s are left: the credentials are asked for again (their provider
        // refreshes them) and a new token is signed.
        advance(&now, 1);
        *counting.expiry.lock().expect("lock") = Some(signing_time() + Duration::from_secs(4000));
        let second = provider.current().await.expect("token");
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            second.expires_at,
            signing_time() + Duration::from_secs(100) + TOKEN_LIFETIME
        );
    }

    #[tokio::test]
    async fn credentials_that_cannot_be_loaded_are_an_error_not_a_token() {
        #[derive(Debug)]
        struct Failing;
        impl ProvideCredentials for Failing {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded(
                        "no credentials here",
                    ),
                ))
            }
        }
        let provider = MskTokenProvider::with_credentials(
            "eu-north-1",
            SharedCredentialsProvider::new(Failing),
        );
        let err = provider.token().await.unwrap_err();
        assert!(matches!(err, TokenError::Credentials(_)), "{err}");
    }
}
