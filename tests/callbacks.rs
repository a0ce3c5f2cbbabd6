//! The Keras callbacks around `fit`: `CSVLogger`, `LambdaCallback`, `ModelCheckpoint`
//! (every epoch with `{epoch:02d}` in the path, or the best only) and
//! `BackupAndRestore` (from Rust: a run stopped by a callback error and fitted again
//! with the same backup ends as an uninterrupted one).

use nabla::layers::keras::*;
use nabla::training::Mode;
use nabla::{
    BackupAndRestore, CSVLogger, FitArgs, KerasLoss, LambdaCallback, ModelCheckpoint, Optimizer,
    Sequential, Tensor,
};
use std::cell::RefCell;
use std::rc::Rc;

/// 64 samples of 4 features, two classes (the sign of the first minus the second).
fn data() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..256)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let y: Vec<f32> = x
        .chunks(4)
        .map(|r| if r[0] > r[1] { 1.0 } else { 0.0 })
        .collect();
    (Tensor::from_vec(x, &[64, 4]), Tensor::from_vec(y, &[64]))
}

fn model(seed: u64) -> Sequential {
    let mut m = Sequential::with_seed(&[4], seed);
    m.add(Dense(8).activation(Relu)).unwrap();
    m.add(Dropout(0.2)).unwrap();
    m.add(Dense(2).activation(Softmax)).unwrap();
    m.compile(
        KerasLoss::from_name("sparse_categorical_crossentropy").unwrap(),
        Optimizer::adam(0.01),
        &["accuracy"],
    )
    .unwrap();
    m
}

fn args(epochs: usize) -> FitArgs {
    FitArgs::new()
        .epochs(epochs)
        .batch_size(16)
        .validation_split(0.25)
        .verbose(0)
}

#[test]
fn csv_logger_writes_a_row_per_epoch_and_appends_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    let (x, y) = data();
    let mut m = model(1);
    let h = m
        .fit(&x, &y, args(3).callback(CSVLogger::new(&path)))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[0], "epoch");
    assert!(
        header.contains(&"val_loss") && header.contains(&"accuracy"),
        "{text}"
    );
    let col = header.iter().position(|h| *h == "loss").unwrap();
    for (i, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], i.to_string());
        let loss: f32 = cells[col].parse().unwrap();
        assert_eq!(loss, h.get("loss").unwrap()[i], "{line}");
    }
    // append: the earlier rows stay, two more come.
    m.fit(&x, &y, args(2).callback(CSVLogger::new(&path).append(true)))
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 6);
    // Without append the file starts over.
    m.fit(&x, &y, args(1).callback(CSVLogger::new(&path)))
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn lambda_callback_runs_each_hook_with_the_logs() {
    let (x, y) = data();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let batches = Rc::new(RefCell::new(0));
    let b = batches.clone();
    let cb = LambdaCallback::new()
        .on_train_begin(move |_| {
            s1.borrow_mut().push("begin".to_string());
            Ok(())
        })
        .on_epoch_end(move |e, logs, _| {
            s2.borrow_mut()
                .push(format!("epoch {e} {}", logs.contains_key("val_loss")));
            Ok(())
        })
        .on_batch_end(move |_, _| {
            *b.borrow_mut() += 1;
            Ok(())
        })
        .on_train_end(move |m| {
            m.stop_training = false;
            s3.borrow_mut().push("end".to_string());
            Ok(())
        });
    model(1).fit(&x, &y, args(2).callback(cb)).unwrap();
    assert_eq!(
        *seen.borrow(),
        ["begin", "epoch 0 true", "epoch 1 true", "end"]
    );
    // 48 training samples in batches of 16: 3 steps per epoch.
    assert_eq!(*batches.borrow(), 6);
    // An error from a hook stops fit with that error.
    let failing =
        LambdaCallback::new().on_epoch_end(|_, _, _| Err(nabla::Error::invalid("stop here")));
    let e = model(1).fit(&x, &y, args(2).callback(failing)).unwrap_err();
    assert!(e.to_string().contains("stop here"), "{e}");
}

