//! Commands: what ingress admits and a pool's workers apply. One JSON message each.

use crate::clock::{Timestamp, rfc3339};
use crate::ids::{HoldId, RequestId, SeatId, ShowId, UserId};
use crate::ports::Queue;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "customer" => Role::Customer,
            "agent" => Role::Agent,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// Agents and admins act on everyone's resources; customers only on their own.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }
}

/// Who asked for a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: UserId,
    pub role: Role,
}

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
    ExpireHold {
        hold_id: HoldId,
        #[serde(with = "rfc3339")]
        expires_at: Timestamp,
    },
}

impl Command {
    pub fn type_name(&self) -> &'static str {
        match self {
            Command::PlaceHold { .. } => "booking.hold.place",
            Command::ReleaseHold { .. } => "booking.hold.release",
            Command::ConfirmBooking { .. } => "booking.confirm",
            Command::ExpireHold { .. } => "booking.hold.expire",
        }
    }

    /// The queue of the pool that owns this command.
    pub fn queue(&self) -> Queue {
        Queue::BookingCommands
    }

    /// Whether a client is polling a status document for this command.
    pub fn has_status_doc(&self) -> bool {
        !matches!(self, Command::ExpireHold { .. })
    }
}

/// One message on a command queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub request_id: RequestId,
    pub actor: Actor,
    #[serde(with = "rfc3339")]
    pub issued_at: Timestamp,
    pub command: Command,
}

impl CommandEnvelope {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a command always serializes")
    }

    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_millis;

    #[test]
    fn envelopes_round_trip_with_a_type_tag() {
        let env = CommandEnvelope {
            request_id: "req_1".into(),
            actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
            issued_at: from_millis(1),
            command: Command::PlaceHold { show_id: "show_1".into(), seat_ids: vec!["A1".into()] },
        };
        let json = env.to_json();
        assert!(json.contains(r#""type":"booking.hold.place""#));
        assert_eq!(CommandEnvelope::parse(&json).unwrap(), env);
        assert!(CommandEnvelope::parse(r#"{"garbage":true}"#).is_err());
    }
}
