//! Shell-style globs for package names: `*`, `?` and `[...]` classes.

/// Tells whether `name` matches `pattern`. Without `*`, `?` or `[`, only an equal name matches.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches_from(&pattern, &name)
}

/// Tells whether `pattern` contains glob characters.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn matches_from(pattern: &[char], name: &[char]) -> bool {
    // Iterative matching with one backtrack point for the last `*`, linear in practice.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_matches(&pattern[p..], name[n]) {
                        if matched {
                            p += next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == '[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_n)) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against a class at the start of `pattern`. Returns whether it matched and the
/// class length, or `None` when the `[` is not closed.
fn class_matches(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let close = pattern.iter().skip(2).position(|&x| x == ']')? + 2;
    let body = &pattern[1..close];
    let (negated, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut matched = false;
    let mut index = 0;
    while index < body.len() {
        if index + 2 < body.len() && body[index + 1] == '-' {
            matched |= (body[index]..=body[index + 2]).contains(&c);
            index += 3;
        } else {
            matched |= body[index] == c;
            index += 1;
        }
    }
    Some((matched != negated, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_package_names() {
        assert!(glob_match(
            "linux-image-*-amd64",
            "linux-image-6.1.0-48-amd64"
        ));
        assert!(!glob_match("linux-image-*-amd64", "linux-image-amd64"));
        assert!(glob_match("lib?foo", "libxfoo"));
        assert!(glob_match("lib[a-c]z", "libbz"));
        assert!(!glob_match("lib[!a-c]z", "libbz"));
        assert!(glob_match("vim", "vim"));
        assert!(!glob_match("vim", "vim-tiny"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }
}
