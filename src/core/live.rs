//! Settings a running gateway takes anew on `otpgw reload` (or SIGHUP): `[policy]`
//! and `[messages]` here, `[limits]` in `admission`. A use case holds a [`Live`]
//! and reads it when it decides, so a reload needs no restart and drops no
//! connection; each read sees one whole version (a reload swaps it, never edits it).

use std::sync::Arc;

use arc_swap::ArcSwap;

/// One value, shared by every use case that reads it, replaced whole on reload.
pub struct Live<T>(Arc<ArcSwap<T>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(value)))
    }

    /// The current version; a reload after this does not change it.
    pub fn get(&self) -> Arc<T> {
        self.0.load_full()
    }

    pub fn set(&self, value: T) {
        self.0.store(Arc::new(value));
    }
}
