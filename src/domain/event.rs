//! Events sent by apps: exposures (a user saw a variant) and track events (a user did
//! something). A batch is validated whole before anything is stored.

use serde::{Deserialize, Serialize};

use super::validation::{is_storable, Problems, ValidationError, NUL_RULE};
use super::{parse_rfc3339, Millis};

/// By default, events further in the future than this are refused as a clock or
/// unit mistake.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: Millis = 24 * 3600 * 1000;
const MAX_ID_CHARS: usize = 128;
const MAX_USER_CHARS: usize = 256;
const MAX_NAME_CHARS: usize = 128;
/// The largest magnitude of a track event's value: far above any price or count,
/// and far enough below `f64::MAX` that per-user sums and their squares in the
/// running totals stay finite. (An infinite sum of squares once made every later
/// commit to that variant fail on SQLite, which stores the next NaN as NULL.)
pub const MAX_ABS_VALUE: f64 = 1e15;

/// One event as the wire carries it; checked by [`validate_batch`].
#[derive(Debug, Clone, Deserialize)]
pub struct EventInput {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub user: String,
    #[serde(default)]
    pub experiment: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub ts: Option<String>,
    /// For exposures: the user's attributes; those the experiment lists as
    /// `dimensions` are kept for breakdowns.
    #[serde(default)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Exposure {
        experiment: String,
        variant: String,
        /// The kept dimensions as a JSON object, if the experiment has any.
        dimensions: Option<String>,
    },
    /// `value` defaults to 1: an event without a value counts as one occurrence.
    Track { event: String, value: f64 },
}

/// A validated event. `id` is unique across all events: a repeat is a duplicate.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub user: String,
    pub ts: Millis,
    pub kind: EventKind,
}

/// Why a well-formed event is not counted: it names what this server does not
/// serve to the key's environment, or it is older than the raw events kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCounted {
    Experiment,
    Variant,
    Expired,
}

impl NotCounted {
    pub fn problem(self) -> &'static str {
        match self {
            NotCounted::Experiment => "unknown experiment",
            NotCounted::Variant => "unknown variant",
            NotCounted::Expired => "older than the raw events kept",
        }
    }
}

/// The cut-offs of one pass of raw-event retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// Finished experiments whose exposure events before `before` go.
    pub finished: Vec<String>,
    pub before: Millis,
    /// Track events before this go.
    pub tracks_before: Millis,
}

/// What validation needs to know of a served experiment.
#[derive(Debug, Clone, Copy)]
pub struct ServedFacts<'d> {
    /// The attributes to keep with an exposure.
    pub dimensions: &'d [String],
    /// An exposure stamped earlier is counted from this time (the start), so
    /// that a back-dated exposure cannot claim conversions from before the
    /// experiment ran.
    pub exposed_from: Millis,
}

/// When a batch is validated, how far ahead of it an event may be stamped, and
/// the oldest time raw events are kept from (an older event could not be kept
/// nor told apart from one already expired, so it is not counted).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Millis,
    pub max_skew: Millis,
    pub kept_from: Millis,
}

/// An event of a batch that is not counted, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SkippedEvent {
    pub index: usize,
    pub problem: &'static str,
}

/// A batch that passed validation: what to store, and what is not counted.
#[derive(Debug, Default)]
pub struct ValidBatch {
    pub events: Vec<Event>,
    pub skipped: Vec<SkippedEvent>,
}

/// Keeps the attributes named in `dimensions` that have a scalar value, as a JSON
/// object; `None` when none is kept.
pub fn keep_dimensions(
    attributes: &serde_json::Map<String, serde_json::Value>,
    dimensions: &[String],
) -> Option<String> {
    let kept: serde_json::Map<String, serde_json::Value> = dimensions
        .iter()
        .filter_map(|name| {
            let value = attributes.get(name)?;
            let scalar = value.is_string() || value.is_number() || value.is_boolean();
            scalar.then(|| (name.clone(), value.clone()))
        })
        .collect();
    (!kept.is_empty()).then(|| serde_json::Value::Object(kept).to_string())
}

/// Validates every event; on any problem nothing is accepted and each problem names
/// its event as `events[i].field`. An exposure `check_exposure` does not know is
/// skipped, not a problem. Events without `ts` get `clock.now`; an event stamped
/// more than `clock.max_skew` ahead of it is refused.
pub fn validate_batch<'d>(
    inputs: Vec<EventInput>,
    clock: Clock,
    check_exposure: impl Fn(&str, &str) -> Result<ServedFacts<'d>, NotCounted>,
) -> Result<ValidBatch, ValidationError> {
    let mut problems = Problems::default();
    let mut batch = ValidBatch {
        events: Vec::with_capacity(inputs.len()),
        skipped: Vec::new(),
    };
    for (index, input) in inputs.into_iter().enumerate() {
        match validate_one(input, clock, &check_exposure, &mut problems, index) {
            Some(Ok(event)) => batch.events.push(event),
            Some(Err(unknown)) => batch.skipped.push(SkippedEvent {
                index,
                problem: unknown.problem(),
            }),
            None => {}
        }
    }
    problems.into_result().map(|()| batch)
}

