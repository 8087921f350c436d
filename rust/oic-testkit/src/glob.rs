//! Shell-style globs for URL paths.

/// Returns whether `text` matches `pattern`, where `*` matches any run of bytes (including `/`)
/// and `?` matches one byte, as Python's `fnmatch.fnmatchcase` does without brackets.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = pattern.as_bytes();
    let text = text.as_bytes();
    let (mut p, mut t) = (0, 0);
    // Position after the last `*` and the text position it matched up to, for backtracking.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p + 1, t));
            p += 1;
        } else if let Some((after_star, matched)) = star {
            p = after_star;
            t = matched + 1;
            star = Some((after_star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn star_matches_across_slashes() {
        assert!(glob_match("*/InRelease", "/dists/bookworm/InRelease"));
        assert!(glob_match(
            "/pool/*.deb",
            "/pool/main/h/hello/hello_1_amd64.deb"
        ));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn literal_and_question_mark() {
        assert!(glob_match("/a?c", "/abc"));
        assert!(!glob_match("/a?c", "/ac"));
        assert!(!glob_match("/dists/*/Release", "/dists/x/InRelease.gz"));
        assert!(!glob_match("*/Release", "/dists/x/Release.gpg"));
    }
}
