//! A weights-only reading of the pickle (`data.pkl`) of a PyTorch checkpoint. Nothing in it is
//! ever run: the opcodes that build plain values (numbers, strings, tuples, lists, dicts) are
//! interpreted, and the only names a pickle may ask for are the ones a state dict is made of —
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and `_rebuild_parameter`, and
//! torch's typed storage classes (the list `torch.load(weights_only=True)` starts from). Any
//! other name (`os.system`, `builtins.eval`, a class of the model's code) is refused, naming
//! it. Every object is one slot of an arena that grows by at most one slot an opcode, and
//! every length is checked against the bytes left, so a hostile pickle can neither run code
//! nor make this reader allocate more than a few times its own size.

use std::collections::HashMap;

mod ops;
mod view;

use view::Callable;
pub use view::{StorageRef, TensorView};

/// One object the pickle built.
#[derive(Clone, Debug, PartialEq)]
enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float,
    Str(String),
    Bytes,
    Tuple(Vec<usize>),
    List(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Global(Callable),
    Storage(StorageRef),
    Tensor(TensorView),
}

/// The machine that reads the pickle.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Vec<Obj>,
    stack: Vec<usize>,
    marks: Vec<usize>,
    memo: HashMap<u64, usize>,
}

/// The tensors of the state dict that the pickle `data` holds, by name in the order written: the
/// pickle's own dict, or the dict under `state_dict`, `model` or `module` of one that holds no
/// tensors itself. Values that are not tensors are passed over. An error says what is wrong
/// and at which byte.
pub fn state_dict(data: &[u8]) -> Result<Vec<(String, TensorView)>, String> {
    let mut m = Machine::at(data, 0);
    let top = m.run()?;
    m.state_dict_at(top)
}

/// The pickle with which a checkpoint in the format before PyTorch 1.6 begins: protocol 2,
/// the magic number 0x1950a86a20f9469cfc6c as a 10-byte LONG1.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";

/// What a checkpoint in the format before PyTorch 1.6 holds ahead of its storages.
#[derive(Debug)]
pub struct LegacyHead {
    /// The state dict's tensors.
    pub tensors: Vec<(String, TensorView)>,
    /// Every storage the state dict's pickle names, tensors passed over included (an optimizer's
    /// beside a nested state dict): the file holds them all, in the order of `keys`.
    pub storages: Vec<StorageRef>,
    /// The storages' keys, in the order their bytes follow.
    pub keys: Vec<String>,
    /// Where the first storage begins.
    pub end: usize,
}

