//! The log writer: formatted lines are appended to a bounded buffer by the
//! thread that logs (a runtime worker never blocks on stderr or a file), and
//! a thread of its own writes the buffer out in batches.
//!
//! Why not `tracing-appender`'s non-blocking writer, which did this before:
//! it hands every line to its thread on its own (a channel send, and a
//! wake-up of that thread and one `write` system call per line). With the
//! access log on, that is a wake-up and a system call per request; on a
//! server pinned to one core it was ~9 % of the CPU of a UDP echo
//! (bench/RESULTS.md). Here the thread is woken only when it sleeps with
//! nothing to write, and after each write it waits [`BATCH_INTERVAL`] for
//! more, so under load a few hundred writes a second carry every line.
//!
//! Past [`MAX_PENDING_BYTES`] waiting, new lines are dropped (never
//! blocking the logger) and the writer says how many in a line of its own.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes of formatted lines that may wait for the writer: a few MiB at
/// most, whatever floods the log.
const MAX_PENDING_BYTES: usize = 4 * 1024 * 1024;

/// How long the writer gathers lines after a write before the next one: the
/// most a line waits while others keep coming.
const BATCH_INTERVAL: Duration = Duration::from_millis(5);

/// A batch buffer larger than this after a flood is given back rather than
/// kept for the next batch.
const KEPT_CAPACITY: usize = 256 * 1024;

/// The logging side: a cheap handle that `tracing-subscriber` writes each
/// formatted line through.
#[derive(Debug, Clone)]
pub(crate) struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Keeps the writer thread; dropping it writes what is pending and stops
/// the thread.
#[derive(Debug)]
pub(crate) struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer when it sleeps with nothing to write.
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    /// Formatted lines not written yet.
    bytes: Vec<u8>,
    /// Lines dropped since the last write because `bytes` was full.
    dropped: u64,
    /// The writer waits on `wake` (so a new line must wake it).
    writer_waiting: bool,
    /// The guard was dropped: write what is left and stop.
    closing: bool,
}

impl BatchedWriter {
    /// Starts a writer thread named `name` that writes to `sink`.
    pub(crate) fn start(
        name: &str,
        sink: impl Write + Send + 'static,
    ) -> std::io::Result<(Self, WriterGuard)> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn({
            let shared = Arc::clone(&shared);
            move || write_batches(&shared, sink)
        })?;
        let guard = WriterGuard {
            shared: Arc::clone(&shared),
            thread: Some(thread),
        };
        Ok((Self { shared }, guard))
    }
}

impl Shared {
    /// The pending state, even if a logging thread panicked holding it.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.bytes.len() + line.len() > MAX_PENDING_BYTES {
            pending.dropped += 1;
            return Ok(line.len());
        }
        pending.bytes.extend_from_slice(line);
        if pending.writer_waiting {
            pending.writer_waiting = false;
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The writer thread: takes everything pending, writes it in one go, waits
/// a moment for more; sleeps while there is nothing.
fn write_batches(shared: &Shared, mut sink: impl Write) {
    let mut batch = Vec::new();
    loop {
        let (dropped, closing) = {
            let mut pending = shared.lock();
            while pending.bytes.is_empty() && pending.dropped == 0 && !pending.closing {
                pending.writer_waiting = true;
                pending = shared
                    .wake
                    .wait(pending)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            std::mem::swap(&mut batch, &mut pending.bytes);
            (std::mem::take(&mut pending.dropped), pending.closing)
        };
        // A failing sink (stderr closed, a full disk) loses lines, never
        // the server.
        if dropped > 0 {
            let _ = writeln!(
                sink,
                "wasmserve: {dropped} log lines dropped: more than {} MiB waited to be written",
                MAX_PENDING_BYTES / (1024 * 1024)
            );
        }
        let _ = sink.write_all(&batch);
        let _ = sink.flush();
        batch.clear();
        if batch.capacity() > KEPT_CAPACITY {
            batch = Vec::new();
        }
        if closing {
            let rest = std::mem::take(&mut shared.lock().bytes);
            let _ = sink.write_all(&rest);
            let _ = sink.flush();
            return;
        }
        std::thread::sleep(BATCH_INTERVAL);
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        {
            let mut pending = self.shared.lock();
            pending.closing = true;
            self.shared.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shelf(Arc<Mutex<Vec<u8>>>);

    impl Write for Shelf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shelf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default())
                .into_owned()
        }
    }

    #[test]
    fn every_line_is_written_in_order_and_the_rest_at_drop() -> std::io::Result<()> {
        let shelf = Shelf::default();
        let (mut writer, guard) = BatchedWriter::start("test-log", shelf.clone())?;
        for i in 0..1000 {
            writer.write_all(format!("line {i}\n").as_bytes())?;
        }
        drop(guard);
        let text = shelf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(i, line)| *line == format!("line {i}"))
        );
        Ok(())
    }

    #[test]
    fn a_lone_line_is_written_without_waiting_for_more() -> std::io::Result<()> {
        let shelf = Shelf::default();
        let (mut writer, _guard) = BatchedWriter::start("test-log", shelf.clone())?;
        writer.write_all(b"alone\n")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while shelf.text().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(shelf.text(), "alone\n");
        Ok(())
    }

    #[test]
    fn a_flood_past_the_bound_is_dropped_and_counted() -> std::io::Result<()> {
        /// A sink that takes its time, so lines pile up.
        struct Slow(Shelf);
        impl Write for Slow {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(50));
                self.0.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let shelf = Shelf::default();
        let (mut writer, guard) = BatchedWriter::start("test-log", Slow(shelf.clone()))?;
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        // 8 MiB offered at once: about half of it must be dropped.
        for _ in 0..8 * 1024 {
            writer.write_all(&line)?;
        }
        drop(guard);
        let text = shelf.text();
        assert!(
            text.len() <= MAX_PENDING_BYTES * 2,
            "{} bytes written",
            text.len()
        );
        assert!(text.contains("log lines dropped"));
        Ok(())
    }
}
