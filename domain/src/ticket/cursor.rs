//! The opaque cursor of ticket lists.

use super::Ticket;
use crate::clock::Timestamp;
use crate::ids::TicketId;

/// Where a page of tickets ends, in their stable order `(created_at, ticket_id)`. Clients
/// see it as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCursor {
    pub created_at: Timestamp,
    pub ticket_id: TicketId,
}

impl TicketCursor {
    pub fn after(ticket: &Ticket) -> Self {
        Self { created_at: ticket.created_at, ticket_id: ticket.ticket_id.clone() }
    }

    pub fn encode(&self) -> String {
        let plain = format!("{}:{}", crate::clock::to_millis(self.created_at), self.ticket_id);
        plain.bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(s: &str) -> Option<Self> {
        if s.len() % 2 != 0 || s.len() > 1024 {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
        let plain = String::from_utf8(bytes?).ok()?;
        let (millis, id) = plain.split_once(':')?;
        // Exactly what `encode` writes (and what the OpenAPI pattern states): an optional
        // minus, 1 to 15 digits, and an id of visible ASCII.
        let digits = millis.strip_prefix('-').unwrap_or(millis);
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        Some(Self { created_at: crate::clock::from_millis(millis.parse().ok()?), ticket_id: TicketId::from(id) })
    }
}
