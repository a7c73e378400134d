//! The canonical ABI between guest memory and [`Value`], with no wasmtime `Val` in between.
//!
//! wasmtime's dynamic API lifts a `list<u8>` as one `Val` per byte, which costs about 85 ns a
//! byte and 32 bytes of host memory for each (bytecodealliance/wasmtime#13788). Here a task
//! call's arguments and result are read from and written to guest memory directly: a byte
//! list is one copy, a list of fixed-size scalars one pass over its bytes, a string goes
//! through wasmtime's own string code (every string encoding), and every other shape is
//! walked the way wasmtime's `Val` code walks it. The [`Value`] produced is exactly the one
//! the `Val` path produces (`Value::from_val` of wasmtime's `Val`), so keys and record bytes
//! do not change; the tests below and `tests/abi.rs` hold the two paths against each other.
//!
//! Hostcall fuel is charged as wasmtime charges it for `Val`s (its size per list item,
//! record field and payload), so `max_result_size` and its message behave as before.
//!
//! wasmtime reaches this code through its typed-function traits ([`ComponentType`],
//! [`Lift`], [`Lower`]), implemented below for shells whose flat size is a const generic.
//! Those traits' contents are outside wasmtime's stability guarantee: the lockfile pins
//! wasmtime, and an upgrade must run this module's tests.

use std::mem::{size_of, MaybeUninit};
use std::slice::{Iter, IterMut};

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext, LowerContext};
use wasmtime::component::{ComponentNamedList, ComponentType, Lift, Lower, Val};
use wasmtime::ValRaw;

use super::buf::{BorrowCheck, Buf, BORROW_FROM};
use super::{Numbers, Ty, Value};

/// The most flat parameters the canonical ABI passes in core-wasm arguments.
pub const MAX_FLAT_PARAMS: usize = 16;
/// The most flat results the canonical ABI returns in core-wasm results.
pub const MAX_FLAT_RESULTS: usize = 1;
/// The largest parameter tuple, in bytes, that a call into a guest can spill to memory
/// through [`ExportParams`]; a larger one takes wasmtime's `Val` path.
pub const MAX_SPILLED_PARAMS: u32 = 64 * 1024;

type Result<T> = wasmtime::Result<T>;

/// Runs `$body` with `$N` a const equal to the flat count `$n` (0 to [`MAX_FLAT_PARAMS`]).
macro_rules! with_flat_count {
    ($n:expr, $N:ident, $body:expr) => {
        match $n {
            0 => {
                const $N: usize = 0;
                $body
            }
            1 => {
                const $N: usize = 1;
                $body
            }
            2 => {
                const $N: usize = 2;
                $body
            }
            3 => {
                const $N: usize = 3;
                $body
            }
            4 => {
                const $N: usize = 4;
                $body
            }
            5 => {
                const $N: usize = 5;
                $body
            }
            6 => {
                const $N: usize = 6;
                $body
            }
            7 => {
                const $N: usize = 7;
                $body
            }
            8 => {
                const $N: usize = 8;
                $body
            }
            9 => {
                const $N: usize = 9;
                $body
            }
            10 => {
                const $N: usize = 10;
                $body
            }
            11 => {
                const $N: usize = 11;
                $body
            }
            12 => {
                const $N: usize = 12;
                $body
            }
            13 => {
                const $N: usize = 13;
                $body
            }
            14 => {
                const $N: usize = 14;
                $body
            }
            15 => {
                const $N: usize = 15;
                $body
            }
            16 => {
                const $N: usize = 16;
                $body
            }
            n => Err(error(format!("{n} flat parameters are more than {MAX_FLAT_PARAMS}"))),
        }
    };
}

fn error(message: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::msg(message.to_string())
}

/// Number of core-wasm values `ty` flattens to (the canonical ABI's `flatten_type`).
pub fn flat_count(ty: &Ty) -> usize {
    match ty {
        Ty::String | Ty::List(_) => 2,
        Ty::Record(fields) => fields.iter().map(|(_, ty)| flat_count(ty)).sum(),
        Ty::Tuple(types) => types.iter().map(flat_count).sum(),
        Ty::Flags(names) => names.len().div_ceil(32),
        Ty::Variant(cases) => 1 + cases.iter().filter_map(|(_, ty)| ty.as_ref()).map(flat_count).max().unwrap_or(0),
        Ty::Option(ty) => 1 + flat_count(ty),
        Ty::Result { ok, err } => {
            1 + [ok, err].iter().filter_map(|ty| ty.as_deref()).map(flat_count).max().unwrap_or(0)
        }
        _ => 1,
    }
}

/// How a function's parameters cross: in `n` flat core values, or spilled to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsAbi {
    /// `n` ≤ [`MAX_FLAT_PARAMS`] core values.
    Flat(usize),
    /// A pointer to the parameter tuple in memory.
    Spilled,
}

impl ParamsAbi {
    /// The parameter passing of a function with these parameter types.
    pub fn of<'a>(params: impl IntoIterator<Item = &'a Ty>) -> ParamsAbi {
        let n: usize = params.into_iter().map(flat_count).sum();
        if n <= MAX_FLAT_PARAMS {
            ParamsAbi::Flat(n)
        } else {
            ParamsAbi::Spilled
        }
    }
}

/// How a function with these parameters and this result passes them.
pub fn signature_abi(params: &[(String, Ty)], result: Option<&Ty>) -> (ParamsAbi, ResultAbi) {
    (ParamsAbi::of(params.iter().map(|(_, ty)| ty)), ResultAbi::of(result))
}

/// How a function's result crosses: nothing, one flat core value, or through memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultAbi {
    /// The function has no result.
    None,
    /// One core value.
    Flat,
    /// A pointer to the result in memory.
    Memory,
}

impl ResultAbi {
    /// The result passing of a function with this result type.
    pub fn of(result: Option<&Ty>) -> ResultAbi {
        match result.map(flat_count) {
            None => ResultAbi::None,
            Some(n) if n <= MAX_FLAT_RESULTS => ResultAbi::Flat,
            Some(_) => ResultAbi::Memory,
        }
    }
}

// ---- lifting: guest → Value ----

fn next<'a>(src: &mut Iter<'a, ValRaw>) -> Result<&'a ValRaw> {
    src.next().ok_or_else(|| error("fewer flat values than the type needs"))
}

fn next_mut<'a>(dst: &mut IterMut<'a, MaybeUninit<ValRaw>>) -> Result<&'a mut MaybeUninit<ValRaw>> {
    dst.next().ok_or_else(|| error("more flat values than the function's type has"))
}

