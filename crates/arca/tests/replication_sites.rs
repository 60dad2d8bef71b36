//! Replication across two deployments over TLS through the AWS SDK for Rust (its rustls
//! client trusting a CA made here): site B serves eu-west-1 over HTTPS and binds an access
//! key to replication; site A serves us-east-1 over HTTPS and names eu-west-1 as B's.
//! Create with a replica, read it from B, write and read again, see InSync, promote on B;
//! A's next delivery learns of the promotion (B cannot tell A here: it has no link back)
//! and A stops replicating there.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::types::{ReplicaRegionType, StatusType};
use aws_sdk_secretsmanager::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use common::{ServerBuilder, ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use std::path::Path;
use std::time::{Duration, Instant};

fn private(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).expect("write");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "arca-test-ca");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("leaf");
    Pki {
        ca: ca.pem(),
        cert: leaf.pem(),
        key: key.serialize_pem(),
    }
}

fn admin(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .arg("--database")
        .arg(dir.join("arca.db"))
        .arg("--root-key-file")
        .arg(dir.join("root.key"))
        .args(args)
        .output()
        .expect("run arca");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tls_client(port: u16, region: &str, ca: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(ca.as_bytes().to_vec()))
                .build()
                .expect("tls context"),
        )
        .build_https();
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("https://127.0.0.1:{port}"))
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::from_keys(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
        ))
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_deployments_over_tls_through_the_rust_sdk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = pki();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a_dir, &b_dir] {
        std::fs::create_dir_all(d).expect("dir");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
            .arg("init-root-key")
            .arg(d.join("root.key"))
            .output()
            .expect("init");
        assert!(out.status.success());
    }
    std::fs::write(tmp.path().join("ca.pem"), &p.ca).expect("ca");
    std::fs::write(tmp.path().join("cert.pem"), &p.cert).expect("cert");
    private(&tmp.path().join("key.pem"), &p.key);
    let tls = format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        tmp.path().join("cert.pem").display().to_string(),
        tmp.path().join("key.pem").display().to_string()
    );
    let out = admin(&b_dir, &["access-key", "create", "--replication"]);
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .expect("key in output")
            .to_owned()
    };
    let (link_id, link_secret) = (field("AWS_ACCESS_KEY_ID="), field("AWS_SECRET_ACCESS_KEY="));
    private(&a_dir.join("link.secret"), &link_secret);

    let site = |dir: &Path, config: String| {
        std::fs::write(dir.join("arca.toml"), config).expect("config");
        ServerBuilder::production()
            .arg("--config")
            .arg(dir.join("arca.toml").display().to_string())
            .arg("--database")
            .arg(dir.join("arca.db").display().to_string())
            .arg("--root-key-file")
            .arg(dir.join("root.key").display().to_string())
            .env("ARCA_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("ARCA_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .spawn()
    };
    let b = site(&b_dir, tls.clone());
    let a = site(
        &a_dir,
        format!(
            "{tls}[[replication.regions]]\nregion = \"eu-west-1\"\nendpoint = \"https://127.0.0.1:{}\"\naccess_key_id = {link_id:?}\nsecret_access_key_file = {:?}\nca_file = {:?}\n",
            b.addr.port(),
            a_dir.join("link.secret").display().to_string(),
            tmp.path().join("ca.pem").display().to_string()
        ),
    );
    let pa = tls_client(a.addr.port(), "us-east-1", &p.ca);
    let rb = tls_client(b.addr.port(), "eu-west-1", &p.ca);

    pa.create_secret()
        .name("sites/db")
        .secret_string("one")
        .add_replica_regions(ReplicaRegionType::builder().region("eu-west-1").build())
        .send()
        .await
        .expect("create over TLS");
    let read = |want: &'static str| {
        let rb = rb.clone();
        move || {
            let rb = rb.clone();
            async move {
                rb.get_secret_value()
                    .secret_id("sites/db")
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.secret_string().map(str::to_owned))
                    .as_deref()
                    == Some(want)
            }
        }
    };
    eventually("the replica on site B", read("one")).await;
    pa.put_secret_value()
        .secret_id("sites/db")
        .secret_string("two")
        .send()
        .await
        .expect("put");
    eventually("the new value on site B", read("two")).await;
    let status = || {
        let pa = pa.clone();
        async move {
            pa.describe_secret()
                .secret_id("sites/db")
                .send()
                .await
                .expect("describe")
                .replication_status()
                .first()
                .and_then(|s| s.status().cloned())
        }
    };
    eventually("InSync", || async {
        status().await == Some(StatusType::InSync)
    })
    .await;

    // Promote on B; A's next write is answered "promoted", and A stops replicating there.
    rb.stop_replication_to_replica()
        .secret_id("sites/db")
        .send()
        .await
        .expect("promote");
    rb.put_secret_value()
        .secret_id("sites/db")
        .secret_string("b-owns-it")
        .send()
        .await
        .expect("write after promotion");
    pa.put_secret_value()
        .secret_id("sites/db")
        .secret_string("three")
        .send()
        .await
        .expect("put on A");
    eventually("A drops the promoted region", || async {
        status().await.is_none()
    })
    .await;
    assert!(read("b-owns-it")().await, "A overwrote the promoted secret");
}
