//! AdamW's update from gradients held as plain f32 vectors (the native training pass), in
//! place: each moment and each weight is one pass over its own storage, with no tensor made.
//! The arithmetic is [`super::AdamW::step`]'s, in the same order.

use std::collections::HashMap;

use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, Tensor};

use super::AdamW;

/// m ← β·m + (1 − β)·g, or with `square`, v ← β·v + (1 − β)·g².
struct Moment<'a> {
    grad: &'a [f32],
    beta: f32,
    square: bool,
}

/// θ ← θ·(1 − lr·wd) − lr·(m·sm)/(√(v·sv) + ε).
#[derive(Clone, Copy)]
struct Apply<'a> {
    m: &'a [f32],
    v: &'a [f32],
    decay: f32,
    lr: f32,
    scale_m: f32,
    scale_v: f32,
    eps: f32,
}

fn data<'a>(s: &'a mut CpuStorage, l: &Layout, name: &str) -> candle_core::Result<&'a mut [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{name}: expected f32 storage")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{name}: expected a contiguous tensor")
    };
    v.get_mut(a..b)
        .ok_or_else(|| candle_core::Error::Msg(format!("{name}: layout out of range")))
}

impl InplaceOp1 for Moment<'_> {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let m = data(s, l, self.name())?;
        if m.len() != self.grad.len() {
            candle_core::bail!(
                "adamw: a gradient of {} values for {}",
                self.grad.len(),
                m.len()
            )
        }
        let (b, c) = (self.beta, 1.0 - self.beta);
        if self.square {
            for (x, g) in m.iter_mut().zip(self.grad) {
                *x = *x * b + g * g * c;
            }
        } else {
            for (x, g) in m.iter_mut().zip(self.grad) {
                *x = *x * b + g * c;
            }
        }
        Ok(())
    }
}

impl InplaceOp1 for Apply<'_> {
    fn name(&self) -> &'static str {
        "adamw-apply"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let theta = data(s, l, self.name())?;
        if theta.len() != self.m.len() || theta.len() != self.v.len() {
            candle_core::bail!("adamw: moments do not fit a parameter of {}", theta.len())
        }
        for ((t, m), v) in theta.iter_mut().zip(self.m).zip(self.v) {
            let upd = (m * self.scale_m) / ((v * self.scale_v).sqrt() + self.eps);
            *t = *t * self.decay - upd * self.lr;
        }
        Ok(())
    }
}

/// The contiguous f32 data of a CPU tensor, for `f` to read.
fn read<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("adamw: the host step needs CPU tensors")
    };
    Ok(f(crate::model::fused::slice(cpu, layout, "adamw")?))
}

impl AdamW {
    /// One update from gradients by parameter name (CPU parameters); parameters without a
    /// gradient are left untouched, as in [`AdamW::step`].
    pub fn step_host(&mut self, grads: &HashMap<String, &[f32]>) -> candle_core::Result<()> {
        self.step_t += 1;
        let c = &self.config;
        let t = self.step_t as i32;
        let template = Apply {
            m: &[],
            v: &[],
            decay: (1.0 - c.lr * c.weight_decay) as f32,
            lr: c.lr as f32,
            scale_m: (1.0 / (1.0 - c.beta1.powi(t))) as f32,
            scale_v: (1.0 / (1.0 - c.beta2.powi(t))) as f32,
            eps: c.eps as f32,
        };
        for slot in &self.slots {
            let Some(&g) = grads.get(&slot.name) else {
                continue;
            };
            let moment = |beta: f64, square| Moment {
                grad: g,
                beta: beta as f32,
                square,
            };
            slot.m.inplace_op1(&moment(c.beta1, false))?;
            slot.v.inplace_op1(&moment(c.beta2, true))?;
            read(&slot.m, |m| {
                read(&slot.v, |v| {
                    let op = Apply { m, v, ..template };
                    slot.var.as_tensor().inplace_op1(&op)
                })
            })???;
        }
        Ok(())
    }
}
