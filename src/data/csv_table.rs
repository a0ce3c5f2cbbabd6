//! Numeric tables in CSV files: a header row, one sample per row, a target column chosen
//! by name (default: the last column).
//!
//! - Numeric columns are read as f32.
//! - A column holding any cell that is not a number is categorical: with
//!   `one_hot: true` (the default) it becomes one 0/1 column per distinct value, named
//!   `column=value`, values in sorted order; otherwise it is refused, naming the column.
//!   A categorical column with more than [`MAX_CATEGORIES`] distinct values (an ID or a
//!   free-text column) is always refused: drop it from the file.
//! - Missing values (an empty cell, `NA`, `NaN`, `nan`, `?`) are refused with their row
//!   and column named; nabla does not guess values for them.
//! - The target may be numeric (regression, or class labels) or text (class names).
//! - A sample-weight column (`CsvOptions::weight`, `nabla train --sample-weight COL`) is
//!   read into `Table::weights` (numbers >= 0) and is not a feature.
//!
//! The encoding is recorded in a [`TableSchema`] (saved with a model trained from the
//! command line), so that rows given later to `predict` are encoded the same way.
//!
//! Untrusted input: everything is bounded by the file's size (at most one f32 per cell
//! per category), and malformed rows are errors naming their line.

use super::ndarray::in_file;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// Most distinct values a text column may have to be one-hot encoded.
pub const MAX_CATEGORIES: usize = 100;

#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The target column's name; `None`: the last column.
    pub target: Option<String>,
    /// One-hot encode text columns (true) or refuse them (false).
    pub one_hot: bool,
    /// A column of per-sample weights (finite numbers >= 0), kept out of the features.
    pub weight: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            target: None,
            one_hot: true,
            weight: None,
        }
    }
}

/// How one input column of the file becomes model features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnKind {
    /// One feature, the number itself.
    Numeric,
    /// One 0/1 feature per category, in this order.
    Categorical(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSpec {
    pub name: String,
    pub kind: ColumnKind,
}

/// The encoding of a table: its input columns in order, and the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub columns: Vec<ColumnSpec>,
    pub target: String,
    /// A text target's class names (sorted), the class index being the position; empty
    /// for a numeric target.
    pub target_classes: Vec<String>,
}

impl TableSchema {
    /// The names of the encoded features, one per model input.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for c in &self.columns {
            match &c.kind {
                ColumnKind::Numeric => names.push(c.name.clone()),
                ColumnKind::Categorical(cats) => {
                    names.extend(cats.iter().map(|v| format!("{}={v}", c.name)))
                }
            }
        }
        names
    }
}

/// A table read from CSV: features row-major `[rows, features]`, and the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub schema: TableSchema,
    pub rows: usize,
    /// `rows * schema.feature_names().len()` values, row by row.
    pub features: Vec<f32>,
    /// One value per row (a text target's class index); empty when the file had no
    /// target column (rows for `predict`).
    pub target: Vec<f32>,
    /// One weight per row from `CsvOptions::weight`'s column; empty without one.
    pub weights: Vec<f32>,
}

impl Table {
    pub fn num_features(&self) -> usize {
        self.features.len().checked_div(self.rows).unwrap_or(0)
    }
}

fn is_missing(cell: &str) -> bool {
    matches!(
        cell,
        "" | "NA" | "N/A" | "NaN" | "nan" | "?" | "null" | "NULL"
    )
}

fn parse_number(cell: &str) -> Option<f32> {
    cell.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v as f32)
}

/// The header and the rows of a CSV file's bytes (cells trimmed).
fn read_records(bytes: &[u8]) -> Result<(Vec<String>, Vec<csv::StringRecord>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::invalid(format!("csv: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(Error::invalid("csv: no header row"));
    }
    let mut seen = BTreeSet::new();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(Error::invalid(format!(
                "csv: column {} has no name in the header",
                i + 1
            )));
        }
        if !seen.insert(h) {
            return Err(Error::invalid(format!(
                "csv: column '{h}' appears twice in the header"
            )));
        }
    }
    let mut records = Vec::new();
    for r in reader.records() {
        records.push(r.map_err(|e| Error::invalid(format!("csv: {e}")))?);
    }
    Ok((header, records))
}