fn flat_of(cx_types: &wasmtime::component::__internal::ComponentTypes, ty: &InterfaceType) -> usize {
    cx_types.canonical_abi(ty).flat_count(usize::MAX).unwrap_or(0)
}

/// Whether lifted lists may borrow the guest's memory instead of being copied out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Every list is copied: the value outlives the guest's call (a task's result, whose
    /// instance is dropped next).
    Copy,
    /// Byte lists and lists of numbers of [`BORROW_FROM`] bytes and more are borrowed in
    /// place: the arguments of a host import, which live only while the caller waits.
    BorrowLarge,
}

/// Lifts one value of type `ty` from its flat core values.
pub fn lift_flat(cx: &mut LiftContext<'_>, hold: Hold, ty: InterfaceType, src: &mut Iter<'_, ValRaw>) -> Result<Value> {
    Ok(match ty {
        InterfaceType::Bool => Value::Bool(bool::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::S8 => Value::S8(i8::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::U8 => Value::U8(u8::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::S16 => Value::S16(i16::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::U16 => Value::U16(u16::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::S32 => Value::S32(i32::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::U32 => Value::U32(u32::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::S64 => Value::S64(i64::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::U64 => Value::U64(u64::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::Float32 => Value::F32(f32::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::Float64 => Value::F64(f64::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::Char => Value::Char(char::linear_lift_from_flat(cx, ty, next(src)?)?),
        InterfaceType::String => {
            let pair = [*next(src)?, *next(src)?];
            Value::String(String::linear_lift_from_flat(cx, ty, &pair)?)
        }
        InterfaceType::List(i) => {
            let ptr = u32::linear_lift_from_flat(cx, InterfaceType::U32, next(src)?)? as usize;
            let len = u32::linear_lift_from_flat(cx, InterfaceType::U32, next(src)?)? as usize;
            load_list(cx, hold, cx.types[i].element, ptr, len)?
        }
        InterfaceType::Record(i) => {
            let types = cx.types;
            let fields = &types[i].fields;
            cx.consume_fuel_array(fields.len(), size_of::<Val>())?;
            let mut values = Vec::with_capacity(fields.len());
            for field in fields.iter() {
                values.push(lift_flat(cx, hold, field.ty, src)?);
                cx.consume_fuel(field.name.len())?;
            }
            Value::Record(values)
        }
        InterfaceType::Tuple(i) => {
            let types = cx.types;
            let items = &types[i].types;
            cx.consume_fuel_array(items.len(), size_of::<Val>())?;
            Value::Tuple(items.iter().map(|ty| lift_flat(cx, hold, *ty, src)).collect::<Result<_>>()?)
        }
        InterfaceType::Variant(i) => {
            let types = cx.types;
            let cases = &types[i].cases;
            let (index, payload) = lift_variant(cx, hold, flat_of(types, &ty), cases.values().copied(), src)?;
            let (name, _) = cases.get_index(index as usize).expect("lift_variant checked the index");
            cx.consume_fuel(name.len())?;
            Value::Variant(index, payload)
        }
        InterfaceType::Enum(i) => {
            let types = cx.types;
            let names = &types[i].names;
            let (index, _) = lift_variant(cx, hold, flat_of(types, &ty), names.iter().map(|_| None), src)?;
            cx.consume_fuel(names[index as usize].len())?;
            Value::Enum(index)
        }
        InterfaceType::Option(i) => {
            let types = cx.types;
            let (_, payload) = lift_variant(cx, hold, flat_of(types, &ty), [None, Some(types[i].ty)].into_iter(), src)?;
            Value::Option(payload)
        }
        InterfaceType::Result(i) => {
            let types = cx.types;
            let result = &types[i];
            let (index, payload) =
                lift_variant(cx, hold, flat_of(types, &ty), [result.ok, result.err].into_iter(), src)?;
            Value::Result(if index == 0 { Ok(payload) } else { Err(payload) })
        }
        InterfaceType::Flags(i) => {
            let types = cx.types;
            let names = &types[i].names;
            let mut set = Vec::new();
            for word in 0..names.len().div_ceil(32) {
                let bits = u32::linear_lift_from_flat(cx, InterfaceType::U32, next(src)?)?;
                push_flags(cx, names.iter().map(String::len), &mut set, word * 32, bits)?;
            }
            Value::Flags(set)
        }
        other => return Err(unsupported(&other)),
    })
}

fn unsupported(ty: &InterfaceType) -> wasmtime::Error {
    error(format!("a task value cannot hold {ty:?}"))
}

fn lift_variant(
    cx: &mut LiftContext<'_>,
    hold: Hold,
    flat: usize,
    mut cases: impl ExactSizeIterator<Item = Option<InterfaceType>>,
    src: &mut Iter<'_, ValRaw>,
) -> Result<(u32, Option<Box<Value>>)> {
    let count = cases.len();
    let index = next(src)?.get_u32();
    let case =
        cases.nth(index as usize).ok_or_else(|| error(format!("discriminant {index} out of range [0..{count})")))?;
    let (payload, payload_flat) = match case {
        Some(ty) => {
            cx.consume_fuel(size_of::<Val>())?;
            let payload = lift_flat(cx, hold, ty, src)?;
            (Some(Box::new(payload)), flat_of(cx.types, &ty))
        }
        None => (None, 0),
    };
    for _ in (1 + payload_flat)..flat {
        next(src)?;
    }
    Ok((index, payload))
}

/// Appends the indices of the flags set in `bits` (flags `first..first + 32`).
fn push_flags(
    cx: &mut LiftContext<'_>,
    name_lens: impl Iterator<Item = usize>,
    set: &mut Vec<u32>,
    first: usize,
    bits: u32,
) -> Result<()> {
    for (index, len) in name_lens.enumerate().skip(first).take(32) {
        if bits & (1 << (index - first)) != 0 {
            cx.consume_fuel(len)?;
            set.push(index as u32);
        }
    }
    Ok(())
}

/// Loads one value of type `ty` stored at `offset` in guest memory (already bounds-checked
/// for the type's size by the caller).
pub fn load(cx: &mut LiftContext<'_>, hold: Hold, ty: InterfaceType, offset: usize) -> Result<Value> {
    let memory = cx.memory();
    let types = cx.types;
    let abi = types.canonical_abi(&ty);
    let bytes = memory
        .get(offset..)
        .and_then(|b| b.get(..abi.size32 as usize))
        .ok_or_else(|| error("value out of bounds of memory"))?;
    Ok(match ty {
        InterfaceType::Bool => Value::Bool(bool::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S8 => Value::S8(i8::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U8 => Value::U8(u8::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S16 => Value::S16(i16::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U16 => Value::U16(u16::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S32 => Value::S32(i32::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U32 => Value::U32(u32::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::S64 => Value::S64(i64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::U64 => Value::U64(u64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Float32 => Value::F32(f32::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Float64 => Value::F64(f64::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::Char => Value::Char(char::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::String => Value::String(String::linear_lift_from_memory(cx, ty, bytes)?),
        InterfaceType::List(i) => {
            let ptr = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
            let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
            load_list(cx, hold, types[i].element, ptr, len)?
        }
        InterfaceType::Record(i) => {
            let fields = &types[i].fields;
            cx.consume_fuel_array(fields.len(), size_of::<Val>())?;
            let mut at = 0u32;
            let mut values = Vec::with_capacity(fields.len());
            for field in fields.iter() {
                cx.consume_fuel(field.name.len())?;
                let field_offset = types.canonical_abi(&field.ty).next_field32(&mut at) as usize;
                values.push(load(cx, hold, field.ty, offset + field_offset)?);
            }
            Value::Record(values)
        }
        InterfaceType::Tuple(i) => {
            let items = &types[i].types;
            cx.consume_fuel_array(items.len(), size_of::<Val>())?;
            let mut at = 0u32;
            let mut values = Vec::with_capacity(items.len());
            for item in items.iter() {
                let item_offset = types.canonical_abi(item).next_field32(&mut at) as usize;
                values.push(load(cx, hold, *item, offset + item_offset)?);
            }
            Value::Tuple(values)
        }
        InterfaceType::Variant(i) => {
            let variant = &types[i];
            let (index, payload) = load_variant(
                cx,
                hold,
                bytes,
                usize::from(variant.info.size),
                variant.info.payload_offset32,
                offset,
                variant.cases.values().copied(),
            )?;
            let (name, _) = variant.cases.get_index(index as usize).expect("load_variant checked the index");
            cx.consume_fuel(name.len())?;
            Value::Variant(index, payload)
        }
        InterfaceType::Enum(i) => {
            let e = &types[i];
            let (index, _) = load_variant(
                cx,
                hold,
                bytes,
                usize::from(e.info.size),
                e.info.payload_offset32,
                offset,
                e.names.iter().map(|_| None),
            )?;
            cx.consume_fuel(e.names[index as usize].len())?;
            Value::Enum(index)
        }
        InterfaceType::Option(i) => {
            let o = &types[i];
            let (_, payload) = load_variant(
                cx,
                hold,
                bytes,
                usize::from(o.info.size),
                o.info.payload_offset32,
                offset,
                [None, Some(o.ty)].into_iter(),
            )?;
            Value::Option(payload)
        }
        InterfaceType::Result(i) => {
            let r = &types[i];
            let (index, payload) = load_variant(
                cx,
                hold,
                bytes,
                usize::from(r.info.size),
                r.info.payload_offset32,
                offset,
                [r.ok, r.err].into_iter(),
            )?;
            Value::Result(if index == 0 { Ok(payload) } else { Err(payload) })
        }
        InterfaceType::Flags(i) => {
            let names = &types[i].names;
            let mut set = Vec::new();
            let lens = || names.iter().map(String::len);
            match names.len() {
                0 => {}
                1..=8 => push_flags(cx, lens(), &mut set, 0, u32::from(bytes[0]))?,
                9..=16 => push_flags(cx, lens(), &mut set, 0, u32::from(u16::from_le_bytes([bytes[0], bytes[1]])))?,
                n => {
                    for word in 0..n.div_ceil(32) {
                        let bits = u32::from_le_bytes(bytes[word * 4..word * 4 + 4].try_into().expect("4 bytes"));
                        push_flags(cx, lens(), &mut set, word * 32, bits)?;
                    }
                }
            }
            Value::Flags(set)
        }
        other => return Err(unsupported(&other)),
    })
}

fn load_variant(
    cx: &mut LiftContext<'_>,
    hold: Hold,
    bytes: &[u8],
    discriminant_size: usize,
    payload_offset: u32,
    offset: usize,
    mut cases: impl ExactSizeIterator<Item = Option<InterfaceType>>,
) -> Result<(u32, Option<Box<Value>>)> {
    let index = match discriminant_size {
        1 => u32::from(bytes[0]),
        2 => u32::from(u16::from_le_bytes([bytes[0], bytes[1]])),
        _ => u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")),
    };
    let count = cases.len();
    let case =
        cases.nth(index as usize).ok_or_else(|| error(format!("discriminant {index} out of range [0..{count})")))?;
    let payload = match case {
        Some(ty) => {
            cx.consume_fuel(size_of::<Val>())?;
            Some(Box::new(load(cx, hold, ty, offset + payload_offset as usize)?))
        }
        None => None,
    };
    Ok((index, payload))
}

/// Reads `len` items of `element` at `ptr`: byte lists and lists of fixed-size scalars in
/// one pass over their bytes, anything else item by item.
fn load_list(cx: &mut LiftContext<'_>, hold: Hold, element: InterfaceType, ptr: usize, len: usize) -> Result<Value> {
    let types = cx.types;
    let abi = types.canonical_abi(&element);
    let size = abi.size32 as usize;
    let memory = cx.memory();
    let end = len.checked_mul(size).and_then(|n| ptr.checked_add(n));
    match end {
        Some(end) if end <= memory.len() => cx.consume_fuel_array(len, size_of::<Val>())?,
        _ => return Err(error("list pointer/length out of bounds of memory")),
    }
    if !ptr.is_multiple_of(abi.align32 as usize) {
        return Err(error("list pointer is not aligned"));
    }
    let bytes = &memory[ptr..ptr + len * size];
    let borrow = hold == Hold::BorrowLarge && bytes.len() >= BORROW_FROM;
    if let Some(item) = number_ty(&element) {
        let numbers = if borrow {
            // SAFETY: the arguments of a host import live only while the caller waits in
            // the call (`ImportParams` checks it), and its memory cannot change meanwhile.
            unsafe { Numbers::borrowed_le_bytes(&item, bytes) }
        } else {
            None
        };
        if let Some(numbers) = numbers.or_else(|| Numbers::from_le_bytes(&item, bytes)) {
            return Ok(Value::Numbers(numbers));
        }
    }
    Ok(match element {
        // SAFETY: as for the numbers above.
        InterfaceType::U8 if borrow => Value::Bytes(unsafe { Buf::borrowed(bytes) }),
        InterfaceType::U8 => Value::Bytes(crate::buffers::copy_of(bytes).into()),
        InterfaceType::Bool => Value::List(bytes.iter().map(|b| Value::Bool(*b != 0)).collect()),
        _ => Value::List((0..len).map(|i| load(cx, hold, element, ptr + i * size)).collect::<Result<_>>()?),
    })
}

/// The item type of a list held as [`Numbers`], for the ABI's name of it.
fn number_ty(element: &InterfaceType) -> Option<Ty> {
    Some(match element {
        InterfaceType::S8 => Ty::S8,
        InterfaceType::S16 => Ty::S16,
        InterfaceType::U16 => Ty::U16,
        InterfaceType::S32 => Ty::S32,
        InterfaceType::U32 => Ty::U32,
        InterfaceType::S64 => Ty::S64,
        InterfaceType::U64 => Ty::U64,
        InterfaceType::Float32 => Ty::F32,
        InterfaceType::Float64 => Ty::F64,
        _ => return None,
    })
}

// ---- lowering: Value → guest ----

fn mismatch(ty: &InterfaceType, value: &Value) -> wasmtime::Error {
    error(format!("type mismatch: expected {ty:?}, found {}", value.kind()))
}

/// Lowers `value` of type `ty` into flat core values.
pub fn lower_flat<T>(
    cx: &mut LowerContext<'_, T>,
    ty: InterfaceType,
    value: &Value,
    dst: &mut IterMut<'_, MaybeUninit<ValRaw>>,
) -> Result<()> {
    macro_rules! scalar {
        ($x:expr) => {
            $x.linear_lower_to_flat(cx, ty, next_mut(dst)?)
        };
    }
    match (ty, value) {
        (InterfaceType::Bool, Value::Bool(x)) => scalar!(x),
        (InterfaceType::S8, Value::S8(x)) => scalar!(x),
        (InterfaceType::U8, Value::U8(x)) => scalar!(x),
        (InterfaceType::S16, Value::S16(x)) => scalar!(x),
        (InterfaceType::U16, Value::U16(x)) => scalar!(x),
        (InterfaceType::S32, Value::S32(x)) => scalar!(x),
        (InterfaceType::U32, Value::U32(x)) => scalar!(x),
        (InterfaceType::S64, Value::S64(x)) => scalar!(x),
        (InterfaceType::U64, Value::U64(x)) => scalar!(x),
        (InterfaceType::Float32, Value::F32(x)) => scalar!(x),
        (InterfaceType::Float64, Value::F64(x)) => scalar!(x),
        (InterfaceType::Char, Value::Char(x)) => scalar!(x),
        (InterfaceType::String, Value::String(s)) => {
            let mut pair = MaybeUninit::<[ValRaw; 2]>::uninit();
            s.as_str().linear_lower_to_flat(cx, ty, &mut pair)?;
            // SAFETY: `str`'s lowering initialises both values when it returns Ok.
            let pair = unsafe { pair.assume_init() };
            next_mut(dst)?.write(pair[0]);
            next_mut(dst)?.write(pair[1]);
            Ok(())
        }
        (InterfaceType::List(i), list @ (Value::Bytes(_) | Value::List(_) | Value::Numbers(_))) => {
            let (ptr, len) = lower_list(cx, cx.types[i].element, list)?;
            next_mut(dst)?.write(ValRaw::i64(ptr as i64));
            next_mut(dst)?.write(ValRaw::i64(len as i64));
            Ok(())
        }
        (InterfaceType::Record(i), Value::Record(values)) => {
            let types = cx.types;
            let fields = &types[i].fields;
            check_count(fields.len(), values.len(), "fields")?;
            for (field, value) in fields.iter().zip(values) {
                lower_flat(cx, field.ty, value, dst)?;
            }
            Ok(())
        }
        (InterfaceType::Tuple(i), Value::Tuple(values)) => {
            let types = cx.types;
            let items = &types[i].types;
            check_count(items.len(), values.len(), "items")?;
            for (item, value) in items.iter().zip(values) {
                lower_flat(cx, *item, value, dst)?;
            }
            Ok(())
        }
        (InterfaceType::Variant(i), Value::Variant(index, payload)) => {
            let types = cx.types;
            let case = types[i].cases.get_index(*index as usize).map(|(_, ty)| *ty);
            let case = case.ok_or_else(|| error(format!("variant case {index} does not exist")))?;
            lower_variant_flat(cx, flat_of(types, &ty), *index, case, payload.as_deref(), dst)
        }
        (InterfaceType::Enum(i), Value::Enum(index)) => {
            if *index as usize >= cx.types[i].names.len() {
                return Err(error(format!("enum case {index} does not exist")));
            }
            next_mut(dst)?.write(ValRaw::u32(*index));
            Ok(())
        }
        (InterfaceType::Option(i), Value::Option(payload)) => {
            let types = cx.types;
            let index = u32::from(payload.is_some());
            let case = payload.as_ref().map(|_| types[i].ty);
            lower_variant_flat(cx, flat_of(types, &ty), index, case, payload.as_deref(), dst)
        }
        (InterfaceType::Result(i), Value::Result(result)) => {
            let types = cx.types;
            let r = &types[i];
            let (index, case, payload) = match result {
                Ok(payload) => (0, r.ok, payload.as_deref()),
                Err(payload) => (1, r.err, payload.as_deref()),
            };
            lower_variant_flat(cx, flat_of(types, &ty), index, case, payload, dst)
        }
        (InterfaceType::Flags(i), Value::Flags(set)) => {
            for word in flag_words(cx.types[i].names.len(), set)? {
                next_mut(dst)?.write(ValRaw::u32(word));
            }
            Ok(())
        }
        (ty, value) => Err(mismatch(&ty, value)),
    }
}

fn check_count(expected: usize, found: usize, what: &str) -> Result<()> {
    if expected != found {
        return Err(error(format!("expected {expected} {what}, found {found}")));
    }
    Ok(())
}

fn lower_variant_flat<T>(
    cx: &mut LowerContext<'_, T>,
    flat: usize,
    index: u32,
    case: Option<InterfaceType>,
    payload: Option<&Value>,
    dst: &mut IterMut<'_, MaybeUninit<ValRaw>>,
) -> Result<()> {
    next_mut(dst)?.write(ValRaw::u32(index));
    let payload_flat = match (case, payload) {
        (Some(ty), Some(value)) => {
            lower_flat(cx, ty, value, dst)?;
            flat_of(cx.types, &ty)
        }
        (None, None) => 0,
        (Some(_), None) => return Err(error(format!("case {index} needs a payload"))),
        (None, Some(_)) => return Err(error(format!("case {index} has no payload"))),
    };
    // The payload slots other cases would use are zero, as wasmtime writes them.
    for _ in (1 + payload_flat)..flat {
        next_mut(dst)?.write(ValRaw::u64(0));
    }
    Ok(())
}

fn flag_words(count: usize, set: &[u32]) -> Result<Vec<u32>> {
    let mut words = vec![0u32; count.div_ceil(32)];
    for &index in set {
        if index as usize >= count {
            return Err(error(format!("flag {index} does not exist")));
        }
        words[index as usize / 32] |= 1 << (index % 32);
    }
    Ok(words)
}

fn write_bytes<T>(cx: &mut LowerContext<'_, T>, offset: usize, bytes: &[u8]) -> Result<()> {
    let memory = cx.as_slice_mut();
    let target =
        memory.get_mut(offset..).and_then(|m| m.get_mut(..bytes.len())).ok_or_else(|| error("store out of bounds"))?;
    target.copy_from_slice(bytes);
    Ok(())
}

/// Stores `value` of type `ty` at `offset` in guest memory.
pub fn store<T>(cx: &mut LowerContext<'_, T>, ty: InterfaceType, value: &Value, offset: usize) -> Result<()> {
    let types = cx.types;
    let size = types.canonical_abi(&ty).size32 as usize;
    if offset.checked_add(size).is_none_or(|end| end > cx.as_slice_mut().len()) {
        return Err(error("store out of bounds"));
    }
    macro_rules! scalar {
        ($x:expr) => {
            $x.linear_lower_to_memory(cx, ty, offset)
        };
    }
    match (ty, value) {
        (InterfaceType::Bool, Value::Bool(x)) => scalar!(x),
        (InterfaceType::S8, Value::S8(x)) => scalar!(x),
        (InterfaceType::U8, Value::U8(x)) => scalar!(x),
        (InterfaceType::S16, Value::S16(x)) => scalar!(x),
        (InterfaceType::U16, Value::U16(x)) => scalar!(x),
        (InterfaceType::S32, Value::S32(x)) => scalar!(x),
        (InterfaceType::U32, Value::U32(x)) => scalar!(x),
        (InterfaceType::S64, Value::S64(x)) => scalar!(x),
        (InterfaceType::U64, Value::U64(x)) => scalar!(x),
        (InterfaceType::Float32, Value::F32(x)) => scalar!(x),
        (InterfaceType::Float64, Value::F64(x)) => scalar!(x),
        (InterfaceType::Char, Value::Char(x)) => scalar!(x),
        (InterfaceType::String, Value::String(s)) => s.as_str().linear_lower_to_memory(cx, ty, offset),
        (InterfaceType::List(i), list @ (Value::Bytes(_) | Value::List(_) | Value::Numbers(_))) => {
            let (ptr, len) = lower_list(cx, types[i].element, list)?;
            let mut pair = [0u8; 8];
            pair[..4].copy_from_slice(&(ptr as u32).to_le_bytes());
            pair[4..].copy_from_slice(&(len as u32).to_le_bytes());
            write_bytes(cx, offset, &pair)
        }
        (InterfaceType::Record(i), Value::Record(values)) => {
            let fields = &types[i].fields;
            check_count(fields.len(), values.len(), "fields")?;
            let mut at = 0u32;
            for (field, value) in fields.iter().zip(values) {
                let field_offset = types.canonical_abi(&field.ty).next_field32(&mut at) as usize;
                store(cx, field.ty, value, offset + field_offset)?;
            }
            Ok(())
        }
        (InterfaceType::Tuple(i), Value::Tuple(values)) => {
            let items = &types[i].types;
            check_count(items.len(), values.len(), "items")?;
            let mut at = 0u32;
            for (item, value) in items.iter().zip(values) {
                let item_offset = types.canonical_abi(item).next_field32(&mut at) as usize;
                store(cx, *item, value, offset + item_offset)?;
            }
            Ok(())
        }
        (InterfaceType::Variant(i), Value::Variant(index, payload)) => {
            let variant = &types[i];
            let case = variant.cases.get_index(*index as usize).map(|(_, ty)| *ty);
            let case = case.ok_or_else(|| error(format!("variant case {index} does not exist")))?;
            let layout = (usize::from(variant.info.size), variant.info.payload_offset32 as usize);
            store_variant(cx, layout, offset, *index, case, payload.as_deref())
        }
        (InterfaceType::Enum(i), Value::Enum(index)) => {
            let e = &types[i];
            if *index as usize >= e.names.len() {
                return Err(error(format!("enum case {index} does not exist")));
            }
            store_variant(cx, (usize::from(e.info.size), 0), offset, *index, None, None)
        }
        (InterfaceType::Option(i), Value::Option(payload)) => {
            let o = &types[i];
            let case = payload.as_ref().map(|_| o.ty);
            let layout = (usize::from(o.info.size), o.info.payload_offset32 as usize);
            store_variant(cx, layout, offset, u32::from(payload.is_some()), case, payload.as_deref())
        }
        (InterfaceType::Result(i), Value::Result(result)) => {
            let r = &types[i];
            let (index, case, payload) = match result {
                Ok(payload) => (0, r.ok, payload.as_deref()),
                Err(payload) => (1, r.err, payload.as_deref()),
            };
            store_variant(
                cx,
                (usize::from(r.info.size), r.info.payload_offset32 as usize),
                offset,
                index,
                case,
                payload,
            )
        }
        (InterfaceType::Flags(i), Value::Flags(set)) => {
            let count = types[i].names.len();
            let words = flag_words(count, set)?;
            match count {
                0 => Ok(()),
                1..=8 => write_bytes(cx, offset, &[words[0] as u8]),
                9..=16 => write_bytes(cx, offset, &(words[0] as u16).to_le_bytes()),
                _ => {
                    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                    write_bytes(cx, offset, &bytes)
                }
            }
        }
        (ty, value) => Err(mismatch(&ty, value)),
    }
}

fn store_variant<T>(
    cx: &mut LowerContext<'_, T>,
    (discriminant_size, payload_offset): (usize, usize),
    offset: usize,
    index: u32,
    case: Option<InterfaceType>,
    payload: Option<&Value>,
) -> Result<()> {
    match discriminant_size {
        1 => write_bytes(cx, offset, &[index as u8])?,
        2 => write_bytes(cx, offset, &(index as u16).to_le_bytes())?,
        _ => write_bytes(cx, offset, &index.to_le_bytes())?,
    }
    match (case, payload) {
        (Some(ty), Some(value)) => store(cx, ty, value, offset + payload_offset),
        (None, None) => Ok(()),
        (Some(_), None) => Err(error(format!("case {index} needs a payload"))),
        (None, Some(_)) => Err(error(format!("case {index} has no payload"))),
    }
}

/// Allocates a list in guest memory and writes its items: a byte list in one copy, a list
/// of fixed-size scalars in one pass, anything else item by item.
fn lower_list<T>(cx: &mut LowerContext<'_, T>, element: InterfaceType, list: &Value) -> Result<(usize, usize)> {
    let types = cx.types;
    let abi = types.canonical_abi(&element);
    let size = abi.size32 as usize;
    let len = match list {
        Value::Bytes(bytes) => bytes.len(),
        Value::List(items) => items.len(),
        Value::Numbers(numbers) => numbers.len(),
        other => return Err(mismatch(&InterfaceType::U8, other)),
    };
    let total = len.checked_mul(size).ok_or_else(|| error("size overflow copying a list"))?;
    let ptr = cx.realloc(0, 0, abi.align32, total)?;
    if let Some(target) = cx.as_slice_mut().get_mut(ptr..ptr + total) {
        crate::buffers::advise_huge_pages(target);
    }
    match (element, list) {
        (InterfaceType::U8, Value::Bytes(bytes)) => write_bytes(cx, ptr, bytes)?,
        (InterfaceType::U8, Value::List(_)) => return Err(error("a list<u8> must be Bytes")),
        (_, Value::Bytes(_)) => return Err(error(format!("expected list<{element:?}>, found list<u8>"))),
        (_, Value::Numbers(numbers)) => {
            if number_ty(&element).as_ref() != Some(&numbers.item_ty()) {
                return Err(error(format!(
                    "expected list<{element:?}>, found list<{}>",
                    super::json::type_name(&numbers.item_ty())
                )));
            }
            let memory = cx.as_slice_mut();
            let target =
                memory.get_mut(ptr..ptr + total).ok_or_else(|| error("realloc returned memory out of bounds"))?;
            numbers.write_le_bytes(target);
        }
        (_, Value::List(items)) => {
            let memory = cx.as_slice_mut();
            let target =
                memory.get_mut(ptr..ptr + total).ok_or_else(|| error("realloc returned memory out of bounds"))?;
            if !store_scalars(element, items, target)? {
                for (i, item) in items.iter().enumerate() {
                    store(cx, element, item, ptr + i * size)?;
                }
            }
        }
        _ => unreachable!("matched above"),
    }
    Ok((ptr, len))
}

/// Writes a list of fixed-size scalars into `target` in one pass; false for other element
/// types.
fn store_scalars(element: InterfaceType, items: &[Value], target: &mut [u8]) -> Result<bool> {
    macro_rules! put {
        ($variant:ident, $t:ty) => {{
            for (item, chunk) in items.iter().zip(target.chunks_exact_mut(size_of::<$t>())) {
                let Value::$variant(x) = item else { return Err(mismatch(&element, item)) };
                chunk.copy_from_slice(&x.to_le_bytes());
            }
        }};
    }
    match element {
        InterfaceType::S8 => put!(S8, i8),
        InterfaceType::S16 => put!(S16, i16),
        InterfaceType::U16 => put!(U16, u16),
        InterfaceType::S32 => put!(S32, i32),
        InterfaceType::U32 => put!(U32, u32),
        InterfaceType::S64 => put!(S64, i64),
        InterfaceType::U64 => put!(U64, u64),
        InterfaceType::Float32 => put!(F32, f32),
        InterfaceType::Float64 => put!(F64, f64),
        InterfaceType::Bool => {
            for (item, byte) in items.iter().zip(target.iter_mut()) {
                let Value::Bool(x) = item else { return Err(mismatch(&element, item)) };
                *byte = u8::from(*x);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

// ---- the shells wasmtime calls through ----

const fn shell_abi(size32: u32, align32: u32, flat: usize) -> CanonicalAbiInfo {
    CanonicalAbiInfo { size32, align32, size64: size32, align64: align32, flat_count: Some(flat as u8) }
}

fn tuple_types(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<Vec<InterfaceType>> {
    match ty {
        InterfaceType::Tuple(i) => Ok(types.types[*i].types.to_vec()),
        other => Err(error(format!("expected a parameter or result tuple, found {other:?}"))),
    }
}

fn real_flat(ty: &InterfaceType, types: &InstanceType<'_>, max: usize) -> Option<usize> {
    types.types.canonical_abi(ty).flat_count(max)
}

/// Offset of `bytes` (a slice of guest memory) from the start of that memory: wasmtime
/// hands a shell whose static size is 0 an empty slice at the right place.
fn offset_in(memory: &[u8], bytes: &[u8]) -> usize {
    bytes.as_ptr() as usize - memory.as_ptr() as usize
}

fn lift_tuple_flat(cx: &mut LiftContext<'_>, hold: Hold, ty: InterfaceType, src: &[ValRaw]) -> Result<Vec<Value>> {
    let InterfaceType::Tuple(i) = ty else { return Err(unsupported(&ty)) };
    let types = cx.types;
    let mut iter = src.iter();
    types[i].types.iter().map(|ty| lift_flat(cx, hold, *ty, &mut iter)).collect()
}

fn load_tuple(cx: &mut LiftContext<'_>, hold: Hold, ty: InterfaceType, offset: usize) -> Result<Vec<Value>> {
    let InterfaceType::Tuple(i) = ty else { return Err(unsupported(&ty)) };
    let types = cx.types;
    let abi = types.canonical_abi(&ty);
    if !offset.is_multiple_of(abi.align32 as usize) {
        return Err(error("pointer not aligned"));
    }
    if offset.checked_add(abi.size32 as usize).is_none_or(|end| end > cx.memory().len()) {
        return Err(error("pointer out of bounds"));
    }
    let mut at = 0u32;
    let mut values = Vec::with_capacity(types[i].types.len());
    for item in types[i].types.iter() {
        let item_offset = types.canonical_abi(item).next_field32(&mut at) as usize;
        values.push(load(cx, hold, *item, offset + item_offset)?);
    }
    Ok(values)
}

/// A host import's arguments, lifted from `N` flat core values, with the check that the
/// lists they borrow from the caller's memory are gone when the call returns.
pub struct ImportParams<const N: usize>(pub Vec<Value>, BorrowCheck);

/// A host import's arguments, lifted from a parameter tuple spilled to guest memory.
pub struct SpilledImportParams(pub Vec<Value>, BorrowCheck);

// SAFETY: `Lower` is `N` `ValRaw`s, and `typecheck` only accepts parameter tuples that flatten
// to exactly `N` values, so wasmtime hands `linear_lift_from_flat` that many initialised values.
unsafe impl<const N: usize> ComponentType for ImportParams<N> {
    type Lower = [ValRaw; N];
    const ABI: CanonicalAbiInfo = shell_abi(0, 1, N);

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        tuple_types(ty, types)?;
        match real_flat(ty, types, MAX_FLAT_PARAMS) {
            Some(n) if n == N => Ok(()),
            found => Err(error(format!("parameters flatten to {found:?} values, not {N}"))),
        }
    }
}

// SAFETY: the parameters never come from memory (`typecheck` refused spilled tuples).
unsafe impl<const N: usize> ComponentNamedList for ImportParams<N> {}

unsafe impl<const N: usize> Lift for ImportParams<N> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        let check = BorrowCheck::start();
        Ok(ImportParams(lift_tuple_flat(cx, Hold::BorrowLarge, ty, src)?, check))
    }

    fn linear_lift_from_memory(_: &mut LiftContext<'_>, _: InterfaceType, _: &[u8]) -> Result<Self> {
        Err(error("flat parameters read from memory"))
    }
}

// SAFETY: `Lower` is one `ValRaw` (the pointer wasmtime reads itself); the static size is 0 so
// wasmtime passes an empty slice at the tuple's address, which `load_tuple` bounds-checks
// against the real layout.
unsafe impl ComponentType for SpilledImportParams {
    type Lower = [ValRaw; 1];
    const ABI: CanonicalAbiInfo = shell_abi(0, 1, MAX_FLAT_PARAMS + 1);

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        tuple_types(ty, types)?;
        match real_flat(ty, types, MAX_FLAT_PARAMS) {
            None => Ok(()),
            Some(n) => Err(error(format!("parameters flatten to {n} values, they are not spilled"))),
        }
    }
}

// SAFETY: as for `ImportParams`.
unsafe impl ComponentNamedList for SpilledImportParams {}

unsafe impl Lift for SpilledImportParams {
    fn linear_lift_from_flat(_: &mut LiftContext<'_>, _: InterfaceType, _: &Self::Lower) -> Result<Self> {
        Err(error("spilled parameters read as flat values"))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        let offset = offset_in(cx.memory(), bytes);
        let check = BorrowCheck::start();
        Ok(SpilledImportParams(load_tuple(cx, Hold::BorrowLarge, ty, offset)?, check))
    }
}

/// A host import's result (`N` = 0: none; 1: one flat value or through memory).
pub struct ImportResult<const N: usize>(pub Option<Value>);

// SAFETY: `Lower` is `N` `ValRaw`s; `typecheck` accepts a result tuple of `N` items, and
// `linear_lower_to_flat` initialises all `N` values.
unsafe impl<const N: usize> ComponentType for ImportResult<N> {
    type Lower = [ValRaw; N];
    const ABI: CanonicalAbiInfo = shell_abi(0, 1, N);

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        let items = tuple_types(ty, types)?;
        if items.len() != N {
            return Err(error(format!("expected {N} results, found {}", items.len())));
        }
        Ok(())
    }
}

// SAFETY: as above.
unsafe impl<const N: usize> ComponentNamedList for ImportResult<N> {}

fn single_result(
    ty: InterfaceType,
    types: &wasmtime::component::__internal::ComponentTypes,
) -> Result<Option<InterfaceType>> {
    let InterfaceType::Tuple(i) = ty else { return Err(unsupported(&ty)) };
    Ok(types[i].types.first().copied())
}

unsafe impl<const N: usize> Lower for ImportResult<N> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        // SAFETY: `MaybeUninit<[ValRaw; N]>` and `[MaybeUninit<ValRaw>; N]` have one layout.
        let slots = unsafe { &mut *(dst as *mut MaybeUninit<[ValRaw; N]>).cast::<[MaybeUninit<ValRaw>; N]>() };
        let mut iter = slots.iter_mut();
        match (single_result(ty, cx.types)?, &self.0) {
            (Some(result_ty), Some(value)) => lower_flat(cx, result_ty, value, &mut iter)?,
            (None, None) => {}
            _ => return Err(error("the task's result does not match its signature")),
        }
        if iter.next().is_some() {
            return Err(error("the result did not fill its flat values"));
        }
        Ok(())
    }

    fn linear_lower_to_memory<T>(&self, cx: &mut LowerContext<'_, T>, ty: InterfaceType, offset: usize) -> Result<()> {
        match (single_result(ty, cx.types)?, &self.0) {
            (Some(result_ty), Some(value)) => store(cx, result_ty, value, offset),
            (None, None) => Ok(()),
            _ => Err(error("the task's result does not match its signature")),
        }
    }
}

/// A call's arguments lowered into a guest export as `N` flat core values.
pub struct ExportParams<'a, const N: usize>(pub &'a [Value]);

/// A call's arguments lowered into a guest export through a tuple spilled to its memory.
pub struct SpilledExportParams<'a>(pub &'a [Value]);

// SAFETY: `Lower` is `N` `ValRaw`s; `typecheck` accepts only parameter tuples flattening to
// exactly `N`, and `linear_lower_to_flat` initialises every one of them or fails.
unsafe impl<const N: usize> ComponentType for ExportParams<'_, N> {
    type Lower = [ValRaw; N];
    const ABI: CanonicalAbiInfo = shell_abi(0, 1, N);

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        ImportParams::<N>::typecheck(ty, types)
    }
}

// SAFETY: as above.
unsafe impl<const N: usize> ComponentNamedList for ExportParams<'_, N> {}

fn tuple_items(
    ty: InterfaceType,
    types: &wasmtime::component::__internal::ComponentTypes,
) -> Result<Vec<InterfaceType>> {
    let InterfaceType::Tuple(i) = ty else { return Err(unsupported(&ty)) };
    Ok(types[i].types.to_vec())
}

unsafe impl<const N: usize> Lower for ExportParams<'_, N> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        // SAFETY: `MaybeUninit<[ValRaw; N]>` and `[MaybeUninit<ValRaw>; N]` have one layout.
        let slots = unsafe { &mut *(dst as *mut MaybeUninit<[ValRaw; N]>).cast::<[MaybeUninit<ValRaw>; N]>() };
        let mut iter = slots.iter_mut();
        let items = tuple_items(ty, cx.types)?;
        check_count(items.len(), self.0.len(), "arguments")?;
        for (item, value) in items.into_iter().zip(self.0) {
            lower_flat(cx, item, value, &mut iter)?;
        }
        if iter.next().is_some() {
            return Err(error("the arguments did not fill their flat values"));
        }
        Ok(())
    }

    fn linear_lower_to_memory<T>(&self, _: &mut LowerContext<'_, T>, _: InterfaceType, _: usize) -> Result<()> {
        Err(error("flat arguments stored to memory"))
    }
}

// SAFETY: `Lower` is more than `MAX_FLAT_PARAMS` values, so wasmtime spills: it allocates
// `MAX_SPILLED_PARAMS` bytes aligned to 8 and passes their address, and `typecheck` accepts
// only tuples that fit in that space.
unsafe impl ComponentType for SpilledExportParams<'_> {
    type Lower = [ValRaw; MAX_FLAT_PARAMS + 1];
    const ABI: CanonicalAbiInfo = shell_abi(MAX_SPILLED_PARAMS, 8, MAX_FLAT_PARAMS + 1);

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        SpilledImportParams::typecheck(ty, types)?;
        let abi = types.types.canonical_abi(ty);
        if abi.size32 > MAX_SPILLED_PARAMS || abi.align32 > 8 {
            return Err(error(format!("a parameter tuple of {} bytes is larger than the fast path", abi.size32)));
        }
        Ok(())
    }
}

// SAFETY: as above.
unsafe impl ComponentNamedList for SpilledExportParams<'_> {}

unsafe impl Lower for SpilledExportParams<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        _: &mut LowerContext<'_, T>,
        _: InterfaceType,
        _: &mut MaybeUninit<Self::Lower>,
    ) -> Result<()> {
        Err(error("spilled arguments lowered as flat values"))
    }

    fn linear_lower_to_memory<T>(&self, cx: &mut LowerContext<'_, T>, ty: InterfaceType, offset: usize) -> Result<()> {
        let types = cx.types;
        let items = tuple_items(ty, types)?;
        check_count(items.len(), self.0.len(), "arguments")?;
        let mut at = 0u32;
        for (item, value) in items.iter().zip(self.0) {
            let item_offset = types.canonical_abi(item).next_field32(&mut at) as usize;
            store(cx, *item, value, offset + item_offset)?;
        }
        Ok(())
    }
}

/// A guest export's result: `N` = 0 none, 1 one flat value, 2 through memory.
pub struct ExportResult<const N: usize>(pub Option<Value>);

// SAFETY: `Lower` is `N` `ValRaw`s. For N ≤ 1 `typecheck` accepts only result tuples that
// flatten to `N` values; for N = 2 (more than `MAX_FLAT_RESULTS`) wasmtime reads the result
// through the returned pointer, and the static size 0 makes it pass an empty slice at that
// address, which `load` bounds-checks against the real layout.
unsafe impl<const N: usize> ComponentType for ExportResult<N> {
    type Lower = [ValRaw; N];
    const ABI: CanonicalAbiInfo = shell_abi(0, 1, N);

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        let items = tuple_types(ty, types)?;
        let fits = match N {
            0 => items.is_empty(),
            1 => items.len() == 1 && real_flat(ty, types, MAX_FLAT_RESULTS) == Some(1),
            _ => items.len() == 1 && real_flat(ty, types, MAX_FLAT_RESULTS).is_none(),
        };
        if !fits {
            return Err(error(format!("the result does not cross as shell {N}")));
        }
        Ok(())
    }
}

// SAFETY: as above.
unsafe impl<const N: usize> ComponentNamedList for ExportResult<N> {}

unsafe impl<const N: usize> Lift for ExportResult<N> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        let mut values = lift_tuple_flat(cx, Hold::Copy, ty, src)?;
        Ok(ExportResult(values.pop()))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        let offset = offset_in(cx.memory(), bytes);
        let mut values = load_tuple(cx, Hold::Copy, ty, offset)?;
        Ok(ExportResult(values.pop()))
    }
}

/// Calls a guest export through the shells above: `args` are lowered and its result lifted
/// straight between [`Value`]s and guest memory.
pub fn call_export<T: 'static>(
    mut store: impl wasmtime::AsContextMut<Data = T>,
    func: &wasmtime::component::Func,
    params: ParamsAbi,
    result: ResultAbi,
    args: &[Value],
) -> Result<Option<Value>> {
    macro_rules! call {
        ($params:expr, $r:literal) => {{
            let params = $params;
            let typed = typed_func(func, &store, &params, ExportResult::<$r>(None))?;
            let ExportResult(value) = typed.call(&mut store, params)?;
            Ok(value)
        }};
    }
    macro_rules! by_result {
        ($params:expr) => {
            match result {
                ResultAbi::None => call!($params, 0),
                ResultAbi::Flat => call!($params, 1),
                ResultAbi::Memory => call!($params, 2),
            }
        };
    }
    match params {
        ParamsAbi::Spilled => by_result!(SpilledExportParams(args)),
        ParamsAbi::Flat(n) => with_flat_count!(n, N, by_result!(ExportParams::<N>(args))),
    }
}

/// `func` as a typed function of the shells `P` and `R` (the values only name the types).
fn typed_func<P, R>(
    func: &wasmtime::component::Func,
    store: impl wasmtime::AsContext,
    _params: &P,
    _result: R,
) -> Result<wasmtime::component::TypedFunc<P, R>>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    func.typed::<P, R>(store)
}

/// Defines `name` in `instance` as a host function whose arguments and result cross
/// straight between guest memory and [`Value`]s: `serve` gets the arguments and returns
/// the result (`None` for a function without one).
pub fn define_import<T, F>(
    instance: &mut wasmtime::component::LinkerInstance<'_, T>,
    name: &str,
    params: ParamsAbi,
    result: ResultAbi,
    serve: F,
) -> Result<()>
where
    T: 'static,
    F: Fn(wasmtime::StoreContextMut<'_, T>, Vec<Value>) -> Result<Option<Value>> + Send + Sync + Clone + 'static,
{
    macro_rules! wrap {
        ($p:ty, $r:literal) => {{
            let serve = serve.clone();
            instance.func_wrap(name, move |store: wasmtime::StoreContextMut<'_, T>, args: $p| {
                let result = serve(store, args.0);
                args.1.finish();
                Ok(ImportResult::<$r>(result?))
            })
        }};
    }
    macro_rules! by_result {
        ($p:ty) => {
            match result {
                ResultAbi::None => wrap!($p, 0),
                ResultAbi::Flat | ResultAbi::Memory => wrap!($p, 1),
            }
        };
    }
    match params {
        ParamsAbi::Spilled => by_result!(SpilledImportParams),
        ParamsAbi::Flat(n) => with_flat_count!(n, N, by_result!(ImportParams<N>)),
    }
}