fn validate_one<'d>(
    input: EventInput,
    Clock {
        now,
        max_skew,
        kept_from,
    }: Clock,
    check_exposure: &impl Fn(&str, &str) -> Result<ServedFacts<'d>, NotCounted>,
    problems: &mut Problems,
    i: usize,
) -> Option<Result<Event, NotCounted>> {
    let before = problems.len();
    let field = |name: &str| format!("events[{i}].{name}");
    check_name(problems, &field("id"), &input.id, MAX_ID_CHARS);
    check_name(problems, &field("user"), &input.user, MAX_USER_CHARS);
    let ts = match &input.ts {
        None => now,
        Some(text) => match parse_rfc3339(text) {
            Some(ts) if ts <= now.saturating_add(max_skew) => ts,
            Some(_) => {
                let seconds = max_skew / 1000;
                let problem = format!("is more than {seconds} s ahead of the server's clock");
                problems.add(field("ts"), problem);
                now
            }
            None => {
                problems.add(field("ts"), "must be an RFC 3339 time");
                now
            }
        },
    };
    let kind = match input.kind.as_str() {
        "exposure" => exposure_kind(&input, check_exposure, problems, &field),
        "track" => track_kind(&input, problems, &field).map(|kind| Ok((kind, Millis::MIN))),
        _ => {
            problems.add(field("type"), "must be \"exposure\" or \"track\"");
            None
        }
    };
    let kind = kind.filter(|_| problems.len() == before)?;
    if ts < kept_from {
        return Some(Err(NotCounted::Expired));
    }
    Some(kind.map(|(kind, counts_from)| Event {
        id: input.id,
        user: input.user,
        ts: ts.max(counts_from),
        kind,
    }))
}

/// An exposure's kind, and the earliest time it counts from.
fn exposure_kind<'d>(
    input: &EventInput,
    check_exposure: &impl Fn(&str, &str) -> Result<ServedFacts<'d>, NotCounted>,
    problems: &mut Problems,
    field: &impl Fn(&str) -> String,
) -> Option<Result<(EventKind, Millis), NotCounted>> {
    let (Some(experiment), Some(variant)) = (&input.experiment, &input.variant) else {
        problems.add(
            field("experiment"),
            "an exposure needs both \"experiment\" and \"variant\"",
        );
        return None;
    };
    Some(check_exposure(experiment, variant).map(|served| {
        let kind = EventKind::Exposure {
            experiment: experiment.clone(),
            variant: variant.clone(),
            dimensions: input
                .attributes
                .as_ref()
                .and_then(|a| keep_dimensions(a, served.dimensions)),
        };
        (kind, served.exposed_from)
    }))
}

fn track_kind(
    input: &EventInput,
    problems: &mut Problems,
    field: &impl Fn(&str) -> String,
) -> Option<EventKind> {
    let Some(event) = &input.event else {
        problems.add(field("event"), "a track event needs \"event\"");
        return None;
    };
    check_name(problems, &field("event"), event, MAX_NAME_CHARS);
    let value = input.value.unwrap_or(1.0);
    if !value.is_finite() || value.abs() > MAX_ABS_VALUE {
        let range = format!("must be a number from -{MAX_ABS_VALUE:e} to {MAX_ABS_VALUE:e}");
        problems.add(field("value"), range);
    }
    Some(EventKind::Track {
        event: event.clone(),
        value,
    })
}

