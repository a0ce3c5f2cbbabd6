//! Nesterov's accelerated gradient, in the book's form:
//! `v = momentum * v - lr * g; W += momentum^2 * v - (1 + momentum) * lr * g`.

pub fn update(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = momentum * *v - lr * g;
        *w += momentum * momentum * *v - (1.0 + momentum) * lr * g;
    }
}
