//! Glob-style patterns for KEYS and SCAN MATCH, with Redis's rules:
//!
//! - `*` any run of bytes, `?` any one byte;
//! - `[abc]`, `[^abc]` (negated), `[a-z]` (a range; reversed bounds are
//!   swapped), `\x` inside brackets is a literal `x`; a bracket that is
//!   never closed takes the rest of the pattern as its set;
//! - `\x` outside brackets matches `x` literally (a trailing `\` matches
//!   itself);
//! - bytes, not characters, and case-sensitive;
//! - an empty key matches only the empty pattern (Redis's matcher never
//!   lets `*` stand for nothing at the very end of an empty string; KEYS
//!   and SCAN skip matching altogether for the pattern `*`, see
//!   [`matches_all`]).
//!
//! The matcher is iterative (backtracking to the last `*` only), so a
//! hostile pattern costs at most pattern length × key length steps and
//! no stack.

/// One element of a compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Byte(u8),
    /// A bracket: negated, then single bytes and inclusive ranges.
    Class {
        negated: bool,
        items: Vec<(u8, u8)>,
    },
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    empty: bool,
}

/// Does `pattern` match every key, so that matching can be skipped (and
/// the empty key is included, as Redis's KEYS * and SCAN do)?
pub fn matches_all(pattern: &[u8]) -> bool {
    pattern == b"*"
}

impl Glob {
    pub fn new(pattern: &[u8]) -> Glob {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            match pattern[i] {
                b'*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                b'?' => tokens.push(Token::Any),
                b'\\' if i + 1 < pattern.len() => {
                    i += 1;
                    tokens.push(Token::Byte(pattern[i]));
                }
                b'[' => {
                    i += 1;
                    let negated = pattern.get(i) == Some(&b'^');
                    if negated {
                        i += 1;
                    }
                    let mut items = Vec::new();
                    while i < pattern.len() && pattern[i] != b']' {
                        if pattern[i] == b'\\' && i + 1 < pattern.len() {
                            i += 1;
                            items.push((pattern[i], pattern[i]));
                        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
                            let (a, b) = (pattern[i], pattern[i + 2]);
                            items.push((a.min(b), a.max(b)));
                            i += 2;
                        } else {
                            items.push((pattern[i], pattern[i]));
                        }
                        i += 1;
                    }
                    tokens.push(Token::Class { negated, items });
                }
                byte => tokens.push(Token::Byte(byte)),
            }
            i += 1;
        }
        Glob { tokens, empty: pattern.is_empty() }
    }

    fn token_matches(token: &Token, byte: u8) -> bool {
        match token {
            Token::Star | Token::Any => true,
            Token::Byte(b) => *b == byte,
            Token::Class { negated, items } => items.iter().any(|(lo, hi)| (*lo..=*hi).contains(&byte)) != *negated,
        }
    }

    pub fn matches(&self, key: &[u8]) -> bool {
        if key.is_empty() {
            return self.empty;
        }
        let (mut t, mut k) = (0, 0);
        // The last star seen and the key position it resumes from.
        let mut resume: Option<(usize, usize)> = None;
        while k < key.len() {
            match self.tokens.get(t) {
                Some(Token::Star) => {
                    resume = Some((t, k));
                    t += 1;
                }
                Some(token) if Self::token_matches(token, key[k]) => {
                    t += 1;
                    k += 1;
                }
                _ => match resume {
                    Some((star, from)) => {
                        resume = Some((star, from + 1));
                        t = star + 1;
                        k = from + 1;
                    }
                    None => return false,
                },
            }
        }
        self.tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, key: &str) -> bool {
        Glob::new(pattern.as_bytes()).matches(key.as_bytes())
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("a*b*", "ab"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("**", "x"));
        assert!(!m("a", "ab"));
        assert!(!m("ab", "a"));
    }

    #[test]
    fn classes_ranges_and_escapes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed bounds are swapped");
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("[\\]]", "]"));
        assert!(m("x\\", "x\\"), "a trailing backslash is literal");
        assert!(m("[ab", "b"), "an unclosed bracket takes the rest as its set");
        assert!(m("[a-", "-"));
    }

    #[test]
    fn the_empty_key_matches_only_the_empty_pattern() {
        assert!(m("", ""));
        assert!(!m("*", ""));
        assert!(!m("", "a"));
        assert!(matches_all(b"*"));
        assert!(!matches_all(b"**"));
    }

    #[test]
    fn hostile_patterns_are_cheap() {
        let key = "a".repeat(10_000);
        let pattern = "*a".repeat(1_000) + "b";
        assert!(!m(&pattern, &key));
    }
}
