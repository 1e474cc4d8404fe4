//! The opcodes that fill containers, use the memo, name callables and call them, and the
//! checks on what a call builds: a storage from its persistent id, a tensor from its view.

use super::view::{allowed, view_end, Callable, StorageRef, TensorView, MAX_RANK};
use super::{Machine, Obj};

impl Machine<'_> {
    /// Opcodes that build and fill tuples, lists and dicts, and the memo.
    pub(super) fn step_container(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b')' => self.push(Obj::Tuple(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Obj::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Obj::Tuple(items));
            }
            b']' => self.push(Obj::List(Vec::new())),
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Obj::List(items));
            }
            b'a' => {
                let item = self.pop()?;
                self.append(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            b'}' => self.push(Obj::Dict(Vec::new())),
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Obj::Dict(Vec::new()));
                self.set_items(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            _ => return self.step_memo(op),
        }
        Ok(false)
    }

    fn append(&mut self, items: Vec<usize>) -> Result<(), String> {
        let at = self.top()?;
        match &mut self.arena[at] {
            Obj::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err("APPEND to something that is not a list".into()),
        }
    }

    fn set_items(&mut self, items: Vec<usize>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("a dict's items are not in pairs".into());
        }
        let at = self.top()?;
        match &mut self.arena[at] {
            Obj::Dict(dict) => {
                dict.extend(items.chunks(2).map(|p| (p[0], p[1])));
                Ok(())
            }
            _ => Err("SETITEM on something that is not a dict".into()),
        }
    }

    /// The memo and the opcodes that name, call and build objects.
    fn step_memo(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'q' => self.uint(1)?,
                    b'r' => self.uint(4)?,
                    _ => self.memo.len() as u64,
                };
                let t = self.top()?;
                self.memo.insert(key, t);
            }
            b'h' | b'j' => {
                let key = self.uint(if op == b'h' { 1 } else { 4 })?;
                let at = *self
                    .memo
                    .get(&key)
                    .ok_or_else(|| format!("memo entry {key} is read before it is written"))?;
                self.stack.push(at);
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let c = allowed(&module, &name)?;
                self.push(Obj::Global(c));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Obj::Str(module), Obj::Str(name)) = (&self.arena[module], &self.arena[name])
                else {
                    return Err("STACK_GLOBAL without two names".into());
                };
                let c = allowed(module, name)?;
                self.push(Obj::Global(c));
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let made = self.reduce(callable, args)?;
                self.push(made);
            }
            b'b' => {
                self.pop()?;
                let at = self.top()?;
                if !matches!(self.arena[at], Obj::Dict(_) | Obj::Tensor(_)) {
                    return Err("BUILD on something that is neither a dict nor a tensor".into());
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.storage(pid)?;
                self.push(Obj::Storage(storage));
            }
            _ => {
                return Err(
                    "not an opcode a weights-only reader accepts (a state dict saved by \
                     torch.save never holds it)"
                        .into(),
                )
            }
        }
        Ok(false)
    }

    fn tuple(&self, at: usize, what: &str) -> Result<&[usize], String> {
        match &self.arena[at] {
            Obj::Tuple(items) => Ok(items),
            _ => Err(format!("{what} is not a tuple")),
        }
    }

    fn int(&self, at: usize, what: &str) -> Result<u64, String> {
        match self.arena[at] {
            Obj::Int(v) if v >= 0 => Ok(v as u64),
            Obj::Int(v) => Err(format!("{what} is negative ({v})")),
            _ => Err(format!("{what} is not an integer")),
        }
    }

    fn ints(&self, at: usize, what: &str) -> Result<Vec<u64>, String> {
        let items = self.tuple(at, what)?;
        if items.len() > MAX_RANK {
            return Err(format!(
                "{what} has {} dimensions (at most {MAX_RANK})",
                items.len()
            ));
        }
        items.iter().map(|&i| self.int(i, what)).collect()
    }

    /// The storage a persistent id `('storage', class, key, location, numel)` names (with a
    /// sixth part, None, in the format before PyTorch 1.6).
    fn storage(&self, pid: usize) -> Result<StorageRef, String> {
        let items = self.tuple(pid, "a persistent id")?;
        if !matches!(items.len(), 5 | 6) {
            return Err(format!(
                "a persistent id of {} parts, not ('storage', class, key, location, size)",
                items.len()
            ));
        }
        let (kind, class, key, numel) = (items[0], items[1], items[2], items[4]);
        if items.len() == 6 && self.arena[items[5]] != Obj::None {
            return Err(
                "a persistent id of a storage view (PyTorch before 1.0), which is not read".into(),
            );
        }
        let (Obj::Str(kind), Obj::Global(Callable::Storage(dtype)), Obj::Str(key)) =
            (&self.arena[kind], &self.arena[class], &self.arena[key])
        else {
            return Err("a persistent id that is not ('storage', a storage class, key, …)".into());
        };
        let plain = !key.is_empty()
            && key.len() <= 64
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if kind != "storage" || !plain {
            return Err(format!(
                "a persistent id ({kind:?}, key {key:?}) that names no storage entry"
            ));
        }
        Ok(StorageRef {
            dtype,
            key: key.clone(),
            numel: self.int(numel, "a storage's size")?,
        })
    }

    fn reduce(&self, callable: usize, args: usize) -> Result<Obj, String> {
        let Obj::Global(c) = self.arena[callable] else {
            return Err("REDUCE calls something that is not a name".into());
        };
        let args = self.tuple(args, "REDUCE's arguments")?;
        match c {
            Callable::OrderedDict if args.is_empty() => Ok(Obj::Dict(Vec::new())),
            Callable::RebuildTensor if matches!(args.len(), 6 | 7) => {
                self.rebuild(args).map(Obj::Tensor)
            }
            Callable::RebuildParameter if args.len() == 3 => match &self.arena[args[0]] {
                Obj::Tensor(t) => Ok(Obj::Tensor(t.clone())),
                _ => Err("_rebuild_parameter of something that is not a tensor".into()),
            },
            _ => Err(format!("{c:?} called with {} arguments", args.len())),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`,
    /// its view checked to lie inside the storage.
    fn rebuild(&self, args: &[usize]) -> Result<TensorView, String> {
        let Obj::Storage(storage) = &self.arena[args[0]] else {
            return Err("a tensor built on something that is not a storage".into());
        };
        let offset = self.int(args[1], "a tensor's offset")?;
        let shape = self.ints(args[2], "a tensor's size")?;
        let stride = self.ints(args[3], "a tensor's stride")?;
        if shape.len() != stride.len() {
            return Err(format!(
                "a tensor of {} dimensions with {} strides",
                shape.len(),
                stride.len()
            ));
        }
        let numel = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or("a tensor's size overflows")?;
        // The last element the view reaches, which must lie inside the storage.
        let end = if numel == 0 {
            Some(offset)
        } else {
            view_end(offset, &shape, &stride)
        };
        match end {
            Some(end) if end <= storage.numel => {}
            _ => {
                return Err(format!(
                    "a tensor of size {shape:?}, stride {stride:?} at offset {offset} reaches past \
                     the {} elements of storage {}",
                    storage.numel, storage.key
                ))
            }
        }
        let shape = shape
            .into_iter()
            .map(|d| usize::try_from(d).map_err(|_| "a dimension too large".to_string()))
            .collect::<Result<_, _>>()?;
        Ok(TensorView {
            storage: storage.clone(),
            offset,
            shape,
            stride,
        })
    }
}
