//! The text log format without colours, written for less CPU per line: the
//! same lines as tracing-subscriber's default (`Full`) format, with the
//! line's pieces, the fields (`field_visitor.rs`) and the timestamp written
//! directly instead of through its styling. Every request creates a span
//! (its fields formatted at once) and ends with an access line; with the
//! default formatter those two were about a sixth of a datagram's CPU, 2.2
//! µs, now 1.0 (bench/RESULTS.md).
//!
//! ```text
//! 2026-12-07T07:00:30.924214Z  INFO conn{id=1 peer=127.0.0.1:39892 transport="tcp" handler="echo.wasm" version="a40dc7f44ec6"}: wasmserve::access: served outcome="ok" duration_ms=0.695 bytes_in=3 bytes_out=3
//! ```
//!
//! As in the default format, a message is written with terminal control
//! characters escaped, strings are quoted as `{:?}` quotes them, and `%`
//! and `?` values as they format themselves.

use std::cell::RefCell;
use std::fmt;
use std::time::SystemTime;

use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::field_visitor::record_fields;

/// Formats fields as `name=value`, separated by spaces.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PlainFields;

thread_local! {
    /// Where a set of fields is written first: a span's fields are kept as
    /// a string, which is then allocated once at its size instead of
    /// growing field by field.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The scratch string's capacity kept between uses.
const SCRATCH_KEPT: usize = 4096;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let recorded = record_fields(Writer::new(&mut *text), fields);
                let written = writer.write_str(&text);
                if text.capacity() > SCRATCH_KEPT {
                    *text = String::new();
                }
                recorded.and(written)
            }
            // A field's own formatting logged a line: straight through.
            Err(_) => record_fields(writer, fields),
        })
    }
}

/// Lines laid out as the default (`Full`) format lays them out without
/// colours: `TIME LEVEL span{fields}:span{fields}: target: fields`, each
/// piece written once rather than through its styling.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PlainLines;

impl<S, N> FormatEvent<S, N> for PlainLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A `log` record's own target and level, not the bridge's.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if UtcMicros.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_str(match *meta.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            // The space only after a span, as the default writes it (a
            // layer's filter may leave spans out of the scope).
            let mut seen = false;
            for span in scope.from_root() {
                seen = true;
                writer.write_str(span.metadata().name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// Timestamps as RFC 3339 in UTC with microseconds
/// (`2026-12-07T07:00:30.924214Z`), written in one piece.
#[derive(Debug, Default, Clone, Copy)]
struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        write!(
            writer,
            "{}",
            humantime::format_rfc3339_micros(SystemTime::now())
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};

    use super::{PlainFields, PlainLines};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if let Ok(mut captured) = self.0.lock() {
                captured.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer \x1b[31mfailure")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner cause")]
    struct Inner;

    /// Every kind of field this project logs, in a span and an event.
    fn log_every_kind() {
        let peer: std::net::SocketAddr = ([127, 0, 0, 1], 39892).into();
        let span = tracing::info_span!(
            "conn",
            id = 7u64,
            peer = %peer,
            transport = "tcp",
            r#type = "quoted \"and\" \\ escaped\u{1b}",
        );
        let _entered = span.enter();
        let error = Outer(Inner);
        tracing::warn!(
            target: "wasmserve::access",
            outcome = "ok",
            duration_ms = 0.695,
            signed = -3i64,
            flag = true,
            elapsed = ?std::time::Duration::from_millis(12),
            error = &error as &(dyn std::error::Error + 'static),
            "served \x1b[2J text \u{9b} and \u{e9}"
        );
    }

    fn captured(
        with: impl FnOnce(Captured) -> Box<dyn tracing::Subscriber + Send + Sync>,
    ) -> String {
        let out = Captured::default();
        tracing::subscriber::with_default(with(out.clone()), log_every_kind);
        let bytes = out.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Each line's text after its timestamp (27 characters), checking
    /// that the timestamp has the default's shape.
    fn after_time(text: &str) -> Vec<String> {
        text.lines()
            .map(|line| {
                // 2026-12-07T07:00:30.924214Z
                let stamp = line.get(..27).unwrap_or_default();
                assert_eq!(stamp.as_bytes().get(10), Some(&b'T'), "{line}");
                assert!(stamp.ends_with('Z'), "{line}");
                line.get(27..).unwrap_or_default().to_owned()
            })
            .collect()
    }

    #[test]
    fn lines_are_the_default_formats_lines() {
        let default = captured(|out| {
            Box::new(
                tracing_subscriber::fmt()
                    .with_writer(out)
                    .with_ansi(false)
                    .finish(),
            )
        });
        let plain = captured(|out| {
            Box::new(
                tracing_subscriber::fmt()
                    .with_writer(out)
                    .with_ansi(false)
                    .fmt_fields(PlainFields)
                    .event_format(PlainLines)
                    .finish(),
            )
        });
        assert!(default.contains("WARN conn{id=7"), "{default}");
        assert!(
            default.contains("served \\x1b[2J text \\u{9b}"),
            "{default}"
        );
        assert_eq!(after_time(&plain), after_time(&default));
    }

    #[test]
    fn a_layer_that_filters_out_the_span_writes_no_scope() {
        let only_events = || filter_fn(|meta| !meta.is_span());
        let default = captured(|out| {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(out)
                .with_ansi(false)
                .with_filter(only_events());
            Box::new(tracing_subscriber::registry().with(layer))
        });
        let plain = captured(|out| {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(out)
                .with_ansi(false)
                .fmt_fields(PlainFields)
                .event_format(PlainLines)
                .with_filter(only_events());
            Box::new(tracing_subscriber::registry().with(layer))
        });
        assert!(
            default.contains("WARN wasmserve::access: served"),
            "{default}"
        );
        assert_eq!(after_time(&plain), after_time(&default));
    }
}
