//! Background jobs, each run by the one [`worker::Worker`] loop under a lease: the
//! deletion purge (here) and the rotation scheduler (`rotation`). Their state (each
//! secret's purge date, each rotation's due date and lease) is persisted, so a restarted
//! server simply resumes.

pub mod events;
pub mod remote;
pub mod replication;
pub mod rotation;
pub mod sync;
pub mod worker;

use arca_core::Arca;
use async_trait::async_trait;
use std::sync::Arc;
use worker::{Job, JobError, Lease, Pass};

/// Rereads IAM users, roles and policies, the access keys and the key policies, so that what the admin
/// CLI (or, without a change feed, another node) changed in the store takes effect here.
/// Every node runs it (under leases of its own process, not the cluster's).
pub struct DirectoryJob {
    pub arca: Arc<Arca>,
    pub access: Arc<arca_core::access::AccessKeys>,
}

#[async_trait]
impl Job for DirectoryJob {
    fn name(&self) -> &'static str {
        "iam-directory"
    }

    async fn run(&self, _lease: &Lease) -> Result<Pass, JobError> {
        self.arca.iam().reload().await?;
        self.access.refresh().await?;
        self.arca.reload_keys().await?;
        Ok(Pass::Idle)
    }
}

/// The deletion purge: removes secrets whose recovery window has ended.
pub struct PurgeJob {
    pub arca: Arc<Arca>,
}

#[async_trait]
impl Job for PurgeJob {
    fn name(&self) -> &'static str {
        "purge"
    }

    async fn run(&self, lease: &Lease) -> Result<Pass, JobError> {
        let n = self.arca.purge_due(Some(&lease.fence())).await?;
        if n > 0 {
            tracing::info!(purged = n, "deletion purge ran");
        }
        Ok(Pass::Idle)
    }
}
