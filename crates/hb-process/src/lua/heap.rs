//! Whole-heap snapshots (SPEC §6.10 "Snapshot", v1.1).
//!
//! The heap reachable from four roots — the globals, the state table, the
//! string metatable and the message-table metatable — is written as a
//! numbered object graph, breadth first, each table's entries in the
//! deterministic `pairs` order, so the same heap always gives the same
//! bytes. Objects are:
//!
//! - tables, with their metatables and entries (shared tables and cycles
//!   are references to one object);
//! - permanents, the tables and functions every fresh VM holds before any
//!   script runs (`_G`, `string`, `print`, `Send`, `Handlers`, …), written
//!   by name; a permanent table's current contents are written too and
//!   replace the fresh VM's on restore;
//! - Lua functions: their bytecode (`lua_dump`, with debug information, so
//!   error messages stay the same) and their upvalues. An upvalue shared by
//!   several closures is written once, by its first closure; the others
//!   name that (closure, index) and are re-joined on restore.
//!
//! Coroutines, userdata, C functions that are not permanents, keys outside
//! the deterministic order (tables, functions) and metatables with `__gc`
//! or `__mode` make the snapshot fail with [`LuaError::Unpersistable`].
//!
//! Format (all integers big-endian): `HBLUAHEAP` ‖ version `01` ‖ u64
//! FNV-1a checksum of what follows ‖ u32 object count ‖ four root values ‖
//! objects. A value is `00` nil, `01`
//! false, `02` true, `03` i64, `04` f64 bits, `05` u32 length ‖ bytes (a
//! string), `06` u32 object index. An object is `01` table (u32 sequence
//! length hint, metatable value, u32 entry count, entries), `02` permanent
//! table (name, then as a table), `03` permanent function (name), `04` Lua
//! function (code, u32 upvalue count, per upvalue `00` value or `01` u32
//! closure index ‖ u32 upvalue index).
//!
//! Heaps are trusted data (SPEC: written by this node, stored under content
//! IDs): Lua 5.3 does not verify bytecode, so a crafted heap could crash
//! the VM. The checksum makes accidental corruption a typed error instead
//! (any single changed byte changes an FNV-1a hash), and every length and
//! index is checked before it is used.

use std::collections::{HashMap, VecDeque};

use mlua::{ChunkMode, Function, LightUserData, Table, Value as LuaValue};

use super::error::LuaError;
use super::order::sorted_entries;
use super::sandbox::Vm;

const MAGIC: &[u8] = b"HBLUAHEAP";
const VERSION: u8 = 1;

fn vm_err(e: mlua::Error) -> LuaError {
    LuaError::Vm(e.to_string())
}

enum Obj {
    Table(Table),
    Function(Function),
}

struct Writer<'a> {
    vm: &'a Vm,
    index: HashMap<usize, u32>,
    queue: VecDeque<(u32, Obj)>,
    next: u32,
    /// Upvalue identity → (closure index, upvalue index) of its first
    /// closure.
    upvalues: HashMap<usize, (u32, u32)>,
    out: Vec<u8>,
}

impl<'a> Writer<'a> {
    fn reference(&mut self, v: &LuaValue) -> Result<Option<u32>, LuaError> {
        let (ptr, obj) = match v {
            LuaValue::Table(t) => (t.to_pointer() as usize, Obj::Table(t.clone())),
            LuaValue::Function(f) => (f.to_pointer() as usize, Obj::Function(f.clone())),
            _ => return Ok(None),
        };
        if let Some(i) = self.index.get(&ptr) {
            return Ok(Some(*i));
        }
        let i = self.next;
        self.next = self
            .next
            .checked_add(1)
            .ok_or_else(|| LuaError::Unpersistable("too many objects".to_string()))?;
        self.index.insert(ptr, i);
        self.queue.push_back((i, obj));
        Ok(Some(i))
    }

