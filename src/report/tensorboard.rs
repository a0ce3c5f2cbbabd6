//! TensorBoard event files, written by hand: TFRecord framing around `Event` protobufs
//! carrying scalar summaries. No TensorFlow or protobuf library is needed, and
//! TensorBoard (or `tf.summary`'s readers) reads the files as its own.
//!
//! Format:
//! - A file is a sequence of records: `u64 length (LE)`, `u32 masked CRC32C of those 8
//!   bytes`, the payload, `u32 masked CRC32C of the payload`. Masking is
//!   `rotate_right(crc, 15) + 0xa282ead8` (wrapping).
//! - Each payload is an `Event` message: `wall_time` (field 1, double), `step` (2,
//!   int64), then either `file_version` (3, string; the first event, `"brain.Event:2"`)
//!   or `summary` (5): a `Summary` of repeated `Value`s (field 1), each `tag` (1,
//!   string) and `simple_value` (2, float).
//!
//! The [`TensorBoard`] callback lays the files out as Keras does, so that training and
//! validation curves overlay in TensorBoard: `LOGDIR/train/` holds `epoch_loss`,
//! `epoch_accuracy`, `epoch_learning_rate` (from `lr`), ... and `LOGDIR/validation/`
//! holds `epoch_loss`, `epoch_accuracy` (from `val_loss`, `val_accuracy`); the step is
//! the 0-based epoch. [`tag_for`] is that mapping. Events are flushed after every epoch,
//! so `tensorboard --logdir LOGDIR` follows a run live.
//!
//! ```no_run
//! # fn main() -> nabla::Result<()> {
//! use nabla::report::tensorboard::EventWriter;
//! let mut w = EventWriter::create(std::path::Path::new("runs/tb/train"))?;
//! w.add_scalars(0, &[("epoch_loss", 0.31), ("epoch_accuracy", 0.91)])?;
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, Result};
use crate::training::{Callback, Logs, Sequential};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// CRC32C masked as TFRecord stores it (so that a CRC of data holding CRCs stays
/// well-distributed).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the payload, the payload's masked CRC.
pub fn tfrecord(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out
}

// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// What an event carries besides its time and step.
#[derive(Debug, Clone, Copy)]
pub enum EventBody<'a> {
    FileVersion(&'a str),
    /// `(tag, value)` pairs, written as one `Summary`.
    Scalars(&'a [(&'a str, f32)]),
}

/// Serializes an `Event` protobuf (see the module docs for the fields).
pub fn encode_event(wall_time: f64, step: i64, body: EventBody) -> Vec<u8> {
    let mut out = Vec::new();
    put_key(&mut out, 1, FIXED64);
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        put_key(&mut out, 2, VARINT);
        put_varint(&mut out, step as u64); // negative int64s are 10-byte two's complement
    }
    match body {
        EventBody::FileVersion(v) => put_bytes(&mut out, 3, v.as_bytes()),
        EventBody::Scalars(scalars) => {
            let mut summary = Vec::new();
            for (tag, value) in scalars {
                let mut v = Vec::new();
                put_bytes(&mut v, 1, tag.as_bytes());
                put_key(&mut v, 2, FIXED32);
                v.extend_from_slice(&value.to_le_bytes());
                put_bytes(&mut summary, 1, &v);
            }
            put_bytes(&mut out, 5, &summary);
        }
    }
    out
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// Appends events to a new `events.out.tfevents.<secs>.<host>.nabla` file in a folder.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, starting with the
    /// file-version event.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let stem = format!(
            "events.out.tfevents.{}.{}",
            now().floor() as u64,
            host_name()
        );
        // Two writers in the same second and folder get distinct files.
        let mut n = 0;
        let (path, file) = loop {
            let name = if n == 0 {
                format!("{stem}.nabla")
            } else {
                format!("{stem}.{n}.nabla")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(Error::io(&path, e)),
            }
        };
        let mut w = EventWriter {
            path,
            file: BufWriter::new(file),
        };
        w.write_event(now(), 0, EventBody::FileVersion(FILE_VERSION))?;
        w.flush()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write_event(&mut self, wall_time: f64, step: i64, body: EventBody) -> Result<()> {
        let record = tfrecord(&encode_event(wall_time, step, body));
        self.file
            .write_all(&record)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// One event at `step` (now) holding every `(tag, value)`.
    pub fn add_scalars(&mut self, step: i64, scalars: &[(&str, f32)]) -> Result<()> {
        self.write_event(now(), step, EventBody::Scalars(scalars))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Which TensorBoard run a history key goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Train,
    Validation,
}

impl Run {
    /// The run's folder under the log dir.
    pub fn dir_name(self) -> &'static str {
        match self {
            Run::Train => "train",
            Run::Validation => "validation",
        }
    }
}

