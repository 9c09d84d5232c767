//! The mock payment provider, shaped like a card processor's sandbox: any `tok_*` pays,
//! `tok_decline` is declined, `tok_unavailable` means the provider is down (transient).
//!
//! A hold is paid in two steps, as with a real processor: [`authorize`] reserves the
//! amount under the hold's id (the provider's idempotency key, so however many confirms a
//! hold gets, it has one authorization), and the booking transaction captures it by
//! recording the payment with the booking. A confirm that loses the race for the hold
//! voids its authorization instead (the worker does; the sandbox reserves no funds), so a charge never exists without its booking.

use crate::ids::HoldId;

/// An authorization the booking transaction captures (or the worker voids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceipt {
    /// `pay_<hold_id>`: one per hold, whatever the number of confirm requests.
    pub payment_id: String,
    pub amount_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the card was declined")]
    Declined,
    #[error("the payment token is not a test token")]
    InvalidToken,
    #[error("the payment provider is unavailable")]
    Unavailable,
}

/// Reserves `amount_cents` for `hold_id`. Idempotent per hold: asking again for the same
/// hold answers the same authorization, as a provider keyed by the hold id would.
pub fn authorize(token: &str, amount_cents: u64, hold_id: &HoldId) -> Result<PaymentReceipt, PaymentError> {
    match token {
        "tok_decline" => Err(PaymentError::Declined),
        "tok_unavailable" => Err(PaymentError::Unavailable),
        t if t.starts_with("tok_") && t.len() > 4 => {
            Ok(PaymentReceipt { payment_id: payment_id(hold_id), amount_cents })
        }
        _ => Err(PaymentError::InvalidToken),
    }
}

/// The payment id a hold is charged under.
pub fn payment_id(hold_id: &HoldId) -> String {
    format!("pay_{}", hold_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_tokens_behave_like_a_card_processor() {
        let hold = HoldId::from("hold_1");
        assert_eq!(authorize("tok_visa", 900, &hold).unwrap().payment_id, "pay_hold_1");
        assert_eq!(authorize("tok_decline", 900, &hold), Err(PaymentError::Declined));
        assert_eq!(authorize("tok_unavailable", 900, &hold), Err(PaymentError::Unavailable));
        assert_eq!(authorize("visa", 900, &hold), Err(PaymentError::InvalidToken));
        assert_eq!(authorize("tok_", 900, &hold), Err(PaymentError::InvalidToken));
    }

    #[test]
    fn a_hold_has_one_authorization_whatever_the_token() {
        let hold = HoldId::from("hold_1");
        let first = authorize("tok_visa", 900, &hold).unwrap();
        let second = authorize("tok_mastercard", 900, &hold).unwrap();
        assert_eq!(first.payment_id, second.payment_id);
    }
}
