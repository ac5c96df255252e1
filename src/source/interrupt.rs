//! A source that stops on request: `replay` wraps its source in one whose
//! flag SIGINT/SIGTERM set (`cli/batch.rs`).
//!
//! The next poll after the flag is set fails with
//! [`SourceError::Interrupted`], so the driver stops before its next
//! commit: a kept state dir holds what its last commit held (the state a
//! SIGKILL leaves, which the next run resumes from), and a temporary one is
//! removed as the error unwinds (the default action of SIGINT killed the
//! process and left the temporary state, spill files and all, behind).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Poll, Source, SourceError};
use crate::model::offsets::Positions;

/// `inner`, failing once `stop` is set.
pub struct Interruptible<S> {
    pub inner: S,
    pub stop: Arc<AtomicBool>,
}

impl<S: Source> Source for Interruptible<S> {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(SourceError::Interrupted);
        }
        self.inner.poll()
    }

    fn resume(&mut self, state: &Positions) -> Result<(), SourceError> {
        self.inner.resume(state)
    }

    fn size_hint(&self) -> Option<u64> {
        self.inner.size_hint()
    }

    fn committed(&mut self, next: &[((String, i32), i64)]) {
        self.inner.committed(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Endless;

    impl Source for Endless {
        fn poll(&mut self) -> Result<Poll, SourceError> {
            Ok(Poll::Idle)
        }
    }

    #[test]
    fn polls_fail_once_the_flag_is_set() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut s = Interruptible {
            inner: Endless,
            stop: stop.clone(),
        };
        assert!(matches!(s.poll(), Ok(Poll::Idle)));
        stop.store(true, Ordering::Relaxed);
        assert!(matches!(s.poll(), Err(SourceError::Interrupted)));
        assert!(!SourceError::Interrupted.is_retryable());
    }
}