    fn value(&mut self, v: &LuaValue, buf: &mut Vec<u8>) -> Result<(), LuaError> {
        match v {
            LuaValue::Nil => buf.push(0),
            LuaValue::Boolean(false) => buf.push(1),
            LuaValue::Boolean(true) => buf.push(2),
            LuaValue::Integer(i) => {
                buf.push(3);
                buf.extend_from_slice(&i.to_be_bytes());
            }
            LuaValue::Number(f) => {
                buf.push(4);
                buf.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            LuaValue::String(s) => {
                buf.push(5);
                put_bytes(buf, &s.as_bytes())?;
            }
            LuaValue::Table(_) | LuaValue::Function(_) => {
                let i = self
                    .reference(v)?
                    .ok_or_else(|| LuaError::Vm("unreachable reference".into()))?;
                buf.push(6);
                buf.extend_from_slice(&i.to_be_bytes());
            }
            other => {
                return Err(LuaError::Unpersistable(format!(
                    "a value of type {} cannot be persisted",
                    other.type_name()
                )))
            }
        }
        Ok(())
    }

    fn table_body(&mut self, t: &Table, buf: &mut Vec<u8>) -> Result<(), LuaError> {
        let mt = t.metatable();
        if let Some(mt) = &mt {
            for field in ["__gc", "__mode"] {
                if !mt.raw_get::<LuaValue>(field).map_err(vm_err)?.is_nil() {
                    return Err(LuaError::Unpersistable(format!(
                        "a metatable with {field} cannot be persisted"
                    )));
                }
            }
        }
        let entries = sorted_entries(t)
            .map_err(vm_err)?
            .map_err(|m| LuaError::Unpersistable(m.replace("cannot iterate", "cannot persist")))?;
        let seq = entries
            .iter()
            .enumerate()
            .take_while(|(i, (k, _, _))| matches!(k, super::order::OrderedKey::Int(n) if *n == *i as i64 + 1))
            .count();
        buf.extend_from_slice(&u32_of(seq)?.to_be_bytes());
        self.value(&mt.map(LuaValue::Table).unwrap_or(LuaValue::Nil), buf)?;
        buf.extend_from_slice(&u32_of(entries.len())?.to_be_bytes());
        for (_, k, v) in &entries {
            self.value(k, buf)?;
            self.value(v, buf)?;
        }
        Ok(())
    }

    fn object(&mut self, index: u32, obj: Obj) -> Result<(), LuaError> {
        let mut buf = Vec::new();
        match obj {
            Obj::Table(t) => {
                if let Some(name) = self.vm.perms.by_ptr.get(&(t.to_pointer() as usize)) {
                    buf.push(2);
                    put_bytes(&mut buf, name.as_bytes())?;
                } else {
                    buf.push(1);
                }
                self.table_body(&t, &mut buf)?;
            }
            Obj::Function(f) => {
                if let Some(name) = self.vm.perms.by_ptr.get(&(f.to_pointer() as usize)) {
                    buf.push(3);
                    put_bytes(&mut buf, name.as_bytes())?;
                } else {
                    let info = f.info();
                    if info.what == "C" {
                        return Err(LuaError::Unpersistable(
                            "a C function that is not a permanent cannot be persisted".to_string(),
                        ));
                    }
                    buf.push(4);
                    put_bytes(&mut buf, &f.dump(false))?;
                    let n = info.num_upvalues as u32;
                    buf.extend_from_slice(&n.to_be_bytes());
                    for i in 1..=n {
                        let id: LuaValue = self
                            .vm
                            .debug
                            .upvalueid
                            .call((f.clone(), i))
                            .map_err(vm_err)?;
                        let id = match id {
                            LuaValue::LightUserData(LightUserData(p)) => p as usize,
                            _ => {
                                return Err(LuaError::Vm("upvalueid gave no identity".to_string()))
                            }
                        };
                        if let Some((fi, ui)) = self.upvalues.get(&id).copied() {
                            buf.push(1);
                            buf.extend_from_slice(&fi.to_be_bytes());
                            buf.extend_from_slice(&ui.to_be_bytes());
                        } else {
                            self.upvalues.insert(id, (index, i));
                            let (_, v): (LuaValue, LuaValue) = self
                                .vm
                                .debug
                                .getupvalue
                                .call((f.clone(), i))
                                .map_err(vm_err)?;
                            buf.push(0);
                            self.value(&v, &mut buf)?;
                        }
                    }
                }
            }
        }
        self.out.extend_from_slice(&buf);
        Ok(())
    }
}

/// FNV-1a, 64 bits.
fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn u32_of(n: usize) -> Result<u32, LuaError> {
    u32::try_from(n)
        .map_err(|_| LuaError::Unpersistable("a value is too large to persist".to_string()))
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) -> Result<(), LuaError> {
    buf.extend_from_slice(&u32_of(b.len())?.to_be_bytes());
    buf.extend_from_slice(b);
    Ok(())
}

/// Serialises the heap reachable from the globals, `state`, the string
/// metatable and the message metatable.
pub(crate) fn snapshot(vm: &Vm, state: &Table) -> Result<Vec<u8>, LuaError> {
    let mut w = Writer {
        vm,
        index: HashMap::new(),
        queue: VecDeque::new(),
        next: 0,
        upvalues: HashMap::new(),
        out: Vec::new(),
    };
    let mut roots = Vec::new();
    for root in [
        LuaValue::Table(vm.lua.globals()),
        LuaValue::Table(state.clone()),
        LuaValue::Table(vm.string_mt.clone()),
        LuaValue::Table(vm.message_mt.clone()),
    ] {
        w.value(&root, &mut roots)?;
    }
    while let Some((i, obj)) = w.queue.pop_front() {
        w.object(i, obj)?;
    }
    let mut body = Vec::with_capacity(w.out.len() + roots.len() + 4);
    body.extend_from_slice(&w.next.to_be_bytes());
    body.extend_from_slice(&roots);
    body.extend_from_slice(&w.out);
    let mut out = Vec::with_capacity(body.len() + MAGIC.len() + 9);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&checksum(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

// ---- restore ----

#[derive(Debug)]
enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Ref(u32),
}

enum Up {
    Value(Val),
    Join(u32, u32),
}

enum Rec {
    Table {
        perm: Option<String>,
        seq: u32,
        mt: Val,
        entries: Vec<(Val, Val)>,
    },
    PermFunction(String),
    Function {
        code: Vec<u8>,
        ups: Vec<Up>,
    },
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bad(&self, what: &str) -> LuaError {
        LuaError::BadSnapshot(format!("{what} at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LuaError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| self.bad("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, LuaError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, LuaError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self) -> Result<u64, LuaError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, LuaError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn text(&mut self) -> Result<String, LuaError> {
        String::from_utf8(self.bytes()?).map_err(|_| self.bad("a name is not UTF-8"))
    }

    fn value(&mut self, count: u32) -> Result<Val, LuaError> {
        Ok(match self.u8()? {
            0 => Val::Nil,
            1 => Val::Bool(false),
            2 => Val::Bool(true),
            3 => Val::Int(self.u64()? as i64),
            4 => Val::Float(f64::from_bits(self.u64()?)),
            5 => Val::Str(self.bytes()?),
            6 => {
                let i = self.u32()?;
                if i >= count {
                    return Err(self.bad("reference out of range"));
                }
                Val::Ref(i)
            }
            _ => return Err(self.bad("unknown value tag")),
        })
    }

    fn table(&mut self, perm: Option<String>, count: u32) -> Result<Rec, LuaError> {
        let seq = self.u32()?;
        let mt = self.value(count)?;
        let n = self.u32()? as usize;
        // Each entry takes at least two bytes: bound the allocation.
        if n > self.b.len().saturating_sub(self.pos) / 2 {
            return Err(self.bad("entry count exceeds the data"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(count)?;
            let v = self.value(count)?;
            entries.push((k, v));
        }
        Ok(Rec::Table {
            perm,
            seq,
            mt,
            entries,
        })
    }
}

fn to_lua(vm: &Vm, objs: &[LuaValue], v: &Val) -> Result<LuaValue, LuaError> {
    Ok(match v {
        Val::Nil => LuaValue::Nil,
        Val::Bool(b) => LuaValue::Boolean(*b),
        Val::Int(i) => LuaValue::Integer(*i),
        Val::Float(f) => LuaValue::Number(*f),
        Val::Str(s) => LuaValue::String(vm.lua.create_string(s).map_err(vm_err)?),
        Val::Ref(i) => objs
            .get(*i as usize)
            .cloned()
            .ok_or_else(|| LuaError::BadSnapshot("reference out of range".to_string()))?,
    })
}

/// Rebuilds the heap in a fresh VM and returns the state table.
pub(crate) fn restore(vm: &Vm, bytes: &[u8]) -> Result<Table, LuaError> {
    let mut r = Reader { b: bytes, pos: 0 };
    if r.take(MAGIC.len())? != MAGIC || r.u8()? != VERSION {
        return Err(LuaError::BadSnapshot(
            "not a version 1 Lua heap".to_string(),
        ));
    }
    let sum = r.u64()?;
    if checksum(&bytes[r.pos..]) != sum {
        return Err(LuaError::BadSnapshot("checksum mismatch".to_string()));
    }
    let count = r.u32()?;
    if count as usize > bytes.len() {
        return Err(LuaError::BadSnapshot(
            "object count exceeds the data".to_string(),
        ));
    }
    let mut roots = Vec::new();
    for _ in 0..4 {
        roots.push(r.value(count)?);
    }
    let mut recs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let rec = match r.u8()? {
            1 => r.table(None, count)?,
            2 => {
                let name = r.text()?;
                r.table(Some(name), count)?
            }
            3 => Rec::PermFunction(r.text()?),
            4 => {
                let code = r.bytes()?;
                let n = r.u32()?;
                if n > 255 {
                    return Err(r.bad("too many upvalues"));
                }
                let mut ups = Vec::new();
                for _ in 0..n {
                    ups.push(match r.u8()? {
                        0 => Up::Value(r.value(count)?),
                        1 => Up::Join(r.u32()?, r.u32()?),
                        _ => return Err(r.bad("unknown upvalue tag")),
                    });
                }
                Rec::Function { code, ups }
            }
            _ => return Err(r.bad("unknown object tag")),
        };
        recs.push(rec);
    }
    if r.pos != bytes.len() {
        return Err(r.bad("trailing bytes"));
    }

    // Create every object, then fill them in.
    let perm = |name: &str| {
        vm.perms
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| LuaError::BadSnapshot(format!("unknown permanent {name:?}")))
    };
    let mut objs = Vec::with_capacity(recs.len());
    for rec in &recs {
        objs.push(match rec {
            Rec::Table {
                perm: None,
                seq,
                entries,
                ..
            } => LuaValue::Table(
                vm.lua
                    .create_table_with_capacity(
                        *seq as usize,
                        entries.len().saturating_sub(*seq as usize),
                    )
                    .map_err(vm_err)?,
            ),
            Rec::Table {
                perm: Some(name), ..
            } => match perm(name)? {
                LuaValue::Table(t) => LuaValue::Table(t),
                _ => {
                    return Err(LuaError::BadSnapshot(format!(
                        "permanent {name:?} is not a table"
                    )))
                }
            },
            Rec::PermFunction(name) => match perm(name)? {
                LuaValue::Function(f) => LuaValue::Function(f),
                _ => {
                    return Err(LuaError::BadSnapshot(format!(
                        "permanent {name:?} is not a function"
                    )))
                }
            },
            Rec::Function { code, .. } => LuaValue::Function(
                vm.lua
                    .load(code.as_slice())
                    .set_mode(ChunkMode::Binary)
                    .into_function()
                    .map_err(|e| LuaError::BadSnapshot(format!("bytecode does not load: {e}")))?,
            ),
        });
    }
    for (i, rec) in recs.iter().enumerate() {
        match (rec, &objs[i]) {
            (
                Rec::Table {
                    perm, mt, entries, ..
                },
                LuaValue::Table(t),
            ) => {
                if perm.is_some() {
                    let keys: Vec<LuaValue> = t
                        .pairs::<LuaValue, LuaValue>()
                        .map(|p| p.map(|(k, _)| k))
                        .collect::<mlua::Result<_>>()
                        .map_err(vm_err)?;
                    for k in keys {
                        t.raw_set(k, LuaValue::Nil).map_err(vm_err)?;
                    }
                }
                match to_lua(vm, &objs, mt)? {
                    LuaValue::Table(m) => t.set_metatable(Some(m)).map_err(vm_err)?,
                    LuaValue::Nil => t.set_metatable(None).map_err(vm_err)?,
                    _ => {
                        return Err(LuaError::BadSnapshot(
                            "a metatable is not a table".to_string(),
                        ))
                    }
                }
                for (k, v) in entries {
                    let k = to_lua(vm, &objs, k)?;
                    if k.is_nil() || matches!(k, LuaValue::Number(f) if f.is_nan()) {
                        return Err(LuaError::BadSnapshot("invalid table key".to_string()));
                    }
                    t.raw_set(k, to_lua(vm, &objs, v)?).map_err(vm_err)?;
                }
            }
            (Rec::Function { ups, .. }, LuaValue::Function(f)) => {
                for (n, up) in ups.iter().enumerate() {
                    if let Up::Value(v) = up {
                        let v = to_lua(vm, &objs, v)?;
                        vm.debug
                            .setupvalue
                            .call::<LuaValue>((f.clone(), n + 1, v))
                            .map_err(vm_err)?;
                    }
                }
            }
            _ => {}
        }
    }
    for (i, rec) in recs.iter().enumerate() {
        if let (Rec::Function { ups, .. }, LuaValue::Function(f)) = (rec, &objs[i]) {
            for (n, up) in ups.iter().enumerate() {
                if let Up::Join(fi, ui) = up {
                    let owner = match objs.get(*fi as usize) {
                        Some(LuaValue::Function(o)) => o.clone(),
                        _ => {
                            return Err(LuaError::BadSnapshot(
                                "an upvalue joins a non-function".to_string(),
                            ))
                        }
                    };
                    vm.debug
                        .upvaluejoin
                        .call::<()>((f.clone(), n + 1, owner, *ui))
                        .map_err(|e| LuaError::BadSnapshot(format!("upvaluejoin: {e}")))?;
                }
            }
        }
    }
    let globals = to_lua(vm, &objs, &roots[0])?;
    match globals {
        LuaValue::Table(g) if g.to_pointer() == vm.lua.globals().to_pointer() => {}
        _ => {
            return Err(LuaError::BadSnapshot(
                "the first root is not the globals".to_string(),
            ))
        }
    }
    match to_lua(vm, &objs, &roots[1])? {
        LuaValue::Table(t) => Ok(t),
        _ => Err(LuaError::BadSnapshot(
            "the state root is not a table".to_string(),
        )),
    }
}