/// The five pickles of the format before PyTorch 1.6, read from the start of `data`: the magic
/// number, the protocol version (1001), the system's description (little-endian required), the
/// state dict (persistent ids of six parts, the last None) and the list of storage keys.
pub fn legacy_head(data: &[u8]) -> Result<LegacyHead, String> {
    if !data.starts_with(LEGACY_MAGIC) {
        return Err("a pickle without PyTorch's magic number: not a checkpoint".into());
    }
    let mut m = Machine::at(data, LEGACY_MAGIC.len());
    let top = m.run()?;
    if !matches!(m.arena[top], Obj::Int(1001)) {
        return Err("a protocol version other than 1001, the one torch.save wrote".into());
    }
    let mut m = Machine::at(data, m.pos);
    let top = m.run()?;
    if m.entry(top, "little_endian").map(|v| &m.arena[v]) != Some(&Obj::Bool(true)) {
        return Err(
            "saved on a big-endian machine; only little-endian checkpoints are read".into(),
        );
    }
    let mut m = Machine::at(data, m.pos);
    let top = m.run()?;
    let tensors = m.state_dict_at(top)?;
    let storages = m
        .arena
        .iter()
        .filter_map(|o| match o {
            Obj::Storage(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let mut m = Machine::at(data, m.pos);
    let top = m.run()?;
    let Obj::List(items) = &m.arena[top] else {
        return Err("the storage keys are not a list".into());
    };
    let keys = items
        .iter()
        .map(|&i| match &m.arena[i] {
            Obj::Str(k) => Ok(k.clone()),
            _ => Err("a storage key that is not a string".to_string()),
        })
        .collect::<Result<_, _>>()?;
    Ok(LegacyHead {
        tensors,
        storages,
        keys,
        end: m.pos,
    })
}

impl<'a> Machine<'a> {
    fn at(data: &'a [u8], pos: usize) -> Self {
        Machine {
            data,
            pos,
            arena: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }
}

impl Machine<'_> {
    /// The value under the string key `key` of the dict `at`.
    fn entry(&self, at: usize, key: &str) -> Option<usize> {
        let Obj::Dict(items) = &self.arena[at] else {
            return None;
        };
        items
            .iter()
            .find(|&&(k, _)| matches!(&self.arena[k], Obj::Str(s) if s == key))
            .map(|&(_, v)| v)
    }

    /// The tensors of the state dict `top` (see [`state_dict`]).
    fn state_dict_at(&self, top: usize) -> Result<Vec<(String, TensorView)>, String> {
        let mut tensors = self.tensors_of(top)?;
        if tensors.is_empty() {
            let nested = ["state_dict", "model", "module", "model_state_dict"]
                .iter()
                .filter_map(|k| self.entry(top, k))
                .find(|&v| matches!(self.arena[v], Obj::Dict(_)));
            if let Some(v) = nested {
                tensors = self.tensors_of(v)?;
            }
        }
        if tensors.is_empty() {
            return Err("the pickle holds no tensors: not a state dict".into());
        }
        Ok(tensors)
    }

    /// The (name, tensor) pairs of the dict `at`, a later name replacing an earlier one.
    fn tensors_of(&self, at: usize) -> Result<Vec<(String, TensorView)>, String> {
        let Obj::Dict(items) = &self.arena[at] else {
            return Err("the pickle does not hold a dict of tensors (a state dict)".into());
        };
        let mut out: Vec<(String, TensorView)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for &(k, v) in items {
            let (Obj::Str(name), Obj::Tensor(t)) = (&self.arena[k], &self.arena[v]) else {
                continue;
            };
            match index.get(name.as_str()) {
                Some(&i) => out[i].1 = t.clone(),
                None => {
                    index.insert(name, out.len());
                    out.push((name.clone(), t.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Run to STOP; the object left on top.
    fn run(&mut self) -> Result<usize, String> {
        loop {
            let at = self.pos;
            let op = self.take(1)?[0];
            match self.step(op) {
                Ok(true) => return self.pop(),
                Ok(false) => {}
                Err(e) => return Err(format!("byte {at} (opcode 0x{op:02x}): {e}")),
            }
        }
    }

    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "the pickle ends early ({n} bytes wanted at byte {}, {left} left)",
                self.pos
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.data[start..self.pos])
    }

    fn uint(&mut self, n: u64) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL name without its newline")?;
        let text = String::from_utf8(rest[..end].to_vec()).map_err(|_| "a name not UTF-8")?;
        self.pos += end + 1;
        Ok(text)
    }

    fn push(&mut self, obj: Obj) {
        self.arena.push(obj);
        self.stack.push(self.arena.len() - 1);
    }

    fn pop(&mut self) -> Result<usize, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("the pickle pops from an empty stack".into());
        }
        self.stack.pop().ok_or_else(|| "the stack is empty".into())
    }

    fn top(&self) -> Result<usize, String> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| "the stack is empty".into())
    }

    /// The objects above the last mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<usize>, String> {
        let mark = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(mark))
    }

    fn string(&mut self, len: u64, latin1: bool) -> Result<(), String> {
        let bytes = self.take(len)?;
        let s = if latin1 {
            bytes.iter().map(|&b| b as char).collect()
        } else {
            std::str::from_utf8(bytes)
                .map_err(|_| "a string that is not UTF-8")?
                .to_string()
        };
        self.push(Obj::Str(s));
        Ok(())
    }

    /// One opcode; true at STOP.
    fn step(&mut self, op: u8) -> Result<bool, String> {
        match op {
            0x80 => {
                self.take(1)?;
            }
            0x95 => {
                self.take(8)?;
            }
            b'.' => return Ok(true),
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let t = self.top()?;
                self.stack.push(t);
            }
            b'N' => self.push(Obj::None),
            0x88 => self.push(Obj::Bool(true)),
            0x89 => self.push(Obj::Bool(false)),
            _ => return self.step_value(op),
        }
        Ok(false)
    }

    /// Opcodes that push numbers, strings and containers.
    fn step_value(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'J' => {
                let v = self.uint(4)? as u32 as i32;
                self.push(Obj::Int(v as i64));
            }
            b'K' => {
                let v = self.uint(1)?;
                self.push(Obj::Int(v as i64));
            }
            b'M' => {
                let v = self.uint(2)?;
                self.push(Obj::Int(v as i64));
            }
            0x8a => {
                let n = self.uint(1)?;
                if n > 8 {
                    return Err(format!("an integer of {n} bytes (at most 8 are read)"));
                }
                let v = self.uint(n)?;
                let v = if n > 0 && n < 8 && v >> (8 * n - 1) & 1 == 1 {
                    v as i64 - (1i64 << (8 * n))
                } else {
                    v as i64
                };
                self.push(Obj::Int(v));
            }
            b'G' => {
                self.take(8)?;
                self.push(Obj::Float);
            }
            b'X' => {
                let n = self.uint(4)?;
                self.string(n, false)?;
            }
            0x8c => {
                let n = self.uint(1)?;
                self.string(n, false)?;
            }
            0x8d => {
                let n = self.uint(8)?;
                self.string(n, false)?;
            }
            b'T' => {
                let n = self.uint(4)?;
                self.string(n, true)?;
            }
            b'U' => {
                let n = self.uint(1)?;
                self.string(n, true)?;
            }
            b'C' | b'B' | 0x8e => {
                let width = match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                };
                let n = self.uint(width)?;
                self.take(n)?;
                self.push(Obj::Bytes);
            }
            _ => return self.step_container(op),
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests;
