//! Real learning on real data, with fixed seeds: accuracy thresholds on MNIST and
//! Fashion-MNIST, save/reload equality, and EarlyStopping's restore of the best weights.
//! Data: `$NABLA_DATA`, else `../shared/data` beside the crate.

use nabla::data::{self, datasets::Dataset};
use nabla::training::{EarlyStopping, FitArgs};
use nabla::{models, KerasLoss, Optimizer, Sequential};

mod common;

fn dataset(name: &str) -> Dataset {
    // Fails naming every place it looked when the data set is missing.
    let dir = common::real_data(name);
    let _env = common::lock_env();
    std::env::set_var("NABLA_DATA", dir);
    data::load_data(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn compiled(mut m: Sequential, lr: f32) -> Sequential {
    m.compile(
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        Optimizer::adam(lr),
        &["accuracy"],
    )
    .unwrap();
    m
}

#[test]
fn mlp_learns_mnist_in_one_epoch_and_reloads_identically() {
    let ds = dataset("mnist");
    let mut m = models::mlp(1).unwrap();
    m.compile(
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        Optimizer::adam(0.001),
        &["accuracy", "top_2_accuracy"],
    )
    .unwrap();
    m.fit(
        &ds.x_train,
        &ds.y_train,
        FitArgs::new().epochs(1).batch_size(100).verbose(0),
    )
    .unwrap();
    let ev = m.evaluate(&ds.x_test, &ds.y_test, 500).unwrap();
    let acc = ev.accuracy().unwrap();
    assert!(acc >= 0.95, "mlp reached only {acc}");
    let top2 = ev.metrics["top_2_accuracy"];
    assert!(
        top2 >= acc && top2 >= 0.98,
        "top-2 accuracy {top2} (top-1 {acc})"
    );

    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let mut back = Sequential::load(dir.path()).unwrap();
    let ev2 = back.evaluate(&ds.x_test, &ds.y_test, 500).unwrap();
    assert_eq!(ev, ev2, "a reloaded model must score exactly the same");
}

#[test]
fn same_seed_same_run_bit_for_bit() {
    let ds = dataset("mnist");
    let run = || {
        let mut m = compiled(models::mlp_bn(5).unwrap(), 0.001);
        let x = ds.x_train.slice_rows(0, 3000);
        let y = ds.y_train.slice_rows(0, 3000);
        let h = m
            .fit(&x, &y, FitArgs::new().epochs(2).batch_size(64).verbose(0))
            .unwrap();
        (h.get("loss").unwrap().to_vec(), m.get_weights())
    };
    let (l1, w1) = run();
    let (l2, w2) = run();
    assert_eq!(l1, l2);
    for (a, b) in w1.iter().zip(&w2) {
        assert_eq!(a.data(), b.data());
    }
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    // A model that overfits a small training set quickly: val_loss turns up within a few
    // epochs, EarlyStopping(patience 3) stops, and the final weights must be exactly those
    // of the best validation epoch.
    let ds = dataset("fashion-mnist");
    let x = ds.x_train.slice_rows(0, 2000);
    let y = ds.y_train.slice_rows(0, 2000);
    let mut m = compiled(models::mlp_bn(3).unwrap(), 0.003);
    let h = m
        .fit(
            &x,
            &y,
            FitArgs::new()
                .epochs(60)
                .batch_size(32)
                .validation_split(0.2)
                .verbose(0)
                .callback(EarlyStopping::new("val_loss", 3).restore_best_weights(true)),
        )
        .unwrap();
    let val = h.get("val_loss").unwrap();
    let best = h.best_epoch.expect("best epoch recorded");
    assert!(h.stopped_epoch.is_some(), "should stop early: {val:?}");
    assert_eq!(val.len(), best + 4, "stops 3 epochs after the best");
    let min = val.iter().cloned().fold(f32::INFINITY, f32::min);
    assert_eq!(val[best], min);
    // Re-evaluating the held-out split with the final weights gives the best val_loss.
    let ev = m
        .evaluate(&x.slice_rows(1600, 2000), &y.slice_rows(1600, 2000), 256)
        .unwrap();
    assert!(
        (ev.loss - min).abs() < 1e-5,
        "final weights give val_loss {} but the best epoch had {min}",
        ev.loss
    );
}
