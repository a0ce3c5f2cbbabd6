//! Text to tokens, as Keras' `TextVectorization` does it: standardize, then split.
//!
//! - Standardize (`lower_and_strip_punctuation`, Keras' default): lower-case, then
//!   remove every character matched by Keras' `DEFAULT_STRIP_REGEX`,
//!   `[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']`. That class is exactly the 32 ASCII
//!   punctuation characters (Python's `string.punctuation`; `,-\.` is the range `,` `-`
//!   `.`), so it is [`char::is_ascii_punctuation`] here. Removed, not replaced by a space
//!   (`don't` -> `dont`, `x-ray` -> `xray`, `a.b` -> `ab`), as Keras does. Non-ASCII
//!   punctuation (`—`, `“`, `¿`) is kept, as in Keras.
//! - Lower-casing is Unicode-aware ([`str::to_lowercase`]: `ÉCOLE` -> `école`,
//!   `ΣΑΣ` -> `σας`). **This differs from Keras**, whose `tf.strings.lower` lower-cases
//!   ASCII letters only (checked with TensorFlow 2.21: `ÉCOLE` -> `École`); on ASCII text
//!   the two agree. We chose Unicode so `École` and `école` are one token.
//! - Split (`whitespace`, Keras' default): on runs of the six ASCII white-space bytes
//!   space, `\t`, `\n`, `\v` (0x0B), `\f`, `\r`, with no empty tokens. That is what
//!   `tf.strings.split` does (checked: a no-break space U+00A0, an ideographic space
//!   U+3000 and 0x1C do not split), and it is neither Rust's `split_whitespace`
//!   (Unicode) nor `split_ascii_whitespace` (no `\v`).

use serde::{Deserialize, Serialize};

/// How text is standardized before splitting (Keras' `standardize` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Standardize {
    /// Lower-case (Unicode), then remove ASCII punctuation: Keras' default.
    #[default]
    LowerAndStripPunctuation,
    /// Lower-case only.
    Lower,
    /// Remove ASCII punctuation only.
    StripPunctuation,
    /// Leave the text as it is.
    None,
}

/// The characters Keras' default strip regex removes: the 32 ASCII punctuation marks.
pub fn is_stripped(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// `text` standardized by `mode` (see the module docs for what each step does).
pub fn standardize(text: &str, mode: Standardize) -> String {
    let lower = matches!(
        mode,
        Standardize::LowerAndStripPunctuation | Standardize::Lower
    );
    let strip = matches!(
        mode,
        Standardize::LowerAndStripPunctuation | Standardize::StripPunctuation
    );
    let text = if lower {
        text.to_lowercase()
    } else {
        text.to_string()
    };
    if strip {
        text.chars().filter(|&c| !is_stripped(c)).collect()
    } else {
        text
    }
}

/// The white space `tf.strings.split` splits on: space, `\t`, `\n`, `\v`, `\f`, `\r`.
pub fn is_split_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// The non-empty runs of `text` between white space (see [`is_split_space`]).
pub fn split_whitespace(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_split_space).filter(|t| !t.is_empty())
}

/// Standardize, then split: the tokens Keras' `TextVectorization` counts and looks up.
pub fn tokenize(text: &str, mode: Standardize) -> Vec<String> {
    split_whitespace(&standardize(text, mode))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_ascii_punctuation() {
        // Python: string.punctuation, the set Keras' regex matches.
        let punct = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;
        assert_eq!(punct.len(), 32);
        assert!(punct.chars().all(is_stripped));
        let stripped: Vec<char> = (0u8..128)
            .map(char::from)
            .filter(|&c| is_stripped(c))
            .collect();
        assert_eq!(stripped.len(), 32);
        assert_eq!(
            standardize("Don't x-ray a.b [UNK] — ¿Qué?", Standardize::default()),
            "dont xray ab unk — ¿qué"
        );
    }

    #[test]
    fn modes() {
        let t = "Hello, World!";
        assert_eq!(standardize(t, Standardize::Lower), "hello, world!");
        assert_eq!(standardize(t, Standardize::StripPunctuation), "Hello World");
        assert_eq!(standardize(t, Standardize::None), t);
        // Unicode lower-casing (Keras would keep É and Σ: see the module docs).
        assert_eq!(standardize("ÉCOLE ΣΑΣ", Standardize::Lower), "école σας");
    }

    #[test]
    fn splits_like_tf_strings_split() {
        let t = "  a\tb\nc\u{0B}d\u{0C}e\rf  g\u{A0}h\u{3000}i\u{1C}j ";
        assert_eq!(
            split_whitespace(t).collect::<Vec<_>>(),
            ["a", "b", "c", "d", "e", "f", "g\u{A0}h\u{3000}i\u{1C}j"]
        );
        assert!(split_whitespace(" \t\n").next().is_none());
        assert_eq!(
            tokenize("The cat. THE dog!", Standardize::default()),
            ["the", "cat", "the", "dog"]
        );
        // Punctuation alone becomes nothing, not an empty token.
        assert_eq!(tokenize("a - b", Standardize::default()), ["a", "b"]);
    }
}
