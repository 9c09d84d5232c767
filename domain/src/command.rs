//! Commands: what ingress admits and a pool's workers apply. One JSON message each.

use crate::actor::Actor;
use crate::clock::Timestamp;
use crate::ids::{HoldId, RequestId, SeatId, ShowId, TicketId, UserId};
use crate::queue::{ATTR_REQUEST_ID, ATTR_TRACEPARENT, ATTR_TYPE, Attributes, OutgoingMessage, Queue};
use crate::ticket::{Priority, TicketChange, TicketStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Command {
    #[serde(rename = "booking.hold.place")]
    PlaceHold { show_id: ShowId, seat_ids: Vec<SeatId> },
    #[serde(rename = "booking.hold.release")]
    ReleaseHold { hold_id: HoldId },
    #[serde(rename = "booking.confirm")]
    ConfirmBooking { hold_id: HoldId, payment_token: String },
    /// Internal: sent delayed by the worker that placed the hold. It has no status document
    /// of its own; `request_id` in its envelope is the request that placed the hold.
    #[serde(rename = "booking.hold.expire")]
    ExpireHold { hold_id: HoldId, expires_at: Timestamp },
    #[serde(rename = "ticket.create")]
    CreateTicket { subject: String, description: String, priority: Priority },
    #[serde(rename = "ticket.assign")]
    AssignTicket { ticket_id: TicketId, agent_id: UserId },
    #[serde(rename = "ticket.transition")]
    TransitionTicket {
        ticket_id: TicketId,
        to: TicketStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    #[serde(rename = "ticket.comment")]
    CommentTicket { ticket_id: TicketId, body: String, public: bool },
}

/// Every command's `type`, as [`Command::type_name`] names it.
pub const COMMAND_TYPES: [&str; 8] = [
    "booking.hold.place",
    "booking.hold.release",
    "booking.confirm",
    "booking.hold.expire",
    "ticket.create",
    "ticket.assign",
    "ticket.transition",
    "ticket.comment",
];

/// The one command with no status document: a hold's expiry, which no client sent.
const WITHOUT_STATUS_DOC: &str = "booking.hold.expire";

/// Whether a command of type `name` has a status document; `None` if `name` is no
/// command's type.
pub fn type_has_status_doc(name: &str) -> Option<bool> {
    COMMAND_TYPES.contains(&name).then(|| name != WITHOUT_STATUS_DOC)
}

/// Whether `name` is the `type` of a message Usher sends: a command's or an event's. What
/// an operator may filter a DLQ replay by.
pub fn is_message_type(name: &str) -> bool {
    COMMAND_TYPES.contains(&name) || crate::event::EventType::parse(name).is_some()
}

impl Command {
    pub fn type_name(&self) -> &'static str {
        match self {
            Command::PlaceHold { .. } => "booking.hold.place",
            Command::ReleaseHold { .. } => "booking.hold.release",
            Command::ConfirmBooking { .. } => "booking.confirm",
            Command::ExpireHold { .. } => "booking.hold.expire",
            Command::CreateTicket { .. } => "ticket.create",
            Command::AssignTicket { .. } => "ticket.assign",
            Command::TransitionTicket { .. } => "ticket.transition",
            Command::CommentTicket { .. } => "ticket.comment",
        }
    }

    /// The queue of the pool that owns this command.
    pub fn queue(&self) -> Queue {
        match self {
            Command::PlaceHold { .. }
            | Command::ReleaseHold { .. }
            | Command::ConfirmBooking { .. }
            | Command::ExpireHold { .. } => Queue::BookingCommands,
            Command::CreateTicket { .. }
            | Command::AssignTicket { .. }
            | Command::TransitionTicket { .. }
            | Command::CommentTicket { .. } => Queue::TicketCommands,
        }
    }

    /// The ticket and the change a ticket command (other than creation) asks for.
    pub fn ticket_change(&self) -> Option<(&TicketId, TicketChange)> {
        Some(match self {
            Command::AssignTicket { ticket_id, agent_id } => {
                (ticket_id, TicketChange::Assign { agent_id: agent_id.clone() })
            }
            Command::TransitionTicket { ticket_id, to, comment } => {
                (ticket_id, TicketChange::Transition { to: *to, comment: comment.clone() })
            }
            Command::CommentTicket { ticket_id, body, public } => {
                (ticket_id, TicketChange::Comment { body: body.clone(), public: *public })
            }
            _ => return None,
        })
    }

    /// Whether a client is polling a status document for this command.
    pub fn has_status_doc(&self) -> bool {
        self.type_name() != WITHOUT_STATUS_DOC
    }
}

/// One message on a command queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub request_id: RequestId,
    pub actor: Actor,
    pub issued_at: Timestamp,
    /// The W3C trace context of the request that admitted it (or of the worker that sent
    /// it), carried as the message's `traceparent` attribute too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub command: Command,
}

