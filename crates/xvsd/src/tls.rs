//! TLS for HTTPS checks (rustls, ring): the certificate verified against the system's
//! roots or a given CA file, and the name checked (`tls_name`, `host`, or the address), unless
//! `tls_verify = false`, which still checks the handshake's signatures but not who
//! signed the certificate. Client configurations are built once per kind and shared.

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpStream},
    sync::{Arc, Mutex, OnceLock},
};

use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, ring},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use xvs_health::config::CheckConfig;

use crate::check::Exchange;

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

impl Exchange for TlsStream {
    fn socket(&self) -> &TcpStream {
        &self.sock
    }
}

/// Wraps `tcp`, connected to `target`, in a TLS client session as `check` asks. The
/// handshake happens with the first exchange, under the check's timeouts.
pub fn connect(
    tcp: TcpStream,
    target: SocketAddr,
    check: &CheckConfig,
) -> Result<TlsStream, String> {
    let config = config(check)?;
    let name = match check.tls_name.as_ref().or(check.host.as_ref()) {
        Some(host) => {
            let host = host.split(':').next().unwrap_or(host).to_string();
            ServerName::try_from(host).map_err(|e| format!("TLS name: {e}"))?
        }
        None => ServerName::from(target.ip()),
    };
    let session = ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
    Ok(StreamOwned::new(session, tcp))
}

type Kind = (bool, Option<String>);

fn config(check: &CheckConfig) -> Result<Arc<ClientConfig>, String> {
    static CONFIGS: OnceLock<Mutex<HashMap<Kind, Arc<ClientConfig>>>> = OnceLock::new();
    let kind = (check.tls_verify, check.ca_file.clone());
    let configs = CONFIGS.get_or_init(Default::default);
    if let Some(found) = configs.lock().ok().and_then(|c| c.get(&kind).cloned()) {
        return Ok(found);
    }
    // ring builds with a C compiler alone (aws-lc needs more); rustls deprecates its
    // provider for lacking post-quantum key exchange, which checking a real server's
    // page does not need.
    #[allow(deprecated)]
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let built = if check.tls_verify {
        builder.with_root_certificates(roots(check.ca_file.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
    }
    .with_no_client_auth();
    let built = Arc::new(built);
    if let Ok(mut configs) = configs.lock() {
        configs.insert(kind, built.clone());
    }
    Ok(built)
}

/// The certificates of `ca_file`, or the system's roots.
fn roots(ca_file: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{path}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{path}: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(format!("{path}: no certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(roots)
}

/// `tls_verify = false`: any certificate, signatures still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