fn check_name(problems: &mut Problems, field: &str, text: &str, max_chars: usize) {
    if text.is_empty() || text.chars().count() > max_chars {
        problems.add(field, format!("must be 1 to {max_chars} characters"));
    }
    problems.check(is_storable(text), field, NUL_RULE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> EventInput {
        serde_json::from_value(json).unwrap()
    }

    const STARTED: Millis = 1_000_000;

    fn clock(now: Millis) -> Clock {
        Clock {
            now,
            max_skew: DEFAULT_MAX_CLOCK_SKEW_MS,
            kept_from: Millis::MIN,
        }
    }

    fn known(experiment: &str, variant: &str) -> Result<ServedFacts<'static>, NotCounted> {
        match (experiment, variant) {
            ("exp", "a" | "b") => Ok(ServedFacts {
                dimensions: &[],
                exposed_from: STARTED,
            }),
            ("exp", _) => Err(NotCounted::Variant),
            _ => Err(NotCounted::Experiment),
        }
    }

    #[test]
    fn valid_batch_keeps_order_and_defaults() {
        let now = parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
        let events = validate_batch(
            vec![
                input(serde_json::json!({"id": "1", "type": "exposure", "user": "ユーザー", "experiment": "exp", "variant": "b", "ts": "2026-01-01T00:00:00Z"})),
                input(serde_json::json!({"id": "2", "type": "track", "user": "u", "event": "purchase"})),
            ],
            clock(now),
            known,
        )
        .unwrap()
        .events;
        assert_eq!(events[0].ts, parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
        assert_eq!(events[1].ts, now);
        assert_eq!(
            events[1].kind,
            EventKind::Track {
                event: "purchase".into(),
                value: 1.0
            }
        );
    }

    #[test]
    fn exposures_for_what_is_not_served_are_skipped_not_refused() {
        let batch = validate_batch(
            vec![
                input(serde_json::json!({"id": "1", "type": "exposure", "user": "u", "experiment": "other", "variant": "a"})),
                input(serde_json::json!({"id": "2", "type": "exposure", "user": "u", "experiment": "exp", "variant": "zz"})),
                input(serde_json::json!({"id": "3", "type": "exposure", "user": "u", "experiment": "exp", "variant": "a"})),
            ],
            clock(STARTED),
            known,
        )
        .unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].id, "3");
        assert_eq!(
            batch.skipped,
            [
                SkippedEvent {
                    index: 0,
                    problem: "unknown experiment"
                },
                SkippedEvent {
                    index: 1,
                    problem: "unknown variant"
                },
            ]
        );
    }

    #[test]
    fn a_malformed_event_rejects_the_batch_even_when_it_names_an_unknown_experiment() {
        let err = validate_batch(
            vec![input(serde_json::json!({"id": "", "type": "exposure", "user": "u", "experiment": "other", "variant": "a"}))],
            clock(STARTED),
            known,
        )
        .unwrap_err();
        assert_eq!(err.problems[0].field, "events[0].id");
    }

    #[test]
    fn a_back_dated_exposure_counts_from_the_start_and_tracks_keep_their_time() {
        let batch = validate_batch(
            vec![
                input(serde_json::json!({"id": "1", "type": "exposure", "user": "u", "experiment": "exp", "variant": "a", "ts": "1970-01-01T00:00:00Z"})),
                input(serde_json::json!({"id": "2", "type": "track", "user": "u", "event": "buy", "ts": "1970-01-01T00:00:00Z"})),
            ],
            clock(STARTED + 5),
            known,
        )
        .unwrap();
        assert_eq!(batch.events[0].ts, STARTED);
        assert_eq!(batch.events[1].ts, 0);
    }

    #[test]
    fn events_older_than_the_raw_events_kept_are_not_counted() {
        let batch = validate_batch(
            vec![
                input(serde_json::json!({"id": "1", "type": "track", "user": "u", "event": "e", "ts": "1970-01-01T00:00:01Z"})),
                input(serde_json::json!({"id": "2", "type": "track", "user": "u", "event": "e", "ts": "1970-01-01T00:00:03Z"})),
            ],
            Clock {
                kept_from: 2_000,
                ..clock(STARTED)
            },
            known,
        )
        .unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(
            batch.skipped,
            [SkippedEvent {
                index: 0,
                problem: "older than the raw events kept"
            }]
        );
    }

    #[test]
    fn the_allowed_clock_skew_is_configurable() {
        let ahead = || {
            vec![input(
                serde_json::json!({"id": "1", "type": "track", "user": "u", "event": "e", "ts": "1970-01-01T00:01:00Z"}),
            )]
        };
        let strict = Clock {
            max_skew: 30_000,
            ..clock(0)
        };
        let err = validate_batch(ahead(), strict, known).unwrap_err();
        assert_eq!(
            err.problems[0].problem,
            "is more than 30 s ahead of the server's clock"
        );
        let lenient = Clock {
            max_skew: 60_000,
            ..clock(0)
        };
        assert!(validate_batch(ahead(), lenient, known).is_ok());
    }

    #[test]
    fn every_problem_names_its_event_index() {
        let err = validate_batch(
            vec![
                input(serde_json::json!({"id": "1", "type": "track", "user": "u", "event": "e"})),
                input(serde_json::json!({"id": "", "type": "exposure", "user": "u", "experiment": "exp", "variant": "a"})),
                input(serde_json::json!({"id": "3", "type": "click", "user": "u"})),
                input(serde_json::json!({"id": "4", "type": "track", "user": "u", "event": "e", "ts": "soon"})),
                input(serde_json::json!({"id": "5", "type": "track", "user": "u", "event": "e", "ts": "2099-01-01T00:00:00Z"})),
            ],
            clock(STARTED),
            known,
        )
        .unwrap_err();
        let fields: Vec<_> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "events[1].id",
                "events[2].type",
                "events[3].ts",
                "events[4].ts"
            ]
        );
    }
}
