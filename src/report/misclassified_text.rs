//! The first misclassified test texts of a text run, in test-set order: the text, its
//! true label, the prediction with its probability, and the model's top classes. The
//! text counterpart of [`super::misclassified`]'s image grid: a text is shown as text
//! (a table in the page, `misclassified_texts` in `report.json`), not drawn. Every test
//! text's prediction is also written as `predictions.tsv` ([`predictions_tsv`]), so a
//! reader can sort and grep them, or recompute any figure of the report.

use super::misclassified::Misclassified;
use super::predictions::Predictions;
use serde::{Deserialize, Serialize};

/// How many classes each misclassified text lists with their probabilities.
pub const TOP_CLASSES: usize = 3;
/// Characters of a text kept in the report: descriptions are short, a user's
/// documents may not be; the page stays readable and the JSON small.
pub const MAX_TEXT_CHARS: usize = 300;

/// One class and the probability the model gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProbability {
    pub class: usize,
    pub name: String,
    pub probability: f32,
}

/// One wrongly classified test text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MisclassifiedText {
    /// Row in the test set.
    pub index: usize,
    /// The text as read from the data (cut at `MAX_TEXT_CHARS` characters, with "...").
    pub text: String,
    pub label: usize,
    pub label_name: String,
    pub prediction: usize,
    pub prediction_name: String,
    /// Probability the model gave its (wrong) prediction.
    pub confidence: f32,
    /// The `TOP_CLASSES` most probable classes, most probable first.
    pub top: Vec<ClassProbability>,
}

/// `text` cut to `max` characters (on a character boundary), "..." marking a cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// The texts of `wrong` (the misclassified samples shown, from
/// [`super::misclassified::first_misclassified`]) with their top classes; `probs`
/// holds one row of `num_classes` probabilities per item of `wrong`, in that order.
/// Ties rank the lower class index first, as the argmax does.
pub fn with_texts(
    wrong: &[Misclassified],
    texts: &[String],
    probs: &[f32],
    class_names: &[String],
    num_classes: usize,
) -> Vec<MisclassifiedText> {
    let k = num_classes.max(1);
    wrong
        .iter()
        .zip(probs.chunks_exact(k))
        .map(|(m, row)| {
            let mut order: Vec<usize> = (0..row.len()).collect();
            // Stable sort: equal probabilities keep the lower index first.
            order.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
            let top = order
                .iter()
                .take(TOP_CLASSES)
                .map(|&c| ClassProbability {
                    class: c,
                    name: class_names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    probability: row[c],
                })
                .collect();
            MisclassifiedText {
                index: m.index,
                text: texts
                    .get(m.index)
                    .map(|t| shorten(t, MAX_TEXT_CHARS))
                    .unwrap_or_default(),
                label: m.label,
                label_name: m.label_name.clone(),
                prediction: m.prediction,
                prediction_name: m.prediction_name.clone(),
                confidence: m.confidence,
                top,
            }
        })
        .collect()
}

/// One row per test sample: `index, label, predicted, probability, text` (class
/// names, a header row); tabs and line breaks inside a text become spaces.
pub fn predictions_tsv(preds: &Predictions, texts: &[String], class_names: &[String]) -> String {
    let name = |c: usize| class_names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let mut out = String::from("index\tlabel\tpredicted\tprobability\ttext\n");
    for i in 0..preds.labels.len() {
        let text: String = texts
            .get(i)
            .map(|t| t.replace(['\t', '\n', '\r'], " "))
            .unwrap_or_default();
        out += &format!(
            "{i}\t{}\t{}\t{:.6}\t{text}\n",
            name(preds.labels[i]),
            name(preds.predicted[i]),
            preds.confidence[i]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_top_classes_in_order() {
        let names: Vec<String> = ["admin", "games", "libs", "net"].map(String::from).to_vec();
        let wrong = vec![Misclassified {
            index: 1,
            label: 1,
            label_name: "games".into(),
            prediction: 2,
            prediction_name: "libs".into(),
            confidence: 0.5,
        }];
        let texts: Vec<String> = ["a", "chess engine"].map(String::from).to_vec();
        let probs = [0.1, 0.3, 0.5, 0.1];
        let m = with_texts(&wrong, &texts, &probs, &names, 4);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].text, "chess engine");
        let top: Vec<(&str, f32)> = m[0]
            .top
            .iter()
            .map(|c| (c.name.as_str(), c.probability))
            .collect();
        // The tie between admin and net ranks admin (the lower index) first.
        assert_eq!(top, [("libs", 0.5), ("games", 0.3), ("admin", 0.1)]);
    }

    #[test]
    fn predictions_as_tsv() {
        let preds = Predictions {
            labels: vec![0, 1],
            predicted: vec![0, 0],
            confidence: vec![0.75, 0.5],
            num_classes: 2,
        };
        let texts: Vec<String> = ["a\tb", "c"].map(String::from).to_vec();
        let names: Vec<String> = ["x", "y"].map(String::from).to_vec();
        assert_eq!(
            predictions_tsv(&preds, &texts, &names),
            "index\tlabel\tpredicted\tprobability\ttext\n0\tx\tx\t0.750000\ta b\n\
             1\ty\tx\t0.500000\tc\n"
        );
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        assert_eq!(shorten("héllo wörld", 4), "héll...");
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("exact", 5), "exact");
    }
}
