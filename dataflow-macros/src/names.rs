//! Names of stages: what a name may be, and one name per node.
//!
//! Names appear in metrics and graphs, and the names of `key_by`, `merge` and async stages
//! also name internal topics, so they use the characters every backend accepts in a topic
//! name. A name used twice in a pipeline (the same function in two places) gets `-2`, `-3`,
//! ... on its second, third, ... use; the runtime applies the same rule to the names of
//! `#[stage(name = "...")]` functions, which it learns at `start`.

/// The longest stage name.
const MAX_LEN: usize = 100;

/// Checks a name given with `name = "..."`, as a rustc-style message.
pub(crate) fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a stage name cannot be empty".to_owned());
    }
    if name.len() > MAX_LEN {
        return Err(format!(
            "a stage name has at most {MAX_LEN} characters, this one has {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "a stage name is made of ASCII letters, digits, `.`, `_` and `-` (it can name a topic), found {c:?}"
        ));
    }
    Ok(())
}

/// Makes `names` unique in order: a name already taken gets `-2`, `-3`, ...
pub(crate) fn unique(names: &mut [String]) {
    let mut taken = std::collections::HashSet::new();
    for name in names.iter_mut() {
        if !taken.contains(name.as_str()) {
            taken.insert(name.clone());
            continue;
        }
        let unique = (2..)
            .map(|n| format!("{name}-{n}"))
            .find(|candidate| !taken.contains(candidate.as_str()))
            .expect("some suffix is free");
        taken.insert(unique.clone());
        *name = unique;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_used_again_gets_the_next_free_suffix() {
        let mut names = ["parse", "parse", "parse-2", "parse"].map(str::to_owned);
        unique(&mut names);
        assert_eq!(names, ["parse", "parse-2", "parse-2-2", "parse-3"]);
    }

    #[test]
    fn names_must_fit_a_topic_name() {
        assert!(validate("by_page.v2-x").is_ok());
        assert_eq!(validate("").unwrap_err(), "a stage name cannot be empty");
        assert!(validate("by page").unwrap_err().contains("found ' '"));
        assert!(validate(&"x".repeat(101)).is_err());
    }
}
