//! Property tests over the decoders that read what clients and queues send: the request
//! fingerprint's canonical form, the command envelope and the ticket list cursor. None
//! may panic on any input, and each round-trips what it encodes.

use domain::actor::{Actor, Role};
use domain::clock;
use domain::command::{Command, CommandEnvelope};
use domain::idempotency::Fingerprint;
use domain::ids::{RequestId, SeatId, ShowId, TicketId, UserId};
use domain::ticket::TicketCursor;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The same value with every object's fields inserted in reverse order.
fn reordered(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut fields: Vec<(String, Value)> = map.iter().map(|(k, v)| (k.clone(), reordered(v))).collect();
            fields.reverse();
            Value::Object(fields.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(reordered).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fingerprint_is_stable_under_key_order_and_spacing(body in json(), path in "/v1/[a-z/_0-9]{0,20}") {
        let first = Fingerprint::of("POST", &path, &body);
        prop_assert_eq!(&first, &Fingerprint::of("POST", &path, &reordered(&body)));
        // What ingress hashes is the body as parsed from the wire: sent compact or
        // pretty-printed, the same text parses to the same fingerprint.
        let compact: Value = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        let pretty: Value = serde_json::from_str(&serde_json::to_string_pretty(&body).unwrap()).unwrap();
        prop_assert_eq!(Fingerprint::of("POST", &path, &compact), Fingerprint::of("POST", &path, &pretty));
        // Another method or path is another request.
        prop_assert_ne!(&first, &Fingerprint::of("PUT", &path, &body));
        prop_assert_ne!(&first, &Fingerprint::of("POST", &format!("{path}x"), &body));
        prop_assert_eq!(first.as_str().len(), 64);
    }

    #[test]
    fn a_changed_field_changes_the_fingerprint(body in json(), key in "[a-z]{1,6}", a in any::<i64>(), b in any::<i64>()) {
        prop_assume!(a != b);
        let with = |n: i64| {
            let mut map = Map::new();
            map.insert(key.clone(), Value::from(n));
            map.insert("rest".into(), body.clone());
            Fingerprint::of("POST", "/v1/holds", &Value::Object(map))
        };
        prop_assert_ne!(with(a), with(b));
    }

    #[test]
    fn the_envelope_decoder_never_panics(body in ".{0,200}") {
        let _ = CommandEnvelope::parse(&body);
    }

    #[test]
    fn the_envelope_decoder_never_panics_on_json(body in json()) {
        let _ = CommandEnvelope::parse(&body.to_string());
    }

    #[test]
    fn an_envelope_round_trips(
        show in "[!-~]{1,40}",
        seats in prop::collection::vec("[A-Z][0-9]{1,2}", 1..10),
        sub in "\\PC{1,40}",
        millis in 0i64..4_102_444_800_000,
    ) {
        let envelope = CommandEnvelope {
            request_id: RequestId::generate(),
            actor: Actor { sub: UserId::new(sub), role: Role::Customer },
            issued_at: clock::from_millis(millis),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            command: Command::PlaceHold {
                show_id: ShowId::from(show.as_str()),
                seat_ids: seats.iter().map(|s| SeatId::from(s.as_str())).collect(),
            },
        };
        prop_assert_eq!(CommandEnvelope::parse(&envelope.to_json()).unwrap(), envelope);
    }

    #[test]
    fn the_cursor_decoder_never_panics(s in "\\PC{0,80}", hex in "[0-9a-fA-F]{0,120}") {
        let _ = TicketCursor::decode(&s);
        let _ = TicketCursor::decode(&hex);
    }

    #[test]
    fn a_cursor_round_trips(millis in -62_000_000_000_000i64..250_000_000_000_000, id in "[!-~]{1,60}") {
        let cursor = TicketCursor { created_at: clock::from_millis(millis), ticket_id: TicketId::from(id.as_str()) };
        let encoded = cursor.encode();
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_hexdigit()));
        prop_assert_eq!(TicketCursor::decode(&encoded), Some(cursor));
    }
}
