//! Adam (the book's and Keras' form, epsilon outside the square root):
//! `lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`, `m += (1 - beta1)(g - m)`,
//! `v += (1 - beta2)(g^2 - v)`, `W -= lr_t * m / (sqrt(v) + eps)`.
//! AdamW is this update after decoupled weight decay, which `Optimizer::step` applies
//! for every rule (see the module `optimizers`).

#[allow(clippy::too_many_arguments)]
pub fn update(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    t: u64,
) {
    let lr_t = lr * (1.0 - beta2.powi(t as i32)).sqrt() / (1.0 - beta1.powi(t as i32));
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += (1.0 - beta1) * (g - *m);
        *v += (1.0 - beta2) * (g * g - *v);
        *w -= lr_t * *m / (v.sqrt() + eps);
    }
}
