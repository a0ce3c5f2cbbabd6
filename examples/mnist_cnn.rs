//! The README's example: the Keras tutorial CNN on MNIST through the Rust API.
//! Run: `cargo run --release --example mnist_cnn` (set NABLA_DATA to the data folder).

use nabla::layers::keras::*;
use nabla::{data, EarlyStopping, FitArgs, KerasLoss, Optimizer, Sequential};

fn main() -> nabla::Result<()> {
    let ds = data::load_data("mnist")?; // x: [60000, 1, 28, 28] in [0, 1], y: class indices

    let mut model = Sequential::with_seed(&[1, 28, 28], 42); // channels first
    model
        .add(Conv2D(32, 3).activation(Relu))?
        .add(MaxPooling2D(2))?
        .add(Conv2D(64, 3).activation(Relu))?
        .add(MaxPooling2D(2))?
        .add(Flatten())?
        .add(Dense(64).activation(Relu))?
        .add(Dropout(0.2))?
        .add(Dense(10).activation(Softmax))?;
    print!("{}", model.summary());

    model.compile(
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        Optimizer::adam(1e-3),
        &["accuracy"],
    )?;
    let history = model.fit(
        &ds.x_train,
        &ds.y_train,
        FitArgs::new()
            .epochs(10)
            .batch_size(64)
            .validation_split(0.1)
            .callback(EarlyStopping::new("val_loss", 3).restore_best_weights(true)),
    )?;
    println!("{:?}", history.get("val_accuracy"));
    println!("{:?}", model.evaluate(&ds.x_test, &ds.y_test, 500)?);
    model.save(std::path::Path::new("runs/my-cnn"))?;
    Ok(())
}
