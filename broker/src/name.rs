//! Topic and group names, validated like Kafka's before they are used anywhere.

use crate::error::NameError;

/// The longest name Kafka accepts, and so the longest we accept.
pub const MAX_NAME_LEN: usize = 249;

/// Names starting with this prefix are reserved for internal topics (repartition topics of
/// pipelines, for instance).
pub const INTERNAL_PREFIX: &str = "__";

/// Checks a topic or group name: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
///
/// The `__` prefix is checked separately ([`Broker::topic`](crate::Broker::topic) refuses it,
/// [`Broker::internal_topic`](crate::Broker::internal_topic) requires it; groups may use it).
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    if name == "." || name == ".." {
        return Err(NameError::DotOnly);
    }
    if let Some((index, ch)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::InvalidChar { ch, index });
    }
    Ok(())
}

/// Checks a name for a user topic: a valid name that does not use the reserved `__` prefix.
pub fn validate_user_topic(name: &str) -> Result<(), NameError> {
    validate(name)?;
    if name.starts_with(INTERNAL_PREFIX) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// Checks a name for an internal topic: a valid name that starts with `__`.
pub fn validate_internal_topic(name: &str) -> Result<(), NameError> {
    validate(name)?;
    if !name.starts_with(INTERNAL_PREFIX) {
        return Err(NameError::NotInternal);
    }
    Ok(())
}
