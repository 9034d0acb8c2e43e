//! "Did you mean" suggestions: the closest candidate by edit distance, if close enough.

/// The candidate closest to `input`, when the edit distance is small for its length.
/// Ties go to the shorter candidate, then to the alphabetically first.
pub fn did_you_mean<'a>(
    candidates: impl IntoIterator<Item = &'a str>,
    input: &str,
) -> Option<String> {
    let limit = (input.chars().count() / 3).max(1) + 1;
    candidates
        .into_iter()
        .filter(|c| *c != input)
        .map(|c| (strsim::levenshtein(c, input), c.len(), c))
        .filter(|(d, _, _)| *d <= limit)
        .min()
        .map(|(_, _, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn picks_the_closest_name() {
        let names = ["do_sys_open", "do_sys_openat2", "vfs_read"];
        assert_eq!(
            did_you_mean(names, "do_sys_opn").as_deref(),
            Some("do_sys_open")
        );
        assert_eq!(did_you_mean(names, "vfs_raed").as_deref(), Some("vfs_read"));
        assert_eq!(did_you_mean(names, "something_else"), None);
    }
}
