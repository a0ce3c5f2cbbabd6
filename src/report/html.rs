//! `report.html`: one self-contained page (CSS inline, pictures as base64 PNG data URIs,
//! no script, nothing fetched), so it can be mailed, archived or opened offline. Each
//! picture links to its SVG beside the page.
//!
//! Sections, each a `<section id=...>`: `overview`, `curves`, `confusion`,
//! `per-class`, `misclassified`, `filters`, `feature-maps`, `summary`. A section whose
//! picture does not apply (no history, no Conv2D layer, inputs that are not images)
//! says why instead. A text run's `misclassified` section is a table of texts, and it
//! has no `filters` or `feature-maps` sections.

use super::{Picture, Report};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pages' stylesheet (also the detection page's).
pub const STYLE: &str = r#"
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; margin: 0;
       color: #222; background: #f6f7f9; }
main { max-width: 1320px; margin: 0 auto; padding: 16px 28px 40px; }
h1 { font-size: 26px; margin: 12px 0 4px; }
h2 { font-size: 20px; margin: 0 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 6px; }
section { background: #fff; border: 1px solid #e2e4e8; border-radius: 6px;
          padding: 14px 18px; margin: 16px 0; }
figure { margin: 6px 0; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #666; }
.row { display: flex; flex-wrap: wrap; gap: 12px; }
.row figure { flex: 1 1 600px; }
.kpi { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 8px; }
.kpi div { background: #eef3fb; border-radius: 6px; padding: 8px 14px; }
.kpi b { display: block; font-size: 22px; }
table { border-collapse: collapse; font-size: 14px; margin-top: 8px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th { background: #f0f2f5; }
td.name, th.name { text-align: left; }
tfoot td { font-weight: bold; background: #fafafa; }
pre { background: #f7f7f7; padding: 10px; overflow-x: auto; font-size: 13px; }
.note { color: #8a5a00; background: #fff7e6; padding: 8px 12px; border-radius: 4px; }
.muted { color: #666; font-size: 13px; }
"#;

fn figure(report: &Report, name: &str, alt: &str, caption: &str) -> String {
    report
        .picture(name)
        .map(|p| figure_markup(p, name, alt, caption))
        .unwrap_or_default()
}

/// A picture embedded as PNG, its caption, and links to the SVG and PNG files written
/// beside the page as `name.svg` and `name.png` (every report page shows figures so).
pub(crate) fn figure_markup(p: &Picture, name: &str, alt: &str, caption: &str) -> String {
    format!(
        "<figure><img src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\">\
         <figcaption>{} &middot; <a href=\"{}.svg\">SVG</a> &middot; \
         <a href=\"{}.png\">PNG</a></figcaption></figure>\n",
        p.png_data_uri(),
        escape(alt),
        p.width,
        p.height,
        escape(caption),
        escape(name),
        escape(name)
    )
}

fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>\n", escape(text))
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// The misclassified grid, the filters and the feature maps (image runs).
fn image_sections(report: &Report) -> String {
    let d = &report.data;
    let mut h = String::new();
    // Misclassified.
    h += "<section id=\"misclassified\">\n<h2>Misclassified test images</h2>\n";
    h += &format!(
        "<p>The first {} of {} misclassified test samples, in test-set order: \
         label -&gt; prediction (confidence).</p>\n",
        d.misclassified.len(),
        d.test.misclassified
    );
    h += &figure(
        report,
        "misclassified",
        "grid of misclassified test images",
        "label -> prediction (confidence)",
    );
    if !d.misclassified.is_empty() {
        h += "<details><summary>as a table</summary>\n<table>\n<thead><tr><th>test #</th>\
              <th class=\"name\">label</th><th class=\"name\">prediction</th>\
              <th>confidence</th></tr></thead>\n<tbody>\n";
        for m in &d.misclassified {
            h += &format!(
                "<tr><td>{}</td><td class=\"name\">{}</td><td class=\"name\">{}</td>\
                 <td>{:.2}</td></tr>\n",
                m.index,
                escape(&m.label_name),
                escape(&m.prediction_name),
                m.confidence
            );
        }
        h += "</tbody>\n</table>\n</details>\n";
    }
    h += "</section>\n";

    // Filters.
    h += "<section id=\"filters\">\n<h2>First convolution layer's filters</h2>\n";
    match &d.first_conv_layer {
        Some(layer) => {
            h += &figure(
                report,
                "filters",
                "first conv layer filters",
                &format!("layer '{layer}'"),
            )
        }
        None => h += &note("The model has no Conv2D layer."),
    }
    h += "</section>\n";

    // Feature maps.
    h += "<section id=\"feature-maps\">\n<h2>Feature maps of one image</h2>\n";
    match &d.feature_maps {
        Some(f) => {
            h += &format!(
                "<p>Test image #{}: label {}, predicted {} ({:.2}); outputs of {}.</p>\n",
                f.image_index,
                escape(&f.label_name),
                escape(&f.prediction_name),
                f.confidence,
                escape(&f.layers.join(", "))
            );
            h += &figure(
                report,
                "feature_maps",
                "feature maps through every conv layer",
                "every Conv2D layer's output (after its activation)",
            );
        }
        None => {
            h += &note(
                "No feature maps: the model has no Conv2D layer or its inputs are not images.",
            )
        }
    }
    h += "</section>\n";

    h
}

/// A text run's misclassified samples: one row per text, with its true class, the
/// prediction and its probability, and the top classes.
fn misclassified_texts(d: &super::ReportData) -> String {
    let mut h = String::new();
    h += "<section id=\"misclassified\">\n<h2>Misclassified test texts</h2>\n";
    h += &format!(
        "<p>The first {} of {} misclassified test texts, in test-set order.</p>\n",
        d.misclassified_texts.len(),
        d.test.misclassified
    );
    if d.misclassified_texts.is_empty() {
        h += "</section>\n";
        return h;
    }
    h += "<table>\n<thead><tr><th>test #</th><th class=\"name\">text</th>\
          <th class=\"name\">true class</th><th class=\"name\">predicted</th>\
          <th>probability</th><th class=\"name\">top 3</th></tr></thead>\n<tbody>\n";
    for m in &d.misclassified_texts {
        let top: Vec<String> = m
            .top
            .iter()
            .map(|c| format!("{} {:.2}", escape(&c.name), c.probability))
            .collect();
        h += &format!(
            "<tr><td>{}</td><td class=\"name\">{}</td><td class=\"name\">{}</td>\
             <td class=\"name\">{}</td><td>{:.2}</td><td class=\"name\">{}</td></tr>\n",
            m.index,
            escape(&m.text),
            escape(&m.label_name),
            escape(&m.prediction_name),
            m.confidence,
            top.join(", ")
        );
    }
    h += "</tbody>\n</table>\n</section>\n";
    h
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let d = &report.data;
    let mut h = String::new();
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    h += &format!(
        "<title>nabla report: {} on {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&d.model),
        escape(&d.dataset)
    );

    // Overview.
    h += "<section id=\"overview\">\n";
    h += &format!(
        "<h1>{} on {}</h1>\n<div class=\"muted\">classes: {}</div>\n<div class=\"kpi\">\n",
        escape(&d.model),
        escape(&d.dataset),
        escape(&d.class_names.join(", "))
    );
    h += &format!("<div>test accuracy<b>{}</b></div>\n", pct(d.test.accuracy));
    if let Some(loss) = d.test.loss {
        h += &format!("<div>test loss<b>{loss:.4}</b></div>\n");
    }
    h += &format!(
        "<div>test samples<b>{}</b></div>\n<div>misclassified<b>{}</b></div>\n",
        d.test.samples, d.test.misclassified
    );
    if let Some(t) = &d.training {
        h += &format!("<div>epochs trained<b>{}</b></div>\n", t.epochs);
        if let Some(b) = &t.best_epoch {
            h += &format!(
                "<div>best epoch<b>{}</b><span class=\"muted\">{}</span></div>\n",
                b.epoch + 1,
                escape(&b.reason)
            );
        }
        if let Some(s) = t.stopped_epoch {
            h += &format!("<div>early stop<b>after epoch {}</b></div>\n", s + 1);
        }
    }
    h += "</div>\n";
    for n in &d.notes {
        h += &note(n);
    }
    h += "</section>\n";

    // Curves.
    h += "<section id=\"curves\">\n<h2>Training curves</h2>\n";
    if report.picture("loss_curves").is_some() {
        h += "<div class=\"row\">\n";
        h += &figure(
            report,
            "loss_curves",
            "loss per epoch",
            "loss per epoch, training vs validation",
        );
        h += &figure(
            report,
            "accuracy_curves",
            "accuracy per epoch",
            "accuracy per epoch, training vs validation",
        );
        h += "</div>\n";
    } else {
        h += &note("No training history (history.json) was found, so there are no curves.");
    }
    h += "</section>\n";

    // Confusion matrix.
    h += "<section id=\"confusion\">\n<h2>Confusion matrix</h2>\n";
    h += &figure(
        report,
        "confusion_matrix",
        "confusion matrix heat map",
        if d.class_names.len() > super::confusion::PERCENT_ABOVE {
            "rows: true class, columns: predicted class; cells and shading: % of the true \
             class (blank: none)"
        } else {
            "rows: true class, columns: predicted class; shading: share of the true class"
        },
    );
    h += "</section>\n";

    // Per-class figures.
    h += "<section id=\"per-class\">\n<h2>Per-class precision, recall and F1</h2>\n";
    h += &figure(
        report,
        "per_class",
        "per-class precision recall F1",
        "test set",
    );
    h += "<table>\n<thead><tr><th>class</th><th class=\"name\">name</th><th>precision</th>\
          <th>recall</th><th>F1</th><th>support</th><th>predicted</th><th>correct</th>\
          </tr></thead>\n<tbody>\n";
    for m in &d.per_class {
        h += &format!(
            "<tr><td>{}</td><td class=\"name\">{}</td><td>{:.4}</td><td>{:.4}</td>\
             <td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            m.class,
            escape(&m.name),
            m.precision,
            m.recall,
            m.f1,
            m.support,
            m.predicted,
            m.correct
        );
    }
    h += "</tbody>\n<tfoot>\n";
    h += &format!(
        "<tr><td></td><td class=\"name\">total (accuracy {})</td><td></td><td></td><td></td>\
         <td>{}</td><td>{}</td><td>{}</td></tr>\n",
        pct(d.test.accuracy),
        d.per_class.iter().map(|m| m.support).sum::<usize>(),
        d.per_class.iter().map(|m| m.predicted).sum::<usize>(),
        d.per_class.iter().map(|m| m.correct).sum::<usize>()
    );
    for (label, a) in [
        ("macro avg", &d.macro_avg),
        ("weighted avg", &d.weighted_avg),
    ] {
        h += &format!(
            "<tr><td></td><td class=\"name\">{label}</td><td>{:.4}</td><td>{:.4}</td>\
             <td>{:.4}</td><td></td><td></td><td></td></tr>\n",
            a.precision, a.recall, a.f1
        );
    }
    h += "</tfoot>\n</table>\n</section>\n";

    if d.text {
        h += &misclassified_texts(d);
    } else {
        h += &image_sections(report);
    }

    // Summary.
    h += "<section id=\"summary\">\n<h2>Model summary</h2>\n";
    h += &format!("<pre>{}</pre>\n</section>\n", escape(&report.summary));
    h += "</main>\n</body>\n</html>\n";
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("T-shirt/top <b> & \"x\""),
            "T-shirt/top &lt;b&gt; &amp; &quot;x&quot;"
        );
    }
}