#[test]
fn model_checkpoint_keeps_every_epoch_or_the_best() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = data();
    let every = dir.path().join("every/ep{epoch:02d}-{val_loss:.3f}");
    let mut m = model(2);
    let h = m
        .fit(&x, &y, args(3).callback(ModelCheckpoint::new(&every)))
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("every"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let want: Vec<String> = h
        .get("val_loss")
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| format!("ep{:02}-{v:.3}", i + 1))
        .collect();
    assert_eq!(names, want);
    // The last epoch's directory holds the model as it ended.
    let last = Sequential::load(&dir.path().join("every").join(&want[2])).unwrap();
    let w = |m: &Sequential| -> Vec<Vec<f32>> {
        m.get_weights().iter().map(|t| t.to_f32_vec()).collect()
    };
    assert_eq!(w(&last), w(&m));

    // Best only, by val_accuracy (max): saved at the epochs that improved on the best.
    let best_dir = dir.path().join("best");
    let saves = Rc::new(RefCell::new(Vec::new()));
    let s = saves.clone();
    let bd = best_dir.clone();
    let watch = LambdaCallback::new().on_epoch_end(move |e, _, _| {
        // Runs after the checkpoint (added first): record the saved weights.
        if let Ok(m) = Sequential::load(&bd) {
            let v: Vec<Vec<f32>> = m.get_weights().iter().map(|t| t.to_f32_vec()).collect();
            s.borrow_mut().push((e, v));
        }
        Ok(())
    });
    let mut m = model(3);
    let h = m
        .fit(
            &x,
            &y,
            args(6)
                .callback(
                    ModelCheckpoint::new(&best_dir)
                        .monitor("val_loss")
                        .mode(Mode::Min)
                        .save_best_only(true),
                )
                .callback(watch),
        )
        .unwrap();
    let vl = h.get("val_loss").unwrap();
    let best = (0..vl.len()).fold(0, |b, i| if vl[i] < vl[b] { i } else { b });
    // The directory holds the weights saved at the best epoch: the same as those seen
    // right after that epoch.
    let saved = Sequential::load(&best_dir).unwrap();
    let at_best = &saves.borrow()[best].1;
    assert_eq!(&w(&saved), at_best);
    // A template naming a value the training does not log fails before training.
    let e = model(1)
        .fit(
            &x,
            &y,
            args(1).callback(ModelCheckpoint::new(dir.path().join("{acc}"))),
        )
        .unwrap_err();
    assert!(e.to_string().contains("names 'acc'"), "{e}");
}

#[test]
fn backup_and_restore_continues_a_stopped_fit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    let (x, y) = data();
    let mut whole = model(4);
    let h_whole = whole.fit(&x, &y, args(5)).unwrap();

    // The first attempt dies after epoch 3 (a callback error stands in for a crash).
    let mut first = model(4);
    let crash = LambdaCallback::new().on_epoch_end(|e, _, _| {
        if e == 2 {
            Err(nabla::Error::invalid("crash"))
        } else {
            Ok(())
        }
    });
    assert!(first
        .fit(
            &x,
            &y,
            args(5)
                .callback(crash)
                .callback(BackupAndRestore::new(&backup))
        )
        .is_err());
    // The crash came before the backup of epoch 3: the backup is of epoch 2.
    assert!(backup.join("fit_state.json").is_file());
    // A new process: a fresh model (other seed, so nothing is shared by accident).
    let mut second = model(99);
    let h = second
        .fit(&x, &y, args(5).callback(BackupAndRestore::new(&backup)))
        .unwrap();
    assert!(!backup.exists(), "deleted at the end by default");
    let w = |m: &Sequential| -> Vec<Vec<f32>> {
        m.get_weights().iter().map(|t| t.to_f32_vec()).collect()
    };
    assert_eq!(w(&second), w(&whole));
    assert_eq!(h.epoch, h_whole.epoch);
    for key in ["loss", "accuracy", "val_loss", "lr"] {
        assert_eq!(h.get(key), h_whole.get(key), "{key}");
    }
}
