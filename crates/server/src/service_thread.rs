//! The threads of the server's services (the writer, the analyst), whose end can be
//! awaited with a time limit when the runtime stops them.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub(crate) struct ServiceThread {
    handle: JoinHandle<()>,
    ended: mpsc::Receiver<()>,
}

impl ServiceThread {
    pub(crate) fn spawn(
        name: &str,
        work: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<ServiceThread> {
        let (ended_tx, ended) = mpsc::channel();
        let handle = thread::Builder::new().name(name.into()).spawn(move || {
            work();
            let _ = ended_tx.send(());
        })?;
        Ok(ServiceThread { handle, ended })
    }

    /// Waits at most `patience` for the thread to end; true when it ended without a panic.
    pub(crate) fn join_within(self, patience: Duration) -> bool {
        match self.ended.recv_timeout(patience) {
            // A panic drops the sender: the join reports it.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => self.handle.join().is_ok(),
            Err(RecvTimeoutError::Timeout) => false,
        }
    }
}
