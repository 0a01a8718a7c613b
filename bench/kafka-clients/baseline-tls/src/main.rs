//! hello-lambda plus a reachable rustls (aws-lc-rs) client handshake: the TLS stack the relay
//! already ships with the AWS SDK's HTTPS client.
use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let Some(addr) = event.payload["tls_connect"].as_str() else {
            return Ok::<Value, Error>(event.payload);
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let host = addr.split(':').next().unwrap_or_default().to_owned();
        let name = rustls::pki_types::ServerName::try_from(host)?;
        let _tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
        Ok(json!({"tls": "ok"}))
    }))
    .await
}
