//! Leadership: the work that must happen once per deployment (the guard loop, the
//! ramp scheduler, webhook delivery) runs only on the server that leads. The store
//! decides who leads; this remembers the last answer for health checks and logs
//! changes.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::Store;

#[derive(Debug, Default)]
pub struct Leadership {
    leading: AtomicBool,
    /// Set when this server must never lead (it runs no guard loop).
    aside: AtomicBool,
}

impl Leadership {
    /// Asks the store whether this server leads now. A failure to tell counts as
    /// not leading: skipping a round beats doing its work twice.
    pub async fn check(&self, store: &dyn Store) -> bool {
        if self.aside.load(Ordering::Relaxed) {
            return false;
        }
        let leading = match store.lead().await {
            Ok(leading) => leading,
            Err(err) => {
                tracing::warn!(error = %err, "could not tell whether this server leads");
                false
            }
        };
        if self.leading.swap(leading, Ordering::Relaxed) != leading {
            tracing::info!(leading, "leadership changed");
        }
        leading
    }

    /// Never leads from now on: for a server that runs no guard loop among servers
    /// that do, so that the leader is always one that runs all the leader's work.
    pub fn step_aside(&self) {
        self.aside.store(true, Ordering::Relaxed);
    }

    /// The answer of the last check.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }
}
