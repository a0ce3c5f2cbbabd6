//! AdaGrad: `h += g^2; W -= lr * g / (sqrt(h) + eps)`.

pub fn update(w: &mut [f32], g: &[f32], h: &mut [f32], lr: f32, eps: f32) {
    for ((w, &g), h) in w.iter_mut().zip(g).zip(h.iter_mut()) {
        *h += g * g;
        *w -= lr * g / (h.sqrt() + eps);
    }
}