impl CommandEnvelope {
    pub fn to_json(&self) -> String {
        crate::to_json_sized(self, 512).expect("a command always serializes")
    }

    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }

    /// The message that carries this command, with its `type`, `request_id` and (when
    /// traced) `traceparent` attributes.
    pub fn message(&self) -> OutgoingMessage {
        let mut attributes = Attributes::from([
            (ATTR_TYPE.to_owned(), self.command.type_name().to_owned()),
            (ATTR_REQUEST_ID.to_owned(), self.request_id.to_string()),
        ]);
        if let Some(traceparent) = &self.traceparent {
            attributes.insert(ATTR_TRACEPARENT.to_owned(), traceparent.clone());
        }
        OutgoingMessage::new(self.to_json(), attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::Role;
    use crate::clock::from_millis;

    #[test]
    fn envelopes_round_trip_with_a_type_tag() {
        let env = CommandEnvelope {
            request_id: "req_1".into(),
            actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
            issued_at: from_millis(1),
            traceparent: None,
            command: Command::PlaceHold { show_id: "show_1".into(), seat_ids: vec!["A1".into()] },
        };
        let json = env.to_json();
        assert!(json.contains(r#""type":"booking.hold.place""#));
        assert_eq!(CommandEnvelope::parse(&json).unwrap(), env);
        assert!(CommandEnvelope::parse(r#"{"garbage":true}"#).is_err());
        assert!(!env.message().attributes.contains_key(ATTR_TRACEPARENT), "untraced: no attribute");
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced = CommandEnvelope { traceparent: Some(tp.to_owned()), ..env };
        assert_eq!(traced.message().attributes[ATTR_TRACEPARENT], tp);
        assert_eq!(CommandEnvelope::parse(&traced.to_json()).unwrap(), traced);
    }

    #[test]
    fn only_a_hold_expiry_has_no_status_doc() {
        assert_eq!(type_has_status_doc("booking.hold.expire"), Some(false));
        for name in COMMAND_TYPES.iter().filter(|n| **n != "booking.hold.expire") {
            assert_eq!(type_has_status_doc(name), Some(true), "{name}");
        }
        assert_eq!(type_has_status_doc("booking.confirmed"), None, "an event's type is no command's");
        let expiry = Command::ExpireHold { hold_id: "hold_1".into(), expires_at: from_millis(1) };
        assert!(!expiry.has_status_doc());
        assert!(Command::PlaceHold { show_id: "show_1".into(), seat_ids: vec![] }.has_status_doc());
    }

    #[test]
    fn every_listed_command_type_is_a_command() {
        for name in COMMAND_TYPES {
            // A listed type lacks its fields, not its variant.
            let error = serde_json::from_str::<Command>(&format!(r#"{{"type":"{name}"}}"#)).unwrap_err().to_string();
            assert!(error.contains("missing field"), "{name}: {error}");
            assert!(is_message_type(name));
        }
        assert!(is_message_type("usher.booking.confirmed") && is_message_type("usher.request.dead_lettered"));
        assert!(!is_message_type("usher.nope") && !is_message_type("booking.hold") && !is_message_type(""));
    }

    #[test]
    fn ticket_commands_go_to_the_ticket_queue() {
        let create = Command::CreateTicket { subject: "s".into(), description: "d".into(), priority: Priority::Low };
        let comment = Command::CommentTicket { ticket_id: "tkt_1".into(), body: "b".into(), public: true };
        let transition =
            Command::TransitionTicket { ticket_id: "tkt_1".into(), to: TicketStatus::OnHold, comment: None };
        for c in [&create, &comment, &transition] {
            assert_eq!(c.queue(), Queue::TicketCommands);
            assert!(c.has_status_doc());
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json["type"], c.type_name());
            assert_eq!(&serde_json::from_value::<Command>(json).unwrap(), c);
        }
        assert_eq!(serde_json::to_value(&transition).unwrap()["to"], "on_hold");
        assert!(create.ticket_change().is_none());
        assert_eq!(comment.ticket_change().unwrap().0.as_str(), "tkt_1");
        let place = Command::PlaceHold { show_id: "show_1".into(), seat_ids: vec![] };
        assert_eq!(place.queue(), Queue::BookingCommands);
    }
}