/// Parses a CSV table's bytes, inferring the column kinds (see the module docs).
pub fn parse_csv(bytes: &[u8], opts: &CsvOptions) -> Result<Table> {
    let (header, records) = read_records(bytes)?;
    if records.is_empty() {
        return Err(Error::invalid("csv: the file has a header but no rows"));
    }
    let target_col = match &opts.target {
        Some(t) => header.iter().position(|h| h == t).ok_or_else(|| {
            Error::invalid(format!(
                "csv: no column named '{t}' for the target; the columns are: {}",
                header.join(", ")
            ))
        })?,
        None => header.len() - 1,
    };
    let weight_col = match &opts.weight {
        Some(w) => {
            let j = header.iter().position(|h| h == w).ok_or_else(|| {
                Error::invalid(format!(
                    "csv: no column named '{w}' for the sample weights; the columns are: {}",
                    header.join(", ")
                ))
            })?;
            if j == target_col {
                return Err(Error::invalid(format!(
                    "csv: column '{w}' cannot be both the target and the sample weights"
                )));
            }
            Some(j)
        }
        None => None,
    };
    check_missing(&header, &records, 0..header.len())?;
    let mut columns = Vec::new();
    for (j, name) in header.iter().enumerate() {
        if j == target_col || Some(j) == weight_col {
            continue;
        }
        let kind = column_kind(name, &records, j)?;
        if let (ColumnKind::Categorical(cats), false) = (&kind, opts.one_hot) {
            let example = records
                .iter()
                .map(|r| &r[j])
                .find(|c| parse_number(c).is_none());
            return Err(Error::invalid(format!(
                "csv: column '{name}' is not numeric (e.g. {:?}, {} distinct values); \
                 one-hot encode it or drop it",
                example.unwrap_or(""),
                cats.len()
            )));
        }
        columns.push(ColumnSpec {
            name: name.clone(),
            kind,
        });
    }
    let target_classes = match column_kind(&header[target_col], &records, target_col) {
        Ok(ColumnKind::Numeric) => Vec::new(),
        Ok(ColumnKind::Categorical(c)) => c,
        Err(e) => return Err(e),
    };
    let schema = TableSchema {
        columns,
        target: header[target_col].clone(),
        target_classes,
    };
    let mut table = encode(&header, &records, &schema, true)?;
    if let Some(j) = weight_col {
        table.weights = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                parse_number(&r[j]).filter(|w| *w >= 0.0).ok_or_else(|| {
                    Error::invalid(format!(
                        "csv: row {} (line {}), sample-weight column '{}': {:?} is not a \
                         number >= 0",
                        i + 1,
                        r.position().map_or(i as u64 + 2, |p| p.line()),
                        header[j],
                        &r[j]
                    ))
                })
            })
            .collect::<Result<_>>()?;
    }
    Ok(table)
}

/// Parses rows by a schema saved earlier (for `predict`): the schema's input columns
/// must all be there (in any order; others are ignored), the target column may be
/// missing, and a category not seen in training is an error naming it.
pub fn parse_csv_with_schema(bytes: &[u8], schema: &TableSchema) -> Result<Table> {
    let (header, records) = read_records(bytes)?;
    let has_target = header.contains(&schema.target);
    let mut table = encode(&header, &records, schema, has_target)?;
    if !has_target {
        table.target.clear();
    }
    Ok(table)
}

/// Reads a CSV table from a file; errors name it.
pub fn load_csv(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Table> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_csv(&bytes, opts).map_err(|e| in_file(path, e))
}

fn check_missing(
    header: &[String],
    records: &[csv::StringRecord],
    cols: impl Iterator<Item = usize> + Clone,
) -> Result<()> {
    for (i, r) in records.iter().enumerate() {
        for j in cols.clone() {
            if is_missing(&r[j]) {
                return Err(Error::invalid(format!(
                    "csv: missing value {:?} in row {} (line {}), column '{}'; fill or drop \
                     such rows first",
                    &r[j],
                    i + 1,
                    r.position().map_or(i as u64 + 2, |p| p.line()),
                    header[j]
                )));
            }
        }
    }
    Ok(())
}

