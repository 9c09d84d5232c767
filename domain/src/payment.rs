//! The mock payment provider, shaped like a card processor's sandbox: any `tok_*` pays,
//! `tok_decline` is declined, `tok_unavailable` means the provider is down (transient).

use crate::ids::RequestId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceipt {
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

/// Charges `amount_cents`. Idempotent per request: a redelivered command is charged once,
/// which a real provider would do with the request id as its idempotency key.
pub fn charge(token: &str, amount_cents: u64, request_id: &RequestId) -> Result<PaymentReceipt, PaymentError> {
    match token {
        "tok_decline" => Err(PaymentError::Declined),
        "tok_unavailable" => Err(PaymentError::Unavailable),
        t if t.starts_with("tok_") && t.len() > 4 => {
            Ok(PaymentReceipt { payment_id: format!("pay_{}", request_id.as_str()), amount_cents })
        }
        _ => Err(PaymentError::InvalidToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_tokens_behave_like_a_card_processor() {
        let id = RequestId::from("req_1");
        assert_eq!(charge("tok_visa", 900, &id).unwrap().payment_id, "pay_req_1");
        assert_eq!(charge("tok_decline", 900, &id), Err(PaymentError::Declined));
        assert_eq!(charge("tok_unavailable", 900, &id), Err(PaymentError::Unavailable));
        assert_eq!(charge("visa", 900, &id), Err(PaymentError::InvalidToken));
        assert_eq!(charge("tok_", 900, &id), Err(PaymentError::InvalidToken));
    }
}
