//! What the integration tests share: an `Arca` on a SQLite file, as the server builds it.

use arca_core::{Arca, KeyService};
use arca_crypto::RootKey;
use arca_store::Store;
use arca_store_sqlite::SqliteStore;
use arca_types::time::SystemClock;
use std::sync::Arc;

const ROOT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// An instance on the database at `path`; two on one path are two processes sharing it.
pub async fn instance(path: &std::path::Path) -> Arca {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path).expect("open"));
    let root = RootKey::from_base64(ROOT).expect("root");
    let keys = KeyService::load(root, store.clone(), "123456789012".into())
        .await
        .expect("keys");
    Arca::new(
        store,
        Arc::new(keys),
        Arc::new(SystemClock),
        "123456789012".into(),
    )
}
