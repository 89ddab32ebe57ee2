//! A minimal Server-Sent Events parser (the `text/event-stream` format).
//!
//! Fed arbitrary byte chunks as they arrive; yields complete events. Only
//! `event` and `data` fields matter to us; `id`, `retry` and comments are
//! skipped.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub(crate) name: String,
    /// The `data:` lines joined with `\n`.
    pub(crate) data: String,
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    name: Option<String>,
    data: Option<String>,
}

/// Lines longer than this are dropped with the event they belong to: a
/// misbehaving server must not make us buffer without bound.
const MAX_BUFFER: usize = 1 << 20;

impl SseParser {
    /// Feeds a chunk and returns the events it completed.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|&b| b == b'\n' || b == b'\r') {
            let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
            // Treat "\r\n" as one line ending.
            if line.last() == Some(&b'\r') && self.buffer.first() == Some(&b'\n') {
                self.buffer.remove(0);
            }
            line.pop();
            self.line(&String::from_utf8_lossy(&line), &mut events);
        }
        if self.buffer.len() > MAX_BUFFER {
            self.buffer.clear();
            self.name = None;
            self.data = None;
        }
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(SseEvent {
                    name: self.name.take().unwrap_or_else(|| "message".to_owned()),
                    data,
                });
            }
            self.name = None;
            return;
        }
        if line.starts_with(':') {
            return; // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nevent: rule").is_empty());
        let events = p.feed(b"set\r\ndata: {\"version\": 4}\r\n\r\ndata: a\ndata: b\n\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    name: "ruleset".into(),
                    data: "{\"version\": 4}".into()
                },
                SseEvent {
                    name: "message".into(),
                    data: "a\nb".into()
                },
            ]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: ruleset\n\n").is_empty());
        assert_eq!(p.feed(b"data: x\n\n")[0].name, "message");
    }
}
