//! "did you mean": the closest candidate to a misspelt name.

/// The closest candidate by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (distance(name, c), c))
        .filter(|&(d, c)| d > 0 && d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance where swapping two neighbouring characters is one edit, as in a typo
/// (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = substitution.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_closest_candidate() {
        assert_eq!(closest("mapp", ["map", "filter"].into_iter()), Some("map"));
        assert_eq!(
            closest("fliter", ["map", "filter"].into_iter()),
            Some("filter")
        );
        assert_eq!(closest("zzzzzz", ["map", "filter"].into_iter()), None);
    }

    #[test]
    fn a_swap_of_two_letters_is_one_typo() {
        assert_eq!(distance("inptu", "input"), 1);
        assert_eq!(
            closest("inptu", ["input", "out"].into_iter()),
            Some("input")
        );
    }

    #[test]
    fn an_exact_match_is_not_a_suggestion() {
        assert_eq!(closest("map", ["map"].into_iter()), None);
    }
}
