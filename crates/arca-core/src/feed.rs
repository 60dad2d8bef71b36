//! What this node does with the store's change feed (writes committed by any node on a
//! shared database): secret notices invalidate the read cache, key notices reload the
//! keyring, access-key notices reread the access keys, rule notices rebuild the routing
//! table. While the feed is down the cache serves nothing; when it is back, everything
//! that notices could have changed is reread, since some were missed.

use std::sync::{Arc, Weak};

use arca_store::{Change, ChangeSink};

use crate::access::AccessKeys;
use crate::Arca;

struct Feed {
    arca: Weak<Arca>,
    access: Option<Arc<AccessKeys>>,
    /// One reread at a time: the last to run began after every earlier one ended, so
    /// after a later change's notice no reread that read the store before that change
    /// installs its result last.
    rereads: Arc<tokio::sync::Mutex<()>>,
}

impl Feed {
    /// Runs a reread off the feed's task (notices keep flowing meanwhile).
    fn reread(&self, keys: bool, access: bool, rules: bool) {
        let Some(arca) = self.arca.upgrade() else {
            return;
        };
        let access_keys = self.access.clone().filter(|_| access);
        let rereads = self.rereads.clone();
        tokio::spawn(async move {
            let _one = rereads.lock().await;
            if keys {
                if let Err(e) = arca.keys.reload().await {
                    tracing::warn!(error = %e, "rereading encryption keys after a change failed");
                }
            }
            if let Some(a) = access_keys {
                if let Err(e) = a.refresh().await {
                    tracing::warn!(error = %e, "rereading access keys after a change failed");
                }
            }
            if rules {
                if let Err(e) = arca.reload_rules().await {
                    tracing::warn!(error = %e.message, "rereading event rules after a change failed");
                }
            }
        });
    }
}

impl ChangeSink for Feed {
    fn changed(&self, change: &Change) {
        let Some(arca) = self.arca.upgrade() else {
            return;
        };
        match change {
            Change::Secret { arn, revision } => arca.cache.changed(arn, *revision),
            Change::Deleted { arn } => arca.cache.deleted(arn),
            Change::Keys => self.reread(true, false, false),
            Change::AccessKey { .. } => self.reread(false, true, false),
            Change::Rules => self.reread(false, false, true),
            Change::Iam => {
                let arca = arca.clone();
                tokio::spawn(async move {
                    if let Err(e) = arca.iam.reload().await {
                        tracing::warn!(error = %e, "rereading IAM entities after a change failed");
                    }
                });
            }
        }
    }

    fn lost(&self) {
        if let Some(arca) = self.arca.upgrade() {
            arca.cache.set_serving(false);
        }
    }

    fn resumed(&self) {
        if let Some(arca) = self.arca.upgrade() {
            arca.cache.set_serving(true);
        }
        self.reread(true, true, true);
        if let Some(arca) = self.arca.upgrade() {
            tokio::spawn(async move {
                if let Err(e) = arca.iam.reload().await {
                    tracing::warn!(error = %e, "rereading IAM entities failed");
                }
            });
        }
    }
}

impl Arca {
    /// Follows the store's change feed (a shared database; a no-op on SQLite), so that
    /// this node's caches stay correct while other nodes write. `access` are the access
    /// keys the HTTP layer checks signatures with.
    pub fn follow_changes(self: &Arc<Self>, access: Option<Arc<AccessKeys>>) {
        self.store.watch_changes(Arc::new(Feed {
            arca: Arc::downgrade(self),
            access,
            rereads: Arc::new(tokio::sync::Mutex::new(())),
        }));
    }
}