fn column_kind(name: &str, records: &[csv::StringRecord], j: usize) -> Result<ColumnKind> {
    if records.iter().all(|r| parse_number(&r[j]).is_some()) {
        return Ok(ColumnKind::Numeric);
    }
    let cats: BTreeSet<&str> = records.iter().map(|r| &r[j]).collect();
    if cats.len() > MAX_CATEGORIES {
        return Err(Error::invalid(format!(
            "csv: column '{name}' is text with {} distinct values (more than {MAX_CATEGORIES}: \
             an ID or free text?); drop it from the file",
            cats.len()
        )));
    }
    Ok(ColumnKind::Categorical(
        cats.into_iter().map(str::to_string).collect(),
    ))
}

fn encode(
    header: &[String],
    records: &[csv::StringRecord],
    schema: &TableSchema,
    with_target: bool,
) -> Result<Table> {
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            Error::invalid(format!(
                "csv: the file has no column '{name}', which the model reads"
            ))
        })
    };
    let mut idx = Vec::with_capacity(schema.columns.len());
    for c in &schema.columns {
        idx.push(col(&c.name)?);
    }
    let target_idx = if with_target {
        Some(col(&schema.target)?)
    } else {
        None
    };
    check_missing(header, records, idx.iter().copied().chain(target_idx))?;
    let mut features = Vec::new();
    let mut target = Vec::with_capacity(if with_target { records.len() } else { 0 });
    for (i, r) in records.iter().enumerate() {
        let at = || {
            format!(
                "row {} (line {})",
                i + 1,
                r.position().map_or(0, |p| p.line())
            )
        };
        for (c, &j) in schema.columns.iter().zip(&idx) {
            match &c.kind {
                ColumnKind::Numeric => features.push(parse_number(&r[j]).ok_or_else(|| {
                    Error::invalid(format!(
                        "csv: {}, column '{}': {:?} is not a number",
                        at(),
                        c.name,
                        &r[j]
                    ))
                })?),
                ColumnKind::Categorical(cats) => {
                    let k = cats.iter().position(|v| v == &r[j]).ok_or_else(|| {
                        Error::invalid(format!(
                            "csv: {}, column '{}': category {:?} was not seen in training \
                             (known: {})",
                            at(),
                            c.name,
                            &r[j],
                            cats.join(", ")
                        ))
                    })?;
                    features.extend((0..cats.len()).map(|m| (m == k) as u8 as f32));
                }
            }
        }
        if let Some(j) = target_idx {
            let v = if schema.target_classes.is_empty() {
                parse_number(&r[j]).ok_or_else(|| {
                    Error::invalid(format!(
                        "csv: {}, target '{}': {:?} is not a number",
                        at(),
                        schema.target,
                        &r[j]
                    ))
                })?
            } else {
                schema
                    .target_classes
                    .iter()
                    .position(|v| v == &r[j])
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "csv: {}, target '{}': class {:?} was not seen in training",
                            at(),
                            schema.target,
                            &r[j]
                        ))
                    })? as f32
            };
            target.push(v);
        }
    }
    Ok(Table {
        schema: schema.clone(),
        rows: records.len(),
        features,
        target,
        weights: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_table_target_by_name_or_last() {
        let csv = b"a,b,price\n1,2,3.5\n4,5,6\n";
        let t = parse_csv(csv, &CsvOptions::default()).unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(t.schema.feature_names(), vec!["a", "b"]);
        assert_eq!(t.features, vec![1., 2., 4., 5.]);
        assert_eq!(t.target, vec![3.5, 6.]);
        let opts = CsvOptions {
            target: Some("a".into()),
            ..Default::default()
        };
        let t = parse_csv(csv, &opts).unwrap();
        assert_eq!(t.schema.feature_names(), vec!["b", "price"]);
        assert_eq!(t.features, vec![2., 3.5, 5., 6.]);
        assert_eq!(t.target, vec![1., 4.]);
        let opts = CsvOptions {
            target: Some("nope".into()),
            ..Default::default()
        };
        let e = parse_csv(csv, &opts).unwrap_err().to_string();
        assert!(e.contains("'nope'") && e.contains("a, b, price"), "{e}");
    }

    #[test]
    fn a_weight_column_is_read_and_kept_out_of_the_features() {
        let csv = b"a,w,b,y\n1,0.5,2,0\n4,2,5,1\n";
        let opts = CsvOptions {
            weight: Some("w".into()),
            ..Default::default()
        };
        let t = parse_csv(csv, &opts).unwrap();
        assert_eq!(t.schema.feature_names(), vec!["a", "b"]);
        assert_eq!(t.features, vec![1., 2., 4., 5.]);
        assert_eq!(t.weights, vec![0.5, 2.0]);
        assert!(parse_csv(csv, &CsvOptions::default())
            .unwrap()
            .weights
            .is_empty());
        let e = parse_csv(
            csv,
            &CsvOptions {
                weight: Some("nope".into()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'nope' for the sample weights"), "{e}");
        let e = parse_csv(b"a,w,y\n1,-1,0\n", &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1") && e.contains("'w'") && e.contains(">= 0"),
            "{e}"
        );
        let e = parse_csv(b"a,w,y\n1,x,0\n", &opts).unwrap_err().to_string();
        assert!(e.contains("\"x\" is not a number"), "{e}");
        let both = CsvOptions {
            target: Some("w".into()),
            weight: Some("w".into()),
            ..Default::default()
        };
        assert!(parse_csv(csv, &both).is_err());
    }

    #[test]
    fn text_columns_one_hot_or_refused_and_text_targets() {
        let csv = b"size,color,kind\n1,red,cat\n2,blue,dog\n3,red,cat\n";
        let t = parse_csv(csv, &CsvOptions::default()).unwrap();
        assert_eq!(
            t.schema.feature_names(),
            vec!["size", "color=blue", "color=red"]
        );
        assert_eq!(t.features, vec![1., 0., 1., 2., 1., 0., 3., 0., 1.]);
        assert_eq!(t.schema.target_classes, vec!["cat", "dog"]);
        assert_eq!(t.target, vec![0., 1., 0.]);
        let opts = CsvOptions {
            one_hot: false,
            ..Default::default()
        };
        let e = parse_csv(csv, &opts).unwrap_err().to_string();
        assert!(e.contains("'color'") && e.contains("not numeric"), "{e}");
        // The saved schema encodes new rows the same way, without a target column.
        let rows = b"color,size\nblue,7\n";
        let p = parse_csv_with_schema(rows, &t.schema).unwrap();
        assert_eq!(p.features, vec![7., 1., 0.]);
        assert!(p.target.is_empty());
        let e = parse_csv_with_schema(b"color,size\ngreen,7\n", &t.schema).unwrap_err();
        assert!(e.to_string().contains("\"green\""), "{e}");
        let e = parse_csv_with_schema(b"size\n7\n", &t.schema).unwrap_err();
        assert!(e.to_string().contains("'color'"), "{e}");
    }

    #[test]
    fn missing_values_and_malformed_files() {
        let e = parse_csv(b"a,b,y\n1,2,3\n4,,6\n", &CsvOptions::default()).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("row 2") && e.contains("column 'b'"), "{e}");
        let e = parse_csv(b"a,b,y\n1,NA,3\n", &CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert!(parse_csv(b"a,b,y\n1,2\n", &CsvOptions::default()).is_err());
        assert!(parse_csv(b"a,b,y\n", &CsvOptions::default()).is_err());
        assert!(parse_csv(b"", &CsvOptions::default()).is_err());
        assert!(parse_csv(b"a,a,y\n1,2,3\n", &CsvOptions::default()).is_err());
        assert!(parse_csv(b"a,,y\n1,2,3\n", &CsvOptions::default()).is_err());
        assert!(parse_csv(b"\xff\xfe,\x00\n\x01", &CsvOptions::default()).is_err());
        let ids: String = std::iter::once("id,y\n".to_string())
            .chain((0..150).map(|i| format!("u{i},1\n")))
            .collect();
        let e = parse_csv(ids.as_bytes(), &CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("'id'"), "{e}");
    }
}
