//! Leadership: the work that must happen once per deployment (the guard loop, the
//! ramp scheduler, webhook delivery) runs only on the server that leads. The store
//! decides who leads; this remembers the last answer for health checks and logs
//! changes.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::Store;

#[derive(Debug, Default)]
pub struct Leadership {
    leading: AtomicBool,
}

impl Leadership {
    /// Asks the store whether this server leads now. A failure to tell counts as
    /// not leading: skipping a round beats doing its work twice.
    pub async fn check(&self, store: &dyn Store) -> bool {
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

    /// The answer of the last check.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }
}
