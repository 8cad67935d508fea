//! "Did you mean": the nearest of a few known names to a misspelt one, for error messages
//! about settings, presets and validator names (`audiance`, `cloudflare`, `jwt_dmeo`).

/// The candidate closest to `word` when it is close enough to be the one meant: at most a
/// third of its letters edited (transpositions count once), or `word` a prefix of it
/// (`cloudflare` for `cloudflare_access`). Ties go to the first candidate.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    if word.is_empty() {
        return None;
    }
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == word {
            return None;
        }
        let distance = if candidate.len() > word.len() + 2 && candidate.starts_with(word) {
            limit
        } else {
            edit_distance(word, candidate)
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), on chars.
/// Names here are short: the three rows are a few dozen cells.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_strangers_are_not() {
        let keys = ["name", "issuer", "audience", "algorithm", "secret"];
        let cases = [
            ("audiance", Some("audience")),
            ("isuser", Some("issuer")),
            ("algoritm", Some("algorithm")),
            ("secert", Some("secret")),
            ("colour", None),
            ("", None),
            ("issuer", None),
        ];
        for (word, want) in cases {
            assert_eq!(did_you_mean(word, keys), want, "{word}");
        }
        let presets = ["cloudflare_access", "keycloak", "auth0", "entra_id"];
        assert_eq!(
            did_you_mean("cloudflare", presets),
            Some("cloudflare_access")
        );
        assert_eq!(did_you_mean("keyclaok", presets), Some("keycloak"));
        assert_eq!(did_you_mean("dmeo", ["demo", "other"]), Some("demo"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }
}