/// Keras' naming: `loss` -> (train, `epoch_loss`), `val_accuracy` -> (validation,
/// `epoch_accuracy`), `lr` -> (train, `epoch_learning_rate`).
pub fn tag_for(key: &str) -> (Run, String) {
    match key.strip_prefix("val_") {
        Some(rest) => (Run::Validation, format!("epoch_{rest}")),
        None if key == "lr" => (Run::Train, "epoch_learning_rate".into()),
        None => (Run::Train, format!("epoch_{key}")),
    }
}

/// A callback writing every epoch's logs (loss, accuracy, validation figures, learning
/// rate, timing) as TensorBoard scalars under `log_dir` (see the module docs).
pub struct TensorBoard {
    pub log_dir: PathBuf,
    train: Option<EventWriter>,
    validation: Option<EventWriter>,
}

impl TensorBoard {
    pub fn new(log_dir: impl Into<PathBuf>) -> TensorBoard {
        TensorBoard {
            log_dir: log_dir.into(),
            train: None,
            validation: None,
        }
    }

    /// The event files written so far (train first).
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.train, &self.validation]
            .into_iter()
            .flatten()
            .map(|w| w.path().to_path_buf())
            .collect()
    }

    fn writer(&mut self, run: Run) -> Result<&mut EventWriter> {
        let slot = match run {
            Run::Train => &mut self.train,
            Run::Validation => &mut self.validation,
        };
        if slot.is_none() {
            *slot = Some(EventWriter::create(&self.log_dir.join(run.dir_name()))?);
        }
        Ok(slot.as_mut().expect("just created"))
    }
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, _model: &mut Sequential) -> Result<()> {
        // Fail before the first epoch if the folder cannot be written.
        self.writer(Run::Train)?;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _model: &mut Sequential) -> Result<()> {
        for run in [Run::Train, Run::Validation] {
            let tagged: Vec<(String, f32)> = logs
                .iter()
                .map(|(k, &v)| (tag_for(k), v))
                .filter(|((r, _), _)| *r == run)
                .map(|((_, tag), v)| (tag, v))
                .collect();
            if tagged.is_empty() {
                continue;
            }
            let scalars: Vec<(&str, f32)> = tagged.iter().map(|(t, v)| (t.as_str(), *v)).collect();
            let w = self.writer(run)?;
            w.add_scalars(epoch as i64, &scalars)?;
            w.flush()?;
        }
        Ok(())
    }

    fn on_train_end(&mut self, _model: &mut Sequential) -> Result<()> {
        for w in [&mut self.train, &mut self.validation]
            .into_iter()
            .flatten()
        {
            w.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // Golden values from the `tensorboard` Python package (2.21):
    //   from tensorboard.compat.proto import event_pb2, summary_pb2
    //   from tensorboard.summary.writer.record_writer import RecordWriter
    //   from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c, masked_crc32c
    //   crc32c(b"123456789"); masked_crc32c(b"123456789"); masked_crc32c(b"")
    //   w = io.BytesIO(); RecordWriter(w).write(b"hello"); w.getvalue().hex()
    //   event_pb2.Event(wall_time=1700000000.5, step=0, file_version="brain.Event:2")
    //   event_pb2.Event(wall_time=1700000001.25, step=3, summary=summary_pb2.Summary(value=[
    //       Summary.Value(tag="epoch_loss", simple_value=0.25),
    //       Summary.Value(tag="epoch_accuracy", simple_value=0.9375)]))  .SerializeToString()

    #[test]
    fn crc32c_and_masking() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
    }

    #[test]
    fn tfrecord_framing() {
        assert_eq!(
            hex(&tfrecord(b"hello")),
            "0500000000000000eab2043e68656c6c6fbb1f1c19"
        );
    }

    #[test]
    fn event_encoding() {
        let fv = encode_event(1_700_000_000.5, 0, EventBody::FileVersion(FILE_VERSION));
        assert_eq!(hex(&fv), "0900002040fc54d9411a0d627261696e2e4576656e743a32");
        let scalars = [("epoch_loss", 0.25), ("epoch_accuracy", 0.9375)];
        let sc = encode_event(1_700_000_001.25, 3, EventBody::Scalars(&scalars));
        assert_eq!(
            hex(&sc),
            "0900005040fc54d94110032a2a0a110a0a65706f63685f6c6f7373150000803e0a150a0e65706f63\
             685f6163637572616379150000703f"
        );
    }

    #[test]
    fn varints() {
        let enc = |v| {
            let mut o = Vec::new();
            put_varint(&mut o, v);
            o
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
    }

    #[test]
    fn tags_follow_keras() {
        assert_eq!(tag_for("loss"), (Run::Train, "epoch_loss".into()));
        assert_eq!(
            tag_for("val_accuracy"),
            (Run::Validation, "epoch_accuracy".into())
        );
        assert_eq!(tag_for("lr"), (Run::Train, "epoch_learning_rate".into()));
    }

    /// Reads back the records of a file, checking both CRCs of each.
    fn records(path: &Path) -> Vec<Vec<u8>> {
        let bytes = std::fs::read(path).unwrap();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(crc, masked_crc32c(len_bytes));
            let payload = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc32c(payload));
            out.push(payload.to_vec());
            at += 16 + len;
        }
        out
    }

    #[test]
    fn callback_writes_train_and_validation_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut tb = TensorBoard::new(dir.path());
        let mut model = Sequential::new(&[2]);
        tb.on_train_begin(&mut model).unwrap();
        for epoch in 0..3 {
            let mut logs = Logs::new();
            logs.insert("loss".into(), 1.0 / (epoch + 1) as f32);
            logs.insert("val_loss".into(), 1.5 / (epoch + 1) as f32);
            logs.insert("lr".into(), 0.001);
            tb.on_epoch_end(epoch, &logs, &mut model).unwrap();
        }
        tb.on_train_end(&mut model).unwrap();
        let files = tb.files();
        assert_eq!(files.len(), 2);
        assert!(files[0].starts_with(dir.path().join("train")));
        assert!(files[1].starts_with(dir.path().join("validation")));
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("events.out.tfevents.") && name.ends_with(".nabla"),
            "{name}"
        );
        let train = records(&files[0]);
        assert_eq!(train.len(), 4, "file version + 3 epochs");
        assert!(train[0].ends_with(b"brain.Event:2"));
        let last = &train[3];
        assert!(last.windows(10).any(|w| w == b"epoch_loss"));
        assert!(last.windows(19).any(|w| w == b"epoch_learning_rate"));
        // step 2, then the value 1/3 as little-endian f32 after the tag.
        assert_eq!(&last[9..11], &[0x10, 0x02]);
        let third = (1.0f32 / 3.0).to_le_bytes();
        assert!(last.windows(4).any(|w| w == third));
        let val = records(&files[1]);
        assert_eq!(val.len(), 4);
        assert!(!val[1].windows(19).any(|w| w == b"epoch_learning_rate"));
        // A second writer in the same second gets its own file.
        let a = EventWriter::create(dir.path()).unwrap();
        let b = EventWriter::create(dir.path()).unwrap();
        assert_ne!(a.path(), b.path());
    }
}
