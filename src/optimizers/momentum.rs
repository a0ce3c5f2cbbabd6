//! Momentum: `v = momentum * v - lr * g; W += v`.

pub fn update(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = momentum * *v - lr * g;
        *w += *v;
    }
}
