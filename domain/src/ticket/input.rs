//! What a client may send for a ticket: the limits on subjects and texts.

use crate::error::FieldError;

pub const MAX_SUBJECT_CHARS: usize = 200;
/// The longest description or comment body, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

pub fn validate_subject(subject: &str) -> Result<(), FieldError> {
    let len = subject.trim().chars().count();
    if len == 0 || subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(FieldError::new("subject", format!("must be 1 to {MAX_SUBJECT_CHARS} characters")));
    }
    Ok(())
}

/// A description or comment body: 1 to [`MAX_TEXT_CHARS`] characters, not all blank.
pub fn validate_text(field: &'static str, text: &str) -> Result<(), FieldError> {
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(FieldError::new(field, format!("must be 1 to {MAX_TEXT_CHARS} characters, not all blank")));
    }
    Ok(())
}
